//! The CRM under `/api/v1`: creators (CRUD, attach/detach accounts, timeline), contacts (list
//! with search, one, timeline), interactions (list with filters, one, reply to an Instagram
//! comment) and a target's metrics series (`/api/v1/targets/{id}/metrics`). Lists are newest
//! first with `next_cursor`, passed back as `after`.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use tidepost_app::crm::CrmError;
use tidepost_domain::time::rfc3339;
use tidepost_store::crm::contacts::{self, Contact};
use tidepost_store::crm::creators::{self, Creator, OwnedAccount};
use tidepost_store::crm::interactions::{self, Filter, KINDS};
use tidepost_store::crm::{Cursor, Paged, metrics, timeline};

use super::ApiJson;
use crate::auth::Caller;
use crate::error::Problem;
use crate::state::HttpState;

pub fn router() -> Router<HttpState> {
    Router::new()
        .route("/creators", get(list_creators).post(create_creator))
        .route(
            "/creators/{id}",
            get(show_creator)
                .patch(update_creator)
                .delete(delete_creator),
        )
        .route("/creators/{id}/accounts", post(attach_account))
        .route(
            "/creators/{id}/accounts/{account_id}",
            delete(detach_account),
        )
        .route("/creators/{id}/timeline", get(creator_timeline))
        .route("/contacts", get(list_contacts))
        .route("/contacts/{id}", get(show_contact))
        .route("/contacts/{id}/timeline", get(contact_timeline))
        .route("/interactions", get(list_interactions))
        .route("/interactions/{id}", get(show_interaction))
        .route("/interactions/{id}/reply", post(reply))
        .route("/targets/{id}/metrics", get(target_metrics))
}

// ---- shapes (schema-only mirrors of the JSON built below) ----

#[derive(utoipa::ToSchema)]
#[schema(as = Creator)]
#[allow(dead_code)]
struct CreatorDoc {
    id: String,
    name: String,
    notes: String,
    /// The host application's id for this creator, stamped by a connect link.
    external_ref: Option<String>,
    /// The accounts this creator owns.
    accounts: Vec<OwnedAccountDoc>,
    created_at: String,
    updated_at: String,
}

#[derive(utoipa::ToSchema)]
#[schema(as = CreatorAccount)]
#[allow(dead_code)]
struct OwnedAccountDoc {
    id: String,
    /// `tiktok` or `instagram`.
    platform: String,
    display_name: String,
    username: Option<String>,
    /// `active` or `needs_reauth`.
    status: String,
}

#[derive(utoipa::ToSchema)]
#[schema(as = CreatorList)]
#[allow(dead_code)]
struct CreatorListDoc {
    data: Vec<CreatorDoc>,
    next_cursor: Option<String>,
}

#[derive(utoipa::ToSchema)]
#[schema(as = Contact)]
#[allow(dead_code)]
struct ContactDoc {
    id: String,
    platform: String,
    /// The person's id on the platform (Instagram-scoped for Instagram).
    platform_user_id: String,
    handle: Option<String>,
    name: Option<String>,
    interactions: i64,
    first_seen_at: String,
    last_seen_at: String,
}

#[derive(utoipa::ToSchema)]
#[schema(as = ContactList)]
#[allow(dead_code)]
struct ContactListDoc {
    data: Vec<ContactDoc>,
    next_cursor: Option<String>,
}

#[derive(utoipa::ToSchema)]
#[schema(as = Interaction)]
#[allow(dead_code)]
struct InteractionDoc {
    id: String,
    platform: String,
    /// `comment`, `reply`, `mention` or `message`.
    kind: String,
    /// `inbound` (from a contact) or `outbound` (the account answering).
    direction: String,
    provider_id: String,
    parent_provider_id: Option<String>,
    contact_id: Option<String>,
    creator_id: Option<String>,
    account_id: Option<String>,
    target_id: Option<String>,
    provider_media_id: Option<String>,
    text: String,
    occurred_at: String,
}

#[derive(utoipa::ToSchema)]
#[schema(as = InteractionList)]
#[allow(dead_code)]
struct InteractionListDoc {
    data: Vec<InteractionDoc>,
    next_cursor: Option<String>,
}

#[derive(utoipa::ToSchema)]
#[schema(as = TimelineEntry)]
#[allow(dead_code)]
struct EntryDoc {
    id: String,
    /// RFC 3339.
    at: String,
    /// `post`, `interaction`, `account_event` or `milestone`.
    kind: String,
    title: String,
    detail: String,
    /// The post, interaction, account or target the entry is about.
    ref_id: String,
}

#[derive(utoipa::ToSchema)]
#[schema(as = Timeline)]
#[allow(dead_code)]
struct TimelineDoc {
    data: Vec<EntryDoc>,
    next_cursor: Option<String>,
}

#[derive(utoipa::ToSchema)]
#[schema(as = MetricSample)]
#[allow(dead_code)]
struct SampleDoc {
    sampled_at: String,
    views: Option<i64>,
    likes: Option<i64>,
    comments: Option<i64>,
    shares: Option<i64>,
    saves: Option<i64>,
    reach: Option<i64>,
}

#[derive(utoipa::ToSchema)]
#[schema(as = TargetMetrics)]
#[allow(dead_code)]
struct MetricsDoc {
    target_id: String,
    post_id: String,
    platform: String,
    /// Whether samples are still being taken (and when the next is due).
    tracking: bool,
    next_sample_at: Option<String>,
    last_error: Option<String>,
    /// Oldest first.
    samples: Vec<SampleDoc>,
    milestones: Vec<Value>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewCreator {
    /// 1 to 200 characters.
    name: String,
    #[serde(default)]
    notes: String,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreatorChange {
    name: Option<String>,
    notes: Option<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AttachAccount {
    /// A connected account of this workspace; it moves from its current creator.
    account_id: String,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Reply {
    /// Up to 2,200 characters.
    text: String,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct PageQuery {
    /// The `next_cursor` of the previous page.
    after: Option<String>,
    /// At most this many items (1 to 200, default 50).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct CreatorQuery {
    /// Only creators whose name contains this (any case).
    q: Option<String>,
    /// Only the creators with this host id (what a connect link's `external_ref` stamped).
    external_ref: Option<String>,
    /// The `next_cursor` of the previous page.
    after: Option<String>,
    /// At most this many items (1 to 200, default 50).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ContactQuery {
    /// Handle, name or platform id containing this (any case; a leading `@` is ignored).
    q: Option<String>,
    /// `tiktok` or `instagram`.
    platform: Option<String>,
    /// The `next_cursor` of the previous page.
    after: Option<String>,
    /// At most this many items (1 to 200, default 50).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct InteractionQuery {
    creator_id: Option<String>,
    contact_id: Option<String>,
    /// `comment`, `reply`, `mention` or `message`.
    kind: Option<String>,
    /// `inbound` or `outbound`.
    direction: Option<String>,
    /// The `next_cursor` of the previous page.
    after: Option<String>,
    /// At most this many items (1 to 200, default 50).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
}

// ---- helpers ----

/// A JSON body, read after the route's object was found in the workspace (so another
/// workspace's id is a 404 whatever the body).
fn body_as<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, Problem> {
    serde_json::from_slice(bytes).map_err(|e| {
        Problem::bad_request(format!("the body is not valid JSON for this route: {e}"))
    })
}

/// The page position and size a client asked for, checked.
pub(crate) fn page_of(after: Option<&str>, limit: Option<i64>) -> Result<(Cursor, i64), Problem> {
    let limit = super::paging::limit(limit, 50)?;
    let cursor = match after.filter(|a| !a.is_empty()) {
        None => Cursor::start(),
        Some(text) => Cursor::parse(text).ok_or_else(|| {
            Problem::invalid("after is not a cursor this API gave (pass back next_cursor as is)")
        })?,
    };
    Ok((cursor, limit))
}

fn paged<T>(page: Paged<T>, item: impl Fn(&T) -> Value) -> Json<Value> {
    Json(json!({
        "data": page.items.iter().map(item).collect::<Vec<_>>(),
        "next_cursor": page.next.map(|c| c.encode()),
    }))
}

fn account_json(a: &OwnedAccount) -> Value {
    json!({"id": a.id, "platform": a.platform, "display_name": a.display_name,
           "username": a.username, "status": a.status})
}

fn creator_json(c: &Creator, accounts: &[OwnedAccount]) -> Value {
    json!({
        "id": c.id,
        "name": c.name,
        "notes": c.notes,
        "external_ref": c.external_ref,
        "accounts": accounts.iter().map(account_json).collect::<Vec<_>>(),
        "created_at": rfc3339(c.created_at),
        "updated_at": rfc3339(c.updated_at),
    })
}

pub(crate) fn contact_json(c: &Contact) -> Value {
    json!({
        "id": c.id,
        "platform": c.platform,
        "platform_user_id": c.platform_user_id,
        "handle": c.handle,
        "name": c.name,
        "interactions": c.interactions,
        "first_seen_at": rfc3339(c.first_seen_at),
        "last_seen_at": rfc3339(c.last_seen_at),
    })
}

fn entry_json(e: &timeline::Entry) -> Value {
    json!({"id": e.id, "at": rfc3339(e.at), "kind": e.kind, "title": e.title,
           "detail": e.detail, "ref_id": e.ref_id})
}

/// A CRM service error as problem+json.
pub(crate) fn crm_problem(err: CrmError) -> Problem {
    match err {
        CrmError::NotFound(what) => Problem::not_found(what),
        CrmError::Invalid(detail) => Problem::invalid(detail),
        CrmError::Unsupported(detail) => Problem::conflict(detail),
        CrmError::NeedsReauth(_) => Problem::new(
            StatusCode::CONFLICT,
            "needs-reauth",
            "The account must be connected again",
            err.to_string(),
        ),
        CrmError::Provider(e) => Problem::new(
            StatusCode::BAD_GATEWAY,
            "provider-error",
            "The provider refused",
            e.to_string(),
        ),
        CrmError::Busy(detail) => {
            let mut busy = Problem::unavailable(detail);
            busy.code = "busy";
            busy.title = "Try again shortly";
            busy
        }
        CrmError::NotConfigured(e) => Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not-configured",
            "Not configured",
            e.to_string(),
        ),
        CrmError::Store(e) => e.into(),
    }
}

async fn creator_or_404(state: &HttpState, ws: &str, id: &str) -> Result<Creator, Problem> {
    creators::get(&state.app.db, ws, id)
        .await?
        .ok_or_else(|| Problem::not_found("creator"))
}

// ---- creators ----

#[utoipa::path(
    get, path = "/api/v1/creators", tag = "crm", params(CreatorQuery),
    responses((status = 200, description = "Creators, newest first", body = CreatorListDoc)),
)]
async fn list_creators(
    caller: Caller,
    State(state): State<HttpState>,
    Query(q): Query<CreatorQuery>,
) -> Result<Json<Value>, Problem> {
    caller.require_scope("api")?;
    let (after, limit) = page_of(q.after.as_deref(), q.limit)?;
    let page = creators::list(
        &state.app.db,
        &caller.workspace_id,
        q.q.as_deref(),
        q.external_ref.as_deref().filter(|r| !r.is_empty()),
        &after,
        limit,
    )
    .await?;
    let mut data = Vec::new();
    for c in &page.items {
        let owned = creators::accounts_of(&state.app.db, &caller.workspace_id, &c.id).await?;
        data.push(creator_json(c, &owned));
    }
    Ok(Json(
        json!({"data": data, "next_cursor": page.next.map(|c| c.encode())}),
    ))
}

#[utoipa::path(
    post, path = "/api/v1/creators", tag = "crm", request_body = NewCreator,
    responses(
        (status = 201, description = "The new creator", body = CreatorDoc),
        (status = 422, description = "The name or notes are invalid", body = Problem),
    ),
)]
async fn create_creator(
    caller: Caller,
    State(state): State<HttpState>,
    ApiJson(body): ApiJson<NewCreator>,
) -> Result<(StatusCode, Json<Value>), Problem> {
    caller.require_scope("api")?;
    creators::validate(&body.name, &body.notes).map_err(Problem::invalid)?;
    let c = creators::create(&state.app.db, &caller.workspace_id, &body.name, &body.notes).await?;
    Ok((StatusCode::CREATED, Json(creator_json(&c, &[]))))
}

#[utoipa::path(
    get, path = "/api/v1/creators/{id}", tag = "crm",
    params(("id" = String, Path, description = "The creator's id")),
    responses(
        (status = 200, description = "The creator with its accounts", body = CreatorDoc),
        (status = 404, description = "No such creator in this workspace", body = Problem),
    ),
)]
async fn show_creator(
    caller: Caller,
    State(state): State<HttpState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, Problem> {
    caller.require_scope("api")?;
    let c = creator_or_404(&state, &caller.workspace_id, &id).await?;
    let owned = creators::accounts_of(&state.app.db, &caller.workspace_id, &id).await?;
    Ok(Json(creator_json(&c, &owned)))
}

#[utoipa::path(
    patch, path = "/api/v1/creators/{id}", tag = "crm", request_body = CreatorChange,
    params(("id" = String, Path, description = "The creator's id")),
    responses(
        (status = 200, description = "The updated creator", body = CreatorDoc),
        (status = 404, description = "No such creator in this workspace", body = Problem),
        (status = 422, description = "The name or notes are invalid", body = Problem),
    ),
)]
async fn update_creator(
    caller: Caller,
    State(state): State<HttpState>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, Problem> {
    caller.require_scope("api")?;
    let c = creator_or_404(&state, &caller.workspace_id, &id).await?;
    let body: CreatorChange = body_as(&body)?;
    let name = body.name.unwrap_or(c.name);
    let notes = body.notes.unwrap_or(c.notes);
    creators::validate(&name, &notes).map_err(Problem::invalid)?;
    if !creators::update(&state.app.db, &caller.workspace_id, &id, &name, &notes).await? {
        return Err(Problem::not_found("creator"));
    }
    show_creator(caller, State(state), Path(id)).await
}

#[utoipa::path(
    delete, path = "/api/v1/creators/{id}", tag = "crm",
    params(("id" = String, Path, description = "The creator's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such creator in this workspace", body = Problem),
        (status = 409, description = "The creator still owns accounts", body = Problem),
    ),
)]
async fn delete_creator(
    caller: Caller,
    State(state): State<HttpState>,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    caller.require_scope("api")?;
    match creators::delete(&state.app.db, &caller.workspace_id, &id).await {
        Ok(true) => Ok(StatusCode::NO_CONTENT),
        Ok(false) => Err(Problem::not_found("creator")),
        Err(e) if e.is_unique_violation() => Err(Problem::conflict(
            "this creator still owns accounts: attach them to another creator or detach them first",
        )),
        Err(e) => Err(e.into()),
    }
}

#[utoipa::path(
    post, path = "/api/v1/creators/{id}/accounts", tag = "crm", request_body = AttachAccount,
    params(("id" = String, Path, description = "The creator's id")),
    responses(
        (status = 200, description = "The creator with the account attached", body = CreatorDoc),
        (status = 404, description = "No such creator or account in this workspace", body = Problem),
    ),
)]
async fn attach_account(
    caller: Caller,
    State(state): State<HttpState>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, Problem> {
    caller.require_scope("api")?;
    creator_or_404(&state, &caller.workspace_id, &id).await?;
    let body: AttachAccount = body_as(&body)?;
    if !creators::attach(&state.app.db, &caller.workspace_id, &id, &body.account_id).await? {
        return Err(Problem::not_found("account"));
    }
    show_creator(caller, State(state), Path(id)).await
}

#[utoipa::path(
    delete, path = "/api/v1/creators/{id}/accounts/{account_id}", tag = "crm",
    params(
        ("id" = String, Path, description = "The creator's id"),
        ("account_id" = String, Path, description = "One of the creator's accounts"),
    ),
    responses(
        (status = 200, description = "The creator the account now belongs to: a new one named after it", body = CreatorDoc),
        (status = 404, description = "No such creator, or the account is not this creator's", body = Problem),
    ),
)]
async fn detach_account(
    caller: Caller,
    State(state): State<HttpState>,
    Path((id, account_id)): Path<(String, String)>,
) -> Result<Json<Value>, Problem> {
    caller.require_scope("api")?;
    creator_or_404(&state, &caller.workspace_id, &id).await?;
    let own = creators::detach(&state.app.db, &caller.workspace_id, &id, &account_id)
        .await?
        .ok_or_else(|| Problem::not_found("account of this creator"))?;
    let owned = creators::accounts_of(&state.app.db, &caller.workspace_id, &own.id).await?;
    Ok(Json(creator_json(&own, &owned)))
}

#[utoipa::path(
    get, path = "/api/v1/creators/{id}/timeline", tag = "crm", params(("id" = String, Path, description = "The creator's id"), PageQuery),
    responses(
        (status = 200, description = "Posts, interactions, account events and milestones, newest first", body = TimelineDoc),
        (status = 404, description = "No such creator in this workspace", body = Problem),
    ),
)]
async fn creator_timeline(
    caller: Caller,
    State(state): State<HttpState>,
    Path(id): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<Json<Value>, Problem> {
    caller.require_scope("api")?;
    let (after, limit) = page_of(q.after.as_deref(), q.limit)?;
    creator_or_404(&state, &caller.workspace_id, &id).await?;
    let page =
        timeline::of_creator(&state.app.db, &caller.workspace_id, &id, &after, limit).await?;
    Ok(paged(page, entry_json))
}

// ---- contacts ----

#[utoipa::path(
    get, path = "/api/v1/contacts", tag = "crm", params(ContactQuery),
    responses((status = 200, description = "Contacts, most recently seen first", body = ContactListDoc)),
)]
async fn list_contacts(
    caller: Caller,
    State(state): State<HttpState>,
    Query(q): Query<ContactQuery>,
) -> Result<Json<Value>, Problem> {
    caller.require_scope("api")?;
    let (after, limit) = page_of(q.after.as_deref(), q.limit)?;
    let platform = q
        .platform
        .as_deref()
        .filter(|p| !p.is_empty())
        .map(str::parse::<tidepost_domain::Platform>)
        .transpose()
        .map_err(|e| Problem::invalid(e.to_string()).with("field", "platform"))?;
    if q.q.as_ref().is_some_and(|s| s.chars().count() > 200) {
        return Err(Problem::invalid("q must be at most 200 characters"));
    }
    let page = contacts::list(
        &state.app.db,
        &caller.workspace_id,
        q.q.as_deref(),
        platform,
        &after,
        limit,
    )
    .await?;
    Ok(paged(page, contact_json))
}

#[utoipa::path(
    get, path = "/api/v1/contacts/{id}", tag = "crm",
    params(("id" = String, Path, description = "The contact's id")),
    responses(
        (status = 200, description = "The contact", body = ContactDoc),
        (status = 404, description = "No such contact in this workspace", body = Problem),
    ),
)]
async fn show_contact(
    caller: Caller,
    State(state): State<HttpState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, Problem> {
    caller.require_scope("api")?;
    let c = contacts::get(&state.app.db, &caller.workspace_id, &id)
        .await?
        .ok_or_else(|| Problem::not_found("contact"))?;
    Ok(Json(contact_json(&c)))
}

#[utoipa::path(
    get, path = "/api/v1/contacts/{id}/timeline", tag = "crm", params(("id" = String, Path, description = "The contact's id"), PageQuery),
    responses(
        (status = 200, description = "The contact's interactions and the replies to them, newest first", body = TimelineDoc),
        (status = 404, description = "No such contact in this workspace", body = Problem),
    ),
)]
async fn contact_timeline(
    caller: Caller,
    State(state): State<HttpState>,
    Path(id): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<Json<Value>, Problem> {
    caller.require_scope("api")?;
    let (after, limit) = page_of(q.after.as_deref(), q.limit)?;
    contacts::get(&state.app.db, &caller.workspace_id, &id)
        .await?
        .ok_or_else(|| Problem::not_found("contact"))?;
    let page =
        timeline::of_contact(&state.app.db, &caller.workspace_id, &id, &after, limit).await?;
    Ok(paged(page, entry_json))
}

// ---- interactions ----

#[utoipa::path(
    get, path = "/api/v1/interactions", tag = "crm", params(InteractionQuery),
    responses((status = 200, description = "Interactions, newest first", body = InteractionListDoc)),
)]
async fn list_interactions(
    caller: Caller,
    State(state): State<HttpState>,
    Query(q): Query<InteractionQuery>,
) -> Result<Json<Value>, Problem> {
    caller.require_scope("api")?;
    let (after, limit) = page_of(q.after.as_deref(), q.limit)?;
    let kind = q.kind.as_deref().filter(|k| !k.is_empty());
    if let Some(k) = kind
        && !KINDS.contains(&k)
    {
        return Err(Problem::invalid(format!(
            "unknown kind {k:?}: use {}",
            KINDS.join(", ")
        )));
    }
    let direction = q.direction.as_deref().filter(|d| !d.is_empty());
    if let Some(d) = direction
        && !["inbound", "outbound"].contains(&d)
    {
        return Err(Problem::invalid(format!(
            "unknown direction {d:?}: use inbound or outbound"
        )));
    }
    let filter = Filter {
        creator_id: q.creator_id.as_deref().filter(|s| !s.is_empty()),
        contact_id: q.contact_id.as_deref().filter(|s| !s.is_empty()),
        kind,
        direction,
        account_id: None,
    };
    let page =
        interactions::list(&state.app.db, &caller.workspace_id, &filter, &after, limit).await?;
    Ok(paged(page, tidepost_app::crm::interaction_json))
}

#[utoipa::path(
    get, path = "/api/v1/interactions/{id}", tag = "crm",
    params(("id" = String, Path, description = "The interaction's id")),
    responses(
        (status = 200, description = "The interaction", body = InteractionDoc),
        (status = 404, description = "No such interaction in this workspace", body = Problem),
    ),
)]
async fn show_interaction(
    caller: Caller,
    State(state): State<HttpState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, Problem> {
    caller.require_scope("api")?;
    let i = interactions::get(&state.app.db, &caller.workspace_id, &id)
        .await?
        .ok_or_else(|| Problem::not_found("interaction"))?;
    Ok(Json(tidepost_app::crm::interaction_json(&i)))
}

#[utoipa::path(
    post, path = "/api/v1/interactions/{id}/reply", tag = "crm", request_body = Reply,
    params(("id" = String, Path, description = "An Instagram comment or reply")),
    responses(
        (status = 201, description = "The reply, posted on Instagram and recorded", body = InteractionDoc),
        (status = 404, description = "No such interaction in this workspace", body = Problem),
        (status = 409, description = "Not an Instagram comment, or the account must be connected again", body = Problem),
        (status = 422, description = "The text is empty or too long", body = Problem),
        (status = 502, description = "Instagram refused the reply", body = Problem),
    ),
)]
async fn reply(
    caller: Caller,
    State(state): State<HttpState>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<Value>), Problem> {
    caller.require_scope("api")?;
    interactions::get(&state.app.db, &caller.workspace_id, &id)
        .await?
        .ok_or_else(|| Problem::not_found("interaction"))?;
    let body: Reply = body_as(&body)?;
    let i = tidepost_app::crm::reply(&state.app, &caller.workspace_id, &id, &body.text)
        .await
        .map_err(crm_problem)?;
    Ok((
        StatusCode::CREATED,
        Json(tidepost_app::crm::interaction_json(&i)),
    ))
}

// ---- metrics ----

#[utoipa::path(
    get, path = "/api/v1/targets/{id}/metrics", tag = "crm",
    params(("id" = String, Path, description = "A post target's id (one post to one account)")),
    responses(
        (status = 200, description = "The target's metrics over time", body = MetricsDoc),
        (status = 404, description = "No such target in this workspace", body = Problem),
    ),
)]
async fn target_metrics(
    caller: Caller,
    State(state): State<HttpState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, Problem> {
    caller.require_scope("api")?;
    let ws = &caller.workspace_id;
    let target = tidepost_store::posts::target(&state.app.db, ws, &id)
        .await?
        .ok_or_else(|| Problem::not_found("target"))?;
    let track = metrics::track(&state.app.db, ws, &id).await?;
    let samples = metrics::series(&state.app.db, ws, &id, 1000).await?;
    let milestones = metrics::milestones_of(&state.app.db, ws, &id).await?;
    Ok(Json(json!({
        "target_id": target.id,
        "post_id": target.post_id,
        "platform": target.platform,
        "tracking": track.as_ref().is_some_and(|t| t.next_sample_at.is_some()),
        "next_sample_at": track.as_ref().and_then(|t| t.next_sample_at).map(rfc3339),
        "last_error": track.as_ref().and_then(|t| t.last_error.clone()),
        "samples": samples.iter().map(|s| json!({
            "sampled_at": rfc3339(s.sampled_at), "views": s.views, "likes": s.likes,
            "comments": s.comments, "shares": s.shares, "saves": s.saves, "reach": s.reach,
        })).collect::<Vec<_>>(),
        "milestones": milestones.iter().map(tidepost_app::crm::sync::milestone_json).collect::<Vec<_>>(),
    })))
}
