//! Drafts in a real browser (SQLite; 390×844 and 1280×800): an unfinished post saved from the
//! composer with "Save draft" (the page's own checks stay out of the way), found on `/drafts`,
//! opened again with what was typed, finished and published from there as one post, after
//! which the draft leaves the list. Screenshots under `target/screenshots/drafts_<width>/`.

use fantoccini::Locator;
use serde_json::Value;
use tidepost_store::testing::Backend;

use crate::browser::Browser;
use crate::support::*;

const CAPTION: &str = "Spring tide, to finish later";

#[tokio::test]
async fn save_reopen_and_publish_a_draft_at_390() {
    save_reopen_and_publish(390, 844).await;
}

#[tokio::test]
async fn save_reopen_and_publish_a_draft_at_1280() {
    save_reopen_and_publish(1280, 800).await;
}

async fn save_reopen_and_publish(width: u32, height: u32) {
    let test = format!("drafts_{width}");
    let app = spawn_app_with(
        Backend::Sqlite,
        Options {
            emulator: true,
            ..Options::default()
        },
    )
    .await;
    let (_, workspace) = app.create_user("ada@example.com", "acme").await;
    let key = app.api_key(&workspace.id, "setup", &["api"]).await;
    let account = connect_tiktok_via_api(&app, &key, "tidepost.sandbox").await;
    let fixtures = tempfile::tempdir().unwrap();
    let file = crate::browser_compose::video(fixtures.path());
    let media: Value = bare_client()
        .post(app.url("/api/v1/media"))
        .bearer_auth(&key)
        .multipart(
            reqwest::multipart::Form::new().part(
                "file",
                reqwest::multipart::Part::bytes(std::fs::read(&file).unwrap())
                    .file_name("spring.mp4")
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
    let media_id = media["id"].as_str().unwrap().to_string();

    let b = Browser::start(width, height).await;
    b.goto(&app.url("/login")).await;
    b.fill("#email", "ada@example.com").await;
    b.fill("#password", PASSWORD).await;
    b.click("form[action='/login'] button[type=submit]").await;
    b.wait_for_path("the dashboard", |p| p == "/").await;

    // Unfinished (no media, no privacy): the composer would refuse to publish, not to save.
    b.goto(&app.url("/compose")).await;
    b.click(&format!(
        "fieldset[data-target='{account}'] input[name=targets]"
    ))
    .await;
    b.fill("#caption", CAPTION).await;
    b.click("#compose-save-draft").await;
    let reopened = b
        .wait_for_path("the saved draft", |p| p.starts_with("/compose?draft="))
        .await;
    assert!(b.text_of("#draft-saved").await.contains("Draft saved"));
    assert!(b.text_of("h1").await.contains("Edit a draft"));
    b.assert_layout_fits(&reopened).await;
    b.screenshot(&test, "01-draft-saved").await;
    let posts: Value = app
        .api_get(&key, "/api/v1/posts")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        posts["data"].as_array().unwrap().len(),
        0,
        "a draft is no post"
    );

    // Listed on /drafts, and opened again from there as it was typed.
    b.goto(&app.url("/drafts")).await;
    let list = b.text_of("main").await;
    assert!(list.contains(CAPTION), "{list}");
    assert!(list.contains("When published"), "{list}");
    b.assert_layout_fits("/drafts").await;
    b.screenshot(&test, "02-drafts").await;
    b.click("ul.drafts li a").await;
    b.wait_for_path("the draft in the composer", |p| {
        p.starts_with("/compose?draft=")
    })
    .await;
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
    let picked = b
        .client
        .execute(
            &format!(
                "return document.querySelector(\"fieldset[data-target='{account}'] input[name=targets]\").checked;"
            ),
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(picked, Value::Bool(true), "the account stays picked");

    // Finished and published: one post, the draft gone from the list.
    b.click(&format!("#media-picker input[value='{media_id}']"))
        .await;
    b.client
        .find(Locator::Css(&format!("#privacy-{account}")))
        .await
        .unwrap()
        .select_by_value("SELF_ONLY")
        .await
        .unwrap();
    b.screenshot(&test, "03-finished").await;
    b.click("#compose-submit").await;
    let post_path = b
        .wait_for_path("the post page", |p| p.starts_with("/posts/"))
        .await;
    let posts: Value = app
        .api_get(&key, "/api/v1/posts")
        .await
        .json()
        .await
        .unwrap();
    let data = posts["data"].as_array().unwrap();
    assert_eq!(data.len(), 1, "{posts}");
    assert_eq!(data[0]["caption"], CAPTION);
    assert_eq!(
        format!("/posts/{}", data[0]["id"].as_str().unwrap()),
        post_path
    );
    b.goto(&app.url("/drafts")).await;
    assert!(b.text_of("main").await.contains("No drafts"));
    b.screenshot(&test, "04-no-drafts").await;
    b.close().await;
}
