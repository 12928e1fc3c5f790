//! Every documented Instagram publishing option through the API, to the emulator's record of
//! the container calls: collaborators, user tags (on an image at x/y, on a reel by name, on a
//! carousel per item), `location_id`, `alt_text`, a reel's `thumb_offset`, `audio_name`,
//! `share_to_feed` and `trial_params`; each refusal is a 422 naming
//! `targets[N].instagram.FIELD` (or `instagram.FIELD` in the single-account shape) with
//! nothing stored; and what only Meta can know is refused by the emulator as Meta does (a
//! `thumb_offset` past the video's end, 2207057; a `location_id` that is not a place), the
//! target failing with the reason. The emulator's own refusals (too many collaborators or
//! tags, `alt_text` on a reel) are checked against it directly.
//!
//! The first comment: posted once under the published media and shown on the target
//! (`first_comment: {state, comment_id, error, attempts}`), after transient refusals too, and
//! never twice when the answer of a call that posted it was lost (the next run finds it under
//! the media instead of posting again).

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use tidepost_app::media::testing;
use tidepost_emulator::meta::publishing::PLACES;

use crate::support::*;

both_backends!(
    each_option_reaches_the_emulator,
    each_refusal_names_the_field,
    meta_refuses_what_only_it_knows,
    the_first_comment_is_posted_once,
    a_first_comment_refused_for_good,
);

/// Serves a square JPEG and the test clip (3.5 s) on a free local port; returns the base URL.
async fn media_server() -> String {
    let router = axum::Router::new()
        .route(
            "/media/square.jpg",
            axum::routing::get(|| async {
                (
                    [(axum::http::header::CONTENT_TYPE, "image/jpeg")],
                    testing::jpeg(1080, 1080),
                )
            }),
        )
        .route(
            "/media/clip.mp4",
            axum::routing::get(|| async {
                (
                    [(axum::http::header::CONTENT_TYPE, "video/mp4")],
                    testing::video(4096, "options"),
                )
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}/media")
}

pub(crate) struct Scene {
    pub(crate) app: TestApp,
    pub(crate) key: String,
    pub(crate) account: String,
    pub(crate) media: String,
    pub(crate) me: SignedIn,
}

pub(crate) async fn scene(backend: Backend) -> Scene {
    let app = spawn_app_with(
        backend,
        Options {
            emulator: true,
            workers: true,
            ..Options::default()
        },
    )
    .await;
    let me = app.signed_in("igopts").await;
    let key = app.api_key(&me.workspace.id, "igopts", &[]).await;
    let account = connect_instagram_via_http(&app, &me).await;
    Scene {
        app,
        key,
        account,
        media: media_server().await,
        me,
    }
}

impl Scene {
    pub(crate) fn image(&self) -> Value {
        json!({"url": format!("{}/square.jpg", self.media)})
    }

    pub(crate) fn video(&self) -> Value {
        json!({"url": format!("{}/clip.mp4", self.media)})
    }

    pub(crate) async fn post(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        let answer = bare_client()
            .post(self.app.url(path))
            .bearer_auth(&self.key)
            .json(body)
            .send()
            .await
            .unwrap();
        let status = answer.status();
        let text = answer.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// A post of `media` to the account with these Instagram options.
    pub(crate) fn body(&self, media: Vec<Value>, instagram: Value) -> Value {
        // Stories take no caption.
        let caption = if instagram["media_type"] == "story" {
            ""
        } else {
            "options"
        };
        json!({
            "caption": caption,
            "media": media,
            "targets": [{"account_id": self.account, "instagram": instagram}],
        })
    }

    pub(crate) async fn emulator(&self, path: &str) -> Value {
        let emulator = self.app.emulator.clone().unwrap();
        bare_client()
            .get(format!("{emulator}{path}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// The post once its target is published or failed.
    pub(crate) async fn settled(&self, post_id: &str) -> Value {
        let path = format!("/api/v1/posts/{post_id}");
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            let post: Value = self
                .app
                .api_get(&self.key, &path)
                .await
                .json()
                .await
                .unwrap();
            let state = post["targets"][0]["state"]
                .as_str()
                .unwrap_or("")
                .to_string();
            if ["published", "failed", "cancelled"].contains(&state.as_str()) {
                return post;
            }
            assert!(Instant::now() < deadline, "never settled: {post:#}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Posts `body`, waits until it is published, and returns the post.
    pub(crate) async fn published(&self, body: &Value) -> Value {
        let (status, post) = self.post("/api/v1/posts", body).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{post:#}");
        let post = self.settled(post["id"].as_str().unwrap()).await;
        assert_eq!(post["targets"][0]["state"], "published", "{post:#}");
        post
    }

    /// The one container `publish_id` names, as the emulator recorded it.
    async fn container(&self, post: &Value) -> Value {
        let id = post["targets"][0]["publish_id"].as_str().unwrap();
        let all = self.emulator("/_emulator/meta/media").await;
        all["containers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("no container {id}: {all:#}"))
    }
}

fn json_param(container: &Value, name: &str) -> Value {
    let raw = container["params"][name]
        .as_str()
        .unwrap_or_else(|| panic!("{name} was not sent: {container:#}"));
    serde_json::from_str(raw).unwrap()
}

async fn each_option_reaches_the_emulator(backend: Backend) {
    let s = scene(backend).await;
    let place = PLACES[0].0;

    // An image: collaborators (a leading @ dropped), a tag at x/y, a place, alt text.
    let post = s
        .published(&s.body(
            vec![s.image()],
            json!({
                "media_type": "image",
                "collaborators": ["@ana.tide", "bo_sea"],
                "user_tags": [{"username": "ana.tide", "x": 0.25, "y": 0.75}],
                "location_id": place,
                "alt_text": "A grey square at low tide",
            }),
        ))
        .await;
    let image = s.container(&post).await;
    assert_eq!(image["media_type"], "IMAGE", "{image:#}");
    assert_eq!(
        json_param(&image, "collaborators"),
        json!(["ana.tide", "bo_sea"])
    );
    assert_eq!(
        json_param(&image, "user_tags"),
        json!([{"username": "ana.tide", "x": 0.25, "y": 0.75}])
    );
    assert_eq!(image["params"]["location_id"], place);
    assert_eq!(image["params"]["alt_text"], "A grey square at low tide");
    // The options are part of the post as accepted.
    let accepted = &post["options"]["targets"][0]["instagram"];
    assert_eq!(accepted["location_id"], place, "{post:#}");
    assert_eq!(
        accepted["alt_text"], "A grey square at low tide",
        "{post:#}"
    );

    // A reel: the cover frame, the audio's name, a trial reel, a tag by name, not in the feed.
    let post = s
        .published(&s.body(
            vec![s.video()],
            json!({
                "media_type": "reel",
                "thumb_offset": 1200,
                "audio_name": "Tide sound",
                "share_to_feed": false,
                "trial_params": {"graduation_strategy": "SS_PERFORMANCE"},
                "user_tags": [{"username": "bo_sea"}],
                "collaborators": ["ana.tide"],
                "location_id": place,
            }),
        ))
        .await;
    let reel = s.container(&post).await;
    assert_eq!(reel["media_type"], "REELS", "{reel:#}");
    assert_eq!(reel["params"]["thumb_offset"], "1200");
    assert_eq!(reel["params"]["audio_name"], "Tide sound");
    assert_eq!(reel["share_to_feed"], false);
    assert_eq!(
        json_param(&reel, "trial_params"),
        json!({"graduation_strategy": "SS_PERFORMANCE"})
    );
    assert_eq!(
        json_param(&reel, "user_tags"),
        json!([{"username": "bo_sea"}])
    );
    assert_eq!(json_param(&reel, "collaborators"), json!(["ana.tide"]));

    // A carousel: tags on the item they name (counted from 0), the place and collaborators on
    // the carousel itself.
    let post = s
        .published(&s.body(
            vec![s.image(), s.video()],
            json!({
                "user_tags": [
                    {"item": 0, "username": "ana.tide", "x": 0.5, "y": 0.5},
                    {"item": 1, "username": "bo_sea"},
                ],
                "location_id": place,
                "collaborators": ["ana.tide"],
            }),
        ))
        .await;
    let carousel = s.container(&post).await;
    assert_eq!(carousel["media_type"], "CAROUSEL", "{carousel:#}");
    assert_eq!(carousel["params"]["location_id"], place);
    assert_eq!(json_param(&carousel, "collaborators"), json!(["ana.tide"]));
    assert!(
        carousel["params"].get("user_tags").is_none(),
        "{carousel:#}"
    );
    let children = carousel["children"].as_array().unwrap();
    let all = s.emulator("/_emulator/meta/media").await;
    let child = |i: usize| {
        all["containers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == children[i])
            .cloned()
            .unwrap()
    };
    assert_eq!(
        json_param(&child(0), "user_tags"),
        json!([{"username": "ana.tide", "x": 0.5, "y": 0.5}])
    );
    assert_eq!(
        json_param(&child(1), "user_tags"),
        json!([{"username": "bo_sea"}])
    );

    // An image without options sends none of them.
    let post = s
        .published(&s.body(vec![s.image()], json!({"media_type": "image"})))
        .await;
    let plain = s.container(&post).await;
    assert_eq!(plain["params"], json!({}), "{plain:#}");
}

/// (what, media, instagram options, the field, words of the message).
type Refusal = (&'static str, Vec<Value>, Value, &'static str, &'static str);

/// Each refusal.
fn refusals(s: &Scene) -> Vec<Refusal> {
    let image = || vec![s.image()];
    let reel = || vec![s.video()];
    vec![
        (
            "four collaborators",
            image(),
            json!({"collaborators": ["a", "b", "c", "d"]}),
            "collaborators",
            "at most 3 collaborators",
        ),
        (
            "a collaborator who is no username",
            image(),
            json!({"collaborators": ["not a name"]}),
            "collaborators",
            "is not an Instagram username",
        ),
        (
            "a collaborator twice",
            image(),
            json!({"collaborators": ["ana", "@ana"]}),
            "collaborators",
            "invited twice",
        ),
        (
            "collaborators on a story",
            image(),
            json!({"media_type": "story", "collaborators": ["ana"]}),
            "collaborators",
            "on a story",
        ),
        (
            "a tag without x and y on an image",
            image(),
            json!({"user_tags": [{"username": "ana"}]}),
            "user_tags",
            "needs x and y",
        ),
        (
            "a tag off the image",
            image(),
            json!({"user_tags": [{"username": "ana", "x": 1.5, "y": 0.5}]}),
            "user_tags",
            "between 0.0 and 1.0",
        ),
        (
            "a tag at x/y on a reel",
            reel(),
            json!({"user_tags": [{"username": "ana", "x": 0.5, "y": 0.5}]}),
            "user_tags",
            "username only",
        ),
        (
            "a carousel tag without its item",
            vec![s.image(), s.image()],
            json!({"user_tags": [{"username": "ana", "x": 0.5, "y": 0.5}]}),
            "user_tags",
            "which carousel item",
        ),
        (
            "a carousel tag on no item",
            vec![s.image(), s.image()],
            json!({"user_tags": [{"item": 2, "username": "ana", "x": 0.5, "y": 0.5}]}),
            "user_tags",
            "has no item 2",
        ),
        (
            "21 tags",
            image(),
            json!({"user_tags": (0..21).map(|i| json!({"username": format!("u{i}"), "x": 0.5, "y": 0.5})).collect::<Vec<_>>()}),
            "user_tags",
            "at most 20 people",
        ),
        (
            "a location that is no id",
            image(),
            json!({"location_id": "Lisbon"}),
            "location_id",
            "is not a location id",
        ),
        (
            "a location on a story",
            image(),
            json!({"media_type": "story", "location_id": "1"}),
            "location_id",
            "on a story",
        ),
        (
            "alt text on a reel",
            reel(),
            json!({"alt_text": "words"}),
            "alt_text",
            "image posts only",
        ),
        (
            "alt text on a story",
            image(),
            json!({"media_type": "story", "alt_text": "words"}),
            "alt_text",
            "image posts only",
        ),
        (
            "alt text too long",
            image(),
            json!({"alt_text": "a".repeat(1001)}),
            "alt_text",
            "at most 1000 characters",
        ),
        (
            "a cover frame on an image",
            image(),
            json!({"thumb_offset": 10}),
            "thumb_offset",
            "reels only",
        ),
        (
            "a cover frame and a cover image",
            reel(),
            json!({"thumb_offset": 10, "cover_url": format!("{}/square.jpg", s.media)}),
            "thumb_offset",
            "give one cover",
        ),
        (
            "an audio name on an image",
            image(),
            json!({"audio_name": "x"}),
            "audio_name",
            "reels only",
        ),
        (
            "a trial image",
            image(),
            json!({"trial_params": {"graduation_strategy": "MANUAL"}}),
            "trial_params",
            "reels only",
        ),
        (
            "share_to_feed on an image",
            image(),
            json!({"share_to_feed": true}),
            "share_to_feed",
            "reels only",
        ),
        (
            "a first comment on a story",
            image(),
            json!({"media_type": "story", "first_comment": "hi"}),
            "first_comment",
            "on a story",
        ),
        (
            "a first comment too long",
            image(),
            json!({"first_comment": "a".repeat(2201)}),
            "first_comment",
            "at most 2200 characters",
        ),
        (
            "a first comment with 31 hashtags",
            image(),
            json!({"first_comment": "#t ".repeat(31)}),
            "first_comment",
            "at most 30 hashtags",
        ),
    ]
}

async fn each_refusal_names_the_field(backend: Backend) {
    let s = scene(backend).await;
    for (what, media, instagram, field, words) in refusals(&s) {
        let (status, problem) = s.post("/api/v1/posts", &s.body(media, instagram)).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{what}: {problem:#}"
        );
        let named = format!("targets[0].instagram.{field}");
        let errors = problem["errors"].as_array().unwrap();
        assert!(
            errors
                .iter()
                .any(|e| e["field"] == named
                    && e["message"].as_str().is_some_and(|m| m.contains(words))),
            "{what}: an error on {named} saying {words:?}: {problem:#}"
        );
    }
    // An unknown graduation strategy is refused as the body is read.
    let (status, problem) = s
        .post(
            "/api/v1/posts",
            &s.body(
                vec![s.video()],
                json!({"trial_params": {"graduation_strategy": "SOMETIMES"}}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem:#}");
    assert!(problem.to_string().contains("SOMETIMES"), "{problem:#}");

    // The single-account shape names the field inside its `instagram` object.
    let (status, problem) = s
        .post(
            "/api/v1/posts",
            &json!({
                "account_id": s.account,
                "instagram": {"media_type": "reel", "media_url": format!("{}/clip.mp4", s.media), "alt_text": "words"},
            }),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem:#}");
    assert!(
        problem["errors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["field"] == "instagram.alt_text"),
        "{problem:#}"
    );

    // A stored video's probed length is known: a cover frame past its end is refused before
    // anything is stored or sent.
    let answer = bare_client()
        .post(s.app.url("/api/v1/media"))
        .bearer_auth(&s.key)
        .header(reqwest::header::CONTENT_TYPE, "video/mp4")
        .header("x-file-name", "clip.mp4")
        .body(testing::video(4096, "stored"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::CREATED);
    let media: Value = answer.json().await.unwrap();
    let (status, problem) = s
        .post(
            "/api/v1/posts",
            &s.body(
                vec![json!({"media_id": media["id"]})],
                json!({"media_type": "reel", "thumb_offset": 3500}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem:#}");
    assert!(
        problem["errors"].as_array().unwrap().iter().any(|e| {
            e["field"] == "targets[0].instagram.thumb_offset"
                && e["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("past the video's end"))
        }),
        "{problem:#}"
    );

    // Nothing of any refused post was stored or sent.
    let posts: Value = s
        .app
        .api_get(&s.key, "/api/v1/posts")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(posts["data"], json!([]), "{posts:#}");
    let meta = s.emulator("/_emulator/meta/media").await;
    assert_eq!(meta["containers"], json!([]), "{meta:#}");
}

/// Form parameters of a Graph call.
type Params = Vec<(&'static str, String)>;

async fn meta_refuses_what_only_it_knows(backend: Backend) {
    let s = scene(backend).await;
    // A cover frame past the end of a video tidepost only knows by URL: Meta's 2207057.
    let (status, post) = s
        .post(
            "/api/v1/posts",
            &s.body(
                vec![s.video()],
                json!({"media_type": "reel", "thumb_offset": 10_000}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{post:#}");
    let post = s.settled(post["id"].as_str().unwrap()).await;
    let target = &post["targets"][0];
    assert_eq!(target["state"], "failed", "{post:#}");
    assert!(
        target["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("2207057")),
        "{post:#}"
    );

    // A location id that is not a place.
    let (status, post) = s
        .post(
            "/api/v1/posts",
            &s.body(vec![s.image()], json!({"location_id": "12345"})),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{post:#}");
    let post = s.settled(post["id"].as_str().unwrap()).await;
    let target = &post["targets"][0];
    assert_eq!(target["state"], "failed", "{post:#}");
    assert!(
        target["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("not a valid location")),
        "{post:#}"
    );

    // The emulator itself refuses what tidepost never sends: asked directly, as Meta would be.
    let emulator = s.app.emulator.clone().unwrap();
    let minted: Value = bare_client()
        .post(format!("{emulator}/_emulator/meta/token"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (token, ig) = (
        minted["access_token"].as_str().unwrap().to_string(),
        minted["ig_user_id"].as_str().unwrap().to_string(),
    );
    let create = |params: Params| {
        let (token, url) = (
            token.clone(),
            format!("{emulator}/meta/graph/v22.0/{ig}/media"),
        );
        async move {
            let answer = bare_client()
                .post(url)
                .bearer_auth(token)
                .form(&params)
                .send()
                .await
                .unwrap();
            (answer.status(), answer.json::<Value>().await.unwrap())
        }
    };
    let image = format!("{}/square.jpg", s.media);
    let video = format!("{}/clip.mp4", s.media);
    let cases: Vec<(&str, Params, &str)> = vec![
        (
            "four collaborators",
            vec![
                ("image_url", image.clone()),
                ("collaborators", r#"["a","b","c","d"]"#.into()),
            ],
            "at most 3",
        ),
        (
            "21 tags",
            vec![
                ("image_url", image.clone()),
                (
                    "user_tags",
                    json!(
                        (0..21)
                            .map(|i| json!({"username": format!("u{i}"), "x": 0.5, "y": 0.5}))
                            .collect::<Vec<_>>()
                    )
                    .to_string(),
                ),
            ],
            "at most 20",
        ),
        (
            "alt text on a reel",
            vec![
                ("media_type", "REELS".into()),
                ("video_url", video.clone()),
                ("alt_text", "words".into()),
            ],
            "alt_text is not supported for REELS",
        ),
        (
            "a location that is not a place",
            vec![("image_url", image.clone()), ("location_id", "999".into())],
            "not a valid location",
        ),
    ];
    for (what, params, words) in cases {
        let (status, answer) = create(params).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{what}: {answer:#}");
        assert!(
            answer["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains(words)),
            "{what}: {answer:#}"
        );
    }
    let (status, answer) = create(vec![
        ("image_url", image),
        ("location_id", PLACES[1].0.into()),
    ])
    .await;
    assert_eq!(status, StatusCode::OK, "a known place is taken: {answer:#}");
}

impl Scene {
    async fn meta_settings(&self, patch: Value) {
        let emulator = self.app.emulator.clone().unwrap();
        let answer = bare_client()
            .put(format!("{emulator}/_emulator/meta/settings"))
            .json(&patch)
            .send()
            .await
            .unwrap();
        assert!(answer.status().is_success(), "{patch}");
    }

    /// The post once its first comment is no longer pending.
    async fn comment_settled(&self, post_id: &str) -> Value {
        let path = format!("/api/v1/posts/{post_id}");
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let post: Value = self
                .app
                .api_get(&self.key, &path)
                .await
                .json()
                .await
                .unwrap();
            let state = &post["targets"][0]["first_comment"]["state"];
            if state == "posted" || state == "failed" {
                return post;
            }
            assert!(
                Instant::now() < deadline,
                "the comment never settled: {post:#}"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// The comments under the published media `media_id`.
    async fn comments_under(&self, media_id: &str) -> Vec<Value> {
        let all = self.emulator("/_emulator/meta/media").await;
        all["media"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["id"] == media_id)
            .unwrap_or_else(|| panic!("no media {media_id}: {all:#}"))["comments"]
            .as_array()
            .unwrap()
            .clone()
    }

    /// Publishes an image with `comment` as its first comment; returns the post once the
    /// comment settled, and the comments under its media.
    async fn commented(&self, comment: &str) -> (Value, Vec<Value>) {
        let post = self
            .published(&self.body(
                vec![self.image()],
                json!({"media_type": "image", "first_comment": comment}),
            ))
            .await;
        let post = self.comment_settled(post["id"].as_str().unwrap()).await;
        let media_id = post["targets"][0]["instagram"]["media_id"]
            .as_str()
            .unwrap()
            .to_string();
        let comments = self.comments_under(&media_id).await;
        (post, comments)
    }
}

async fn the_first_comment_is_posted_once(backend: Backend) {
    let s = scene(backend).await;

    // Posted once, right after publishing, and shown on the target.
    let (post, comments) = s.commented("First! #tidepost").await;
    let target = &post["targets"][0];
    assert_eq!(target["state"], "published", "{post:#}");
    assert_eq!(target["first_comment"]["state"], "posted", "{post:#}");
    assert_eq!(comments.len(), 1, "{comments:#?}");
    assert_eq!(comments[0]["text"], "First! #tidepost");
    assert_eq!(comments[0]["id"], target["first_comment"]["comment_id"]);
    assert_eq!(target["first_comment"]["attempts"], 1, "{post:#}");
    // The post page says so.
    let page = s
        .app
        .page_text(
            &s.me.client,
            &format!("/posts/{}", post["id"].as_str().unwrap()),
        )
        .await;
    let shown = format!(
        "First comment:</span> posted (comment id {})",
        target["first_comment"]["comment_id"].as_str().unwrap()
    );
    assert!(page.contains(&shown), "{shown} in {page}");

    // Refused twice with a transient error, then posted: once.
    s.meta_settings(json!({"fail_comments": 2})).await;
    let (post, comments) = s.commented("Second, after two refusals").await;
    let target = &post["targets"][0];
    assert_eq!(target["first_comment"]["state"], "posted", "{post:#}");
    assert_eq!(target["first_comment"]["attempts"], 3, "{post:#}");
    assert_eq!(target["first_comment"]["error"], Value::Null, "{post:#}");
    assert_eq!(comments.len(), 1, "{comments:#?}");
    assert_eq!(comments[0]["id"], target["first_comment"]["comment_id"]);

    // Posted, but the answer was lost (as when a worker dies between the call and the
    // record): the next run finds it under the media and does not post it again.
    s.meta_settings(json!({"lose_comment_answers": 1})).await;
    let (post, comments) = s.commented("Third, answer lost").await;
    let target = &post["targets"][0];
    assert_eq!(target["first_comment"]["state"], "posted", "{post:#}");
    assert_eq!(comments.len(), 1, "posted once: {comments:#?}");
    assert_eq!(comments[0]["id"], target["first_comment"]["comment_id"]);
}

/// Instagram refuses a first comment for good (the media's comments are turned off): the
/// target stays published, the comment step is failed with the reason after one attempt, its
/// job is finished rather than queued again, nothing is under the media, and the API and the
/// post page say so.
async fn a_first_comment_refused_for_good(backend: Backend) {
    let s = scene(backend).await;
    s.meta_settings(json!({"refuse_comments": 1})).await;
    let (post, comments) = s.commented("Refused #tidepost").await;
    let target = &post["targets"][0];
    assert_eq!(target["state"], "published", "{post:#}");
    assert_eq!(target["error"], Value::Null, "the post is fine: {post:#}");
    let comment = &target["first_comment"];
    assert_eq!(comment["state"], "failed", "{post:#}");
    assert_eq!(comment["attempts"], 1, "not retried: {post:#}");
    assert_eq!(comment["comment_id"], Value::Null, "{post:#}");
    let reason = comment["error"].as_str().unwrap_or_default();
    assert!(
        reason.contains("Comments are turned off"),
        "the reason: {post:#}"
    );
    assert!(comments.is_empty(), "nothing posted: {comments:#?}");
    // Its job is over, not waiting for another try.
    let jobs: Value = s
        .app
        .api_get(&s.key, "/api/v1/jobs?kind=instagram.first_comment")
        .await
        .json()
        .await
        .unwrap();
    let jobs = jobs["data"].as_array().unwrap();
    assert_eq!(jobs.len(), 1, "{jobs:#?}");
    assert!(
        matches!(
            jobs[0]["state"].as_str(),
            Some("succeeded" | "failed" | "dead")
        ),
        "the comment's job is finished: {jobs:#?}"
    );
    // The post page shows the failed step with the reason.
    let page = s
        .app
        .page_text(
            &s.me.client,
            &format!("/posts/{}", post["id"].as_str().unwrap()),
        )
        .await;
    let shown = page
        .split("First comment:</span>")
        .nth(1)
        .unwrap_or_default();
    assert!(
        shown.trim_start().starts_with("not posted") && shown.contains("Comments are turned off"),
        "the post page: {}",
        &shown[..shown.len().min(300)]
    );
}
