//! The clean-up sweep (`media.sweep`, hourly): media that no post has used for
//! `media_retention_days` (row, and file once no workspace holds the same bytes), and resumable
//! uploads left unfinished past `upload_expiry_hours` (row and partial file).
//!
//! "Used" is the later of the media's own last use (stored, stored again, taken by a post) and
//! the last change of any post that names it; media a post that has not finished names is
//! never deleted, however old.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tidepost_jobs::{JobContext, JobError, Registry, RetryPolicy, handler_fn};
use tidepost_store::media as repo;
use tidepost_store::uploads as upload_repo;

use super::MediaError;
use crate::App;

pub const SWEEP_JOB: &str = "media.sweep";
/// How often the sweep runs.
pub const SWEEP_EVERY: Duration = Duration::from_secs(3600);
/// Rows looked at per batch; a run goes on until a batch comes back short.
const BATCH: i64 = 200;

/// What one run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SweepReport {
    pub media_deleted: u64,
    /// Idle media kept because a post still uses it (its last use is moved forward).
    pub media_kept: u64,
    pub uploads_expired: u64,
}

#[derive(Debug, Deserialize)]
struct Empty {}

pub(crate) fn register(registry: Registry, app: &App) -> Registry {
    let app = app.clone();
    registry.register_with(
        SWEEP_JOB,
        RetryPolicy::new(3, Duration::from_secs(5), Duration::from_secs(60)),
        handler_fn(move |_ctx: JobContext, _: Empty| {
            let app = app.clone();
            async move {
                let report = sweep(&app, tidepost_domain::now_ms())
                    .await
                    .map_err(JobError::retryable)?;
                if report != SweepReport::default() {
                    tracing::info!(?report, "media sweep");
                }
                Ok(())
            }
        }),
    )
}

/// Registers the hourly schedule (idempotent).
pub async fn ensure_schedule(app: &App) -> tidepost_jobs::Result<()> {
    tidepost_jobs::schedule::ensure(
        &app.queue,
        &tidepost_jobs::schedule::Schedule::every(
            SWEEP_JOB,
            SWEEP_EVERY,
            SWEEP_JOB,
            serde_json::json!({}),
        ),
    )
    .await
}

/// One run of the sweep as of `now` (ms).
pub async fn sweep(app: &App, now: i64) -> Result<SweepReport, MediaError> {
    let mut report = SweepReport::default();
    let retention = app.config.media.retention_days;
    if retention > 0 {
        let cutoff = now - i64::from(retention) * 86_400_000;
        loop {
            let idle = repo::idle_since(&app.db, cutoff, BATCH).await?;
            let short = (idle.len() as i64) < BATCH;
            for media in idle {
                let usage = repo::usage(&app.db, &media.workspace_id, &media.id).await?;
                let last_post = usage.last_post_at.unwrap_or(i64::MIN);
                if !usage.pending_post_ids.is_empty() || last_post >= cutoff {
                    // Still in use: move its last use forward so the next batch moves on.
                    let at = if usage.pending_post_ids.is_empty() {
                        last_post
                    } else {
                        now
                    };
                    repo::touch(&app.db, &media.workspace_id, &media.id, at).await?;
                    report.media_kept += 1;
                    continue;
                }
                match super::delete(app, &media.workspace_id, &media.id).await {
                    Ok(()) => report.media_deleted += 1,
                    // Taken by a post or deleted meanwhile: leave it to the next run.
                    Err(MediaError::InUse { .. } | MediaError::NotFound(_)) => {
                        repo::touch(&app.db, &media.workspace_id, &media.id, now).await?;
                        report.media_kept += 1;
                    }
                    Err(e) => return Err(e),
                }
            }
            if short {
                break;
            }
        }
    }
    loop {
        let expired = upload_repo::expired(&app.db, now, BATCH).await?;
        let short = (expired.len() as i64) < BATCH;
        for upload in expired {
            if upload_repo::delete(&app.db, &upload.workspace_id, &upload.id).await? {
                super::uploads::remove_file(app, &upload.id).await;
                report.uploads_expired += 1;
            }
        }
        if short {
            break;
        }
    }
    Ok(report)
}
