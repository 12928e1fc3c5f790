//! An AWS Lambda entry on the official runtime: every invocation fires due schedules, drains
//! due jobs with [`drain_due`], and answers with the [`RunReport`].
//!
//! ```ignore
//! #[tokio::main]
//! async fn main() -> Result<(), lambda_runtime::Error> {
//!     let db = Db::connect(&std::env::var("DATABASE_URL")?).await?;
//!     tidepost_jobs::lambda::run(Queue::new(db), registry()).await
//! }
//! ```
//!
//! The invocation's payload may narrow the drain, `{"kinds": ["publish.poll"], "max_jobs":
//! 200}`; any other payload (a scheduled event, say) drains everything up to the default.

use std::sync::Arc;

use lambda_runtime::{Diagnostic, Error, LambdaEvent, service_fn};
use serde::Deserialize;
use serde_json::Value;

use crate::{Queue, Registry, RunReport, drain_due};

/// Jobs claimed per invocation unless the payload says otherwise.
pub const DEFAULT_MAX_JOBS: usize = 500;

/// What an invocation may ask for.
#[derive(Debug, Default, Deserialize)]
pub struct DrainRequest {
    #[serde(default)]
    pub kinds: Option<Vec<String>>,
    #[serde(default)]
    pub max_jobs: Option<usize>,
}

impl DrainRequest {
    /// Reads the narrowing fields from any payload, ignoring everything else.
    pub fn from_payload(payload: Value) -> Self {
        serde_json::from_value(payload).unwrap_or_default()
    }
}

/// Runs the Lambda runtime loop (reading `AWS_LAMBDA_RUNTIME_API` and the function's
/// environment) until the process ends.
pub async fn run(queue: Queue, registry: Registry) -> Result<(), Error> {
    let (queue, registry) = (Arc::new(queue), Arc::new(registry));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let (queue, registry) = (queue.clone(), registry.clone());
        async move { invoke(&queue, &registry, event.payload).await }
    }))
    .await
}

/// One invocation. A failure to reach the database is the invocation's error; failed jobs are
/// counted in the report.
pub async fn invoke(
    queue: &Queue,
    registry: &Registry,
    payload: Value,
) -> Result<RunReport, Diagnostic> {
    let request = DrainRequest::from_payload(payload);
    let max_jobs = request.max_jobs.unwrap_or(DEFAULT_MAX_JOBS);
    let report = drain_due(queue, registry, request.kinds.as_deref(), max_jobs)
        .await
        .map_err(|err| Diagnostic {
            error_type: "DrainFailed".into(),
            error_message: err.to_string(),
        })?;
    tracing::info!(?report, "drained due jobs");
    Ok(report)
}
