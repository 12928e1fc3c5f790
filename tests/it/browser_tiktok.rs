//! TikTok in a real browser, against the in-process emulator with workers on: sign in, connect
//! through the emulator's consent page, publish a video from `/posts/new` and watch its
//! progress bar reach published, see it on the post page and in the dashboard's TikTok widget;
//! refuse on the consent page and get a readable page. Every TikTok page is checked for
//! sideways scrolling at 375 px. Screenshots at 375×812 and 1280×800 under
//! `target/screenshots/<test>/`.

use std::time::{Duration, Instant};

use fantoccini::Locator;
use serde_json::{Value, json};

use crate::browser::Browser;
use crate::support::*;

/// The emulator's first fixture creator.
const CREATOR_OPEN_ID: &str = "act.sandboxCreatorEmulator0000000000";
const CREATOR_NAME: &str = "Tidepost Sandbox";
const CAPTION: &str = "Low tide at dawn #tidepost";

async fn sandbox_app() -> TestApp {
    spawn_app_with(
        Backend::Sqlite,
        Options {
            emulator: true,
            workers: true,
            ..Options::default()
        },
    )
    .await
}

/// Signs in through the form and lands on the dashboard.
async fn sign_in(b: &Browser, app: &TestApp, email: &str) {
    b.goto(&app.url("/login")).await;
    b.fill("#email", email).await;
    b.fill("#password", PASSWORD).await;
    b.click("form[action='/login'] button[type=submit]").await;
    b.wait_for_path("the dashboard", |p| p == "/").await;
}

/// The whole current URL (the consent page lives on the emulator's port).
async fn url(b: &Browser) -> String {
    b.client.current_url().await.unwrap().to_string()
}

async fn wait_for_url(b: &Browser, what: &str, check: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let current = url(b).await;
        if check(&current) {
            return current;
        }
        assert!(
            Instant::now() < deadline,
            "never reached {what}; at {current}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Goes from tidepost's connect page through the emulator's consent page, pressing `decision`
/// (`approve` or `deny`) for the fixture creator.
async fn consent(b: &Browser, app: &TestApp, test: &str, decision: &str) {
    let emulator = app.emulator.clone().expect("the emulator runs");
    b.click("form[action='/connect/tiktok'] button[type=submit]")
        .await;
    wait_for_url(b, "the emulator's consent page", |u| {
        u.starts_with(&emulator)
    })
    .await;
    assert_eq!(b.text_of("h1").await, "Authorize app");
    let page = b.text_of("body").await;
    for scope in ["user.info.basic", "video.publish", "video.upload"] {
        assert!(
            page.contains(scope),
            "the consent page lists {scope}: {page}"
        );
    }
    b.click(&format!("input[name=creator][value='{CREATOR_OPEN_ID}']"))
        .await;
    b.screenshot(test, &format!("03-consent-{decision}")).await;
    b.click(&format!("button[name=decision][value={decision}]"))
        .await;
}

/// A real video of `size` bytes, padded with bytes that do not compress.
fn video_file(dir: &std::path::Path, name: &str, size: u64) -> std::path::PathBuf {
    let path = dir.join(name);
    tidepost_app::media::testing::write_video(&path, size, name);
    path
}

/// Records every change of the upload form's phase and bar in `sessionStorage` (kept across
/// the redirect to the post page), so the test sees each step however short.
const RECORD_PROGRESS: &str = r#"
  sessionStorage.setItem("progress", "[]");
  const bar = document.getElementById("bar"), phase = document.getElementById("phase");
  const note = () => {
    const seen = JSON.parse(sessionStorage.getItem("progress"));
    const entry = [phase.textContent, Number(bar.value)];
    const last = seen[seen.length - 1];
    if (!last || last[0] !== entry[0] || last[1] !== entry[1]) seen.push(entry);
    sessionStorage.setItem("progress", JSON.stringify(seen));
  };
  const watch = new MutationObserver(note);
  watch.observe(bar, {attributes: true});
  watch.observe(phase, {childList: true, characterData: true, subtree: true});
"#;

#[tokio::test]
async fn connect_and_publish_at_375() {
    connect_and_publish(375, 812).await;
}

#[tokio::test]
async fn connect_and_publish_at_1280() {
    connect_and_publish(1280, 800).await;
}

async fn connect_and_publish(width: u32, height: u32) {
    let test = "tiktok_connect_and_publish";
    let app = sandbox_app().await;
    app.create_user("ada@example.com", "acme").await;
    let b = Browser::start(width, height).await;

    // Signed in, nothing connected yet.
    sign_in(&b, &app, "ada@example.com").await;
    assert_eq!(b.text_of(".empty h2").await, "Nothing connected yet");
    b.assert_layout_fits("the empty dashboard").await;
    b.screenshot(test, "01-dashboard-empty").await;

    // tidepost's connect page lists the scopes it asks for.
    b.click(".empty a[href='/connect/tiktok']").await;
    b.wait_for_path("the connect page", |p| p == "/connect/tiktok")
        .await;
    let page = b.text_of("main").await;
    for scope in ["user.info.basic", "video.publish", "video.upload"] {
        assert!(
            page.contains(scope),
            "the connect page lists {scope}: {page}"
        );
    }
    assert!(page.contains("None yet."), "{page}");
    b.assert_layout_fits("/connect/tiktok").await;
    b.screenshot(test, "02-connect").await;

    // The emulator's consent page, then back on the account page.
    consent(&b, &app, test, "approve").await;
    let account_path = b
        .wait_for_path("the account page", |p| {
            p.starts_with("/accounts/") && p.ends_with("?connected=1")
        })
        .await;
    let account_id = account_path
        .trim_start_matches("/accounts/")
        .trim_end_matches("?connected=1")
        .to_string();
    assert_eq!(b.text_of(".notice.ok").await, "TikTok account connected.");
    assert_eq!(b.text_of("h1").await, CREATOR_NAME);
    assert_eq!(b.text_of(".account-card .badge").await, "healthy");
    assert_eq!(b.text_of(".account-card .direct-left").await, "15 of 15");
    b.assert_layout_fits("the account page").await;
    b.screenshot(test, "04-account-connected").await;

    // The upload form per TikTok's guidelines.
    b.click(&format!(
        ".account-card a[href='/posts/new?account={account_id}']"
    ))
    .await;
    b.wait_for_path("the upload form", |p| p.starts_with("/posts/new"))
        .await;
    assert_eq!(b.text_of(".creator .nickname").await, CREATOR_NAME);
    assert!(
        b.client
            .find(Locator::Css(".creator .avatar, .creator .dot"))
            .await
            .is_ok(),
        "the creator's avatar (or its stand-in) is shown"
    );
    let form: Value = b
        .client
        .execute(
            r#"const p = document.getElementById("privacy_level");
               return {
                 privacy: p.value,
                 chosen: p.selectedOptions[0].disabled,
                 options: Array.from(p.options).filter(o => !o.disabled).map(o => o.value),
                 toggles: ["allow_comment", "allow_duet", "allow_stitch"]
                   .map(n => document.querySelector("input[name=" + n + "]").checked),
               };"#,
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(form["privacy"], "", "no privacy level preselected: {form}");
    assert_eq!(
        form["chosen"], true,
        "the placeholder cannot be chosen: {form}"
    );
    assert!(
        form["options"]
            .as_array()
            .unwrap()
            .contains(&json!("PUBLIC_TO_EVERYONE")),
        "{form}"
    );
    assert_eq!(
        form["toggles"],
        json!([false, false, false]),
        "toggles start off"
    );
    b.assert_layout_fits("/posts/new").await;
    b.screenshot(test, "05-post-new").await;

    // An upload tidepost refuses shows a plain-words message and a red bar.
    let files = tempfile::tempdir().unwrap();
    let notes = files.path().join("notes.txt");
    std::fs::write(&notes, "not a video").unwrap();
    b.client
        .find(Locator::Css("#file"))
        .await
        .unwrap()
        .send_keys(&notes.display().to_string())
        .await
        .unwrap();
    b.click("#privacy_level option[value='SELF_ONLY']").await;
    b.click("#submit").await;
    let refusal = wait_for_text(&b, "#upload-error", |t| !t.is_empty()).await;
    assert!(
        !refusal.contains('{') && !refusal.starts_with("HTTP"),
        "a plain message: {refusal}"
    );
    let failed: Value = b
        .client
        .execute(
            "return document.getElementById('progress').className;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        failed, "upload-progress failed",
        "the bar shows the failure"
    );
    b.assert_layout_fits("/posts/new with an upload error")
        .await;
    b.screenshot_of("#upload-error", test, "06-upload-refused")
        .await;

    // A video: watch the bar move to published.
    let video = video_file(files.path(), "dawn.mp4", 12 * 1024 * 1024);
    let file_input = b.client.find(Locator::Css("#file")).await.unwrap();
    file_input.clear().await.unwrap();
    file_input
        .send_keys(&video.display().to_string())
        .await
        .unwrap();
    b.fill("#caption", CAPTION).await;
    b.click("#privacy_level option[value='PUBLIC_TO_EVERYONE']")
        .await;
    b.click("input[name=allow_comment]").await;
    b.client.execute(RECORD_PROGRESS, vec![]).await.unwrap();
    b.click("#submit").await;

    let deadline = Instant::now() + Duration::from_secs(60);
    let mut shot_moving = false;
    let post_path = loop {
        let path = b.path().await;
        if path.starts_with("/posts/") && !path.starts_with("/posts/new") {
            break path;
        }
        if !shot_moving {
            let phase: Value = b
                .client
                .execute(
                    "const p = document.getElementById('phase'); return p ? p.textContent : '';",
                    vec![],
                )
                .await
                .unwrap_or(Value::Null);
            if phase
                .as_str()
                .is_some_and(|p| p.contains("TikTok") && !p.contains("Published"))
            {
                b.screenshot_of("#progress", test, "07-progress").await;
                shot_moving = true;
            }
        }
        let error: Value = b
            .client
            .execute(
                "const e = document.getElementById('upload-error'); return e && !e.hidden ? e.textContent : null;",
                vec![],
            )
            .await
            .unwrap_or(Value::Null);
        assert!(error.is_null(), "the upload failed: {error}");
        assert!(
            Instant::now() < deadline,
            "the post never reached published; at {path}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let post_id = post_path.trim_start_matches("/posts/").to_string();

    // What the bar went through: forward only, through TikTok's steps, to 100 %.
    let seen: Value = b
        .client
        .execute(
            "return JSON.parse(sessionStorage.getItem('progress') || '[]');",
            vec![],
        )
        .await
        .unwrap();
    let steps = seen.as_array().unwrap();
    let values: Vec<f64> = steps.iter().map(|s| s[1].as_f64().unwrap()).collect();
    assert!(
        values.windows(2).all(|w| w[0] <= w[1]),
        "the bar never moves backwards: {seen}"
    );
    let distinct = {
        let mut v = values.clone();
        v.dedup();
        v.len()
    };
    assert!(distinct >= 3, "the bar moved in steps: {seen}");
    let phases: Vec<&str> = steps.iter().map(|s| s[0].as_str().unwrap()).collect();
    assert!(phases.contains(&"Uploading to tidepost"), "{seen}");
    assert!(
        phases.iter().any(|p| p.contains("TikTok")),
        "the bar showed TikTok's part: {seen}"
    );
    assert_eq!(steps.last().unwrap(), &json!(["Published", 100]), "{seen}");

    // The post page shows it published.
    assert_eq!(b.text_of(".target strong").await, "published");
    assert_eq!(b.text_of("#post .pill").await, "published");
    assert!(b.text_of("#post").await.contains(CAPTION));
    b.assert_layout_fits("the post page").await;
    b.screenshot(test, "08-post-published").await;

    // The dashboard's widget: one direct post used, the post with its state.
    b.click(".nav a[href='/']").await;
    b.wait_for_path("the dashboard", |p| p == "/").await;
    let card = format!(".account-card[data-account='{account_id}']");
    assert_eq!(b.text_of(&format!("{card} .direct-left")).await, "14 of 15");
    assert_eq!(b.text_of(&format!("{card} .inbox-pending")).await, "0 of 5");
    assert_eq!(b.text_of(&format!("{card} .badge")).await, "healthy");
    let recent = b
        .client
        .find(Locator::Css(&format!("{card} .recent li a")))
        .await
        .unwrap();
    assert_eq!(recent.text().await.unwrap(), CAPTION);
    assert_eq!(
        recent.attr("href").await.unwrap().as_deref(),
        Some(format!("/posts/{post_id}").as_str())
    );
    assert_eq!(
        b.text_of(&format!("{card} .recent .pill")).await,
        "published"
    );
    b.assert_layout_fits("the dashboard with the TikTok widget")
        .await;
    b.screenshot(test, "09-dashboard-widget").await;
    b.screenshot_of(&format!("{card} .recent"), test, "10-dashboard-recent")
        .await;

    // Every TikTok page fits the screen.
    for (name, path) in [
        ("11-page-connect", "/connect/tiktok".to_string()),
        ("12-page-accounts", "/accounts".to_string()),
        ("13-page-account", format!("/accounts/{account_id}")),
        ("14-page-posts", "/posts".to_string()),
        ("15-page-post-new", "/posts/new".to_string()),
        ("16-page-post", format!("/posts/{post_id}")),
    ] {
        b.goto(&app.url(&path)).await;
        b.text_of("h1").await;
        b.assert_layout_fits(&path).await;
        b.screenshot(test, name).await;
    }
    b.close().await;
}

async fn wait_for_text(b: &Browser, css: &str, check: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = b.text_of(css).await;
        if check(&text) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{css} never matched; it says {text:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn denying_consent_shows_a_readable_page() {
    let test = "tiktok_consent_denied";
    let app = sandbox_app().await;
    app.create_user("ada@example.com", "acme").await;
    for (width, height) in [(375, 812), (1280, 800)] {
        let b = Browser::start(width, height).await;
        sign_in(&b, &app, "ada@example.com").await;
        b.goto(&app.url("/connect/tiktok")).await;
        consent(&b, &app, test, "deny").await;
        b.wait_for_path("the callback's refusal", |p| {
            p.starts_with("/oauth/tiktok/callback")
        })
        .await;
        assert_eq!(b.text_of("h1").await, "TikTok was not connected");
        let message = b.text_of("[role=alert] p:not(.muted)").await;
        assert!(
            message.contains("declined") && message.contains("nothing was connected"),
            "the page says why: {message}"
        );
        assert!(
            !message.contains("access_denied"),
            "in words, not codes: {message}"
        );
        b.assert_layout_fits("the refusal page").await;
        b.screenshot(test, "04-denied").await;

        // Nothing was stored.
        b.click(".actions a[href='/']").await;
        b.wait_for_path("the dashboard", |p| p == "/").await;
        assert_eq!(b.text_of(".empty h2").await, "Nothing connected yet");
        b.close().await;
    }
}

both_backends!(widget_at_the_daily_cap);

/// Without a browser, on both backends: connect through the consent form over HTTP, post
/// through the API with a daily cap of 1, and the dashboard's widget shows no direct post left,
/// when the next slot opens, and the post with its state.
async fn widget_at_the_daily_cap(backend: Backend) {
    let app = spawn_app_with(
        backend,
        Options {
            emulator: true,
            workers: true,
            env: vec![("TIDEPOST_TIKTOK_DIRECT_POST_DAILY_CAP", "1".into())],
            ..Options::default()
        },
    )
    .await;
    let emulator = app.emulator.clone().unwrap();
    let me = app.signed_in("acme").await;

    // Connect: tidepost → the consent form (approve) → the callback.
    let start = me
        .client
        .post(app.url("/connect/tiktok"))
        .form(&[("csrf", me.csrf.as_str())])
        .send()
        .await
        .unwrap();
    let authorize = location(&start);
    assert!(authorize.starts_with(&emulator), "{authorize}");
    let consent = bare_client()
        .get(&authorize)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let callback = approve_tiktok_consent(&emulator, &consent, Some(CREATOR_OPEN_ID)).await;
    let landed = me.client.get(&callback).send().await.unwrap();
    let account_path = location(&landed);
    let account_id = account_path
        .trim_start_matches("/accounts/")
        .trim_end_matches("?connected=1")
        .to_string();

    // One direct post through the API, to published.
    let key = app.api_key(&me.workspace.id, "widget", &[]).await;
    let video =
        reqwest::multipart::Part::bytes(tidepost_app::media::testing::video(256 * 1024, "tide"))
            .file_name("tide.mp4")
            .mime_str("video/mp4")
            .unwrap();
    let multipart = reqwest::multipart::Form::new()
        .text("account_id", account_id.clone())
        .text("mode", "direct")
        .text("caption", CAPTION)
        .text("privacy_level", "SELF_ONLY")
        .part("file", video);
    let created = bare_client()
        .post(app.url("/api/v1/posts"))
        .bearer_auth(&key)
        .multipart(multipart)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), reqwest::StatusCode::ACCEPTED);
    let post: Value = created.json().await.unwrap();
    let post_id = post["id"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let now: Value = app
            .api_get(&key, &format!("/api/v1/posts/{post_id}"))
            .await
            .json()
            .await
            .unwrap();
        if now["targets"][0]["state"] == "published" {
            break;
        }
        assert!(Instant::now() < deadline, "never published: {now}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let html = app.page_text(&me.client, "/").await;
    assert!(
        html.contains(r#"<strong class="direct-left">0 of 1</strong>"#),
        "{html}"
    );
    assert!(
        html.contains("Daily cap reached. The next direct post can go out at "),
        "{html}"
    );
    assert!(html.contains("(in 23 hours)"), "{html}");
    assert!(
        html.contains(&format!(r#"<a href="/posts/{post_id}">{CAPTION}</a>"#)),
        "{html}"
    );
    assert!(
        html.contains(r#"<span class="pill state-published">published</span>"#),
        "{html}"
    );
}
