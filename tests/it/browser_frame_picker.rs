//! The frame picker in the composer, in a real browser at 390 and 1280 px: with a video from
//! the library picked, the TikTok panel's cover frame and an Instagram reel's cover frame each
//! show a slider over the video's probed length and the frame the server renders; moving a
//! slider changes the picture (its pixels, read back from the page) and writes the field, and
//! the post made there reaches the emulators' records with `video_cover_timestamp_ms` (TikTok)
//! and `thumb_offset` (Meta) as chosen. Before any move nothing is chosen (both fields empty).
//! The previews show the chosen frames cropped 9:16, the caption as Instagram cuts it ("…
//! more"), the hashtags counted against Instagram's 30 (over: warned) and TikTok's disclosure
//! label.
//! On SQLite and PostgreSQL; screenshots under `target/screenshots/frame_picker_<backend>/`.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::browser::{Browser, connect_instagram};
use crate::support::*;

both_backends!(frame_picker_at_390, frame_picker_at_1280);

async fn frame_picker_at_390(backend: Backend) {
    frame_picker(backend, 390, 844).await;
}

async fn frame_picker_at_1280(backend: Backend) {
    frame_picker(backend, 1280, 800).await;
}

async fn run(b: &Browser, script: &str, args: Vec<Value>) -> Value {
    b.client.execute(script, args).await.unwrap()
}

/// Waits until `script` returns something other than null or false; returns it.
async fn wait_for(b: &Browser, what: &str, script: &str, args: Vec<Value>) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = run(b, script, args.clone()).await;
        if got != Value::Null && got != json!(false) {
            return got;
        }
        assert!(
            Instant::now() < deadline,
            "never saw {what}; page: {}",
            b.text_of("main").await
        );
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

/// The picture the panel's frame image shows once loaded: its source and a checksum of its
/// pixels (drawn on a canvas), or null while it loads.
const PICTURE: &str = r#"
    const img = document.querySelector(arguments[0] + " [data-role=frame-picker] img");
    if (!img || img.hidden || !img.complete || !img.naturalWidth) return null;
    const c = document.createElement("canvas");
    c.width = img.naturalWidth; c.height = img.naturalHeight;
    const g = c.getContext("2d");
    g.drawImage(img, 0, 0);
    const d = g.getImageData(0, 0, c.width, c.height).data;
    let sum = 0;
    for (let i = 0; i < d.length; i += 7) sum = (sum * 31 + d[i]) % 1000000007;
    return [img.getAttribute("src"), sum, c.width];
"#;

/// Moves the panel's slider to `ms` as a person dragging it does (input events, then change).
const MOVE: &str = r#"
    const s = document.querySelector(arguments[0] + " [data-role=frame-slider]");
    s.value = String(arguments[1]);
    s.dispatchEvent(new Event("input", {bubbles: true}));
    s.dispatchEvent(new Event("change", {bubbles: true}));
"#;

async fn frame_picker(backend: Backend, width: u32, height: u32) {
    let test = match backend {
        Backend::Sqlite => "frame_picker_sqlite",
        Backend::Postgres => "frame_picker_postgres",
    };
    let app = spawn_app_with(
        backend,
        Options {
            emulator: true,
            workers: true,
            ..Options::default()
        },
    )
    .await;
    let (_, workspace) = app.create_user("ada@frames.example", "frames").await;
    let key = app.api_key(&workspace.id, "setup", &["api"]).await;
    let tiktok = connect_tiktok_via_api(&app, &key, "tidepost.sandbox").await;
    let fixtures = tempfile::tempdir().unwrap();
    let file = crate::browser_compose::video(fixtures.path());
    let uploaded: Value = bare_client()
        .post(app.url("/api/v1/media"))
        .bearer_auth(&key)
        .header("content-type", "video/mp4")
        .header("x-file-name", "moving.mp4")
        .body(std::fs::read(&file).unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let media_id = uploaded["id"].as_str().unwrap().to_string();

    let b = Browser::start(width, height).await;
    b.goto(&app.url("/login")).await;
    b.fill("#email", "ada@frames.example").await;
    b.fill("#password", PASSWORD).await;
    b.click("form[action='/login'] button[type=submit]").await;
    b.wait_for_path("the dashboard", |p| p == "/").await;
    connect_instagram(&b, &app).await;
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
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();

    b.goto(&app.url(&format!("/compose?account={tiktok}&media={media_id}")))
        .await;
    b.click(&format!("input[name=targets][value='{instagram}']"))
        .await;
    let tt = format!("fieldset[data-target='{tiktok}']");
    let ig = format!("fieldset[data-target='{instagram}']");
    run(
        &b,
        "const s = document.querySelector(arguments[0] + ' [data-role=ig-type]'); s.value = 'reel'; \
         s.dispatchEvent(new Event('change', {bubbles: true}));",
        vec![json!(ig)],
    )
    .await;
    // Both pickers show the first frame over the whole video; nothing is chosen yet.
    let first = wait_for(&b, "the TikTok frame", PICTURE, vec![json!(tt)]).await;
    assert!(
        first[0]
            .as_str()
            .unwrap()
            .ends_with(&format!("/api/v1/media/{media_id}/frame?at_ms=0")),
        "{first}"
    );
    assert!(
        first[2].as_u64().unwrap() <= 480,
        "a bounded width: {first}"
    );
    wait_for(&b, "the Instagram frame", PICTURE, vec![json!(ig)]).await;
    let state = run(
        &b,
        "const q = s => document.querySelector(s); \
         return [q(arguments[0] + ' [data-role=frame-slider]').max, q(arguments[0] + ' [data-role=cover-ms]').value, \
                 q(arguments[1] + ' [data-role=ig-thumb]').value];",
        vec![json!(tt), json!(ig)],
    )
    .await;
    // The clip lasts 4 s: the last step is 3.9 s.
    assert_eq!(state, json!(["3900", "", ""]), "nothing chosen yet");
    b.screenshot_of(
        &format!("{tt} [data-role=frame-picker]"),
        test,
        "01-tiktok-first-frame",
    )
    .await;

    // Moving the TikTok slider: another picture, and the field says when.
    run(&b, MOVE, vec![json!(tt), json!(2500)]).await;
    let moved = wait_for(
        &b,
        "the TikTok frame at 2.5 s",
        &format!(
            "const p = (function () {{ {PICTURE} }}).apply(null, arguments); \
             return p && p[0].endsWith('at_ms=2500') ? p : null;"
        ),
        vec![json!(tt)],
    )
    .await;
    assert_ne!(moved[1], first[1], "the picture changed: {first} {moved}");
    assert_eq!(
        run(
            &b,
            "return document.querySelector(arguments[0] + ' [data-role=cover-ms]').value;",
            vec![json!(tt)]
        )
        .await,
        "2500"
    );
    // The Instagram reel's slider writes its cover frame.
    run(&b, MOVE, vec![json!(ig), json!(1200)]).await;
    wait_for(
        &b,
        "the Instagram frame at 1.2 s",
        &format!(
            "const p = (function () {{ {PICTURE} }}).apply(null, arguments); \
             return p && p[0].endsWith('at_ms=1200') ? p : null;"
        ),
        vec![json!(ig)],
    )
    .await;
    assert_eq!(
        run(
            &b,
            "return document.querySelector(arguments[0] + ' [data-role=ig-thumb]').value;",
            vec![json!(ig)]
        )
        .await,
        "1200"
    );
    b.screenshot_of(
        &format!("{tt} [data-role=frame-picker]"),
        test,
        "02-tiktok-moved",
    )
    .await;
    b.screenshot_of(
        &format!("{ig} [data-role=frame-picker]"),
        test,
        "03-reel-moved",
    )
    .await;

    // The previews show the chosen frames, cropped 9:16 (a TikTok video, a reel).
    let preview = |id: &str| format!("[data-preview-for='{id}']");
    let shape = "const box = document.querySelector(arguments[0] + ' [data-role=preview-media]'); \
         if (!box) return null; const r = box.getBoundingClientRect(); const img = box.querySelector('img'); \
         return [Math.round(1000 * r.width / r.height), img ? img.getAttribute('src') : ''];";
    for (id, at) in [(&tiktok, 2500), (&instagram, 1200)] {
        let want = format!("at_ms={at}");
        let got = wait_for(
            &b,
            "the preview with the chosen frame",
            &format!(
                "const p = (function () {{ {shape} }}).apply(null, arguments); \
                 return p && p[1].endsWith('{want}') ? p : null;"
            ),
            vec![json!(preview(id))],
        )
        .await;
        assert_eq!(got[0], 563, "9:16 ({id}): {got}");
    }
    // The caption as Instagram cuts it, and the hashtags counted against its limit of 30.
    let long = format!(
        "Low tide walk along the bay this morning, the light was soft and the water far out, so we went further than ever before {}",
        (1..=31)
            .map(|n| format!("#t{n}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    b.fill("#caption", &long).await;
    let texts = wait_for(
        &b,
        "the previews of the long caption",
        "const t = s => { const el = document.querySelector(s); return el ? [el.textContent, el.className] : null; }; \
         const ig = t(arguments[0] + ' [data-role=preview-caption]'); const n = t(arguments[0] + ' [data-role=preview-counts]'); \
         const tt = t(arguments[1] + ' [data-role=preview-counts]'); \
         return ig && n && tt && n[0].startsWith('31') ? [ig[0], n, tt] : null;",
        vec![json!(preview(&instagram)), json!(preview(&tiktok))],
    )
    .await;
    let caption = texts[0].as_str().unwrap();
    assert!(caption.ends_with("… more"), "{caption}");
    assert!(caption.chars().count() <= 125 + 6, "{caption}");
    assert_eq!(
        texts[1][0], "31 of 30 hashtags · 0 of 20 mentions: over Instagram's limit",
        "{texts}"
    );
    assert!(
        texts[1][1].as_str().unwrap().contains("bad-text"),
        "{texts}"
    );
    assert_eq!(texts[2][0], "31 hashtags · 0 mentions", "{texts}");
    // TikTok's disclosure label on its preview.
    b.click(&format!("{tt} [data-role=disclose]")).await;
    b.click(&format!("{tt} [data-role=brand-organic]")).await;
    let label = wait_for(
        &b,
        "the disclosure label",
        "const el = document.querySelector(arguments[0] + ' .preview-label'); return el ? el.textContent : null;",
        vec![json!(preview(&tiktok))],
    )
    .await;
    assert_eq!(label, "Promotional content");
    b.screenshot_of("#preview", test, "04-previews").await;

    // Publish: the frames chosen reach TikTok and Meta.
    run(
        &b,
        "const s = document.querySelector(arguments[0] + ' [data-role=privacy]'); s.value = 'SELF_ONLY'; \
         s.dispatchEvent(new Event('change', {bubbles: true}));",
        vec![json!(tt)],
    )
    .await;
    b.fill("#caption", "Frames #tidepost").await;
    wait_for(
        &b,
        "the post ready",
        "return document.getElementById('validation').textContent.startsWith('Ready for 2');",
        vec![],
    )
    .await;
    b.assert_layout_fits("/compose with the frame pickers")
        .await;
    b.click("#compose-submit").await;
    let path = b
        .wait_for_path("the post page", |p| {
            p.starts_with("/posts/") && !p.starts_with("/posts/new")
        })
        .await;
    let post_id = path.trim_start_matches("/posts/").to_string();
    let deadline = Instant::now() + Duration::from_secs(90);
    let post = loop {
        let post: Value = app
            .api_get(&key, &format!("/api/v1/posts/{post_id}"))
            .await
            .json()
            .await
            .unwrap();
        let publish_ids: Vec<&str> = post["targets"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|t| t["publish_id"].as_str())
            .collect();
        if publish_ids.len() == 2 {
            break post;
        }
        assert!(Instant::now() < deadline, "both targets sent: {post:#}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let emulator = app.emulator.clone().unwrap();
    let record = |path: &'static str| {
        let url = format!("{emulator}{path}");
        async move {
            bare_client()
                .get(url)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let target = |platform: &str| {
        post["targets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["platform"] == platform)
            .unwrap()["publish_id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let publishes = record("/_emulator/tiktok/publishes").await;
    let sent = publishes["publishes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["publish_id"] == target("tiktok").as_str())
        .cloned()
        .unwrap_or_else(|| panic!("the TikTok publish: {publishes:#}"));
    assert_eq!(
        sent["post_info"]["video_cover_timestamp_ms"], 2500,
        "{sent:#}"
    );
    let media = record("/_emulator/meta/media").await;
    let container = media["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == target("instagram").as_str())
        .cloned()
        .unwrap_or_else(|| panic!("the reel's container: {media:#}"));
    assert_eq!(container["params"]["thumb_offset"], "1200", "{container:#}");
    b.close().await;
}
