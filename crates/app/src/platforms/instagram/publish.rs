//! The `instagram.publish` job: single images, reels (cover, share to feed), carousels (2–10
//! images and videos) and stories, checked before by [`super::prepare`] and admitted under
//! [`super::limits`]. Media comes as a public URL, or as a stored upload that Meta fetches from
//! a signed, expiring URL of tidepost's own ([`super::media_url`]), probed again first.
//!
//! - `instagram.publish` creates the containers (carousel children first,
//!   in a durable step, then waits until they are `FINISHED`, then the parent), polls the
//!   container with backoff until `FINISHED` (`ERROR` / `EXPIRED` are reported with the reason
//!   and which media of which post failed; a media Meta could not fetch is retried with new
//!   containers), checks `content_publishing_limit`, and runs `media_publish` as a durable step:
//!   when its answer is lost or is an error (a rate limit, a timeout), the container's status
//!   decides — `PUBLISHED` means it went out, so nothing is sent twice and a live post is never
//!   marked failed. The media id and permalink are recorded as strings.

use std::time::Duration;

use serde_json::json;
use tidepost_domain::Platform;
use tidepost_domain::publish::TargetState;
use tidepost_jobs::{JobContext, JobError, NewJob, Registry, RetryPolicy, StepState, handler_fn};
use tidepost_providers::meta::{
    Container, ContainerOptions, ContainerState, ContainerStatus, MediaSource, UserTag,
};
use tidepost_providers::{ErrorKind, ProviderError};
use tidepost_store::accounts::{self, Account};
use tidepost_store::instagram::{self as ig_store, InstagramMedia};
use tidepost_store::media;
use tidepost_store::posts::{self, Post, Target};

use super::limits::{limit_refusal, publishing_limit};
use super::options::{InstagramPost, MediaType};
use super::{host_of, media_url};
use crate::App;
use crate::pipeline::halt::{self, Halt, retry};
use crate::pipeline::media::{Item, ItemKind};
use crate::pipeline::{TargetRef, advance};
use crate::tokens::{self, TokenError};

pub const PUBLISH_JOB: &str = "instagram.publish";
/// Runs of one publish job (each container poll is one).
pub const MAX_ATTEMPTS: u32 = 60;
/// Runs that try to have Meta fetch a media before the failure is final.
const FETCH_ATTEMPTS: i64 = 4;
/// New containers after a media fetch failure before giving up.
const MAX_GENERATIONS: i64 = 3;

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

// ---- the job ----

fn error(code: &str, message: impl Into<String>, kind: ErrorKind) -> ProviderError {
    halt::error_on(Platform::Instagram, code, message, kind)
}

fn halt_for(err: TokenError) -> Halt {
    halt::halt_for(Platform::Instagram, err, |message| {
        format!("The Instagram account must be connected again: {message}")
    })
}

/// Polling backoff: 2 s, 4 s, 8 s … up to a minute (Meta suggests about once a minute).
fn backoff(attempt: i64) -> Duration {
    let exp = u32::try_from(attempt.clamp(1, 6)).unwrap_or(6);
    Duration::from_secs((1u64 << exp).min(60))
}

pub async fn run(app: &App, ctx: &JobContext, r: &TargetRef) -> Result<(), JobError> {
    let outcome = publish(app, ctx, r).await;
    halt::settle(app, ctx, r, Platform::Instagram, MAX_ATTEMPTS, outcome).await
}

/// Everything one run needs.
struct Run<'a> {
    app: &'a App,
    ctx: &'a JobContext,
    account: Account,
    post: Post,
    options: InstagramPost,
    client: tidepost_providers::meta::MetaClient,
}

impl Run<'_> {
    async fn call<T, F, Fut>(&self, f: F) -> Result<T, TokenError>
    where
        F: Fn(secrecy::SecretString) -> Fut,
        Fut: std::future::Future<Output = Result<T, ProviderError>>,
    {
        tokens::with_token(self.app, &self.account, f).await
    }

    fn host(&self) -> tidepost_providers::meta::GraphHost {
        host_of(&self.account)
    }

    fn ig(&self) -> &str {
        &self.account.provider_user_id
    }

    /// The URL Meta fetches item `i` from.
    async fn source(&self, item: &Item) -> Result<(ItemKind, String), Halt> {
        let kind = item.kind.unwrap_or(ItemKind::Image);
        if let Some(url) = &item.url {
            return Ok((kind, url.clone()));
        }
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
        // Probed again before Meta is sent to fetch it: a file that became unreadable since the
        // post was accepted fails the target with the reason.
        crate::pipeline::media::check_before_send(self.app, &stored)
            .await
            .map_err(|v| Halt::Fail(error(v.rule, v.message, ErrorKind::Permanent)))?;
        Ok((kind, media_url::signed_url(self.app, &stored)))
    }

    /// Waits when Meta last reported this account's (or the app's) call budget nearly spent:
    /// continuing to call would extend the block.
    fn spread_calls(&self) -> Option<Halt> {
        let (percent, wait) = self.app.providers.meta_usage().wait_for(self.ig())?;
        Some(halt::wait(
            format!(
                "Meta reports {percent}% of the call budget used; waiting before the next call"
            ),
            wait,
        ))
    }

    async fn create(
        &self,
        container: &Container,
        options: &ContainerOptions,
    ) -> Result<String, Halt> {
        if let Some(wait) = self.spread_calls() {
            return Err(wait);
        }
        let (client, host, ig) = (&self.client, self.host(), self.ig());
        self.call(|token| async move {
            client
                .create_container_with(host, &token, ig, container, options)
                .await
        })
        .await
        .map_err(halt_for)
    }

    async fn status(&self, id: &str) -> Result<ContainerStatus, Halt> {
        let (client, host) = (&self.client, self.host());
        self.call(|token| async move { client.container_status(host, &token, id).await })
            .await
            .map_err(halt_for)
    }

    /// Names the media and the post in a failure about the media.
    fn describe(&self, halt: Halt, item: Option<usize>) -> Halt {
        let which = match (item, self.options.items.len()) {
            (Some(i), _) => format!("media {} of {}", i + 1, self.options.items.len()),
            (None, 1) => "the media".to_string(),
            (None, _) => "the carousel".to_string(),
        };
        let name = |e: &mut ProviderError| {
            let fetch = matches!(e.subcode, Some(2207003 | 2207052)) || e.code == "9004";
            e.message = if fetch {
                format!(
                    "Meta could not fetch {which} of post {} from its URL (it downloads the file itself; check the URL is public and reachable): {}",
                    self.post.id, e.message
                )
            } else {
                format!("{which} of post {}: {}", self.post.id, e.message)
            };
        };
        match halt {
            Halt::Fail(mut e) => {
                name(&mut e);
                Halt::Fail(e)
            }
            Halt::Retry {
                message,
                after,
                error: Some(mut e),
            } => {
                name(&mut e);
                // Media Meta cannot fetch is tried a few times, then reported.
                let fetch = matches!(e.subcode, Some(2207003 | 2207052)) || e.code == "9004";
                if fetch && self.ctx.attempt() >= FETCH_ATTEMPTS {
                    e.message = format!("{} (tried {} times)", e.message, self.ctx.attempt());
                    return Halt::Fail(e);
                }
                Halt::Retry {
                    message: format!("{message} ({which})"),
                    after,
                    error: Some(e),
                }
            }
            other @ (Halt::Retry { .. } | Halt::Wait { .. } | Halt::Job(_) | Halt::Stop) => other,
        }
    }

    /// A container in `ERROR` or `EXPIRED`: new containers when worth it, else fail.
    async fn container_failed(
        &self,
        target: &Target,
        status: &ContainerStatus,
        item: Option<usize>,
    ) -> Halt {
        let Some(err) = status.failure() else {
            return retry("unexpected container status", None, None);
        };
        let expired = status.status_code == ContainerState::Expired;
        let retryable =
            err.kind == ErrorKind::Retryable && target.init_generation + 1 < MAX_GENERATIONS;
        let halt = if retryable {
            retry(
                err.message.clone(),
                Some(Duration::from_secs(30)),
                Some(err),
            )
        } else {
            let mut err = err;
            if expired {
                err.message = format!(
                    "{} Use Retry to publish it with new containers.",
                    err.message
                );
            }
            Halt::Fail(err)
        };
        let halt = self.describe(halt, item);
        if let Halt::Retry { error: Some(e), .. } = &halt {
            // Show the reason while new containers are made.
            let now = self.ctx.clock().now_ms();
            let _ = posts::set_error(
                &self.app.db,
                &target.workspace_id,
                &target.id,
                Some(&e.code),
                Some(&e.message),
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
        }
        halt
    }
}

async fn publish(app: &App, ctx: &JobContext, r: &TargetRef) -> Result<(), Halt> {
    let target = halt::due(app, r).await?;
    let account = accounts::get(&app.db, &r.workspace_id, &target.account_id)
        .await?
        .ok_or_else(|| {
            Halt::Fail(error(
                "account_disconnected",
                "The Instagram account was disconnected before the post was published.",
                ErrorKind::Permanent,
            ))
        })?;
    let post = posts::get(&app.db, &r.workspace_id, &target.post_id)
        .await?
        .ok_or(Halt::Stop)?;
    let options: InstagramPost = serde_json::from_str(target.options_or(&post)).map_err(|e| {
        Halt::Fail(error(
            "invalid_options",
            format!("The stored post cannot be read: {e}"),
            ErrorKind::Permanent,
        ))
    })?;
    let client = app
        .providers
        .meta()
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

    // 1. Containers (carousel children first).
    let container_id = match &target.publish_id {
        Some(id) => id.clone(),
        None => {
            // The target is this run's from here on: an edit committed since it was read wins,
            // and this run reads the post again.
            halt::claim(app, &target).await?;
            advance(
                app,
                &r.workspace_id,
                &r.target_id,
                TargetState::Uploading,
                None,
            )
            .await?;
            let id = create_containers(&run, &target).await?;
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
                // A retry started another generation while this run was stalled: its
                // container is left unused (it expires at Meta unpublished).
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
        container_state(&status.status_code),
        None,
        now,
    )
    .await?;
    let published_already = match &status.status_code {
        ContainerState::Finished => false,
        ContainerState::Published => true,
        ContainerState::InProgress | ContainerState::Unknown(_) => {
            return Err(halt::wait(
                "Instagram is still processing the media",
                backoff(ctx.attempt()),
            ));
        }
        ContainerState::Error | ContainerState::Expired => {
            return Err(run.container_failed(&target, &status, None).await);
        }
    };

    // 3. media_publish as a durable step: its answer decides only together with the
    //    container's status. What may wait or be refused (a token refresh, the publishing
    //    limit, itself a Graph call) runs before the intent when none is recorded yet, so the
    //    intent is written right before media_publish.
    let step_name = format!("publish-{generation}");
    let mut limit_checked = false;
    if !published_already && ctx.peek_step(&step_name).await?.is_absent() {
        run.account = tokens::ready(app, &run.account).await.map_err(halt_for)?;
        if let Some(message) = limit_reached(&run, now).await? {
            posts::restart_publish(&app.db, &r.workspace_id, &r.target_id, generation, now).await?;
            return Err(Halt::Fail(error(
                "publishing_limit",
                message,
                ErrorKind::RateLimited,
            )));
        }
        limit_checked = true;
    }
    let step = ctx.step(&step_name).await?;
    let media_id: Option<String> = match step {
        StepState::Done(outcome) => outcome
            .get("media_id")
            .and_then(|v| v.as_str())
            .map(str::to_string),
        StepState::OutcomeUnknown(intent) | StepState::New(intent) if published_already => {
            intent.record(&json!({"reconciled": true})).await?;
            tracing::info!(target_id = %target.id, "container already PUBLISHED: the earlier media_publish went through");
            None
        }
        StepState::OutcomeUnknown(intent) | StepState::New(intent) => {
            // The container is FINISHED (not published): publishing now cannot post twice.
            let refused = if limit_checked {
                None
            } else {
                limit_reached(&run, now).await?
            };
            if let Some(message) = refused {
                intent
                    .record(&json!({"not_sent": "publishing limit"}))
                    .await?;
                posts::restart_publish(&app.db, &r.workspace_id, &r.target_id, generation, now)
                    .await?;
                return Err(Halt::Fail(error(
                    "publishing_limit",
                    message,
                    ErrorKind::RateLimited,
                )));
            }
            let (client, host, ig) = (&run.client, run.host(), run.ig());
            let id = container_id.as_str();
            match run
                .call(|token| async move { client.publish(host, &token, ig, id).await })
                .await
            {
                Ok(media_id) => {
                    intent.record(&json!({"media_id": media_id})).await?;
                    Some(media_id)
                }
                Err(err) => {
                    // Whatever the error, the container's status says whether it went out.
                    if let Ok(after) = run.status(&container_id).await
                        && after.status_code == ContainerState::Published
                    {
                        intent.record(&json!({"reconciled": true})).await?;
                        tracing::info!(target_id = %target.id, "media_publish answered with an error but the container is PUBLISHED");
                        None
                    } else {
                        return Err(match err {
                            TokenError::Provider(e) if e.subcode == Some(2207042) => {
                                intent
                                    .record(&json!({"not_sent": "publishing limit"}))
                                    .await?;
                                posts::restart_publish(
                                    &app.db,
                                    &r.workspace_id,
                                    &r.target_id,
                                    generation,
                                    now,
                                )
                                .await?;
                                Halt::Fail(e)
                            }
                            TokenError::Provider(e)
                                if matches!(e.kind, ErrorKind::Permanent | ErrorKind::Reauth) =>
                            {
                                intent.record(&json!({"failed": e.message})).await?;
                                Halt::Fail(e)
                            }
                            // Rate limits, timeouts, lost answers: the intent stays open and the
                            // next run checks the container before anything is sent again.
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

    // 4. The media id and permalink.
    let permalink = match &media_id {
        Some(id) => {
            let (client, host) = (&run.client, run.host());
            let id = id.as_str();
            run.call(|token| async move { client.media(host, &token, id).await })
                .await
                .ok()
                .and_then(|m| m.permalink)
        }
        None => None,
    };
    let ids: Vec<String> = media_id.iter().cloned().collect();
    crate::pipeline::record_provider_status(app, &target, "PUBLISHED", Some(&ids)).await?;
    ig_store::upsert(
        &app.db,
        &InstagramMedia {
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
    // The first comment is its own step, enqueued before the target says published (a run
    // that ends in between enqueues it again, which is a no-op).
    if run.options.first_comment.is_some() {
        super::first_comment::enqueue(app, &target, ctx.clock().now_ms())
            .await
            .map_err(Halt::Job)?;
    }
    advance(
        app,
        &r.workspace_id,
        &r.target_id,
        TargetState::Published,
        None,
    )
    .await?;
    tracing::info!(target_id = %target.id, media_id = ?media_id, "Instagram post published");
    Ok(())
}

/// The refusal message when the account's publishing limit leaves no post now.
async fn limit_reached(run: &Run<'_>, now: i64) -> Result<Option<String>, Halt> {
    let limit = publishing_limit(run.app, &run.account)
        .await
        .map_err(halt_for)?;
    Ok(limit_refusal(&limit, now).map(|(message, _)| message))
}

fn container_state(state: &ContainerState) -> &str {
    match state {
        ContainerState::InProgress => "IN_PROGRESS",
        ContainerState::Finished => "FINISHED",
        ContainerState::Error => "ERROR",
        ContainerState::Expired => "EXPIRED",
        ContainerState::Published => "PUBLISHED",
        ContainerState::Unknown(s) => s.as_str(),
    }
}

/// The people tagged on the post's media `item` (for a single media, every tag).
fn tags_on(post: &InstagramPost, item: usize) -> Vec<UserTag> {
    post.user_tags
        .iter()
        .filter(|t| t.item.unwrap_or(0) == item)
        .map(|t| UserTag {
            username: t.username.clone(),
            x: t.x,
            y: t.y,
        })
        .collect()
}

/// The optional parameters of the container that is published (a carousel's tags go on its
/// items instead).
fn container_options(post: &InstagramPost) -> ContainerOptions {
    let carousel = post.media_type == MediaType::Carousel;
    ContainerOptions {
        collaborators: post.collaborators.clone(),
        user_tags: if carousel {
            Vec::new()
        } else {
            tags_on(post, 0)
        },
        location_id: post.location_id.clone(),
        alt_text: post.alt_text.clone(),
        thumb_offset: post.thumb_offset,
        audio_name: post.audio_name.clone(),
        trial_graduation: post
            .trial_params
            .map(|t| t.graduation_strategy.as_str().to_string()),
    }
}

/// Creates the container(s) and returns the one to publish.
async fn create_containers(run: &Run<'_>, target: &Target) -> Result<String, Halt> {
    let o = &run.options;
    let caption = (!o.caption.is_empty()).then(|| o.caption.clone());
    let first = o.items.first().ok_or(Halt::Stop)?;
    let single = o.media_type != MediaType::Carousel;
    let container = match o.media_type {
        MediaType::Image => Container::Image {
            image_url: run.source(first).await?.1,
            caption,
        },
        MediaType::Reel => Container::Reel {
            video_url: run.source(first).await?.1,
            caption,
            cover_url: o.cover_url.clone(),
            share_to_feed: o.share_to_feed,
        },
        MediaType::Story => {
            let (kind, url) = run.source(first).await?;
            Container::Story(match kind {
                ItemKind::Image => MediaSource::Image(url),
                ItemKind::Video => MediaSource::Video(url),
            })
        }
        MediaType::Carousel => {
            let children = carousel_children(run, target).await?;
            Container::Carousel { children, caption }
        }
    };
    let options = match o.media_type {
        // Stories take only their media.
        MediaType::Story => ContainerOptions::default(),
        MediaType::Image | MediaType::Reel | MediaType::Carousel => container_options(o),
    };
    run.create(&container, &options)
        .await
        .map_err(|h| run.describe(h, if single { Some(0) } else { None }))
}

/// Carousel children: created once per generation (a durable step), then awaited until each
/// is FINISHED.
async fn carousel_children(run: &Run<'_>, target: &Target) -> Result<Vec<String>, Halt> {
    let name = format!("children-{}", target.init_generation);
    let children: Vec<String> = match run.ctx.step(&name).await? {
        StepState::Done(outcome) => {
            serde_json::from_value(outcome["children"].clone()).unwrap_or_default()
        }
        // Creating containers twice is harmless (unpublished ones expire).
        StepState::New(intent) | StepState::OutcomeUnknown(intent) => {
            let mut ids = Vec::with_capacity(run.options.items.len());
            for (i, item) in run.options.items.iter().enumerate() {
                let (kind, url) = run.source(item).await?;
                let source = match kind {
                    ItemKind::Image => MediaSource::Image(url),
                    ItemKind::Video => MediaSource::Video(url),
                };
                let options = ContainerOptions {
                    user_tags: tags_on(&run.options, i),
                    ..ContainerOptions::default()
                };
                let id = run
                    .create(&Container::CarouselItem(source), &options)
                    .await
                    .map_err(|h| run.describe(h, Some(i)))?;
                ids.push(id);
            }
            intent.record(&json!({"children": ids})).await?;
            ids
        }
    };
    for (i, child) in children.iter().enumerate() {
        let status = run.status(child).await?;
        match status.status_code {
            ContainerState::Finished => {}
            ContainerState::Error | ContainerState::Expired => {
                return Err(run.container_failed(target, &status, Some(i)).await);
            }
            ContainerState::InProgress | ContainerState::Published | ContainerState::Unknown(_) => {
                return Err(halt::wait(
                    format!(
                        "Instagram is still processing media {} of the carousel",
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
        assert_eq!(backoff(3), Duration::from_secs(8));
        assert_eq!(backoff(40), Duration::from_secs(60));
    }
}
