//! The body of `POST /posts` and `POST /posts/validate`, in every shape they take, read into
//! the one thing the app checks: a [`NewComposite`].
//!
//! - JSON or `multipart/form-data` (the same fields as text parts; `file` parts are stored
//!   strictly, streamed, never held in memory; a file that cannot be read as a video or image
//!   is refused before anything is kept).
//! - One post to several accounts: `targets[]` with the shared `caption` and `media`.
//! - The single-account shapes: `account_id` with the TikTok options at the top level
//!   (`media_url`, `media_id`, `photo_urls` or a `file`), or `account_id` with an `instagram`
//!   object. They become a one-target composite; [`Shape::Single`] remembers the platform so a
//!   refusal names the fields as the request did.
//!
//! The TikTok options are [`TikTokOptions`], written once in the app: the JSON body's keys
//! that are TikTok options are read by that type (its own checks, unknown keys refused).

use axum::extract::{FromRequest, Multipart, Request};
use futures::TryStreamExt;
use serde::Deserialize;
use serde_json::{Map, Value};
use tidepost_app::compose::{ComposeError, Issue, NewComposite, TargetSpec};
use tidepost_app::instagram::options::{
    InstagramOptions, InstagramPost, MediaType, NewInstagramPost, TrialParams, UserTag,
};
use tidepost_app::pipeline::media::{Item, ItemKind};
use tidepost_app::pipeline::{self, PublishError};
use tidepost_app::tiktok::{self, MediaSource, Mode, PostOptions, TikTokOptions};
use tidepost_domain::Platform;
use tokio_util::io::StreamReader;

use super::problems::{compose_problem, field_problem, problem, schedule_of};
use crate::bodies::{client_io, json_field, multipart_problem, text_field};
use crate::error::Problem;
use crate::state::HttpState;

/// Which shape a request was in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// `targets[]`.
    Composite,
    /// One account (`account_id`), of this platform when the account was found.
    Single(Option<Platform>),
}

/// A request read: the post as the app checks it, and its shape.
#[derive(Debug)]
pub struct Submission {
    pub new: NewComposite,
    pub shape: Shape,
    /// `draft: true`: save it as a draft (nothing checked, nothing sent).
    pub draft: bool,
}

/// Whether `file` parts may be stored (`POST /posts`) or are refused (`/validate` stores
/// nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Files {
    Store,
    Refuse,
}

/// The fields of the body besides the TikTok options.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct CreatePost {
    account_id: String,
    caption: String,
    media_url: Option<String>,
    media_id: Option<String>,
    photo_urls: Vec<String>,
    idempotency_key: Option<String>,
    instagram: Option<InstagramBody>,
    /// One post to several accounts; `account_id` is then left out.
    targets: Option<Vec<TargetSpec>>,
    /// The shared media of a post to several accounts.
    media: Vec<Item>,
    scheduled_at: Option<String>,
    time_zone: Option<String>,
    /// `next_free_slot` or `exact` (the default).
    schedule: Option<String>,
    /// Saves the post as a draft instead.
    draft: bool,
}

/// The `instagram` object of the single-account shape.
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
    collaborators: Vec<String>,
    user_tags: Vec<UserTag>,
    location_id: Option<String>,
    alt_text: Option<String>,
    thumb_offset: Option<u64>,
    audio_name: Option<String>,
    trial_params: Option<TrialParams>,
    first_comment: Option<String>,
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
        if single {
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
        let options = InstagramOptions {
            media_type: Some(media_type),
            cover_url: self.cover_url,
            share_to_feed: self.share_to_feed,
            collaborators: self.collaborators,
            user_tags: self.user_tags,
            location_id: self.location_id,
            alt_text: self.alt_text,
            thumb_offset: self.thumb_offset,
            audio_name: self.audio_name,
            trial_params: self.trial_params,
            first_comment: self.first_comment,
        };
        Ok(InstagramPost::from_options(
            media_type,
            self.caption.unwrap_or(caption),
            items,
            options,
        ))
    }
}

/// A body read, before it is turned into a post.
struct Parsed {
    body: CreatePost,
    tiktok: TikTokOptions,
    /// Media stored from `file` parts, in order (`None`: the body was JSON).
    uploads: Option<Vec<String>>,
}

/// Reads the body of `request` (JSON or multipart) as a post of `workspace_id`.
pub async fn read(
    state: &HttpState,
    workspace_id: &str,
    request: Request,
    files: Files,
    created_by: Option<String>,
) -> Result<Submission, Problem> {
    read_as(state, workspace_id, request, files, created_by, false).await
}

/// [`read`] for a draft (`/drafts`): as if the body said `"draft": true`.
pub async fn read_draft(
    state: &HttpState,
    workspace_id: &str,
    request: Request,
    created_by: Option<String>,
) -> Result<Submission, Problem> {
    read_as(state, workspace_id, request, Files::Store, created_by, true).await
}

async fn read_as(
    state: &HttpState,
    workspace_id: &str,
    request: Request,
    files: Files,
    created_by: Option<String>,
    draft: bool,
) -> Result<Submission, Problem> {
    let header_key = request
        .headers()
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .filter(|k| !k.is_empty());
    let mut parsed = if crate::bodies::is_multipart(request.headers()) {
        multipart(state, workspace_id, request, files).await?
    } else {
        json(state, request).await?
    };
    if parsed.body.idempotency_key.is_none() {
        parsed.body.idempotency_key = header_key;
    }
    parsed.body.draft |= draft;
    submission(state, workspace_id, parsed, created_by).await
}

/// A JSON body: the TikTok options by their type, the rest by [`CreatePost`].
async fn json(state: &HttpState, request: Request) -> Result<Parsed, Problem> {
    // The route's own limit is off for streamed multipart uploads; a JSON body is buffered,
    // so it keeps the default limit.
    let (parts, body) = request.into_parts();
    // A body cut short is the client's 400, not "too large".
    let bytes = crate::bodies::read_whole(body, crate::server::DEFAULT_BODY_LIMIT).await?;
    let request = Request::from_parts(parts, axum::body::Body::from(bytes));
    let crate::api::ApiJson(value) =
        crate::api::ApiJson::<Value>::from_request(request, state).await?;
    let Value::Object(mut fields) = value else {
        return Err(Problem::invalid("the body must be a JSON object"));
    };
    let options = take_tiktok_options(&mut fields);
    let tiktok = decode(options, "")?;
    let body = decode(fields, "")?;
    Ok(Parsed {
        body,
        tiktok,
        uploads: None,
    })
}

/// Moves the keys that are TikTok options out of `fields`.
fn take_tiktok_options(fields: &mut Map<String, Value>) -> Map<String, Value> {
    TikTokOptions::FIELDS
        .iter()
        .filter_map(|name| fields.remove(*name).map(|v| (name.to_string(), v)))
        .collect()
}

/// `fields` as a `T`, a refusal naming the field at fault (under `prefix`).
fn decode<T: serde::de::DeserializeOwned>(
    fields: Map<String, Value>,
    prefix: &str,
) -> Result<T, Problem> {
    serde_path_to_error::deserialize(Value::Object(fields)).map_err(|e| {
        let path = e.path().to_string();
        let field = match (prefix, path.as_str()) {
            (_, ".") => prefix.to_string(),
            ("", path) => path.to_string(),
            (prefix, path) => format!("{prefix}.{path}"),
        };
        let message = e.into_inner().to_string();
        if field.is_empty() {
            Problem::invalid(message)
        } else {
            field_problem(&field, message)
        }
    })
}

/// A multipart body: text parts carry the JSON body's fields (`targets`, `media` and
/// `instagram` as JSON text), `file` parts are stored in order.
async fn multipart(
    state: &HttpState,
    workspace_id: &str,
    request: Request,
    files: Files,
) -> Result<Parsed, Problem> {
    let mut multipart = Multipart::from_request(request, state)
        .await
        .map_err(|e| multipart_problem(e.body_text(), e.status()))?;
    let mut fields = Map::new();
    let mut stored = Vec::new();
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|e| multipart_problem(e.body_text(), e.status()))?
    {
        let name = field.name().unwrap_or_default().to_string();
        if name == "file" {
            if files == Files::Refuse {
                return Err(field_problem(
                    "file",
                    "validating stores nothing: upload the file first (POST /api/v1/media or /api/v1/uploads) and give its media_id",
                ));
            }
            let content_type = field
                .content_type()
                .unwrap_or("application/octet-stream")
                .to_string();
            let file_name = field.file_name().map(str::to_string);
            if let Some(file_name) = &file_name {
                text_field(&name, file_name)?;
            }
            let reader = StreamReader::new(field.map_err(client_io));
            let media = pipeline::media::store(
                &state.app,
                workspace_id,
                reader,
                &content_type,
                file_name.as_deref(),
            )
            .await
            .map_err(|e| upload_problem(e, stored.len()))?;
            stored.push(media.id);
            continue;
        }
        let text = field
            .text()
            .await
            .map_err(|e| multipart_problem(e.body_text(), e.status()))?;
        // A NUL in a text part, refused naming the part (JSON text parts by their own path).
        text_field(&name, &text)?;
        if text.trim().is_empty() {
            continue;
        }
        let value = match name.as_str() {
            "targets" | "media" | "instagram" => {
                let value = serde_json::from_str(&text).map_err(|e| field_problem(&name, e))?;
                json_field(&name, &value)?;
                value
            }
            "photo_urls" => Value::Array(vec![Value::String(text)]),
            // A TikTok option's text as the value it stands for (a checkbox's word, a number);
            // every other field is text as it came (a caption of "2024" stays a caption).
            name if TikTokOptions::TEXT_FIELDS.contains(&name) => Value::String(text),
            name if TikTokOptions::FIELDS.contains(&name) => form_value(&text),
            _ => Value::String(text),
        };
        match (fields.get_mut(&name), value) {
            // Repeated `photo_urls` parts add up.
            (Some(Value::Array(list)), Value::Array(more)) => list.extend(more),
            (_, value) => {
                fields.insert(name, value);
            }
        }
    }
    let options = take_tiktok_options(&mut fields);
    let tiktok = decode(options, "")?;
    // Unknown text parts are ignored, as form fields are.
    fields.retain(|name, _| CreatePost::FIELDS.contains(&name.as_str()));
    let body = decode(fields, "")?;
    Ok(Parsed {
        body,
        tiktok,
        uploads: Some(stored),
    })
}

/// A form field's text as the JSON value it stands for: the words of a checkbox as booleans,
/// whole numbers as numbers, anything else as text.
fn form_value(text: &str) -> Value {
    match text.trim() {
        "true" | "on" | "yes" => Value::Bool(true),
        "false" | "off" | "no" => Value::Bool(false),
        t => match t.parse::<u64>() {
            Ok(n) => Value::from(n),
            Err(_) => Value::String(text.to_string()),
        },
    }
}

impl CreatePost {
    /// The body's field names (multipart keeps only these).
    const FIELDS: &[&str] = &[
        "account_id",
        "caption",
        "media_url",
        "media_id",
        "photo_urls",
        "idempotency_key",
        "instagram",
        "targets",
        "media",
        "scheduled_at",
        "time_zone",
        "schedule",
        "draft",
    ];
}

/// A file that could not be stored as the refusal of the post: one that cannot be read as a
/// video or image is an issue like any other (`media.probe`), the rest as they are.
fn upload_problem(err: PublishError, index: usize) -> Problem {
    match err {
        PublishError::Invalid { field, message }
            if field == tidepost_app::media::UNREADABLE_RULE =>
        {
            compose_problem(ComposeError::Invalid(vec![Issue {
                target: None,
                account_id: None,
                platform: None,
                field: format!("media[{index}]"),
                rule: field.to_string(),
                message,
                next_slot_ms: None,
                provider: None,
            }]))
        }
        other @ (PublishError::Invalid { .. }
        | PublishError::NotFound(_)
        | PublishError::Quota { .. }
        | PublishError::Conflict(_)
        | PublishError::NeedsReauth(_)
        | PublishError::Provider(_)
        | PublishError::Unavailable(_)
        | PublishError::Store(_)
        | PublishError::Io(_)
        | PublishError::TooLarge { .. }) => problem(other),
    }
}

/// The TikTok options given, by name (those that differ from the defaults).
fn given_options(options: &TikTokOptions) -> Vec<String> {
    let (Ok(Value::Object(given)), Ok(Value::Object(default))) = (
        serde_json::to_value(options),
        serde_json::to_value(TikTokOptions::default()),
    ) else {
        return Vec::new();
    };
    given
        .into_iter()
        .filter(|(name, value)| default.get(name) != Some(value))
        .map(|(name, _)| name)
        .collect()
}

/// The post a parsed body describes.
async fn submission(
    state: &HttpState,
    workspace_id: &str,
    parsed: Parsed,
    created_by: Option<String>,
) -> Result<Submission, Problem> {
    let Parsed {
        mut body,
        tiktok,
        uploads,
    } = parsed;
    let schedule = schedule_of(
        body.scheduled_at.as_deref(),
        body.time_zone.as_deref(),
        body.schedule.as_deref(),
    )?;
    let given = given_options(&tiktok);
    let draft = body.draft;
    // A draft may not know its accounts yet: with none given it is a post to several, to be
    // chosen later.
    let targets = body
        .targets
        .take()
        .or_else(|| (draft && body.account_id.is_empty()).then(Vec::new));
    if let Some(targets) = targets {
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
        if let Some(field) = given.first() {
            return Err(field_problem(
                field,
                "with `targets`, TikTok options go in each target's `tiktok` object",
            ));
        }
        let mut media = std::mem::take(&mut body.media);
        media.extend(top_level_media(&mut body, None));
        media.extend(stored_items(uploads));
        return Ok(Submission {
            new: NewComposite {
                caption: body.caption,
                media,
                targets,
                schedule,
                idempotency_key: body.idempotency_key,
                created_by,
            },
            shape: Shape::Composite,
            draft,
        });
    }
    if body.account_id.is_empty() {
        return Err(field_problem(
            "account_id",
            "choose the TikTok or Instagram account to post to (or give `targets`)",
        ));
    }
    if !body.media.is_empty() {
        return Err(field_problem(
            "media",
            "`media` goes with `targets`; for one account give media_url, media_id, photo_urls or a file",
        ));
    }
    let platform = tidepost_store::accounts::get(&state.app.db, workspace_id, &body.account_id)
        .await?
        .map(|a| a.platform);
    let single = match (platform, body.instagram.take()) {
        (Some(Platform::Threads), _) => {
            return Err(field_problem(
                "targets",
                "this is a Threads account: describe the post with `targets` ([{\"account_id\": …, \"threads\": {…}}]) and `caption` / `media`",
            ));
        }
        (Some(Platform::Instagram), None) => {
            return Err(field_problem(
                "instagram",
                "this is an Instagram account: describe the post in an `instagram` object (media_type and items)",
            ));
        }
        (Some(Platform::Instagram) | None, Some(instagram)) => {
            let tiktok_field = given.first().cloned().or_else(|| {
                [
                    ("media_url", body.media_url.is_some()),
                    ("media_id", body.media_id.is_some()),
                    ("photo_urls", !body.photo_urls.is_empty()),
                ]
                .into_iter()
                .find_map(|(name, given)| given.then(|| name.to_string()))
            });
            if let Some(field) = tiktok_field {
                return Err(field_problem(
                    &field,
                    "this is a TikTok field; an Instagram post takes its media in the `instagram` object",
                ));
            }
            let post = instagram.into_post(
                std::mem::take(&mut body.caption),
                uploads.unwrap_or_default(),
            )?;
            NewComposite::from(NewInstagramPost {
                account_id: body.account_id,
                post,
                idempotency_key: body.idempotency_key,
                created_by,
            })
        }
        (Some(Platform::Tiktok), Some(_)) => {
            return Err(field_problem(
                "instagram",
                "this is a TikTok account: the `instagram` object does not apply",
            ));
        }
        (Some(Platform::Tiktok) | None, None) => {
            let media = tiktok_media(&mut body, uploads)?;
            let mode = tiktok.mode.unwrap_or(Mode::Direct);
            let photo_urls = std::mem::take(&mut body.photo_urls);
            NewComposite::from(tiktok::NewPost {
                account_id: body.account_id,
                mode,
                options: PostOptions::new(&body.caption, photo_urls, tiktok),
                media,
                idempotency_key: body.idempotency_key,
                created_by,
            })
        }
    };
    Ok(Submission {
        new: NewComposite { schedule, ..single },
        shape: Shape::Single(platform),
        draft,
    })
}

/// The media of the single-account TikTok shape: a stored file, a video URL, stored media, or
/// photo URLs; exactly one.
fn tiktok_media(
    body: &mut CreatePost,
    uploads: Option<Vec<String>>,
) -> Result<MediaSource, Problem> {
    match uploads {
        Some(stored) => match (stored.last(), body.media_url.take(), body.media_id.take()) {
            (Some(id), None, None) if body.photo_urls.is_empty() => {
                Ok(MediaSource::Stored(id.clone()))
            }
            (None, Some(url), None) if body.photo_urls.is_empty() => Ok(MediaSource::VideoUrl(url)),
            (None, None, Some(id)) if body.photo_urls.is_empty() => Ok(MediaSource::Stored(id)),
            (None, None, None) if !body.photo_urls.is_empty() => Ok(MediaSource::Photos),
            (None, None, None) => Err(field_problem(
                "file",
                "attach the video as a `file` part, or give a media_url",
            )),
            _ => Err(field_problem(
                "media",
                "give exactly one of a `file`, media_url, media_id or photo_urls",
            )),
        },
        None => match (
            body.media_id.take(),
            body.media_url.take(),
            body.photo_urls.is_empty(),
        ) {
            (Some(id), None, true) => Ok(MediaSource::Stored(id)),
            (None, Some(url), true) => Ok(MediaSource::VideoUrl(url)),
            (None, None, false) => Ok(MediaSource::Photos),
            _ => Err(field_problem(
                "media",
                "give exactly one of media_url (a video TikTok downloads), photo_urls (a photo post) or media_id (stored media)",
            )),
        },
    }
}

/// `media_url`, `media_id` and `photo_urls` given beside `targets`, as media items.
fn top_level_media(body: &mut CreatePost, url_kind: Option<ItemKind>) -> Vec<Item> {
    let mut media = Vec::new();
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
    media
}

/// Stored uploads as media items.
fn stored_items(uploads: Option<Vec<String>>) -> impl Iterator<Item = Item> {
    uploads.unwrap_or_default().into_iter().map(|id| Item {
        media_id: Some(id),
        ..Item::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_values() {
        assert_eq!(form_value("on"), Value::Bool(true));
        assert_eq!(form_value("false"), Value::Bool(false));
        assert_eq!(form_value("1500"), Value::from(1500));
        assert_eq!(form_value("SELF_ONLY"), Value::from("SELF_ONLY"));
    }

    #[test]
    fn tiktok_options_are_split_out_by_their_own_names() {
        let mut fields: Map<String, Value> = serde_json::from_value(serde_json::json!({
            "account_id": "a",
            "privacy_level": "SELF_ONLY",
            "disable_duet": true,
            "caption": "hi",
        }))
        .unwrap();
        let options = take_tiktok_options(&mut fields);
        assert_eq!(options.len(), 2);
        let options: TikTokOptions = decode(options, "").unwrap();
        assert_eq!(options.privacy_level.as_deref(), Some("SELF_ONLY"));
        assert!(options.disable_duet);
        let mut given = given_options(&options);
        given.sort();
        assert_eq!(given, vec!["disable_duet", "privacy_level"]);
        let body: CreatePost = decode(fields, "").unwrap();
        assert_eq!(body.account_id, "a");
        // An unknown field is refused by name.
        let mut unknown = Map::new();
        unknown.insert("privacy".into(), Value::from("x"));
        assert!(decode::<CreatePost>(unknown, "").is_err());
    }
}
