//! Every way a post comes in goes through one media check: a file that is neither a video
//! ffprobe reads nor an image tidepost can sniff is refused wherever it enters, with the same
//! words, and nothing of it is kept or sent.
//!
//! The file is `notvideo.mp4`: 20 bytes of text sent as `video/mp4`. Each entry refuses it with
//! a message containing [`MESSAGE`]:
//!
//! - `POST /api/v1/posts` as multipart, for one TikTok account and for `targets`;
//! - `POST /api/v1/posts` as JSON naming stored media (`media_id`, or `media: [{media_id}]`)
//!   whose file no longer reads (the check probes the stored file again when a post uses it);
//! - `POST /api/v1/posts/validate` with those bodies (the single-account shape too): `valid:
//!   false` with the rule `media.probe`;
//! - a scheduled post whose file stopped reading before its time: its target fails with
//!   `media.probe` and nothing reaches TikTok;
//! - the TikTok and Instagram post pages and the composer, in a browser.
//!
//! API refusals are `422` problems whose `detail` says it and whose `errors[]` names the rule
//! `media.probe` with the message. Nothing is stored (no media, no post) and the emulator gets
//! no TikTok init and no Instagram container.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use fantoccini::Locator;
use reqwest::StatusCode;
use reqwest::header::CONTENT_TYPE;
use serde_json::{Value, json};
use tidepost_app::media::testing;

use crate::browser::Browser;
use crate::support::*;

/// What every refusal of `notvideo.mp4` says.
const MESSAGE: &str = "notvideo.mp4 could not be read as a video or image";
const NAME: &str = "notvideo.mp4";
/// 20 bytes of text.
const NOT_A_VIDEO: &[u8; 20] = b"this is not a video\n";
const CREATOR_USERNAME: &str = "tidepost.sandbox";

/// A server with the emulator and workers on, its media in a folder of its own; a TikTok and
/// an Instagram account connected through the emulator.
pub(crate) struct Scene {
    pub(crate) app: TestApp,
    pub(crate) key: String,
    pub(crate) tiktok: String,
    pub(crate) instagram: String,
    data: tempfile::TempDir,
}

pub(crate) async fn scene(backend: Backend) -> Scene {
    let data = tempfile::tempdir().unwrap();
    let app = spawn_app_with(
        backend,
        Options {
            emulator: true,
            workers: true,
            env: vec![("TIDEPOST_DATA_DIR", data.path().display().to_string())],
            ..Options::default()
        },
    )
    .await;
    let me = app.signed_in("entry").await;
    let key = app.api_key(&me.workspace.id, "entry", &[]).await;
    let tiktok = connect_tiktok_via_api(&app, &key, CREATOR_USERNAME).await;
    let instagram = connect_instagram_via_http(&app, &me).await;
    Scene {
        app,
        key,
        tiktok,
        instagram,
        data,
    }
}

impl Scene {
    pub(crate) async fn post(&self, path: &str, body: &Value) -> reqwest::Response {
        bare_client()
            .post(self.app.url(path))
            .bearer_auth(&self.key)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    async fn post_multipart(&self, form: reqwest::multipart::Form) -> reqwest::Response {
        bare_client()
            .post(self.app.url("/api/v1/posts"))
            .bearer_auth(&self.key)
            .multipart(form)
            .send()
            .await
            .unwrap()
    }

    async fn get(&self, path: &str) -> Value {
        self.app
            .api_get(&self.key, path)
            .await
            .json()
            .await
            .unwrap()
    }

    async fn emulator(&self, path: &str) -> Value {
        emulator_json(self.app.emulator.as_deref().unwrap(), path).await
    }

    /// Uploads a real video named `notvideo.mp4` through the media library, then overwrites
    /// its stored file (`<media_dir>/<sha256>`) with the 20 bytes of text. Returns its id.
    async fn stored_video_that_stopped_reading(&self, label: &str) -> String {
        let answer = bare_client()
            .post(self.app.url("/api/v1/media"))
            .bearer_auth(&self.key)
            .header(CONTENT_TYPE, "video/mp4")
            .header("x-file-name", NAME)
            .body(testing::video(64 * 1024, label))
            .send()
            .await
            .unwrap();
        assert_eq!(
            answer.status(),
            StatusCode::CREATED,
            "a real video is stored"
        );
        let media: Value = answer.json().await.unwrap();
        assert_eq!(media["kind"], "video", "{media}");
        let file = self.media_file(media["sha256"].as_str().unwrap());
        assert!(file.is_file(), "the stored file is at {}", file.display());
        std::fs::write(&file, NOT_A_VIDEO).unwrap();
        media["id"].as_str().unwrap().to_string()
    }

    fn media_file(&self, sha256: &str) -> PathBuf {
        self.data.path().join("media").join(sha256)
    }

    /// The single-account JSON body and the `targets` one, both using stored media `id`.
    fn json_bodies(&self, id: &str) -> [Value; 2] {
        [
            json!({
                "account_id": self.tiktok, "mode": "direct", "privacy_level": "SELF_ONLY",
                "caption": "single", "media_id": id,
            }),
            json!({
                "caption": "targets",
                "media": [{"media_id": id}],
                "targets": [
                    {"account_id": self.tiktok, "tiktok": {"privacy_level": "SELF_ONLY"}},
                    {"account_id": self.instagram, "instagram": {"media_type": "reel"}},
                ],
            }),
        ]
    }
}

fn not_a_video_part() -> reqwest::multipart::Part {
    reqwest::multipart::Part::bytes(NOT_A_VIDEO.to_vec())
        .file_name(NAME)
        .mime_str("video/mp4")
        .unwrap()
}

/// Whether `errors` holds the `media.probe` issue with [`MESSAGE`].
fn names_the_probe(errors: &Value) -> bool {
    errors.as_array().is_some_and(|errors| {
        errors.iter().any(|e| {
            e["rule"] == "media.probe" && e["message"].as_str().is_some_and(|m| m.contains(MESSAGE))
        })
    })
}

/// Asserts the API refusal: `422`, a problem whose `detail` and `errors[]` (rule
/// `media.probe`) carry [`MESSAGE`].
async fn assert_refused(response: reqwest::Response, what: &str) {
    let status = response.status();
    let content_type = response
        .headers()
        .get(CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let text = response.text().await.unwrap();
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{what}: {text}");
    assert_eq!(content_type, "application/problem+json", "{what}: {text}");
    let body: Value = serde_json::from_str(&text).unwrap();
    assert!(
        body["detail"].as_str().is_some_and(|d| d.contains(MESSAGE)),
        "{what}: the detail says {MESSAGE:?}: {body:#}"
    );
    assert!(
        names_the_probe(&body["errors"]),
        "{what}: errors[] names media.probe with {MESSAGE:?}: {body:#}"
    );
}

/// Nothing sent: no TikTok publish (no init reached the emulator), no Instagram container.
async fn assert_nothing_sent(s: &Scene) {
    let publishes = s.emulator("/_emulator/tiktok/publishes").await;
    assert_eq!(
        publishes["publishes"],
        json!([]),
        "TikTok got: {publishes:#}"
    );
    let meta = s.emulator("/_emulator/meta/media").await;
    assert_eq!(meta["containers"], json!([]), "Meta got: {meta:#}");
    let log = s.emulator("/_emulator/requests").await;
    let sent: Vec<&Value> = log["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| {
            let path = r["path"].as_str().unwrap_or_default();
            // Asking what the creator may post (creator_info) is how options are checked; it
            // publishes nothing.
            (path.contains("/post/publish/") && !path.contains("/creator_info/"))
                || path.ends_with("/media")
                || path.ends_with("/media_publish")
        })
        .collect();
    assert!(
        sent.is_empty(),
        "publishing calls reached the emulator: {sent:#?}"
    );
}

/// Nothing stored or sent: the media library holds exactly `kept` (the media a test stored on
/// purpose), there is no post, and nothing reached the emulator.
async fn assert_nothing_stored_or_sent(s: &Scene, kept: &[&str]) {
    let media = s.get("/api/v1/media").await;
    let mut ids: Vec<&str> = media["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    let mut kept = kept.to_vec();
    kept.sort_unstable();
    assert_eq!(ids, kept, "stored media: {media:#}");
    let posts = s.get("/api/v1/posts").await;
    assert_eq!(posts["data"], json!([]), "stored posts: {posts:#}");
    assert_nothing_sent(s).await;
}

both_backends!(
    multipart_for_one_account,
    multipart_with_targets,
    json_with_stored_media,
    validate_with_stored_media,
    a_scheduled_post_whose_file_stopped_reading_fails,
);

/// Case 1: multipart, one TikTok account.
async fn multipart_for_one_account(backend: Backend) {
    let s = scene(backend).await;
    let form = reqwest::multipart::Form::new()
        .text("account_id", s.tiktok.clone())
        .text("mode", "direct")
        .text("privacy_level", "SELF_ONLY")
        .text("caption", "not a video")
        .part("file", not_a_video_part());
    assert_refused(s.post_multipart(form).await, "multipart for one account").await;
    assert_nothing_stored_or_sent(&s, &[]).await;
}

/// Case 2: multipart with `targets` (TikTok and Instagram).
async fn multipart_with_targets(backend: Backend) {
    let s = scene(backend).await;
    let targets = json!([
        {"account_id": s.tiktok, "tiktok": {"privacy_level": "SELF_ONLY"}},
        {"account_id": s.instagram, "instagram": {"media_type": "reel"}},
    ]);
    let form = reqwest::multipart::Form::new()
        .text("caption", "not a video")
        .text("targets", targets.to_string())
        .part("file", not_a_video_part());
    assert_refused(s.post_multipart(form).await, "multipart with targets").await;
    assert_nothing_stored_or_sent(&s, &[]).await;
}

/// Case 3: JSON naming stored media whose file no longer reads: both shapes.
async fn json_with_stored_media(backend: Backend) {
    let s = scene(backend).await;
    let id = s.stored_video_that_stopped_reading("json").await;
    for (body, what) in s.json_bodies(&id).iter().zip(["media_id", "targets"]) {
        assert_refused(s.post("/api/v1/posts", body).await, what).await;
    }
    assert_nothing_stored_or_sent(&s, &[&id]).await;
}

/// Case 4: `/posts/validate` with the bodies of case 3: not valid, rule `media.probe`.
async fn validate_with_stored_media(backend: Backend) {
    let s = scene(backend).await;
    let id = s.stored_video_that_stopped_reading("validate").await;
    for (body, what) in s.json_bodies(&id).iter().zip(["media_id", "targets"]) {
        let answer = s.post("/api/v1/posts/validate", body).await;
        let status = answer.status();
        let text = answer.text().await.unwrap();
        assert_eq!(status, StatusCode::OK, "{what}: {text}");
        let verdict: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(verdict["valid"], false, "{what}: {verdict:#}");
        assert!(
            names_the_probe(&verdict["errors"]),
            "{what}: errors name media.probe with {MESSAGE:?}: {verdict:#}"
        );
    }
    assert_nothing_stored_or_sent(&s, &[&id]).await;
}

/// Case 5: a post accepted with a real video, whose file stops reading before its time: once
/// due, its target fails with `media.probe` and TikTok never hears of it.
async fn a_scheduled_post_whose_file_stopped_reading_fails(backend: Backend) {
    let s = scene(backend).await;
    let answer = bare_client()
        .post(s.app.url("/api/v1/media"))
        .bearer_auth(&s.key)
        .header(CONTENT_TYPE, "video/mp4")
        .header("x-file-name", NAME)
        .body(testing::video(64 * 1024, "scheduled"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::CREATED);
    let media: Value = answer.json().await.unwrap();
    let due = (tidepost_domain::now_ms() / 1000 + 5) * 1000;
    let accepted = s
        .post(
            "/api/v1/posts",
            &json!({
                "caption": "scheduled",
                "media": [{"media_id": media["id"]}],
                "targets": [{"account_id": s.tiktok, "tiktok": {"privacy_level": "SELF_ONLY"}}],
                "scheduled_at": tidepost_domain::time::rfc3339(due),
            }),
        )
        .await;
    let status = accepted.status();
    let post: Value = accepted.json().await.unwrap();
    assert_eq!(status, StatusCode::ACCEPTED, "{post:#}");
    assert_eq!(post["targets"][0]["state"], "scheduled", "{post:#}");
    std::fs::write(s.media_file(media["sha256"].as_str().unwrap()), NOT_A_VIDEO).unwrap();
    assert!(
        tidepost_domain::now_ms() < due,
        "the file changed before the post's time"
    );

    let path = format!("/api/v1/posts/{}", post["id"].as_str().unwrap());
    let deadline = Instant::now() + Duration::from_secs(180);
    let target = loop {
        let shown = s.get(&path).await;
        let target = shown["targets"][0].clone();
        if ["failed", "published", "cancelled"].contains(&target["state"].as_str().unwrap()) {
            break target;
        }
        assert!(Instant::now() < deadline, "never settled: {shown:#}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(target["state"], "failed", "{target:#}");
    assert_eq!(target["error"]["code"], "media.probe", "{target:#}");
    assert!(
        target["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains(MESSAGE)),
        "{target:#}"
    );
    assert_nothing_sent(&s).await;
}

// Case 6, in the browser: each page shows the refusal, its submit button works again, and
// nothing is stored or sent.

/// Signs the scene's user in through the form.
async fn sign_in(b: &Browser, s: &Scene) {
    b.goto(&s.app.url("/login")).await;
    b.fill("#email", "owner@entry.example").await;
    b.fill("#password", PASSWORD).await;
    b.click("form[action='/login'] button[type=submit]").await;
    b.wait_for_path("the dashboard", |p| p == "/").await;
}

/// Writes `notvideo.mp4` into `dir` and chooses it in the file input `input`.
async fn choose_not_a_video(b: &Browser, dir: &std::path::Path, input: &str) {
    let path = dir.join(NAME);
    std::fs::write(&path, NOT_A_VIDEO).unwrap();
    b.client
        .find(Locator::Css(input))
        .await
        .unwrap()
        .send_keys(&path.display().to_string())
        .await
        .unwrap();
}

/// Waits for the text of `css` to contain [`MESSAGE`] (the page's refusal); then the button
/// `submit` must be enabled again.
async fn assert_shown(b: &Browser, css: &str, submit: &str) {
    let script = format!(
        "const e = document.querySelector({css:?}); return e && !e.hidden ? e.textContent : null;"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let shown = b.client.execute(&script, vec![]).await.unwrap();
        if shown.as_str().is_some_and(|t| t.contains(MESSAGE)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{css} never said {MESSAGE:?}; it says {shown}; at {}: {}",
            b.path().await,
            b.text_of("main").await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let disabled = b
        .client
        .execute(
            &format!("return document.querySelector({submit:?}).disabled;"),
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(disabled, json!(false), "{submit} can be pressed again");
}

/// The single-account post page (the composer with that account chosen) and the composer
/// itself: choosing the file uploads it to the library at once, which refuses it with the
/// message; the form stays usable and nothing is kept.
async fn the_composer_refuses_it_for(s: &Scene, path: &str, account: Option<&str>) {
    let b = Browser::start(1280, 800).await;
    sign_in(&b, s).await;
    b.goto(&s.app.url(path)).await;
    b.wait_for_path("the composer", |p| p.starts_with("/compose"))
        .await;
    if let Some(account) = account {
        let chosen = b
            .client
            .execute(
                &format!(
                    "const e = document.querySelector('input[name=targets][value=\"{account}\"]'); return e && e.checked;"
                ),
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(
            chosen,
            json!(true),
            "{path} opens the composer with the account chosen"
        );
    }
    let files = tempfile::tempdir().unwrap();
    choose_not_a_video(&b, files.path(), "#compose-file").await;
    assert_shown(&b, "#compose-upload-error", "#compose-submit").await;
    assert_nothing_stored_or_sent(s, &[]).await;
    b.close().await;
}

#[tokio::test]
async fn the_tiktok_page_refuses_it() {
    let s = scene(Backend::Sqlite).await;
    let path = format!("/posts/new?account={}", s.tiktok);
    the_composer_refuses_it_for(&s, &path, Some(&s.tiktok)).await;
}

#[tokio::test]
async fn the_instagram_page_refuses_it() {
    let s = scene(Backend::Sqlite).await;
    let path = format!("/posts/new?account={}", s.instagram);
    the_composer_refuses_it_for(&s, &path, Some(&s.instagram)).await;
}

#[tokio::test]
async fn the_composer_refuses_it() {
    let s = scene(Backend::Sqlite).await;
    the_composer_refuses_it_for(&s, "/compose", None).await;
}
