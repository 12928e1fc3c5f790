//! Roles on every route: [`RULES`] says what each route (method and path template, as
//! registered) needs, and [`layer`] — a route layer over the whole router, so it runs once the
//! route is known — refuses a signed-in member or an API key whose role lacks it, before the
//! handler runs: a 403 problem naming the role needed (API), or a readable page (UI).
//!
//! The rule itself (which role has which permission) is `tidepost_domain::roles`; this table
//! only says which permission each route asks for. A route that is not in the table is refused
//! to everyone with a 500 naming it (closed, and loud), and `tests/it/roles.rs` fails for it.
//!
//! Who is asking: on `/api/v1`, the API key in `Authorization` if there is one, else the
//! browser's session; elsewhere the session. Requests with neither (or with a key that does not
//! authenticate) go on to the handler, which answers them as before (a redirect to sign in, a
//! 401 problem).

use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tidepost_app::access;
use tidepost_domain::{Permission, Role};

use crate::auth;
use crate::error::{PageError, Problem};
use crate::state::HttpState;

/// What a route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Anyone: sign-in, health, signed URLs, provider callbacks and webhooks, invite links.
    /// These authorize themselves (a token in the path, a signature, an OAuth state) or serve
    /// people who are not signed in.
    Public,
    /// A member (or API key) whose role has this permission.
    Needs(Permission),
}

use Permission::{
    EditCrm, EditMedia, EditPosts, ManageAccounts, ManageApiKeys, ManageJobs, ManageMembers,
    ManageWebhooks, Read,
};
use Rule::{Needs, Public};

const fn r(
    method: &'static str,
    path: &'static str,
    rule: Rule,
) -> (&'static str, &'static str, Rule) {
    (method, path, rule)
}

/// Every route and what it needs. **A new route gets a row here** (and in `tests/it/roles.rs`).
pub const RULES: &[(&str, &str, Rule)] = &[
    // Signing in, health, assets, docs.
    r("GET", "/login", Public),
    r("POST", "/login", Public),
    r("POST", "/logout", Public),
    r("GET", "/setup", Public),
    r("POST", "/setup", Public),
    r("GET", "/healthz", Public),
    r("GET", "/readyz", Public),
    r("GET", "/metrics", Public),
    r("GET", "/assets/{name}", Public),
    r("GET", "/docs/api", Public),
    r("GET", "/api/v1/openapi.json", Public),
    // Authorized by their own tokens or signatures.
    r("GET", "/media/{id}/{token}", Public),
    r("GET", "/connect/link/{token}", Public),
    r("POST", "/connect/link/{token}", Public),
    r("GET", "/widget/{id}/{token}", Public),
    r("GET", "/widget/{id}/{token}/card.json", Public),
    r("POST", "/widget/{id}/{token}/reconnect", Public),
    r("GET", "/oauth/tiktok/callback", Public),
    r("GET", "/oauth/threads/callback", Public),
    r("GET", "/oauth/instagram/callback", Public),
    r("POST", "/webhooks/tiktok", Public),
    r("GET", "/webhooks/instagram", Public),
    r("POST", "/webhooks/instagram", Public),
    r("GET", "/invite/{token}", Public),
    r("POST", "/invite/{token}", Public),
    // Reading the workspace.
    r("GET", "/", Needs(Read)),
    r("GET", "/accounts", Needs(Read)),
    r("GET", "/accounts/{id}", Needs(Read)),
    r("GET", "/posts", Needs(Read)),
    r("GET", "/posts/scheduled", Needs(Read)),
    r("GET", "/calendar", Needs(Read)),
    // The calendar's live check of a move: reads and writes nothing.
    r("GET", "/calendar/check", Needs(Read)),
    // A person's own time zone.
    r("GET", "/settings/time-zone", Needs(Read)),
    r("POST", "/settings/time-zone", Needs(Read)),
    r("GET", "/api/v1/posts/{id}/comments", Needs(Read)),
    r("GET", "/api/v1/posts/{id}/history", Needs(Read)),
    r("GET", "/posts/{id}", Needs(Read)),
    r("GET", "/drafts", Needs(Read)),
    r("GET", "/media", Needs(Read)),
    r("GET", "/creators", Needs(Read)),
    r("GET", "/creators/{id}", Needs(Read)),
    r("GET", "/contacts", Needs(Read)),
    r("GET", "/contacts/{id}", Needs(Read)),
    r("GET", "/inbox", Needs(Read)),
    r("GET", "/jobs", Needs(Read)),
    r("GET", "/api/v1/me", Needs(Read)),
    r("GET", "/api/v1/accounts", Needs(Read)),
    r("GET", "/api/v1/accounts/{id}", Needs(Read)),
    r("GET", "/api/v1/posts", Needs(Read)),
    r("GET", "/api/v1/posts/{id}", Needs(Read)),
    r("GET", "/api/v1/drafts", Needs(Read)),
    r("GET", "/api/v1/drafts/{id}", Needs(Read)),
    r("GET", "/api/v1/media", Needs(Read)),
    r("GET", "/api/v1/media/{id}", Needs(Read)),
    r("GET", "/api/v1/media/{id}/content", Needs(Read)),
    r("GET", "/api/v1/media/{id}/frame", Needs(Read)),
    r("GET", "/api/v1/uploads/{id}", Needs(Read)),
    r("GET", "/api/v1/jobs", Needs(Read)),
    r("GET", "/api/v1/jobs/counts", Needs(Read)),
    r("GET", "/api/v1/jobs/{id}", Needs(Read)),
    r("GET", "/api/v1/creators", Needs(Read)),
    r("GET", "/api/v1/creators/{id}", Needs(Read)),
    r("GET", "/api/v1/creators/{id}/timeline", Needs(Read)),
    r("GET", "/api/v1/contacts", Needs(Read)),
    r("GET", "/api/v1/contacts/{id}", Needs(Read)),
    r("GET", "/api/v1/contacts/{id}/timeline", Needs(Read)),
    r("GET", "/api/v1/interactions", Needs(Read)),
    r("GET", "/api/v1/interactions/{id}", Needs(Read)),
    r("GET", "/api/v1/targets/{id}/metrics", Needs(Read)),
    // Posts and drafts.
    r("GET", "/compose", Needs(EditPosts)),
    r("POST", "/compose", Needs(EditPosts)),
    r("GET", "/posts/new", Needs(EditPosts)),
    r("POST", "/posts/{id}/cancel", Needs(EditPosts)),
    r("POST", "/posts/{id}/reschedule", Needs(EditPosts)),
    r("POST", "/posts/{id}/comments", Needs(EditPosts)),
    r("POST", "/api/v1/posts/{id}/comments", Needs(EditPosts)),
    r(
        "POST",
        "/posts/{id}/targets/{target}/retry",
        Needs(EditPosts),
    ),
    r(
        "POST",
        "/posts/{id}/targets/{target}/mark-published",
        Needs(EditPosts),
    ),
    r(
        "POST",
        "/posts/{id}/targets/{target}/send-again",
        Needs(EditPosts),
    ),
    r("POST", "/drafts/{id}/delete", Needs(EditPosts)),
    r("POST", "/api/v1/posts", Needs(EditPosts)),
    r("POST", "/api/v1/posts/validate", Needs(EditPosts)),
    r("PATCH", "/api/v1/posts/{id}", Needs(EditPosts)),
    r("DELETE", "/api/v1/posts/{id}", Needs(EditPosts)),
    r("POST", "/api/v1/posts/{id}/cancel", Needs(EditPosts)),
    r(
        "POST",
        "/api/v1/posts/{id}/targets/{target}/retry",
        Needs(EditPosts),
    ),
    r(
        "POST",
        "/api/v1/posts/{id}/targets/{target}/mark-published",
        Needs(EditPosts),
    ),
    r(
        "POST",
        "/api/v1/posts/{id}/targets/{target}/send-again",
        Needs(EditPosts),
    ),
    r("POST", "/api/v1/drafts", Needs(EditPosts)),
    r("PUT", "/api/v1/drafts/{id}", Needs(EditPosts)),
    r("DELETE", "/api/v1/drafts/{id}", Needs(EditPosts)),
    r("POST", "/api/v1/drafts/{id}/publish", Needs(EditPosts)),
    // The media library.
    r("POST", "/media/{id}/delete", Needs(EditMedia)),
    r("POST", "/api/v1/media", Needs(EditMedia)),
    r("DELETE", "/api/v1/media/{id}", Needs(EditMedia)),
    r("POST", "/api/v1/uploads", Needs(EditMedia)),
    r("PATCH", "/api/v1/uploads/{id}", Needs(EditMedia)),
    r("DELETE", "/api/v1/uploads/{id}", Needs(EditMedia)),
    // The CRM.
    r("POST", "/creators", Needs(EditCrm)),
    r("POST", "/creators/{id}", Needs(EditCrm)),
    r("POST", "/creators/{id}/accounts", Needs(EditCrm)),
    r(
        "POST",
        "/creators/{id}/accounts/{account_id}/detach",
        Needs(EditCrm),
    ),
    r("POST", "/creators/{id}/delete", Needs(EditCrm)),
    r("POST", "/inbox/{id}/reply", Needs(EditCrm)),
    r("POST", "/api/v1/creators", Needs(EditCrm)),
    r("PATCH", "/api/v1/creators/{id}", Needs(EditCrm)),
    r("DELETE", "/api/v1/creators/{id}", Needs(EditCrm)),
    r("POST", "/api/v1/creators/{id}/accounts", Needs(EditCrm)),
    r(
        "DELETE",
        "/api/v1/creators/{id}/accounts/{account_id}",
        Needs(EditCrm),
    ),
    r("POST", "/api/v1/interactions/{id}/reply", Needs(EditCrm)),
    // Accounts: connecting, links to connect, widgets, the origins they may return to.
    r("GET", "/connect/tiktok", Needs(ManageAccounts)),
    r("POST", "/connect/tiktok", Needs(ManageAccounts)),
    r("GET", "/connect/threads", Needs(ManageAccounts)),
    r("POST", "/connect/threads", Needs(ManageAccounts)),
    r("GET", "/connect/instagram", Needs(ManageAccounts)),
    r("POST", "/connect/instagram", Needs(ManageAccounts)),
    r("POST", "/connect/instagram/choose", Needs(ManageAccounts)),
    r("POST", "/accounts/{id}/disconnect", Needs(ManageAccounts)),
    r("POST", "/settings/allowed-origins", Needs(ManageAccounts)),
    r("DELETE", "/api/v1/accounts/{id}", Needs(ManageAccounts)),
    r("POST", "/api/v1/connect/tiktok", Needs(ManageAccounts)),
    r("POST", "/api/v1/connect/instagram", Needs(ManageAccounts)),
    r("POST", "/api/v1/connect-links", Needs(ManageAccounts)),
    r("GET", "/api/v1/allowed-origins", Needs(ManageAccounts)),
    r("PUT", "/api/v1/allowed-origins", Needs(ManageAccounts)),
    r(
        "POST",
        "/api/v1/accounts/{id}/widget-links",
        Needs(ManageAccounts),
    ),
    r(
        "POST",
        "/api/v1/creators/{id}/widget-links",
        Needs(ManageAccounts),
    ),
    // Webhooks.
    r("GET", "/settings/webhooks", Needs(ManageWebhooks)),
    r("POST", "/settings/webhooks", Needs(ManageWebhooks)),
    r("GET", "/settings/webhooks/{id}", Needs(ManageWebhooks)),
    r(
        "POST",
        "/settings/webhooks/{id}/rotate",
        Needs(ManageWebhooks),
    ),
    r(
        "POST",
        "/settings/webhooks/{id}/enable",
        Needs(ManageWebhooks),
    ),
    r(
        "POST",
        "/settings/webhooks/{id}/disable",
        Needs(ManageWebhooks),
    ),
    r(
        "POST",
        "/settings/webhooks/{id}/delete",
        Needs(ManageWebhooks),
    ),
    r(
        "GET",
        "/settings/webhooks/deliveries/{id}",
        Needs(ManageWebhooks),
    ),
    r(
        "POST",
        "/settings/webhooks/deliveries/{id}/resend",
        Needs(ManageWebhooks),
    ),
    r("GET", "/api/v1/webhook-endpoints", Needs(ManageWebhooks)),
    r("POST", "/api/v1/webhook-endpoints", Needs(ManageWebhooks)),
    r(
        "GET",
        "/api/v1/webhook-endpoints/{id}",
        Needs(ManageWebhooks),
    ),
    r(
        "PATCH",
        "/api/v1/webhook-endpoints/{id}",
        Needs(ManageWebhooks),
    ),
    r(
        "DELETE",
        "/api/v1/webhook-endpoints/{id}",
        Needs(ManageWebhooks),
    ),
    r(
        "POST",
        "/api/v1/webhook-endpoints/{id}/rotate-secret",
        Needs(ManageWebhooks),
    ),
    r(
        "GET",
        "/api/v1/webhook-endpoints/{id}/deliveries",
        Needs(ManageWebhooks),
    ),
    r(
        "GET",
        "/api/v1/webhook-deliveries/{id}",
        Needs(ManageWebhooks),
    ),
    r(
        "POST",
        "/api/v1/webhook-deliveries/{id}/resend",
        Needs(ManageWebhooks),
    ),
    // Background jobs.
    r("POST", "/jobs/{id}/retry", Needs(ManageJobs)),
    r("POST", "/jobs/{id}/cancel", Needs(ManageJobs)),
    r("POST", "/api/v1/jobs/{id}/retry", Needs(ManageJobs)),
    r("POST", "/api/v1/jobs/{id}/cancel", Needs(ManageJobs)),
    r("POST", "/api/v1/jobs/run-due", Needs(ManageJobs)),
    // API keys and settings.
    r("GET", "/settings", Needs(ManageApiKeys)),
    r("POST", "/settings/api-keys", Needs(ManageApiKeys)),
    r(
        "POST",
        "/settings/api-keys/{id}/revoke",
        Needs(ManageApiKeys),
    ),
    r("GET", "/api/v1/api-keys", Needs(ManageApiKeys)),
    r("POST", "/api/v1/api-keys", Needs(ManageApiKeys)),
    r("GET", "/api/v1/api-keys/{id}", Needs(ManageApiKeys)),
    r("DELETE", "/api/v1/api-keys/{id}", Needs(ManageApiKeys)),
    // Members and invites.
    r("GET", "/settings/members", Needs(ManageMembers)),
    r("POST", "/settings/members/invite", Needs(ManageMembers)),
    r(
        "POST",
        "/settings/members/invites/{id}/revoke",
        Needs(ManageMembers),
    ),
    r("POST", "/settings/members/{id}/role", Needs(ManageMembers)),
    r(
        "POST",
        "/settings/members/{id}/remove",
        Needs(ManageMembers),
    ),
];

/// The rule of a route, by its method and registered path template.
pub fn rule_for(method: &Method, template: &str) -> Option<Rule> {
    RULES
        .iter()
        .find(|(m, t, _)| *m == method.as_str() && *t == template)
        .map(|(_, _, rule)| *rule)
}

/// The route layer: see the module's documentation.
pub async fn layer(State(state): State<HttpState>, request: Request, next: Next) -> Response {
    let Some(template) = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
    else {
        return next.run(request).await;
    };
    let api = template.starts_with("/api/");
    // OPTIONS answers what a route takes (tus discovery on `/api/v1/uploads`) and changes
    // nothing: anyone may ask.
    if request.method() == Method::OPTIONS {
        return next.run(request).await;
    }
    // HEAD is answered by the GET handler.
    let method = if request.method() == Method::HEAD {
        Method::GET
    } else {
        request.method().clone()
    };
    let permission = match rule_for(&method, &template) {
        Some(Rule::Public) => return next.run(request).await,
        Some(Rule::Needs(permission)) => permission,
        // A method the route does not take (the layer wraps the route's 405 too).
        None if RULES.iter().any(|(_, t, _)| *t == template) => {
            return if api {
                Problem::new(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "method-not-allowed",
                    "Method not allowed",
                    format!("this API route does not take {method}"),
                )
                .into_response()
            } else {
                PageError::new(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "Method not allowed",
                    format!("This page does not take {method} requests."),
                )
                .into_response()
            };
        }
        None => {
            tracing::error!(method = %request.method(), route = %template, "a route has no role rule");
            let detail = format!(
                "{} {template} has no role rule in crates/http/src/roles.rs, so nobody may use it",
                request.method()
            );
            return if api {
                Problem::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "no-role-rule",
                    "Route without a role rule",
                    detail,
                )
                .into_response()
            } else {
                PageError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Route without a role rule",
                    detail,
                )
                .into_response()
            };
        }
    };
    let (mut parts, body) = request.into_parts();
    let who = match who_asks(&state, &parts, api).await {
        Ok(who) => who,
        Err(response) => return response,
    };
    let Some(who) = who else {
        // Not signed in: the handler answers as it always did.
        return next.run(Request::from_parts(parts, body)).await;
    };
    if who.role.allows(permission) {
        if let Some(viewer) = who.viewer {
            // The handler's `Viewer` is this one: no second look-up.
            parts.extensions.insert(viewer);
        }
        return next.run(Request::from_parts(parts, body)).await;
    }
    refusal(permission, who.role, who.kind, api)
}

/// Who a request comes from, as far as roles go.
struct Asker {
    role: Role,
    kind: AskerKind,
    viewer: Option<auth::Viewer>,
}

#[derive(Debug, Clone, Copy)]
enum AskerKind {
    Member,
    ApiKey,
}

async fn who_asks(
    state: &HttpState,
    parts: &axum::http::request::Parts,
    api: bool,
) -> Result<Option<Asker>, Response> {
    if api && let Some(value) = parts.headers.get(axum::http::header::AUTHORIZATION) {
        let Some(secret) = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
        else {
            return Ok(None);
        };
        return match access::authenticate_api_key(&state.app.db, secret).await {
            Ok(Ok((_, role))) => Ok(Some(Asker {
                role,
                kind: AskerKind::ApiKey,
                viewer: None,
            })),
            Ok(Err(_)) => Ok(None),
            Err(e) => Err(Problem::from(e).into_response()),
        };
    }
    match auth::session_of(parts, state).await {
        Ok(Some(viewer)) => Ok(Some(Asker {
            role: viewer.role,
            kind: AskerKind::Member,
            viewer: Some(viewer),
        })),
        Ok(None) => Ok(None),
        Err(e) if api => Err(Problem::from(e).into_response()),
        Err(e) => Err(PageError::from(e).into_response()),
    }
}

/// The 403 that names the role needed.
fn refusal(permission: Permission, role: Role, kind: AskerKind, api: bool) -> Response {
    let needed = permission.least_role();
    let (whose, yours) = match kind {
        AskerKind::Member => ("your role in this workspace", "you are"),
        AskerKind::ApiKey => ("this API key's role", "this API key acts as"),
    };
    let detail = format!(
        "to {} you need the {needed} role or higher; {yours} {} ({whose})",
        permission.describe(),
        role.with_article(),
    );
    if api {
        Problem::new(
            StatusCode::FORBIDDEN,
            "role-required",
            "Role required",
            detail,
        )
        .with("required_role", needed.as_str())
        .with("role", role.as_str())
        .into_response()
    } else {
        PageError::new(
            StatusCode::FORBIDDEN,
            format!("You need the {needed} role"),
            format!(
                "To {} you need the {needed} role or higher in this workspace; you are {}. Ask an owner or admin of the workspace if you need it.",
                permission.describe(),
                role.with_article(),
            ),
        )
        .into_response()
    }
}
