//! The Instagram options from the composer, in a real browser at 390 px: each option shows
//! only for the media types that take it (alt text for an image, the reel's cover frame,
//! audio and trial for a reel, collaborators, tags, location and the first comment for all
//! but stories), and a post made there with collaborators, a person tagged, alt text, a
//! location and a first comment reaches the emulator's record with each of them, the comment
//! under the published media and on the post page. Screenshots under
//! `target/screenshots/<test>/`.

use std::time::{Duration, Instant};

use fantoccini::Locator;
use serde_json::{Value, json};
use tidepost_emulator::meta::publishing::PLACES;

use crate::browser::Browser;
use crate::instagram_options::scene;
use crate::support::*;

both_backends!(options_from_the_composer_reach_the_emulator);

async fn run(b: &Browser, script: &str) -> Value {
    b.client.execute(script, vec![]).await.unwrap()
}

async fn wait_for(b: &Browser, what: &str, script: &str, want: Value) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = run(b, script).await;
        if got == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "never saw {what}: {got}; page: {}",
            b.text_of("main").await
        );
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

async fn options_from_the_composer_reach_the_emulator(backend: Backend) {
    let test = match backend {
        Backend::Sqlite => "instagram_options_composer_sqlite",
        Backend::Postgres => "instagram_options_composer_postgres",
    };
    let s = scene(backend).await;
    let b = Browser::start(390, 844).await;
    b.goto(&s.app.url("/login")).await;
    b.fill("#email", "owner@igopts.example").await;
    b.fill("#password", PASSWORD).await;
    b.click("form[action='/login'] button[type=submit]").await;
    b.wait_for_path("signed in", |p| !p.starts_with("/login"))
        .await;

    b.goto(&s.app.url(&format!("/compose?account={}", s.account)))
        .await;
    let panel = format!("fieldset[data-target='{}']", s.account);
    let visible = format!(
        "const fs = document.querySelector(\"{panel}\"); \
         const shown = r => {{ const el = fs.querySelector('[data-role=' + r + ']'); return !!el && !el.closest('[hidden]'); }}; \
         return ['ig-alt', 'ig-thumb', 'ig-audio', 'ig-trial', 'ig-collaborators', 'ig-tags', 'ig-location', 'ig-comment'].map(shown);"
    );
    let choose_type = |kind: &'static str| {
        let panel = panel.clone();
        let b = &b;
        async move {
            b.client
                .execute(
                    "const s = document.querySelector(arguments[0]); s.value = arguments[1]; \
                     s.dispatchEvent(new Event('change', {bubbles: true}));",
                    vec![json!(format!("{panel} [data-role=ig-type]")), json!(kind)],
                )
                .await
                .unwrap();
        }
    };
    // Per media type: alt, thumb, audio, trial, collaborators, tags, location, comment.
    choose_type("reel").await;
    assert_eq!(
        run(&b, &visible).await,
        json!([false, true, true, true, true, true, true, true]),
        "a reel"
    );
    b.screenshot_of(&panel, test, "01-panel-reel").await;
    choose_type("story").await;
    assert_eq!(
        run(&b, &visible).await,
        json!([false, false, false, false, false, false, false, false]),
        "a story"
    );
    choose_type("image").await;
    assert_eq!(
        run(&b, &visible).await,
        json!([true, false, false, false, true, true, true, true]),
        "an image"
    );

    // An image with every option it takes.
    let files = tempfile::tempdir().unwrap();
    let path = files.path().join("square.jpg");
    std::fs::write(&path, tidepost_app::media::testing::jpeg(1080, 1080)).unwrap();
    b.client
        .find(Locator::Css("#compose-file"))
        .await
        .unwrap()
        .send_keys(&path.display().to_string())
        .await
        .unwrap();
    wait_for(
        &b,
        "the image uploaded and picked",
        "return document.querySelectorAll('#media-picker input[name=media]:checked').length;",
        json!(1),
    )
    .await;
    b.fill("#caption", "Low tide").await;
    let field = |role: &str| format!("{panel} [data-role={role}]");
    b.fill(&field("ig-collaborators"), "@ana.tide, bo_sea")
        .await;
    b.fill(&field("ig-tags"), "ana.tide 0.25 0.75").await;
    b.fill(&field("ig-alt"), "A grey square at low tide").await;
    b.fill(&field("ig-location"), PLACES[0].0).await;
    b.fill(&field("ig-comment"), "First! #tidepost").await;
    wait_for(
        &b,
        "the post ready",
        "return document.getElementById('validation').textContent.startsWith('Ready for 1');",
        json!(true),
    )
    .await;
    b.assert_layout_fits("/compose with the Instagram options")
        .await;
    b.screenshot_of(&panel, test, "02-panel-image-filled").await;
    b.click("#compose-submit").await;
    let post_path = b
        .wait_for_path("the post page", |p| {
            p.starts_with("/posts/") && !p.starts_with("/posts/new")
        })
        .await;
    let post_id = post_path.trim_start_matches("/posts/").to_string();
    let post = s.settled(&post_id).await;
    assert_eq!(post["targets"][0]["state"], "published", "{post:#}");

    // What the emulator was sent.
    let id = post["targets"][0]["publish_id"].as_str().unwrap();
    let all = s.emulator("/_emulator/meta/media").await;
    let container = all["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .cloned()
        .unwrap();
    let params = &container["params"];
    let parsed =
        |name: &str| serde_json::from_str::<Value>(params[name].as_str().unwrap()).unwrap();
    assert_eq!(
        parsed("collaborators"),
        json!(["ana.tide", "bo_sea"]),
        "{container:#}"
    );
    assert_eq!(
        parsed("user_tags"),
        json!([{"username": "ana.tide", "x": 0.25, "y": 0.75}])
    );
    assert_eq!(params["alt_text"], "A grey square at low tide");
    assert_eq!(params["location_id"], PLACES[0].0);

    // The first comment, under the media and on the post page.
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        b.goto(&s.app.url(&post_path)).await;
        let text = b.text_of(".target").await;
        if text.contains("First comment: posted") {
            break;
        }
        assert!(Instant::now() < deadline, "the comment is shown: {text}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    b.screenshot(test, "03-post-with-first-comment").await;
    let media_id = post["targets"][0]["instagram"]["media_id"]
        .as_str()
        .unwrap();
    let all = s.emulator("/_emulator/meta/media").await;
    let media = all["media"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == media_id)
        .cloned()
        .unwrap();
    let texts: Vec<&str> = media["comments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["First! #tidepost"], "{media:#}");
    b.close().await;
}
