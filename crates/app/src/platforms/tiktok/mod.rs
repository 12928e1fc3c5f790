//! TikTok: the platform adapter (connect, tokens, options, prepare, publish, status, reconcile,
//! webhooks), on the shared pipeline of `crate::pipeline`.
//!
//! - [`prepare`] checks a target before anything is stored or sent: the options against the
//!   creator's `creator_info` (privacy level one of theirs, interaction flags, duration) and
//!   the app's rules ([`options`]); `compose` stores it with its `tiktok.publish` job.
//! - [`job`]: `tiktok.publish` inits through a durable step (intent → call → outcome; a lost
//!   answer is reconciled, never re-sent), persists the `publish_id` first, then uploads the
//!   chunks streamed from the file, recording each acknowledged chunk so that a re-run resumes.
//! - [`status`]: `tiktok.poll_status` polls until a final state; every state change goes
//!   through [`TargetState::apply`], so nothing moves a target backwards.
//! - [`reconcile`]: `tiktok.reconcile` looks for a post whose init answer was lost among the
//!   creator's public videos; a person marks it published or, confirming, sends it again.
//! - [`limits`]: the shared rate limit and the quotas, kept in the database.
//! - [`webhooks`]: the inbound TikTok webhook, stored raw and deduplicated, applied by a job.
//! - [`metrics`]: video counts for the CRM through the video query.

pub mod connect;
pub mod creator_cache;
pub mod job;
pub mod limits;
pub mod metrics;
pub mod options;
pub mod prepare;
pub mod reconcile;
pub mod status;
pub mod tokens;
pub mod webhooks;

pub use options::{Mode, PostOptions, TikTokOptions, check_options};
pub use prepare::{MediaSource, NewPost, prepare, prepare_target};

use std::time::Duration;

use tidepost_domain::Platform;
use tidepost_jobs::{NewJob, Registry, RetryPolicy, handler_fn};
use tidepost_providers::tiktok::CreatorInfo;
use tidepost_providers::{ErrorKind, ProviderError};
use tidepost_store::accounts::Account;
use tidepost_store::posts::Target;

use crate::App;
use crate::pipeline::inbound::EventRef;
use crate::pipeline::{PublishError, TargetRef, halt};

pub const PUBLISH_JOB: &str = "tiktok.publish";
pub const POLL_JOB: &str = "tiktok.poll_status";
pub const WEBHOOK_JOB: &str = "tiktok.webhook";

/// Registers TikTok's job kinds.
pub fn register(registry: Registry, app: &App) -> Registry {
    let publish_app = app.clone();
    let poll_app = app.clone();
    let webhook_app = app.clone();
    let reconcile_app = app.clone();
    registry
        .register_with(
            PUBLISH_JOB,
            RetryPolicy::new(
                job::MAX_ATTEMPTS,
                Duration::from_secs(5),
                Duration::from_secs(600),
            ),
            handler_fn(move |ctx, payload: TargetRef| {
                let app = publish_app.clone();
                async move { job::run(&app, &ctx, &payload).await }
            }),
        )
        .register_with(
            POLL_JOB,
            RetryPolicy::new(
                status::MAX_ATTEMPTS,
                Duration::from_secs(2),
                Duration::from_secs(300),
            ),
            handler_fn(move |ctx, payload: TargetRef| {
                let app = poll_app.clone();
                async move { status::run(&app, &ctx, &payload).await }
            }),
        )
        .register_with(
            reconcile::RECONCILE_JOB,
            RetryPolicy::new(
                reconcile::MAX_ATTEMPTS,
                Duration::from_secs(15),
                Duration::from_secs(300),
            ),
            handler_fn(move |ctx, payload: reconcile::ReconcileRef| {
                let app = reconcile_app.clone();
                async move { reconcile::run(&app, &ctx, &payload).await }
            }),
        )
        .register_with(
            WEBHOOK_JOB,
            RetryPolicy::new(10, Duration::from_secs(2), Duration::from_secs(600)),
            handler_fn(move |_ctx, payload: EventRef| {
                let app = webhook_app.clone();
                async move { webhooks::apply(&app, &payload).await }
            }),
        )
}

/// The creator's current posting options, asked of TikTok now. Every reader goes through
/// [`creator_cache::creator_info`], which keeps the answer a minute.
pub(crate) async fn creator_info(
    app: &App,
    account: &Account,
) -> Result<CreatorInfo, PublishError> {
    let client = app
        .tiktok()
        .map_err(|e| PublishError::Unavailable(e.to_string()))?;
    let reading = crate::tokens::with_token(app, account, |token| async move {
        client.creator_info(&token).await
    })
    .await
    .map_err(PublishError::from);
    // Whether the creator may post is kept on the account, for its health on every page.
    limits::remember_posting_reading(app, account, &reading).await;
    reading
}

/// An error of ours, in the provider error shape the targets store.
pub(crate) fn local_error(
    code: &str,
    message: impl Into<String>,
    kind: ErrorKind,
) -> ProviderError {
    halt::error_on(Platform::Tiktok, code, message, kind)
}

/// The `tiktok.publish` job of `target`, due at `run_at`.
pub fn publish_job(target: &Target, run_at: i64) -> NewJob {
    NewJob::new(
        PUBLISH_JOB,
        &TargetRef {
            workspace_id: target.workspace_id.clone(),
            target_id: target.id.clone(),
            due_at: target.scheduled_at,
        },
    )
    .workspace(&target.workspace_id)
    .idempotency_key(format!(
        "{PUBLISH_JOB}:{}:{}",
        target.id, target.init_generation
    ))
    .run_at(run_at)
}

/// The public page of a published TikTok post.
pub fn post_url(post_id: &str) -> String {
    format!("https://www.tiktok.com/video/{post_id}")
}
