//! The `instagram.first_comment` job: a target's first comment (`first_comment`), posted
//! under its media right after it is published, as its own step of the target
//! (`instagram_first_comments`: pending, posted with its id, or failed with the reason).
//!
//! Never twice: the call runs inside a durable step whose outcome (the comment id) is recorded
//! before the state says posted. When a run ended between the call and the record (a crash,
//! a lost answer), the next run finds the step's intent open and first looks for the comment
//! under the media (the account's own comment with the same text) before it posts again.
//! Transient errors are retried with backoff; a failed comment never makes the post failed.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;
use tidepost_jobs::{JobContext, JobError, NewJob, Registry, RetryPolicy, StepState, handler_fn};
use tidepost_providers::ErrorKind;
use tidepost_store::accounts::{self, Account};
use tidepost_store::instagram as ig_store;
use tidepost_store::posts::{self, Target};

use super::host_of;
use super::options::InstagramPost;
use crate::App;
use crate::tokens::{self, TokenError};

pub const FIRST_COMMENT_JOB: &str = "instagram.first_comment";
/// Runs before a comment that keeps failing transiently is given up.
pub const MAX_ATTEMPTS: u32 = 8;
/// Pages of comments read when looking for one whose answer was lost.
const LOOKUP_PAGES: usize = 10;

/// The payload of [`FIRST_COMMENT_JOB`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CommentRef {
    pub workspace_id: String,
    pub target_id: String,
}

pub(crate) fn register(registry: Registry, app: &App) -> Registry {
    let app = app.clone();
    registry.register_with(
        FIRST_COMMENT_JOB,
        RetryPolicy::new(
            MAX_ATTEMPTS,
            Duration::from_secs(2),
            Duration::from_secs(300),
        ),
        handler_fn(move |ctx, payload: CommentRef| {
            let app = app.clone();
            async move { run(&app, &ctx, &payload).await }
        }),
    )
}

/// Records the target's first comment as pending and enqueues the job that posts it (once per
/// publishing generation: enqueuing again is a no-op).
pub async fn enqueue(app: &App, target: &Target, now: i64) -> Result<(), JobError> {
    ig_store::first_comment_pending(&app.db, &target.workspace_id, &target.id, now).await?;
    let job = NewJob::new(
        FIRST_COMMENT_JOB,
        &CommentRef {
            workspace_id: target.workspace_id.clone(),
            target_id: target.id.clone(),
        },
    )
    .workspace(&target.workspace_id)
    .idempotency_key(format!(
        "{FIRST_COMMENT_JOB}:{}:{}",
        target.id, target.init_generation
    ))
    .run_at(now);
    app.queue.enqueue(job).await?;
    Ok(())
}

async fn set(
    app: &App,
    r: &CommentRef,
    ctx: &JobContext,
    state: &str,
    comment_id: Option<&str>,
    error: Option<&str>,
) -> Result<(), JobError> {
    ig_store::set_first_comment(
        &app.db,
        &r.workspace_id,
        &r.target_id,
        state,
        comment_id,
        error,
        ctx.clock().now_ms(),
    )
    .await?;
    Ok(())
}

/// Gives the comment up with `reason` (the post stays published).
async fn give_up(
    app: &App,
    r: &CommentRef,
    ctx: &JobContext,
    reason: &str,
) -> Result<(), JobError> {
    tracing::warn!(target_id = %r.target_id, reason, "the first comment was not posted");
    set(app, r, ctx, "failed", None, Some(reason)).await
}

pub async fn run(app: &App, ctx: &JobContext, r: &CommentRef) -> Result<(), JobError> {
    let Some(row) = ig_store::first_comment(&app.db, &r.workspace_id, &r.target_id).await? else {
        return Ok(());
    };
    if row.state != "pending" {
        return Ok(());
    }
    let Some(target) = posts::target(&app.db, &r.workspace_id, &r.target_id).await? else {
        return Ok(());
    };
    let Some(post) = posts::get(&app.db, &r.workspace_id, &target.post_id).await? else {
        return Ok(());
    };
    let options: InstagramPost = match serde_json::from_str(target.options_or(&post)) {
        Ok(options) => options,
        Err(e) => {
            return give_up(app, r, ctx, &format!("the stored post cannot be read: {e}")).await;
        }
    };
    let Some(message) = options.first_comment else {
        return Ok(());
    };
    let media_id = ig_store::get(&app.db, &r.workspace_id, &r.target_id)
        .await?
        .and_then(|m| m.media_id);
    let Some(media_id) = media_id else {
        return give_up(
            app,
            r,
            ctx,
            "Meta did not say which media was published, so there is nothing to comment on",
        )
        .await;
    };
    let Some(account) = accounts::get(&app.db, &r.workspace_id, &target.account_id).await? else {
        return give_up(app, r, ctx, "the Instagram account was disconnected").await;
    };
    let client = match app.providers.meta() {
        Ok(client) => client.clone(),
        Err(e) => return Err(JobError::retryable(e).retry_after(Duration::from_secs(60))),
    };
    let host = host_of(&account);

    let intent = match ctx.step("first-comment").await? {
        StepState::Done(outcome) => {
            // Recorded, then the run ended before the state said so.
            let id = outcome["comment_id"].as_str().map(str::to_string);
            return match id {
                Some(id) => set(app, r, ctx, "posted", Some(&id), None).await,
                None => {
                    let reason = outcome["failed"].as_str().unwrap_or("the comment failed");
                    give_up(app, r, ctx, reason).await
                }
            };
        }
        StepState::OutcomeUnknown(intent) => {
            // An earlier run may have posted it: look under the media first.
            match find_posted(app, &client, host, &account, &media_id, &message).await {
                Ok(Some(id)) => {
                    intent
                        .record(&json!({"comment_id": id, "found": true}))
                        .await?;
                    tracing::info!(target_id = %r.target_id, "the first comment was already posted");
                    return set(app, r, ctx, "posted", Some(&id), None).await;
                }
                Ok(None) => intent,
                Err(err) => return failed_call(app, r, ctx, None, err).await,
            }
        }
        StepState::New(intent) => intent,
    };
    let (c, m, text) = (&client, media_id.as_str(), message.as_str());
    match tokens::with_token(app, &account, |token| async move {
        c.comment(host, &token, m, text).await
    })
    .await
    {
        Ok(id) => {
            intent.record(&json!({"comment_id": id})).await?;
            set(app, r, ctx, "posted", Some(&id), None).await
        }
        Err(err) => failed_call(app, r, ctx, Some(intent), err).await,
    }
}

/// A call that failed: transient errors leave the step's intent open (the next run looks for
/// the comment before posting) and retry; the rest give the comment up.
async fn failed_call(
    app: &App,
    r: &CommentRef,
    ctx: &JobContext,
    intent: Option<tidepost_jobs::StepIntent>,
    err: TokenError,
) -> Result<(), JobError> {
    let (transient, after) = match &err {
        TokenError::Provider(e) => (
            matches!(
                e.kind,
                ErrorKind::Retryable | ErrorKind::RateLimited | ErrorKind::OutcomeUnknown
            ),
            e.retry_after,
        ),
        TokenError::RefreshBusy | TokenError::Store(_) | TokenError::NotConfigured(_) => {
            (true, None)
        }
        TokenError::NeedsReauth(_) | TokenError::Vault(_) => (false, None),
    };
    let reason = format!("Instagram refused the first comment: {err}");
    if transient && ctx.attempt() < i64::from(MAX_ATTEMPTS) {
        set(app, r, ctx, "pending", None, Some(&reason)).await?;
        let retry = JobError::retryable(&reason);
        return Err(match after {
            Some(after) => retry.retry_after(after),
            None => retry,
        });
    }
    if let Some(intent) = intent {
        intent.record(&json!({"failed": reason})).await?;
    }
    give_up(app, r, ctx, &reason).await
}

/// The account's own comment with this text under the media, if there is one.
async fn find_posted(
    app: &App,
    client: &tidepost_providers::meta::MetaClient,
    host: tidepost_providers::meta::GraphHost,
    account: &Account,
    media_id: &str,
    message: &str,
) -> Result<Option<String>, TokenError> {
    let mut after: Option<String> = None;
    for _ in 0..LOOKUP_PAGES {
        let cursor = after.clone();
        let page = tokens::with_token(app, account, |token| {
            let cursor = cursor.clone();
            async move {
                client
                    .comments(host, &token, media_id, cursor.as_deref())
                    .await
            }
        })
        .await?;
        let mine = page.comments.iter().find(|c| {
            c.text == message
                && (c
                    .from
                    .as_ref()
                    .is_some_and(|f| f.id == account.provider_user_id)
                    || (c.username.is_some() && c.username == account.username))
        });
        if let Some(comment) = mine {
            return Ok(Some(comment.id.clone()));
        }
        match page.next_cursor {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    Ok(None)
}
