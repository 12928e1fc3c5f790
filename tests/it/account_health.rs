//! The class "an account's health that misleads": an account its platform says cannot post
//! now (a TikTok creator whose `creator_info` is refused — at its daily cap, banned —, an
//! Instagram account whose publishing limit is used up) shows "cannot post" with the reason and
//! no New post button on every page that shows its card (/accounts, its own page, the
//! dashboard, its platform's connect page), and `can_post: false` with `posting_block` in the API's account; once the block
//! lifts it is healthy again everywhere. Over HTTP on both backends, and in Chromium at phone and
//! desktop width (screenshots under `target/screenshots/account_health/`).

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::browser::Browser;
use crate::support::*;

both_backends!(a_blocked_account_says_it_cannot_post_everywhere);

const TIKTOK_REASON: &str = "TikTok does not let this creator post now";
const INSTAGRAM_REASON: &str = "publishing limit is reached";

struct World {
    app: TestApp,
    me: SignedIn,
    key: String,
    tiktok: String,
    instagram: String,
}

impl World {
    async fn start(backend: Backend) -> World {
        let app = spawn_app_with(backend, Options::emulated()).await;
        let me = app.signed_in("health").await;
        let key = app.api_key(&me.workspace.id, "api", &["api"]).await;
        let tiktok = connect_new_creator(
            &app,
            &key,
            json!({"username": "health.capped", "display_name": "Capped Cleo"}),
        )
        .await;
        let instagram = connect_instagram_via_http(&app, &me).await;
        World {
            app,
            me,
            key,
            tiktok,
            instagram,
        }
    }

    /// TikTok's daily cap of direct posts per creator (0: every `creator_info` says the cap is
    /// reached).
    async fn tiktok_cap(&self, cap: u32) {
        set_emulator(&self.app, "tiktok", json!({"direct_post_daily_cap": cap})).await;
    }

    /// Instagram's publishing limit per 24 hours (0: used up).
    async fn instagram_limit(&self, limit: u32) {
        set_emulator(&self.app, "meta", json!({"publishing_limit": limit})).await;
    }

    /// Makes the account's last publishing-limit reading older than a page's look-again time,
    /// as if a few minutes had passed.
    async fn age_reading(&self, id: &str) {
        use tidepost_store::accounts;
        let ws = &self.me.workspace.id;
        let account = accounts::get(&self.app.db, ws, id).await.unwrap().unwrap();
        let mut details: Value = serde_json::from_str(&account.details).unwrap();
        let reading = &mut details[tidepost_app::instagram::limits::PUBLISHING_LIMIT_DETAIL];
        assert!(reading.is_object(), "no reading kept: {details}");
        reading["checked_at"] = json!(tidepost_domain::now_ms() - 5 * 60_000);
        accounts::set_details(&self.app.db, ws, id, &details.to_string())
            .await
            .unwrap();
    }

    async fn api_account(&self, id: &str) -> Value {
        let answer = self
            .app
            .api_get(&self.key, &format!("/api/v1/accounts/{id}"))
            .await;
        assert_eq!(answer.status(), StatusCode::OK);
        answer.json().await.unwrap()
    }

    /// Every page that shows the account's card: (path, the card's HTML, the whole page).
    async fn cards(&self, id: &str) -> Vec<(String, String, String)> {
        let mut out = Vec::new();
        let connect = if id == self.tiktok {
            "/connect/tiktok"
        } else {
            "/connect/instagram"
        };
        for path in [
            "/accounts".to_string(),
            format!("/accounts/{id}"),
            "/".into(),
            connect.into(),
        ] {
            let answer = self
                .me
                .client
                .get(self.app.url(&path))
                .send()
                .await
                .unwrap();
            assert_eq!(answer.status(), StatusCode::OK, "{path}");
            let html = answer.text().await.unwrap();
            let card = card_of(&html, id)
                .unwrap_or_else(|| panic!("{path} shows no card of {id}: {html}"))
                .to_string();
            out.push((path, card, html));
        }
        out
    }

    async fn assert_blocked(&self, id: &str, reason: &str) {
        for (path, card, html) in self.cards(id).await {
            assert!(
                card.contains(">cannot post</span>"),
                "{path}: the card of a blocked account does not say it cannot post: {card}"
            );
            assert!(
                card.contains("data-posting-block") && card.contains(reason),
                "{path}: the card does not give the reason ({reason}): {card}"
            );
            assert!(
                !card.contains("New post") && !html.contains(&format!("/compose?account={id}")),
                "{path}: a New post button for an account that cannot post: {card}"
            );
            assert!(!card.contains(">healthy<"), "{path}: {card}");
        }
        let account = self.api_account(id).await;
        assert_eq!(account["can_post"], false, "{account}");
        assert!(
            account["posting_block"]
                .as_str()
                .is_some_and(|b| b.contains(reason)),
            "{account}"
        );
        assert_eq!(account["reconnect_required"], false, "{account}");
    }

    async fn assert_healthy(&self, id: &str) {
        for (path, card, _) in self.cards(id).await {
            assert!(card.contains(">healthy</span>"), "{path}: {card}");
            assert!(!card.contains("data-posting-block"), "{path}: {card}");
            // The cards with the account's figures (its page, the dashboard) offer New post.
            if path == "/" || path.starts_with("/accounts/") {
                assert!(
                    card.contains(&format!("href=\"/compose?account={id}\"")),
                    "{path}: no New post button for a healthy account: {card}"
                );
            }
        }
        let account = self.api_account(id).await;
        assert_eq!(account["can_post"], true, "{account}");
        assert_eq!(account["posting_block"], Value::Null, "{account}");
    }

    /// A direct TikTok post of a small video through the API.
    async fn post_tiktok(&self, caption: &str) -> reqwest::Response {
        post_tiktok_video(&self.app, &self.key, &self.tiktok, caption, 16 * 1024).await
    }
}

/// The HTML of the account card of `id` in `html`.
fn card_of<'a>(html: &'a str, id: &str) -> Option<&'a str> {
    let start = html.find(&format!("data-account=\"{id}\""))?;
    let start = html[..start].rfind("<article")?;
    let end = start + html[start..].find("</article>")?;
    Some(&html[start..end])
}

async fn a_blocked_account_says_it_cannot_post_everywhere(backend: Backend) {
    let w = World::start(backend).await;

    // The creator reaches TikTok's daily cap. An API client that only uses the API learns it
    // from a refused post: the account then says why it cannot post. (Before any page is
    // shown: a page reads the creator's options, and within a minute of that good reading a
    // post is taken on it and refused by TikTok only when sent — `provider_trouble.rs`.)
    w.tiktok_cap(0).await;
    let refused = w.post_tiktok("one too many").await;
    let status = refused.status();
    let body = refused.text().await.unwrap();
    assert!(!status.is_success(), "a post of a capped creator: {status}");
    assert!(
        body.contains("daily limit"),
        "the refusal gives TikTok's reason: {status} {body}"
    );
    let account = w.api_account(&w.tiktok).await;
    assert_eq!(account["can_post"], false, "{account}");
    w.assert_blocked(&w.tiktok, TIKTOK_REASON).await;
    w.assert_blocked(&w.tiktok, "daily limit").await;

    w.assert_healthy(&w.instagram).await;
    // Instagram's publishing limit used up: once the last reading is a minute old, the pages
    // read it again and say so.
    w.instagram_limit(0).await;
    w.age_reading(&w.instagram).await;
    w.assert_blocked(&w.instagram, INSTAGRAM_REASON).await;
    // The other account is not touched by either.
    let html = w.app.page_text(&w.me.client, "/accounts").await;
    assert_eq!(html.matches(">cannot post</span>").count(), 2, "{html}");

    // The blocks lift: healthy again, with New post.
    w.tiktok_cap(15).await;
    w.instagram_limit(100).await;
    w.assert_healthy(&w.tiktok).await;
    w.assert_healthy(&w.instagram).await;
}

/// The same in Chromium at 390 and 1280 px: the badge, the reason, no New post on the card,
/// the layout fits, and a screenshot of each page.
#[tokio::test]
async fn a_blocked_account_in_the_browser_at_phone_and_desktop() {
    let w = World::start(Backend::Sqlite).await;
    w.tiktok_cap(0).await;
    w.instagram_limit(0).await;
    let pages = [
        ("accounts", "/accounts".to_string()),
        ("tiktok-account", format!("/accounts/{}", w.tiktok)),
        ("instagram-account", format!("/accounts/{}", w.instagram)),
        ("dashboard", "/".to_string()),
    ];
    for (width, height) in [(390, 844), (1280, 800)] {
        let b = Browser::start(width, height).await;
        b.goto(&w.app.url("/login")).await;
        b.fill("#email", "owner@health.example").await;
        b.fill("#password", PASSWORD).await;
        b.click("form[action='/login'] button[type=submit]").await;
        b.wait_for_path("the dashboard", |p| p == "/").await;
        for (name, path) in &pages {
            b.goto(&w.app.url(path)).await;
            b.text_of("h1").await;
            for (id, reason) in [(&w.tiktok, TIKTOK_REASON), (&w.instagram, INSTAGRAM_REASON)] {
                let shown = path == "/accounts" || path == "/" || path.ends_with(id.as_str());
                if !shown {
                    continue;
                }
                let card = format!("article[data-account='{id}']");
                assert_eq!(
                    b.text_of(&format!("{card} .badge")).await,
                    "cannot post",
                    "{path} at {width} px"
                );
                let block = b.text_of(&format!("{card} [data-posting-block]")).await;
                assert!(block.contains(reason), "{path} at {width} px: {block}");
                let buttons: Value = b
                    .client
                    .execute(
                        "return Array.from(document.querySelectorAll(arguments[0])).filter(a => a.getBoundingClientRect().height > 0).length;",
                        vec![json!(format!("a[href='/compose?account={id}']"))],
                    )
                    .await
                    .unwrap();
                assert_eq!(buttons, json!(0), "{path} at {width} px: New post shown");
            }
            b.assert_layout_fits(path).await;
            let shown = if path.contains(w.instagram.as_str()) {
                &w.instagram
            } else {
                &w.tiktok
            };
            b.screenshot_of(
                &format!("article[data-account='{shown}']"),
                "account_health",
                name,
            )
            .await;
        }
        b.close().await;
    }

    // Lifted: the dashboard shows both healthy, each with its New post button.
    w.tiktok_cap(15).await;
    w.instagram_limit(100).await;
    let b = Browser::start(1280, 800).await;
    b.goto(&w.app.url("/login")).await;
    b.fill("#email", "owner@health.example").await;
    b.fill("#password", PASSWORD).await;
    b.click("form[action='/login'] button[type=submit]").await;
    b.wait_for_path("the dashboard", |p| p == "/").await;
    b.goto(&w.app.url("/")).await;
    for id in [&w.tiktok, &w.instagram] {
        assert_eq!(
            b.text_of(&format!("article[data-account='{id}'] .badge"))
                .await,
            "healthy"
        );
        b.text_of(&format!(
            "article[data-account='{id}'] a[href='/compose?account={id}']"
        ))
        .await;
    }
    b.screenshot("account_health", "accounts-lifted").await;
    b.close().await;
}
