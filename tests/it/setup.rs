//! The first-run setup link: it creates the first account once, then it is dead.

use reqwest::StatusCode;

use crate::support::*;

both_backends!(
    setup_link_works_once,
    setup_form_shows_what_is_wrong,
    setup_link_dies_once_any_user_exists,
    parallel_setup_posts_create_one_user,
);

fn with_token(token: &str) -> Options {
    Options {
        setup_token: Some(token.to_string()),
        ..Options::default()
    }
}

async fn setup_link_works_once(backend: Backend) {
    let token = tidepost_app::access::random_token();
    let app = spawn_app_with(backend, with_token(&token)).await;
    // The sign-in page points at the link while it is live.
    let login = app.client.get(app.url("/login")).send().await.unwrap();
    assert!(login.text().await.unwrap().contains("one-time setup link"));
    // A wrong token is refused.
    let response = app
        .client
        .get(app.url("/setup?token=wrong"))
        .send()
        .await
        .unwrap();
    page_error(
        response,
        StatusCode::NOT_FOUND,
        "This setup link is no longer valid",
    )
    .await;
    let response = app
        .client
        .get(app.url("/setup"))
        .query(&[("token", &token)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let html = response.text().await.unwrap();
    assert!(html.contains("Welcome to tidepost"));
    assert_eq!(
        hidden_input(&html, "token").as_deref(),
        Some(token.as_str())
    );
    let form = [
        ("token", token.as_str()),
        ("email", "First@Example.com"),
        ("password", PASSWORD),
        ("workspace", "acme"),
    ];
    let response = app
        .client
        .post(app.url("/setup"))
        .form(&form)
        .send()
        .await
        .unwrap();
    // Post/redirect/get: the sign-in page says what was created, once.
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/login");
    let html = app.page_text(&app.client, "/login").await;
    assert!(
        html.contains("Account created for first@example.com. Sign in to continue."),
        "{html}"
    );
    assert!(html.contains("value=\"first@example.com\""), "{html}");
    let again = app.page_text(&app.client, "/login").await;
    assert!(!again.contains("Account created"), "shown once");
    assert!(!app.setup.is_live());
    // The new account signs in.
    let response = app
        .sign_in(&client(), "first@example.com", PASSWORD, "/")
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    // The link is dead now, to view and to post, and the sign-in page no longer mentions it.
    let response = app
        .client
        .get(app.url("/setup"))
        .query(&[("token", &token)])
        .send()
        .await
        .unwrap();
    page_error(
        response,
        StatusCode::NOT_FOUND,
        "This setup link is no longer valid",
    )
    .await;
    let second = [
        ("token", token.as_str()),
        ("email", "second@example.com"),
        ("password", PASSWORD),
        ("workspace", "acme"),
    ];
    let response = app
        .client
        .post(app.url("/setup"))
        .form(&second)
        .send()
        .await
        .unwrap();
    page_error(
        response,
        StatusCode::NOT_FOUND,
        "This setup link is no longer valid",
    )
    .await;
    assert!(
        tidepost_store::users::by_email(&app.db, "second@example.com")
            .await
            .unwrap()
            .is_none()
    );
    let login = app.client.get(app.url("/login")).send().await.unwrap();
    assert!(!login.text().await.unwrap().contains("one-time setup link"));
}

async fn setup_form_shows_what_is_wrong(backend: Backend) {
    let token = tidepost_app::access::random_token();
    let app = spawn_app_with(backend, with_token(&token)).await;
    let cases = [
        ("ada@example.com", "short", "acme", "at least 10 characters"),
        (
            "ada@example.com",
            PASSWORD,
            "Bad Space!",
            "is not a valid workspace name",
        ),
        (
            "not-an-email",
            PASSWORD,
            "acme",
            "is not a valid email address",
        ),
    ];
    for (email, password, workspace, message) in cases {
        let form = [
            ("token", token.as_str()),
            ("email", email),
            ("password", password),
            ("workspace", workspace),
        ];
        let response = app
            .client
            .post(app.url("/setup"))
            .form(&form)
            .send()
            .await
            .unwrap();
        let html = page_error(response, StatusCode::UNPROCESSABLE_ENTITY, message).await;
        // The form comes back filled in (but never with the password), the link still live.
        assert_eq!(
            hidden_input(&html, "token").as_deref(),
            Some(token.as_str())
        );
        assert!(!html.contains(password), "password echoed");
        assert!(app.setup.is_live());
    }
    assert_eq!(tidepost_store::users::count(&app.db).await.unwrap(), 0);
}

/// Posts the setup form with `token` and `email`.
async fn post_setup(
    client: &reqwest::Client,
    app: &TestApp,
    token: &str,
    email: &str,
) -> reqwest::Response {
    client
        .post(app.url("/setup"))
        .form(&[
            ("token", token),
            ("email", email),
            ("password", PASSWORD),
            ("workspace", "acme"),
        ])
        .send()
        .await
        .unwrap()
}

async fn setup_link_dies_once_any_user_exists(backend: Backend) {
    let token = tidepost_app::access::random_token();
    let app = spawn_app_with(backend, with_token(&token)).await;
    // A user made another way (`tidepost user create`, another instance) while the link lives.
    app.create_user("cli@example.com", "ops").await;
    let response = app
        .client
        .get(app.url("/setup"))
        .query(&[("token", &token)])
        .send()
        .await
        .unwrap();
    page_error(
        response,
        StatusCode::NOT_FOUND,
        "This setup link is no longer valid",
    )
    .await;
    let response = post_setup(&app.client, &app, &token, "web@example.com").await;
    page_error(
        response,
        StatusCode::NOT_FOUND,
        "This setup link is no longer valid",
    )
    .await;
    assert!(
        tidepost_store::users::by_email(&app.db, "web@example.com")
            .await
            .unwrap()
            .is_none()
    );
    assert!(!app.setup.is_live(), "the token is dropped for good");
    let login = app.page_text(&app.client, "/login").await;
    assert!(!login.contains("one-time setup link"));
}

async fn parallel_setup_posts_create_one_user(backend: Backend) {
    let token = tidepost_app::access::random_token();
    let app = spawn_app_with(backend, with_token(&token)).await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..20 {
        let url = app.url("/setup");
        let token = token.clone();
        tasks.spawn(async move {
            client()
                .post(url)
                .form(&[
                    ("token", token.as_str()),
                    ("email", format!("first{i}@example.com").as_str()),
                    ("password", PASSWORD),
                    ("workspace", "acme"),
                ])
                .send()
                .await
                .unwrap()
                .status()
        });
    }
    let statuses = tasks.join_all().await;
    let created = statuses
        .iter()
        .filter(|s| **s == StatusCode::SEE_OTHER)
        .count();
    assert_eq!(created, 1, "{statuses:?}");
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::SEE_OTHER || *s == StatusCode::NOT_FOUND),
        "{statuses:?}"
    );
    assert_eq!(tidepost_store::users::count(&app.db).await.unwrap(), 1);
}
