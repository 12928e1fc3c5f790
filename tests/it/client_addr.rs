//! The sign-in throttle behind a reverse proxy: the (account, address) pair follows the address
//! a trusted proxy forwards in `X-Forwarded-For`, and ignores the header from anyone else.

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, HeaderValue};
use tidepost_app::access;

use crate::support::*;

both_backends!(
    forwarded_for_from_an_untrusted_peer_is_ignored,
    a_trusted_proxy_keeps_clients_apart,
);

/// A client (with its own cookie jar) whose every request carries `X-Forwarded-For: xff`.
fn forwarding_client(xff: &str) -> reqwest::Client {
    client();
    let mut headers = HeaderMap::new();
    headers.insert("x-forwarded-for", HeaderValue::from_str(xff).unwrap());
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .default_headers(headers)
        .build()
        .unwrap()
}

/// Spends the free attempts of the (ada@example.com, `client`'s address) pair with wrong
/// passwords, so that this address now has to wait.
async fn exhaust_pair(app: &TestApp, client: &reqwest::Client) {
    for attempt in 1..=access::PAIR_FREE_ATTEMPTS {
        let response = app
            .sign_in(client, "ada@example.com", "not the password", "/")
            .await;
        assert_eq!(
            response.status(),
            StatusCode::UNAUTHORIZED,
            "attempt {attempt}"
        );
    }
}

async fn forwarded_for_from_an_untrusted_peer_is_ignored(backend: Backend) {
    // No trusted proxies (the default): the test's connections are the clients.
    let app = spawn_app(backend).await;
    app.create_user("ada@example.com", "acme").await;
    let mallory = forwarding_client("198.51.100.1");
    exhaust_pair(&app, &mallory).await;
    // Claiming to be someone else in the header does not buy a fresh counter.
    let disguised = forwarding_client("198.51.100.2");
    let response = app
        .sign_in(&disguised, "ada@example.com", PASSWORD, "/")
        .await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(response.headers().get("retry-after").is_some());
    let html = response.text().await.unwrap();
    assert!(
        html.contains("Too many sign-in attempts for this account from here"),
        "{html}"
    );
}

async fn a_trusted_proxy_keeps_clients_apart(backend: Backend) {
    // The test's connections come from 127.0.0.1: it plays the proxy.
    let app = spawn_app_with(
        backend,
        Options {
            env: vec![("TIDEPOST_TRUSTED_PROXIES", "127.0.0.1/32, ::1/128".into())],
            ..Options::default()
        },
    )
    .await;
    app.create_user("ada@example.com", "acme").await;
    // Mallory forges a left-hand entry; the proxy appended her real address after it.
    let mallory = forwarding_client("203.0.113.50, 198.51.100.1");
    exhaust_pair(&app, &mallory).await;
    let response = app
        .sign_in(&mallory, "ada@example.com", PASSWORD, "/")
        .await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    // Changing the forged part changes nothing: the proxy's entry is what counts.
    let again = forwarding_client("192.0.2.77, 198.51.100.1");
    let response = app.sign_in(&again, "ada@example.com", PASSWORD, "/").await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    // Ada, behind the same proxy, has her own (account, address) pair and signs in.
    let ada = forwarding_client("198.51.100.2");
    let response = app.sign_in(&ada, "ada@example.com", PASSWORD, "/").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(set_cookie(response.headers(), "tidepost_session").is_some());
}
