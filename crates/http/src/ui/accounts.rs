//! Connected accounts: the connect pages, the account list and detail, disconnecting, and the
//! reusable account card (also on the dashboard).

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;
use tidepost_app::connect::{self, ConnectError, Initiator, TIKTOK_SCOPE_REASONS};
use tidepost_store::accounts::{self, Account};
use tidepost_store::events;

use super::{Chrome, when};
use crate::auth::Viewer;
use crate::error::PageError;
use crate::state::HttpState;

pub fn router() -> Router<HttpState> {
    Router::new()
        .route(
            "/connect/tiktok",
            get(connect_tiktok_page).post(connect_tiktok_start),
        )
        .route("/accounts", get(list))
        .route("/accounts/{id}", get(detail))
        .route("/accounts/{id}/disconnect", post(disconnect))
}

/// An account as the card shows it.
pub struct AccountCard {
    pub id: String,
    pub platform: String,
    pub platform_name: &'static str,
    pub platform_initial: &'static str,
    pub display_name: String,
    pub username: Option<String>,
    pub avatar_url: Option<String>,
    pub health: &'static str,
    pub health_class: &'static str,
    pub needs_reauth: bool,
    pub status_reason: Option<String>,
    pub token_line: String,
    pub reconnect_href: String,
}

impl AccountCard {
    pub fn of(account: &Account) -> Self {
        let (platform_name, platform_initial) = match account.platform.as_str() {
            "tiktok" => ("TikTok", "T"),
            "instagram" => ("Instagram", "I"),
            _ => ("Unknown", "?"),
        };
        let now = tidepost_domain::now_ms();
        let (health, health_class) = if account.needs_reauth() {
            ("needs reconnect", "bad")
        } else if account.access_expires_at.is_some_and(|at| at < now) {
            ("token expired", "warn")
        } else {
            ("healthy", "ok")
        };
        let token_line = match account.access_expires_at {
            _ if account.needs_reauth() => {
                "refused by the provider; reconnect to resume publishing".to_string()
            }
            Some(at) if at > now => format!(
                "valid for {}, renewed automatically",
                human_duration(at - now)
            ),
            Some(_) => "expired; renewing".to_string(),
            None => "does not expire".to_string(),
        };
        Self {
            id: account.id.clone(),
            platform: account.platform.clone(),
            platform_name,
            platform_initial,
            display_name: account.display_name.clone(),
            username: account.username.clone(),
            avatar_url: account.avatar_url.clone(),
            health,
            health_class,
            needs_reauth: account.needs_reauth(),
            status_reason: account.status_reason.clone(),
            token_line,
            reconnect_href: format!("/connect/{}", account.platform),
        }
    }
}

/// "3 days", "5 hours", "12 minutes".
pub fn human_duration(ms: i64) -> String {
    let minutes = ms / 60_000;
    match minutes {
        m if m >= 2 * 1440 => format!("{} days", m / 1440),
        m if m >= 120 => format!("{} hours", m / 60),
        m if m >= 2 => format!("{m} minutes"),
        _ => "a minute".to_string(),
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "connect_tiktok.html")]
struct ConnectTikTokPage {
    chrome: Chrome,
    scopes: &'static [(&'static str, &'static str)],
    configured: bool,
    cards: Vec<AccountCard>,
    error: Option<String>,
}

async fn connect_page(
    state: &HttpState,
    viewer: &Viewer,
    error: Option<String>,
) -> Result<ConnectTikTokPage, PageError> {
    let cards = accounts::list(&state.app.db, &viewer.workspace.id)
        .await?
        .iter()
        .filter(|a| a.platform == "tiktok")
        .map(AccountCard::of)
        .collect();
    Ok(ConnectTikTokPage {
        chrome: Chrome::for_viewer(state, viewer, "Accounts"),
        scopes: TIKTOK_SCOPE_REASONS,
        configured: state.app.tiktok().is_ok(),
        cards,
        error,
    })
}

async fn connect_tiktok_page(
    State(state): State<HttpState>,
    viewer: Viewer,
) -> Result<ConnectTikTokPage, PageError> {
    connect_page(&state, &viewer, None).await
}

#[derive(Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

async fn connect_tiktok_start(
    State(state): State<HttpState>,
    viewer: Viewer,
    Form(form): Form<CsrfForm>,
) -> Result<Response, PageError> {
    viewer.check_csrf(&form.csrf)?;
    let who = Initiator {
        workspace_id: &viewer.workspace.id,
        user_id: Some(&viewer.user.id),
    };
    match connect::start_tiktok(&state.app, who).await {
        Ok(url) => Ok(Redirect::to(&url).into_response()),
        Err(err @ ConnectError::NotConfigured(_)) => {
            let page = connect_page(&state, &viewer, Some(err.to_string())).await?;
            Ok((axum::http::StatusCode::SERVICE_UNAVAILABLE, page).into_response())
        }
        Err(err) => Err(PageError::internal(err)),
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "accounts.html")]
struct AccountsPage {
    chrome: Chrome,
    cards: Vec<AccountCard>,
}

async fn list(State(state): State<HttpState>, viewer: Viewer) -> Result<AccountsPage, PageError> {
    let cards = accounts::list(&state.app.db, &viewer.workspace.id)
        .await?
        .iter()
        .map(AccountCard::of)
        .collect();
    Ok(AccountsPage {
        chrome: Chrome::for_viewer(&state, &viewer, "Accounts"),
        cards,
    })
}

#[derive(Template, WebTemplate)]
#[template(path = "account.html")]
struct AccountPage {
    chrome: Chrome,
    card: AccountCard,
    connected: bool,
    access_expires: String,
    refresh_expires: String,
    last_refresh: String,
    scopes: String,
    history: Vec<(String, String)>,
}

#[derive(Deserialize, Default)]
struct DetailQuery {
    connected: Option<String>,
}

async fn detail(
    State(state): State<HttpState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Query(query): Query<DetailQuery>,
) -> Result<AccountPage, PageError> {
    let account = accounts::get(&state.app.db, &viewer.workspace.id, &id)
        .await?
        .ok_or_else(PageError::not_found)?;
    let history = events::recent(&state.app.db, &viewer.workspace.id, Some(&account.id), 50)
        .await?
        .into_iter()
        .map(|e| {
            (
                when(Some(e.created_at)),
                describe_event(&e.r#type, &e.payload),
            )
        })
        .collect();
    Ok(AccountPage {
        chrome: Chrome::for_viewer(&state, &viewer, "Accounts"),
        connected: query.connected.is_some(),
        access_expires: when(account.access_expires_at),
        refresh_expires: when(account.refresh_expires_at),
        last_refresh: when(account.last_refreshed_at),
        scopes: account.scopes.replace(',', ", "),
        history,
        card: AccountCard::of(&account),
    })
}

/// One line about an event, for timelines.
pub fn describe_event(kind: &str, payload: &str) -> String {
    let payload: serde_json::Value = serde_json::from_str(payload).unwrap_or_default();
    let reason = payload.get("reason").and_then(|r| r.as_str()).unwrap_or("");
    match kind {
        "account.connected" => "Connected".to_string(),
        "account.needs_reauth" => format!("Needs to be connected again: {reason}"),
        "account.disconnected" => "Disconnected".to_string(),
        other => other.replace(['.', '_'], " "),
    }
}

async fn disconnect(
    State(state): State<HttpState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, PageError> {
    viewer.check_csrf(&form.csrf)?;
    match connect::disconnect(&state.app, &viewer.workspace.id, &id).await {
        Ok(true) => Ok(Redirect::to("/accounts").into_response()),
        Ok(false) => Err(PageError::not_found()),
        Err(err) => Err(PageError::internal(err)),
    }
}
