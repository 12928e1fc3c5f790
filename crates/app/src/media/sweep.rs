//! The clean-up sweep (`media.sweep`, hourly): media that no post has used for
//! `media_retention_days` (row, and file once no workspace holds the same bytes), and resumable
//! uploads left unfinished past `upload_expiry_hours` (row and partial file; on S3 the multipart
//! upload is aborted and the upload's objects deleted), and stray partial files a crash left
//! behind a day ago or more: a put's temporary file or object (`.put-…` on the disk, `.put/` in
//! the bucket) and the bytes of uploads whose row is gone.
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
    /// Expired uploads whose bytes could not be deleted (the bucket did not answer): tried
    /// again by the next run.
    pub uploads_kept: u64,
    /// Partial files or objects a crash left behind, deleted.
    pub strays_deleted: u64,
}

/// Partial files and objects older than this are strays (no put or upload request runs that
/// long without writing).
pub const STRAY_AFTER_MS: i64 = 86_400_000;

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
        let mut kept = false;
        for upload in expired {
            // The bytes first (on S3, the multipart upload aborted): the row is the only record
            // of the multipart upload's id, so it goes once they are gone.
            if let Err(e) = super::uploads::discard(app, &upload).await {
                tracing::warn!(upload = %upload.id, error = %e, "could not delete an expired upload's bytes; trying again on the next run");
                report.uploads_kept += 1;
                kept = true;
                continue;
            }
            if upload_repo::delete(&app.db, &upload.workspace_id, &upload.id).await? {
                report.uploads_expired += 1;
            }
        }
        if short || kept {
            break;
        }
    }
    match strays(app, now - STRAY_AFTER_MS).await {
        Ok(n) => report.strays_deleted = n,
        Err(e) => tracing::warn!(error = %e, "could not look for stray partial files"),
    }
    Ok(report)
}

/// Deletes partial files and objects last written before `before` (ms): temporary files of
/// puts, and the bytes of uploads that have no row.
async fn strays(app: &App, before: i64) -> Result<u64, MediaError> {
    let mut deleted = 0;
    if let Some(s3) = super::storage(app).as_s3() {
        deleted += s3.delete_stray_puts(before).await?;
        let objects = s3.upload_objects_before(before).await?;
        let mut ids: Vec<String> = objects.iter().map(|(id, _)| id.clone()).collect();
        ids.sort();
        ids.dedup();
        let live = upload_repo::existing(&app.db, &ids).await?;
        for (id, name) in objects {
            if !live.contains(&id) {
                s3.delete_upload_object(&id, &name).await;
                deleted += 1;
            }
        }
        return Ok(deleted);
    }
    let old = |meta: &std::fs::Metadata| {
        meta.modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .is_some_and(|d| (d.as_millis() as i64) < before)
    };
    let root = app.config.media.dir.clone();
    let mut entries = match tokio::fs::read_dir(&root).await {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e.into()),
    };
    while let Some(entry) = entries.next_entry().await? {
        let name = entry.file_name().to_string_lossy().to_string();
        if name.starts_with(".put-") && old(&entry.metadata().await?) {
            tokio::fs::remove_file(entry.path()).await?;
            deleted += 1;
        }
    }
    let mut files = Vec::new();
    if let Ok(mut entries) = tokio::fs::read_dir(super::uploads::dir(app)).await {
        while let Some(entry) = entries.next_entry().await? {
            let name = entry.file_name().to_string_lossy().to_string();
            if super::uploads::uuid_like(&name) && old(&entry.metadata().await?) {
                files.push(name);
            }
        }
    }
    let live = upload_repo::existing(&app.db, &files).await?;
    for id in files.into_iter().filter(|id| !live.contains(id)) {
        super::uploads::remove_file(app, &id).await;
        deleted += 1;
    }
    Ok(deleted)
}
