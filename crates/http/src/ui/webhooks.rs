//! Settings → Webhooks: the workspace's outbound webhook endpoints (list with a notice for
//! disabled ones, create with event checkboxes — the secret is shown once —, rotate the
//! secret, enable/disable, delete), each endpoint's delivery log, one delivery with every
//! attempt, and re-send.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use axum_extra::extract::CookieJar;
use serde::Deserialize;
use tidepost_app::outbound::deliver::{self, ResendError};
use tidepost_app::outbound::endpoints::{self, Changes, EndpointError, NewEndpoint};
use tidepost_app::outbound::{EVENT_TYPES, deliver::SCHEDULE};
use tidepost_store::webhook_deliveries::{self, Delivery};
use tidepost_store::webhook_endpoints::{self, Endpoint};

use super::{Chrome, flash};
use crate::auth::{CsrfForm, Viewer};
use crate::error::{PageError, capitalize};
use crate::state::HttpState;
use crate::zone::Zone;

pub fn router() -> Router<HttpState> {
    Router::new()
        .route("/settings/webhooks", get(index).post(create))
        .route("/settings/webhooks/{id}", get(endpoint_page))
        .route("/settings/webhooks/{id}/rotate", post(rotate))
        .route("/settings/webhooks/{id}/enable", post(enable))
        .route("/settings/webhooks/{id}/disable", post(disable))
        .route("/settings/webhooks/{id}/delete", post(delete))
        .route("/settings/webhooks/deliveries/{id}", get(delivery_page))
        .route("/settings/webhooks/deliveries/{id}/resend", post(resend))
}

/// An endpoint as a row or a header.
struct EndpointView {
    id: String,
    url: String,
    description: String,
    events: String,
    enabled: bool,
    disabled_reason: String,
    disabled_when: String,
    last_success: String,
    failure_streak: i64,
    previous_until: Option<String>,
    created: String,
}

impl EndpointView {
    fn of(e: &Endpoint, zone: &Zone) -> Self {
        let types = e.types();
        Self {
            id: e.id.clone(),
            url: e.url.clone(),
            description: e.description.clone(),
            events: if types.is_empty() {
                "all events".to_string()
            } else {
                types.join(", ")
            },
            enabled: e.enabled(),
            disabled_reason: e.disabled_reason.clone().unwrap_or_default(),
            disabled_when: zone.when(e.disabled_at),
            last_success: zone.when(e.last_success_at),
            failure_streak: e.failure_streak,
            // Every rotated-out secret still signing, each until its own overlap ends.
            previous_until: Some(
                e.retired_secrets_at(tidepost_domain::now_ms())
                    .iter()
                    .map(|r| zone.when(Some(r.until)))
                    .collect::<Vec<_>>()
                    .join(", "),
            )
            .filter(|untils| !untils.is_empty()),
            created: zone.when(Some(e.created_at)),
        }
    }
}

struct EventChoice {
    name: &'static str,
    label: &'static str,
    checked: bool,
}

fn choices(checked: &[String]) -> Vec<EventChoice> {
    EVENT_TYPES
        .iter()
        .map(|(name, label)| EventChoice {
            name,
            label,
            checked: checked.iter().any(|c| c == name),
        })
        .collect()
}

/// What the create form was sent with, to show it again after an error.
#[derive(Default)]
struct Draft {
    url: String,
    description: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "webhooks.html")]
struct IndexPage {
    chrome: Chrome,
    endpoints: Vec<EndpointView>,
    disabled: Vec<EndpointView>,
    events: Vec<EventChoice>,
    draft: Draft,
    created: Option<(EndpointView, String)>,
    error: Option<String>,
}

async fn index_page(
    state: &HttpState,
    viewer: &Viewer,
    created: Option<(EndpointView, String)>,
    error: Option<String>,
    draft: Draft,
    checked: &[String],
) -> Result<IndexPage, PageError> {
    let rows = webhook_endpoints::list(&state.app.db, &viewer.workspace.id, None, 500).await?;
    let endpoints: Vec<EndpointView> = rows
        .iter()
        .map(|e| EndpointView::of(e, &viewer.zone))
        .collect();
    let disabled = rows
        .iter()
        .filter(|e| !e.enabled())
        .map(|e| EndpointView::of(e, &viewer.zone))
        .collect();
    Ok(IndexPage {
        chrome: Chrome::for_viewer(state, viewer, "Webhooks"),
        endpoints,
        disabled,
        events: choices(checked),
        draft,
        created,
        error,
    })
}

/// A signing secret just made (by creating an endpoint or rotating its secret), carried by a
/// flash cookie to the page that shows it once (post/redirect/get).
#[derive(serde::Serialize, Deserialize)]
struct ShownSecret {
    endpoint_id: String,
    secret: String,
}

/// The secret a flash carried for `endpoint_id` (for this session), if any.
fn take_secret(
    state: &HttpState,
    viewer: &Viewer,
    jar: CookieJar,
) -> (CookieJar, Option<ShownSecret>) {
    flash::take(
        state,
        jar,
        flash::WEBHOOK_SECRET,
        &viewer.session.token_hash,
    )
}

fn secret_cookie(
    state: &HttpState,
    viewer: &Viewer,
    shown: &ShownSecret,
) -> axum_extra::extract::cookie::Cookie<'static> {
    flash::set(
        state,
        flash::WEBHOOK_SECRET,
        &viewer.session.token_hash,
        shown,
    )
}

async fn index(
    State(state): State<HttpState>,
    viewer: Viewer,
    jar: CookieJar,
) -> Result<Response, PageError> {
    let (jar, shown) = take_secret(&state, &viewer, jar);
    let created = match shown {
        Some(shown) => {
            webhook_endpoints::get(&state.app.db, &viewer.workspace.id, &shown.endpoint_id)
                .await?
                .map(|e| (EndpointView::of(&e, &viewer.zone), shown.secret))
        }
        None => None,
    };
    let page = index_page(&state, &viewer, created, None, Draft::default(), &[]).await?;
    Ok((jar, page).into_response())
}

/// The create form: `csrf`, `url`, `description` and one `event_types` per checked box.
/// Creates the endpoint and answers 303 to the list, which shows the new secret once.
async fn create(
    State(state): State<HttpState>,
    viewer: Viewer,
    jar: CookieJar,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    viewer.check_csrf(&field("csrf"))?;
    let event_types: Vec<String> = fields
        .iter()
        .filter(|(k, _)| k == "event_types")
        .map(|(_, v)| v.clone())
        .collect();
    let new = NewEndpoint {
        url: field("url"),
        description: field("description"),
        event_types: event_types.clone(),
        enabled: true,
    };
    match endpoints::create(&state.app, &viewer.workspace.id, new).await {
        Ok(created) => {
            let shown = ShownSecret {
                endpoint_id: created.endpoint.id,
                secret: created.secret,
            };
            let cookie = secret_cookie(&state, &viewer, &shown);
            Ok((jar.add(cookie), Redirect::to("/settings/webhooks")).into_response())
        }
        Err(err @ (EndpointError::Invalid { .. } | EndpointError::Url(_))) => {
            let message = match &err {
                EndpointError::Url(guard) => format!("That URL cannot be used: {guard}."),
                other @ (EndpointError::Invalid { .. }
                | EndpointError::Busy
                | EndpointError::Vault(_)
                | EndpointError::Store(_)) => capitalize(&other.to_string()),
            };
            let draft = Draft {
                url: field("url"),
                description: field("description"),
            };
            Ok((
                StatusCode::UNPROCESSABLE_ENTITY,
                index_page(&state, &viewer, None, Some(message), draft, &event_types).await?,
            )
                .into_response())
        }
        Err(other) => Err(PageError::internal(other)),
    }
}

struct DeliveryRow {
    id: String,
    event_type: String,
    state: String,
    attempts: i64,
    last: String,
    created: String,
    next: String,
}

impl DeliveryRow {
    fn of(d: &Delivery, zone: &Zone) -> Self {
        Self {
            id: d.id.clone(),
            event_type: d.event_type.clone(),
            state: d.state.clone(),
            attempts: d.attempts,
            last: match (d.last_status, &d.last_error) {
                (_, Some(error)) => error.clone(),
                (Some(status), None) => format!("HTTP {status}"),
                (None, None) => "—".to_string(),
            },
            created: zone.when(Some(d.created_at)),
            next: if d.state == "pending" {
                zone.when(d.next_attempt_at)
            } else {
                String::new()
            },
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "webhook_endpoint.html")]
struct EndpointPage {
    chrome: Chrome,
    endpoint: EndpointView,
    deliveries: Vec<DeliveryRow>,
    counts: (i64, i64, i64),
    filter: String,
    next_page: Option<String>,
    secret: Option<String>,
    notice: Option<String>,
}

#[derive(Deserialize, Default)]
struct LogQuery {
    state: Option<String>,
    after: Option<String>,
}

const LOG_PAGE: i64 = 50;

async fn load_endpoint(
    state: &HttpState,
    viewer: &Viewer,
    id: &str,
) -> Result<Endpoint, PageError> {
    webhook_endpoints::get(&state.app.db, &viewer.workspace.id, id)
        .await?
        .ok_or_else(PageError::not_found)
}

async fn endpoint_view(
    state: &HttpState,
    viewer: &Viewer,
    id: &str,
    query: LogQuery,
    secret: Option<String>,
    notice: Option<String>,
) -> Result<EndpointPage, PageError> {
    let endpoint = load_endpoint(state, viewer, id).await?;
    let filter = match query.state.as_deref() {
        Some(s @ ("pending" | "succeeded" | "failed")) => s.to_string(),
        _ => String::new(),
    };
    let ws = &viewer.workspace.id;
    let rows = webhook_deliveries::list_for_endpoint(
        &state.app.db,
        ws,
        id,
        (!filter.is_empty()).then_some(filter.as_str()),
        query.after.as_deref().filter(|a| !a.is_empty()),
        LOG_PAGE,
    )
    .await?;
    let next_page = (rows.len() as i64 == LOG_PAGE)
        .then(|| rows.last().map(|d| d.id.clone()))
        .flatten();
    Ok(EndpointPage {
        chrome: Chrome::for_viewer(state, viewer, "Webhooks"),
        counts: webhook_deliveries::counts(&state.app.db, ws, id).await?,
        endpoint: EndpointView::of(&endpoint, &viewer.zone),
        deliveries: rows
            .iter()
            .map(|d| DeliveryRow::of(d, &viewer.zone))
            .collect(),
        filter,
        next_page,
        secret,
        notice,
    })
}

async fn endpoint_page(
    State(state): State<HttpState>,
    viewer: Viewer,
    jar: CookieJar,
    Path(id): Path<String>,
    Query(query): Query<LogQuery>,
) -> Result<Response, PageError> {
    let (jar, shown) = take_secret(&state, &viewer, jar);
    let secret = shown
        .filter(|shown| shown.endpoint_id == id)
        .map(|shown| shown.secret);
    let page = endpoint_view(&state, &viewer, &id, query, secret, None).await?;
    Ok((jar, page).into_response())
}

/// Rotates the secret and answers 303 to the endpoint's page, which shows the new one once.
async fn rotate(
    State(state): State<HttpState>,
    viewer: Viewer,
    jar: CookieJar,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, PageError> {
    viewer.check_csrf(&form.csrf)?;
    match endpoints::rotate_secret(&state.app, &viewer.workspace.id, &id).await {
        Ok(Some(rotated)) => {
            let shown = ShownSecret {
                endpoint_id: id.clone(),
                secret: rotated.secret,
            };
            let cookie = secret_cookie(&state, &viewer, &shown);
            Ok((
                jar.add(cookie),
                Redirect::to(&format!("/settings/webhooks/{id}")),
            )
                .into_response())
        }
        Ok(None) => Err(PageError::not_found()),
        Err(err @ EndpointError::Busy) => Err(PageError::new(
            StatusCode::CONFLICT,
            "Try again",
            capitalize(&err.to_string()),
        )
        .with_action(format!("/settings/webhooks/{id}"), "Back to the endpoint")),
        Err(other) => Err(PageError::internal(other)),
    }
}

async fn set_enabled(
    state: &HttpState,
    viewer: &Viewer,
    id: &str,
    enabled: bool,
) -> Result<Response, PageError> {
    let changes = Changes {
        enabled: Some(enabled),
        ..Changes::default()
    };
    match endpoints::update(&state.app, &viewer.workspace.id, id, changes).await {
        Ok(Some(_)) => Ok(Redirect::to(&format!("/settings/webhooks/{id}")).into_response()),
        Ok(None) => Err(PageError::not_found()),
        Err(err) => Err(PageError::internal(err)),
    }
}

async fn enable(
    State(state): State<HttpState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, PageError> {
    viewer.check_csrf(&form.csrf)?;
    set_enabled(&state, &viewer, &id, true).await
}

async fn disable(
    State(state): State<HttpState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, PageError> {
    viewer.check_csrf(&form.csrf)?;
    set_enabled(&state, &viewer, &id, false).await
}

async fn delete(
    State(state): State<HttpState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, PageError> {
    viewer.check_csrf(&form.csrf)?;
    if !endpoints::delete(&state.app, &viewer.workspace.id, &id).await? {
        return Err(PageError::not_found());
    }
    Ok(Redirect::to("/settings/webhooks").into_response())
}

struct AttemptRow {
    attempt: i64,
    cause: String,
    status: String,
    ok: bool,
    latency: String,
    excerpt: String,
    error: String,
    started: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "webhook_delivery.html")]
struct DeliveryPage {
    chrome: Chrome,
    endpoint: EndpointView,
    delivery: DeliveryRow,
    event_id: String,
    body: String,
    attempts: Vec<AttemptRow>,
    schedule: String,
    notice: Option<String>,
}

#[derive(Deserialize)]
struct DeliveryQuery {
    resent: Option<String>,
}

async fn delivery_page(
    State(state): State<HttpState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Query(query): Query<DeliveryQuery>,
) -> Result<DeliveryPage, PageError> {
    let ws = &viewer.workspace.id;
    let delivery = webhook_deliveries::get(&state.app.db, ws, &id)
        .await?
        .ok_or_else(PageError::not_found)?;
    let endpoint = load_endpoint(&state, &viewer, &delivery.endpoint_id).await?;
    let attempts = webhook_deliveries::attempts(&state.app.db, ws, &id)
        .await?
        .into_iter()
        .map(|a| AttemptRow {
            attempt: a.attempt,
            cause: a.cause,
            ok: a.error.is_none() && a.status_code.is_some_and(|s| (200..300).contains(&s)),
            status: a
                .status_code
                .map_or_else(|| "no answer".to_string(), |s| s.to_string()),
            latency: format!("{} ms", a.latency_ms),
            excerpt: a.response_excerpt.unwrap_or_default(),
            error: a.error.unwrap_or_default(),
            started: viewer.zone.when(Some(a.started_at)),
        })
        .collect();
    let body = serde_json::from_str::<serde_json::Value>(&delivery.body)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| delivery.body.clone());
    let schedule = SCHEDULE
        .iter()
        .map(|d| human(d.as_secs()))
        .collect::<Vec<_>>()
        .join(", ");
    Ok(DeliveryPage {
        chrome: Chrome::for_viewer(&state, &viewer, "Webhooks"),
        endpoint: EndpointView::of(&endpoint, &viewer.zone),
        event_id: delivery.event_id.clone(),
        delivery: DeliveryRow::of(&delivery, &viewer.zone),
        body,
        attempts,
        schedule,
        notice: query.resent.map(|_| {
            "Re-sent: one more attempt is on its way. Reload to see it below.".to_string()
        }),
    })
}

fn human(secs: u64) -> String {
    match secs {
        0 => "at once".to_string(),
        s if s < 60 => format!("{s} s"),
        s if s < 3600 => format!("{} min", s / 60),
        s => format!("{} h", s / 3600),
    }
}

async fn resend(
    State(state): State<HttpState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, PageError> {
    viewer.check_csrf(&form.csrf)?;
    match deliver::resend(&state.app, &viewer.workspace.id, &id).await {
        Ok(Some(_)) => Ok(
            Redirect::to(&format!("/settings/webhooks/deliveries/{id}?resent=1")).into_response(),
        ),
        Ok(None) => Err(PageError::not_found()),
        Err(err @ ResendError::EndpointDisabled) => Err(PageError::new(
            StatusCode::CONFLICT,
            "The endpoint is disabled",
            capitalize(&err.to_string()),
        )
        .with_action(
            format!("/settings/webhooks/deliveries/{id}"),
            "Back to the delivery",
        )),
        Err(other) => Err(PageError::internal(other)),
    }
}
