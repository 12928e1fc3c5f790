//! `POST /api/v1/posts/validate` and `POST /api/v1/posts` read the same bodies and give the
//! same answer: a property over generated bodies of every shape (one TikTok account, one
//! Instagram account, `targets[]` with unknown accounts among them), good and bad options,
//! media of every kind (an uploaded video, an uploaded image, stored media that does not
//! exist, URLs, photo URLs), captions too long for a platform, times in the past and ahead.
//! For each body, `validate` is asked first, then `posts`, in the same workspace and state:
//! `validate` calls it valid exactly when `posts` accepts it, and a refusal names the same
//! problems (rule and field).

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};
use reqwest::StatusCode;
use reqwest::header::CONTENT_TYPE;
use serde_json::{Map, Value, json};
use tidepost_app::media::testing;

use crate::entry_pipeline::{Scene, scene};
use crate::support::*;

/// What a generated body is made of; [`Body::json`] writes it with the scene's ids.
#[derive(Debug, Clone)]
struct Body {
    shape: Shape,
    caption: Caption,
    media: Media,
    privacy: Option<&'static str>,
    mode: Option<&'static str>,
    flags: (bool, bool, bool),
    ig_type: Option<&'static str>,
    when: When,
}

#[derive(Debug, Clone, Copy)]
enum Shape {
    SingleTiktok,
    SingleInstagram,
    /// `targets`: the TikTok account, the Instagram account, an account of no one.
    Targets(bool, bool, bool),
}

#[derive(Debug, Clone, Copy)]
enum Caption {
    Short,
    Empty,
    /// Over TikTok's 2200 characters and Instagram's 2200.
    TooLong,
}

#[derive(Debug, Clone, Copy)]
enum Media {
    None,
    UploadedVideo,
    UploadedImage,
    MissingMediaId,
    VideoUrl,
    PhotoUrls,
}

#[derive(Debug, Clone, Copy)]
enum When {
    Now,
    InTwoHours,
    AnHourAgo,
}

fn body() -> impl Strategy<Value = Body> {
    let shape = prop_oneof![
        Just(Shape::SingleTiktok),
        Just(Shape::SingleInstagram),
        (any::<bool>(), any::<bool>(), any::<bool>()).prop_map(|(t, i, u)| Shape::Targets(t, i, u)),
    ];
    let caption = prop_oneof![
        4 => Just(Caption::Short),
        1 => Just(Caption::Empty),
        1 => Just(Caption::TooLong),
    ];
    let media = prop_oneof![
        Just(Media::None),
        Just(Media::UploadedVideo),
        Just(Media::UploadedImage),
        Just(Media::MissingMediaId),
        Just(Media::VideoUrl),
        Just(Media::PhotoUrls),
    ];
    let privacy = prop_oneof![
        Just(None),
        Just(Some("SELF_ONLY")),
        Just(Some("PUBLIC_TO_EVERYONE")),
        Just(Some("NOT_A_LEVEL")),
    ];
    let mode = prop_oneof![Just(None), Just(Some("direct")), Just(Some("inbox"))];
    let ig_type = prop_oneof![
        Just(None),
        Just(Some("image")),
        Just(Some("reel")),
        Just(Some("story")),
        Just(Some("carousel")),
    ];
    let when = prop_oneof![
        3 => Just(When::Now),
        1 => Just(When::InTwoHours),
        1 => Just(When::AnHourAgo),
    ];
    (
        shape,
        caption,
        media,
        privacy,
        mode,
        any::<(bool, bool, bool)>(),
        ig_type,
        when,
    )
        .prop_map(
            |(shape, caption, media, privacy, mode, flags, ig_type, when)| Body {
                shape,
                caption,
                media,
                privacy,
                mode,
                flags,
                ig_type,
                when,
            },
        )
}

/// The ids a body refers to.
struct Ids {
    tiktok: String,
    instagram: String,
    video: String,
    image: String,
    media_base: String,
}

impl Body {
    fn json(&self, ids: &Ids) -> Value {
        let mut body = Map::new();
        let caption = match self.caption {
            Caption::Short => "a post #tidepost".to_string(),
            Caption::Empty => String::new(),
            Caption::TooLong => "x".repeat(2300),
        };
        body.insert("caption".into(), json!(caption));
        let tiktok_options = || {
            let mut o = Map::new();
            if let Some(p) = self.privacy {
                o.insert("privacy_level".into(), json!(p));
            }
            if let Some(m) = self.mode {
                o.insert("mode".into(), json!(m));
            }
            o.insert("disable_comment".into(), json!(self.flags.0));
            o.insert("disable_duet".into(), json!(self.flags.1));
            o.insert("brand_content_toggle".into(), json!(self.flags.2));
            o
        };
        let instagram_options = || {
            let mut o = Map::new();
            if let Some(t) = self.ig_type {
                o.insert("media_type".into(), json!(t));
            }
            o
        };
        // The media as items (`targets` and the Instagram object) and as the single TikTok
        // shape's fields.
        let items: Vec<Value> = match self.media {
            Media::None => vec![],
            Media::UploadedVideo => vec![json!({"media_id": ids.video})],
            Media::UploadedImage => vec![json!({"media_id": ids.image})],
            Media::MissingMediaId => vec![json!({"media_id": "no-such-media"})],
            Media::VideoUrl => vec![json!({"url": format!("{}/clip.mp4", ids.media_base)})],
            Media::PhotoUrls => vec![
                json!({"url": format!("{}/a.jpg", ids.media_base)}),
                json!({"url": format!("{}/b.jpg", ids.media_base)}),
            ],
        };
        match self.shape {
            Shape::SingleTiktok => {
                body.insert("account_id".into(), json!(ids.tiktok));
                body.extend(tiktok_options());
                match self.media {
                    Media::None => {}
                    Media::UploadedVideo | Media::UploadedImage | Media::MissingMediaId => {
                        body.insert("media_id".into(), items[0]["media_id"].clone());
                    }
                    Media::VideoUrl => {
                        body.insert("media_url".into(), items[0]["url"].clone());
                    }
                    Media::PhotoUrls => {
                        let urls: Vec<Value> = items.iter().map(|i| i["url"].clone()).collect();
                        body.insert("photo_urls".into(), Value::Array(urls));
                    }
                }
            }
            Shape::SingleInstagram => {
                body.insert("account_id".into(), json!(ids.instagram));
                let mut ig = instagram_options();
                ig.insert("items".into(), Value::Array(items));
                body.insert("instagram".into(), Value::Object(ig));
            }
            Shape::Targets(tiktok, instagram, unknown) => {
                let mut targets = Vec::new();
                if tiktok {
                    targets.push(json!({"account_id": ids.tiktok, "tiktok": tiktok_options()}));
                }
                if instagram {
                    targets.push(
                        json!({"account_id": ids.instagram, "instagram": instagram_options()}),
                    );
                }
                if unknown {
                    targets.push(json!({"account_id": "no-such-account"}));
                }
                body.insert("targets".into(), Value::Array(targets));
                body.insert("media".into(), Value::Array(items));
            }
        }
        let hour = 3_600_000;
        match self.when {
            When::Now => {}
            When::InTwoHours => {
                let at = tidepost_domain::now_ms() + 2 * hour;
                body.insert(
                    "scheduled_at".into(),
                    json!(tidepost_domain::time::rfc3339(at)),
                );
            }
            When::AnHourAgo => {
                let at = tidepost_domain::now_ms() - hour;
                body.insert(
                    "scheduled_at".into(),
                    json!(tidepost_domain::time::rfc3339(at)),
                );
            }
        }
        Value::Object(body)
    }
}

/// The problems of a refusal, as (rule, field) pairs, sorted.
fn problems(errors: &Value) -> Vec<(String, String)> {
    let mut list: Vec<(String, String)> = errors
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|e| {
                    (
                        e["rule"].as_str().unwrap_or_default().to_string(),
                        e["field"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    list.sort();
    list
}

async fn upload(s: &Scene, bytes: Vec<u8>, content_type: &str, name: &str) -> String {
    let answer = bare_client()
        .post(s.app.url("/api/v1/media"))
        .bearer_auth(&s.key)
        .header(CONTENT_TYPE, content_type)
        .header("x-file-name", name)
        .body(bytes)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::CREATED);
    let media: Value = answer.json().await.unwrap();
    media["id"].as_str().unwrap().to_string()
}

/// One body through both: the verdicts agree. `Ok(true)` when the post was accepted.
async fn check(s: &Scene, body: &Value) -> Result<bool, String> {
    let verdict = s.post("/api/v1/posts/validate", body).await;
    let verdict_status = verdict.status();
    let verdict: Value = verdict.json().await.unwrap();
    let answer = s.post("/api/v1/posts", body).await;
    let status = answer.status();
    let answer: Value = answer.json().await.unwrap();
    if verdict_status != StatusCode::OK {
        // A body refused before the post is checked (a field that does not parse): the same
        // refusal from both.
        return (status == verdict_status && answer["field"] == verdict["field"])
            .then_some(false)
            .ok_or(format!(
                "validate refused the body with {verdict_status} {verdict}, posts answered {status} {answer}"
            ));
    }
    let valid = verdict["valid"] == json!(true);
    let accepted = status == StatusCode::ACCEPTED;
    if valid != accepted {
        return Err(format!(
            "validate said valid={valid} ({verdict}), posts answered {status} ({answer})"
        ));
    }
    if accepted {
        let planned = verdict["targets"].as_array().map_or(0, Vec::len);
        let made = answer["targets"].as_array().map_or(0, Vec::len);
        return (planned == made).then_some(true).ok_or(format!(
            "validate planned {planned} targets, posts made {made}: {verdict} / {answer}"
        ));
    }
    let expected = problems(&verdict["errors"]);
    if answer.get("errors").is_some() {
        let got = problems(&answer["errors"]);
        return (got == expected).then_some(false).ok_or(format!(
            "validate found {expected:?}, posts refused with {got:?} ({answer})"
        ));
    }
    // The single-account shape answers one problem with its own status (404, 409, 429, 502,
    // 503): validate names that one problem.
    let rule = match status {
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::CONFLICT => "needs_reauth",
        StatusCode::TOO_MANY_REQUESTS => "quota",
        StatusCode::BAD_GATEWAY => "provider",
        StatusCode::SERVICE_UNAVAILABLE => "unavailable",
        other => return Err(format!("posts answered {other} without errors: {answer}")),
    };
    (expected.len() == 1 && expected[0].0 == rule)
        .then_some(false)
        .ok_or(format!(
            "posts answered {status} ({answer}), validate found {expected:?}"
        ))
}

async fn validate_says_valid_exactly_when_posts_accepts(backend: Backend) {
    let s = scene(backend).await;
    let ids = Ids {
        tiktok: s.tiktok.clone(),
        instagram: s.instagram.clone(),
        video: upload(
            &s,
            testing::video(64 * 1024, "agree"),
            "video/mp4",
            "clip.mp4",
        )
        .await,
        image: upload(&s, testing::jpeg(1080, 1080), "image/jpeg", "photo.jpg").await,
        // Nothing listens here: URL media are checked for their form and their address, not
        // fetched while the post is checked.
        media_base: "https://media.tidepost.invalid".into(),
    };
    let mut runner = TestRunner::new(Config {
        cases: 40,
        ..Config::default()
    });
    let strategy = body();
    let mut failures = Vec::new();
    let mut accepted = 0;
    for _ in 0..40 {
        let body = strategy.new_tree(&mut runner).unwrap().current();
        let json = body.json(&ids);
        match check(&s, &json).await {
            Ok(true) => accepted += 1,
            Ok(false) => {}
            Err(why) => failures.push(format!("{body:?}\n  {json}\n  {why}")),
        }
    }
    // Both verdicts were met, so the agreement means something.
    assert!(
        (1..40).contains(&accepted),
        "{accepted} of 40 generated bodies were accepted"
    );
    assert!(
        failures.is_empty(),
        "validate and posts disagree on {} of 40 bodies:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

both_backends!(validate_says_valid_exactly_when_posts_accepts);
