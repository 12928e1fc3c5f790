//! Post/redirect/get (issue 18, item 3). Class: every state-changing form of the UI answers a
//! successful POST with 303 See Other, so that reloading the page it lands on repeats nothing
//! (a reload after creating an API key used to create a second key).
//!
//! [`UI_POSTS`] lists every UI route that takes a POST; `every_ui_post_route_is_listed` checks
//! the list against the routes registered in `crates/http/src`, so a new form without an entry
//! fails. `every_ui_post_answers_303_on_success` then makes each one succeed, as the workspace's
//! owner with the objects it needs, and expects 303 with a same-site `Location`.
//!
//! The forms that need a state only a provider produces are driven here from fixtures that put
//! the post or job in that state (a post waiting to be sent for cancel, a post whose publish
//! answer was lost for "mark published" and "send again", a dead job for retry); the connect
//! forms and the Facebook Page picker run against the sandbox emulator. Three remain driven
//! elsewhere, because succeeding needs real media and the creator's settings read from TikTok
//! (the composer, a reschedule) or a comment to answer on Instagram (an inbox reply): their
//! entry names the test that drives the route, checked to still mention it.

use std::collections::BTreeSet;

use reqwest::StatusCode;

use crate::support::*;
use crate::tenancy::{Object, make};

/// How a form is made to succeed.
#[derive(Debug, Clone, Copy)]
enum Scenario {
    /// Here, live: the fields to send (besides `csrf`), the object the path's ids name, and the
    /// state it is put in first.
    Live {
        fields: &'static [(&'static str, &'static str)],
        object: Option<Object>,
        prepare: Prepare,
    },
    /// Sign-in, sign-out and first-run setup: their own flows, live here too.
    Session,
    /// Here, live, through the sandbox emulator's provider flow that leads to the form.
    Emulator,
    /// Not driven here (it needs real media or a provider's content): the test file that
    /// drives the route, and the text by which it names it.
    DrivenElsewhere(&'static str, &'static str),
}

/// The state a fixture is put in before its form is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Prepare {
    AsMade,
    /// A post whose target waits to be sent (queued): it can be cancelled.
    QueuedPost,
    /// A post whose TikTok publish answer was lost (failed, outcome unknown).
    UnknownOutcome,
    /// A job that failed for good.
    DeadJob,
    /// A creator whose account was detached (a creator owning accounts is not deleted).
    CreatorWithoutAccounts,
}

use Scenario::{DrivenElsewhere, Emulator, Live, Session};

const fn live(fields: &'static [(&'static str, &'static str)], object: Option<Object>) -> Scenario {
    Live {
        fields,
        object,
        prepare: Prepare::AsMade,
    }
}

const fn prepared(
    fields: &'static [(&'static str, &'static str)],
    object: Object,
    prepare: Prepare,
) -> Scenario {
    Live {
        fields,
        object: Some(object),
        prepare,
    }
}

/// Every UI route that takes a POST, with how it is made to succeed.
const UI_POSTS: &[(&str, Scenario)] = &[
    ("/login", Session),
    ("/logout", Session),
    ("/setup", Session),
    ("/settings/api-keys", live(&[("name", "reloaded")], None)),
    ("/drafts/{id}/delete", live(&[], Some(Object::Draft))),
    (
        "/settings/api-keys/{id}/revoke",
        live(&[], Some(Object::ApiKey)),
    ),
    ("/connect/tiktok", live(&[], None)),
    ("/connect/threads", live(&[], None)),
    ("/connect/instagram", live(&[("login", "facebook")], None)),
    ("/connect/instagram/choose", Emulator),
    (
        "/connect/link/{token}",
        DrivenElsewhere("tests/it/connect_links.rs", "/connect/link/"),
    ),
    (
        "/widget/{id}/{token}/reconnect",
        DrivenElsewhere("tests/it/widget.rs", "/reconnect"),
    ),
    (
        "/settings/allowed-origins",
        live(&[("origins", "https://crm.example.com")], None),
    ),
    (
        "/posts/{id}/comments",
        live(&[("body", "Looks good to me")], Some(Object::Post)),
    ),
    (
        "/settings/time-zone",
        live(&[("time_zone", "Asia/Tokyo")], None),
    ),
    (
        "/accounts/{id}/disconnect",
        live(&[], Some(Object::Account)),
    ),
    (
        "/compose",
        DrivenElsewhere("tests/it/compose.rs", "/compose"),
    ),
    (
        "/posts/{id}/reschedule",
        DrivenElsewhere("tests/it/browser_compose.rs", "reschedule"),
    ),
    (
        "/posts/{id}/cancel",
        prepared(&[], Object::Post, Prepare::QueuedPost),
    ),
    (
        "/posts/{id}/targets/{target}/retry",
        live(&[], Some(Object::Post)),
    ),
    (
        "/posts/{id}/targets/{target}/mark-published",
        prepared(&[("video", "")], Object::Post, Prepare::UnknownOutcome),
    ),
    (
        "/posts/{id}/targets/{target}/send-again",
        prepared(&[("confirm", "on")], Object::Post, Prepare::UnknownOutcome),
    ),
    (
        "/creators",
        live(&[("name", "Made here"), ("notes", "")], None),
    ),
    (
        "/creators/{id}",
        live(
            &[("name", "Renamed"), ("notes", "n")],
            Some(Object::Creator),
        ),
    ),
    ("/creators/{id}/accounts", live(&[], Some(Object::Creator))),
    (
        "/creators/{id}/accounts/{account_id}/detach",
        live(&[], Some(Object::Creator)),
    ),
    (
        "/creators/{id}/delete",
        prepared(&[], Object::Creator, Prepare::CreatorWithoutAccounts),
    ),
    (
        "/inbox/{id}/reply",
        DrivenElsewhere("tests/it/browser_pages.rs", "/inbox/"),
    ),
    ("/jobs/{id}/cancel", live(&[], Some(Object::Job))),
    (
        "/jobs/{id}/retry",
        prepared(&[], Object::Job, Prepare::DeadJob),
    ),
    ("/media/{id}/delete", live(&[], Some(Object::Media))),
    (
        "/settings/webhooks",
        live(
            &[("url", "http://127.0.0.1:9/made-here"), ("description", "")],
            None,
        ),
    ),
    (
        "/settings/webhooks/{id}/rotate",
        live(&[], Some(Object::WebhookEndpoint)),
    ),
    (
        "/settings/webhooks/{id}/enable",
        live(&[], Some(Object::WebhookEndpoint)),
    ),
    (
        "/settings/webhooks/{id}/disable",
        live(&[], Some(Object::WebhookEndpoint)),
    ),
    (
        "/settings/webhooks/{id}/delete",
        live(&[], Some(Object::WebhookEndpoint)),
    ),
    (
        "/settings/webhooks/deliveries/{id}/resend",
        live(&[], Some(Object::WebhookDelivery)),
    ),
    (
        "/settings/members/invite",
        live(
            &[("email", "invited@example.com"), ("role", "editor")],
            None,
        ),
    ),
    (
        "/settings/members/invites/{id}/revoke",
        live(&[], Some(Object::Invite)),
    ),
    (
        "/settings/members/{id}/role",
        live(&[("role", "viewer")], Some(Object::Member)),
    ),
    (
        "/settings/members/{id}/remove",
        live(&[], Some(Object::Member)),
    ),
    (
        "/invite/{token}",
        DrivenElsewhere("tests/it/invites.rs", "/invite/"),
    ),
];

/// POST routes that are not forms a person submits: providers' webhooks, verified by their
/// signatures.
const NOT_FORMS: &[&str] = &["/webhooks/tiktok", "/webhooks/instagram"];

#[test]
fn every_ui_post_route_is_listed() {
    let registered: BTreeSet<String> = registered_routes()
        .into_iter()
        .filter(|r| r.method == "POST" && !r.template.starts_with("/api/"))
        .map(|r| r.template)
        .filter(|t| !NOT_FORMS.contains(&t.as_str()))
        .collect();
    let listed: BTreeSet<String> = UI_POSTS.iter().map(|(t, _)| t.to_string()).collect();
    assert_eq!(
        registered, listed,
        "every UI POST route needs an entry in UI_POSTS (and every entry a route)"
    );
    // The tests named for the routes not driven here still drive them.
    for (template, scenario) in UI_POSTS {
        if let DrivenElsewhere(file, needle) = scenario {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
            let source = std::fs::read_to_string(&path).unwrap();
            assert!(
                source.contains(needle),
                "{template}: {file} no longer drives it"
            );
        }
    }
}

/// Asserts a 303 to a path of this site.
fn redirected(response: &reqwest::Response, what: &str) {
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "{what}");
    let to = location(response);
    assert!(!to.is_empty(), "{what}: an empty Location");
}

both_backends!(
    every_ui_post_answers_303_on_success,
    reloading_after_creating_a_key_creates_nothing
);

/// Puts the fixture named by `ids` in the state `prepare` asks for.
async fn prepare_fixture(
    app: &TestApp,
    workspace_id: &str,
    prepare: Prepare,
    ids: &[(&'static str, String)],
) {
    let id = |name: &str| {
        ids.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    let (sql, id) = match prepare {
        Prepare::AsMade => return,
        Prepare::CreatorWithoutAccounts => {
            tidepost_store::crm::creators::detach(
                &app.db,
                workspace_id,
                &id("id"),
                &id("account_id"),
            )
            .await
            .unwrap()
            .expect("the creator's account is detached");
            return;
        }
        Prepare::QueuedPost => (
            "UPDATE post_targets SET state = 'queued', error_code = NULL, error_message = NULL, \
             finished_at = NULL WHERE id = $1",
            id("target"),
        ),
        Prepare::UnknownOutcome => (
            "UPDATE post_targets SET error_code = 'init_outcome_unknown', publish_id = 'lost' \
             WHERE id = $1",
            id("target"),
        ),
        Prepare::DeadJob => (
            "UPDATE jobs SET state = 'dead', last_error = 'a fixture' WHERE id = $1",
            id("id"),
        ),
    };
    let changed = sqlx::query(sql)
        .bind(&id)
        .execute(app.db.pool())
        .await
        .unwrap()
        .rows_affected();
    assert_eq!(changed, 1, "{prepare:?}");
}

async fn every_ui_post_answers_303_on_success(backend: Backend) {
    let app = spawn_app_with(backend, Options::emulated()).await;
    let me = app.signed_in("acme").await;
    let ws = me.workspace.id.clone();
    for (template, scenario) in UI_POSTS {
        let Live {
            fields,
            object,
            prepare,
        } = *scenario
        else {
            continue;
        };
        let mut ids: Vec<(&'static str, String)> = match object {
            Some(kind) => make(&app, kind, &ws).await,
            None => Vec::new(),
        };
        prepare_fixture(&app, &ws, prepare, &ids).await;
        let mut form: Vec<(&str, String)> =
            fields.iter().map(|(k, v)| (*k, v.to_string())).collect();
        if *template == "/creators/{id}/accounts" {
            // Attach another account of the workspace.
            let other = make(&app, Object::Account, &ws).await;
            form.push(("account_id", other[0].1.clone()));
        }
        let mut path = template.to_string();
        for (name, value) in ids.drain(..) {
            path = path.replace(&format!("{{{name}}}"), &value);
        }
        form.push(("csrf", me.csrf.clone()));
        let response = me
            .client
            .post(app.url(&path))
            .form(&form)
            .send()
            .await
            .unwrap();
        let status = response.status();
        if status != StatusCode::SEE_OTHER {
            panic!(
                "POST {template}: {status}\n{}",
                response.text().await.unwrap_or_default()
            );
        }
        redirected(&response, template);
    }

    // The Facebook Page picker, at the end of a Facebook Login on the emulator (the helper
    // checks that choosing answers 303 to the new account).
    let account = connect_instagram_via_http(&app, &me).await;
    assert!(!account.is_empty());

    // Sign-in and sign-out.
    let browser = client();
    app.create_user("ada@example.com", "acme").await;
    let response = app
        .sign_in(&browser, "ada@example.com", PASSWORD, "/")
        .await;
    redirected(&response, "/login");
    let html = app.page_text(&browser, "/").await;
    let csrf = hidden_input(&html, "csrf").unwrap();
    let response = browser
        .post(app.url("/logout"))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    redirected(&response, "/logout");

    // First-run setup, on a server with a live setup link.
    let token = tidepost_app::access::random_token();
    let fresh = spawn_app_with(
        backend,
        Options {
            setup_token: Some(token.clone()),
            ..Options::default()
        },
    )
    .await;
    let response = fresh
        .client
        .post(fresh.url("/setup"))
        .form(&[
            ("token", token.as_str()),
            ("email", "first@example.com"),
            ("password", PASSWORD),
            ("workspace", "acme"),
        ])
        .send()
        .await
        .unwrap();
    redirected(&response, "/setup");
}

/// The defect itself: creating a key, then reloading the page the browser landed on, creates
/// one key, and shows its secret once (never in the URL).
async fn reloading_after_creating_a_key_creates_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let me = app.signed_in("acme").await;
    let response = me
        .client
        .post(app.url("/settings/api-keys"))
        .form(&[("csrf", me.csrf.as_str()), ("name", "reloaded")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/settings");
    let flash = set_cookie(response.headers(), "tidepost_flash_key").expect("a flash cookie");
    assert!(
        flash.contains("HttpOnly") && flash.contains("Path=/settings"),
        "{flash}"
    );
    let page = app.page_text(&me.client, "/settings").await;
    let secret = page
        .split("id=\"new-key\">")
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .expect("the new key is shown")
        .to_string();
    assert!(secret.starts_with("tp_"), "{secret}");
    // The secret works, and it reached the page only through the sealed cookie.
    assert!(!flash.contains(&secret));
    assert_eq!(
        app.api_get(&secret, "/api/v1/me").await.status(),
        StatusCode::OK
    );
    // Reloading shows no secret and makes no key.
    for _ in 0..2 {
        let again = app.page_text(&me.client, "/settings").await;
        assert!(!again.contains(&secret), "the secret is shown once");
        assert!(!again.contains("id=\"new-key\""));
    }
    let keys = tidepost_store::api_keys::list(&app.db, &me.workspace.id)
        .await
        .unwrap();
    assert_eq!(keys.iter().filter(|k| k.name == "reloaded").count(), 1);
}
