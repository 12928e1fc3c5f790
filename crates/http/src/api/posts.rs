//! `/api/v1/posts`: publish to TikTok or Instagram and follow the result.
//!
//! - `POST /posts`: JSON (`media_url` for PULL_FROM_URL, `photo_urls` for a photo post, or
//!   `media_id` of stored media) or `multipart/form-data` with the same fields as text parts and
//!   a `file` part, streamed to disk (never held in memory; its own body limit,
//!   `max_upload_bytes`).
//! - Instagram targets: an `instagram` object instead (`media_type` image, reel, carousel or
//!   story; `items` — alias `children` — each a `url` or the `media_id` of an upload, or
//!   `media_url` / `media_id` for one media; `cover_url` and `share_to_feed` for reels; its own
//!   `caption` or the top-level one). In multipart, `instagram` is a text part holding that JSON
//!   and every `file` part is stored and appended to its items in order.
//! - One post to several accounts: `targets: [{account_id, caption?, tiktok?{…}, instagram?{…}}]`
//!   with the shared `caption` and `media: [{url | media_id, kind?}]` (or `media_url`,
//!   `media_id`, `photo_urls`, multipart files), handled by `tidepost_app::compose`: every
//!   problem of every target at once (`errors`: target, account_id, platform, field, rule,
//!   message, next_slot_at), all or nothing.
//! - Scheduling (either shape): `scheduled_at` (RFC 3339 with an offset, or a local time with
//!   `time_zone`, an IANA name) and `schedule: "next_free_slot"` to take the next slot the
//!   daily limits leave instead of a refusal (409 with `next_slot_at`).
//! - `GET /posts?limit=&after=&state=&account_id=&when=scheduled|past`: newest first, cursor
//!   pagination (`next_cursor`).
//! - `GET /posts/{id}`: the post and its targets (state, progress, bytes, error, provider ids
//!   as strings, scheduled time).
//! - `PATCH /posts/{id}` (`caption`, `scheduled_at` — null for now —, `time_zone`,
//!   `schedule`): any post, to one account or several, before any target has started; 409
//!   after.
//! - `DELETE /posts/{id}` and `POST /posts/{id}/cancel`: cancels the targets not started yet
//!   (409 when none is left); `POST /posts/{id}/targets/{target}/retry`: one failed target.
//! - A target whose outcome is unknown (`error.code` `init_outcome_unknown`: TikTok may have
//!   the post) is not retried: `POST /posts/{id}/targets/{target}/mark-published` (`video`, a
//!   link or id, optional) when it is on TikTok, `POST /posts/{id}/targets/{target}/send-again`
//!   with `{"confirm": true}` when it is not — the only way to risk a second post.
//! - The `Idempotency-Key` header (or the `idempotency_key` field) names the post: the same key
//!   returns the same post.

use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::TryStreamExt;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::HashMap;

use tidepost_app::compose::{self, ComposeError, NewComposite, Schedule, TargetSpec};
use tidepost_app::instagram::publish::{InstagramPost, MediaType, NewInstagramPost};
use tidepost_app::pipeline::media::{Item, ItemKind};
use tidepost_app::pipeline::{self, PostView, PublishError};
use tidepost_app::tiktok::{self, MediaSource, Mode, NewPost, PostOptions, TikTokOptions};
use tidepost_domain::{Platform, PostSummary, TargetState};
use tidepost_store::instagram::InstagramMedia;
use tokio_util::io::StreamReader;

use crate::auth::{Caller, Credential};
use crate::error::Problem;
use crate::state::HttpState;

pub fn router() -> Router<HttpState> {
    Router::new()
        .route(
            "/posts",
            get(list).post(create).layer(DefaultBodyLimit::disable()),
        )
        .route("/posts/{id}", get(show).patch(update).delete(remove))
        .route("/posts/{id}/cancel", post(cancel))
        .route("/posts/{id}/targets/{target}/retry", post(retry))
        .route(
            "/posts/{id}/targets/{target}/mark-published",
            post(mark_published),
        )
        .route("/posts/{id}/targets/{target}/send-again", post(send_again))
}

/// A publish error as problem+json, when no one platform is concerned.
pub fn problem(err: PublishError) -> Problem {
    problem_on(err, None)
}

/// A publish error about an account of `platform` (when one is concerned) as problem+json.
pub fn problem_on(err: PublishError, platform: Option<Platform>) -> Problem {
    let account = platform.map_or("the account".to_string(), |p| {
        format!("the {} account", p.display_name())
    });
    match err {
        PublishError::Invalid { field, message } => {
            Problem::invalid(format!("{field}: {message}")).with("field", field)
        }
        PublishError::NotFound(what) => Problem::not_found(what),
        PublishError::Quota {
            message,
            next_slot_ms,
        } => {
            let wait = (next_slot_ms - tidepost_domain::now_ms()).max(1000) / 1000;
            Problem::too_many_requests(message, u64::try_from(wait).unwrap_or(1))
                .with("next_slot_at", tidepost_domain::time::rfc3339(next_slot_ms))
        }
        PublishError::Conflict(message) => Problem::conflict(message),
        PublishError::NeedsReauth(message) => Problem::new(
            StatusCode::CONFLICT,
            "needs-reauth",
            "The account must be connected again",
            format!("{message}; connect {account} again"),
        ),
        PublishError::Provider(e) => {
            let retryable = e.is_retryable();
            Problem::new(
                StatusCode::BAD_GATEWAY,
                "provider-error",
                match platform {
                    Some(Platform::Tiktok) => "TikTok refused",
                    Some(Platform::Instagram) => "Instagram refused",
                    None => "The platform refused",
                },
                e.message,
            )
            .with("provider_code", e.code)
            .with("retryable", retryable)
        }
        PublishError::Unavailable(message) => Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "Unavailable",
            message,
        ),
        PublishError::TooLarge { max } => Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-large",
            "Upload too large",
            format!("the file is larger than the {max} bytes allowed"),
        ),
        // A full media disk is an operator's problem the caller should hear about plainly (and
        // may retry later), not an opaque internal error.
        PublishError::Io(e) if e.kind() == std::io::ErrorKind::StorageFull => Problem::new(
            StatusCode::INSUFFICIENT_STORAGE,
            "insufficient-storage",
            "Storage full",
            "the media storage is full, so the file was not kept; try again once space is freed",
        ),
        other => Problem::internal(other),
    }
}

/// One post as the API shows it, with what is recorded of its Instagram media.
pub async fn render(state: &HttpState, view: &PostView) -> Result<Value, Problem> {
    let mut instagram = HashMap::new();
    for t in &view.targets {
        if t.platform == Platform::Instagram
            && let Some(m) =
                tidepost_store::instagram::get(&state.app.db, &t.workspace_id, &t.id).await?
        {
            instagram.insert(t.id.clone(), m);
        }
    }
    Ok(post_json(view, &instagram))
}

/// One post as the API shows it; `instagram` holds the recorded media of its Instagram
/// targets, by target id.
pub fn post_json(view: &PostView, instagram: &HashMap<String, InstagramMedia>) -> Value {
    let states: Vec<TargetState> = view
        .targets
        .iter()
        .map(|t| TargetState::parse(&t.state).unwrap_or(TargetState::Failed))
        .collect();
    let options: Value = serde_json::from_str(&view.post.options).unwrap_or(Value::Null);
    json!({
        "id": view.post.id,
        "kind": view.post.kind,
        "caption": view.post.caption,
        "media_id": view.post.media_id,
        "media_url": view.post.media_url,
        "options": options,
        "summary": PostSummary::of(&states).as_str(),
        "created_at": tidepost_domain::time::rfc3339(view.post.created_at),
        "scheduled_at": view.post.scheduled_at.map(tidepost_domain::time::rfc3339),
        "time_zone": view.post.time_zone,
        "scheduled_at_local": view.post.scheduled_at.map(|at| {
            compose::schedule::show(at, view.post.time_zone.as_deref())
        }),
        "targets": view.targets.iter().map(|t| {
            let post_ids = t.post_ids();
            let ig = instagram.get(&t.id);
            let post_url = match t.platform {
                Platform::Tiktok => post_ids.first().map(|id| tidepost_app::tiktok::post_url(id)),
                Platform::Instagram => ig.and_then(|m| m.permalink.clone()),
            };
            json!({
                "id": t.id,
                "account_id": t.account_id,
                "platform": t.platform,
                "mode": t.mode,
                "source": t.source,
                "state": t.state,
                "bytes_total": t.bytes_total,
                "bytes_sent": t.bytes_sent,
                "chunks_total": t.chunks_total,
                "chunks_acked": t.chunks_acked,
                "progress": progress(t),
                "scheduled_at": t.scheduled_at.map(tidepost_domain::time::rfc3339),
                "publish_id": t.publish_id,
                "provider_status": t.provider_status,
                "post_ids": post_ids,
                "post_url": post_url,
                "instagram": ig.map(|m| json!({
                    "media_id": m.media_id,
                    "permalink": m.permalink,
                    "media_type": m.media_type,
                })),
                "error": t.error_code.as_ref().map(|code| json!({
                    "code": code,
                    "message": t.error_message,
                    "retryable": t.error_retryable == 1,
                })),
                "updated_at": tidepost_domain::time::rfc3339(t.updated_at),
                "finished_at": t.finished_at.map(tidepost_domain::time::rfc3339),
            })
        }).collect::<Vec<_>>(),
    })
}

/// How far a target is, from 0 to 1: the bytes sent while uploading, then 1 once published.
fn progress(t: &tidepost_store::posts::Target) -> f64 {
    match TargetState::parse(&t.state) {
        Some(TargetState::Published) => 1.0,
        Some(TargetState::Processing) => 0.9,
        Some(TargetState::Uploading) if t.bytes_total > 0 => {
            0.8 * (t.bytes_sent as f64 / t.bytes_total as f64).clamp(0.0, 1.0)
        }
        _ => 0.0,
    }
}

/// The `instagram` object of `POST /posts`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct InstagramBody {
    media_type: Option<String>,
    caption: Option<String>,
    #[serde(alias = "children")]
    items: Vec<Item>,
    media_url: Option<String>,
    media_id: Option<String>,
    cover_url: Option<String>,
    share_to_feed: Option<bool>,
}

fn field_problem(field: &str, message: impl std::fmt::Display) -> Problem {
    Problem::invalid(format!("{field}: {message}")).with("field", field.to_string())
}

impl InstagramBody {
    /// The post as the app takes it; `uploads` are stored media appended to the items.
    fn into_post(self, caption: String, uploads: Vec<String>) -> Result<InstagramPost, Problem> {
        let media_type = match self.media_type.as_deref() {
            None | Some("") => {
                return Err(field_problem(
                    "instagram.media_type",
                    "choose what to publish: image, reel, carousel or story",
                ));
            }
            Some(text) => MediaType::parse(text).ok_or_else(|| {
                field_problem(
                    "instagram.media_type",
                    format!("expected image, reel, carousel or story, got {text:?}"),
                )
            })?,
        };
        let single = self.media_url.is_some() || self.media_id.is_some();
        if single && !self.items.is_empty() {
            return Err(field_problem(
                "instagram.items",
                "give the media either as items (or children) or as one media_url / media_id, not both",
            ));
        }
        let mut items = self.items;
        if self.media_url.is_some() || self.media_id.is_some() {
            items.push(Item {
                url: self.media_url,
                media_id: self.media_id,
                ..Item::default()
            });
        }
        items.extend(uploads.into_iter().map(|id| Item {
            media_id: Some(id),
            ..Item::default()
        }));
        if items.is_empty() {
            return Err(field_problem(
                "instagram.items",
                "add the media: items (each a url or the media_id of an upload), media_url or media_id",
            ));
        }
        Ok(InstagramPost {
            media_type,
            caption: self.caption.unwrap_or(caption),
            items,
            cover_url: self.cover_url.filter(|c| !c.is_empty()),
            share_to_feed: self.share_to_feed,
        })
    }
}

/// An Instagram publish error as problem+json: the app's field names are those of the
/// `instagram` object.
fn instagram_problem(err: PublishError) -> Problem {
    match err {
        PublishError::Invalid { field, message } if field != "account_id" => {
            field_problem(&format!("instagram.{field}"), message)
        }
        other => problem_on(other, Some(Platform::Instagram)),
    }
}

/// One media of a post (schema of the API document).
#[derive(utoipa::ToSchema)]
#[schema(as = PostMediaItem)]
#[allow(dead_code)]
struct MediaItemDoc {
    /// A public URL the platform downloads.
    url: Option<String>,
    /// An uploaded media's id (`POST /api/v1/media`).
    media_id: Option<String>,
    /// `image` or `video`; inferred from the upload or the URL's extension when absent.
    kind: Option<String>,
}

/// One account of a post and its overrides.
#[derive(utoipa::ToSchema)]
#[schema(as = PostTargetSpec)]
#[allow(dead_code)]
struct TargetSpecDoc {
    account_id: String,
    /// This target's caption instead of the post's.
    caption: Option<String>,
    /// TikTok accounts: `mode` (`direct` or `inbox`), `privacy_level` (required for direct),
    /// `disable_comment`, `disable_duet`, `disable_stitch`, `brand_content_toggle`,
    /// `brand_organic_toggle`, `is_aigc`, `video_cover_timestamp_ms`, `duration_sec`,
    /// `photo_cover_index`.
    #[schema(value_type = Option<Object>)]
    tiktok: Option<()>,
    /// Instagram accounts: `media_type` (`image`, `reel`, `carousel`, `story`; inferred from
    /// the media when absent), `cover_url`, `share_to_feed`.
    #[schema(value_type = Option<Object>)]
    instagram: Option<()>,
}

/// The body of `POST /api/v1/posts` (or the same fields as multipart text parts, with `file`
/// parts). Give `targets` for one post to several accounts, or the single-account fields
/// (`account_id` with the TikTok fields or an `instagram` object).
#[derive(utoipa::ToSchema)]
#[schema(as = CreatePost)]
#[allow(dead_code)]
struct CreatePostDoc {
    caption: Option<String>,
    media: Option<Vec<MediaItemDoc>>,
    targets: Option<Vec<TargetSpecDoc>>,
    /// RFC 3339 with an offset, or a local date and time with `time_zone`.
    scheduled_at: Option<String>,
    /// An IANA zone name, such as `Europe/Paris`.
    time_zone: Option<String>,
    /// `next_free_slot` takes the next time the posting limits allow instead of a refusal;
    /// `exact` (the default) refuses.
    schedule: Option<String>,
    /// Single-account shape.
    account_id: Option<String>,
    mode: Option<String>,
    privacy_level: Option<String>,
    media_url: Option<String>,
    media_id: Option<String>,
    photo_urls: Option<Vec<String>>,
    #[schema(value_type = Option<Object>)]
    instagram: Option<()>,
    /// Same as the `Idempotency-Key` header.
    idempotency_key: Option<String>,
}

/// One target of a post as the API shows it.
#[derive(utoipa::ToSchema)]
#[schema(as = PostTarget)]
#[allow(dead_code)]
struct TargetDoc {
    id: String,
    account_id: String,
    /// `tiktok` or `instagram`.
    platform: String,
    mode: String,
    /// `queued`, `scheduled`, `uploading`, `processing`, `published`, `failed` or `cancelled`.
    state: String,
    /// From 0 to 1.
    progress: f64,
    /// When its job is due (RFC 3339), for a scheduled target.
    scheduled_at: Option<String>,
    bytes_total: i64,
    bytes_sent: i64,
    publish_id: Option<String>,
    post_ids: Vec<String>,
    post_url: Option<String>,
    /// `{code, message, retryable}` of the last failure.
    #[schema(value_type = Option<Object>)]
    error: Option<()>,
    updated_at: String,
    finished_at: Option<String>,
}

/// A post as the API shows it.
#[derive(utoipa::ToSchema)]
#[schema(as = Post)]
#[allow(dead_code)]
struct PostDoc {
    id: String,
    kind: String,
    caption: String,
    /// `pending`, `in_progress`, `published`, `partly_failed`, `failed` or `cancelled`.
    summary: String,
    created_at: String,
    /// RFC 3339 in UTC.
    scheduled_at: Option<String>,
    /// The zone the schedule was given in.
    time_zone: Option<String>,
    /// The schedule in that zone.
    scheduled_at_local: Option<String>,
    targets: Vec<TargetDoc>,
}

#[derive(utoipa::ToSchema)]
#[schema(as = PostList)]
#[allow(dead_code)]
struct PostListDoc {
    data: Vec<PostDoc>,
    next_cursor: Option<String>,
}

/// The body of `PATCH /api/v1/posts/{id}`.
#[derive(utoipa::ToSchema)]
#[schema(as = UpdatePost)]
#[allow(dead_code)]
struct UpdatePostDoc {
    caption: Option<String>,
    /// The new time; `null` for now.
    scheduled_at: Option<String>,
    time_zone: Option<String>,
    /// `next_free_slot` or `exact`.
    schedule: Option<String>,
}

/// The JSON body of `POST /posts` (multipart parts carry the same names).
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct CreatePost {
    account_id: String,
    mode: Option<Mode>,
    caption: String,
    privacy_level: Option<String>,
    disable_comment: bool,
    disable_duet: bool,
    disable_stitch: bool,
    video_cover_timestamp_ms: Option<u32>,
    brand_content_toggle: bool,
    brand_organic_toggle: bool,
    is_aigc: bool,
    duration_sec: Option<u32>,
    media_url: Option<String>,
    media_id: Option<String>,
    photo_urls: Vec<String>,
    photo_cover_index: u32,
    idempotency_key: Option<String>,
    instagram: Option<InstagramBody>,
    /// One post to several accounts (see the module doc); `account_id` is then left out.
    targets: Option<Vec<TargetSpec>>,
    /// The shared media of a post to several accounts.
    media: Vec<Item>,
    scheduled_at: Option<String>,
    time_zone: Option<String>,
    /// `next_free_slot` or `exact` (the default).
    schedule: Option<String>,
}

impl CreatePost {
    fn set(&mut self, name: &str, value: String) -> Result<(), Problem> {
        let flag = |v: &str| matches!(v, "true" | "1" | "on" | "yes");
        let number = |v: &str, field: &str| {
            v.trim().parse::<u32>().map_err(|_| {
                Problem::invalid(format!("{field}: expected a whole number, got {v:?}"))
                    .with("field", field.to_string())
            })
        };
        match name {
            "account_id" => self.account_id = value,
            "mode" => {
                self.mode = Some(match value.as_str() {
                    "direct" => Mode::Direct,
                    "inbox" => Mode::Inbox,
                    _ => {
                        return Err(Problem::invalid("mode: expected direct or inbox")
                            .with("field", "mode"));
                    }
                })
            }
            "caption" => self.caption = value,
            "privacy_level" => self.privacy_level = Some(value).filter(|v| !v.is_empty()),
            "disable_comment" => self.disable_comment = flag(&value),
            "disable_duet" => self.disable_duet = flag(&value),
            "disable_stitch" => self.disable_stitch = flag(&value),
            "brand_content_toggle" => self.brand_content_toggle = flag(&value),
            "brand_organic_toggle" => self.brand_organic_toggle = flag(&value),
            "is_aigc" => self.is_aigc = flag(&value),
            "video_cover_timestamp_ms" if !value.is_empty() => {
                self.video_cover_timestamp_ms = Some(number(&value, "video_cover_timestamp_ms")?)
            }
            "duration_sec" if !value.is_empty() => {
                self.duration_sec = Some(number(&value, "duration_sec")?)
            }
            "media_url" => self.media_url = Some(value).filter(|v| !v.is_empty()),
            "idempotency_key" => self.idempotency_key = Some(value).filter(|v| !v.is_empty()),
            "instagram" if !value.trim().is_empty() => {
                self.instagram =
                    Some(serde_json::from_str(&value).map_err(|e| field_problem("instagram", e))?)
            }
            "targets" if !value.trim().is_empty() => {
                self.targets =
                    Some(serde_json::from_str(&value).map_err(|e| field_problem("targets", e))?)
            }
            "media" if !value.trim().is_empty() => {
                self.media = serde_json::from_str(&value).map_err(|e| field_problem("media", e))?
            }
            "media_id" => self.media_id = Some(value).filter(|v| !v.is_empty()),
            "scheduled_at" => self.scheduled_at = Some(value).filter(|v| !v.is_empty()),
            "time_zone" => self.time_zone = Some(value).filter(|v| !v.is_empty()),
            "schedule" => self.schedule = Some(value).filter(|v| !v.is_empty()),
            _ => {}
        }
        Ok(())
    }

    /// A TikTok field given with an `instagram` object.
    fn tiktok_field(&self) -> Option<&'static str> {
        [
            ("mode", self.mode.is_some()),
            ("privacy_level", self.privacy_level.is_some()),
            ("media_url", self.media_url.is_some()),
            ("media_id", self.media_id.is_some()),
            ("photo_urls", !self.photo_urls.is_empty()),
            (
                "video_cover_timestamp_ms",
                self.video_cover_timestamp_ms.is_some(),
            ),
            ("duration_sec", self.duration_sec.is_some()),
        ]
        .into_iter()
        .find_map(|(name, given)| given.then_some(name))
    }

    /// The TikTok options of the single-account shape.
    fn tiktok_options(&self) -> TikTokOptions {
        TikTokOptions {
            mode: self.mode,
            privacy_level: self.privacy_level.clone(),
            disable_comment: self.disable_comment,
            disable_duet: self.disable_duet,
            disable_stitch: self.disable_stitch,
            video_cover_timestamp_ms: self.video_cover_timestamp_ms,
            brand_content_toggle: self.brand_content_toggle,
            brand_organic_toggle: self.brand_organic_toggle,
            is_aigc: self.is_aigc,
            duration_sec: self.duration_sec,
            photo_cover_index: self.photo_cover_index,
        }
    }

    fn into_new_post(self, media: MediaSource, created_by: Option<String>) -> NewPost {
        let options = self.tiktok_options();
        NewPost {
            account_id: self.account_id,
            mode: self.mode.unwrap_or(Mode::Direct),
            options: PostOptions::new(&self.caption, self.photo_urls, options),
            media,
            idempotency_key: self.idempotency_key,
            created_by,
        }
    }
}

#[utoipa::path(
    post, path = "/api/v1/posts", tag = "posts",
    request_body(content = CreatePostDoc, description = "JSON, or multipart/form-data with the same fields as text parts and `file` parts"),
    responses(
        (status = 202, description = "Accepted: the targets are queued or scheduled", body = PostDoc),
        (status = 404, description = "No such account or media in this workspace", body = Problem),
        (status = 409, description = "The time (or now) would break a posting limit: `next_slot_at` and `errors` name it", body = Problem),
        (status = 413, description = "An upload over the size limit", body = Problem),
        (status = 422, description = "Invalid: `errors` lists every problem of every target (target, account_id, platform, field, rule, message)", body = Problem),
    ),
)]
async fn create(
    caller: Caller,
    State(state): State<HttpState>,
    request: Request,
) -> Result<(StatusCode, Json<Value>), Problem> {
    caller.require_scope("api")?;
    let created_by = match &caller.credential {
        Credential::Session { user_id } => Some(user_id.clone()),
        Credential::ApiKey { id, .. } => Some(format!("api_key:{id}")),
    };
    let header_key = request
        .headers()
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .filter(|k| !k.is_empty());
    let is_multipart = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    let (body, uploads) = if is_multipart {
        let mut multipart = Multipart::from_request(request, &state)
            .await
            .map_err(|e| Problem::bad_request(e.body_text()))?;
        let mut body = CreatePost::default();
        let mut stored = Vec::new();
        while let Some(field) = multipart
            .next_field()
            .await
            .map_err(|e| Problem::bad_request(e.body_text()))?
        {
            let name = field.name().unwrap_or_default().to_string();
            if name == "file" {
                let content_type = field
                    .content_type()
                    .unwrap_or("application/octet-stream")
                    .to_string();
                let file_name = field.file_name().map(str::to_string);
                let reader = StreamReader::new(field.map_err(std::io::Error::other));
                let media = pipeline::media::store(
                    &state.app,
                    &caller.workspace_id,
                    reader,
                    &content_type,
                    file_name.as_deref(),
                )
                .await
                .map_err(problem)?;
                stored.push(media.id);
            } else {
                let text = field
                    .text()
                    .await
                    .map_err(|e| Problem::bad_request(e.body_text()))?;
                body.set(&name, text)?;
            }
        }
        (body, Some(stored))
    } else {
        // The route's own limit is off for streamed multipart uploads; a JSON body is buffered,
        // so it keeps the default limit (a client that hangs up mid-body gets the same answer,
        // which it never reads).
        let (parts, body) = request.into_parts();
        let bytes = axum::body::to_bytes(body, crate::server::DEFAULT_BODY_LIMIT)
            .await
            .map_err(|_| {
                Problem::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "too-large",
                    "Request body too large",
                    format!(
                        "a JSON body may be at most {} bytes; send files as multipart/form-data",
                        crate::server::DEFAULT_BODY_LIMIT
                    ),
                )
            })?;
        let request = Request::from_parts(parts, axum::body::Body::from(bytes));
        let crate::api::ApiJson(body) =
            crate::api::ApiJson::<CreatePost>::from_request(request, &state).await?;
        (body, None)
    };
    let mut body = body;
    if body.idempotency_key.is_none() {
        body.idempotency_key = header_key;
    }
    if body.targets.is_some() || body.scheduled_at.is_some() || body.schedule.is_some() {
        return create_composite(&state, &caller.workspace_id, body, uploads, created_by).await;
    }
    if body.account_id.is_empty() {
        return Err(Problem::invalid(
            "account_id: choose the TikTok or Instagram account to post to",
        )
        .with("field", "account_id"));
    }
    let account =
        tidepost_store::accounts::get(&state.app.db, &caller.workspace_id, &body.account_id)
            .await?;
    let is_instagram = account
        .as_ref()
        .is_some_and(|a| a.platform == tidepost_app::instagram::PLATFORM);
    if body.instagram.is_some() || is_instagram {
        return create_instagram(&state, &caller.workspace_id, body, uploads, created_by).await;
    }
    let media = match uploads {
        Some(stored) => match (stored.last(), body.media_url.clone()) {
            (Some(id), _) => MediaSource::Stored(id.clone()),
            (None, Some(url)) => MediaSource::VideoUrl(url),
            (None, None) => {
                return Err(Problem::invalid(
                    "file: attach the video as a `file` part, or give a media_url",
                )
                .with("field", "file"));
            }
        },
        None => match (&body.media_id, &body.media_url, body.photo_urls.is_empty()) {
            (Some(id), None, true) => MediaSource::Stored(id.clone()),
            (None, Some(url), true) => MediaSource::VideoUrl(url.clone()),
            (None, None, false) => MediaSource::Photos,
            _ => {
                return Err(Problem::invalid(
                    "media: give exactly one of media_url (a video TikTok downloads), photo_urls (a photo post) or media_id (stored media)",
                )
                .with("field", "media"));
            }
        },
    };
    let view = tiktok::submit(
        &state.app,
        &caller.workspace_id,
        body.into_new_post(media, created_by),
    )
    .await
    .map_err(|e| problem_on(e, Some(Platform::Tiktok)))?;
    Ok((StatusCode::ACCEPTED, Json(render(&state, &view).await?)))
}

/// The schedule fields of a request.
pub(crate) fn schedule_of(
    scheduled_at: Option<&str>,
    time_zone: Option<&str>,
    schedule: Option<&str>,
) -> Result<Schedule, Problem> {
    let next_free_slot = match schedule {
        None | Some("exact") => false,
        Some("next_free_slot") => true,
        Some(other) => {
            return Err(field_problem(
                "schedule",
                format!("expected next_free_slot or exact, got {other:?}"),
            ));
        }
    };
    let at = match scheduled_at {
        Some(text) => Some(
            compose::schedule::parse(text, time_zone)
                .map_err(|e| field_problem(e.field, e.message))?,
        ),
        None if time_zone.is_some() => {
            return Err(field_problem(
                "time_zone",
                "a time_zone goes with a scheduled_at",
            ));
        }
        None => None,
    };
    Ok(Schedule { at, next_free_slot })
}

/// A composite post's refusal as problem+json: every issue in `errors`; 409 when the only
/// problem is the time (a limit), with the latest `next_slot_at` of the targets.
pub fn compose_problem(err: ComposeError) -> Problem {
    let only_quota = err.only_quota();
    match err {
        ComposeError::Invalid(issues) => {
            let detail = issues
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ");
            let next_slot = issues.iter().filter_map(|i| i.next_slot_ms).max();
            let errors: Vec<Value> = issues
                .iter()
                .map(|i| {
                    json!({
                        "target": i.target,
                        "account_id": i.account_id,
                        "platform": i.platform,
                        "field": i.field,
                        "rule": i.rule,
                        "message": i.message,
                        "next_slot_at": i.next_slot_ms.map(tidepost_domain::time::rfc3339),
                    })
                })
                .collect();
            let first_field = issues.first().map(|i| i.field.clone()).unwrap_or_default();
            let problem = if only_quota {
                Problem::new(
                    StatusCode::CONFLICT,
                    "schedule-limit",
                    "The schedule would break a posting limit",
                    detail,
                )
            } else {
                Problem::invalid(detail)
            };
            let problem = problem.with("errors", errors).with("field", first_field);
            match next_slot {
                Some(ms) => problem.with("next_slot_at", tidepost_domain::time::rfc3339(ms)),
                None => problem,
            }
        }
        ComposeError::NotFound(what) => Problem::not_found(what),
        ComposeError::Conflict(message) => Problem::conflict(message),
        ComposeError::Unavailable(message) => Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "Unavailable",
            message,
        ),
        ComposeError::Publish(e) => problem(e),
        other => Problem::internal(other),
    }
}

/// `POST /posts` with `targets` (or a schedule): a composite post through
/// `tidepost_app::compose`. A single-account request with a schedule becomes one target.
async fn create_composite(
    state: &HttpState,
    workspace_id: &str,
    mut body: CreatePost,
    uploads: Option<Vec<String>>,
    created_by: Option<String>,
) -> Result<(StatusCode, Json<Value>), Problem> {
    let schedule = schedule_of(
        body.scheduled_at.as_deref(),
        body.time_zone.as_deref(),
        body.schedule.as_deref(),
    )?;
    let mut media = std::mem::take(&mut body.media);
    // A single-account TikTok request's media_url is a video by definition.
    let url_kind = (body.targets.is_none() && body.instagram.is_none()).then_some(ItemKind::Video);
    let targets = match body.targets.take() {
        Some(targets) => {
            if !body.account_id.is_empty() {
                return Err(field_problem(
                    "account_id",
                    "give the accounts in `targets` (each with its account_id), not beside them",
                ));
            }
            if body.instagram.is_some() {
                return Err(field_problem(
                    "instagram",
                    "with `targets`, Instagram options go in each target's `instagram` object",
                ));
            }
            if let Some(field) = body
                .tiktok_field()
                .filter(|f| !matches!(*f, "media_url" | "media_id" | "photo_urls"))
            {
                return Err(field_problem(
                    field,
                    "with `targets`, TikTok options go in each target's `tiktok` object",
                ));
            }
            targets
        }
        None => {
            // The single-account shape, scheduled: one target.
            if body.account_id.is_empty() {
                return Err(field_problem(
                    "account_id",
                    "choose the TikTok or Instagram account to post to (or give `targets`)",
                ));
            }
            let mut spec = TargetSpec {
                account_id: body.account_id.clone(),
                ..TargetSpec::default()
            };
            if let Some(instagram) = body.instagram.take() {
                if let Some(field) = body.tiktok_field() {
                    return Err(field_problem(
                        field,
                        "this is a TikTok field; an Instagram post takes its media in the `instagram` object",
                    ));
                }
                let post = instagram.into_post(body.caption.clone(), Vec::new())?;
                media.extend(post.items);
                if post.caption != body.caption {
                    spec.caption = Some(post.caption);
                }
                spec.instagram = Some(compose::InstagramOptions {
                    media_type: Some(post.media_type),
                    cover_url: post.cover_url,
                    share_to_feed: post.share_to_feed,
                });
            } else {
                spec.tiktok = Some(body.tiktok_options());
            }
            vec![spec]
        }
    };
    if let Some(url) = body.media_url.take() {
        media.push(Item {
            url: Some(url),
            kind: url_kind,
            ..Item::default()
        });
    }
    if let Some(id) = body.media_id.take() {
        media.push(Item {
            media_id: Some(id),
            ..Item::default()
        });
    }
    media.extend(body.photo_urls.drain(..).map(|url| Item {
        url: Some(url),
        kind: Some(ItemKind::Image),
        ..Item::default()
    }));
    media.extend(uploads.unwrap_or_default().into_iter().map(|id| Item {
        media_id: Some(id),
        ..Item::default()
    }));
    let view = compose::submit(
        &state.app,
        workspace_id,
        NewComposite {
            caption: body.caption,
            media,
            targets,
            schedule,
            idempotency_key: body.idempotency_key,
            created_by,
        },
    )
    .await
    .map_err(compose_problem)?;
    Ok((StatusCode::ACCEPTED, Json(render(state, &view).await?)))
}

/// `POST /posts` to an Instagram account.
async fn create_instagram(
    state: &HttpState,
    workspace_id: &str,
    mut body: CreatePost,
    uploads: Option<Vec<String>>,
    created_by: Option<String>,
) -> Result<(StatusCode, Json<Value>), Problem> {
    let Some(instagram) = body.instagram.take() else {
        return Err(field_problem(
            "instagram",
            "this is an Instagram account: describe the post in an `instagram` object (media_type and items)",
        ));
    };
    if let Some(field) = body.tiktok_field() {
        return Err(field_problem(
            field,
            "this is a TikTok field; an Instagram post takes its media in the `instagram` object",
        ));
    }
    let post = instagram.into_post(
        std::mem::take(&mut body.caption),
        uploads.unwrap_or_default(),
    )?;
    let view = tidepost_app::instagram::publish::submit(
        &state.app,
        workspace_id,
        NewInstagramPost {
            account_id: body.account_id,
            post,
            idempotency_key: body.idempotency_key,
            created_by,
        },
    )
    .await
    .map_err(instagram_problem)?;
    Ok((StatusCode::ACCEPTED, Json(render(state, &view).await?)))
}

/// The platform of a post's target, for naming it in errors.
async fn platform_of(state: &HttpState, workspace_id: &str, post_id: &str) -> Option<Platform> {
    tidepost_store::posts::targets_of(&state.app.db, workspace_id, post_id)
        .await
        .ok()
        .and_then(|t| t.first().map(|t| t.platform))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// At most this many posts (1 to 200, default 25).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    after: Option<String>,
    /// Posts with a target in this state.
    state: Option<String>,
    /// Posts with a target on this account.
    account_id: Option<String>,
    /// `scheduled` (waiting for their time) or `past` (the others).
    when: Option<String>,
}

#[utoipa::path(
    get, path = "/api/v1/posts", tag = "posts",
    params(ListQuery),
    responses(
        (status = 200, description = "Posts, newest first", body = PostListDoc),
        (status = 422, description = "An unknown state or when, or `limit` out of range", body = Problem),
    ),
)]
async fn list(
    caller: Caller,
    State(state): State<HttpState>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, Problem> {
    caller.require_scope("api")?;
    let limit = super::paging::limit(q.limit, 25)?;
    if let Some(s) = q.state.as_deref()
        && TargetState::parse(s).is_none()
    {
        return Err(field_problem(
            "state",
            format!(
                "expected one of queued, scheduled, uploading, processing, published, failed, cancelled; got {s:?}"
            ),
        ));
    }
    let scheduled = match q.when.as_deref() {
        None | Some("") | Some("all") => None,
        Some("scheduled") => Some(true),
        Some("past") => Some(false),
        Some(other) => {
            return Err(field_problem(
                "when",
                format!("expected scheduled or past, got {other:?}"),
            ));
        }
    };
    let filter = tidepost_store::posts::PostFilter {
        target_state: q.state.filter(|s| !s.is_empty()),
        account_id: q.account_id.filter(|s| !s.is_empty()),
        scheduled,
        before: q.after.filter(|s| !s.is_empty()),
    };
    let views = compose::list(&state.app, &caller.workspace_id, &filter, limit + 1)
        .await
        .map_err(compose_problem)?;
    let (views, next) = super::paging::page(views, limit, |v| &v.post.id);
    let mut data = Vec::with_capacity(views.len());
    for view in &views {
        data.push(render(&state, view).await?);
    }
    Ok(Json(json!({"data": data, "next_cursor": next})))
}

/// The body of `PATCH /posts/{id}`: any of the fields; `scheduled_at: null` means now.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct UpdatePost {
    caption: Option<String>,
    #[serde(deserialize_with = "present")]
    scheduled_at: Option<Option<String>>,
    time_zone: Option<String>,
    schedule: Option<String>,
}

/// A field given as `null` is `Some(None)`, a missing one `None`.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

#[utoipa::path(
    patch, path = "/api/v1/posts/{id}", tag = "posts",
    params(("id" = String, Path, description = "The post's id")),
    request_body = UpdatePostDoc,
    responses(
        (status = 200, description = "The changed post", body = PostDoc),
        (status = 404, description = "No such post in this workspace", body = Problem),
        (status = 409, description = "A target has started, or the new time would break a posting limit", body = Problem),
        (status = 422, description = "Nothing to change, or an invalid field", body = Problem),
    ),
)]
async fn update(
    caller: Caller,
    State(state): State<HttpState>,
    Path(id): Path<String>,
    raw: axum::body::Bytes,
) -> Result<Json<Value>, Problem> {
    caller.require_scope("api")?;
    // Another workspace's post is not found, whatever the body.
    if tidepost_store::posts::get(&state.app.db, &caller.workspace_id, &id)
        .await?
        .is_none()
    {
        return Err(Problem::not_found("post"));
    }
    let body: UpdatePost = serde_json::from_slice(&raw)
        .map_err(|e| Problem::bad_request(format!("the body must be a JSON object: {e}")))?;
    if body.caption.is_none() && body.scheduled_at.is_none() {
        return Err(Problem::invalid(
            "nothing to change: give a caption or a scheduled_at (null for now)",
        ));
    }
    let schedule = match &body.scheduled_at {
        Some(at) => Some(schedule_of(
            at.as_deref(),
            body.time_zone.as_deref(),
            body.schedule.as_deref(),
        )?),
        None if body.time_zone.is_some() || body.schedule.is_some() => {
            return Err(field_problem(
                "scheduled_at",
                "time_zone and schedule go with a scheduled_at",
            ));
        }
        None => None,
    };
    let view = compose::update(
        &state.app,
        &caller.workspace_id,
        &id,
        compose::Update {
            caption: body.caption,
            schedule,
        },
    )
    .await
    .map_err(|err| match err {
        ComposeError::Publish(PublishError::NotFound(what)) => Problem::not_found(what),
        other => compose_problem(other),
    })?;
    Ok(Json(render(&state, &view).await?))
}

#[utoipa::path(
    get, path = "/api/v1/posts/{id}", tag = "posts",
    params(("id" = String, Path, description = "The post's id")),
    responses(
        (status = 200, description = "The post and each target's state and progress", body = PostDoc),
        (status = 404, description = "No such post in this workspace", body = Problem),
    ),
)]
async fn show(
    caller: Caller,
    State(state): State<HttpState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, Problem> {
    caller.require_scope("api")?;
    let view = match pipeline::get(&state.app, &caller.workspace_id, &id).await {
        Ok(view) => view,
        Err(err) => {
            let platform = platform_of(&state, &caller.workspace_id, &id).await;
            return Err(problem_on(err, platform));
        }
    };
    Ok(Json(render(&state, &view).await?))
}

#[utoipa::path(
    post, path = "/api/v1/posts/{id}/cancel", tag = "posts",
    params(("id" = String, Path, description = "The post's id")),
    responses(
        (status = 200, description = "The post, its targets not started yet cancelled", body = PostDoc),
        (status = 404, description = "No such post in this workspace", body = Problem),
        (status = 409, description = "Every target has started or finished", body = Problem),
    ),
)]
async fn cancel(
    caller: Caller,
    State(state): State<HttpState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, Problem> {
    caller.require_scope("api")?;
    let view = match pipeline::cancel(&state.app, &caller.workspace_id, &id).await {
        Ok(view) => view,
        Err(err) => {
            let platform = platform_of(&state, &caller.workspace_id, &id).await;
            return Err(problem_on(err, platform));
        }
    };
    Ok(Json(render(&state, &view).await?))
}

#[utoipa::path(
    delete, path = "/api/v1/posts/{id}", tag = "posts",
    params(("id" = String, Path, description = "The post's id")),
    responses(
        (status = 200, description = "The post, its targets not started yet cancelled", body = PostDoc),
        (status = 404, description = "No such post in this workspace", body = Problem),
        (status = 409, description = "Every target has started or finished", body = Problem),
    ),
)]
async fn remove(
    caller: Caller,
    state: State<HttpState>,
    id: Path<String>,
) -> Result<Json<Value>, Problem> {
    cancel(caller, state, id).await
}

#[utoipa::path(
    post, path = "/api/v1/posts/{id}/targets/{target}/retry", tag = "posts",
    params(
        ("id" = String, Path, description = "The post's id"),
        ("target" = String, Path, description = "The failed target's id"),
    ),
    responses(
        (status = 200, description = "The post, the target queued again", body = PostDoc),
        (status = 404, description = "No such post or target in this workspace", body = Problem),
        (status = 409, description = "The target has not failed", body = Problem),
    ),
)]
async fn retry(
    caller: Caller,
    State(state): State<HttpState>,
    Path((id, target)): Path<(String, String)>,
) -> Result<Json<Value>, Problem> {
    caller.require_scope("api")?;
    let view = match pipeline::retry(&state.app, &caller.workspace_id, &id, &target).await {
        Ok(view) => view,
        Err(err) => {
            let platform = platform_of(&state, &caller.workspace_id, &id).await;
            return Err(problem_on(err, platform));
        }
    };
    Ok(Json(render(&state, &view).await?))
}

/// The body of `POST …/mark-published`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[schema(as = MarkPublished)]
#[serde(default, deny_unknown_fields)]
struct MarkPublishedBody {
    /// The TikTok video's link (`…/video/<id>`) or numeric id, when known.
    video: Option<String>,
}

/// The body of `POST …/send-again`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[schema(as = SendAgain)]
#[serde(default, deny_unknown_fields)]
struct SendAgainBody {
    /// Must be `true`: the caller checked that the post is not on TikTok.
    confirm: bool,
}

/// A JSON body that may be empty (read as `{}`).
fn optional_body<T: Default + serde::de::DeserializeOwned>(raw: &[u8]) -> Result<T, Problem> {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(raw)
        .map_err(|e| Problem::invalid(format!("the body is not valid JSON for this action: {e}")))
}

/// What the two ways of settling a target whose outcome is unknown (`mark-published`,
/// `send-again`) share: the `api` scope, an optional JSON body, the action, and the post as it
/// then is.
async fn settle_unknown<B: Default + serde::de::DeserializeOwned>(
    caller: &Caller,
    state: &HttpState,
    raw: &[u8],
    action: impl AsyncFnOnce(B) -> Result<PostView, PublishError>,
) -> Result<Json<Value>, Problem> {
    caller.require_scope("api")?;
    let body: B = optional_body(raw)?;
    let view = action(body).await.map_err(problem)?;
    Ok(Json(render(state, &view).await?))
}

#[utoipa::path(
    post, path = "/api/v1/posts/{id}/targets/{target}/mark-published", tag = "posts",
    params(
        ("id" = String, Path, description = "The post's id"),
        ("target" = String, Path, description = "The id of the target whose outcome is unknown"),
    ),
    request_body(content = MarkPublishedBody, description = "Optional: the video's link or id"),
    responses(
        (status = 200, description = "The post, the target published", body = PostDoc),
        (status = 404, description = "No such post or target in this workspace", body = Problem),
        (status = 409, description = "The target's outcome is not unknown", body = Problem),
        (status = 422, description = "The video is not a TikTok video link or id", body = Problem),
    ),
)]
async fn mark_published(
    caller: Caller,
    State(state): State<HttpState>,
    Path((id, target)): Path<(String, String)>,
    raw: axum::body::Bytes,
) -> Result<Json<Value>, Problem> {
    settle_unknown(&caller, &state, &raw, async |body: MarkPublishedBody| {
        let ws = &caller.workspace_id;
        tiktok::reconcile::mark_published(&state.app, ws, &id, &target, body.video.as_deref()).await
    })
    .await
}

#[utoipa::path(
    post, path = "/api/v1/posts/{id}/targets/{target}/send-again", tag = "posts",
    params(
        ("id" = String, Path, description = "The post's id"),
        ("target" = String, Path, description = "The id of the target whose outcome is unknown"),
    ),
    request_body(content = SendAgainBody, description = "`confirm: true` is required"),
    responses(
        (status = 200, description = "The post, the target queued for a new publish", body = PostDoc),
        (status = 404, description = "No such post or target in this workspace", body = Problem),
        (status = 409, description = "The target's outcome is not unknown", body = Problem),
        (status = 422, description = "Not confirmed", body = Problem),
    ),
)]
async fn send_again(
    caller: Caller,
    State(state): State<HttpState>,
    Path((id, target)): Path<(String, String)>,
    raw: axum::body::Bytes,
) -> Result<Json<Value>, Problem> {
    settle_unknown(&caller, &state, &raw, async |body: SendAgainBody| {
        let ws = &caller.workspace_id;
        tiktok::reconcile::send_again(&state.app, ws, &id, &target, body.confirm).await
    })
    .await
}
