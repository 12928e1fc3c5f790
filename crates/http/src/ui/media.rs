//! The media library page: the workspace's stored videos and images with their probed
//! metadata (format, codecs, size, duration, picture size), an upload with a progress bar
//! (resumable, through `/api/v1/uploads` with `assets/tus_upload.js`), and delete (refused,
//! with the reason, while a post that has not finished uses the file).

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;
use tidepost_app::media::{self, MediaError, rules};
use tidepost_store::media::{self as repo, Media};

use super::Chrome;
use crate::auth::{CsrfForm, Viewer};
use crate::error::PageError;
use crate::state::HttpState;
use crate::zone::Zone;

const PAGE: i64 = 48;

pub fn router() -> Router<HttpState> {
    Router::new()
        .route("/media", get(page))
        .route("/media/{id}/delete", post(remove))
}

struct Item {
    id: String,
    name: String,
    kind: String,
    format: String,
    size: String,
    dimensions: String,
    duration: String,
    codecs: String,
    added: String,
    problem: String,
}

impl Item {
    fn of(m: &Media, zone: &Zone) -> Self {
        let info = media::info(m);
        let codecs = info
            .as_ref()
            .map(|i| {
                [i.video_codec.as_deref(), i.audio_codec.as_deref()]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(" + ")
            })
            .unwrap_or_default();
        Self {
            id: m.id.clone(),
            name: m
                .original_name
                .clone()
                .unwrap_or_else(|| format!("{} {}", m.kind, &m.sha256[..8.min(m.sha256.len())])),
            kind: m.kind.clone(),
            format: m
                .container
                .clone()
                .map(|c| c.to_ascii_uppercase())
                .unwrap_or_else(|| m.content_type.clone()),
            size: rules::bytes(u64::try_from(m.size_bytes).unwrap_or(0)),
            dimensions: match (m.width, m.height) {
                (Some(w), Some(h)) => format!("{w}×{h}"),
                _ => String::new(),
            },
            duration: m
                .duration_ms
                .map(|ms| format!("{:.1} s", ms as f64 / 1000.0))
                .unwrap_or_default(),
            codecs,
            added: zone.when(Some(m.created_at)),
            problem: m.probe_error.clone().unwrap_or_default(),
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "media.html")]
struct MediaPage {
    chrome: Chrome,
    items: Vec<Item>,
    kind: String,
    next: Option<String>,
    notice: Option<String>,
    error: Option<String>,
    /// The media storage does not answer or refuses tidepost: uploads cannot work.
    storage_down: Option<String>,
    max_upload: String,
}

#[derive(Deserialize, Default)]
struct MediaQuery {
    kind: Option<String>,
    cursor: Option<String>,
    deleted: Option<String>,
    error: Option<String>,
}

async fn page(
    viewer: Viewer,
    State(state): State<HttpState>,
    Query(q): Query<MediaQuery>,
) -> Result<Response, PageError> {
    let kind = q
        .kind
        .filter(|k| media::MediaKind::parse(k).is_some())
        .unwrap_or_default();
    let rows = repo::list(
        &state.app.db,
        &viewer.workspace.id,
        (!kind.is_empty()).then_some(kind.as_str()),
        q.cursor.as_deref(),
        PAGE + 1,
    )
    .await?;
    let next = (rows.len() as i64 > PAGE).then(|| rows[PAGE as usize - 1].id.clone());
    let items = rows
        .iter()
        .take(PAGE as usize)
        .map(|m| Item::of(m, &viewer.zone))
        .collect();
    Ok(MediaPage {
        chrome: Chrome::for_viewer(&state, &viewer, "Media"),
        items,
        kind,
        next,
        notice: q.deleted.map(|_| "Deleted.".to_string()),
        error: q.error,
        storage_down: media::storage_problem(&state.app).await.map(|why| {
            format!(
                "Uploads and sending stored media fail right now: the media storage does not answer or refuses tidepost ({why}). Check its settings and credentials (`tidepost storage check`)."
            )
        }),
        max_upload: rules::bytes(state.app.config.publish.max_upload_bytes),
    }
    .into_response())
}

async fn remove(
    viewer: Viewer,
    State(state): State<HttpState>,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, PageError> {
    viewer.check_csrf(&form.csrf)?;
    match media::delete(&state.app, &viewer.workspace.id, &id).await {
        Ok(()) => Ok(Redirect::to("/media?deleted=1").into_response()),
        Err(MediaError::NotFound(_)) => Err(PageError::not_found()),
        Err(e @ MediaError::InUse { .. }) => {
            let message = e.to_string();
            Ok(Redirect::to(&format!(
                "/media?error={}",
                url::form_urlencoded::byte_serialize(message.as_bytes()).collect::<String>()
            ))
            .into_response())
        }
        Err(e) => Err(PageError::internal(e)),
    }
}
