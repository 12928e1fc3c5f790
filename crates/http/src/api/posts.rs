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
//! - `GET /posts?limit=&after=`: newest first, cursor pagination (`next_cursor`).
//! - `GET /posts/{id}`: the post and its targets (state, bytes, error, provider ids as strings).
//! - `POST /posts/{id}/cancel`, `POST /posts/{id}/targets/{target}/retry`.

use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::TryStreamExt;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::HashMap;

use tidepost_app::instagram::publish::{InstagramPost, Item, MediaType, NewInstagramPost};
use tidepost_app::publish::{
    self, MediaSource, Mode, NewPost, PostOptions, PostView, PublishError,
};
use tidepost_domain::{PostSummary, TargetState};
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
        .route("/posts/{id}", get(show))
        .route("/posts/{id}/cancel", post(cancel))
        .route("/posts/{id}/targets/{target}/retry", post(retry))
}

/// A publish error as problem+json (the account is a TikTok one).
pub fn problem(err: PublishError) -> Problem {
    problem_on(err, "tiktok")
}

/// The name a person knows a platform by.
fn platform_name(platform: &str) -> &'static str {
    if platform == tidepost_app::instagram::PLATFORM {
        "Instagram"
    } else {
        "TikTok"
    }
}

/// A publish error about an account of `platform` as problem+json.
pub fn problem_on(err: PublishError, platform: &str) -> Problem {
    let name = platform_name(platform);
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
            format!("{message}; connect the {name} account again"),
        ),
        PublishError::Provider(e) => {
            let retryable = e.is_retryable();
            Problem::new(
                StatusCode::BAD_GATEWAY,
                "provider-error",
                if name == "Instagram" {
                    "Instagram refused"
                } else {
                    "TikTok refused"
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
        other => Problem::internal(other),
    }
}

/// One post as the API shows it, with what is recorded of its Instagram media.
pub async fn render(state: &HttpState, view: &PostView) -> Result<Value, Problem> {
    let mut instagram = HashMap::new();
    for t in &view.targets {
        if t.platform == tidepost_app::instagram::PLATFORM
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
        "targets": view.targets.iter().map(|t| {
            let post_ids = t.post_ids();
            let ig = instagram.get(&t.id);
            let post_url = if t.platform == tidepost_app::instagram::PLATFORM {
                ig.and_then(|m| m.permalink.clone())
            } else {
                post_ids.first().map(|id| format!("https://www.tiktok.com/video/{id}"))
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
        other => problem_on(other, tidepost_app::instagram::PLATFORM),
    }
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

    fn into_new_post(self, media: MediaSource, created_by: Option<String>) -> NewPost {
        NewPost {
            account_id: self.account_id,
            mode: self.mode.unwrap_or(Mode::Direct),
            options: PostOptions {
                caption: self.caption,
                privacy_level: self.privacy_level,
                disable_comment: self.disable_comment,
                disable_duet: self.disable_duet,
                disable_stitch: self.disable_stitch,
                video_cover_timestamp_ms: self.video_cover_timestamp_ms,
                brand_content_toggle: self.brand_content_toggle,
                brand_organic_toggle: self.brand_organic_toggle,
                is_aigc: self.is_aigc,
                duration_sec: self.duration_sec,
                photo_cover_index: self.photo_cover_index,
                photo_urls: self.photo_urls,
            },
            media,
            idempotency_key: self.idempotency_key,
            created_by,
        }
    }
}

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
                let media = publish::media::store(
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
        let crate::api::ApiJson(body) =
            crate::api::ApiJson::<CreatePost>::from_request(request, &state).await?;
        (body, None)
    };
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
    let view = publish::submit(
        &state.app,
        &caller.workspace_id,
        body.into_new_post(media, created_by),
    )
    .await
    .map_err(problem)?;
    Ok((StatusCode::ACCEPTED, Json(render(&state, &view).await?)))
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
async fn platform_of(state: &HttpState, workspace_id: &str, post_id: &str) -> String {
    tidepost_store::posts::targets_of(&state.app.db, workspace_id, post_id)
        .await
        .ok()
        .and_then(|t| t.first().map(|t| t.platform.clone()))
        .unwrap_or_else(|| "tiktok".into())
}

#[derive(Deserialize)]
struct ListQuery {
    limit: Option<i64>,
    after: Option<String>,
}

async fn list(
    caller: Caller,
    State(state): State<HttpState>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, Problem> {
    caller.require_scope("api")?;
    let limit = q.limit.unwrap_or(25).clamp(1, 100);
    let posts = tidepost_store::posts::list(
        &state.app.db,
        &caller.workspace_id,
        q.after.as_deref(),
        limit,
    )
    .await?;
    let mut data = Vec::with_capacity(posts.len());
    for post in &posts {
        let targets =
            tidepost_store::posts::targets_of(&state.app.db, &caller.workspace_id, &post.id)
                .await?;
        data.push(
            render(
                &state,
                &PostView {
                    post: post.clone(),
                    targets,
                },
            )
            .await?,
        );
    }
    let next = (posts.len() as i64 == limit)
        .then(|| posts.last().map(|p| p.id.clone()))
        .flatten();
    Ok(Json(json!({"data": data, "next_cursor": next})))
}

async fn show(
    caller: Caller,
    State(state): State<HttpState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, Problem> {
    caller.require_scope("api")?;
    let view = match publish::get(&state.app, &caller.workspace_id, &id).await {
        Ok(view) => view,
        Err(err) => {
            let platform = platform_of(&state, &caller.workspace_id, &id).await;
            return Err(problem_on(err, &platform));
        }
    };
    Ok(Json(render(&state, &view).await?))
}

async fn cancel(
    caller: Caller,
    State(state): State<HttpState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, Problem> {
    caller.require_scope("api")?;
    let view = match publish::cancel(&state.app, &caller.workspace_id, &id).await {
        Ok(view) => view,
        Err(err) => {
            let platform = platform_of(&state, &caller.workspace_id, &id).await;
            return Err(problem_on(err, &platform));
        }
    };
    Ok(Json(render(&state, &view).await?))
}

async fn retry(
    caller: Caller,
    State(state): State<HttpState>,
    Path((id, target)): Path<(String, String)>,
) -> Result<Json<Value>, Problem> {
    caller.require_scope("api")?;
    let view = match publish::retry(&state.app, &caller.workspace_id, &id, &target).await {
        Ok(view) => view,
        Err(err) => {
            let platform = platform_of(&state, &caller.workspace_id, &id).await;
            return Err(problem_on(err, &platform));
        }
    };
    Ok(Json(render(&state, &view).await?))
}
