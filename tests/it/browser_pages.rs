//! The CRM, webhook, media and API-docs pages in headless Chromium at phone (390×844) and
//! desktop (1280×800) width, over real data: the emulator's Instagram account connected through
//! the browser and a TikTok one through the API; a webhook endpoint created in Settings (its
//! secret shown once) with a local receiver; an image uploaded and published to Instagram; a
//! fan's comment delivered by the emulator's comments webhook; the CRM sync sampling the post's
//! metrics twice (so the creator's chart has a line). Then every page is visited at both widths:
//! no sideways scrolling, no tiny buttons, and the key content there — the chart drawn, timeline
//! entries, the contact found by search, a reply sent from the inbox and shown under the
//! comment, the endpoint's delivery and its attempts, the API reference grouped by tag. Then
//! every page of the UI (and, signed out, sign-in and a 404) at both widths: each highlights its
//! own navigation entry (the API reference none), fits the screen, has one heading, keeps inline
//! code whole, has 44 px touch targets on a phone and tables that stack or scroll. A second test
//! visits a new, empty workspace the same way and reads each page's empty state.
//! Screenshots under `target/screenshots/{new_pages,every_page,empty_pages}/` (whole pages for
//! the last two).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use fantoccini::Locator;
use serde_json::{Value, json};

use crate::browser::{Browser, connect_instagram};
use crate::support::*;

const TEST: &str = "new_pages";
const CAPTION: &str = "Rock pools at dawn #tidepost";
const COMMENT: &str = "where is this?";
const FAN: &str = "carol.tides";

/// A webhook receiver on loopback that answers every request `204` and counts them.
async fn receiver() -> (String, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks/tidepost", listener.local_addr().unwrap());
    let counter = hits.clone();
    let app = axum::Router::new().fallback(move || {
        let counter = counter.clone();
        async move {
            counter.fetch_add(1, Ordering::SeqCst);
            axum::http::StatusCode::NO_CONTENT
        }
    });
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (url, hits)
}

/// A 1080×1350 test-pattern JPEG (a valid Instagram feed image).
fn jpeg(dir: &std::path::Path) -> Vec<u8> {
    let path = dir.join("rock-pools.jpg");
    let status = std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi"])
        .args([
            "-i",
            "testsrc=size=1080x1350",
            "-frames:v",
            "1",
            "-q:v",
            "4",
        ])
        .arg(&path)
        .status()
        .expect("ffmpeg runs (Debian: apt-get install ffmpeg; .ci/run installs it)");
    assert!(status.success(), "ffmpeg made the fixture image");
    std::fs::read(path).unwrap()
}

async fn run(b: &Browser, script: &str) -> Value {
    b.client.execute(script, vec![]).await.unwrap()
}

/// Polls `check` every 200 ms until it returns `Some`, for at most `seconds`.
async fn eventually<T, F, Fut>(what: &str, seconds: u64, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(seconds);
    loop {
        if let Some(found) = check().await {
            return found;
        }
        assert!(Instant::now() < deadline, "never saw {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Makes the CRM sweep due now (it runs every minute; the test does not wait for it). The
/// period is the current time: a schedule's job is keyed by its period, so each nudge is new.
async fn sweep_now(app: &TestApp) {
    sqlx::query("UPDATE job_schedules SET next_run_at = $1 WHERE name = 'crm.sweep'")
        .bind(tidepost_domain::now_ms())
        .execute(app.db.pool())
        .await
        .unwrap();
}

async fn samples(app: &TestApp, ws: &str, target: &str) -> usize {
    tidepost_store::crm::metrics::series(&app.db, ws, target, 10)
        .await
        .unwrap()
        .len()
}

/// Everything the pages show, made once through the real flows.
struct World {
    app: TestApp,
    instagram_id: String,
    post_id: String,
    scheduled_id: String,
    creator_id: String,
    contact_id: String,
    endpoint_id: String,
    hook_url: String,
    hits: Arc<AtomicUsize>,
}

#[tokio::test]
async fn new_pages_at_phone_and_desktop() {
    let app = spawn_app_with(
        Backend::Sqlite,
        Options {
            emulator: true,
            workers: true,
            env: vec![("TIDEPOST_WEBHOOKS_ALLOW_PRIVATE", "true".into())],
            ..Options::default()
        },
    )
    .await;
    let (_, workspace) = app.create_user("ada@example.com", "acme").await;
    let ws = workspace.id.clone();
    let key = app.api_key(&ws, "setup", &[]).await;
    connect_tiktok_via_api(&app, &key, "tidepost.sandbox").await;
    let emulator = app.emulator.clone().unwrap();
    // The emulator's Meta app sends comments webhooks to this server.
    let answer = bare_client()
        .put(format!("{emulator}/_emulator/meta/settings"))
        .json(&json!({"webhook_url": app.url("/webhooks/instagram")}))
        .send()
        .await
        .unwrap();
    assert!(answer.status().is_success(), "meta settings");
    let (hook_url, hits) = receiver().await;

    // Phone width first: the signed-out pages, then sign in, connect Instagram, add the endpoint, so the events that
    // follow are delivered to it.
    let b = Browser::start(390, 844).await;
    signed_out_pages(&b, &app).await;
    sign_in(&b, &app).await;
    connect_instagram(&b, &app).await;
    let endpoint_id = add_endpoint(&b, &app, &hook_url, "CRM receiver").await;

    // Publish an image to Instagram through the API and wait for it.
    let accounts: Value = app
        .api_get(&key, "/api/v1/accounts")
        .await
        .json()
        .await
        .unwrap();
    let instagram = accounts["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["platform"] == "instagram")
        .unwrap_or_else(|| panic!("an Instagram account: {accounts}"))["id"]
        .as_str()
        .unwrap()
        .to_string();
    let fixtures = tempfile::tempdir().unwrap();
    let uploaded: Value = bare_client()
        .post(app.url("/api/v1/media"))
        .bearer_auth(&key)
        .header("content-type", "image/jpeg")
        .header("x-file-name", "rock-pools.jpg")
        .body(jpeg(fixtures.path()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let media_id = uploaded["id"].as_str().expect("an upload id").to_string();
    let created: Value = bare_client()
        .post(app.url("/api/v1/posts"))
        .bearer_auth(&key)
        .json(
            &json!({"caption": CAPTION, "media": [{"media_id": media_id}],
            "targets": [{"account_id": instagram}]}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let post_id = created["id"]
        .as_str()
        .unwrap_or_else(|| panic!("a post: {created}"))
        .to_string();
    let target = eventually("the post published", 60, || async {
        let post: Value = app
            .api_get(&key, &format!("/api/v1/posts/{post_id}"))
            .await
            .json()
            .await
            .unwrap();
        let t = post["targets"][0].clone();
        assert_ne!(t["state"], "failed", "{post}");
        (t["state"] == "published").then_some(t)
    })
    .await;
    let target_id = target["id"].as_str().unwrap().to_string();
    let ig_media = target["instagram"]["media_id"]
        .as_str()
        .or_else(|| target["post_ids"][0].as_str())
        .unwrap_or_else(|| panic!("the Instagram media id: {target}"))
        .to_string();

    // A fan comments; the emulator's webhook brings it in as a contact and an interaction.
    let injected = bare_client()
        .post(format!("{emulator}/_emulator/meta/comments"))
        .json(&json!({"media_id": ig_media, "text": COMMENT, "username": FAN}))
        .send()
        .await
        .unwrap();
    assert_eq!(injected.status(), reqwest::StatusCode::CREATED);
    let contact_id = eventually("the fan as a contact", 30, || async {
        let found: Value = app
            .api_get(&key, &format!("/api/v1/contacts?q={FAN}"))
            .await
            .json()
            .await
            .unwrap();
        found["data"][0]["id"].as_str().map(str::to_string)
    })
    .await;

    // The CRM sync samples the post's metrics; a second sample comes in the next minute (the
    // metrics job is once per account per minute), so keep the track due while the pages are
    // visited.
    sweep_now(&app).await;
    eventually("a first metrics sample", 30, || async {
        (samples(&app, &ws, &target_id).await >= 1).then_some(())
    })
    .await;
    // Due again now (once: the job records a sample only if the slot it read is unchanged),
    // and the sweep made due every second until the minute turns.
    sqlx::query("UPDATE metric_tracks SET next_sample_at = $1 WHERE target_id = $2")
        .bind(tidepost_domain::now_ms())
        .bind(&target_id)
        .execute(app.db.pool())
        .await
        .unwrap();
    let nudger = {
        let db = app.db.clone();
        tokio::spawn(async move {
            loop {
                sqlx::query("UPDATE job_schedules SET next_run_at = $1 WHERE name = 'crm.sweep'")
                    .bind(tidepost_domain::now_ms())
                    .execute(db.pool())
                    .await
                    .unwrap();
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        })
    };
    let creator_id: Option<String> =
        sqlx::query_scalar("SELECT creator_id FROM accounts WHERE id = $1")
            .bind(&instagram)
            .fetch_one(app.db.pool())
            .await
            .unwrap();
    // A second post, scheduled for tomorrow, so the schedule has a day to show.
    let scheduled: Value = bare_client()
        .post(app.url("/api/v1/posts"))
        .bearer_auth(&key)
        .json(&json!({"caption": "Low tide again tomorrow", "media": [{"media_id": media_id}],
            "targets": [{"account_id": instagram}],
            "scheduled_at": tidepost_domain::time::rfc3339(tidepost_domain::now_ms() + 86_400_000)}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let scheduled_id = scheduled["id"]
        .as_str()
        .unwrap_or_else(|| panic!("a scheduled post: {scheduled}"))
        .to_string();
    let world = World {
        app,
        instagram_id: instagram.clone(),
        post_id,
        scheduled_id,
        creator_id: creator_id.expect("the Instagram account has a creator"),
        contact_id,
        endpoint_id,
        hook_url,
        hits,
    };

    visit(&b, &world, true).await;
    every_page(&b, &world).await;
    b.close().await;
    let wide = Browser::start(1280, 800).await;
    signed_out_pages(&wide, &world.app).await;
    sign_in(&wide, &world.app).await;
    add_endpoint(
        &wide,
        &world.app,
        &format!("{}/desktop", world.hook_url),
        "",
    )
    .await;
    visit(&wide, &world, false).await;
    every_page(&wide, &world).await;
    wide.close().await;
    nudger.abort();
}

async fn sign_in(b: &Browser, app: &TestApp) {
    b.goto(&app.url("/login")).await;
    b.fill("#email", "ada@example.com").await;
    b.fill("#password", PASSWORD).await;
    b.click("form[action='/login'] button[type=submit]").await;
    b.wait_for_path("the dashboard", |p| p == "/").await;
}

/// Adds an endpoint on Settings → Webhooks; checks its secret is shown once. Returns its id.
async fn add_endpoint(b: &Browser, app: &TestApp, url: &str, description: &str) -> String {
    b.goto(&app.url("/settings/webhooks")).await;
    assert_eq!(b.text_of("h1").await, "Webhooks");
    b.assert_layout_fits("/settings/webhooks").await;
    b.screenshot(TEST, "webhooks").await;
    b.fill("#url", url).await;
    b.fill("#description", description).await;
    b.click("#new-endpoint button[type=submit]").await;
    let secret = b.text_of("#new-secret").await;
    assert!(secret.starts_with("whsec_"), "{secret}");
    b.assert_layout_fits("/settings/webhooks with a new secret")
        .await;
    b.screenshot(TEST, "webhooks-created").await;
    let href = b
        .client
        .find(Locator::Css("#created-endpoint a.button"))
        .await
        .unwrap()
        .attr("href")
        .await
        .unwrap()
        .unwrap();
    // Shown once: the list shows the endpoint, never the secret again.
    b.goto(&app.url("/settings/webhooks")).await;
    let source = b.client.source().await.unwrap();
    assert!(!source.contains(&secret), "the secret is shown again");
    assert!(b.text_of("#endpoints").await.contains(url));
    href.trim_start_matches("/settings/webhooks/").to_string()
}

/// Every new page at the browser's width.
async fn visit(b: &Browser, w: &World, reply: bool) {
    let app = &w.app;

    // The inbox: the fan's comment, answered from here (once, at phone width).
    b.goto(&app.url("/inbox")).await;
    let card = "section.card:has(textarea) p:not(.small)";
    assert!(b.text_of(card).await.contains(COMMENT));
    b.assert_layout_fits("/inbox").await;
    if reply {
        b.fill("section.card textarea[name=text]", "Lisbon, at low tide!")
            .await;
        b.screenshot(TEST, "inbox").await;
        b.click("section.card form[action^='/inbox/'] button[type=submit]")
            .await;
        b.wait_for_path("the inbox again", |p| p.starts_with("/inbox"))
            .await;
        assert!(b.text_of(".notice.ok").await.len() > 3);
    }
    let main = b.text_of("main").await;
    assert!(
        main.contains("You replied") && main.contains("Lisbon, at low tide!"),
        "the reply is shown under the comment: {main}"
    );
    b.assert_layout_fits("/inbox after replying").await;
    b.screenshot(TEST, "inbox-replied").await;

    // Contacts: found by search, then the contact's page with its timeline.
    b.goto(&app.url("/contacts")).await;
    b.fill("#contact-q", &FAN[..5]).await;
    b.click("form[action='/contacts'] button[type=submit]")
        .await;
    b.wait_for_path("the search", |p| p.contains("q=carol"))
        .await;
    assert!(b.text_of("#contacts").await.contains(FAN));
    b.assert_layout_fits("/contacts?q=").await;
    b.screenshot(TEST, "contacts").await;
    b.click(&format!("#contacts a[href='/contacts/{}']", w.contact_id))
        .await;
    b.wait_for_path("the contact", |p| p.starts_with("/contacts/"))
        .await;
    assert!(b.text_of("#timeline").await.contains(COMMENT));
    b.assert_layout_fits("/contacts/{id}").await;
    b.screenshot(TEST, "contact").await;

    // Media: the uploaded image listed.
    b.goto(&app.url("/media")).await;
    assert!(b.text_of("#media").await.contains("rock-pools.jpg"));
    b.assert_layout_fits("/media").await;
    b.screenshot(TEST, "media").await;

    // The endpoint: a delivery that succeeded, and its attempts.
    b.goto(&app.url(&format!("/settings/webhooks/{}", w.endpoint_id)))
        .await;
    assert!(w.hits.load(Ordering::SeqCst) > 0, "the receiver got events");
    assert!(b.text_of("#deliveries").await.contains("succeeded"));
    b.assert_layout_fits("/settings/webhooks/{id}").await;
    b.screenshot_of("#deliveries", TEST, "endpoint").await;
    assert_eq!(b.text_of(".filters a[aria-current=page]").await, "All");
    b.goto(&app.url(&format!(
        "/settings/webhooks/{}?state=succeeded",
        w.endpoint_id
    )))
    .await;
    assert_eq!(
        b.text_of(".filters a[aria-current=page]").await,
        "Delivered"
    );
    assert!(b.text_of("#deliveries").await.contains("succeeded"));
    let delivery = b
        .client
        .find(Locator::Css(
            "#deliveries a[href^='/settings/webhooks/deliveries/']",
        ))
        .await
        .unwrap()
        .attr("href")
        .await
        .unwrap()
        .unwrap();
    b.goto(&app.url(&delivery)).await;
    let attempts = b.text_of("#attempts").await;
    assert!(attempts.contains("204"), "{attempts}");
    b.assert_layout_fits("/settings/webhooks/deliveries/{id}")
        .await;
    b.screenshot_of("#attempts", TEST, "delivery").await;

    // The API reference, grouped by tag.
    b.goto(&app.url("/docs/api")).await;
    let tags = run(
        b,
        "return Array.from(document.querySelectorAll('section:has(> article.operation) > h2')).map(h => h.textContent.trim());",
    )
    .await;
    let tags = tags.as_array().unwrap();
    assert!(tags.len() >= 3, "{tags:?}");
    b.assert_layout_fits("/docs/api").await;
    b.screenshot(TEST, "api-docs").await;

    // Creators, then the Instagram account's creator: its post with the chart, its timeline.
    b.goto(&app.url("/creators")).await;
    assert!(
        run(
            b,
            "return document.querySelectorAll('#creators tbody tr').length;"
        )
        .await
        .as_u64()
            >= Some(2)
    );
    b.assert_layout_fits("/creators").await;
    b.screenshot(TEST, "creators").await;
    let creator = app.url(&format!("/creators/{}", w.creator_id));
    let deadline = Instant::now() + Duration::from_secs(75);
    loop {
        b.goto(&creator).await;
        if run(
            b,
            "return !!document.querySelector('#creator-posts svg.chart polyline');",
        )
        .await
            == json!(true)
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the chart was never drawn: {}",
            b.text_of("#creator-posts").await
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let drawn = run(
        b,
        "const r = document.querySelector('#creator-posts svg.chart').getBoundingClientRect(); return [r.width, r.height];",
    )
    .await;
    assert!(drawn[0].as_f64().unwrap() > 100.0, "{drawn}");
    assert!(b.text_of("#creator-posts").await.contains(CAPTION));
    assert!(
        run(
            b,
            "return document.querySelectorAll('#timeline li').length;"
        )
        .await
        .as_u64()
            >= Some(1)
    );
    b.assert_layout_fits("/creators/{id}").await;
    b.screenshot_of("#creator-posts", TEST, "creator").await;
}

/// A page of the UI: a name for its screenshot, its path, and the navigation entry it
/// highlights (`None`: no entry is).
type Page = (&'static str, String, Option<&'static str>);

/// Every page of the UI, signed in, over the world's data.
fn pages(w: &World) -> Vec<Page> {
    let p = |path: &str| path.to_string();
    vec![
        ("dashboard", p("/"), Some("Dashboard")),
        ("accounts", p("/accounts"), Some("Accounts")),
        (
            "account",
            format!("/accounts/{}", w.instagram_id),
            Some("Accounts"),
        ),
        ("connect-tiktok", p("/connect/tiktok"), Some("Accounts")),
        (
            "connect-instagram",
            p("/connect/instagram"),
            Some("Accounts"),
        ),
        ("compose", p("/compose"), Some("Compose")),
        ("posts", p("/posts"), Some("Posts")),
        ("post", format!("/posts/{}", w.post_id), Some("Posts")),
        (
            "post-scheduled",
            format!("/posts/{}", w.scheduled_id),
            Some("Posts"),
        ),
        ("scheduled", p("/posts/scheduled"), Some("Schedule")),
        (
            "post-new",
            format!("/posts/new?account={}", w.instagram_id),
            Some("Compose"),
        ),
        ("media", p("/media"), Some("Media")),
        ("creators", p("/creators"), Some("Creators")),
        (
            "creator",
            format!("/creators/{}", w.creator_id),
            Some("Creators"),
        ),
        ("contacts", p("/contacts"), Some("Contacts")),
        (
            "contact",
            format!("/contacts/{}", w.contact_id),
            Some("Contacts"),
        ),
        ("inbox", p("/inbox"), Some("Inbox")),
        ("jobs", p("/jobs"), Some("Jobs")),
        ("settings", p("/settings"), Some("Settings")),
        ("webhooks", p("/settings/webhooks"), Some("Webhooks")),
        (
            "endpoint",
            format!("/settings/webhooks/{}", w.endpoint_id),
            Some("Webhooks"),
        ),
        ("api-docs", p("/docs/api"), None),
        ("not-found", p("/no/such/page"), None),
    ]
}

/// Visits every page signed in: each highlights its own navigation entry and passes
/// [`page_checks`]. A full-page screenshot of each goes to `target/screenshots/every_page/`.
async fn every_page(b: &Browser, w: &World) {
    for (name, path, nav) in pages(w) {
        b.goto(&w.app.url(&path)).await;
        assert_nav(b, &path, nav).await;
        page_checks(b, &path).await;
        page_shot(b, "every_page", name).await;
    }
}

/// The navigation highlights `nav` alone (nothing when `None`), is one row at every width
/// (on a phone it scrolls sideways instead of pushing the page down by three rows), and its
/// highlighted entry is in view.
async fn assert_nav(b: &Browser, path: &str, nav: Option<&str>) {
    let current = run(
        b,
        "return Array.from(document.querySelectorAll('.nav a[aria-current=page]')).map(a => a.textContent.trim());",
    )
    .await;
    let expected: Vec<&str> = nav.into_iter().collect();
    assert_eq!(
        current,
        json!(expected),
        "{path}: the navigation highlights {current}"
    );
    let layout = run(
        b,
        "const nav = document.querySelector('.nav'); \
         if (!nav) return null; \
         const links = Array.from(nav.querySelectorAll('a')); \
         const rows = new Set(links.map(a => Math.round(a.getBoundingClientRect().top))).size; \
         const box = nav.getBoundingClientRect(); \
         const cur = nav.querySelector('a[aria-current=page]'); \
         let hidden = null; \
         if (cur) { const r = cur.getBoundingClientRect(); \
           if (r.left < box.left - 1 || r.right > box.right + 1) hidden = cur.textContent.trim(); } \
         return {rows, hidden};",
    )
    .await;
    if layout.is_null() {
        // A page without the navigation (one that does not exist) highlights nothing.
        assert!(nav.is_none(), "{path}: no navigation");
        return;
    }
    assert_eq!(
        layout,
        json!({"rows": 1, "hidden": null}),
        "{path}: the navigation is not one row with its current entry in view"
    );
}

/// The sign-in page and a page that does not exist, signed out.
async fn signed_out_pages(b: &Browser, app: &TestApp) {
    for (name, path, heading) in [
        ("signed-out-login", "/login", "Sign in"),
        ("signed-out-not-found", "/no/such/page", "Not found"),
    ] {
        b.goto(&app.url(path)).await;
        assert_eq!(b.text_of("h1").await, heading, "{path}");
        page_checks(b, path).await;
        page_shot(b, "every_page", name).await;
    }
}

/// A new workspace, nothing in it yet: every page says so in words and offers the way
/// forward, at phone and desktop width, and passes the same checks as the full pages.
#[tokio::test]
async fn empty_pages_at_phone_and_desktop() {
    let app = spawn_app(Backend::Sqlite).await;
    app.create_user("ada@example.com", "acme").await;
    let empty: [(&str, &str, &str, &str); 12] = [
        ("dashboard", "/", "Dashboard", "Nothing connected yet"),
        (
            "accounts",
            "/accounts",
            "Accounts",
            "No account is connected to this workspace yet.",
        ),
        (
            "compose",
            "/compose",
            "Compose",
            "No TikTok or Instagram account is connected yet.",
        ),
        ("posts", "/posts", "Posts", "No posts yet."),
        (
            "scheduled",
            "/posts/scheduled",
            "Schedule",
            "Nothing is scheduled.",
        ),
        ("media", "/media", "Media", "No media yet."),
        ("creators", "/creators", "Creators", "No creators yet."),
        ("contacts", "/contacts", "Contacts", "No contacts yet."),
        ("inbox", "/inbox", "Inbox", "Nothing here yet."),
        (
            "jobs",
            "/jobs",
            "Jobs",
            "No background work in this workspace yet.",
        ),
        ("settings", "/settings", "Settings", "No API keys yet."),
        (
            "webhooks",
            "/settings/webhooks",
            "Webhooks",
            "No endpoints yet.",
        ),
    ];
    for (width, height) in [(390, 844), (1280, 800)] {
        let b = Browser::start(width, height).await;
        sign_in(&b, &app).await;
        for (name, path, nav, says) in empty {
            b.goto(&app.url(path)).await;
            let main = b.text_of("main").await;
            assert!(main.contains(says), "{path} at {width} px: {main}");
            assert_nav(&b, path, Some(nav)).await;
            page_checks(&b, path).await;
            page_shot(&b, "empty_pages", name).await;
        }
        focus_is_visible(&b, &app.url("/settings")).await;
        // The media filter shown is marked, and its empty state names it.
        b.goto(&app.url("/media?kind=video")).await;
        assert_eq!(b.text_of(".filters a[aria-current=page]").await, "Videos");
        assert!(
            b.text_of("main")
                .await
                .contains("No media of this kind yet.")
        );
        b.close().await;
    }
}

/// What every page must get right at any width, beyond [`Browser::assert_layout_fits`]:
/// - one `h1`;
/// - inline code breaks between words, and inside a token only when it is longer than the
///   line (`Authorization` split mid-word on a phone is hard to read); only a secret shown
///   once may break anywhere;
/// - on a phone, buttons, fields and the file picker are at least 44 px tall (a finger's
///   width), and every table either stacks into cards that fit or scrolls inside its own box;
/// - account names line up from card to card, whether the account has a picture or an initial.
async fn page_checks(b: &Browser, path: &str) {
    b.assert_layout_fits(path).await;
    let report = run(
        b,
        r#"
        const phone = window.innerWidth < 600;
        const h1 = document.querySelectorAll("h1").length;
        const brokenCode = [];
        for (const el of document.querySelectorAll("code")) {
          if (el.closest(".secret")) continue;
          if (getComputedStyle(el).wordBreak === "break-all") brokenCode.push(el.textContent.trim().slice(0, 40));
        }
        const small = [];
        const fields = 'button, .button, select, input[type=file], input[type=text], input[type=email], '
          + 'input[type=password], input[type=url], input[type=number], input[type=search], input[type=datetime-local]';
        for (const el of document.querySelectorAll(fields)) {
          const r = el.getBoundingClientRect();
          if (phone && r.height > 0 && r.height < 43.5) small.push((el.id || el.name || el.textContent.trim()) + " " + Math.round(r.height));
        }
        const tables = [];
        for (const t of document.querySelectorAll("main table")) {
          if (!phone || t.getBoundingClientRect().width === 0) continue;
          const wrap = t.closest(".table-wrap");
          const stacked = t.classList.contains("stack") || t.classList.contains("pairs");
          if (!stacked && !wrap) tables.push((t.id || t.className || "table") + ": neither stacked nor in a scroll box");
          if (stacked && wrap && wrap.scrollWidth > wrap.clientWidth + 1) tables.push((t.id || t.className) + ": stacked but " + wrap.scrollWidth + " px wide");
        }
        const misaligned = [];
        for (const [sel, box] of [[".account-card .who-name", ".account-card"], [".target-head .who-name", "fieldset.target"]]) {
          const lefts = new Set();
          for (const el of document.querySelectorAll(sel)) {
            lefts.add(Math.round(el.getBoundingClientRect().left - el.closest(box).getBoundingClientRect().left));
          }
          if (lefts.size > 1) misaligned.push(sel + " starts at " + Array.from(lefts).join(", "));
        }
        // Times a person reads are written for people, never as a bare RFC 3339 stamp
        // (machine text, in code or pre blocks, may hold one).
        const stamps = [];
        const walker = document.createTreeWalker(document.querySelector("main") || document.body, NodeFilter.SHOW_TEXT);
        for (let node = walker.nextNode(); node; node = walker.nextNode()) {
          if (node.parentElement.closest("code, pre, script, textarea, input")) continue;
          const m = /\d{4}-\d\d-\d\dT\d\d:\d\d/.exec(node.textContent);
          if (m) stamps.push(node.textContent.trim().slice(0, 80));
        }
        return {h1, brokenCode, small, tables, misaligned, stamps};
        "#,
    )
    .await;
    let width = b.width;
    assert_eq!(report["h1"], json!(1), "{path} at {width} px: {report}");
    assert_eq!(
        report["brokenCode"],
        json!([]),
        "{path} at {width} px breaks inline code mid-word"
    );
    assert_eq!(
        report["small"],
        json!([]),
        "{path} at {width} px has controls under 44 px"
    );
    assert_eq!(
        report["misaligned"],
        json!([]),
        "{path} at {width} px: account names do not line up (a picture and an initial of different sizes)"
    );
    assert_eq!(
        report["tables"],
        json!([]),
        "{path} at {width} px has tables a phone cannot read"
    );
    assert_eq!(
        report["stamps"],
        json!([]),
        "{path} at {width} px shows a bare timestamp"
    );
}

/// A screenshot of the whole page (the window made as tall as the page, then put back) as
/// `target/screenshots/<test>/<name>-<width>.png`.
async fn page_shot(b: &Browser, test: &str, name: &str) {
    let (w, h) = b.client.get_window_size().await.unwrap();
    let tall = run(b, "return document.documentElement.scrollHeight;")
        .await
        .as_u64()
        .unwrap()
        .clamp(h, 8000);
    b.client
        .set_window_size(w as u32, tall as u32)
        .await
        .unwrap();
    b.screenshot(test, name).await;
    b.client.set_window_size(w as u32, h as u32).await.unwrap();
}

/// Tabbing through the first stops of a page (the top bar's links and button, then the form's
/// fields, box and button) shows the same 2 px solid ring on every one, not the browser's thin
/// default that disappears on the dark top bar.
async fn focus_is_visible(b: &Browser, url: &str) {
    b.goto(url).await;
    const TAB: &str = "\u{e004}";
    b.client
        .find(Locator::Css("body"))
        .await
        .unwrap()
        .send_keys(TAB)
        .await
        .unwrap();
    for _ in 0..16 {
        let ring = run(
            b,
            "const e = document.activeElement; const s = getComputedStyle(e); \
             return [e.tagName.toLowerCase() + ' ' + (e.id || e.textContent.trim().slice(0, 30)), s.outlineStyle, s.outlineWidth];",
        )
        .await;
        assert!(
            ring[1] == "solid" && ring[2] == "2px",
            "keyboard focus on {} has no visible ring at {} px: {ring}",
            ring[0],
            b.width
        );
        b.client
            .active_element()
            .await
            .unwrap()
            .send_keys(TAB)
            .await
            .unwrap();
    }
}
