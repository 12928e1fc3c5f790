//! The composer's edit mode in a real browser (SQLite; 390×844 and 1280×800): a post scheduled
//! to two TikTok accounts, one of which has started sending, opened from its page with "Edit"
//! (the composer filled with the post, the target already sending shown read-only), its
//! caption changed and saved: the target not yet sent takes the change, the one sending keeps
//! what it had, and the post's History says who changed what. Screenshots under
//! `target/screenshots/post_edit_<width>/`.

use fantoccini::Locator;
use serde_json::{Value, json};
use tidepost_store::posts;
use tidepost_store::testing::Backend;

use crate::browser::Browser;
use crate::support::*;

const CAPTION: &str = "Low tide at dawn";
const EDITED: &str = "Low tide at dawn, with the herons";

#[tokio::test]
async fn edit_a_scheduled_post_at_390() {
    edit_a_scheduled_post(390, 844).await;
}

#[tokio::test]
async fn edit_a_scheduled_post_at_1280() {
    edit_a_scheduled_post(1280, 800).await;
}

/// The caption the publish job of a target would send.
async fn sent_caption(app: &TestApp, ws: &str, target_id: &str) -> String {
    let target = posts::target(&app.db, ws, target_id)
        .await
        .unwrap()
        .unwrap();
    let post = posts::get(&app.db, ws, &target.post_id)
        .await
        .unwrap()
        .unwrap();
    serde_json::from_str::<tidepost_app::tiktok::PostOptions>(target.options_or(&post))
        .unwrap()
        .caption
}

async fn edit_a_scheduled_post(width: u32, height: u32) {
    let test = format!("post_edit_{width}");
    let app = spawn_app_with(
        Backend::Sqlite,
        Options {
            emulator: true,
            ..Options::default()
        },
    )
    .await;
    let (_, workspace) = app.create_user("ada@example.com", "acme").await;
    let ws = workspace.id.clone();
    let key = app.api_key(&ws, "setup", &["api"]).await;
    let first = connect_tiktok_via_api(&app, &key, "tidepost.sandbox").await;
    let second = connect_new_creator(
        &app,
        &key,
        json!({"username": "heron.watch", "display_name": "Heron Watch"}),
    )
    .await;
    let fixtures = tempfile::tempdir().unwrap();
    let file = crate::browser_compose::video(fixtures.path());
    let media: Value = bare_client()
        .post(app.url("/api/v1/media"))
        .bearer_auth(&key)
        .multipart(
            reqwest::multipart::Form::new().part(
                "file",
                reqwest::multipart::Part::bytes(std::fs::read(&file).unwrap())
                    .file_name("dawn.mp4")
                    .mime_str("video/mp4")
                    .unwrap(),
            ),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let at = tidepost_domain::now_ms() / 60_000 * 60_000 + 3 * 3_600_000;
    let target =
        |account: &str| json!({"account_id": account, "tiktok": {"privacy_level": "SELF_ONLY"}});
    let made = bare_client()
        .post(app.url("/api/v1/posts"))
        .bearer_auth(&key)
        .json(&json!({
            "caption": CAPTION,
            "media": [{"media_id": media["id"]}],
            "targets": [target(&first), target(&second)],
            "scheduled_at": tidepost_domain::time::rfc3339(at),
            "time_zone": "Europe/Paris",
        }))
        .send()
        .await
        .unwrap();
    let status = made.status();
    let made: Value = made.json().await.unwrap();
    assert_eq!(status, reqwest::StatusCode::ACCEPTED, "{made:#}");
    let id = made["id"].as_str().unwrap().to_string();
    let target_on = |account: &str| {
        made["targets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["account_id"] == account)
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (open, sending) = (target_on(&first), target_on(&second));
    // The second account's job has started sending.
    assert!(
        posts::set_state(
            &app.db,
            &ws,
            &sending,
            "scheduled",
            "uploading",
            false,
            tidepost_domain::now_ms()
        )
        .await
        .unwrap()
    );

    let b = Browser::start(width, height).await;
    b.goto(&app.url("/login")).await;
    b.fill("#email", "ada@example.com").await;
    b.fill("#password", PASSWORD).await;
    b.click("form[action='/login'] button[type=submit]").await;
    b.wait_for_path("the dashboard", |p| p == "/").await;

    // The post's page offers Edit; the composer opens with the post.
    b.goto(&app.url(&format!("/posts/{id}"))).await;
    b.click("#edit-post").await;
    let edit_path = b
        .wait_for_path("the composer's edit mode", |p| {
            p.starts_with("/compose?post=")
        })
        .await;
    assert!(b.text_of("h1").await.contains("Edit the post"));
    let caption = b
        .client
        .find(Locator::Css("#caption"))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap()
        .unwrap_or_default();
    assert_eq!(caption, CAPTION);
    let ticked = |account: String| {
        let client = b.client.clone();
        async move {
            client
                .execute(
                    &format!(
                        "return document.querySelector(\"fieldset[data-target='{account}'] input[name=targets]\").checked;"
                    ),
                    vec![],
                )
                .await
                .unwrap()
        }
    };
    assert_eq!(ticked(first.clone()).await, Value::Bool(true));
    assert_eq!(
        ticked(second.clone()).await,
        Value::Bool(false),
        "the target already sending is not in the form"
    );
    let sent = b.text_of("#sent-targets").await;
    assert!(sent.contains("uploading"), "{sent}");
    b.assert_layout_fits(&edit_path).await;
    b.screenshot(&test, "01-edit-mode").await;

    // Saved: the target not yet sent takes the new caption, the one sending keeps its own.
    b.fill("#caption", EDITED).await;
    b.click("#compose-submit").await;
    let post_path = b
        .wait_for_path("the post page", |p| p.starts_with("/posts/"))
        .await;
    assert_eq!(post_path, format!("/posts/{id}"));
    assert_eq!(sent_caption(&app, &ws, &open).await, EDITED);
    assert_eq!(sent_caption(&app, &ws, &sending).await, CAPTION);
    let shown: Value = app
        .api_get(&key, &format!("/api/v1/posts/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(shown["version"], 2, "{shown:#}");
    assert_eq!(
        shown["scheduled_at"],
        tidepost_domain::time::rfc3339(at),
        "the time is kept"
    );

    // The History says who changed what.
    let history = b.text_of("#history").await;
    assert!(history.contains("edited by ada@example.com"), "{history}");
    assert!(history.contains(EDITED), "{history}");
    assert!(history.contains("created by API key"), "{history}");
    b.assert_layout_fits(&post_path).await;
    b.screenshot_of("#history", &test, "02-history").await;
    b.screenshot(&test, "03-post").await;
    b.close().await;
}
