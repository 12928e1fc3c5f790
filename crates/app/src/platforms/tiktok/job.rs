//! `tiktok.publish`: quota reservation, the posting rate limit, init as a durable step, then
//! the chunk uploads, resumable; finally hands over to `tiktok.poll_status`. An init whose
//! answer was lost before its publish id was stored is never sent again: the target fails as
//! `init_outcome_unknown` and `tiktok.reconcile` takes over (see [`super::reconcile`]).

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use tidepost_domain::Platform;
use tidepost_domain::publish::TargetState;
use tidepost_jobs::{JobContext, JobError, NewJob, StepState};
use tidepost_providers::tiktok::{
    ChunkPlan, InitPhoto, InitResult, InitVideo, PhotoMode, PhotoPostInfo, PostInfo, PostMode,
    PrivacyLevel, TikTokClient, VideoSource,
};
use tidepost_providers::{ErrorKind, ProviderError};
use tidepost_store::accounts::{self, Account};
use tidepost_store::limits::Admission;
use tidepost_store::media;
use tidepost_store::posts::{self, Post, Target};
use tidepost_vault::Aad;

use super::options::PhotoSource;
use super::{Mode, POLL_JOB, PostOptions, limits, local_error};
use crate::App;
use crate::pipeline::halt::{self, Halt, load, retry};
use crate::pipeline::{TargetRef, advance};
use crate::tokens::{self, TokenError};

/// Attempts of one publish job (rate-limit waits count too).
pub const MAX_ATTEMPTS: u32 = 40;
/// TikTok's upload URLs live an hour; stop using one a little before.
const UPLOAD_URL_TTL_MS: i64 = 55 * 60_000;

/// What a token-wrapped call's failure means for the publish.
fn halt_for(err: TokenError) -> Halt {
    halt::halt_for(Platform::Tiktok, err, |message| message)
}

fn wait_until(until: i64, now: i64, what: &str) -> Halt {
    let after = Duration::from_millis(u64::try_from(until - now).unwrap_or(0).max(1));
    halt::wait(
        format!(
            "waiting {} s for the next slot of {what}",
            after.as_secs_f64().ceil()
        ),
        after,
    )
}

pub async fn run(app: &App, ctx: &JobContext, r: &TargetRef) -> Result<(), JobError> {
    let outcome = publish(app, ctx, r).await;
    halt::settle(app, ctx, r, Platform::Tiktok, MAX_ATTEMPTS, outcome).await
}

async fn publish(app: &App, ctx: &JobContext, r: &TargetRef) -> Result<(), Halt> {
    let mut target = halt::due(app, r).await?;
    let account = accounts::get(&app.db, &r.workspace_id, &target.account_id)
        .await?
        .ok_or_else(|| {
            Halt::Fail(local_error(
                "account_disconnected",
                "The TikTok account was disconnected before the post was published.",
                ErrorKind::Permanent,
            ))
        })?;
    let post = posts::get(&app.db, &r.workspace_id, &target.post_id)
        .await?
        .ok_or(Halt::Stop)?;
    let options: PostOptions = serde_json::from_str(target.options_or(&post)).unwrap_or_default();
    let client = app
        .tiktok()
        .map_err(|e| retry(e.to_string(), Some(Duration::from_secs(60)), None))?
        .clone();

    for _ in 0..3 {
        if target.publish_id.is_none() {
            init(app, ctx, &client, &account, &post, &options, &target).await?;
            target = load(app, r).await?;
        }
        if target.source == "file_upload" && target.chunks_acked < target.chunks_total {
            match upload(app, ctx, &client, &post, &target).await {
                Err(Halt::Retry { after: Some(d), .. }) if d.is_zero() => {
                    // The upload URL expired: a new publish starts right away.
                    target = load(app, r).await?;
                    continue;
                }
                other => other?,
            }
        }
        break;
    }
    if target.publish_id.is_none() {
        return Err(retry("the publish did not start; trying again", None, None));
    }
    advance(
        app,
        &r.workspace_id,
        &r.target_id,
        TargetState::Processing,
        None,
    )
    .await?;
    let now = ctx.clock().now_ms();
    app.queue
        .enqueue(
            NewJob::new(POLL_JOB, r)
                .workspace(&r.workspace_id)
                .idempotency_key(format!(
                    "{POLL_JOB}:{}:{}",
                    target.id, target.init_generation
                ))
                .run_at(now),
        )
        .await
        .map_err(JobError::from)?;
    Ok(())
}

fn upload_url_aad(target_id: &str) -> Aad<'_> {
    Aad::new("post_targets", target_id, "upload_url")
}

/// Runs init as durable step `init-<generation>` and stores its `publish_id` (and sealed
/// upload URL) before recording the step's outcome.
///
/// Everything that may wait or fail before the request (a usable token, the quota reservation,
/// the posting slot) happens before the step's intent is recorded, so the intent is written
/// immediately before the request: a crash while waiting leaves no intent, and the next run
/// prepares again instead of failing the post as "outcome unknown". A run that took a slot and
/// then stopped before the intent costs its slot (the next run takes another): that only slows.
/// The request is never made without a slot this run took.
async fn init(
    app: &App,
    ctx: &JobContext,
    client: &TikTokClient,
    account: &Account,
    post: &Post,
    options: &PostOptions,
    target: &Target,
) -> Result<(), Halt> {
    let mode = if target.mode == "inbox" {
        Mode::Inbox
    } else {
        Mode::Direct
    };
    let step_name = format!("init-{}", target.init_generation);
    let now = ctx.clock().now_ms();
    let plan = if target.source == "file_upload" {
        Some(
            ChunkPlan::for_size(u64::try_from(target.bytes_total).unwrap_or(0)).map_err(|e| {
                Halt::Fail(local_error(
                    "media_file",
                    format!("The video cannot be uploaded: {e}."),
                    ErrorKind::Permanent,
                ))
            })?,
        )
    } else {
        None
    };
    let prepare = Prepare {
        app,
        ctx,
        account,
        target,
        mode,
        plan,
    };

    // Prepared only when no run has recorded the intent: a recorded one is done or unknown,
    // and neither sends init again.
    let prepared = if ctx.peek_step(&step_name).await?.is_absent() {
        if target.source == "file_upload" {
            check_media(app, post, target).await?;
        }
        if post.kind == "photo" {
            check_photos(app, options, target).await?;
        }
        match prepare.run().await {
            Ok(ready) => Some(ready),
            Err(halt) => {
                // No intent was recorded; the reservation is released with a new generation
                // so that a waiting post holds no quota.
                posts::restart_publish(
                    &app.db,
                    &target.workspace_id,
                    &target.id,
                    target.init_generation,
                    now,
                )
                .await?;
                return Err(halt);
            }
        }
    } else {
        None
    };

    // The target is this run's from here on (an edit committed since it was read wins, and
    // this run reads the post again); the quota reservation is released when it is not.
    if prepared.is_some()
        && let Err(halt) = halt::claim(app, target).await
    {
        posts::restart_publish(
            &app.db,
            &target.workspace_id,
            &target.id,
            target.init_generation,
            now,
        )
        .await?;
        return Err(halt);
    }
    let step = ctx.step(&step_name).await?;
    let intent = match step {
        StepState::Done(outcome) => {
            // The outcome is recorded after the publish id is stored, so a done step without a
            // stored publish id is a failed init: start the next generation.
            if outcome.get("publish_id").is_none() {
                posts::restart_publish(
                    &app.db,
                    &target.workspace_id,
                    &target.id,
                    target.init_generation,
                    now,
                )
                .await?;
            }
            return Ok(());
        }
        StepState::OutcomeUnknown(intent) => {
            return reconcile(app, ctx, client, account, options, target, intent).await;
        }
        StepState::New(intent) => intent,
    };
    let ready = match prepared {
        Some(ready) => ready,
        // The peek saw a step that `step` then did not find: it cannot happen while steps are
        // never deleted, but the call still needs its slot, so prepare now, after the intent,
        // and release the intent if the gate refuses.
        None => match prepare.run().await {
            Ok(ready) => ready,
            Err(halt) => {
                intent.record(&json!({"not_sent": true})).await?;
                posts::restart_publish(
                    &app.db,
                    &target.workspace_id,
                    &target.id,
                    target.init_generation,
                    now,
                )
                .await?;
                return Err(halt);
            }
        },
    };

    let result = call_init(app, client, &ready, post, options, target, mode, plan).await;
    match result {
        Ok(init) => {
            let sealed = init.upload_url.as_ref().map(|u| {
                app.keyring
                    .encrypt_str(u.expose_secret(), &upload_url_aad(&target.id))
            });
            let expires = sealed.as_ref().map(|_| now + UPLOAD_URL_TTL_MS);
            let stored = posts::set_publish(
                &app.db,
                &target.workspace_id,
                &target.id,
                target.init_generation,
                &init.publish_id,
                sealed.as_deref(),
                expires,
                now,
            )
            .await?;
            if !stored {
                // This run stalled past its lease; the target was settled and sent again by
                // a person meanwhile, under a new generation that this answer must not touch.
                intent
                    .record(&json!({"superseded": true, "late_publish_id": init.publish_id}))
                    .await?;
                tracing::warn!(target_id = %target.id, publish_id = %init.publish_id,
                    "a late TikTok publish answer for an earlier attempt was not stored");
                return Ok(());
            }
            intent
                .record(&json!({"publish_id": init.publish_id}))
                .await?;
            tracing::info!(target_id = %target.id, publish_id = %init.publish_id, "TikTok publish started");
            Ok(())
        }
        Err(TokenError::Provider(e)) if e.kind == ErrorKind::OutcomeUnknown => {
            // The intent stays without an outcome: the next run reconciles.
            Err(retry(e.message.clone(), None, Some(e)))
        }
        Err(err) => {
            intent.record(&json!({"failed": err.to_string()})).await?;
            posts::restart_publish(
                &app.db,
                &target.workspace_id,
                &target.id,
                target.init_generation,
                now,
            )
            .await?;
            Err(halt_for(err))
        }
    }
}

/// What init needs before its intent is recorded.
struct Prepare<'a> {
    app: &'a App,
    ctx: &'a JobContext,
    account: &'a Account,
    target: &'a Target,
    mode: Mode,
    plan: Option<ChunkPlan>,
}

impl Prepare<'_> {
    /// A usable token (refreshed when due), the quota reserved, then a posting slot, in that
    /// order: the refresh may wait for another instance's and the reservation for the quota
    /// lock, and the slot is stamped last, at the time of the call, since a slot stamped earlier
    /// than the call would open the next window early. Returns the account with its usable
    /// token; a refusal says when to try again (or fails the post for a quota).
    async fn run(&self) -> Result<Account, Halt> {
        let (app, account, target) = (self.app, self.account, self.target);
        let ready = tokens::ready(app, account).await.map_err(halt_for)?;
        let (chunk_size, chunks) = self.plan.map_or((0, 0), |p| {
            (p.chunk_size() as i64, p.total_chunk_count() as i64)
        });
        let now = self.ctx.clock().now_ms();
        if let Err(err) = limits::reserve_init(
            app,
            account,
            self.mode,
            &target.id,
            target.bytes_total,
            chunk_size,
            chunks,
            now,
        )
        .await
        {
            return Err(match err {
                // A quota opens in hours: the target fails with the time; the user may retry.
                crate::pipeline::PublishError::Quota { message, .. } => {
                    Halt::Fail(local_error("quota", message, ErrorKind::RateLimited))
                }
                crate::pipeline::PublishError::Store(e) => Halt::from(e),
                other @ (crate::pipeline::PublishError::Invalid { .. }
                | crate::pipeline::PublishError::NotFound(_)
                | crate::pipeline::PublishError::Conflict(_)
                | crate::pipeline::PublishError::NeedsReauth(_)
                | crate::pipeline::PublishError::Provider(_)
                | crate::pipeline::PublishError::Unavailable(_)
                | crate::pipeline::PublishError::Io(_)
                | crate::pipeline::PublishError::TooLarge { .. }) => Halt::Fail(local_error(
                    "invalid",
                    other.to_string(),
                    ErrorKind::Permanent,
                )),
            });
        }
        let at = self.ctx.clock().now_ms();
        match limits::posting_slot(app, &account.id, at).await? {
            Admission::Admitted => Ok(ready),
            Admission::WaitUntil(until) => {
                Err(wait_until(until, at, "TikTok's posting rate limit"))
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn call_init(
    app: &App,
    client: &TikTokClient,
    account: &Account,
    post: &Post,
    options: &PostOptions,
    target: &Target,
    mode: Mode,
    plan: Option<ChunkPlan>,
) -> Result<InitResult, TokenError> {
    let privacy = PrivacyLevel::from(options.options.privacy_level.clone().unwrap_or_default());
    let caption = (!options.caption.is_empty()).then(|| options.caption.clone());
    if post.kind == "photo" {
        let photo_mode = match mode {
            Mode::Direct => PhotoMode::Direct(PhotoPostInfo {
                title: options.options.title.clone(),
                description: options.options.description.clone().or(caption),
                privacy_level: privacy,
                disable_comment: options.options.disable_comment,
                auto_add_music: options.options.auto_add_music,
                brand_content_toggle: options.options.brand_content_toggle,
                brand_organic_toggle: options.options.brand_organic_toggle,
            }),
            Mode::Inbox => PhotoMode::Upload {
                title: options.options.title.clone(),
                description: options.options.description.clone().or(caption),
            },
        };
        let init = InitPhoto {
            mode: photo_mode,
            photo_images: photo_images(app, options, target).await?,
            photo_cover_index: options.options.photo_cover_index,
            is_aigc: options.options.is_aigc,
        };
        let init = &init;
        return tokens::with_token(app, account, |token| async move {
            client.init_photo(&token, init).await
        })
        .await;
    }
    let post_mode = match mode {
        Mode::Direct => PostMode::Direct(PostInfo {
            title: caption,
            privacy_level: privacy,
            disable_comment: options.options.disable_comment,
            disable_duet: options.options.disable_duet,
            disable_stitch: options.options.disable_stitch,
            video_cover_timestamp_ms: options.options.video_cover_timestamp_ms,
            brand_content_toggle: options.options.brand_content_toggle,
            brand_organic_toggle: options.options.brand_organic_toggle,
            is_aigc: options.options.is_aigc,
        }),
        Mode::Inbox => PostMode::Inbox,
    };
    let source = match (plan, &post.media_url) {
        (Some(plan), _) => VideoSource::FileUpload(plan),
        (None, Some(url)) => VideoSource::PullFromUrl(url.clone()),
        (None, None) => {
            return Err(TokenError::Provider(local_error(
                "media_missing",
                format!("post target {} has neither a file nor a URL", target.id),
                ErrorKind::Permanent,
            )));
        }
    };
    let init = InitVideo {
        mode: post_mode,
        source,
    };
    let init = &init;
    tokens::with_token(app, account, |token| async move {
        client.init_video(&token, init).await
    })
    .await
}

/// A run before this one recorded the init intent but not its outcome.
async fn reconcile(
    app: &App,
    ctx: &JobContext,
    client: &TikTokClient,
    account: &Account,
    options: &PostOptions,
    target: &Target,
    intent: tidepost_jobs::StepIntent,
) -> Result<(), Halt> {
    let now = ctx.clock().now_ms();
    if let Some(publish_id) = target.publish_id.clone() {
        // The publish id was stored: the init happened. Confirm with a status fetch.
        if let Admission::WaitUntil(until) = limits::status_slot(app, &account.id, now).await? {
            return Err(wait_until(until, now, "TikTok's status limit"));
        }
        let id = publish_id.as_str();
        match tokens::with_token(app, account, |token| async move {
            client.fetch_status(&token, id).await
        })
        .await
        {
            Ok(_) => {
                intent
                    .record(&json!({"publish_id": publish_id, "reconciled": true}))
                    .await?;
                tracing::info!(target_id = %target.id, %publish_id, "init outcome reconciled from the stored publish id");
                Ok(())
            }
            Err(err) => Err(halt_for(err)),
        }
    } else {
        // Nothing says whether TikTok received it; sending init again could post twice. The
        // target fails as unknown; `tiktok.reconcile` looks for it on the creator's profile
        // when it can, and the person decides otherwise (see `super::reconcile`).
        let message = super::reconcile::explanation(target, options, Some(account));
        let sent_at = target.init_at.unwrap_or(now);
        app.queue
            .enqueue(super::reconcile::job(target, sent_at, now))
            .await
            .map_err(JobError::from)?;
        intent.record(&json!({"unknown": true})).await?;
        Err(Halt::Fail(local_error(
            super::reconcile::UNKNOWN_CODE,
            message,
            ErrorKind::OutcomeUnknown,
        )))
    }
}

/// The stored video is probed again before anything is sent: a file that became unreadable
/// since the post was accepted fails the target with the reason (`media.probe`) instead of
/// reaching TikTok.
async fn check_media(app: &App, post: &Post, target: &Target) -> Result<(), Halt> {
    let Some(media_id) = post.media_id.as_deref() else {
        return Ok(());
    };
    let Some(media) = media::get(&app.db, &target.workspace_id, media_id).await? else {
        // The upload reports a missing file.
        return Ok(());
    };
    crate::pipeline::media::check_before_send(app, &media)
        .await
        .map_err(|v| Halt::Fail(local_error(v.rule, v.message, ErrorKind::Permanent)))
}

/// The uploaded photos of a photo post are probed again before TikTok is sent to fetch them,
/// as a stored video is ([`check_media`]).
async fn check_photos(app: &App, options: &PostOptions, target: &Target) -> Result<(), Halt> {
    for photo in options.photos() {
        let PhotoSource::Stored(id) = photo else {
            continue;
        };
        let media = media::get(&app.db, &target.workspace_id, id)
            .await?
            .ok_or_else(|| Halt::Fail(photo_gone(target)))?;
        crate::pipeline::media::check_before_send(app, &media)
            .await
            .map_err(|v| Halt::Fail(local_error(v.rule, v.message, ErrorKind::Permanent)))?;
    }
    Ok(())
}

fn photo_gone(target: &Target) -> ProviderError {
    local_error(
        "media_missing",
        format!("a photo of post target {} is gone", target.id),
        ErrorKind::Permanent,
    )
}

/// The URLs TikTok pulls a photo post's images from: a photo uploaded to tidepost is served
/// from a signed, expiring URL made now (as Meta fetches stored media), which the TikTok app
/// must have verified as a URL prefix (the public URL's `/media/`).
async fn photo_images(
    app: &App,
    options: &PostOptions,
    target: &Target,
) -> Result<Vec<String>, TokenError> {
    let mut urls = Vec::new();
    for photo in options.photos() {
        urls.push(match photo {
            PhotoSource::Url(url) => url.to_string(),
            PhotoSource::Stored(id) => {
                let media = media::get(&app.db, &target.workspace_id, id)
                    .await?
                    .ok_or_else(|| TokenError::Provider(photo_gone(target)))?;
                crate::platforms::instagram::media_url::signed_url(app, &media)
            }
        });
    }
    Ok(urls)
}

/// Streams the remaining chunks, recording each acknowledgement.
async fn upload(
    app: &App,
    ctx: &JobContext,
    client: &TikTokClient,
    post: &Post,
    target: &Target,
) -> Result<(), Halt> {
    let now = ctx.clock().now_ms();
    let expired = target.upload_url_expires_at.is_none_or(|at| at <= now);
    let sealed = target.upload_url.as_deref();
    let Some(sealed) = sealed.filter(|_| !expired) else {
        posts::restart_publish(
            &app.db,
            &target.workspace_id,
            &target.id,
            target.init_generation,
            now,
        )
        .await?;
        return Err(retry(
            "the upload URL expired; starting a new publish",
            Some(Duration::ZERO),
            None,
        ));
    };
    let url: SecretString = app
        .keyring
        .decrypt_str(sealed, &upload_url_aad(&target.id))
        .map_err(|e| {
            Halt::Fail(local_error(
                "vault",
                format!("The upload URL cannot be decrypted: {e}"),
                ErrorKind::Permanent,
            ))
        })?;
    let media_id = post.media_id.as_deref().ok_or(Halt::Stop)?;
    let media = media::get(&app.db, &target.workspace_id, media_id)
        .await?
        .ok_or_else(|| {
            Halt::Fail(local_error(
                "media_missing",
                "The media file of this post is gone.",
                ErrorKind::Permanent,
            ))
        })?;
    let storage = crate::media::storage(app);
    match storage.size(&media.sha256).await {
        Ok(Some(size)) if i64::try_from(size).ok() == Some(media.size_bytes) => {}
        Ok(Some(size)) => {
            return Err(Halt::Fail(local_error(
                "media_file",
                format!(
                    "The media file is {size} bytes but the upload was declared with {} bytes; it changed since the publish started.",
                    media.size_bytes
                ),
                ErrorKind::Permanent,
            )));
        }
        Ok(None) => {
            return Err(Halt::Fail(local_error(
                "media_missing",
                "The media file of this post is gone.",
                ErrorKind::Permanent,
            )));
        }
        Err(e) => {
            return Err(retry(
                format!("the media file cannot be read: {e}"),
                None,
                None,
            ));
        }
    }
    let plan = ChunkPlan::with_chunk_size(media.size_bytes as u64, target.chunk_size as u64)
        .map_err(|e| {
            Halt::Fail(local_error(
                "media_file",
                e.to_string(),
                ErrorKind::Permanent,
            ))
        })?;
    advance(
        app,
        &target.workspace_id,
        &target.id,
        TargetState::Uploading,
        None,
    )
    .await?;
    for index in target.chunks_acked as u64..plan.total_chunk_count() {
        if ctx.lease_lost().is_cancelled() {
            return Err(retry("the job lease was lost mid-upload", None, None));
        }
        let chunk = plan.chunk(index).ok_or(Halt::Stop)?;
        // Stop between chunks when the post was cancelled meanwhile.
        let current = posts::target(&app.db, &target.workspace_id, &target.id)
            .await?
            .ok_or(Halt::Stop)?;
        if TargetState::parse(&current.state).is_none_or(TargetState::is_final) {
            return Err(Halt::Stop);
        }
        let body = match storage
            .open(&media.sha256, Some(chunk.offset..chunk.offset + chunk.len))
            .await
        {
            Ok(reader) => reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::new(reader)),
            Err(e) => {
                return Err(retry(
                    format!(
                        "chunk {} of {}: the media file cannot be read: {e}",
                        index + 1,
                        plan.total_chunk_count()
                    ),
                    None,
                    None,
                ));
            }
        };
        match client
            .upload_chunk_body(&url, body, &chunk, &media.content_type)
            .await
        {
            Ok(_) => {
                let sent = (chunk.offset + chunk.len) as i64;
                posts::ack_chunks(
                    &app.db,
                    &target.workspace_id,
                    &target.id,
                    index as i64 + 1,
                    sent,
                    ctx.clock().now_ms(),
                )
                .await?;
            }
            Err(e) if matches!(e.http_status, Some(403 | 404 | 416)) => {
                tracing::warn!(target_id = %target.id, code = %e.code, "upload refused; starting a new publish");
                posts::restart_publish(
                    &app.db,
                    &target.workspace_id,
                    &target.id,
                    target.init_generation,
                    now,
                )
                .await?;
                return Err(retry(e.message.clone(), Some(Duration::ZERO), Some(e)));
            }
            Err(e) if e.is_retryable() => {
                let after = e.retry_after;
                return Err(retry(
                    format!(
                        "chunk {} of {}: {}",
                        index + 1,
                        plan.total_chunk_count(),
                        e.message
                    ),
                    after,
                    Some(e),
                ));
            }
            Err(e) => return Err(Halt::Fail(e)),
        }
    }
    Ok(())
}
