//! tidepost's background work: which job kinds exist, their handlers and retry policies, and
//! the recurring sweeps. `serve` (embedded workers), `worker` and `run-once` all build the same
//! registry from here.

use std::time::Duration;

use serde::Deserialize;
use tidepost_jobs::schedule::{self, Schedule};
use tidepost_jobs::{JobContext, JobError, Registry, RetryPolicy, handler_fn};

use crate::{App, tokens};

pub const REFRESH_SWEEP: &str = "tokens.refresh_due";
pub const PRUNE_SWEEP: &str = "housekeeping.prune";

#[derive(Debug, Deserialize)]
struct Empty {}

/// Every job kind tidepost runs, with its handler.
pub fn registry(app: &App) -> Registry {
    let sweep_policy = RetryPolicy::new(3, Duration::from_secs(5), Duration::from_secs(60));
    let refresh_app = app.clone();
    let prune_app = app.clone();
    let registry = crate::publish::register(Registry::new(), app);
    let registry = crate::instagram::register(registry, app);
    let registry = crate::media::register(registry, app);
    let registry = crate::outbound::register(registry, app);
    let registry = crate::crm::register(registry, app);
    registry
        .register_with(
            REFRESH_SWEEP,
            sweep_policy,
            handler_fn(move |_ctx: JobContext, _: Empty| {
                let app = refresh_app.clone();
                async move {
                    let report = tokens::refresh_due(&app)
                        .await
                        .map_err(JobError::retryable)?;
                    if report.refreshed + report.needs_reauth + report.failed > 0 {
                        tracing::info!(?report, "token refresh sweep");
                    }
                    Ok(())
                }
            }),
        )
        .register_with(
            PRUNE_SWEEP,
            sweep_policy,
            handler_fn(move |_ctx: JobContext, _: Empty| {
                let app = prune_app.clone();
                async move { prune(&app).await.map_err(JobError::retryable) }
            }),
        )
}

/// Registers the recurring sweeps (idempotent; every instance may call it at start).
pub async fn ensure_schedules(app: &App) -> tidepost_jobs::Result<()> {
    let every = |name: &str, secs: u64| {
        Schedule::every(name, Duration::from_secs(secs), name, serde_json::json!({}))
    };
    schedule::ensure(&app.queue, &every(REFRESH_SWEEP, 300)).await?;
    schedule::ensure(&app.queue, &every(PRUNE_SWEEP, 3600)).await?;
    crate::media::sweep::ensure_schedule(app).await?;
    crate::outbound::ensure_schedules(app).await?;
    crate::crm::ensure_schedules(app).await?;
    Ok(())
}

/// Forgets expired sessions, OAuth states, old sign-in failures and expired Idempotency-Key
/// answers.
async fn prune(app: &App) -> Result<(), tidepost_store::StoreError> {
    let now = tidepost_domain::now_ms();
    tidepost_store::sessions::delete_expired(&app.db, now).await?;
    tidepost_store::oauth_states::prune(&app.db, now - 86_400_000).await?;
    tidepost_store::login_attempts::prune(&app.db, now - 86_400_000).await?;
    tidepost_store::idempotency::sweep(&app.db, now).await?;
    Ok(())
}
