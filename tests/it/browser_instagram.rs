//! Instagram in a real browser, against the in-process emulator with workers on: sign in,
//! connect with Facebook Login through the emulator's dialog, choose a Page and Instagram
//! account pair on tidepost's chooser (the Page without an Instagram account is shown with its
//! explanation and cannot be chosen), then publish a carousel of three JPEGs made here from
//! the composer with the account chosen (opened by the old `/posts/new?account=` link):
//! the Instagram panel's media type and a reel's cover and feed choice, the files uploaded into
//! the library in their order, a broken media rule shown beside the account naming the file
//! before anything is sent, and the permalink on the post page. Every page is checked for
//! sideways scrolling, on both backends. Screenshots at 375×812 and 1280×800 under
//! `target/screenshots/<test>/`.

use std::time::{Duration, Instant};

use fantoccini::Locator;
use serde_json::{Value, json};
use tidepost_emulator::meta::state::{BUSINESS_IG_ID, BUSINESS_PAGE_ID};

use crate::browser::Browser;
use crate::support::*;

/// The emulator's Page that has no Instagram account linked.
const PAGE_WITHOUT_IG: &str = "134895793791916";
const CAPTION: &str = "Three tides, one morning #tidepost";

both_backends!(
    connect_choose_and_publish_a_carousel_at_375,
    connect_choose_and_publish_a_carousel_at_1280,
);

async fn connect_choose_and_publish_a_carousel_at_375(backend: Backend) {
    connect_choose_and_publish(backend, 375, 812).await;
}

async fn connect_choose_and_publish_a_carousel_at_1280(backend: Backend) {
    connect_choose_and_publish(backend, 1280, 800).await;
}

/// The whole current URL (the dialog lives on the emulator's port).
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

async fn run(b: &Browser, script: &str) -> Value {
    b.client.execute(script, vec![]).await.unwrap()
}

/// A real baseline JPEG of `width` x `height`, one flat grey `level` (grayscale, one 8x8 block
/// per MCU, quantisation 1, two tiny Huffman tables): small, and decodable by a browser.
fn jpeg(width: u16, height: u16, level: u8) -> Vec<u8> {
    // The first block's DC difference sets the level of every block after it.
    let dc = 8 * (i32::from(level) - 128);
    assert!(dc != 0, "a level other than 128");
    let category = 32 - dc.unsigned_abs().leading_zeros();
    let dc_bits = if dc < 0 {
        (dc + (1 << category) - 1) as u32
    } else {
        dc as u32
    };

    let mut out = vec![0xFF, 0xD8];
    // DQT: table 0, every coefficient 1.
    out.extend_from_slice(&[0xFF, 0xDB, 0x00, 0x43, 0x00]);
    out.extend_from_slice(&[1u8; 64]);
    // SOF0: 8 bits, the size, one component (id 1, 1x1 sampling, table 0).
    out.extend_from_slice(&[0xFF, 0xC0, 0x00, 0x0B, 0x08]);
    out.extend_from_slice(&height.to_be_bytes());
    out.extend_from_slice(&width.to_be_bytes());
    out.extend_from_slice(&[0x01, 0x01, 0x11, 0x00]);
    // DHT DC 0: "0" is difference category 0, "10" is `category`.
    let mut bits = [0u8; 16];
    bits[0] = 1;
    bits[1] = 1;
    out.extend_from_slice(&[0xFF, 0xC4, 0x00, 0x15, 0x00]);
    out.extend_from_slice(&bits);
    out.extend_from_slice(&[0x00, category as u8]);
    // DHT AC 0: "0" is end of block.
    let mut bits = [0u8; 16];
    bits[0] = 1;
    out.extend_from_slice(&[0xFF, 0xC4, 0x00, 0x14, 0x10]);
    out.extend_from_slice(&bits);
    out.push(0x00);
    // SOS: component 1 with tables 0/0, spectral 0..63.
    out.extend_from_slice(&[0xFF, 0xDA, 0x00, 0x08, 0x01, 0x01, 0x00, 0x00, 0x3F, 0x00]);

    let blocks = usize::from(width.div_ceil(8)) * usize::from(height.div_ceil(8));
    let mut scan: Vec<bool> = Vec::with_capacity(blocks * 2 + 16);
    scan.extend([true, false]);
    scan.extend((0..category).rev().map(|i| dc_bits >> i & 1 == 1));
    scan.push(false);
    for _ in 1..blocks {
        scan.extend([false, false]);
    }
    while !scan.len().is_multiple_of(8) {
        scan.push(true);
    }
    for byte in scan.chunks(8) {
        let byte = byte.iter().fold(0u8, |acc, &bit| acc << 1 | u8::from(bit));
        out.push(byte);
        if byte == 0xFF {
            out.push(0x00);
        }
    }
    out.extend_from_slice(&[0xFF, 0xD9]);
    out
}

/// Waits until `script` returns `want` in the page.
async fn wait_for(b: &Browser, what: &str, script: &str, want: Value) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = run(b, script).await;
        if got == want {
            return got;
        }
        assert!(
            Instant::now() < deadline,
            "never saw {what}: {got}; page: {}",
            b.text_of("main").await
        );
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

async fn connect_choose_and_publish(backend: Backend, width: u32, height: u32) {
    let test = match backend {
        Backend::Sqlite => "instagram_connect_choose_and_publish_sqlite",
        Backend::Postgres => "instagram_connect_choose_and_publish_postgres",
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
    let emulator = app.emulator.clone().expect("the emulator runs");
    app.create_user("ada@example.com", "acme").await;
    let b = Browser::start(width, height).await;

    // Signed in.
    b.goto(&app.url("/login")).await;
    b.fill("#email", "ada@example.com").await;
    b.fill("#password", PASSWORD).await;
    b.click("form[action='/login'] button[type=submit]").await;
    b.wait_for_path("the dashboard", |p| p == "/").await;

    // tidepost's connect page: Facebook Login is the default.
    b.goto(&app.url("/connect/instagram")).await;
    assert!(b.text_of("h1").await.contains("Connect Instagram"));
    let page = b.text_of("main").await;
    for scope in [
        "instagram_basic",
        "instagram_content_publish",
        "pages_show_list",
    ] {
        assert!(
            page.contains(scope),
            "the connect page lists {scope}: {page}"
        );
    }
    assert!(page.contains("None yet."), "{page}");
    assert_eq!(
        run(
            &b,
            "return document.querySelector('input[name=login][value=facebook]').checked;"
        )
        .await,
        json!(true)
    );
    b.assert_layout_fits("/connect/instagram").await;
    b.screenshot(test, "01-connect").await;

    // The emulator's Facebook dialog: approve every permission asked for.
    b.click("form[action='/connect/instagram'] button[type=submit]")
        .await;
    wait_for_url(&b, "the emulator's Facebook dialog", |u| {
        u.starts_with(&emulator)
    })
    .await;
    let dialog = b.text_of("h1").await;
    assert!(
        dialog.contains("wants to access your Facebook account"),
        "{dialog}"
    );
    let body = b.text_of("body").await;
    for scope in [
        "instagram_basic",
        "instagram_content_publish",
        "pages_show_list",
    ] {
        assert!(body.contains(scope), "the dialog asks for {scope}: {body}");
    }
    b.screenshot(test, "02-facebook-dialog").await;
    b.click("button[name=decision][value=approve]").await;

    // tidepost's chooser: each Page beside its Instagram account.
    b.wait_for_path("the chooser", |p| {
        p.starts_with("/oauth/instagram/callback")
    })
    .await;
    assert!(b.text_of("h1").await.contains("Choose what to connect"));
    let pairs: Value = run(
        &b,
        r#"return Array.from(document.querySelectorAll(".choose-pair")).map(p => ({
             page: p.dataset.page,
             disabled: p.classList.contains("disabled"),
             text: p.innerText,
             choosable: !!p.querySelector("input[name=page]:not([disabled])"),
           }));"#,
    )
    .await;
    let pairs = pairs.as_array().unwrap();
    assert_eq!(pairs.len(), 3, "three Pages: {pairs:?}");
    let business = pairs
        .iter()
        .find(|p| p["page"] == BUSINESS_PAGE_ID)
        .expect("the business Page");
    assert_eq!(business["disabled"], false, "{business}");
    assert_eq!(business["choosable"], true, "{business}");
    let text = business["text"].as_str().unwrap();
    assert!(
        text.contains("Tidepost Coffee") && text.contains("@tidepost.coffee"),
        "the Page beside its Instagram account: {text}"
    );
    let without = pairs
        .iter()
        .find(|p| p["page"] == PAGE_WITHOUT_IG)
        .expect("the Page without Instagram");
    assert_eq!(without["disabled"], true, "{without}");
    assert_eq!(
        without["choosable"], false,
        "it cannot be chosen: {without}"
    );
    let text = without["text"].as_str().unwrap();
    assert!(
        text.contains("Tidepost Drafts") && text.contains("No Instagram account"),
        "{text}"
    );

    // How it looks: greyed, the explanation not; side by side on a wide screen, stacked on a
    // phone; the disabled checkbox does not tick.
    let look: Value = b
        .client
        .execute(
            r#"const pair = document.querySelector(".choose-pair[data-page='" + arguments[0] + "']");
               const fine = document.querySelector(".choose-pair[data-page='" + arguments[1] + "']");
               const sides = fine.querySelectorAll(".pair-side");
               const a = sides[0].getBoundingClientRect(), b = sides[1].getBoundingClientRect();
               const note = pair.querySelector(".notice");
               pair.querySelector("input[type=checkbox]").click();
               return {
                 side_opacity: Number(getComputedStyle(pair.querySelector(".pair-side")).opacity),
                 note: note ? note.innerText : "",
                 note_opacity: note ? Number(getComputedStyle(note).opacity) : 0,
                 note_color: note ? getComputedStyle(note).color : "",
                 ticked: pair.querySelector("input[type=checkbox]").checked,
                 beside: Math.abs(a.top - b.top) < 4 && b.left > a.right,
                 below: b.top >= a.bottom,
               };"#,
            vec![json!(PAGE_WITHOUT_IG), json!(BUSINESS_PAGE_ID)],
        )
        .await
        .unwrap();
    assert!(
        look["side_opacity"].as_f64().unwrap() < 0.8,
        "the Page without Instagram is greyed: {look}"
    );
    assert!(
        look["note"].as_str().unwrap().len() > 20,
        "with an explanation: {look}"
    );
    assert_eq!(look["note_opacity"], 1.0, "readable: {look}");
    assert_eq!(look["ticked"], false, "it cannot be chosen: {look}");
    if width >= 1280 {
        assert_eq!(look["beside"], true, "side by side at {width} px: {look}");
    } else {
        assert_eq!(look["below"], true, "stacked at {width} px: {look}");
    }
    b.assert_layout_fits("the chooser").await;
    b.screenshot(test, "03-chooser").await;
    b.screenshot_of(
        &format!(".choose-pair[data-page='{PAGE_WITHOUT_IG}']"),
        test,
        "04-chooser-without-instagram",
    )
    .await;

    // Choose the business pair.
    b.click(&format!("input[name=page][value='{BUSINESS_PAGE_ID}']"))
        .await;
    b.screenshot_of(
        &format!(".choose-pair[data-page='{BUSINESS_PAGE_ID}']"),
        test,
        "05-chooser-chosen",
    )
    .await;
    b.click("form[action='/connect/instagram/choose'] button[type=submit]")
        .await;
    let account_path = b
        .wait_for_path("the account page", |p| {
            p.starts_with("/accounts/") && p.ends_with("?connected=1")
        })
        .await;
    let account_id = account_path
        .trim_start_matches("/accounts/")
        .trim_end_matches("?connected=1")
        .to_string();
    assert_eq!(
        b.text_of(".notice.ok").await,
        "Instagram account connected."
    );
    assert!(
        b.text_of("main").await.contains("tidepost.coffee"),
        "the account page names the Instagram account"
    );
    b.assert_layout_fits("the account page").await;
    b.screenshot(test, "06-account-connected").await;

    // The old single-account link opens the composer with the Instagram account chosen.
    b.goto(&app.url(&format!("/posts/new?account={account_id}")))
        .await;
    b.wait_for_path("the composer", |p| {
        p == format!("/compose?account={account_id}")
    })
    .await;
    let panel = format!("fieldset[data-target='{account_id}']");
    assert_eq!(
        b.text_of(&format!("{panel} .who-name strong")).await,
        "Tidepost Coffee"
    );
    assert_eq!(
        run(
            &b,
            &format!(
                "const fs = document.querySelector(\"{panel}\"); \
                 return [fs.querySelector('input[name=targets]').checked, \
                         !fs.querySelector('.target-options').hidden, \
                         fs.querySelector('[data-role=ig-type]').value];"
            )
        )
        .await,
        json!([true, true, ""]),
        "chosen, its panel open, the type from the media"
    );
    // A reel's own choices show for a reel only: a cover URL and "also in the feed" (on).
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
    choose_type("reel").await;
    let reel = run(
        &b,
        &format!(
            "const fs = document.querySelector(\"{panel}\"); \
             return [fs.querySelector('[data-role=reel-options]').hidden, \
                     !!fs.querySelector('[data-role=ig-cover]'), \
                     fs.querySelector('[data-role=ig-share]').checked];"
        ),
    )
    .await;
    assert_eq!(reel, json!([false, true, true]), "a reel's options");
    b.screenshot_of(&panel, test, "07-panel-reel").await;
    choose_type("carousel").await;
    assert_eq!(
        run(
            &b,
            &format!("return document.querySelector(\"{panel} [data-role=reel-options]\").hidden;")
        )
        .await,
        json!(true)
    );

    // A carousel of three JPEGs, uploaded into the library in their order.
    let files = tempfile::tempdir().unwrap();
    let mut paths = Vec::new();
    for (name, w, h, level) in [
        ("dawn.jpg", 1080, 1080, 200),
        ("noon.jpg", 1080, 1350, 90),
        ("dusk.jpg", 1200, 800, 160),
    ] {
        let path = files.path().join(name);
        std::fs::write(&path, jpeg(w, h, level)).unwrap();
        paths.push(path.display().to_string());
    }
    b.client
        .find(Locator::Css("#compose-file"))
        .await
        .unwrap()
        .send_keys(&paths.join("\n"))
        .await
        .unwrap();
    b.fill("#caption", CAPTION).await;
    let picked = "return Array.from(document.querySelectorAll('#media-picker input[name=media]:checked')).map(i => i.dataset.name);";
    wait_for(
        &b,
        "the three files uploaded and picked",
        picked,
        json!(["dawn.jpg", "noon.jpg", "dusk.jpg"]),
    )
    .await;
    // No media rule broken: the live check is ready, nothing beside the account.
    wait_for(
        &b,
        "the post ready",
        "return document.getElementById('validation').textContent.startsWith('Ready for 1');",
        json!(true),
    )
    .await;
    assert_eq!(
        run(
            &b,
            &format!(
                "return document.querySelectorAll(\"[data-issues-for='{account_id}'] li\").length;"
            )
        )
        .await,
        json!(0)
    );
    // The preview shows the carousel one item at a time, a button per item naming its file.
    assert_eq!(
        run(
            &b,
            "return Array.from(document.querySelectorAll('#preview-list .preview-item')).map(b => b.getAttribute('aria-label'));"
        )
        .await,
        json!([
            "Show item 1 (dawn.jpg)",
            "Show item 2 (noon.jpg)",
            "Show item 3 (dusk.jpg)"
        ])
    );
    b.assert_layout_fits("/compose for Instagram").await;
    b.screenshot(test, "08-compose-carousel").await;

    // A broken rule is shown before anything is sent, beside the account and naming the
    // file: a panorama too wide for the feed.
    let wide = files.path().join("wide.jpg");
    std::fs::write(&wide, jpeg(1600, 400, 70)).unwrap();
    let input = b.client.find(Locator::Css("#compose-file")).await.unwrap();
    input.clear().await.unwrap();
    input.send_keys(&wide.display().to_string()).await.unwrap();
    let issues = format!("[data-issues-for='{account_id}']");
    let rule = {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let text = run(
                &b,
                &format!("return document.querySelector(\"{issues}\").innerText;"),
            )
            .await;
            let text = text.as_str().unwrap().to_string();
            if !text.is_empty() {
                break text;
            }
            assert!(Instant::now() < deadline, "the aspect ratio rule is shown");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    assert!(rule.contains("aspect ratio"), "{rule}");
    assert!(rule.contains("wide.jpg"), "it names the file: {rule}");
    b.assert_layout_fits("/compose with a broken rule").await;
    b.screenshot_of(&panel, test, "09-compose-rule").await;

    // Back to the three good images, and publish.
    b.click("#media-picker input[name=media][data-name='wide.jpg']")
        .await;
    wait_for(
        &b,
        "the form clean again",
        &format!(
            "return document.getElementById('validation').textContent.startsWith('Ready for 1') \
             && !document.querySelector(\"{issues} li\");"
        ),
        json!(true),
    )
    .await;
    b.click("#compose-submit").await;
    let post_path = b
        .wait_for_path("the post page", |p| {
            p.starts_with("/posts/") && !p.starts_with("/posts/new")
        })
        .await;
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut shot_moving = false;
    loop {
        let state = b.text_of(".target strong").await;
        if state == "published" {
            break;
        }
        if !shot_moving {
            b.screenshot(test, "10-post-moving").await;
            shot_moving = true;
        }
        assert!(
            state != "failed" && Instant::now() < deadline,
            "the post never reached published: {}",
            b.text_of("main").await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The post page: published, with the permalink.
    assert_eq!(b.text_of(".target strong").await, "published");
    assert!(b.text_of("#post").await.contains(CAPTION));
    let link = b
        .client
        .find(Locator::Css(".target .permalink a"))
        .await
        .expect("the permalink is shown");
    let href = link.attr("href").await.unwrap().unwrap_or_default();
    assert!(href.starts_with("https://"), "a permalink: {href}");
    assert!(href.contains("instagram.com/p/"), "{href}");
    assert!(
        b.text_of(".target").await.contains("Instagram media id"),
        "the media id is shown"
    );
    b.assert_layout_fits("the post page").await;
    b.screenshot(test, "11-post-published").await;

    // The emulator holds one carousel of three images for the business account.
    let media: Value = bare_client()
        .get(format!("{emulator}/_emulator/meta/media"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let carousels: Vec<&Value> = media["media"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["media_type"] == "CAROUSEL_ALBUM" && m["owner_id"] == BUSINESS_IG_ID)
        .collect();
    assert_eq!(carousels.len(), 1, "one carousel on the emulator: {media}");
    assert_eq!(carousels[0]["permalink"].as_str(), Some(href.as_str()));
    assert_eq!(carousels[0]["children"].as_array().map(Vec::len), Some(3));
    assert_eq!(carousels[0]["caption"], CAPTION);

    // Every page fits the screen.
    for (name, path) in [
        ("12-page-connect", "/connect/instagram".to_string()),
        ("13-page-account", format!("/accounts/{account_id}")),
        ("14-page-compose", format!("/compose?account={account_id}")),
        ("15-page-post", post_path.clone()),
        ("16-page-dashboard", "/".to_string()),
    ] {
        b.goto(&app.url(&path)).await;
        b.text_of("h1").await;
        b.assert_layout_fits(&path).await;
        b.screenshot(test, name).await;
    }
    b.close().await;
}
