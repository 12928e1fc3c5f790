//! Settings: the workspace and its API keys (create, list, revoke).

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use axum_extra::extract::CookieJar;
use serde::Deserialize;
use tidepost_app::access;
use tidepost_store::api_keys;

use super::{Chrome, flash};
use crate::auth::{CsrfForm, Viewer};
use crate::error::PageError;
use crate::state::HttpState;

pub fn router() -> Router<HttpState> {
    Router::new()
        .route("/settings", get(settings))
        .route("/settings/api-keys", post(create_key))
        .route("/settings/api-keys/{id}/revoke", post(revoke_key))
        .route("/settings/allowed-origins", post(save_origins))
}

struct KeyRow {
    id: String,
    name: String,
    prefix: String,
    scopes: String,
    created: String,
    last_used: String,
    revoked: bool,
}

/// A key just created: what the page shows once, carried there by a flash cookie.
#[derive(serde::Serialize, Deserialize)]
struct CreatedKey {
    name: String,
    secret: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "settings.html")]
struct SettingsPage {
    chrome: Chrome,
    keys: Vec<KeyRow>,
    created: Option<CreatedKey>,
    error: Option<String>,
    /// The allowed origins, one a line (as typed, when they were refused).
    origins_text: String,
    origins_error: Option<String>,
}

async fn page(
    state: &HttpState,
    viewer: &Viewer,
    created: Option<CreatedKey>,
    error: Option<String>,
) -> Result<SettingsPage, PageError> {
    let keys = api_keys::list(&state.app.db, &viewer.workspace.id)
        .await?
        .into_iter()
        .map(|k| KeyRow {
            revoked: k.revoked_at.is_some(),
            created: viewer.zone.when(Some(k.created_at)),
            last_used: viewer.zone.when(k.last_used_at),
            id: k.id,
            name: k.name,
            prefix: k.prefix,
            scopes: k.scopes,
        })
        .collect();
    let origins = tidepost_app::connect_links::origins(&state.app, &viewer.workspace.id).await?;
    Ok(SettingsPage {
        chrome: Chrome::for_viewer(state, viewer, "Settings"),
        keys,
        created,
        error,
        origins_text: origins.join("\n"),
        origins_error: None,
    })
}

/// The settings page; right after a key was created it shows that key's secret, once.
async fn settings(
    State(state): State<HttpState>,
    viewer: Viewer,
    jar: CookieJar,
) -> Result<Response, PageError> {
    let (jar, created) =
        flash::take::<CreatedKey>(&state, jar, flash::API_KEY, &viewer.session.token_hash);
    Ok((jar, page(&state, &viewer, created, None).await?).into_response())
}

#[derive(Deserialize)]
struct CreateKeyForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    worker: Option<String>,
}

/// Creates the key and answers 303 to `/settings`, which shows the secret once (post/redirect/
/// get: reloading that page neither creates another key nor shows the secret again).
async fn create_key(
    State(state): State<HttpState>,
    viewer: Viewer,
    jar: CookieJar,
    Form(form): Form<CreateKeyForm>,
) -> Result<Response, PageError> {
    viewer.check_csrf(&form.csrf)?;
    let scopes: &[&str] = if form.worker.is_some() {
        &["api", "worker"]
    } else {
        &["api"]
    };
    let grant = access::KeyGrant {
        role: viewer.role,
        created_by: Some((&viewer.user.id, viewer.role)),
    };
    match access::create_api_key_as(
        &state.app.db,
        &viewer.workspace.id,
        &form.name,
        scopes,
        grant,
    )
    .await
    {
        Ok(created) => {
            tracing::info!(key_id = %created.key.id, workspace = %viewer.workspace.slug, "API key created");
            let created = CreatedKey {
                name: created.key.name,
                secret: created.secret,
            };
            let cookie = flash::set(&state, flash::API_KEY, &viewer.session.token_hash, &created);
            Ok((jar.add(cookie), Redirect::to("/settings")).into_response())
        }
        Err(access::AccessError::Store(e)) => Err(e.into()),
        Err(err) => Ok((
            StatusCode::UNPROCESSABLE_ENTITY,
            page(&state, &viewer, None, Some(err.to_string())).await?,
        )
            .into_response()),
    }
}

async fn revoke_key(
    State(state): State<HttpState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, PageError> {
    viewer.check_csrf(&form.csrf)?;
    if !api_keys::revoke(
        &state.app.db,
        &viewer.workspace.id,
        &id,
        tidepost_domain::now_ms(),
    )
    .await?
    {
        return Err(PageError::not_found());
    }
    tracing::info!(key_id = %id, workspace = %viewer.workspace.slug, "API key revoked");
    Ok(Redirect::to("/settings").into_response())
}

#[derive(Deserialize)]
struct OriginsForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    origins: String,
}

/// Saves the allowed origins (one a line) and answers 303 to `/settings`; a refused origin
/// shows the page again (422) with the reason and the text as typed.
async fn save_origins(
    State(state): State<HttpState>,
    viewer: Viewer,
    Form(form): Form<OriginsForm>,
) -> Result<Response, PageError> {
    viewer.check_csrf(&form.csrf)?;
    // The typed lines that hold something, with their line numbers for the message.
    let (numbers, lines): (Vec<usize>, Vec<String>) = form
        .origins
        .lines()
        .enumerate()
        .map(|(n, l)| (n + 1, l.trim().to_string()))
        .filter(|(_, l)| !l.is_empty())
        .unzip();
    match tidepost_app::connect_links::set_origins(
        &state.app,
        &viewer.workspace.id,
        "origins",
        &lines,
    )
    .await
    {
        Ok(_) => Ok(Redirect::to("/settings#origins").into_response()),
        Err(tidepost_app::connect_links::LinkError::Store(e)) => Err(e.into()),
        Err(tidepost_app::connect_links::LinkError::Invalid { field, message, .. }) => {
            let line = field
                .trim_start_matches("origins[")
                .trim_end_matches(']')
                .parse::<usize>()
                .ok()
                .and_then(|i| numbers.get(i))
                .map(|n| format!("Line {n}: "))
                .unwrap_or_default();
            let mut page = page(&state, &viewer, None, None).await?;
            page.origins_text = form.origins;
            page.origins_error = Some(format!("{line}{}.", crate::error::capitalize(&message)));
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
    }
}
