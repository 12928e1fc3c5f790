//! `/settings/time-zone`: the zone a person sees every time in, kept per user. Until they
//! choose one, their browser's zone is used (`zone.rs`).

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Form, Router};
use serde::Deserialize;
use tidepost_store::users;

use super::Chrome;
use crate::auth::Viewer;
use crate::error::PageError;
use crate::state::HttpState;
use crate::zone::{Zone, ZoneSource};

pub fn router() -> Router<HttpState> {
    Router::new().route("/settings/time-zone", get(page).post(save))
}

#[derive(Template, WebTemplate)]
#[template(path = "time_zone.html")]
struct TimeZonePage {
    chrome: Chrome,
    /// The zone pages use now, and where it comes from, in words.
    current: String,
    source: &'static str,
    /// The chosen zone ("" for the browser's).
    chosen: String,
    zones: Vec<String>,
    saved: bool,
    error: Option<String>,
}

fn render(viewer: &Viewer, state: &HttpState, saved: bool, error: Option<String>) -> TimeZonePage {
    let mut zones: Vec<String> = jiff::tz::db()
        .available()
        .map(|name| name.as_str().to_string())
        .filter(|name| name.contains('/') || name == "UTC")
        .collect();
    zones.sort();
    zones.dedup();
    TimeZonePage {
        chrome: Chrome::for_viewer(state, viewer, "Settings"),
        current: viewer.zone.name().to_string(),
        source: match viewer.zone.source() {
            ZoneSource::Chosen => "you chose it",
            ZoneSource::Browser => "your browser's zone",
            ZoneSource::Default => "no zone chosen and none known from your browser",
        },
        chosen: viewer.user.time_zone.clone().unwrap_or_default(),
        zones,
        saved,
        error,
    }
}

#[derive(Deserialize)]
struct PageQuery {
    saved: Option<String>,
}

async fn page(
    viewer: Viewer,
    State(state): State<HttpState>,
    Query(q): Query<PageQuery>,
) -> TimeZonePage {
    render(&viewer, &state, q.saved.is_some(), None)
}

#[derive(Deserialize)]
struct ZoneForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    time_zone: String,
}

/// Keeps the chosen zone (empty: the browser's again) and comes back to the page (post/
/// redirect/get). An unknown name is refused with the form and its reason.
async fn save(
    viewer: Viewer,
    State(state): State<HttpState>,
    Form(form): Form<ZoneForm>,
) -> Result<Response, PageError> {
    viewer.check_csrf(&form.csrf)?;
    let asked = form.time_zone.trim();
    let chosen = if asked.is_empty() {
        None
    } else {
        match Zone::named(asked, ZoneSource::Chosen) {
            Some(zone) => Some(zone),
            None => {
                let shown: String = asked.chars().take(80).collect();
                let page = render(
                    &viewer,
                    &state,
                    false,
                    Some(format!(
                        "{shown:?} is not a known time zone: choose one from the list (for example Europe/Paris or America/New_York)."
                    )),
                );
                return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
            }
        }
    };
    users::set_time_zone(
        &state.app.db,
        &viewer.user.id,
        chosen.as_ref().map(Zone::name),
    )
    .await?;
    Ok(Redirect::to("/settings/time-zone?saved=1").into_response())
}
