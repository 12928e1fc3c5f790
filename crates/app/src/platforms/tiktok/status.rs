//! `tiktok.poll_status`: polls the publish status (within the 30/min status limit, backing
//! off) until a final state, then a little longer for the public post id, which TikTok gives
//! only after moderation. Every change goes through [`advance`], never backwards.

use std::time::Duration;

use tidepost_domain::publish::TargetState;
use tidepost_jobs::{JobContext, JobError};
use tidepost_providers::ErrorKind;
use tidepost_providers::tiktok::{PublishState, PublishStatus};
use tidepost_store::accounts;
use tidepost_store::limits::Admission;
use tidepost_store::posts::{self, Target};

use super::{PostOptions, limits, local_error};
use crate::App;
use crate::pipeline::{TargetRef, advance};
use crate::tokens::{self, TokenError};

/// About two hours of polling at the capped interval.
pub const MAX_ATTEMPTS: u32 = 150;
/// After `PUBLISH_COMPLETE`, how many more polls look for the public post id.
const POST_ID_POLLS: i64 = 20;

fn backoff(attempt: i64) -> Duration {
    let doublings = u32::try_from((attempt - 1).clamp(0, 5)).unwrap_or(5);
    Duration::from_secs(2u64 << doublings).min(Duration::from_secs(60))
}

pub async fn run(app: &App, ctx: &JobContext, r: &TargetRef) -> Result<(), JobError> {
    let Some(target) = posts::target(&app.db, &r.workspace_id, &r.target_id).await? else {
        return Ok(());
    };
    let Some(publish_id) = target.publish_id.clone() else {
        return Ok(());
    };
    let state = TargetState::parse(&target.state).unwrap_or(TargetState::Failed);
    if state.is_final() && !wants_post_id(app, &target).await? {
        return Ok(());
    }
    let Some(account) = accounts::get(&app.db, &r.workspace_id, &target.account_id).await? else {
        return Ok(());
    };
    let now = ctx.clock().now_ms();
    if let Admission::WaitUntil(until) = limits::status_slot(app, &account.id, now).await? {
        let wait = Duration::from_millis(u64::try_from(until - now).unwrap_or(1).max(1));
        return Err(JobError::wait(
            "waiting for a slot of TikTok's status rate limit",
            wait,
        ));
    }
    let client = app.tiktok().map_err(JobError::retryable)?;
    let id = publish_id.as_str();
    let status = match tokens::with_token(app, &account, |token| async move {
        client.fetch_status(&token, id).await
    })
    .await
    {
        Ok(status) => status,
        Err(TokenError::NeedsReauth(message)) => {
            let err = local_error("needs_reauth", message, ErrorKind::Reauth);
            advance(
                app,
                &r.workspace_id,
                &r.target_id,
                TargetState::Failed,
                Some(&err),
            )
            .await?;
            return Ok(());
        }
        Err(TokenError::Provider(e)) if e.is_retryable() => {
            let wait = e.retry_after.unwrap_or_else(|| backoff(ctx.attempt()));
            return Err(JobError::retryable(e.message).retry_after(wait));
        }
        Err(TokenError::Provider(e)) => {
            if !state.is_final() {
                advance(
                    app,
                    &r.workspace_id,
                    &r.target_id,
                    TargetState::Failed,
                    Some(&e),
                )
                .await?;
            }
            return Ok(());
        }
        Err(other) => return Err(JobError::retryable(other)),
    };
    apply_status(app, &target, &status).await?;
    let target = posts::target(&app.db, &r.workspace_id, &r.target_id)
        .await?
        .unwrap_or(target);
    let state = TargetState::parse(&target.state).unwrap_or(TargetState::Failed);
    if !state.is_final() {
        return Err(JobError::wait(
            "TikTok is still processing the post",
            backoff(ctx.attempt()),
        ));
    }
    if wants_post_id(app, &target).await? && ctx.attempt() < POST_ID_POLLS {
        return Err(JobError::wait(
            "published; waiting for TikTok's public post id (it appears after moderation)",
            backoff(ctx.attempt()).max(Duration::from_secs(15)),
        ));
    }
    Ok(())
}

/// A published public direct post whose public post id is not known yet.
async fn wants_post_id(app: &App, target: &Target) -> Result<bool, JobError> {
    if target.state != "published" || target.mode != "direct" || !target.post_ids().is_empty() {
        return Ok(false);
    }
    if target.provider_status.as_deref() != Some("PUBLISH_COMPLETE") {
        return Ok(false);
    }
    let post = posts::get(&app.db, &target.workspace_id, &target.post_id).await?;
    let options: PostOptions = post
        .and_then(|p| serde_json::from_str(target.options_or(&p)).ok())
        .unwrap_or_default();
    Ok(options.options.privacy_level.as_deref() != Some("SELF_ONLY"))
}

/// Records a fetched status on the target.
pub async fn apply_status(
    app: &App,
    target: &Target,
    status: &PublishStatus,
) -> Result<(), JobError> {
    let raw = match &status.status {
        PublishState::ProcessingUpload => "PROCESSING_UPLOAD",
        PublishState::ProcessingDownload => "PROCESSING_DOWNLOAD",
        PublishState::SendToUserInbox => "SEND_TO_USER_INBOX",
        PublishState::PublishComplete => "PUBLISH_COMPLETE",
        PublishState::Failed => "FAILED",
        PublishState::Unknown(other) => other.as_str(),
    };
    let ids = (!status.public_post_ids.is_empty()).then_some(status.public_post_ids.as_slice());
    crate::pipeline::record_provider_status(app, target, raw, ids).await?;
    let (ws, id) = (&target.workspace_id, &target.id);
    match &status.status {
        PublishState::SendToUserInbox | PublishState::PublishComplete => {
            advance(app, ws, id, TargetState::Published, None).await?;
        }
        PublishState::Failed => {
            let err = status.failure().unwrap_or_else(|| {
                local_error("failed", "TikTok failed the publish.", ErrorKind::Permanent)
            });
            advance(app, ws, id, TargetState::Failed, Some(&err)).await?;
        }
        PublishState::ProcessingUpload
        | PublishState::ProcessingDownload
        | PublishState::Unknown(_) => {
            advance(app, ws, id, TargetState::Processing, None).await?;
        }
    }
    Ok(())
}
