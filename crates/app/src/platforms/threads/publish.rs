//! The `threads.publish` job: text, image, video and carousel (2–20) posts, checked before by
//! [`super::prepare`]. Media is never uploaded: Threads fetches each file from its public URL,
//! or a stored upload from a signed, expiring URL of tidepost's own (probed again first).
//!
//! 1. The container (carousel items first, in a durable step, each polled to `FINISHED`, then
//!    the carousel), its id recorded on the target before anything else is sent.
//! 2. The container polled with backoff until `FINISHED` (`ERROR` fails the target with Meta's
//!    reason in words; a download that failed and `EXPIRED` start a new generation of
//!    containers, a few times).
//! 3. The publishing limit read (`threads_publishing_limit`): spent, the target **waits** with
//!    the time a slot frees, it does not fail.
//! 4. `threads_publish` as a durable step (intent → call → outcome). When its answer is lost or
//!    is an error, the container's status decides: `PUBLISHED` means it went out, so nothing is
//!    sent twice. "Media Not Found" (24 / 4279009, the container not visible yet, even right
//!    after `FINISHED`) is retried after a few seconds with the intent left open.
//! 5. The post's id and permalink recorded (`threads_media`), the target published.

use std::time::Duration;

use serde_json::json;
use tidepost_domain::Platform;
use tidepost_domain::publish::TargetState;
use tidepost_jobs::{JobContext, JobError, NewJob, Registry, RetryPolicy, StepState, handler_fn};
use tidepost_providers::threads::{
    Container, ContainerState, ContainerStatus, MEDIA_NOT_FOUND_SUBCODE, MediaSource,
    ThreadsClient, is_publishing_limit,
};
use tidepost_providers::{ErrorKind, ProviderError};
use tidepost_store::accounts::{self, Account};
use tidepost_store::media;
use tidepost_store::posts::{self, Post, Target};
use tidepost_store::threads::{self as th_store, ThreadsMedia};

use super::limits::{limit_refusal, publishing_limit};
use super::options::{MediaType, ThreadsPost};
use crate::App;
use crate::pipeline::halt::{self, Halt, retry};
use crate::pipeline::media::{Item, ItemKind};
use crate::pipeline::{TargetRef, advance};
use crate::platforms::instagram::media_url;
use crate::tokens::{self, TokenError};

pub const PUBLISH_JOB: &str = "threads.publish";
/// Runs of one publish job (each container poll is one).
pub const MAX_ATTEMPTS: u32 = 60;
/// Generations of containers after a download failure or an expiry before giving up.
const MAX_GENERATIONS: i64 = 3;
/// How long to wait before publishing again after "Media Not Found".
const NOT_VISIBLE_WAIT: Duration = Duration::from_secs(3);
/// Longest wait between two readings of a spent publishing limit.
const LIMIT_RECHECK: Duration = Duration::from_secs(3600);

pub(crate) fn register(registry: Registry, app: &App) -> Registry {
    let publish_app = app.clone();
    registry.register_with(
        PUBLISH_JOB,
        RetryPolicy::new(
            MAX_ATTEMPTS,
            Duration::from_secs(2),
            Duration::from_secs(300),
        ),
        handler_fn(move |ctx, payload: TargetRef| {
            let app = publish_app.clone();
            async move { run(&app, &ctx, &payload).await }
        }),
    )
}

/// The job that publishes `target` (also used when a failed target is retried).
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

fn error(code: &str, message: impl Into<String>, kind: ErrorKind) -> ProviderError {
    halt::error_on(Platform::Threads, code, message, kind)
}

fn halt_for(err: TokenError) -> Halt {
    halt::halt_for(Platform::Threads, err, |message| {
        format!("The Threads account must be connected again: {message}")
    })
}

/// Polling backoff: 2 s, 4 s, 8 s … up to a minute (Meta: about once a minute, 5 minutes).
fn backoff(attempt: i64) -> Duration {
    let exp = u32::try_from(attempt.clamp(1, 6)).unwrap_or(6);
    Duration::from_secs((1u64 << exp).min(60))
}

pub async fn run(app: &App, ctx: &JobContext, r: &TargetRef) -> Result<(), JobError> {
    let outcome = publish(app, ctx, r).await;
    halt::settle(app, ctx, r, Platform::Threads, MAX_ATTEMPTS, outcome).await
}

struct Run<'a> {
    app: &'a App,
    ctx: &'a JobContext,
    account: Account,
    post: Post,
    options: ThreadsPost,
    client: ThreadsClient,
}

impl Run<'_> {
    async fn call<T, F, Fut>(&self, f: F) -> Result<T, TokenError>
    where
        F: Fn(secrecy::SecretString) -> Fut,
        Fut: std::future::Future<Output = Result<T, ProviderError>>,
    {
        tokens::with_token(self.app, &self.account, f).await
    }

    fn user(&self) -> &str {
        &self.account.provider_user_id
    }

    /// The URL Threads fetches `item` from.
    async fn source(&self, item: &Item) -> Result<MediaSource, Halt> {
        let kind = item.kind.unwrap_or(ItemKind::Image);
        let url = match &item.url {
            Some(url) => url.clone(),
            None => {
                let id = item.media_id.as_deref().unwrap_or_default();
                let stored = media::get(&self.app.db, &self.post.workspace_id, id)
                    .await?
                    .ok_or_else(|| {
                        Halt::Fail(error(
                            "media_missing",
                            format!("A media file of post {} is gone.", self.post.id),
                            ErrorKind::Permanent,
                        ))
                    })?;
                crate::pipeline::media::check_before_send(self.app, &stored)
                    .await
                    .map_err(|v| Halt::Fail(error(v.rule, v.message, ErrorKind::Permanent)))?;
                media_url::signed_url(self.app, &stored)
            }
        };
        Ok(match kind {
            ItemKind::Image => MediaSource::Image(url),
            ItemKind::Video => MediaSource::Video(url),
        })
    }

    async fn create(&self, container: &Container) -> Result<String, Halt> {
        let (client, user) = (&self.client, self.user());
        let control = self.options.reply_control.map(|r| r.provider());
        self.call(|token| async move {
            client
                .create_container(&token, user, container, control)
                .await
        })
        .await
        .map_err(halt_for)
    }

    async fn status(&self, id: &str) -> Result<ContainerStatus, Halt> {
        let client = &self.client;
        self.call(|token| async move { client.container_status(&token, id).await })
            .await
            .map_err(halt_for)
    }

    /// A container in `ERROR` or `EXPIRED`: new containers when worth it, else fail; `item`
    /// names the carousel item.
    async fn container_failed(
        &self,
        target: &Target,
        status: &ContainerStatus,
        item: Option<usize>,
    ) -> Halt {
        let Some(mut err) = status.failure() else {
            return retry("unexpected container status", None, None);
        };
        let which = match (item, self.options.items.len()) {
            (Some(i), n) => format!("media {} of {n}", i + 1),
            (None, _) => "the post".to_string(),
        };
        err.message = format!("{which} of post {}: {}", self.post.id, err.message);
        let expired = status.status == ContainerState::Expired;
        let again = (expired || err.kind == ErrorKind::Retryable)
            && target.init_generation + 1 < MAX_GENERATIONS;
        if !again {
            return Halt::Fail(err);
        }
        let now = self.ctx.clock().now_ms();
        let _ = posts::set_error(
            &self.app.db,
            &target.workspace_id,
            &target.id,
            Some(&err.code),
            Some(&err.message),
            true,
            now,
        )
        .await;
        let _ = posts::restart_publish(
            &self.app.db,
            &target.workspace_id,
            &target.id,
            target.init_generation,
            now,
        )
        .await;
        retry(
            err.message.clone(),
            Some(Duration::from_secs(30)),
            Some(err),
        )
    }

    /// The publishing limit spent: the reason shown on the target, and a wait until the next
    /// reading (a slot frees within the rolling 24 hours).
    async fn limit_wait(&self, target: &Target, message: String, frees: i64) -> Halt {
        let now = self.ctx.clock().now_ms();
        let _ = posts::set_error(
            &self.app.db,
            &target.workspace_id,
            &target.id,
            Some("publishing_limit"),
            Some(&message),
            true,
            now,
        )
        .await;
        let until = Duration::from_millis(u64::try_from(frees - now).unwrap_or(0));
        halt::wait(
            message,
            until.min(LIMIT_RECHECK).max(Duration::from_secs(1)),
        )
    }
}

async fn publish(app: &App, ctx: &JobContext, r: &TargetRef) -> Result<(), Halt> {
    let target = halt::due(app, r).await?;
    let account = accounts::get(&app.db, &r.workspace_id, &target.account_id)
        .await?
        .ok_or_else(|| {
            Halt::Fail(error(
                "account_disconnected",
                "The Threads account was disconnected before the post was published.",
                ErrorKind::Permanent,
            ))
        })?;
    let post = posts::get(&app.db, &r.workspace_id, &target.post_id)
        .await?
        .ok_or(Halt::Stop)?;
    let options: ThreadsPost = serde_json::from_str(target.options_or(&post)).map_err(|e| {
        Halt::Fail(error(
            "invalid_options",
            format!("The stored post cannot be read: {e}"),
            ErrorKind::Permanent,
        ))
    })?;
    let client = app
        .providers
        .threads()
        .map_err(|e| retry(e.to_string(), Some(Duration::from_secs(60)), None))?
        .clone();
    let mut run = Run {
        app,
        ctx,
        account,
        post,
        options,
        client,
    };
    let generation = target.init_generation;

    // 1. The container (carousel items first).
    let container_id = match &target.publish_id {
        Some(id) => id.clone(),
        None => {
            advance(
                app,
                &r.workspace_id,
                &r.target_id,
                TargetState::Uploading,
                None,
            )
            .await?;
            let id = create_container(&run, &target).await?;
            let stored = posts::set_publish(
                &app.db,
                &r.workspace_id,
                &r.target_id,
                generation,
                &id,
                None,
                None,
                ctx.clock().now_ms(),
            )
            .await?;
            if !stored {
                // Another generation started meanwhile: this container expires unpublished.
                return Ok(());
            }
            advance(
                app,
                &r.workspace_id,
                &r.target_id,
                TargetState::Processing,
                None,
            )
            .await?;
            id
        }
    };

    // 2. Wait until the container is FINISHED (or already PUBLISHED).
    let status = run.status(&container_id).await?;
    let now = ctx.clock().now_ms();
    posts::set_provider_status(
        &app.db,
        &r.workspace_id,
        &r.target_id,
        status.status.as_str(),
        None,
        now,
    )
    .await?;
    let published_already = match &status.status {
        ContainerState::Finished => false,
        ContainerState::Published => true,
        ContainerState::InProgress | ContainerState::Unknown(_) => {
            return Err(halt::wait(
                "Threads is still processing the media",
                backoff(ctx.attempt()),
            ));
        }
        ContainerState::Error | ContainerState::Expired => {
            return Err(run.container_failed(&target, &status, None).await);
        }
    };

    // 3. The limit, then threads_publish as a durable step. What may wait (a token refresh,
    //    the limit) runs before the intent, so the intent is written right before the call.
    let step_name = format!("publish-{generation}");
    let mut limit_checked = false;
    if !published_already && ctx.peek_step(&step_name).await?.is_absent() {
        run.account = tokens::ready(app, &run.account).await.map_err(halt_for)?;
        let limit = publishing_limit(app, &run.account)
            .await
            .map_err(halt_for)?;
        if let Some((message, frees)) = limit_refusal(&limit, now) {
            return Err(run.limit_wait(&target, message, frees).await);
        }
        limit_checked = true;
    }
    let media_id: Option<String> = match ctx.step(&step_name).await? {
        StepState::Done(outcome) => outcome
            .get("media_id")
            .and_then(|v| v.as_str())
            .map(str::to_string),
        StepState::OutcomeUnknown(intent) | StepState::New(intent) if published_already => {
            intent.record(&json!({"reconciled": true})).await?;
            tracing::info!(target_id = %target.id, "Threads container already PUBLISHED: the earlier threads_publish went through");
            None
        }
        StepState::OutcomeUnknown(intent) | StepState::New(intent) => {
            // The container is FINISHED, not published: publishing now cannot post twice.
            if !limit_checked {
                let limit = publishing_limit(app, &run.account)
                    .await
                    .map_err(halt_for)?;
                if let Some((message, frees)) = limit_refusal(&limit, now) {
                    return Err(run.limit_wait(&target, message, frees).await);
                }
            }
            let (client, user, id) = (&run.client, run.user(), container_id.as_str());
            match run
                .call(|token| async move { client.publish(&token, user, id).await })
                .await
            {
                Ok(media_id) => {
                    intent.record(&json!({"media_id": media_id})).await?;
                    Some(media_id)
                }
                Err(err) => {
                    // Whatever the error, the container's status says whether it went out.
                    if let Ok(after) = run.status(&container_id).await
                        && after.status == ContainerState::Published
                    {
                        intent.record(&json!({"reconciled": true})).await?;
                        tracing::info!(target_id = %target.id, "threads_publish answered with an error but the container is PUBLISHED");
                        None
                    } else {
                        return Err(match err {
                            // Not visible yet: publish again shortly (the intent stays open;
                            // the next run reads the status before calling).
                            TokenError::Provider(e)
                                if e.subcode == Some(MEDIA_NOT_FOUND_SUBCODE) =>
                            {
                                retry(e.message.clone(), Some(NOT_VISIBLE_WAIT), Some(e))
                            }
                            TokenError::Provider(e) if is_publishing_limit(&e) => {
                                let frees = now + 86_400_000;
                                return Err(run.limit_wait(&target, e.message, frees).await);
                            }
                            TokenError::Provider(e)
                                if matches!(e.kind, ErrorKind::Permanent | ErrorKind::Reauth) =>
                            {
                                intent.record(&json!({"failed": e.message})).await?;
                                Halt::Fail(e)
                            }
                            other @ (TokenError::Provider(_)
                            | TokenError::NeedsReauth(_)
                            | TokenError::RefreshBusy
                            | TokenError::NotConfigured(_)
                            | TokenError::Vault(_)
                            | TokenError::Store(_)) => halt_for(other),
                        });
                    }
                }
            }
        }
    };

    // 4. The post's id and permalink. A reconciled publish reads the newest post of the
    //    account whose container it was not told; its permalink is then looked up by id later.
    let permalink = match &media_id {
        Some(id) => {
            let client = &run.client;
            let id = id.as_str();
            run.call(|token| async move { client.media(&token, id).await })
                .await
                .ok()
                .and_then(|m| m.permalink)
        }
        None => None,
    };
    let ids: Vec<String> = media_id.iter().cloned().collect();
    crate::pipeline::record_provider_status(app, &target, "PUBLISHED", Some(&ids)).await?;
    th_store::upsert(
        &app.db,
        &ThreadsMedia {
            target_id: target.id.clone(),
            workspace_id: target.workspace_id.clone(),
            media_id: media_id.clone(),
            permalink,
            media_type: run.options.media_type.as_str().into(),
            created_at: ctx.clock().now_ms(),
        },
    )
    .await?;
    posts::clear_error(&app.db, &r.workspace_id, &r.target_id, ctx.clock().now_ms()).await?;
    advance(
        app,
        &r.workspace_id,
        &r.target_id,
        TargetState::Published,
        None,
    )
    .await?;
    tracing::info!(target_id = %target.id, media_id = ?media_id, "Threads post published");
    Ok(())
}

fn text_of(post: &ThreadsPost) -> Option<String> {
    (!post.text.is_empty()).then(|| post.text.clone())
}

/// Creates the container to publish (a carousel's items first).
async fn create_container(run: &Run<'_>, target: &Target) -> Result<String, Halt> {
    let o = &run.options;
    let container = match o.media_type {
        MediaType::Text => Container::Text {
            text: o.text.clone(),
            link_attachment: o.link_attachment.clone(),
        },
        MediaType::Image | MediaType::Video => {
            let first = o.items.first().ok_or(Halt::Stop)?;
            match run.source(first).await? {
                MediaSource::Image(image_url) => Container::Image {
                    image_url,
                    text: text_of(o),
                    alt_text: o.alt_text.clone(),
                },
                MediaSource::Video(video_url) => Container::Video {
                    video_url,
                    text: text_of(o),
                    alt_text: o.alt_text.clone(),
                },
            }
        }
        MediaType::Carousel => Container::Carousel {
            children: carousel_items(run, target).await?,
            text: text_of(o),
        },
    };
    run.create(&container).await
}

/// Carousel items: created once per generation (a durable step), then awaited until each is
/// FINISHED.
async fn carousel_items(run: &Run<'_>, target: &Target) -> Result<Vec<String>, Halt> {
    let name = format!("children-{}", target.init_generation);
    let children: Vec<String> = match run.ctx.step(&name).await? {
        StepState::Done(outcome) => {
            serde_json::from_value(outcome["children"].clone()).unwrap_or_default()
        }
        // Creating containers twice is harmless (unpublished ones expire).
        StepState::New(intent) | StepState::OutcomeUnknown(intent) => {
            let mut ids = Vec::with_capacity(run.options.items.len());
            for item in &run.options.items {
                let source = run.source(item).await?;
                let id = run
                    .create(&Container::CarouselItem {
                        source,
                        alt_text: run.options.alt_text.clone(),
                    })
                    .await?;
                ids.push(id);
            }
            intent.record(&json!({"children": ids})).await?;
            ids
        }
    };
    for (i, child) in children.iter().enumerate() {
        let status = run.status(child).await?;
        match status.status {
            ContainerState::Finished => {}
            ContainerState::Error | ContainerState::Expired => {
                return Err(run.container_failed(target, &status, Some(i)).await);
            }
            ContainerState::InProgress | ContainerState::Published | ContainerState::Unknown(_) => {
                return Err(halt::wait(
                    format!(
                        "Threads is still processing media {} of the carousel",
                        i + 1
                    ),
                    backoff(run.ctx.attempt()),
                ));
            }
        }
    }
    Ok(children)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_a_minute() {
        assert_eq!(backoff(1), Duration::from_secs(2));
        assert_eq!(backoff(40), Duration::from_secs(60));
    }
}
