//! Threads in a real browser, against the in-process emulator with workers on, on both
//! backends and at 390 and 1280 px wide: sign in, connect through `/connect/threads` and the
//! emulator's Threads dialog, open the composer with the profile chosen, write a text post with
//! "Profiles you mention" may reply (the preview counting Threads' 500 and 5 links), publish,
//! and find the post published with its permalink. Every page is checked for sideways
//! scrolling; screenshots under `target/screenshots/<test>/`.

use std::time::{Duration, Instant};

use fantoccini::Locator;
use serde_json::Value;

use crate::browser::Browser;
use crate::support::*;

const CAPTION: &str = "Low tide at dawn, café https://example.com/tides";

both_backends!(
    connect_compose_and_publish_at_390,
    connect_compose_and_publish_at_1280
);

async fn connect_compose_and_publish_at_390(backend: Backend) {
    connect_compose_and_publish(backend, 390, 844).await;
}

async fn connect_compose_and_publish_at_1280(backend: Backend) {
    connect_compose_and_publish(backend, 1280, 800).await;
}

async fn connect_compose_and_publish(backend: Backend, width: u32, height: u32) {
    let test = format!(
        "threads_connect_compose_publish_{}_{width}",
        match backend {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    );
    let test = test.as_str();
    let app = spawn_app_with(
        backend,
        Options {
            emulator: true,
            workers: true,
            ..Options::default()
        },
    )
    .await;
    let emulator = app.emulator.clone().expect("the emulator runs");
    app.create_user("ada@example.com", "acme").await;
    let b = Browser::start(width, height).await;
    b.goto(&app.url("/login")).await;
    b.fill("#email", "ada@example.com").await;
    b.fill("#password", PASSWORD).await;
    b.click("form[action='/login'] button[type=submit]").await;
    b.wait_for_path("the dashboard", |p| p == "/").await;

    b.goto(&app.url("/connect/threads")).await;
    assert!(b.text_of("h1").await.contains("Connect Threads"));
    assert!(b.text_of("main").await.contains("threads_content_publish"));
    b.assert_layout_fits("/connect/threads").await;
    b.screenshot(test, "01-connect").await;
    b.click("form[action='/connect/threads'] button[type=submit]")
        .await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while !b
        .client
        .current_url()
        .await
        .unwrap()
        .as_str()
        .starts_with(&emulator)
    {
        assert!(
            Instant::now() < deadline,
            "never reached the Threads dialog"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        b.text_of("h1")
            .await
            .contains("Threads profile @threads_tester")
    );
    b.screenshot(test, "02-threads-dialog").await;
    b.click("button[name=decision][value=approve]").await;
    let account_path = b
        .wait_for_path("the account page", |p| {
            p.starts_with("/accounts/") && p.ends_with("?connected=1")
        })
        .await;
    let account_id = account_path
        .trim_start_matches("/accounts/")
        .trim_end_matches("?connected=1")
        .to_string();
    assert!(b.text_of("main").await.contains("threads_tester"));
    b.assert_layout_fits("the account page").await;
    b.screenshot(test, "03-connected").await;

    b.goto(&app.url(&format!("/posts/new?account={account_id}")))
        .await;
    b.wait_for_path("the composer", |p| {
        p == format!("/compose?account={account_id}")
    })
    .await;
    let panel = format!("fieldset[data-target='{account_id}']");
    assert!(b.text_of(&panel).await.contains("Threads post type"));
    b.fill("#caption", CAPTION).await;
    b.client
        .execute(
            "const s = document.querySelector(arguments[0] + \" [data-role='th-reply']\"); s.value = 'mentioned_only'; s.dispatchEvent(new Event('change', {bubbles: true})); document.querySelector('#caption').dispatchEvent(new Event('input', {bubbles: true}));",
            vec![Value::String(panel.clone())],
        )
        .await
        .unwrap();
    // The preview shows Threads' own counters (500 characters, 5 links).
    assert!(
        b.text_of("[data-role='preview-counts']")
            .await
            .contains("of 500 characters"),
        "the Threads counters"
    );
    b.assert_layout_fits("the composer").await;
    b.screenshot(test, "04-compose").await;
    b.click("#compose-submit").await;
    b.wait_for_path("the post page", |p| {
        p.starts_with("/posts/") && !p.starts_with("/posts/new")
    })
    .await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let state = b.text_of(".target strong").await;
        if state == "published" {
            break;
        }
        assert!(
            state != "failed" && Instant::now() < deadline,
            "never published: {}",
            b.text_of("main").await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let link = b
        .client
        .find(Locator::Css(".target .permalink a"))
        .await
        .expect("the permalink is shown");
    let href = link.attr("href").await.unwrap().unwrap_or_default();
    assert!(
        href.starts_with("https://www.threads.com/@threads_tester/post/"),
        "{href}"
    );
    b.assert_layout_fits("the post page").await;
    b.screenshot(test, "05-published").await;
    let posts = emulator_json(&emulator, "/_emulator/threads/posts").await;
    let posts = posts["posts"].as_array().unwrap();
    assert_eq!(posts.len(), 1, "{posts:?}");
    assert_eq!(posts[0]["reply_control"], "mentioned_only");
    assert_eq!(posts[0]["text"], CAPTION);
    b.close().await;
}
