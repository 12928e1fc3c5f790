//! The previews in a real browser: images picked from the media library show in the
//! composer's preview (read through `/api/v1/media/{id}/content`), a click on an Instagram
//! image (or on a carousel's item) opens a small input, the username typed there becomes a
//! marker on the preview and a line of the "People tagged" field (Escape closes the input
//! tagging nobody), a marker's × takes it away again, and the post published from there reaches the emulator with each tag at the point
//! clicked (x/y of the image as Instagram defines them, from its top left, through the crop
//! the preview shows). After publishing, the post page shows the same preview: the image, the
//! markers and the link to the post on Instagram. At 390 px (one square image, shown 1:1) and
//! 1280 px (a carousel of a landscape and a square image, shown 4:5, so cropped at the sides).
//! Screenshots under `target/screenshots/<test>/`.

use std::time::{Duration, Instant};

use fantoccini::Locator;
use fantoccini::actions::{InputSource, MOUSE_BUTTON_LEFT, MouseActions, PointerAction};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::browser::Browser;
use crate::instagram_options::{Scene, scene};
use crate::support::*;

both_backends!(
    click_to_tag_an_image_on_a_phone,
    click_to_tag_carousel_items_on_a_desktop,
);

async fn run(b: &Browser, script: &str, args: Vec<Value>) -> Value {
    b.client.execute(script, args).await.unwrap()
}

async fn wait_for(b: &Browser, what: &str, script: &str, want: Value) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = run(b, script, vec![]).await;
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

/// Stores a JPEG of this size in the workspace's media library; returns its id.
async fn library_image(s: &Scene, width: u32, height: u32) -> String {
    let answer = bare_client()
        .post(s.app.url("/api/v1/media"))
        .bearer_auth(&s.key)
        .header("content-type", "image/jpeg")
        .header("x-file-name", format!("photo-{width}x{height}.jpg"))
        .body(tidepost_app::media::testing::jpeg(width, height))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::CREATED);
    let item: Value = answer.json().await.unwrap();
    item["id"].as_str().unwrap().to_string()
}

async fn sign_in_and_compose(b: &Browser, s: &Scene) -> String {
    b.goto(&s.app.url("/login")).await;
    b.fill("#email", "owner@igopts.example").await;
    b.fill("#password", PASSWORD).await;
    b.click("form[action='/login'] button[type=submit]").await;
    b.wait_for_path("signed in", |p| !p.starts_with("/login"))
        .await;
    b.goto(&s.app.url(&format!("/compose?account={}", s.account)))
        .await;
    format!("[data-preview-for='{}']", s.account)
}

/// Picks library items (a carousel takes them in the library's order, newest first).
async fn pick(b: &Browser, ids: &[&str]) {
    for id in ids {
        b.click(&format!("#media-picker input[value='{id}']")).await;
    }
}

/// The preview's shown image has loaded from the library: its source and natural width.
async fn wait_for_image(b: &Browser, card: &str, media_id: &str) {
    wait_for(
        b,
        "the library image in the preview",
        &format!(
            "const img = document.querySelector(\"{card} [data-role=preview-image]\"); \
             return !!img && img.complete && img.naturalWidth > 0 && img.getAttribute('src');"
        ),
        json!(format!("/api/v1/media/{media_id}/content")),
    )
    .await;
}

/// Clicks the preview's image at (fx, fy) of its frame (0..1 from the top left).
async fn click_at(b: &Browser, card: &str, fx: f64, fy: f64) {
    let css = format!("{card} [data-role=preview-image]");
    run(
        b,
        "document.querySelector(arguments[0]).scrollIntoView({block: 'center'});",
        vec![json!(css)],
    )
    .await;
    let size = run(
        b,
        "const r = document.querySelector(arguments[0]).getBoundingClientRect(); return [r.width, r.height];",
        vec![json!(css)],
    )
    .await;
    let (w, h) = (size[0].as_f64().unwrap(), size[1].as_f64().unwrap());
    let img = b.client.find(Locator::Css(&css)).await.unwrap();
    let mouse = MouseActions::new("mouse".into())
        .then(PointerAction::MoveToElement {
            element: img,
            duration: None,
            x: ((fx - 0.5) * w).round(),
            y: ((fy - 0.5) * h).round(),
        })
        .then(PointerAction::Down {
            button: MOUSE_BUTTON_LEFT,
        })
        .then(PointerAction::Up {
            button: MOUSE_BUTTON_LEFT,
        });
    b.client.perform_actions(mouse).await.unwrap();
}

/// Types a username into the input a click opened and confirms it (Enter, or the Tag button).
async fn type_tag(b: &Browser, card: &str, username: &str, enter: bool) {
    let css = format!("{card} [data-role=tag-username]");
    let input = b
        .client
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css(&css))
        .await
        .unwrap_or_else(|e| panic!("a click opens the username input: {e}"));
    if enter {
        input
            .send_keys(&format!("{username}\u{E007}"))
            .await
            .unwrap();
    } else {
        input.send_keys(username).await.unwrap();
        b.click(&format!("{card} [data-role=tag-confirm]")).await;
    }
}

/// The "People tagged" field's lines, as the form will send them.
async fn tag_lines(b: &Browser, s: &Scene) -> Vec<String> {
    let text = run(
        b,
        "return document.querySelector(arguments[0]).value;",
        vec![json!(format!(
            "fieldset[data-target='{}'] [data-role=ig-tags]",
            s.account
        ))],
    )
    .await;
    text.as_str()
        .unwrap()
        .lines()
        .map(str::to_string)
        .filter(|l| !l.is_empty())
        .collect()
}

/// The markers on the preview's shown item: [username, x, y].
async fn markers(b: &Browser, card: &str) -> Value {
    run(
        b,
        "return Array.from(document.querySelectorAll(arguments[0])).map(m => \
         [m.getAttribute('data-username'), Number(m.getAttribute('data-x')), Number(m.getAttribute('data-y'))]);",
        vec![json!(format!("{card} .preview-tag"))],
    )
    .await
}

fn close(got: &Value, want: (f64, f64), what: &str) {
    let (x, y) = (got["x"].as_f64().unwrap(), got["y"].as_f64().unwrap());
    assert!(
        (x - want.0).abs() < 0.01 && (y - want.1).abs() < 0.01,
        "{what}: sent at ({x}, {y}), clicked at {want:?}"
    );
}

fn parsed(container: &Value, name: &str) -> Value {
    serde_json::from_str(container["params"][name].as_str().unwrap_or("null")).unwrap()
}

async fn publish(b: &Browser, s: &Scene) -> (String, Value) {
    wait_for(
        b,
        "the post ready",
        "return document.getElementById('validation').textContent.startsWith('Ready for 1');",
        json!(true),
    )
    .await;
    b.click("#compose-submit").await;
    let post_path = b
        .wait_for_path("the post page", |p| {
            p.starts_with("/posts/") && !p.starts_with("/posts/new")
        })
        .await;
    let post = s.settled(post_path.trim_start_matches("/posts/")).await;
    assert_eq!(post["targets"][0]["state"], "published", "{post:#}");
    (post_path, post)
}

async fn container(s: &Scene, id: &str) -> Value {
    let all = s.emulator("/_emulator/meta/media").await;
    all["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("no container {id}: {all:#}"))
}

/// The post page's preview: the image loaded, the markers, the link to the post.
async fn check_post_page(b: &Browser, s: &Scene, post_path: &str, post: &Value) -> Value {
    b.goto(&s.app.url(post_path)).await;
    let card = ".post-preview .preview";
    wait_for(
        b,
        "the image on the post page",
        &format!(
            "const img = document.querySelector(\"{card} [data-role=preview-image]\"); \
             return !!img && img.complete && img.naturalWidth > 0;"
        ),
        json!(true),
    )
    .await;
    let permalink = post["targets"][0]["post_url"].as_str().unwrap();
    assert!(
        permalink.starts_with("http"),
        "the post has its permalink: {post:#}"
    );
    let link = run(
        b,
        "const a = document.querySelector('.post-preview .preview-link a'); return a && [a.textContent, a.getAttribute('href')];",
        vec![],
    )
    .await;
    assert_eq!(link, json!(["View on Instagram", permalink]));
    // Read-only there: no input opens, nothing can be removed.
    assert_eq!(
        run(
            b,
            "return document.querySelectorAll('.post-preview .preview-tag-remove, .post-preview .taggable').length;",
            vec![]
        )
        .await,
        json!(0)
    );
    b.assert_layout_fits("the post page with its preview").await;
    let got = markers(b, card).await;
    b.screenshot_of(card, &test_name(b), "post-page-preview")
        .await;
    got
}

fn test_name(b: &Browser) -> String {
    format!("click_to_tag_{}", b.width)
}

async fn click_to_tag_an_image_on_a_phone(backend: Backend) {
    let s = scene(backend).await;
    let square = library_image(&s, 1080, 1080).await;
    let b = Browser::start(390, 844).await;
    let test = test_name(&b);
    let card = sign_in_and_compose(&b, &s).await;
    pick(&b, &[&square]).await;
    b.fill("#caption", "Low tide with friends").await;
    wait_for_image(&b, &card, &square).await;
    // One square image: shown 1:1, nothing cropped, the frame is the image.
    assert_eq!(
        run(
            &b,
            &format!(
                "return document.querySelector(\"{card} [data-role=preview-media]\").className;"
            ),
            vec![]
        )
        .await,
        json!("preview-frame ratio-1x1 taggable")
    );
    b.screenshot_of(&card, &test, "01-library-image-in-preview")
        .await;

    // Escape closes the input without tagging anyone.
    click_at(&b, &card, 0.8, 0.2).await;
    let input = b
        .client
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css(&format!("{card} [data-role=tag-username]")))
        .await
        .unwrap();
    input.send_keys("nobody\u{E00C}").await.unwrap();
    wait_for(
        &b,
        "the input closed",
        &format!("return document.querySelectorAll(\"{card} [data-role=tag-username]\").length;"),
        json!(0),
    )
    .await;
    assert!(tag_lines(&b, &s).await.is_empty(), "Escape tags nobody");

    click_at(&b, &card, 0.3, 0.6).await;
    b.screenshot_of(&card, &test, "02-username-input").await;
    type_tag(&b, &card, "@ana.tide", true).await;
    wait_for(
        &b,
        "the marker",
        &format!("return document.querySelectorAll(\"{card} .preview-tag\").length;"),
        json!(1),
    )
    .await;
    let lines = tag_lines(&b, &s).await;
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].starts_with("ana.tide "), "{lines:?}");
    // Enter tagged the person and did not submit the post.
    assert!(b.path().await.starts_with("/compose"));
    b.assert_layout_fits("/compose with a tag on the preview")
        .await;
    b.screenshot_of(&card, &test, "03-marker").await;

    let (post_path, post) = publish(&b, &s).await;
    let sent = container(&s, post["targets"][0]["publish_id"].as_str().unwrap()).await;
    let tags = parsed(&sent, "user_tags");
    assert_eq!(tags.as_array().unwrap().len(), 1, "{sent:#}");
    assert_eq!(tags[0]["username"], "ana.tide");
    close(&tags[0], (0.3, 0.6), "the square image's tag");

    let shown = check_post_page(&b, &s, &post_path, &post).await;
    assert_eq!(shown[0][0], "ana.tide", "{shown}");
    assert_eq!(shown[0][1], tags[0]["x"], "{shown}");
    assert_eq!(shown[0][2], tags[0]["y"], "{shown}");
    b.close().await;
}

async fn click_to_tag_carousel_items_on_a_desktop(backend: Backend) {
    let s = scene(backend).await;
    // The library lists the newest first, and a carousel takes the picked items in that order.
    let square = library_image(&s, 1080, 1080).await;
    let wide = library_image(&s, 1200, 800).await;
    let b = Browser::start(1280, 900).await;
    let test = test_name(&b);
    let card = sign_in_and_compose(&b, &s).await;
    pick(&b, &[&wide, &square]).await;
    b.fill("#caption", "Two views of the bay").await;
    wait_for_image(&b, &card, &wide).await;
    assert_eq!(
        run(
            &b,
            &format!(
                "return document.querySelector(\"{card} [data-role=preview-media]\").className;"
            ),
            vec![]
        )
        .await,
        json!("preview-frame ratio-4x5 taggable"),
        "a carousel of a landscape image first: 4:5, cropped at the sides"
    );

    // Item 1, 1200×800 in a 4:5 frame (W wide, 1.25 W high): scaled to 1.875 W wide, 0.4375 W
    // cut on each side. The frame's centre is the image's; 0.25 across the frame is
    // (0.25 + 0.4375) / 1.875 across the image.
    click_at(&b, &card, 0.5, 0.5).await;
    type_tag(&b, &card, "ana.tide", false).await;
    click_at(&b, &card, 0.25, 0.8).await;
    type_tag(&b, &card, "bo_sea", true).await;
    wait_for(
        &b,
        "two markers on item 1",
        &format!("return document.querySelectorAll(\"{card} .preview-tag\").length;"),
        json!(2),
    )
    .await;
    b.screenshot_of(&card, &test, "01-item-1-two-markers").await;
    // A marker's × takes the tag away again, from the preview and from the field.
    b.click(&format!(
        "{card} .preview-tag[data-username='ana.tide'] .preview-tag-remove"
    ))
    .await;
    wait_for(
        &b,
        "one marker left",
        &format!("return document.querySelectorAll(\"{card} .preview-tag\").length;"),
        json!(1),
    )
    .await;
    let lines = tag_lines(&b, &s).await;
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].starts_with("1: bo_sea "), "{lines:?}");

    // Item 2, 1080×1080 in the same 4:5 frame: 1.25 W wide, 0.125 W cut on each side.
    b.click(&format!("{card} .preview-item:nth-child(2)")).await;
    wait_for_image(&b, &card, &square).await;
    assert_eq!(
        markers(&b, &card).await,
        json!([]),
        "item 1's tag is not on item 2"
    );
    click_at(&b, &card, 0.75, 0.25).await;
    type_tag(&b, &card, "cy.reef", true).await;
    wait_for(
        &b,
        "the marker on item 2",
        &format!("return document.querySelectorAll(\"{card} .preview-tag\").length;"),
        json!(1),
    )
    .await;
    let lines = tag_lines(&b, &s).await;
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines[1].starts_with("2: cy.reef "), "{lines:?}");
    b.assert_layout_fits("/compose with carousel tags").await;
    b.screenshot(&test, "02-item-2-marker").await;

    let (post_path, post) = publish(&b, &s).await;
    let carousel = container(&s, post["targets"][0]["publish_id"].as_str().unwrap()).await;
    assert_eq!(carousel["media_type"], "CAROUSEL", "{carousel:#}");
    let children = carousel["children"].as_array().unwrap();
    let first = parsed(
        &container(&s, children[0].as_str().unwrap()).await,
        "user_tags",
    );
    let second = parsed(
        &container(&s, children[1].as_str().unwrap()).await,
        "user_tags",
    );
    assert_eq!(first.as_array().unwrap().len(), 1, "{first}");
    assert_eq!(first[0]["username"], "bo_sea");
    close(&first[0], ((0.25 + 0.4375) / 1.875, 0.8), "item 1's tag");
    assert_eq!(second.as_array().unwrap().len(), 1, "{second}");
    assert_eq!(second[0]["username"], "cy.reef");
    close(&second[0], ((0.75 + 0.125) / 1.25, 0.25), "item 2's tag");

    let shown = check_post_page(&b, &s, &post_path, &post).await;
    assert_eq!(shown[0][0], "bo_sea", "item 1's marker: {shown}");
    b.close().await;
}
