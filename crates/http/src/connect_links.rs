//! Embedding over HTTP: `POST /api/v1/connect-links`, `GET`/`PUT /api/v1/allowed-origins`, the
//! hosted page a connect link opens (`/connect/link/{token}`, no tidepost login), and
//! [`land`], where the OAuth callbacks of a link's flow end: a 303 to the host's `return_url`,
//! or a page in the layout saying what happened and what to do.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Extension, Form, Json, Router};
use serde::{Deserialize, Serialize};
use tidepost_app::connect::ConnectError;
use tidepost_app::connect_links::{self, LinkError, NewLink, Unusable};
use tidepost_domain::time::rfc3339;
use tidepost_store::connect_links::ConnectLink;
use utoipa::ToSchema;

use crate::api::ApiJson;
use crate::api::idempotency::OneTimeSecret;
use crate::auth::{Caller, MaybeViewer};
use crate::error::{PageError, Problem, capitalize};
use crate::state::HttpState;
use crate::ui::Chrome;

/// The hosted page.
pub fn router() -> Router<HttpState> {
    Router::new().route("/connect/link/{token}", get(page).post(choose))
}

/// Routes under `/api/v1`.
pub fn api_router() -> Router<HttpState> {
    Router::new()
        .route("/connect-links", axum::routing::post(create_connect_link))
        .route("/allowed-origins", get(api_origins).put(api_set_origins))
}

/// A refusal of a request's field as problem+json naming the field and the rule.
pub(crate) fn link_problem(err: LinkError) -> Problem {
    match err {
        LinkError::Invalid {
            field,
            rule,
            message,
        } => Problem::invalid(format!("{field}: {message}"))
            .with("field", field)
            .with("rule", rule),
        LinkError::Store(e) => e.into(),
    }
}

/// The workspace's allowed origins.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(as = AllowedOrigins)]
#[serde(deny_unknown_fields)]
pub struct OriginsDoc {
    /// Origins (scheme, host and port, no path) a connect link may send a creator back to:
    /// `https://…`, or `http://` for localhost (anywhere in sandbox mode). Stored lower-cased,
    /// without a default port, duplicates dropped.
    #[schema(example = json!(["https://crm.example.com", "http://localhost:3000"]))]
    origins: Vec<String>,
}

#[utoipa::path(
    get, path = "/api/v1/allowed-origins", tag = "workspace",
    responses((status = 200, description = "The workspace's allowed origins", body = OriginsDoc)),
)]
async fn api_origins(
    caller: Caller,
    State(state): State<HttpState>,
) -> Result<Json<OriginsDoc>, Problem> {
    caller.require_scope("api")?;
    let origins = connect_links::origins(&state.app, &caller.workspace_id).await?;
    Ok(Json(OriginsDoc { origins }))
}

#[utoipa::path(
    put, path = "/api/v1/allowed-origins", tag = "workspace",
    request_body = OriginsDoc,
    responses(
        (status = 200, description = "The new list, normalized", body = OriginsDoc),
        (status = 422, description = "An origin is not one (named in `field`, e.g. `origins[1]`, with its `rule`): http outside localhost, a path, credentials, another scheme", body = Problem),
    ),
)]
async fn api_set_origins(
    caller: Caller,
    State(state): State<HttpState>,
    ApiJson(body): ApiJson<OriginsDoc>,
) -> Result<Json<OriginsDoc>, Problem> {
    caller.require_scope("api")?;
    let origins =
        connect_links::set_origins(&state.app, &caller.workspace_id, "origins", &body.origins)
            .await
            .map_err(link_problem)?;
    Ok(Json(OriginsDoc { origins }))
}

/// What a host asks for.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[schema(as = NewConnectLink)]
#[serde(default, deny_unknown_fields)]
pub struct CreateLink {
    /// The platforms to offer (`tiktok`, `instagram`); absent: all (or, with
    /// `reconnect_account_id`, that account's).
    #[schema(example = json!(["tiktok", "instagram"]))]
    platforms: Option<Vec<String>>,
    /// Your id for the creator (1 to 255 characters, no control characters): stored on the
    /// account and its creator, returned to `return_url`, carried by the `account.*` events,
    /// and a filter of `GET /api/v1/accounts`.
    #[schema(example = "crm-creator-42")]
    external_ref: Option<String>,
    /// Where the creator goes at the end (http or https, at most 2,048 characters, no
    /// credentials), on one of the workspace's allowed origins. tidepost adds `status`
    /// (`connected`, `reconnected`, `declined`, `error`), `account_id`, `external_ref` and, when
    /// it did not work, `error` (a code: `access_denied`, `wrong_account`, `personal_account`,
    /// `no_pages`, `no_instagram_account`, `scope_missing`, `provider_error`, `internal`…).
    #[schema(example = "https://crm.example.com/creators/42/connected")]
    return_url: Option<String>,
    /// Seconds the link stays usable: 60 to 604800 (7 days); default 3600.
    #[schema(example = 3600, minimum = 60, maximum = 604800)]
    expires_in: Option<i64>,
    /// An account of the workspace to authorize again: only the same platform account is
    /// accepted back.
    reconnect_account_id: Option<String>,
}

/// A connect link: send the creator to `url` (it holds the link's only copy of its token).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ConnectLink)]
pub struct LinkOut {
    id: String,
    /// The hosted page; single use, no tidepost login needed.
    url: String,
    /// RFC 3339: the link stops working then.
    expires_at: String,
    platforms: Vec<String>,
    external_ref: Option<String>,
    return_url: String,
    reconnect_account_id: Option<String>,
}

#[utoipa::path(
    post, path = "/api/v1/connect-links", tag = "accounts",
    request_body = CreateLink,
    responses(
        (status = 201, description = "The link to send the creator to (a retry with the same `Idempotency-Key` makes a new link)", body = LinkOut),
        (status = 422, description = "A field is invalid (named in `field`, with its `rule`): a `return_url` outside the allowed origins, an `expires_in` out of range, an unknown platform, an account not in this workspace", body = Problem),
    ),
)]
async fn create_connect_link(
    caller: Caller,
    State(state): State<HttpState>,
    ApiJson(body): ApiJson<CreateLink>,
) -> Result<(StatusCode, Extension<OneTimeSecret>, Json<LinkOut>), Problem> {
    caller.require_scope("api")?;
    let created = connect_links::create(
        &state.app,
        &caller.workspace_id,
        NewLink {
            platforms: body.platforms,
            external_ref: body.external_ref,
            return_url: body.return_url,
            expires_in: body.expires_in,
            reconnect_account_id: body.reconnect_account_id,
        },
    )
    .await
    .map_err(link_problem)?;
    let link = created.link;
    // The answer holds the link's token: a retry makes a new link, never shows this one again.
    Ok((
        StatusCode::CREATED,
        Extension(OneTimeSecret::Regenerate),
        Json(LinkOut {
            platforms: link.platform_names().map(str::to_string).collect(),
            id: link.id,
            url: created.url,
            expires_at: rfc3339(link.expires_at),
            external_ref: link.external_ref,
            return_url: link.return_url,
            reconnect_account_id: link.reconnect_account_id,
        }),
    ))
}

struct ChoiceView {
    value: &'static str,
    label: &'static str,
    needs: &'static str,
    platform: &'static str,
    initial: char,
    available: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "connect_link.html")]
struct LinkPage {
    chrome: Chrome,
    token: String,
    workspace: String,
    reconnect: Option<String>,
    choices: Vec<ChoiceView>,
    expires: String,
    error: Option<String>,
}

/// A page about a link that cannot go on (or a step that did not work), in the layout.
#[derive(Template, WebTemplate)]
#[template(path = "connect_link_message.html")]
struct MessagePage {
    chrome: Chrome,
    title: String,
    message: String,
    next_step: String,
    /// The host's page to go back to, with the outcome.
    back: Option<String>,
    host: String,
}

/// Pages of the link flow are not cached and send no referrer (their URL holds the token).
fn private(status: StatusCode, page: impl IntoResponse) -> Response {
    (
        status,
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        page,
    )
        .into_response()
}

fn message(
    chrome: Chrome,
    status: StatusCode,
    title: &str,
    message: String,
    next_step: &str,
    back: Option<&ConnectLink>,
) -> Response {
    let host = back
        .and_then(|l| url::Url::parse(&l.return_url).ok())
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_else(|| "the application".into());
    private(
        status,
        MessagePage {
            chrome,
            title: title.into(),
            message,
            next_step: next_step.into(),
            back: back.map(connect_links::return_url),
            host,
        },
    )
}

/// The page for a link that cannot be used (twice, late, unknown) or our own failure.
fn unusable(chrome: Chrome, err: Unusable) -> Response {
    let again = "Go back to the application that sent you here and start connecting again: it gives you a new link.";
    match err {
        Unusable::Unknown => message(
            chrome,
            StatusCode::NOT_FOUND,
            "This connect link is not valid",
            "The link may have been cut short or changed when it was copied.".into(),
            again,
            None,
        ),
        Unusable::Used => message(
            chrome,
            StatusCode::GONE,
            "This connect link was already used",
            "Each connect link works once, and this one has been used.".into(),
            again,
            None,
        ),
        Unusable::Expired => message(
            chrome,
            StatusCode::GONE,
            "This connect link has expired",
            "Connect links only work for a limited time, and this one has run out.".into(),
            again,
            None,
        ),
        Unusable::Connect(ConnectError::NotConfigured(e)) => message(
            chrome,
            StatusCode::SERVICE_UNAVAILABLE,
            "This platform cannot be connected right now",
            capitalize(&e.to_string()),
            again,
            None,
        ),
        Unusable::Store(e) => PageError::from(e).into_response(),
        other @ (Unusable::NotOffered | Unusable::NotConfigured(_) | Unusable::Connect(_)) => {
            PageError::internal(other).into_response()
        }
    }
}

async fn show(
    state: &HttpState,
    chrome: Chrome,
    token: &str,
    status: StatusCode,
    error: Option<String>,
) -> Response {
    let opened = match connect_links::open(&state.app, token).await {
        Ok(opened) => opened,
        Err(err) => return unusable(chrome, err),
    };
    let choices = opened
        .choices
        .iter()
        .map(|(choice, available)| ChoiceView {
            value: choice.value,
            label: choice.label,
            needs: choice.needs,
            platform: choice.platform.as_str(),
            initial: choice.platform.display_name().chars().next().unwrap_or('?'),
            available: *available,
        })
        .collect();
    private(
        status,
        LinkPage {
            chrome,
            token: token.to_string(),
            workspace: opened.workspace_name,
            reconnect: opened.reconnect,
            choices,
            expires: tidepost_app::compose::schedule::spoken(opened.link.expires_at, None),
            error,
        },
    )
}

/// `GET /connect/link/{token}`: the workspace's name and the ways to connect. A creator has no
/// session (no navigation); a signed-in person trying a link keeps their layout.
async fn page(
    State(state): State<HttpState>,
    MaybeViewer(viewer): MaybeViewer,
    Path(token): Path<String>,
) -> Response {
    show(
        &state,
        Chrome::for_maybe_viewer(&state, &viewer, "Accounts"),
        &token,
        StatusCode::OK,
        None,
    )
    .await
}

#[derive(Deserialize)]
struct ChooseForm {
    #[serde(default)]
    choice: String,
}

/// `POST /connect/link/{token}`: spends the link and sends the creator to the platform.
async fn choose(
    State(state): State<HttpState>,
    MaybeViewer(viewer): MaybeViewer,
    Path(token): Path<String>,
    Form(form): Form<ChooseForm>,
) -> Response {
    let chrome = Chrome::for_maybe_viewer(&state, &viewer, "Accounts");
    match connect_links::start(&state.app, &token, &form.choice).await {
        Ok(url) => Redirect::to(&url).into_response(),
        Err(Unusable::NotOffered) => {
            show(
                &state,
                chrome,
                &token,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some("Choose one of the ways to connect below.".into()),
            )
            .await
        }
        Err(err @ Unusable::NotConfigured(_)) => {
            show(
                &state,
                chrome,
                &token,
                StatusCode::SERVICE_UNAVAILABLE,
                Some(format!(
                    "{}. Choose another way below.",
                    capitalize(&err.to_string())
                )),
            )
            .await
        }
        Err(err) => unusable(chrome, err),
    }
}

/// The link a callback's state (or an Instagram Page choice) was started from.
pub(crate) async fn link_of(
    state: &HttpState,
    token: Option<&str>,
) -> Result<Option<ConnectLink>, PageError> {
    Ok(connect_links::of_state(&state.app, token).await?)
}

/// Where a callback of a link's flow ends. Connected: 303 to `return_url` with the account.
/// Declined at the platform: 303 back with `status=declined`. A refusal the creator can act on
/// (another account than the one to reconnect, a personal Instagram account, a Page without
/// Instagram…): a page saying what and how, with a button back to the host carrying
/// `status=error` and the code. A state used twice or late: a page saying so.
pub(crate) async fn land(
    state: &HttpState,
    chrome: Chrome,
    link: ConnectLink,
    platform: &str,
    outcome: Result<(), ConnectError>,
) -> Response {
    let failed = match outcome {
        Ok(()) => {
            return match connect_links::reload(&state.app, &link).await {
                Ok(link) => Redirect::to(&connect_links::return_url(&link)).into_response(),
                Err(e) => PageError::from(e).into_response(),
            };
        }
        Err(err) => err,
    };
    let again = "Go back to the application that sent you here and start connecting again: it gives you a new link.";
    match failed {
        ConnectError::StateReused
        | ConnectError::StateExpired
        | ConnectError::StateMissing
        | ConnectError::StateUnknown
        | ConnectError::StateFromAnotherSession => {
            let finished = link.finished_at.is_some().then_some(&link);
            return message(
                chrome,
                StatusCode::GONE,
                "This sign-in is over",
                format!("{}.", capitalize(&failed.to_string())),
                if finished.is_some() {
                    "It already finished: go back to the application to see the result."
                } else {
                    again
                },
                finished,
            );
        }
        ConnectError::Denied { .. }
        | ConnectError::ProviderError { .. }
        | ConnectError::CodeMissing
        | ConnectError::ScopeMissing { .. }
        | ConnectError::PersonalAccount { .. }
        | ConnectError::NoPages
        | ConnectError::NoInstagramAccount
        | ConnectError::NothingChosen
        | ConnectError::NotChoosable(_)
        | ConnectError::WrongAccount { .. }
        | ConnectError::NotConfigured(_)
        | ConnectError::Vault(_)
        | ConnectError::Store(_) => {}
    }
    let link = match connect_links::record_failure(&state.app, &link, &failed).await {
        Ok(link) => link,
        Err(e) => return PageError::from(e).into_response(),
    };
    if matches!(failed, ConnectError::Denied { .. }) {
        tracing::info!(link_id = %link.id, "the creator declined at the platform");
        return Redirect::to(&connect_links::return_url(&link)).into_response();
    }
    if !failed.is_refusal() {
        let page = PageError::internal(&failed);
        return message(
            chrome,
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("{platform} was not connected"),
            page.message,
            "Go back to the application and try again in a moment.",
            Some(&link),
        );
    }
    tracing::info!(link_id = %link.id, reason = %failed, "connection through a link refused");
    message(
        chrome,
        StatusCode::BAD_REQUEST,
        &format!("{platform} was not connected"),
        format!("{}.", capitalize(&failed.to_string()).trim_end_matches('.')),
        "Once that is done, go back to the application and start again: it gives you a new link.",
        Some(&link),
    )
}
