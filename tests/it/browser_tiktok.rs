//! TikTok in a real browser, against the in-process emulator with workers on, on both
//! backends: sign in, connect through the emulator's consent page, open the composer from the
//! account's "New post" link (the account chosen; the old `/posts/new?account=` link lands
//! there too), read the TikTok panel as TikTok's Content Sharing guidelines want it (the
//! creator's nickname and avatar, privacy with no default, "Allow …" boxes off, the disclosure
//! with its labels and consent line, branded content never "Only me", the AI-generated label,
//! the maximum duration; a creator who turned comments, duets and stitches off sees them
//! disabled with the reason), have submits refused on the page (no media, a file over the
//! size limit, no privacy) with the button usable, the caption kept and focus on the field,
//! an upload tidepost refuses shown in plain words, then upload a real video with its progress
//! bar, publish, follow the post page to published with the chosen options at TikTok, and see
//! it in the dashboard's TikTok widget; refuse on the consent page and get a readable page.
//! Every TikTok page is checked for sideways scrolling. Screenshots at 375×812 and 1280×800
//! under `target/screenshots/<test>/`.

use std::time::{Duration, Instant};

use fantoccini::Locator;
use serde_json::{Value, json};

use crate::browser::Browser;
use crate::support::*;

/// The emulator's first fixture creator.
const CREATOR_OPEN_ID: &str = "act.sandboxCreatorEmulator0000000000";
const CREATOR_NAME: &str = "Tidepost Sandbox";
const CAPTION: &str = "Low tide at dawn #tidepost";

/// The upload limit of the composer tests: above the fixture video, below the file made to
/// be too large.
const MAX_UPLOAD: u64 = 16 * 1024 * 1024;

async fn sandbox_app(backend: Backend) -> TestApp {
    spawn_app_with(
        backend,
        Options {
            emulator: true,
            workers: true,
            env: vec![("TIDEPOST_MAX_UPLOAD_BYTES", MAX_UPLOAD.to_string())],
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

/// A 4-second 540×960 H.264/AAC MP4 with noise in it (a few MiB, so the upload bar moves):
/// a valid TikTok video, made with ffmpeg.
fn video_file(dir: &std::path::Path, name: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    let status = std::process::Command::new("ffmpeg")
        .args(["-loglevel", "error", "-y", "-f", "lavfi"])
        .args([
            "-i",
            "testsrc=duration=4:size=540x960:rate=30",
            "-f",
            "lavfi",
        ])
        .args(["-i", "sine=frequency=440:duration=4"])
        .args(["-vf", "noise=alls=20:allf=t", "-c:v", "libx264"])
        .args(["-preset", "ultrafast", "-crf", "27", "-pix_fmt", "yuv420p"])
        .args(["-c:a", "aac", "-shortest"])
        .arg(&path)
        .status()
        .expect("ffmpeg runs (Debian: apt-get install ffmpeg; .ci/run installs it)");
    assert!(status.success(), "ffmpeg made the fixture video");
    path
}

/// Records every change of the composer's upload bar and status in `sessionStorage`, so the
/// test sees each step however short.
const RECORD_PROGRESS: &str = r#"
  sessionStorage.setItem("progress", "[]");
  const bar = document.getElementById("compose-upload-bar");
  const status = document.getElementById("compose-upload-status");
  const note = () => {
    const seen = JSON.parse(sessionStorage.getItem("progress"));
    const entry = [status.textContent, Number(bar.value), Number(bar.max)];
    const last = seen[seen.length - 1];
    if (!last || last[0] !== entry[0] || last[1] !== entry[1]) seen.push(entry);
    sessionStorage.setItem("progress", JSON.stringify(seen));
  };
  const watch = new MutationObserver(note);
  watch.observe(bar, {attributes: true});
  watch.observe(status, {childList: true, characterData: true, subtree: true});
"#;

async fn run(b: &Browser, script: &str) -> Value {
    b.client.execute(script, vec![]).await.unwrap()
}

/// What a refused submit left: the page, the message, the button, the caption and the field
/// that has focus.
async fn refused_submit(b: &Browser, what: &str, says: &str) -> Value {
    run(
        b,
        "document.getElementById('compose-general').textContent = '';",
    )
    .await;
    b.click("#compose-submit").await;
    let message = wait_for_text(b, "#compose-general", |t| t.contains(says)).await;
    // Let every submit handler and the busy state's timer run.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let state = run(
        b,
        r#"const s = document.getElementById("compose-submit");
           return {
             path: location.pathname,
             disabled: s.disabled,
             busy: s.classList.contains("busy"),
             caption: document.getElementById("caption").value,
             focus: document.activeElement ? document.activeElement.id : "",
           };"#,
    )
    .await;
    assert_eq!(
        state["path"], "/compose",
        "{what}: still on the composer: {state}"
    );
    assert_eq!(
        state["disabled"], false,
        "{what}: the button is usable: {state}"
    );
    assert_eq!(
        state["busy"], false,
        "{what}: the button is not busy: {state}"
    );
    assert_eq!(
        state["caption"], CAPTION,
        "{what}: the caption is kept: {state}"
    );
    json!({ "message": message, "focus": state["focus"] })
}

both_backends!(connect_and_publish_at_375, connect_and_publish_at_1280);

async fn connect_and_publish_at_375(backend: Backend) {
    connect_and_publish(backend, 375, 812).await;
}

async fn connect_and_publish_at_1280(backend: Backend) {
    connect_and_publish(backend, 1280, 800).await;
}

async fn connect_and_publish(backend: Backend, width: u32, height: u32) {
    let test = match backend {
        Backend::Sqlite => "tiktok_connect_and_publish_sqlite",
        Backend::Postgres => "tiktok_connect_and_publish_postgres",
    };
    let app = sandbox_app(backend).await;
    let (_, workspace) = app.create_user("ada@example.com", "acme").await;
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

    // A second creator, who turned comments, duets and stitches off in TikTok.
    let key = app.api_key(&workspace.id, "setup", &[]).await;
    let quiet_id = connect_tiktok_via_api(&app, &key, "tidepost.quiet").await;

    // "New post" opens the composer with this account chosen, per TikTok's guidelines.
    b.goto(&app.url(&account_path)).await;
    b.click(&format!(
        ".account-card a[href='/compose?account={account_id}']"
    ))
    .await;
    b.wait_for_path("the composer", |p| {
        p == format!("/compose?account={account_id}")
    })
    .await;
    let panel = format!("fieldset[data-target='{account_id}']");
    assert_eq!(
        b.text_of(&format!("{panel} .creator .nickname")).await,
        CREATOR_NAME
    );
    assert!(
        b.client
            .find(Locator::Css(&format!(
                "{panel} .creator .avatar, {panel} .creator .dot"
            )))
            .await
            .is_ok(),
        "the creator's avatar (or its stand-in) is shown"
    );
    let form: Value = b
        .client
        .execute(
            r#"const fs = document.querySelector("fieldset[data-target='" + arguments[0] + "']");
               const other = document.querySelector("fieldset[data-target='" + arguments[1] + "']");
               const p = fs.querySelector("[data-role=privacy]");
               const role = r => fs.querySelector("[data-role=" + r + "]");
               return {
                 chosen: fs.querySelector("input[name=targets]").checked,
                 other_chosen: other.querySelector("input[name=targets]").checked,
                 options_shown: !fs.querySelector(".target-options").hidden,
                 privacy: p.value,
                 placeholder_disabled: p.selectedOptions[0].disabled,
                 options: Array.from(p.options).filter(o => !o.disabled).map(o => o.value),
                 toggles: ["allow-comment", "allow-duet", "allow-stitch"].map(r => role(r).checked),
                 toggles_disabled: ["allow-comment", "allow-duet", "allow-stitch"].map(r => role(r).disabled),
                 labels: ["allow-comment", "allow-duet", "allow-stitch"].map(r => role(r).parentNode.innerText.trim()),
                 disclose: role("disclose").checked,
                 brands_hidden: role("brands").hidden,
                 aigc: role("aigc").checked,
                 aigc_label: role("aigc").parentNode.innerText,
                 consent: role("consent").innerText,
                 duration: fs.querySelector(".max-duration").innerText,
               };"#,
            vec![json!(account_id), json!(quiet_id)],
        )
        .await
        .unwrap();
    assert_eq!(form["chosen"], true, "the account is chosen: {form}");
    assert_eq!(form["other_chosen"], false, "only that one: {form}");
    assert_eq!(form["options_shown"], true, "its panel is open: {form}");
    assert_eq!(form["privacy"], "", "no privacy level preselected: {form}");
    assert_eq!(
        form["placeholder_disabled"], true,
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
        "the Allow boxes start off: {form}"
    );
    assert_eq!(
        form["toggles_disabled"],
        json!([false, false, false]),
        "{form}"
    );
    assert_eq!(
        form["labels"],
        json!(["Allow comments", "Allow duets", "Allow stitches"]),
        "{form}"
    );
    assert_eq!(form["disclose"], false, "disclosure starts off: {form}");
    assert_eq!(form["brands_hidden"], true, "{form}");
    assert_eq!(form["aigc"], false, "the AI label starts off: {form}");
    assert!(
        form["aigc_label"]
            .as_str()
            .unwrap()
            .contains("AI-generated"),
        "{form}"
    );
    let consent_line = form["consent"].as_str().unwrap();
    assert!(
        consent_line.contains("By posting, you agree to TikTok's Music Usage Confirmation."),
        "the consent line: {form}"
    );
    assert!(
        form["duration"].as_str().unwrap().contains("600 seconds"),
        "the creator's maximum duration: {form}"
    );
    b.assert_layout_fits("/compose with a TikTok account").await;
    b.screenshot(test, "05-composer").await;

    // The disclosure: its kinds show once it is on; "Branded content" names its label, adds
    // the Branded Content Policy to the consent line and cannot be "Only me".
    b.click(&format!("{panel} [data-role=disclose]")).await;
    let missing = run(
        &b,
        &format!(
            "const fs = document.querySelector(\"{panel}\"); \
             return [fs.querySelector('[data-role=brands]').hidden, \
                     fs.querySelector('[data-role=disclose-missing]').hidden, \
                     fs.querySelector('[data-role=brands]').innerText];"
        ),
    )
    .await;
    assert_eq!(missing[0], false, "the kinds show: {missing}");
    assert_eq!(missing[1], false, "it asks which: {missing}");
    let kinds = missing[2].as_str().unwrap();
    assert!(
        kinds.contains("Your brand")
            && kinds.contains("Promotional content")
            && kinds.contains("Branded content")
            && kinds.contains("Paid partnership")
            && kinds.contains(
                "You need to indicate if your content promotes yourself, a third party, or both."
            ),
        "{kinds}"
    );
    b.click(&format!("{panel} [data-role=brand-content]")).await;
    let branded = run(
        &b,
        &format!(
            "const fs = document.querySelector(\"{panel}\"); \
             const only = fs.querySelector('[data-role=privacy] option[value=SELF_ONLY]'); \
             return {{consent: fs.querySelector('[data-role=consent]').innerText, \
                     self_only_disabled: only ? only.disabled : null, \
                     note: fs.querySelector('[data-role=private-branded]').hidden ? '' : \
                       fs.querySelector('[data-role=private-branded]').innerText}};"
        ),
    )
    .await;
    assert!(
        branded["consent"].as_str().unwrap().contains(
            "By posting, you agree to TikTok's Branded Content Policy and Music Usage Confirmation."
        ),
        "{branded}"
    );
    assert_eq!(branded["self_only_disabled"], true, "{branded}");
    assert!(
        branded["note"]
            .as_str()
            .unwrap()
            .contains("cannot be set to private"),
        "{branded}"
    );
    b.screenshot_of(&panel, test, "06-panel-branded").await;
    // Back off; "Only me" then turns branded content off, with the reason.
    b.click(&format!("{panel} [data-role=brand-content]")).await;
    b.client
        .execute(
            "const s = document.querySelector(arguments[0]); s.value = 'SELF_ONLY'; \
             s.dispatchEvent(new Event('change', {bubbles: true}));",
            vec![json!(format!("{panel} [data-role=privacy]"))],
        )
        .await
        .unwrap();
    let private = run(
        &b,
        &format!(
            "const fs = document.querySelector(\"{panel}\"); \
             return [fs.querySelector('[data-role=brand-content]').disabled, \
                     fs.querySelector('[data-role=branded-reason]').hidden];"
        ),
    )
    .await;
    assert_eq!(
        private,
        json!([true, false]),
        "branded content off for Only me"
    );

    // A creator's own settings: the boxes stay off, disabled, with the reason.
    let quiet = format!("fieldset[data-target='{quiet_id}']");
    b.click(&format!("{quiet} input[name=targets]")).await;
    let off = run(
        &b,
        &format!(
            "const fs = document.querySelector(\"{quiet}\"); \
             return ['allow-comment', 'allow-duet', 'allow-stitch'].map(r => {{ \
               const box = fs.querySelector('[data-role=' + r + ']'); \
               return [box.checked, box.disabled, box.parentNode.innerText]; }});"
        ),
    )
    .await;
    for entry in off.as_array().unwrap() {
        assert_eq!(entry[0], false, "{off}");
        assert_eq!(entry[1], true, "{off}");
        assert!(
            entry[2]
                .as_str()
                .unwrap()
                .contains("turned off in this account's TikTok settings"),
            "{off}"
        );
    }
    assert!(
        b.text_of(&format!("{quiet} .creator .nickname")).await == "Quiet Quinn",
        "each panel names its creator"
    );
    b.screenshot_of(&quiet, test, "07-panel-creator-off").await;

    // The old single-account link opens the composer with the account chosen.
    b.goto(&app.url(&format!("/posts/new?account={account_id}")))
        .await;
    b.wait_for_path("the composer from the old link", |p| {
        p == format!("/compose?account={account_id}")
    })
    .await;
    assert_eq!(
        run(
            &b,
            &format!(
                "return [document.querySelector(\"{panel} input[name=targets]\").checked, \
                         document.querySelector(\"{quiet} input[name=targets]\").checked];"
            )
        )
        .await,
        json!([true, false])
    );

    // Refused on the page: no media yet. The message says why, focus is on the file field,
    // the caption stays and the button is usable.
    b.fill("#caption", CAPTION).await;
    let refused = refused_submit(&b, "no media", "Choose the media").await;
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("Choose the media"),
        "{refused}"
    );
    assert_eq!(refused["focus"], "compose-file", "{refused}");
    b.assert_layout_fits("/compose with a refused submit").await;
    b.screenshot(test, "08-refused-no-media").await;

    // A file over the size limit is refused before it is sent, and so is a submit with it.
    let files = tempfile::tempdir().unwrap();
    let big = files.path().join("huge.mp4");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(MAX_UPLOAD + 1)
        .unwrap();
    b.client
        .find(Locator::Css("#compose-file"))
        .await
        .unwrap()
        .send_keys(&big.display().to_string())
        .await
        .unwrap();
    let too_large = wait_for_text(&b, "#compose-upload-error", |t| !t.is_empty()).await;
    assert!(
        too_large.contains("huge.mp4") && too_large.contains("larger than"),
        "{too_large}"
    );
    let refused = refused_submit(&b, "a file over the limit", "larger than").await;
    assert!(
        refused["message"].as_str().unwrap().contains("larger than"),
        "{refused}"
    );
    assert_eq!(refused["focus"], "compose-file", "{refused}");
    b.screenshot_of("#compose-upload", test, "09-too-large")
        .await;

    // An upload tidepost refuses shows a plain-words message and a red bar.
    let notes = files.path().join("notes.txt");
    std::fs::write(&notes, "not a video").unwrap();
    let file_input = b.client.find(Locator::Css("#compose-file")).await.unwrap();
    file_input.clear().await.unwrap();
    file_input
        .send_keys(&notes.display().to_string())
        .await
        .unwrap();
    let refusal = wait_for_text(&b, "#compose-upload-error", |t| t.contains("notes.txt")).await;
    assert!(
        !refusal.contains('{') && !refusal.contains("HTTP") && !refusal.contains("answered"),
        "a plain message: {refusal}"
    );
    let failed = run(
        &b,
        "return document.getElementById('compose-upload').className;",
    )
    .await;
    assert_eq!(
        failed, "upload-progress failed",
        "the bar shows the failure"
    );
    b.assert_layout_fits("/compose with an upload error").await;
    b.screenshot_of("#compose-upload", test, "10-upload-refused")
        .await;

    // A video: watch the bar move forward to full, and the file is picked.
    let video = video_file(files.path(), "dawn.mp4");
    let video_bytes = std::fs::metadata(&video).unwrap().len();
    b.client.execute(RECORD_PROGRESS, vec![]).await.unwrap();
    let file_input = b.client.find(Locator::Css("#compose-file")).await.unwrap();
    file_input.clear().await.unwrap();
    file_input
        .send_keys(&video.display().to_string())
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while run(
        &b,
        "return !!document.querySelector('#media-picker input[name=media]:checked');",
    )
    .await
        != json!(true)
    {
        assert!(Instant::now() < deadline, "the upload never finished");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let seen = run(
        &b,
        "return JSON.parse(sessionStorage.getItem('progress') || '[]');",
    )
    .await;
    let steps = seen.as_array().unwrap();
    let values: Vec<f64> = steps.iter().map(|s| s[1].as_f64().unwrap()).collect();
    assert!(
        values.windows(2).all(|w| w[0] <= w[1]),
        "the bar never moves backwards: {seen}"
    );
    assert_eq!(
        values.last().copied(),
        Some(video_bytes as f64),
        "the bar ends full: {seen}"
    );
    assert!(
        values.iter().any(|v| *v < video_bytes as f64),
        "the bar moved: {seen}"
    );
    assert!(
        steps.iter().any(|s| s[0].as_str().unwrap().contains('%')),
        "the status counted: {seen}"
    );
    assert_eq!(
        b.text_of("#compose-upload-status").await,
        "Uploaded and added to the library."
    );
    b.screenshot_of("#compose-upload", test, "11-uploaded")
        .await;

    // Refused on the page: no privacy chosen (back to the placeholder); focus on the select.
    b.client
        .execute(
            "const s = document.querySelector(arguments[0]); s.value = ''; \
             s.dispatchEvent(new Event('change', {bubbles: true}));",
            vec![json!(format!("{panel} [data-role=privacy]"))],
        )
        .await
        .unwrap();
    let refused = refused_submit(&b, "no privacy", "Choose who can see").await;
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("Choose who can see"),
        "{refused}"
    );
    assert_eq!(
        refused["focus"],
        format!("privacy-{account_id}"),
        "{refused}"
    );
    assert!(
        b.text_of(&format!("[data-issues-for='{account_id}']"))
            .await
            .contains("Choose who can see"),
        "said beside the account"
    );
    b.screenshot_of(&panel, test, "12-refused-no-privacy").await;

    // Choose: everyone sees it, comments allowed, the AI label, the post promotes the
    // creator's own brand.
    b.click(&format!(
        "{panel} [data-role=privacy] option[value='PUBLIC_TO_EVERYONE']"
    ))
    .await;
    b.click(&format!("{panel} [data-role=allow-comment]")).await;
    b.click(&format!("{panel} [data-role=aigc]")).await;
    b.click(&format!("{panel} [data-role=disclose]")).await;
    b.click(&format!("{panel} [data-role=brand-organic]")).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while !b.text_of("#validation").await.starts_with("Ready for 1") {
        assert!(
            Instant::now() < deadline,
            "never ready: {}",
            b.text_of("main").await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    b.click("#compose-submit").await;

    // The post page follows the post to published (it refreshes itself while it moves).
    let post_path = b
        .wait_for_path("the post page", |p| {
            p.starts_with("/posts/") && !p.starts_with("/posts/new")
        })
        .await;
    let post_id = post_path.trim_start_matches("/posts/").to_string();
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut seen_states = Vec::new();
    loop {
        let state = b.text_of(".target strong").await;
        if seen_states.last() != Some(&state) {
            seen_states.push(state.clone());
        }
        if state == "published" {
            break;
        }
        assert!(
            state != "failed" && Instant::now() < deadline,
            "the post never reached published: {seen_states:?}: {}",
            b.text_of("main").await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(b.text_of("#post .pill").await, "published");
    assert!(b.text_of("#post").await.contains(CAPTION));
    let target = b.text_of(".target").await;
    assert!(
        target.contains(&format!(
            "{video_bytes} of {video_bytes} bytes sent to TikTok"
        )),
        "TikTok's part: {target}"
    );
    b.assert_layout_fits("the post page").await;
    b.screenshot(test, "13-post-published").await;

    // TikTok got what was chosen: the "Allow" boxes as disable flags, the label, the brand.
    let emulator = app.emulator.clone().unwrap();
    let publishes: Value = bare_client()
        .get(format!("{emulator}/_emulator/tiktok/publishes"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let info = &publishes["publishes"].as_array().unwrap().last().unwrap()["post_info"];
    assert_eq!(info["privacy_level"], "PUBLIC_TO_EVERYONE", "{info}");
    assert_eq!(info["disable_comment"], false, "{info}");
    assert_eq!(info["disable_duet"], true, "{info}");
    assert_eq!(info["disable_stitch"], true, "{info}");
    assert_eq!(info["is_aigc"], true, "{info}");
    assert_eq!(info["brand_organic_toggle"], true, "{info}");
    assert_eq!(info["brand_content_toggle"], false, "{info}");
    assert_eq!(info["title"], CAPTION, "{info}");

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
    b.screenshot(test, "14-dashboard-widget").await;
    b.screenshot_of(&format!("{card} .recent"), test, "15-dashboard-recent")
        .await;

    // Every TikTok page fits the screen.
    for (name, path) in [
        ("16-page-connect", "/connect/tiktok".to_string()),
        ("17-page-accounts", "/accounts".to_string()),
        ("18-page-account", format!("/accounts/{account_id}")),
        ("19-page-posts", "/posts".to_string()),
        ("20-page-compose", format!("/compose?account={account_id}")),
        ("21-page-post", format!("/posts/{post_id}")),
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
    let app = sandbox_app(Backend::Sqlite).await;
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
    // A real video: tidepost probes what it is given and refuses what it cannot read.
    let files = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(video_file(files.path(), "tide.mp4")).unwrap();
    let video = reqwest::multipart::Part::bytes(bytes)
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
    let deadline = Instant::now() + Duration::from_secs(180);
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
