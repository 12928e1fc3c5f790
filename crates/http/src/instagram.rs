//! Instagram over HTTP: the connect page (both logins) and `POST /connect/instagram`, the OAuth
//! callback with the Page + Instagram chooser and `POST /connect/instagram/choose`,
//! `POST /api/v1/connect/instagram`, the webhook (`GET` handshake, `POST` deliveries), and
//! `GET /media/{id}/{token}` from which Meta fetches uploaded media.

use askama::Template;
use askama_web::WebTemplate;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Form, Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use tidepost_app::connect::{Callback, CallbackSession, ConnectError, Initiator};
use tidepost_app::instagram::connect::{self as ig_connect, Choice, Finished, Pair, SCOPE_REASONS};
use tidepost_app::instagram::{Login, media_url, webhooks};
use tidepost_domain::Platform;
use tidepost_domain::time::rfc3339;
use tidepost_store::accounts;

use crate::api::idempotency::OneTimeSecret;
use crate::auth::{Caller, Credential, MaybeViewer, Viewer};
use crate::error::{PageError, Problem, capitalize, connect_problem};
use crate::state::HttpState;
use crate::ui::Chrome;
use crate::ui::accounts::AccountCard;

/// The browser and webhook routes.
pub fn router() -> Router<HttpState> {
    Router::new()
        .route("/connect/instagram", get(connect_page).post(connect_start))
        .route("/connect/instagram/choose", post(choose))
        .route("/oauth/instagram/callback", get(callback))
        .route("/webhooks/instagram", get(handshake).post(receive))
        .route("/media/{id}/{token}", get(media))
}

/// Routes under `/api/v1`.
pub fn api_router() -> Router<HttpState> {
    Router::new().route("/connect/instagram", post(api_connect))
}

#[derive(Template, WebTemplate)]
#[template(path = "connect_instagram.html")]
struct ConnectPage {
    chrome: Chrome,
    scopes: &'static [(&'static str, &'static str)],
    configured: bool,
    cards: Vec<AccountCard>,
    error: Option<String>,
}

async fn page(
    state: &HttpState,
    viewer: &Viewer,
    error: Option<String>,
) -> Result<ConnectPage, PageError> {
    let mut cards = Vec::new();
    for account in accounts::list(&state.app.db, &viewer.workspace.id).await? {
        if account.platform == Platform::Instagram {
            cards.push(AccountCard::fresh(state, &account).await?);
        }
    }
    Ok(ConnectPage {
        chrome: Chrome::for_viewer(state, viewer, "Accounts"),
        scopes: SCOPE_REASONS,
        configured: state.app.providers.meta().is_ok(),
        cards,
        error,
    })
}

async fn connect_page(
    State(state): State<HttpState>,
    viewer: Viewer,
) -> Result<ConnectPage, PageError> {
    page(&state, &viewer, None).await
}

#[derive(Deserialize)]
struct StartForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    login: Option<String>,
}

fn login_of(text: Option<&str>) -> Option<Login> {
    match text.unwrap_or("facebook") {
        "facebook" => Some(Login::Facebook),
        "instagram" => Some(Login::Instagram),
        _ => None,
    }
}

async fn connect_start(
    State(state): State<HttpState>,
    viewer: Viewer,
    Form(form): Form<StartForm>,
) -> Result<Response, PageError> {
    viewer.check_csrf(&form.csrf)?;
    let Some(login) = login_of(form.login.as_deref()) else {
        let page = page(
            &state,
            &viewer,
            Some("Choose Facebook Login or Instagram Login.".into()),
        )
        .await?;
        return Ok((StatusCode::BAD_REQUEST, page).into_response());
    };
    let who = Initiator {
        workspace_id: &viewer.workspace.id,
        user_id: Some(&viewer.user.id),
        connect_link: None,
    };
    match ig_connect::start(&state.app, who, login).await {
        Ok(url) => Ok(Redirect::to(&url).into_response()),
        Err(err @ ConnectError::NotConfigured(_)) => {
            let page = page(&state, &viewer, Some(err.to_string())).await?;
            Ok((StatusCode::SERVICE_UNAVAILABLE, page).into_response())
        }
        Err(err) => Err(PageError::internal(err)),
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "instagram_choose.html")]
struct ChoosePage {
    chrome: Chrome,
    facebook_user: String,
    pairs: Vec<Pair>,
    choice: String,
    any_choosable: bool,
    /// Why the chooser is shown again (it was sent with nothing ticked).
    error: Option<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "connected.html")]
struct ConnectedPage {
    chrome: Chrome,
    platform: &'static str,
    name: String,
}

fn refused(err: ConnectError) -> Response {
    if err.is_refusal() {
        tracing::info!(reason = %err, "Instagram connection refused");
        PageError::new(
            StatusCode::BAD_REQUEST,
            "Instagram was not connected",
            capitalize(&err.to_string()),
        )
        .into_response()
    } else {
        PageError::internal(err).into_response()
    }
}

fn choose_page(state: &HttpState, viewer: &Option<Viewer>, choice: Choice) -> ChoosePage {
    ChoosePage {
        chrome: Chrome::for_maybe_viewer(state, viewer, "Accounts"),
        any_choosable: choice.pairs.iter().any(Pair::choosable),
        choice: choice.form_value().to_string(),
        facebook_user: choice.facebook_user_name,
        pairs: choice.pairs,
        error: None,
    }
}

async fn callback(
    State(state): State<HttpState>,
    MaybeViewer(viewer): MaybeViewer,
    Query(callback): Query<Callback>,
) -> Response {
    let session = viewer.as_ref().map(|v| CallbackSession {
        workspace_id: &v.workspace.id,
        user_id: &v.user.id,
    });
    let link = match crate::connect_links::link_of(&state, callback.state.as_deref()).await {
        Ok(link) => link,
        Err(e) => return e.into_response(),
    };
    let finished = ig_connect::finish(&state.app, &callback, session).await;
    if let Some(link) = link {
        let outcome = match finished {
            Ok(Finished::Choose(choice)) => {
                return choose_page(&state, &viewer, choice).into_response();
            }
            Ok(Finished::Connected(_)) => Ok(()),
            Err(err) => Err(err),
        };
        let chrome = Chrome::for_maybe_viewer(&state, &viewer, "Accounts");
        return crate::connect_links::land(&state, chrome, link, "Instagram", outcome).await;
    }
    match finished {
        Ok(Finished::Choose(choice)) => choose_page(&state, &viewer, choice).into_response(),
        Ok(Finished::Connected(account)) if viewer.is_some() => {
            Redirect::to(&format!("/accounts/{}?connected=1", account.id)).into_response()
        }
        Ok(Finished::Connected(account)) => ConnectedPage {
            chrome: Chrome::anonymous(&state),
            platform: "Instagram",
            name: account.display_name,
        }
        .into_response(),
        Err(err) => refused(err),
    }
}

/// The chooser's form: the single-use choice (it is also what makes the form unforgeable when
/// the flow came from the API without a session) and the chosen Page ids.
async fn choose(
    State(state): State<HttpState>,
    MaybeViewer(viewer): MaybeViewer,
    body: Bytes,
) -> Response {
    let mut choice = String::new();
    let mut csrf = String::new();
    let mut pages = Vec::new();
    for (k, v) in url::form_urlencoded::parse(&body) {
        match k.as_ref() {
            "choice" => choice = v.into_owned(),
            "csrf" => csrf = v.into_owned(),
            "page" => pages.push(v.into_owned()),
            _ => {}
        }
    }
    if let Some(v) = &viewer
        && let Err(e) = v.check_csrf(&csrf)
    {
        return e.into_response();
    }
    let session = viewer.as_ref().map(|v| CallbackSession {
        workspace_id: &v.workspace.id,
        user_id: &v.user.id,
    });
    if pages.is_empty() {
        // Nothing ticked: the same chooser again with the reason, its choice still unspent.
        return match ig_connect::pending_choice(&state.app, &choice, session).await {
            Ok(pending) => {
                let mut page = choose_page(&state, &viewer, pending);
                page.error = Some(
                    "Tick at least one Page whose Instagram account tidepost may publish to, then connect."
                        .into(),
                );
                (StatusCode::UNPROCESSABLE_ENTITY, page).into_response()
            }
            Err(err) => refused(err),
        };
    }
    let link = match crate::connect_links::link_of(&state, Some(&choice)).await {
        Ok(link) => link,
        Err(e) => return e.into_response(),
    };
    let chosen = ig_connect::choose(&state.app, &choice, &pages, session).await;
    if let Some(link) = link {
        let chrome = Chrome::for_maybe_viewer(&state, &viewer, "Accounts");
        return crate::connect_links::land(&state, chrome, link, "Instagram", chosen.map(|_| ()))
            .await;
    }
    match chosen {
        Ok(connected) if viewer.is_some() => match connected.as_slice() {
            [one] => Redirect::to(&format!("/accounts/{}?connected=1", one.id)).into_response(),
            _ => Redirect::to("/accounts").into_response(),
        },
        Ok(connected) => ConnectedPage {
            chrome: Chrome::anonymous(&state),
            platform: "Instagram",
            name: connected
                .iter()
                .map(|a| a.display_name.clone())
                .collect::<Vec<_>>()
                .join(", "),
        }
        .into_response(),
        Err(err) => refused(err),
    }
}

/// Where to send the person to connect an Instagram account (built with `json!` in
/// [`api_connect`]).
#[derive(utoipa::ToSchema)]
#[schema(as = InstagramConnectStart)]
#[allow(dead_code)]
struct ConnectDoc {
    /// Meta's consent page; the callback lands on tidepost.
    authorize_url: String,
    /// `facebook` or `instagram`.
    login: String,
    /// RFC 3339: the link stops working then.
    expires_at: String,
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
struct ApiConnect {
    /// `facebook` (Facebook Login: a Page and its Instagram account) or `instagram`
    /// (Instagram Login).
    #[schema(example = "facebook")]
    login: Option<String>,
}

/// `POST /api/v1/connect/instagram` `{"login": "facebook" | "instagram"}`: the URL to send the
/// person to. Facebook Login ends on tidepost's chooser page.
#[utoipa::path(
    post, path = "/api/v1/connect/instagram", tag = "accounts",
    request_body(content = ApiConnect, description = "Which login to use (an empty body is refused: `login` is required)"),
    responses(
        (status = 201, description = "The authorize URL to send the person to", body = ConnectDoc),
        (status = 422, description = "`login` is missing or not facebook or instagram", body = Problem),
        (status = 503, description = "Instagram is not configured on this instance", body = Problem),
    ),
)]
async fn api_connect(
    caller: Caller,
    State(state): State<HttpState>,
    body: Bytes,
) -> Result<(StatusCode, Extension<OneTimeSecret>, Json<Value>), Problem> {
    caller.require_scope("api")?;
    let request: ApiConnect = if body.iter().all(u8::is_ascii_whitespace) {
        ApiConnect::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| Problem::invalid(format!("body: {e}")))?
    };
    let login = login_of(request.login.as_deref()).ok_or_else(|| {
        Problem::invalid("login: expected facebook or instagram").with("field", "login")
    })?;
    let user_id = match &caller.credential {
        Credential::Session { user_id } => Some(user_id.as_str()),
        Credential::ApiKey { .. } => None,
    };
    let who = Initiator {
        workspace_id: &caller.workspace_id,
        user_id,
        connect_link: None,
    };
    let url = ig_connect::start(&state.app, who, login)
        .await
        .map_err(connect_problem)?;
    let expires_at = rfc3339(tidepost_domain::now_ms() + tidepost_app::connect::STATE_TTL_MS);
    // The link holds a single-use OAuth state: a retry gets a new link, never this one again.
    Ok((
        StatusCode::CREATED,
        Extension(OneTimeSecret::Regenerate),
        Json(json!({"authorize_url": url, "login": login.as_str(), "expires_at": expires_at})),
    ))
}

#[derive(Deserialize)]
struct Hub {
    #[serde(rename = "hub.mode")]
    mode: Option<String>,
    #[serde(rename = "hub.verify_token")]
    verify_token: Option<String>,
    #[serde(rename = "hub.challenge")]
    challenge: Option<String>,
}

async fn handshake(State(state): State<HttpState>, Query(hub): Query<Hub>) -> Response {
    match webhooks::handshake(
        &state.app,
        hub.mode.as_deref(),
        hub.verify_token.as_deref(),
        hub.challenge.as_deref(),
    ) {
        webhooks::Handshake::Accept(challenge) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            challenge,
        )
            .into_response(),
        webhooks::Handshake::NotConfigured => {
            Problem::not_found("webhook endpoint").into_response()
        }
        webhooks::Handshake::Refuse => {
            metrics::counter!("tidepost_webhooks_rejected_total", "provider" => "instagram", "reason" => "bad_verify_token").increment(1);
            Problem::forbidden("the verify token does not match").into_response()
        }
    }
}

async fn receive(State(state): State<HttpState>, headers: HeaderMap, body: Bytes) -> Response {
    let signature = headers
        .get("x-hub-signature-256")
        .and_then(|v| v.to_str().ok());
    match webhooks::receive(&state.app, signature, &body).await {
        Ok(receipt) => {
            metrics::counter!("tidepost_webhooks_received_total", "provider" => "instagram", "duplicate" => receipt.duplicate.to_string())
                .increment(1);
            (
                StatusCode::OK,
                Json(json!({"received": true, "duplicate": receipt.duplicate})),
            )
                .into_response()
        }
        Err(err) => {
            metrics::counter!("tidepost_webhooks_rejected_total", "provider" => "instagram", "reason" => err.reason()).increment(1);
            tracing::warn!(reason = err.reason(), "Instagram webhook refused: {err}");
            match err.reason() {
                "missing_signature" | "bad_signature" => {
                    Problem::unauthorized(err.to_string()).into_response()
                }
                "malformed" => Problem::bad_request(err.to_string()).into_response(),
                "not_configured" => Problem::not_found("webhook endpoint").into_response(),
                _ => Problem::internal(err).into_response(),
            }
        }
    }
}

/// `GET /media/{id}/{token}?expires=…`: a stored file, for Meta to fetch. Streams from the
/// storage (the local disk or the bucket).
async fn media(
    State(state): State<HttpState>,
    Path((id, token)): Path<(String, String)>,
) -> Response {
    let now = tidepost_domain::now_ms() / 1000;
    match media_url::open(&state.app, &id, &token, now).await {
        Ok(media) => {
            let storage = tidepost_app::media::storage(&state.app);
            match storage.open(&media.sha256, None).await {
                Ok(file) => (
                    [
                        (header::CONTENT_TYPE, media.content_type.clone()),
                        (header::CONTENT_LENGTH, media.size_bytes.to_string()),
                        (header::CACHE_CONTROL, "private, no-store".to_string()),
                    ],
                    Body::from_stream(tokio_util::io::ReaderStream::new(file)),
                )
                    .into_response(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    StatusCode::GONE.into_response()
                }
                Err(e) => {
                    tracing::warn!(media_id = %media.id, error = %e, "a stored media file cannot be read");
                    Problem::unavailable(format!("the media file cannot be read now: {e}"))
                        .into_response()
                }
            }
        }
        Err(media_url::MediaUrlError::Expired) => StatusCode::GONE.into_response(),
        Err(media_url::MediaUrlError::Store(e)) => Problem::internal(e).into_response(),
        Err(_) => StatusCode::NOT_FOUND.into_response(),
    }
}
