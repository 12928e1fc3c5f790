//! Roles: every route against every role.
//!
//! [`ROUTES`] says, for every route the server registers, who may use it: anyone (`Public`) or
//! members (and API keys) of at least a role (`Least`). `every_route_has_a_role_rule` fails for
//! a registered route that has no row here or no rule in the server's table
//! (`crates/http/src/roles.rs`), and for a row whose role differs from the server's. Then, on
//! both backends, each role calls each route that is not public — a signed-in browser for the
//! UI, an API key with that role for `/api/v1` — and a role below the row's gets a 403 that
//! names the role needed (problem `role-required` with `required_role`, or the page "You need
//! the … role"), while a role at or above it gets anything but that refusal.
//!
//! **When you add a route, add a row here** and its rule in `crates/http/src/roles.rs`.

use reqwest::{Method, StatusCode};
use serde_json::Value;
use tidepost_domain::{Permission, Role};
use tidepost_http::roles::{RULES, Rule};

use crate::support::*;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    Public,
    Least(Role),
}

use Expect::{Least, Public};

/// Every route and who may use it.
const ROUTES: &[(&str, &str, Expect)] = &[
    ("GET", "/login", Public),
    ("POST", "/login", Public),
    ("POST", "/logout", Public),
    ("GET", "/setup", Public),
    ("POST", "/setup", Public),
    ("GET", "/healthz", Public),
    ("GET", "/readyz", Public),
    ("GET", "/metrics", Public),
    ("GET", "/assets/{name}", Public),
    ("GET", "/docs/api", Public),
    ("GET", "/api/v1/openapi.json", Public),
    ("GET", "/media/{id}/{token}", Public),
    ("GET", "/connect/link/{token}", Public),
    ("POST", "/connect/link/{token}", Public),
    ("GET", "/widget/{id}/{token}", Public),
    ("GET", "/widget/{id}/{token}/card.json", Public),
    ("POST", "/widget/{id}/{token}/reconnect", Public),
    ("GET", "/oauth/tiktok/callback", Public),
    ("GET", "/oauth/threads/callback", Public),
    ("GET", "/oauth/instagram/callback", Public),
    ("POST", "/webhooks/tiktok", Public),
    ("GET", "/webhooks/instagram", Public),
    ("POST", "/webhooks/instagram", Public),
    ("GET", "/invite/{token}", Public),
    ("POST", "/invite/{token}", Public),
    ("GET", "/", Least(Role::Viewer)),
    ("GET", "/accounts", Least(Role::Viewer)),
    ("GET", "/accounts/{id}", Least(Role::Viewer)),
    ("GET", "/posts", Least(Role::Viewer)),
    ("GET", "/posts/scheduled", Least(Role::Viewer)),
    ("GET", "/calendar", Least(Role::Viewer)),
    ("GET", "/calendar/check", Least(Role::Viewer)),
    ("GET", "/settings/time-zone", Least(Role::Viewer)),
    ("POST", "/settings/time-zone", Least(Role::Viewer)),
    ("GET", "/api/v1/posts/{id}/comments", Least(Role::Viewer)),
    ("GET", "/api/v1/posts/{id}/history", Least(Role::Viewer)),
    ("GET", "/posts/{id}", Least(Role::Viewer)),
    ("GET", "/drafts", Least(Role::Viewer)),
    ("GET", "/media", Least(Role::Viewer)),
    ("GET", "/creators", Least(Role::Viewer)),
    ("GET", "/creators/{id}", Least(Role::Viewer)),
    ("GET", "/contacts", Least(Role::Viewer)),
    ("GET", "/contacts/{id}", Least(Role::Viewer)),
    ("GET", "/inbox", Least(Role::Viewer)),
    ("GET", "/jobs", Least(Role::Viewer)),
    ("GET", "/api/v1/me", Least(Role::Viewer)),
    ("GET", "/api/v1/accounts", Least(Role::Viewer)),
    ("GET", "/api/v1/accounts/{id}", Least(Role::Viewer)),
    ("GET", "/api/v1/posts", Least(Role::Viewer)),
    ("GET", "/api/v1/posts/{id}", Least(Role::Viewer)),
    ("GET", "/api/v1/drafts", Least(Role::Viewer)),
    ("GET", "/api/v1/drafts/{id}", Least(Role::Viewer)),
    ("GET", "/api/v1/media", Least(Role::Viewer)),
    ("GET", "/api/v1/media/{id}", Least(Role::Viewer)),
    ("GET", "/api/v1/media/{id}/content", Least(Role::Viewer)),
    ("GET", "/api/v1/media/{id}/frame", Least(Role::Viewer)),
    ("GET", "/api/v1/uploads/{id}", Least(Role::Viewer)),
    ("GET", "/api/v1/jobs", Least(Role::Viewer)),
    ("GET", "/api/v1/jobs/counts", Least(Role::Viewer)),
    ("GET", "/api/v1/jobs/{id}", Least(Role::Viewer)),
    ("GET", "/api/v1/creators", Least(Role::Viewer)),
    ("GET", "/api/v1/creators/{id}", Least(Role::Viewer)),
    ("GET", "/api/v1/creators/{id}/timeline", Least(Role::Viewer)),
    ("GET", "/api/v1/contacts", Least(Role::Viewer)),
    ("GET", "/api/v1/contacts/{id}", Least(Role::Viewer)),
    ("GET", "/api/v1/contacts/{id}/timeline", Least(Role::Viewer)),
    ("GET", "/api/v1/interactions", Least(Role::Viewer)),
    ("GET", "/api/v1/interactions/{id}", Least(Role::Viewer)),
    ("GET", "/api/v1/targets/{id}/metrics", Least(Role::Viewer)),
    ("GET", "/compose", Least(Role::Editor)),
    ("POST", "/compose", Least(Role::Editor)),
    ("GET", "/posts/new", Least(Role::Editor)),
    ("POST", "/posts/{id}/cancel", Least(Role::Editor)),
    ("POST", "/posts/{id}/reschedule", Least(Role::Editor)),
    ("POST", "/posts/{id}/comments", Least(Role::Editor)),
    ("POST", "/api/v1/posts/{id}/comments", Least(Role::Editor)),
    (
        "POST",
        "/posts/{id}/targets/{target}/retry",
        Least(Role::Editor),
    ),
    (
        "POST",
        "/posts/{id}/targets/{target}/mark-published",
        Least(Role::Editor),
    ),
    (
        "POST",
        "/posts/{id}/targets/{target}/send-again",
        Least(Role::Editor),
    ),
    ("POST", "/drafts/{id}/delete", Least(Role::Editor)),
    ("POST", "/api/v1/posts", Least(Role::Editor)),
    ("POST", "/api/v1/posts/validate", Least(Role::Editor)),
    ("PATCH", "/api/v1/posts/{id}", Least(Role::Editor)),
    ("DELETE", "/api/v1/posts/{id}", Least(Role::Editor)),
    ("POST", "/api/v1/posts/{id}/cancel", Least(Role::Editor)),
    (
        "POST",
        "/api/v1/posts/{id}/targets/{target}/retry",
        Least(Role::Editor),
    ),
    (
        "POST",
        "/api/v1/posts/{id}/targets/{target}/mark-published",
        Least(Role::Editor),
    ),
    (
        "POST",
        "/api/v1/posts/{id}/targets/{target}/send-again",
        Least(Role::Editor),
    ),
    ("POST", "/api/v1/drafts", Least(Role::Editor)),
    ("PUT", "/api/v1/drafts/{id}", Least(Role::Editor)),
    ("DELETE", "/api/v1/drafts/{id}", Least(Role::Editor)),
    ("POST", "/api/v1/drafts/{id}/publish", Least(Role::Editor)),
    ("POST", "/media/{id}/delete", Least(Role::Editor)),
    ("POST", "/api/v1/media", Least(Role::Editor)),
    ("DELETE", "/api/v1/media/{id}", Least(Role::Editor)),
    ("POST", "/api/v1/uploads", Least(Role::Editor)),
    ("PATCH", "/api/v1/uploads/{id}", Least(Role::Editor)),
    ("DELETE", "/api/v1/uploads/{id}", Least(Role::Editor)),
    ("POST", "/creators", Least(Role::Editor)),
    ("POST", "/creators/{id}", Least(Role::Editor)),
    ("POST", "/creators/{id}/accounts", Least(Role::Editor)),
    (
        "POST",
        "/creators/{id}/accounts/{account_id}/detach",
        Least(Role::Editor),
    ),
    ("POST", "/creators/{id}/delete", Least(Role::Editor)),
    ("POST", "/inbox/{id}/reply", Least(Role::Editor)),
    ("POST", "/api/v1/creators", Least(Role::Editor)),
    ("PATCH", "/api/v1/creators/{id}", Least(Role::Editor)),
    ("DELETE", "/api/v1/creators/{id}", Least(Role::Editor)),
    (
        "POST",
        "/api/v1/creators/{id}/accounts",
        Least(Role::Editor),
    ),
    (
        "DELETE",
        "/api/v1/creators/{id}/accounts/{account_id}",
        Least(Role::Editor),
    ),
    (
        "POST",
        "/api/v1/interactions/{id}/reply",
        Least(Role::Editor),
    ),
    ("GET", "/connect/tiktok", Least(Role::Admin)),
    ("POST", "/connect/tiktok", Least(Role::Admin)),
    ("GET", "/connect/threads", Least(Role::Admin)),
    ("POST", "/connect/threads", Least(Role::Admin)),
    ("GET", "/connect/instagram", Least(Role::Admin)),
    ("POST", "/connect/instagram", Least(Role::Admin)),
    ("POST", "/connect/instagram/choose", Least(Role::Admin)),
    ("POST", "/accounts/{id}/disconnect", Least(Role::Admin)),
    ("POST", "/settings/allowed-origins", Least(Role::Admin)),
    ("DELETE", "/api/v1/accounts/{id}", Least(Role::Admin)),
    ("POST", "/api/v1/connect/tiktok", Least(Role::Admin)),
    ("POST", "/api/v1/connect/instagram", Least(Role::Admin)),
    ("POST", "/api/v1/connect-links", Least(Role::Admin)),
    ("GET", "/api/v1/allowed-origins", Least(Role::Admin)),
    ("PUT", "/api/v1/allowed-origins", Least(Role::Admin)),
    (
        "POST",
        "/api/v1/accounts/{id}/widget-links",
        Least(Role::Admin),
    ),
    (
        "POST",
        "/api/v1/creators/{id}/widget-links",
        Least(Role::Admin),
    ),
    ("GET", "/settings/webhooks", Least(Role::Admin)),
    ("POST", "/settings/webhooks", Least(Role::Admin)),
    ("GET", "/settings/webhooks/{id}", Least(Role::Admin)),
    ("POST", "/settings/webhooks/{id}/rotate", Least(Role::Admin)),
    ("POST", "/settings/webhooks/{id}/enable", Least(Role::Admin)),
    (
        "POST",
        "/settings/webhooks/{id}/disable",
        Least(Role::Admin),
    ),
    ("POST", "/settings/webhooks/{id}/delete", Least(Role::Admin)),
    (
        "GET",
        "/settings/webhooks/deliveries/{id}",
        Least(Role::Admin),
    ),
    (
        "POST",
        "/settings/webhooks/deliveries/{id}/resend",
        Least(Role::Admin),
    ),
    ("GET", "/api/v1/webhook-endpoints", Least(Role::Admin)),
    ("POST", "/api/v1/webhook-endpoints", Least(Role::Admin)),
    ("GET", "/api/v1/webhook-endpoints/{id}", Least(Role::Admin)),
    (
        "PATCH",
        "/api/v1/webhook-endpoints/{id}",
        Least(Role::Admin),
    ),
    (
        "DELETE",
        "/api/v1/webhook-endpoints/{id}",
        Least(Role::Admin),
    ),
    (
        "POST",
        "/api/v1/webhook-endpoints/{id}/rotate-secret",
        Least(Role::Admin),
    ),
    (
        "GET",
        "/api/v1/webhook-endpoints/{id}/deliveries",
        Least(Role::Admin),
    ),
    ("GET", "/api/v1/webhook-deliveries/{id}", Least(Role::Admin)),
    (
        "POST",
        "/api/v1/webhook-deliveries/{id}/resend",
        Least(Role::Admin),
    ),
    ("POST", "/jobs/{id}/retry", Least(Role::Admin)),
    ("POST", "/jobs/{id}/cancel", Least(Role::Admin)),
    ("POST", "/api/v1/jobs/{id}/retry", Least(Role::Admin)),
    ("POST", "/api/v1/jobs/{id}/cancel", Least(Role::Admin)),
    ("POST", "/api/v1/jobs/run-due", Least(Role::Admin)),
    ("GET", "/settings", Least(Role::Admin)),
    ("POST", "/settings/api-keys", Least(Role::Admin)),
    ("POST", "/settings/api-keys/{id}/revoke", Least(Role::Admin)),
    ("GET", "/api/v1/api-keys", Least(Role::Admin)),
    ("POST", "/api/v1/api-keys", Least(Role::Admin)),
    ("GET", "/api/v1/api-keys/{id}", Least(Role::Admin)),
    ("DELETE", "/api/v1/api-keys/{id}", Least(Role::Admin)),
    ("GET", "/settings/members", Least(Role::Admin)),
    ("POST", "/settings/members/invite", Least(Role::Admin)),
    (
        "POST",
        "/settings/members/invites/{id}/revoke",
        Least(Role::Admin),
    ),
    ("POST", "/settings/members/{id}/role", Least(Role::Admin)),
    ("POST", "/settings/members/{id}/remove", Least(Role::Admin)),
];

fn expected(method: &str, template: &str) -> Option<Expect> {
    ROUTES
        .iter()
        .find(|(m, t, _)| *m == method && *t == template)
        .map(|(_, _, e)| *e)
}

#[test]
fn every_route_has_a_role_rule() {
    let registered = registered_routes();
    let mut missing = Vec::new();
    for route in &registered {
        let method = Method::from_bytes(route.method.as_bytes()).unwrap();
        let server = tidepost_http::roles::rule_for(&method, &route.template);
        let test = expected(&route.method, &route.template);
        match (server, test) {
            (None, _) => missing.push(format!(
                "{} {} has no rule in crates/http/src/roles.rs RULES",
                route.method, route.template
            )),
            (Some(_), None) => missing.push(format!(
                "{} {} has no row in tests/it/roles.rs ROUTES",
                route.method, route.template
            )),
            (Some(Rule::Public), Some(Public)) => {}
            (Some(Rule::Needs(p)), Some(Least(role))) if p.least_role() == role => {}
            (Some(rule), Some(expect)) => missing.push(format!(
                "{} {}: the server says {rule:?}, this test expects {expect:?}",
                route.method, route.template
            )),
        }
    }
    assert!(missing.is_empty(), "{missing:#?}");
    for (method, template, _) in ROUTES {
        assert!(
            registered
                .iter()
                .any(|r| r.method == *method && r.template == *template),
            "ROUTES row {method} {template} is not a registered route"
        );
    }
    for (method, template, _) in RULES {
        assert!(
            registered
                .iter()
                .any(|r| r.method == *method && r.template == *template),
            "the server's rule {method} {template} names no registered route"
        );
    }
}

#[test]
fn every_permission_is_asked_for_by_some_route() {
    for p in Permission::ALL {
        assert!(
            RULES.iter().any(|(_, _, rule)| *rule == Rule::Needs(p)),
            "no route needs {p:?}"
        );
    }
}

/// An id no workspace has: an allowed call finds nothing (404) and changes nothing.
const NOBODY: &str = "00000000-0000-7000-8000-000000000000";

/// Whether a response is the role layer's refusal naming `needed`.
async fn refusal(response: reqwest::Response, api: bool, needed: Role) -> Result<(), String> {
    let status = response.status();
    let body = response.text().await.unwrap();
    if status != StatusCode::FORBIDDEN {
        return Err(format!("{status}: {body}"));
    }
    if api {
        let problem: Value = serde_json::from_str(&body).map_err(|_| body.clone())?;
        if problem["type"] != "urn:tidepost:problem:role-required"
            || problem["required_role"] != needed.as_str()
            || !problem["detail"]
                .as_str()
                .unwrap_or_default()
                .contains(&format!("the {needed} role"))
        {
            return Err(body);
        }
    } else if !body.contains(&format!("You need the {needed} role")) {
        return Err(body);
    }
    Ok(())
}

both_backends!(every_role_against_every_route);

async fn every_role_against_every_route(backend: Backend) {
    let app = spawn_app(backend).await;
    let owner = app.signed_in("roles").await;
    let ws = owner.workspace.clone();
    let mut browsers = Vec::new();
    let mut keys = Vec::new();
    for role in Role::ALL {
        let browser = match role {
            Role::Owner => None,
            Role::Viewer | Role::Editor | Role::Admin => Some(
                app.member(&ws, &format!("{role}@roles.example"), role)
                    .await,
            ),
        };
        browsers.push((role, browser));
        keys.push((role, app.role_key(&ws.id, role).await));
    }
    let mut wrong = Vec::new();
    for (method, template, expect) in ROUTES {
        let Least(least) = *expect else { continue };
        let path = template
            .replace("{id}", NOBODY)
            .replace("{target}", NOBODY)
            .replace("{account_id}", NOBODY);
        let api = template.starts_with("/api/");
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        for role in Role::ALL {
            let response = if api {
                let key = &keys.iter().find(|(r, _)| *r == role).unwrap().1;
                bare_client()
                    .request(method.clone(), app.url(&path))
                    .bearer_auth(key)
                    .send()
                    .await
                    .unwrap()
            } else {
                let browser = browsers
                    .iter()
                    .find(|(r, _)| *r == role)
                    .and_then(|(_, b)| b.as_ref())
                    .unwrap_or(&owner);
                let request = browser.client.request(method.clone(), app.url(&path));
                let request = if method == Method::GET {
                    request
                } else {
                    request.form(&[("csrf", browser.csrf.as_str())])
                };
                request.send().await.unwrap()
            };
            let what = format!("{method} {template} as {role}");
            if role < least {
                if let Err(got) = refusal(response, api, least).await {
                    wrong.push(format!(
                        "{what}: expected the refusal naming {least}, got {got}"
                    ));
                }
            } else {
                let status = response.status();
                let body = response.text().await.unwrap();
                if body.contains("role-required") || body.contains("You need the ") {
                    wrong.push(format!("{what}: refused ({status}) though {role} may"));
                }
                if body.contains("has no role rule") {
                    wrong.push(format!("{what}: {status} {body}"));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");

    // A browser's session on the API gets its member's role too.
    let viewer = browsers[0].1.as_ref().unwrap();
    let response = viewer
        .client
        .post(app.url("/api/v1/posts"))
        .header("x-csrf-token", &viewer.csrf)
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    let problem = problem(response, StatusCode::FORBIDDEN, "role-required").await;
    assert_eq!(problem["required_role"], "editor");
    assert_eq!(problem["role"], "viewer");
    assert!(
        problem["detail"].as_str().unwrap().contains(
            "to create and edit posts you need the editor role or higher; you are a viewer"
        ),
        "{problem}"
    );
}

both_backends!(a_key_never_does_more_than_its_creator);

async fn a_key_never_does_more_than_its_creator(backend: Backend) {
    let app = spawn_app(backend).await;
    let owner = app.signed_in("keys").await;
    let ws = owner.workspace.clone();
    let editor = app.member(&ws, "editor@keys.example", Role::Editor).await;
    // An editor cannot make an admin key…
    let response = editor
        .client
        .post(app.url("/settings/api-keys"))
        .form(&[("csrf", editor.csrf.as_str()), ("name", "mine")])
        .send()
        .await
        .unwrap();
    page_error(response, StatusCode::FORBIDDEN, "You need the admin role").await;
    // …an admin's key made through the API asks for owner: refused, naming both roles.
    let admin = app.member(&ws, "admin@keys.example", Role::Admin).await;
    let response = admin
        .client
        .post(app.url("/api/v1/api-keys"))
        .header("x-csrf-token", &admin.csrf)
        .json(&serde_json::json!({"name": "too much", "role": "owner"}))
        .send()
        .await
        .unwrap();
    let p = problem(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid-request",
    )
    .await;
    assert!(
        p["detail"]
            .as_str()
            .unwrap()
            .contains("you are an admin, and asked for an owner"),
        "{p}"
    );
    // The admin's own key acts as admin while the admin is one…
    let response = admin
        .client
        .post(app.url("/api/v1/api-keys"))
        .header("x-csrf-token", &admin.csrf)
        .json(&serde_json::json!({"name": "admin's"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let created: Value = response.json().await.unwrap();
    assert_eq!(created["role"], "admin");
    let secret = created["secret"].as_str().unwrap().to_string();
    let me: Value = app
        .api_get(&secret, "/api/v1/me")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["credential"]["role"], "admin");
    assert_eq!(
        app.api_get(&secret, "/api/v1/api-keys").await.status(),
        StatusCode::OK
    );
    // …and as viewer once the admin is made a viewer.
    let admin_user = tidepost_store::users::by_email(&app.db, "admin@keys.example")
        .await
        .unwrap()
        .unwrap();
    tidepost_store::users::set_role(&app.db, &ws.id, &admin_user.id, Role::Viewer)
        .await
        .unwrap();
    let me: Value = app
        .api_get(&secret, "/api/v1/me")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["credential"]["role"], "viewer");
    let p = problem(
        app.api_get(&secret, "/api/v1/api-keys").await,
        StatusCode::FORBIDDEN,
        "role-required",
    )
    .await;
    assert_eq!(p["required_role"], "admin");
    assert!(
        p["detail"]
            .as_str()
            .unwrap()
            .contains("this API key acts as a viewer"),
        "{p}"
    );
    // Removing the member revokes the keys they made.
    tidepost_app::members::remove(
        &app.db,
        &ws.id,
        tidepost_app::members::Actor::Operator,
        &admin_user.id,
    )
    .await
    .unwrap();
    let p = problem(
        app.api_get(&secret, "/api/v1/me").await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
    assert!(p["detail"].as_str().unwrap().contains("revoked"), "{p}");
    // And their browser session ends with the membership.
    let response = admin.client.get(app.url("/")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(location(&response).starts_with("/login"));
}
