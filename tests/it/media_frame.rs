//! The frame picker's route, `GET /api/v1/media/{id}/frame?at_ms=N`: the frame it serves is
//! the video's picture at that time (compared pixel by pixel with the frame the test takes out
//! of the same file with ffmpeg by its number, and told apart from another time's), times are
//! taken in 100 ms steps (`X-Frame-At-Ms`), a signed-in browser reads it with its session, and
//! every bad request is a problem naming its field: `at_ms` missing, not a number or past the
//! end, media that is not a video; another workspace's media is a 404. A TikTok cover frame
//! (`video_cover_timestamp_ms`) past the stored video's end, or on a photo post, is refused
//! naming the field and the target. On SQLite and PostgreSQL.

use std::path::Path;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::media::{jpeg, mp4};
use crate::support::*;

both_backends!(
    the_frame_is_the_videos_picture_at_that_time,
    a_tiktok_cover_frame_must_lie_within_the_video,
);

/// The test clip's frame rate (`crate::media::mp4`: testsrc at 30 fps, 4 s, 360×640).
const FPS: u64 = 30;

/// Raw RGB pixels of what ffmpeg decodes from `input` with `filters` (one frame).
fn rgb(input: &Path, filters: &str) -> Vec<u8> {
    let output = std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-i"])
        .arg(input)
        .args([
            "-vf",
            filters,
            "-frames:v",
            "1",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "pipe:1",
        ])
        .output()
        .expect("ffmpeg runs (Debian: apt-get install ffmpeg)");
    assert!(
        output.status.success(),
        "ffmpeg decoded {}: {}",
        input.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// The frame numbered `n` of `video`, found by counting frames (no seeking).
fn nth_frame(video: &Path, n: u64) -> Vec<u8> {
    rgb(video, &format!("select=eq(n\\,{n})"))
}

/// Mean absolute difference of two pictures of the same size, per colour value.
fn difference(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len(), "the pictures have the same size");
    let total: u64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| u64::from(x.abs_diff(*y)))
        .sum();
    total as f64 / a.len() as f64
}

async fn upload(app: &TestApp, key: &str, content_type: &str, bytes: Vec<u8>) -> Value {
    let answer = bare_client()
        .post(app.url("/api/v1/media"))
        .bearer_auth(key)
        .header("content-type", content_type)
        .body(bytes)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::CREATED);
    answer.json().await.unwrap()
}

async fn the_frame_is_the_videos_picture_at_that_time(backend: Backend) {
    let app = spawn_app(backend).await;
    let me = app.signed_in("frames").await;
    let key = app.api_key(&me.workspace.id, "frames", &[]).await;
    let dir = tempfile::tempdir().unwrap();
    let video_bytes = mp4(dir.path());
    let video_path = dir.path().join("clip.mp4");
    std::fs::write(&video_path, &video_bytes).unwrap();
    let video = upload(&app, &key, "video/mp4", video_bytes).await;
    let id = video["id"].as_str().unwrap();
    let frame = |at: &str| {
        let url = app.url(&format!("/api/v1/media/{id}/frame?at_ms={at}"));
        let key = key.clone();
        async move {
            bare_client()
                .get(url)
                .bearer_auth(key)
                .send()
                .await
                .unwrap()
        }
    };

    // 1.5 s is frame 45: the route's JPEG decodes to that picture, not to another time's.
    let answer = frame("1500").await;
    if answer.status() != StatusCode::OK {
        panic!("{}: {}", answer.status(), answer.text().await.unwrap());
    }
    assert_eq!(answer.headers()["content-type"], "image/jpeg");
    assert_eq!(answer.headers()["x-frame-at-ms"], "1500");
    let at_1500 = answer.bytes().await.unwrap().to_vec();
    assert_eq!(&at_1500[..3], &[0xFF, 0xD8, 0xFF], "a JPEG");
    let served = dir.path().join("served.jpg");
    std::fs::write(&served, &at_1500).unwrap();
    let served = rgb(&served, "null");
    let expected = nth_frame(&video_path, 1500 * FPS / 1000);
    let elsewhere = nth_frame(&video_path, 3000 * FPS / 1000);
    let near = difference(&served, &expected);
    let far = difference(&served, &elsewhere);
    assert!(
        near < 4.0,
        "the served frame is the picture at 1.5 s (mean difference {near:.2})"
    );
    assert!(
        far > 4.0 * near.max(1.0),
        "and not the picture at 3 s (mean difference {far:.2} against {near:.2})"
    );

    // A time inside the same 100 ms step is the same frame (cached, not rendered again).
    let answer = frame("1549").await;
    assert_eq!(answer.headers()["x-frame-at-ms"], "1500");
    assert_eq!(answer.bytes().await.unwrap().to_vec(), at_1500);
    let later = frame("3000").await.bytes().await.unwrap().to_vec();
    assert_ne!(later, at_1500, "another time, another frame");

    // A signed-in browser reads it with its session.
    let answer = me
        .client
        .get(app.url(&format!("/api/v1/media/{id}/frame?at_ms=1500")))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    assert_eq!(answer.bytes().await.unwrap().to_vec(), at_1500);

    // Bad times, each a problem naming at_ms.
    for at in ["", "abc", "-1", "1.5", "4000", "999999999999"] {
        let p = problem(
            frame(at).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-request",
        )
        .await;
        assert_eq!(p["field"], "at_ms", "at_ms={at}: {p}");
        assert!(p["detail"].as_str().unwrap().starts_with("at_ms"), "{p}");
    }
    let p = problem(
        bare_client()
            .get(app.url(&format!("/api/v1/media/{id}/frame")))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid-request",
    )
    .await;
    assert_eq!(p["field"], "at_ms");
    let past = problem(
        frame("4000").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid-request",
    )
    .await;
    assert!(
        past["detail"]
            .as_str()
            .unwrap()
            .contains("past the video's end"),
        "{past}"
    );

    // An image has no frames.
    let image = upload(&app, &key, "image/jpeg", jpeg(dir.path(), 300, 300)).await;
    let p = problem(
        bare_client()
            .get(app.url(&format!(
                "/api/v1/media/{}/frame?at_ms=0",
                image["id"].as_str().unwrap()
            )))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid-request",
    )
    .await;
    assert_eq!(p["field"], "media");
    assert!(p["detail"].as_str().unwrap().contains("not a video"), "{p}");

    // Another workspace sees no such media; nobody signed out sees anything.
    let other = app.signed_in("other-frames").await;
    let other_key = app.api_key(&other.workspace.id, "other", &[]).await;
    let answer = bare_client()
        .get(app.url(&format!("/api/v1/media/{id}/frame?at_ms=1500")))
        .bearer_auth(&other_key)
        .send()
        .await
        .unwrap();
    problem(answer, StatusCode::NOT_FOUND, "not-found").await;
    let answer = bare_client()
        .get(app.url(&format!("/api/v1/media/{id}/frame?at_ms=abc")))
        .bearer_auth(&other_key)
        .send()
        .await
        .unwrap();
    problem(answer, StatusCode::NOT_FOUND, "not-found").await;
    let answer = bare_client()
        .get(app.url(&format!("/api/v1/media/{id}/frame?at_ms=1500")))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::UNAUTHORIZED);
}

async fn a_tiktok_cover_frame_must_lie_within_the_video(backend: Backend) {
    let app = spawn_app_with(
        backend,
        Options {
            emulator: true,
            ..Options::default()
        },
    )
    .await;
    let me = app.signed_in("covers").await;
    let key = app.api_key(&me.workspace.id, "covers", &[]).await;
    let account = connect_tiktok_via_api(&app, &key, "tidepost.sandbox").await;
    let video = upload(
        &app,
        &key,
        "video/mp4",
        tidepost_app::media::testing::video(4096, "covers"),
    )
    .await;
    let validate = |cover: u64, media: Value| {
        let body = json!({
            "caption": "covers",
            "media": [media],
            "targets": [{"account_id": account, "tiktok": {
                "privacy_level": "SELF_ONLY",
                "video_cover_timestamp_ms": cover,
            }}],
        });
        let url = app.url("/api/v1/posts/validate");
        let key = key.clone();
        async move {
            let answer = bare_client()
                .post(url)
                .bearer_auth(key)
                .json(&body)
                .send()
                .await
                .unwrap();
            answer.json::<Value>().await.unwrap()
        }
    };
    let stored = json!({"media_id": video["id"]});
    let inside = validate(3400, stored.clone()).await;
    assert_eq!(inside["valid"], true, "{inside:#}");
    // The clip lasts 3.5 s.
    let past = validate(3500, stored).await;
    assert_eq!(past["valid"], false, "{past:#}");
    let issue = &past["errors"][0];
    assert_eq!(issue["field"], "targets[0].tiktok.video_cover_timestamp_ms");
    assert_eq!(issue["account_id"], account.as_str());
    assert!(
        issue["message"]
            .as_str()
            .unwrap()
            .contains("past the video's end"),
        "{issue}"
    );
    let photo = validate(
        0,
        json!({"url": "https://media.tidepost.example/a.jpg", "kind": "image"}),
    )
    .await;
    assert_eq!(photo["valid"], false, "{photo:#}");
    assert_eq!(
        photo["errors"][0]["field"],
        "targets[0].tiktok.video_cover_timestamp_ms"
    );
}
