//! Signing in and out through the real forms: sessions, the sign-in limit, CSRF on every form,
//! and `next` redirects that never leave the site.

use reqwest::StatusCode;
use reqwest::header::COOKIE;
use tidepost_app::access;
use tidepost_store::sessions;

use crate::support::*;

both_backends!(
    sign_in_lands_on_the_dashboard,
    wrong_password_shows_the_form_again,
    sign_in_limit_answers_429,
    expired_or_unknown_session_redirects_to_login,
    login_refuses_missing_or_forged_csrf,
    state_changing_forms_refuse_missing_or_forged_csrf,
    sign_out_ends_the_session,
    next_never_leaves_the_site,
    next_is_followed_after_sign_in,
);

async fn sign_in_lands_on_the_dashboard(backend: Backend) {
    let app = spawn_app(backend).await;
    let me = app.signed_in("acme").await;
    let html = app.page_text(&me.client, "/").await;
    assert!(html.contains("<h1>Dashboard</h1>"), "{html}");
    assert!(html.contains("Nothing connected yet"));
    assert!(html.contains("acme"), "the workspace is shown");
    // Emails are case-insensitive.
    let other = client();
    let response = app
        .sign_in(&other, "OWNER@Acme.example", PASSWORD, "/")
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
}

async fn wrong_password_shows_the_form_again(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user("ada@example.com", "acme").await;
    let response = app
        .sign_in(&app.client, "ada@example.com", "not the password", "/")
        .await;
    assert!(set_cookie(response.headers(), "tidepost_session").is_none());
    let html = page_error(
        response,
        StatusCode::UNAUTHORIZED,
        "Wrong email or password",
    )
    .await;
    assert!(html.contains("value=\"ada@example.com\""), "email kept");
    assert!(hidden_input(&html, "csrf").is_some(), "a fresh form");
    // An unknown email gets the very same answer.
    let response = app
        .sign_in(&app.client, "nobody@example.com", "whatever it is", "/")
        .await;
    page_error(
        response,
        StatusCode::UNAUTHORIZED,
        "Wrong email or password",
    )
    .await;
    // And the dashboard stays closed.
    let response = app.client.get(app.url("/")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
}

async fn sign_in_limit_answers_429(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user("ada@example.com", "acme").await;
    for attempt in 1..=access::PAIR_FREE_ATTEMPTS {
        let response = app
            .sign_in(&app.client, "ada@example.com", "guess number x", "/")
            .await;
        assert_eq!(
            response.status(),
            StatusCode::UNAUTHORIZED,
            "attempt {attempt}"
        );
    }
    // Now even the right password waits, from this address, and the page says how long (as
    // does Retry-After).
    let response = app
        .sign_in(&app.client, "ada@example.com", PASSWORD, "/")
        .await;
    assert!(set_cookie(response.headers(), "tidepost_session").is_none());
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=30).contains(&retry_after), "{retry_after}");
    page_error(
        response,
        StatusCode::TOO_MANY_REQUESTS,
        "Too many sign-in attempts for this account from here; try again in",
    )
    .await;
}

async fn expired_or_unknown_session_redirects_to_login(backend: Backend) {
    let app = spawn_app(backend).await;
    let (user, workspace) = app.create_user("ada@example.com", "acme").await;
    let expired = access::random_token();
    let now = tidepost_domain::now_ms();
    sessions::create(
        &app.db,
        &sessions::Session {
            token_hash: access::sha256_hex(&expired),
            workspace_id: workspace.id.clone(),
            user_id: user.id.clone(),
            csrf_token: access::random_token(),
            created_at: now - 7_200_000,
            expires_at: now - 1_000,
        },
    )
    .await
    .unwrap();
    for token in [expired.as_str(), "not-a-session-token"] {
        let response = bare_client()
            .get(app.url("/settings?tab=keys"))
            .header(COOKIE, format!("tidepost_session={token}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        assert_eq!(location(&response), "/login?next=%2Fsettings%3Ftab%3Dkeys");
    }
    // No cookie at all: the same.
    let response = bare_client().get(app.url("/")).send().await.unwrap();
    assert_eq!(location(&response), "/login?next=%2F");
    // A form posted with a dead session goes to the sign-in page without `next`.
    let response = bare_client()
        .post(app.url("/settings/api-keys"))
        .header(COOKIE, format!("tidepost_session={expired}"))
        .form(&[("csrf", "x"), ("name", "n")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/login");
}

async fn login_refuses_missing_or_forged_csrf(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user("ada@example.com", "acme").await;
    let csrf = app.login_csrf(&app.client).await;
    let forged = access::random_token();
    for sent in [None, Some(""), Some(forged.as_str())] {
        let mut form = vec![
            ("email", "ada@example.com"),
            ("password", PASSWORD),
            ("next", "/"),
        ];
        if let Some(token) = sent {
            form.push(("csrf", token));
        }
        let response = app
            .client
            .post(app.url("/login"))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert!(set_cookie(response.headers(), "tidepost_session").is_none());
        page_error(response, StatusCode::FORBIDDEN, "This form has expired").await;
    }
    // The right token without its cookie (another browser) is refused too.
    let response = bare_client()
        .post(app.url("/login"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("email", "ada@example.com"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    page_error(response, StatusCode::FORBIDDEN, "This form has expired").await;
}

async fn state_changing_forms_refuse_missing_or_forged_csrf(backend: Backend) {
    let app = spawn_app(backend).await;
    let me = app.signed_in("acme").await;
    let key = app.api_key(&me.workspace.id, "existing", &[]).await;
    let key_id = app.key_id(&key).await;
    // Another session's token is as good as a forged one.
    let other = app.signed_in("other").await;
    let revoke = format!("/settings/api-keys/{key_id}/revoke");
    let forms: [(&str, Vec<(&str, &str)>); 3] = [
        ("/logout", vec![]),
        ("/settings/api-keys", vec![("name", "sneaky")]),
        (revoke.as_str(), vec![]),
    ];
    for (path, fields) in &forms {
        for token in [None, Some(""), Some(other.csrf.as_str())] {
            let mut form = fields.clone();
            if let Some(token) = token {
                form.push(("csrf", token));
            }
            let response = me
                .client
                .post(app.url(path))
                .form(&form)
                .send()
                .await
                .unwrap();
            page_error(response, StatusCode::FORBIDDEN, "This form has expired").await;
        }
    }
    // Nothing happened: still signed in, no key created, the key still works.
    let settings = me.client.get(app.url("/settings")).send().await.unwrap();
    assert_eq!(settings.status(), StatusCode::OK);
    let html = settings.text().await.unwrap();
    assert!(!html.contains("sneaky"));
    assert_eq!(
        app.api_get(&key, "/api/v1/me").await.status(),
        StatusCode::OK
    );
    // With the right token each form works.
    let response = me
        .client
        .post(app.url(&revoke))
        .form(&[("csrf", me.csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/settings");
    assert_eq!(
        app.api_get(&key, "/api/v1/me").await.status(),
        StatusCode::UNAUTHORIZED
    );
}

async fn sign_out_ends_the_session(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user("ada@example.com", "acme").await;
    let response = app
        .sign_in(&app.client, "ada@example.com", PASSWORD, "/")
        .await;
    let set = set_cookie(response.headers(), "tidepost_session").expect("a session cookie");
    let token = cookie_value(&set);
    let html = app.page_text(&app.client, "/").await;
    let csrf = hidden_input(&html, "csrf").unwrap();
    let response = app
        .client
        .post(app.url("/logout"))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/login?signed_out=1");
    let removal = set_cookie(response.headers(), "tidepost_session").expect("cookie removed");
    assert!(removal.contains("Max-Age=0"), "{removal}");
    let page = app.page_text(&app.client, "/login?signed_out=1").await;
    assert!(page.contains("You are signed out."));
    // The old cookie value is dead on the server, not only forgotten by the browser.
    let response = bare_client()
        .get(app.url("/"))
        .header(COOKIE, format!("tidepost_session={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(location(&response).starts_with("/login"));
    let response = bare_client()
        .get(app.url("/api/v1/me"))
        .header(COOKIE, format!("tidepost_session={token}"))
        .send()
        .await
        .unwrap();
    problem(response, StatusCode::UNAUTHORIZED, "unauthorized").await;
}

async fn next_never_leaves_the_site(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user("ada@example.com", "acme").await;
    for next in [
        "//evil.example",
        "//evil.example/path",
        "/\\evil.example",
        "https://evil.example",
        "http:evil.example",
        "evil.example",
        "/login",
        "/logout",
        "/x\r\nLocation: https://evil.example",
    ] {
        // The form itself does not carry the bad value…
        let page = app
            .client
            .get(app.url("/login"))
            .query(&[("next", next)])
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(hidden_input(&page, "next").as_deref(), Some("/"), "{next}");
        // …and a forged post lands on the dashboard.
        let client = client();
        let response = app
            .sign_in(&client, "ada@example.com", PASSWORD, next)
            .await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{next}");
        assert_eq!(location(&response), "/", "{next}");
    }
}

async fn next_is_followed_after_sign_in(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user("ada@example.com", "acme").await;
    let response = app.client.get(app.url("/settings")).send().await.unwrap();
    assert_eq!(location(&response), "/login?next=%2Fsettings");
    let page = app.page_text(&app.client, "/login?next=%2Fsettings").await;
    let next = hidden_input(&page, "next").unwrap();
    assert_eq!(next, "/settings");
    let response = app
        .sign_in(&app.client, "ada@example.com", PASSWORD, &next)
        .await;
    assert_eq!(location(&response), "/settings");
    let response = app.client.get(app.url("/settings")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}
