//! The embeddable account widget: `POST /api/v1/accounts/{id}/widget-links` answers a signed,
//! expiring URL ([`tidepost_app::widget`]); `GET /widget/{id}/{token}` renders the account's
//! card (health, token lifetime, the day's limits, recent posts), read-only, sized for an
//! iframe, light or dark, framable only by the workspace's allowed origins
//! (`Content-Security-Policy: frame-ancestors`). A link minted with a `return_url` offers
//! Reconnect, the widget's only write: `POST /widget/{id}/{token}/reconnect` with the form token
//! the card carries answers a 303 to a fresh connect link re-authorizing the account.

use askama::Template;
use askama_web::WebTemplate;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use serde::{Deserialize, Serialize};
use tidepost_app::widget::{self, WidgetError};
use tidepost_domain::time::rfc3339;
use tidepost_store::accounts;
use utoipa::ToSchema;

use crate::auth::Caller;
use crate::error::{PageError, Problem};
use crate::state::HttpState;
use crate::ui::accounts::{AccountCard, RecentPost, WidgetReconnect};
use crate::zone::Zone;

pub fn router() -> Router<HttpState> {
    Router::new()
        .route("/widget/{id}/{token}", get(show))
        .route("/widget/{id}/{token}/reconnect", post(reconnect))
        .route("/widget/{id}/{token}/card.json", get(card_json))
}

/// Routes under `/api/v1`.
pub fn api_router() -> Router<HttpState> {
    Router::new()
        .route("/accounts/{id}/widget-links", post(create_widget_link))
        .route(
            "/creators/{id}/widget-links",
            post(create_creator_widget_links),
        )
}

/// What the widget link is for.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[schema(as = NewWidgetLink)]
#[serde(default, deny_unknown_fields)]
pub struct CreateWidget {
    /// Seconds the link works: 60 to 604800 (7 days); default 3600.
    #[schema(example = 3600, minimum = 60, maximum = 604800)]
    expires_in: Option<i64>,
    /// `light` (default) or `dark`.
    #[schema(example = "dark")]
    theme: Option<String>,
    /// Where Reconnect sends the creator back to once the account is re-authorized: an
    /// http(s) URL on one of the workspace's allowed origins (at most 2,048 characters, no
    /// user name or password). Without it the card has no Reconnect button.
    #[schema(example = "https://crm.example.com/creators/42")]
    return_url: Option<String>,
}

/// A widget link: put `url` in an iframe on one of the workspace's allowed origins.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = WidgetLink)]
pub struct WidgetOut {
    url: String,
    /// RFC 3339: the link stops working then.
    expires_at: String,
}

#[utoipa::path(
    post, path = "/api/v1/accounts/{id}/widget-links", tag = "accounts",
    params(("id" = String, Path, description = "The account's id")),
    request_body(content = CreateWidget, description = "Optional: an empty body takes the defaults"),
    responses(
        (status = 201, description = "The signed URL of the account's card", body = WidgetOut),
        (status = 404, description = "No such account in this workspace", body = Problem),
        (status = 422, description = "`expires_in` out of range, `theme` not light or dark, or `return_url` not on an allowed origin (named in `field`, the broken rule in `rule`)", body = Problem),
    ),
)]
async fn create_widget_link(
    caller: Caller,
    State(state): State<HttpState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<WidgetOut>), Problem> {
    caller.require_scope("api")?;
    let account = accounts::get(&state.app.db, &caller.workspace_id, &id)
        .await?
        .ok_or_else(|| Problem::not_found("account"))?;
    let (expires, theme, return_url) = settings_of(&state, &caller, &body).await?;
    Ok((
        StatusCode::CREATED,
        Json(WidgetOut {
            url: widget::url_until(&state.app, &account, expires, theme, return_url.as_deref()),
            expires_at: rfc3339(expires * 1000),
        }),
    ))
}

/// A widget-links request's settings, checked: when the links expire (unix seconds), their
/// theme and where Reconnect returns to.
async fn settings_of(
    state: &HttpState,
    caller: &Caller,
    body: &Bytes,
) -> Result<(i64, &'static str, Option<String>), Problem> {
    // An empty body takes every default.
    let body: CreateWidget = if body.iter().all(u8::is_ascii_whitespace) {
        CreateWidget::default()
    } else {
        serde_json::from_slice(body).map_err(|e| Problem::invalid(format!("body: {e}")))?
    };
    let expires_in = body.expires_in.unwrap_or(widget::DEFAULT_EXPIRES_IN_SECS);
    if !(widget::MIN_EXPIRES_IN_SECS..=widget::MAX_EXPIRES_IN_SECS).contains(&expires_in) {
        return Err(Problem::invalid(format!(
            "expires_in: must be {} to {} seconds (7 days)",
            widget::MIN_EXPIRES_IN_SECS,
            widget::MAX_EXPIRES_IN_SECS
        ))
        .with("field", "expires_in")
        .with("rule", "out_of_range"));
    }
    let theme = widget::theme_of(body.theme.as_deref()).ok_or_else(|| {
        Problem::invalid("theme: expected light or dark")
            .with("field", "theme")
            .with("rule", "unknown_theme")
    })?;
    let return_url = match &body.return_url {
        Some(text) => Some(
            tidepost_app::connect_links::check_return_url(&state.app, &caller.workspace_id, text)
                .await
                .map_err(crate::connect_links::link_problem)?
                .to_string(),
        ),
        None => None,
    };
    Ok((
        tidepost_domain::now_ms() / 1000 + expires_in,
        theme,
        return_url,
    ))
}

/// One account's widget link among a creator's.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = CreatorWidgetLink)]
pub struct CreatorWidgetOut {
    account_id: String,
    platform: tidepost_domain::Platform,
    url: String,
    expires_at: String,
}

/// The widget links of every account a creator owns.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = CreatorWidgetLinks)]
pub struct CreatorWidgetsOut {
    data: Vec<CreatorWidgetOut>,
}

#[utoipa::path(
    post, path = "/api/v1/creators/{id}/widget-links", tag = "crm",
    params(("id" = String, Path, description = "The creator's id")),
    request_body(content = CreateWidget, description = "Optional: an empty body takes the defaults"),
    responses(
        (status = 201, description = "A signed URL per account the creator owns (none when they own none yet)", body = CreatorWidgetsOut),
        (status = 404, description = "No such creator in this workspace", body = Problem),
        (status = 422, description = "`expires_in` out of range, `theme` not light or dark, or `return_url` not on an allowed origin", body = Problem),
    ),
)]
async fn create_creator_widget_links(
    caller: Caller,
    State(state): State<HttpState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<CreatorWidgetsOut>), Problem> {
    caller.require_scope("api")?;
    let ws = &caller.workspace_id;
    tidepost_store::crm::creators::get(&state.app.db, ws, &id)
        .await?
        .ok_or_else(|| Problem::not_found("creator"))?;
    let (expires, theme, return_url) = settings_of(&state, &caller, &body).await?;
    let mut data = Vec::new();
    for owned in tidepost_store::crm::creators::accounts_of(&state.app.db, ws, &id).await? {
        // Read whole (the link is bound to the account as stored); one gone meanwhile is left out.
        let Some(account) = accounts::get(&state.app.db, ws, &owned.id).await? else {
            continue;
        };
        data.push(CreatorWidgetOut {
            url: widget::url_until(&state.app, &account, expires, theme, return_url.as_deref()),
            expires_at: rfc3339(expires * 1000),
            account_id: account.id,
            platform: account.platform,
        });
    }
    Ok((StatusCode::CREATED, Json(CreatorWidgetsOut { data })))
}

#[derive(Template, WebTemplate)]
#[template(path = "widget.html")]
struct WidgetPage {
    card: AccountCard,
    theme: &'static str,
}

#[derive(Template, WebTemplate)]
#[template(path = "widget_refused.html")]
struct RefusedPage {
    message: String,
}

/// Who may frame the widget: the workspace's allowed origins (nobody when there are none).
fn policy(origins: &[String]) -> String {
    let ancestors = if origins.is_empty() {
        "'none'".to_string()
    } else {
        origins.join(" ")
    };
    format!(
        "default-src 'self'; img-src 'self' data: http: https:; style-src 'self'; script-src 'self'; \
         form-action 'self'; frame-ancestors {ancestors}"
    )
}

fn refused(status: StatusCode, err: &WidgetError) -> Response {
    let mut response = (
        status,
        RefusedPage {
            message: format!(
                "{}: ask the application showing it to load it again.",
                crate::error::capitalize(&err.to_string())
            ),
        },
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A refused widget request as its page (or the error page for a store failure).
fn refusal(err: WidgetError) -> Response {
    let status = match err {
        WidgetError::Store(e) => return PageError::from(e).into_response(),
        WidgetError::Invalid | WidgetError::Gone => StatusCode::NOT_FOUND,
        WidgetError::Expired => StatusCode::GONE,
        WidgetError::BadFormToken => StatusCode::FORBIDDEN,
        WidgetError::NoReturnUrl | WidgetError::Link(_) => StatusCode::CONFLICT,
    };
    refused(status, &err)
}

/// `GET /widget/{id}/{token}`: the card, read-only but for Reconnect.
async fn show(
    State(state): State<HttpState>,
    Path((id, token)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let widget::Opened {
        account,
        theme,
        return_url,
    } = match widget::open(&state.app, &id, &token).await {
        Ok(opened) => opened,
        Err(err) => return refusal(err),
    };
    let card = match AccountCard::with_stats(&state, &account, &Zone::of_browser(&headers)).await {
        Ok(mut card) => {
            card.read_only = true;
            card.widget_reconnect = return_url.map(|_| WidgetReconnect {
                action: format!("/widget/{id}/{token}/reconnect"),
                form_token: widget::reconnect_token(&state.app, &id, &token),
            });
            card
        }
        Err(e) => return e.into_response(),
    };
    let origins =
        match tidepost_app::connect_links::origins(&state.app, &account.workspace_id).await {
            Ok(origins) => origins,
            Err(e) => return PageError::from(e).into_response(),
        };
    let mut response = WidgetPage { card, theme }.into_response();
    let headers = response.headers_mut();
    if let Ok(csp) = HeaderValue::from_str(&policy(&origins)) {
        headers.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

/// The Reconnect form.
#[derive(Debug, Deserialize)]
struct ReconnectForm {
    #[serde(default)]
    form_token: String,
}

/// `POST /widget/{id}/{token}/reconnect`: the widget's only write. Accepted only with the form
/// token of this widget's own page and, when the browser says where the request came from
/// (`Sec-Fetch-Site`), from tidepost's own page or an allowed origin; answers a 303 to a new connect link that
/// re-authorizes the account and returns to the link's `return_url`.
async fn reconnect(
    State(state): State<HttpState>,
    Path((id, token)): Path<(String, String)>,
    headers: HeaderMap,
    Form(form): Form<ReconnectForm>,
) -> Response {
    // Sent from tidepost's own widget page, or from a page the browser does not name (no
    // `Sec-Fetch-Site`): the form token decides. From another site (the web component on a
    // host's page): its `Origin` must also be one of the workspace's allowed origins.
    let site = headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("same-origin");
    let foreign_origin = (!matches!(site, "same-origin" | "none")).then(|| {
        headers
            .get(header::ORIGIN)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    });
    match widget::reconnect(
        &state.app,
        &id,
        &token,
        &form.form_token,
        foreign_origin.as_deref(),
    )
    .await
    {
        Ok(url) => {
            let mut response = (StatusCode::SEE_OTHER, [(header::LOCATION, url)]).into_response();
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(err) => refusal(err),
    }
}

/// The card as JSON, for the `<tidepost-account>` web component (`/assets/tidepost-account.js`).
#[derive(Debug, Serialize)]
struct CardJson {
    theme: &'static str,
    account: AccountJson,
    tiktok: Option<TikTokJson>,
    instagram: Option<InstagramJson>,
    recent: Vec<RecentJson>,
    /// Where the Reconnect form posts (an absolute URL) and its token; null without a
    /// `return_url`.
    reconnect: Option<ReconnectJson>,
}

#[derive(Debug, Serialize)]
struct AccountJson {
    id: String,
    platform: String,
    platform_name: &'static str,
    display_name: String,
    username: Option<String>,
    avatar_url: Option<String>,
    health: &'static str,
    health_class: &'static str,
    needs_reauth: bool,
    status_reason: Option<String>,
    posting_block: Option<String>,
    token_line: String,
}

#[derive(Debug, Serialize)]
struct TikTokJson {
    direct_cap: i64,
    direct_used: i64,
    direct_left: i64,
    next_slot: Option<String>,
    inbox_cap: i64,
    inbox_pending: i64,
}

#[derive(Debug, Serialize)]
struct InstagramJson {
    token_days_left: Option<i64>,
    limit_used: Option<i64>,
    limit_total: Option<i64>,
    limit_checked: Option<String>,
}

#[derive(Debug, Serialize)]
struct RecentJson {
    caption: String,
    mode: &'static str,
    state: String,
    state_class: String,
    when: String,
}

#[derive(Debug, Serialize)]
struct ReconnectJson {
    action: String,
    form_token: String,
}

fn recent_json(recent: &[RecentPost]) -> Vec<RecentJson> {
    recent
        .iter()
        .map(|p| RecentJson {
            caption: p.caption.clone(),
            mode: p.mode,
            state: p.state.clone(),
            state_class: p.state_class.clone(),
            when: p.when.clone(),
        })
        .collect()
}

/// A refusal of the JSON route as problem+json, never cached.
fn json_refusal(err: WidgetError) -> Response {
    let problem = match err {
        WidgetError::Store(e) => Problem::from(e),
        WidgetError::Expired => Problem::new(
            StatusCode::GONE,
            "expired",
            "Expired",
            "this widget link expired: ask for a new one",
        ),
        other @ (WidgetError::Invalid
        | WidgetError::Gone
        | WidgetError::NoReturnUrl
        | WidgetError::BadFormToken
        | WidgetError::Link(_)) => Problem::new(
            StatusCode::NOT_FOUND,
            "not-found",
            "Not found",
            other.to_string(),
        ),
    };
    let mut response = problem.into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `GET /widget/{id}/{token}/card.json`: the card's data. A browser on another origin may read
/// it only from one of the workspace's allowed origins (`Access-Control-Allow-Origin` names
/// it); a request from any other origin is refused with 403.
async fn card_json(
    State(state): State<HttpState>,
    Path((id, token)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let opened = match widget::open(&state.app, &id, &token).await {
        Ok(opened) => opened,
        Err(err) => return json_refusal(err),
    };
    let origins = match tidepost_app::connect_links::origins(
        &state.app,
        &opened.account.workspace_id,
    )
    .await
    {
        Ok(origins) => origins,
        Err(e) => return Problem::from(e).into_response(),
    };
    let origin = headers
        .get(header::ORIGIN)
        .map(|v| v.to_str().unwrap_or("").to_string());
    let own = url::Url::parse(&state.app.config.url("/"))
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_default();
    let allowed_origin = match &origin {
        Some(o) if *o == own => None,
        Some(o) if origins.contains(o) => Some(o.clone()),
        Some(o) => {
            let mut response = Problem::forbidden(format!(
                "the origin {o:?} is not among this workspace's allowed origins: add it under Settings → Allowed origins or with PUT /api/v1/allowed-origins"
            ))
            .with("rule", "origin_not_allowed")
            .into_response();
            response
                .headers_mut()
                .insert(header::VARY, HeaderValue::from_static("Origin"));
            return response;
        }
        None => None,
    };
    let card =
        match AccountCard::with_stats(&state, &opened.account, &Zone::of_browser(&headers)).await {
            Ok(card) => card,
            Err(e) => return e.into_response(),
        };
    let mut recent = Vec::new();
    let tiktok = card.tiktok.as_ref().map(|t| {
        recent = recent_json(&t.recent);
        TikTokJson {
            direct_cap: t.direct_cap,
            direct_used: t.direct_used,
            direct_left: t.direct_left,
            next_slot: t.next_slot.clone(),
            inbox_cap: t.inbox_cap,
            inbox_pending: t.inbox_pending,
        }
    });
    let instagram = card.instagram.as_ref().map(|i| {
        recent = recent_json(&i.recent);
        InstagramJson {
            token_days_left: i.token_days_left,
            limit_used: i.limit.as_ref().map(|l| l.0),
            limit_total: i.limit.as_ref().map(|l| l.1),
            limit_checked: i.limit.as_ref().map(|l| l.2.clone()),
        }
    });
    let body = CardJson {
        theme: opened.theme,
        account: AccountJson {
            id: card.id.clone(),
            platform: card.platform.as_str().to_string(),
            platform_name: card.platform_name,
            display_name: card.display_name.clone(),
            username: card.username.clone(),
            avatar_url: card.avatar_url.clone(),
            health: card.health,
            health_class: card.health_class,
            needs_reauth: card.needs_reauth,
            status_reason: card.status_reason.clone(),
            posting_block: card.posting_block.clone(),
            token_line: card.token_line.clone(),
        },
        tiktok,
        instagram,
        recent,
        reconnect: opened.return_url.map(|_| ReconnectJson {
            action: state
                .app
                .config
                .url(&format!("/widget/{id}/{token}/reconnect")),
            form_token: widget::reconnect_token(&state.app, &id, &token),
        }),
    };
    let mut response = Json(body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::VARY, HeaderValue::from_static("Origin"));
    if let Some(origin) = allowed_origin
        && let Ok(value) = HeaderValue::from_str(&origin)
    {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
    }
    response
}
