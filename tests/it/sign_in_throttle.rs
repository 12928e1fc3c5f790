//! Sign-in limits that can be neither raced nor turned into a weapon (issue 18, items 11 and
//! 12), through the real form, on SQLite and PostgreSQL:
//!
//! - the check and the count of an attempt are one step in the database: a burst of wrong
//!   passwords gets exactly the free attempts of its (account, address) pair, and correct
//!   passwords sent after it wait too;
//! - one address trying many accounts (a proxy, an office) slows down only the pairs it tried,
//!   never the other accounts behind it;
//! - an account locked by guesses from many addresses opens to its owner's known browser (also
//!   when another account signed in with it since), whose correct password lifts the lock; `tidepost user unlock` lifts it too (tests/it/cli.rs);
//! - every 429 carries `Retry-After`.

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};
use tidepost_app::access;
use tokio::task::JoinSet;

use crate::support::*;

both_backends!(
    a_burst_of_wrong_passwords_gets_exactly_the_free_attempts,
    one_address_trying_many_accounts_locks_none_of_them,
    a_locked_account_opens_to_its_known_browser,
);

/// A server that believes the test's `X-Forwarded-For` (the test plays the proxy), so that each
/// client can come from its own address.
async fn behind_a_proxy(backend: Backend) -> TestApp {
    spawn_app_with(
        backend,
        Options {
            env: vec![("TIDEPOST_TRUSTED_PROXIES", "127.0.0.1/32, ::1/128".into())],
            ..Options::default()
        },
    )
    .await
}

/// A browser (its own cookie jar) at `address`.
fn browser_at(address: &str) -> reqwest::Client {
    client();
    let mut headers = HeaderMap::new();
    headers.insert("x-forwarded-for", HeaderValue::from_str(address).unwrap());
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .default_headers(headers)
        .build()
        .unwrap()
}

/// The `Retry-After` of a 429, in seconds (panics when absent: every 429 must carry it).
fn retry_after(response: &reqwest::Response) -> u64 {
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    response
        .headers()
        .get(RETRY_AFTER)
        .unwrap_or_else(|| panic!("a 429 without Retry-After"))
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// The known-device cookie a sign-in set (`tidepost_device_…`, one per account).
fn device_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("tidepost_device_"))
        .map(str::to_string)
}

fn cookie_name(set_cookie: &str) -> &str {
    set_cookie.split('=').next().unwrap()
}

/// Posts the sign-in forms of `forms` (browser, email, password) all at once, each browser's
/// form fetched beforehand; the answers in the same order.
async fn all_at_once(
    app: &TestApp,
    forms: Vec<(reqwest::Client, &str, &str)>,
) -> Vec<reqwest::Response> {
    let mut ready = Vec::new();
    for (browser, email, password) in forms {
        let csrf = app.login_csrf(&browser).await;
        ready.push((browser, email.to_string(), password.to_string(), csrf));
    }
    let mut tasks = JoinSet::new();
    for (i, (browser, email, password, csrf)) in ready.into_iter().enumerate() {
        let url = app.url("/login");
        tasks.spawn(async move {
            let response = browser
                .post(url)
                .form(&[
                    ("csrf", csrf.as_str()),
                    ("email", email.as_str()),
                    ("password", password.as_str()),
                    ("next", "/"),
                ])
                .send()
                .await
                .unwrap();
            (i, response)
        });
    }
    let mut answers: Vec<(usize, reqwest::Response)> = tasks.join_all().await;
    answers.sort_by_key(|(i, _)| *i);
    answers.into_iter().map(|(_, r)| r).collect()
}

async fn a_burst_of_wrong_passwords_gets_exactly_the_free_attempts(backend: Backend) {
    let app = behind_a_proxy(backend).await;
    app.create_user("ada@example.com", "acme").await;
    let forms = (0..40)
        .map(|_| {
            (
                browser_at("198.51.100.7"),
                "ada@example.com",
                "a wrong guess",
            )
        })
        .collect();
    let answers = all_at_once(&app, forms).await;
    let checked = answers
        .iter()
        .filter(|r| r.status() == StatusCode::UNAUTHORIZED)
        .count();
    let waited: Vec<u64> = answers
        .iter()
        .filter(|r| r.status() == StatusCode::TOO_MANY_REQUESTS)
        .map(retry_after)
        .collect();
    assert_eq!(
        checked,
        access::PAIR_FREE_ATTEMPTS as usize,
        "passwords checked"
    );
    assert_eq!(waited.len(), 40 - checked, "every other one waits");
    let first_wait = (access::PAIR_FIRST_DELAY_MS / 1000) as u64;
    assert!(
        waited.iter().all(|s| (1..=first_wait).contains(s)),
        "{waited:?}"
    );
    // Two correct passwords right after the burst, from the same address, wait as well.
    let forms = (0..2)
        .map(|_| (browser_at("198.51.100.7"), "ada@example.com", PASSWORD))
        .collect();
    for response in all_at_once(&app, forms).await {
        assert!(set_cookie(response.headers(), "tidepost_session").is_none());
        retry_after(&response);
        let html = response.text().await.unwrap();
        assert!(
            html.contains("Too many sign-in attempts for this account from here; try again in"),
            "{html}"
        );
    }
    // The owner elsewhere is not slowed down by it.
    let response = app
        .sign_in(
            &browser_at("198.51.100.8"),
            "ada@example.com",
            PASSWORD,
            "/",
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
}

async fn one_address_trying_many_accounts_locks_none_of_them(backend: Backend) {
    let app = behind_a_proxy(backend).await;
    app.create_user("ada@example.com", "acme").await;
    app.create_user("bob@example.com", "acme").await;
    let office = "203.0.113.9";
    // Thirty wrong passwords for thirty accounts, and bob's free attempts, from one address.
    for i in 0..30 {
        let response = app
            .sign_in(
                &browser_at(office),
                &format!("user{i}@example.com"),
                "a wrong guess",
                "/",
            )
            .await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "guess {i}");
    }
    for _ in 0..access::PAIR_FREE_ATTEMPTS {
        let response = app
            .sign_in(&browser_at(office), "bob@example.com", "a wrong guess", "/")
            .await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    // Bob waits at this address…
    let response = app
        .sign_in(&browser_at(office), "bob@example.com", PASSWORD, "/")
        .await;
    retry_after(&response);
    // …but ada, behind the same address, signs in.
    let response = app
        .sign_in(&browser_at(office), "ada@example.com", PASSWORD, "/")
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(set_cookie(response.headers(), "tidepost_session").is_some());
}

async fn a_locked_account_opens_to_its_known_browser(backend: Backend) {
    let app = behind_a_proxy(backend).await;
    app.create_user("ada@example.com", "acme").await;
    // Ada signs in at home once: her browser becomes a known device (a cookie for /login only).
    let home = browser_at("192.0.2.10");
    let response = app.sign_in(&home, "ada@example.com", PASSWORD, "/").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let device = device_cookie(response.headers()).expect("a device cookie");
    assert!(
        device.contains("HttpOnly") && device.contains("Path=/login"),
        "{device}"
    );
    // Bob signs in with the same browser afterwards: it is his known device too, and stays
    // Ada's (one cookie per account).
    app.create_user("bob@example.com", "acme").await;
    let response = app.sign_in(&home, "bob@example.com", PASSWORD, "/").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let bobs = device_cookie(response.headers()).expect("bob's device cookie");
    assert_ne!(
        cookie_name(&bobs),
        cookie_name(&device),
        "{bobs} / {device}"
    );
    // Guesses from many addresses, each within its pair's free attempts, lock the account.
    for i in 0..access::ACCOUNT_MAX_ATTEMPTS {
        let response = app
            .sign_in(
                &browser_at(&format!("198.51.100.{}", 100 + i)),
                "ada@example.com",
                "a wrong guess",
                "/",
            )
            .await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "guess {i}");
    }
    // A browser that never signed in is refused even with the right password.
    let response = app
        .sign_in(&browser_at("192.0.2.11"), "ada@example.com", PASSWORD, "/")
        .await;
    assert!(set_cookie(response.headers(), "tidepost_session").is_none());
    let wait = retry_after(&response);
    assert!(
        wait > 60 && wait <= (access::ACCOUNT_LOCK_MS / 1000) as u64,
        "{wait}"
    );
    let html = response.text().await.unwrap();
    assert!(html.contains("This account is locked"), "{html}");
    assert!(html.contains("tidepost user unlock"), "{html}");
    // Her own browser gets in, and that lifts the lock for her other browsers.
    let response = app.sign_in(&home, "ada@example.com", PASSWORD, "/").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let response = app
        .sign_in(&browser_at("192.0.2.11"), "ada@example.com", PASSWORD, "/")
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
}
