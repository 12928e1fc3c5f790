//! The inbound TikTok webhook: [`receive`] verifies the `TikTok-Signature` over the raw body
//! (constant time, timestamp within the tolerance), stores the raw event under a unique dedupe
//! key (the SHA-256 of the body) and enqueues its application, all before the sender gets its
//! 200; [`apply`] (the `tiktok.webhook` job) moves targets forward and marks accounts whose
//! authorization was removed.

use sha2::{Digest, Sha256};
use tidepost_domain::publish::TargetState;
use tidepost_jobs::JobError;
use tidepost_providers::ErrorKind;
use tidepost_providers::tiktok::{
    SignatureError, TikTokEvent, parse_tiktok_webhook, verify_tiktok_signature,
};
use tidepost_store::inbound_events::{self, InboundEvent};
use tidepost_store::{StoreError, accounts, posts};

use super::{WEBHOOK_JOB, local_error};
use crate::App;
use crate::pipeline::advance;
use crate::pipeline::inbound::{EventRef, store_and_enqueue};
use crate::tokens;

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("TikTok webhooks are not configured: {0}")]
    NotConfigured(String),
    #[error("missing TikTok-Signature header")]
    MissingSignature,
    #[error("{0}")]
    Signature(SignatureError),
    #[error("the body is not a TikTok webhook: {0}")]
    Malformed(String),
    /// Storing the event or enqueuing its job failed (they commit together).
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl WebhookError {
    /// A short label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            WebhookError::NotConfigured(_) => "not_configured",
            WebhookError::MissingSignature => "missing_signature",
            WebhookError::Signature(SignatureError::OutsideWindow { .. }) => "outside_window",
            WebhookError::Signature(_) => "bad_signature",
            WebhookError::Malformed(_) => "malformed",
            WebhookError::Store(_) => "internal",
        }
    }
}

/// What [`receive`] did with a delivery.
#[derive(Debug, Clone)]
pub struct Receipt {
    pub event_id: String,
    /// The same body was received before (applied once).
    pub duplicate: bool,
}

/// Verifies, stores and enqueues one delivery. `now_secs` is the current unix time.
pub async fn receive(
    app: &App,
    signature: Option<&str>,
    body: &[u8],
    now_secs: i64,
) -> Result<Receipt, WebhookError> {
    let client = app
        .tiktok()
        .map_err(|e| WebhookError::NotConfigured(e.to_string()))?;
    let header = signature.ok_or(WebhookError::MissingSignature)?;
    let tolerance = app.config.publish.tiktok_webhook_tolerance_secs;
    let signed_at =
        verify_tiktok_signature(header, body, client.client_secret(), now_secs, tolerance)
            .map_err(WebhookError::Signature)?;
    let parsed = parse_tiktok_webhook(body).map_err(|e| WebhookError::Malformed(e.to_string()))?;
    let text = String::from_utf8(body.to_vec())
        .map_err(|_| WebhookError::Malformed("the body is not UTF-8".into()))?;
    let event = InboundEvent {
        id: tidepost_domain::new_id(),
        provider: "tiktok".into(),
        dedupe_key: format!("tiktok:{}", hex::encode(Sha256::digest(body))),
        event_type: parsed.event.clone(),
        body: text,
        signature_ts: Some(signed_at.0),
        received_at: tidepost_domain::now_ms(),
        applied_at: None,
        apply_result: None,
    };
    let (stored, inserted) = store_and_enqueue(app, &event, WEBHOOK_JOB).await?;
    Ok(Receipt {
        event_id: stored.id,
        duplicate: !inserted,
    })
}

/// Applies a stored event (the `tiktok.webhook` job). Applying twice changes nothing more.
pub async fn apply(app: &App, r: &EventRef) -> Result<(), JobError> {
    let Some(event) = inbound_events::get(&app.db, &r.event_id).await? else {
        return Ok(());
    };
    if event.applied_at.is_some() {
        return Ok(());
    }
    let parsed = match parse_tiktok_webhook(event.body.as_bytes()) {
        Ok(parsed) => parsed,
        Err(e) => {
            inbound_events::mark_applied(
                &app.db,
                &event.id,
                &format!("unreadable: {e}"),
                tidepost_domain::now_ms(),
            )
            .await?;
            return Ok(());
        }
    };
    let result = match parsed.content {
        TikTokEvent::AuthorizationRemoved { reason } => {
            let found = accounts::by_provider_identity(
                &app.db,
                tidepost_domain::Platform::Tiktok,
                &parsed.user_openid,
            )
            .await?;
            let why = format!(
                "the creator removed tidepost's access on TikTok ({})",
                match reason {
                    1 => "disconnected in the TikTok app",
                    2 => "account deleted",
                    3 => "age changed",
                    4 => "account banned",
                    5 => "revoked by the developer",
                    _ => "reason unknown",
                }
            );
            for account in &found {
                tokens::mark_needs_reauth(app, account, &why).await?;
            }
            format!("{} account(s) marked needs_reauth", found.len())
        }
        TikTokEvent::PublishComplete { publish_id, .. } => {
            on_publish(
                app,
                &publish_id,
                Some("PUBLISH_COMPLETE"),
                TargetState::Published,
                None,
            )
            .await?
        }
        TikTokEvent::InboxDelivered { publish_id, .. } => {
            on_publish(
                app,
                &publish_id,
                Some("SEND_TO_USER_INBOX"),
                TargetState::Published,
                None,
            )
            .await?
        }
        TikTokEvent::PublishFailed {
            publish_id, reason, ..
        } => confirm_failure(app, &publish_id, &reason).await?,
        TikTokEvent::PubliclyAvailable {
            publish_id,
            post_id,
            ..
        } => match posts::target_by_publish_id(
            &app.db,
            tidepost_domain::Platform::Tiktok,
            &publish_id,
        )
        .await?
        {
            Some(target) => {
                let status = target
                    .provider_status
                    .clone()
                    .unwrap_or_else(|| "PUBLISH_COMPLETE".into());
                crate::pipeline::record_provider_status(
                    app,
                    &target,
                    &status,
                    Some(std::slice::from_ref(&post_id)),
                )
                .await?;
                advance(
                    app,
                    &target.workspace_id,
                    &target.id,
                    TargetState::Published,
                    None,
                )
                .await?;
                format!("post id {post_id} recorded")
            }
            None => "unknown publish".to_string(),
        },
        other @ (TikTokEvent::NoLongerPubliclyAvailable { .. }
        | TikTokEvent::VideoUploadFailed { .. }
        | TikTokEvent::VideoPublishCompleted { .. }
        | TikTokEvent::Other { .. }) => format!("ignored ({:?})", std::mem::discriminant(&other)),
    };
    inbound_events::mark_applied(&app.db, &event.id, &result, tidepost_domain::now_ms()).await?;
    Ok(())
}

/// A reported failure is not applied as it stands: webhooks arrive late and out of order, and
/// a stale `post.publish.failed` must not fail a post that TikTok published. The target's status
/// poller asks TikTok (the source of truth) at once and applies what it answers.
async fn confirm_failure(app: &App, publish_id: &str, reason: &str) -> Result<String, JobError> {
    let Some(target) =
        posts::target_by_publish_id(&app.db, tidepost_domain::Platform::Tiktok, publish_id).await?
    else {
        return Ok("unknown publish".into());
    };
    if TargetState::parse(&target.state).is_some_and(TargetState::is_final) {
        return Ok(format!("ignored: already {}", target.state));
    }
    let job = tidepost_jobs::NewJob::new(
        super::POLL_JOB,
        &super::TargetRef {
            workspace_id: target.workspace_id.clone(),
            target_id: target.id.clone(),
            due_at: None,
        },
    )
    .workspace(&target.workspace_id)
    .idempotency_key(format!(
        "{}:{}:{}:confirm:{publish_id}",
        super::POLL_JOB,
        target.id,
        target.init_generation
    ));
    app.queue.enqueue(job).await.map_err(JobError::from)?;
    Ok(format!(
        "failure reported ({reason}); confirming with TikTok's status"
    ))
}

async fn on_publish(
    app: &App,
    publish_id: &str,
    status: Option<&str>,
    to: TargetState,
    fail_reason: Option<String>,
) -> Result<String, StoreError> {
    let Some(target) =
        posts::target_by_publish_id(&app.db, tidepost_domain::Platform::Tiktok, publish_id).await?
    else {
        return Ok("unknown publish".into());
    };
    // Never replace a later provider status with an earlier one.
    let keep = matches!(
        target.provider_status.as_deref(),
        Some("PUBLISH_COMPLETE" | "FAILED")
    );
    if let Some(status) = status
        && !keep
    {
        posts::set_provider_status(
            &app.db,
            &target.workspace_id,
            &target.id,
            status,
            None,
            tidepost_domain::now_ms(),
        )
        .await?;
    }
    let error = fail_reason.map(|reason| {
        tidepost_providers::tiktok::PublishStatus {
            status: tidepost_providers::tiktok::PublishState::Failed,
            fail_reason: Some(reason),
            uploaded_bytes: None,
            downloaded_bytes: None,
            public_post_ids: vec![],
        }
        .failure()
        .unwrap_or_else(|| {
            local_error("failed", "TikTok failed the publish.", ErrorKind::Permanent)
        })
    });
    Ok(
        match advance(app, &target.workspace_id, &target.id, to, error.as_ref()).await? {
            Some(from) => format!("{from} -> {to}"),
            None => format!("ignored: {} does not move to {to}", target.state),
        },
    )
}
