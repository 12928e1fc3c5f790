//! The Threads client against the real emulator: OAuth (code → short-lived → long-lived,
//! refresh only once a day old), the profile, every container kind, container failures, the
//! "Media Not Found" of a publish that comes too early, the publishing limit and token expiry.

mod support;

use secrecy::SecretString;
use serde_json::json;
use support::{Harness, param};
use tidepost_providers::threads::{
    Container, ContainerState, MEDIA_NOT_FOUND_SUBCODE, MediaSource, ReplyControl, ThreadsClient,
    ThreadsEndpoints, is_publishing_limit,
};
use tidepost_providers::{ErrorKind, http_client};

const APP_ID: &str = "1122334455667788";
const APP_SECRET: &str = "emulator-threads-app-secret";
const USER: &str = "25046813579135791";
const REDIRECT: &str = "https://app.tidepost.example/oauth/threads/callback";

fn client(h: &Harness) -> ThreadsClient {
    ThreadsClient::new(
        http_client(),
        ThreadsEndpoints::emulator(&h.base),
        APP_ID,
        SecretString::from(APP_SECRET),
    )
}

async fn long_token(h: &Harness) -> SecretString {
    let minted = h.admin_post("/threads/token", json!({})).await;
    SecretString::from(minted["access_token"].as_str().unwrap().to_string())
}

#[tokio::test]
async fn oauth_short_to_long_lived_and_refresh_after_a_day() {
    let h = Harness::start().await;
    let c = client(&h);
    let url = c.authorize_url(REDIRECT, "st8");
    assert!(url.contains("scope=threads_basic%2Cthreads_content_publish"));
    let query = h.consent(&url).await;
    assert_eq!(param(&query, "state"), "st8");
    let code = param(&query, "code");
    let short = c.exchange_code(code, REDIRECT).await.unwrap();
    // The emulator sends `user_id` as a JSON number of 17 digits: kept exactly.
    assert_eq!(short.user_id, USER);
    // The code is single use.
    let again = c.exchange_code(code, REDIRECT).await.unwrap_err();
    assert_eq!(
        (again.code.as_str(), again.kind),
        ("100", ErrorKind::Permanent)
    );
    let long = c.exchange_long_lived(&short.access_token).await.unwrap();
    assert_eq!(long.expires_in, Some(5_183_944));
    // A long-lived token cannot be exchanged again (452 / 4279019).
    let twice = c.exchange_long_lived(&long.access_token).await.unwrap_err();
    assert_eq!(twice.subcode, Some(4279019));
    let me = c.me(&long.access_token).await.unwrap();
    assert_eq!(
        (me.id.as_str(), me.username.as_deref()),
        (USER, Some("threads_tester"))
    );
    // Too young to refresh: refused, and the token stays valid (Permanent, not Reauth).
    let young = c.refresh(&long.access_token).await.unwrap_err();
    assert_eq!(young.kind, ErrorKind::Permanent, "{young}");
    assert!(!young.token_refresh_may_help());
    c.me(&long.access_token).await.unwrap();
    h.advance(86_400 + 60).await;
    let fresh = c.refresh(&long.access_token).await.unwrap();
    assert_eq!(fresh.expires_in, Some(5_183_944));
    c.me(&fresh.access_token).await.unwrap();
    // After 60 days unrefreshed, the token is dead: Reauth, and a refresh cannot help.
    h.advance(61 * 86_400).await;
    let dead = c.me(&fresh.access_token).await.unwrap_err();
    assert_eq!((dead.kind, dead.subcode), (ErrorKind::Reauth, Some(463)));
    let refused = c.refresh(&fresh.access_token).await.unwrap_err();
    assert_eq!(refused.kind, ErrorKind::Reauth);
}

#[tokio::test]
async fn wrong_secret_and_redirect_are_refused() {
    let h = Harness::start().await;
    let c = client(&h);
    let query = h.consent(&c.authorize_url(REDIRECT, "s")).await;
    let code = param(&query, "code").to_string();
    let err = c
        .exchange_code(&code, "https://elsewhere.example/cb")
        .await
        .unwrap_err();
    assert!(err.message.contains("redirect_uri"), "{err}");
    let bad = ThreadsClient::new(
        http_client(),
        ThreadsEndpoints::emulator(&h.base),
        APP_ID,
        SecretString::from("not-the-secret"),
    );
    let err = bad.exchange_code(&code, REDIRECT).await.unwrap_err();
    assert_eq!(err.code, "101");
}

#[tokio::test]
async fn text_image_video_and_carousel_publish_with_permalinks() {
    let h = Harness::start().await;
    h.admin_put("/threads/settings", json!({"video_processing_ms": 0}))
        .await;
    let c = client(&h);
    let token = long_token(&h).await;
    let text = Container::Text {
        text: "Hello from tidepost 👋 https://example.com/a".into(),
        link_attachment: Some("https://example.com/card".into()),
    };
    let image = Container::Image {
        image_url: "https://cdn.example/a.png".into(),
        text: Some("an image".into()),
        alt_text: Some("a bay at dusk".into()),
    };
    let video = Container::Video {
        video_url: "https://cdn.example/v.mp4".into(),
        text: None,
        alt_text: None,
    };
    let mut published = Vec::new();
    for container in [text, image, video] {
        let id = c
            .create_container(
                &token,
                USER,
                &container,
                Some(ReplyControl::AccountsYouFollow),
            )
            .await
            .unwrap();
        let status = c.container_status(&token, &id).await.unwrap();
        assert_eq!(status.status, ContainerState::Finished);
        let media = c.publish(&token, USER, &id).await.unwrap();
        let read = c.media(&token, &media).await.unwrap();
        assert!(
            read.permalink
                .as_deref()
                .is_some_and(|p| p.starts_with("https://www.threads.com/@threads_tester/post/")),
            "{read:?}"
        );
        // A published container is not published twice.
        let twice = c.publish(&token, USER, &id).await.unwrap_err();
        assert_eq!(twice.kind, ErrorKind::Permanent);
        assert_eq!(
            c.container_status(&token, &id).await.unwrap().status,
            ContainerState::Published
        );
        published.push(read);
    }
    assert_eq!(published[0].media_type.as_deref(), Some("TEXT_POST"));
    // A carousel of two items, mixed.
    let mut children = Vec::new();
    for source in [
        MediaSource::Image("https://cdn.example/1.jpg".into()),
        MediaSource::Video("https://cdn.example/2.mov".into()),
    ] {
        let item = Container::CarouselItem {
            source,
            alt_text: None,
        };
        children.push(c.create_container(&token, USER, &item, None).await.unwrap());
    }
    let carousel = c
        .create_container(
            &token,
            USER,
            &Container::Carousel {
                children: children.clone(),
                text: Some("two".into()),
            },
            None,
        )
        .await
        .unwrap();
    let media = c.publish(&token, USER, &carousel).await.unwrap();
    let read = c.media(&token, &media).await.unwrap();
    assert_eq!(read.media_type.as_deref(), Some("CAROUSEL_ALBUM"));
    // One child alone is refused: 2 to 20.
    let err = c
        .create_container(
            &token,
            USER,
            &Container::Carousel {
                children: children[..1].to_vec(),
                text: None,
            },
            None,
        )
        .await
        .unwrap_err();
    assert!(err.message.contains("2 to 20"), "{err}");
    let limit = c.publishing_limit(&token, USER).await.unwrap();
    assert_eq!((limit.quota_usage, limit.quota_total), (4, 250));
    let insights = c.insights(&token, &media).await.unwrap();
    assert!(insights.iter().any(|i| i.name == "views" && i.value > 0));
}

#[tokio::test]
async fn containers_in_progress_errors_and_media_not_found() {
    let h = Harness::start().await;
    h.admin_put(
        "/threads/settings",
        json!({"video_processing_ms": 60_000, "media_not_found": 1}),
    )
    .await;
    let c = client(&h);
    let token = long_token(&h).await;
    let video = Container::Video {
        video_url: "https://cdn.example/v.mp4".into(),
        text: None,
        alt_text: None,
    };
    let id = c
        .create_container(&token, USER, &video, None)
        .await
        .unwrap();
    assert_eq!(
        c.container_status(&token, &id).await.unwrap().status,
        ContainerState::InProgress
    );
    // Too early: "Media Not Found", transient.
    let early = c.publish(&token, USER, &id).await.unwrap_err();
    assert_eq!(
        (early.subcode, early.kind),
        (Some(MEDIA_NOT_FOUND_SUBCODE), ErrorKind::Retryable)
    );
    h.advance(61).await;
    // Right after FINISHED it may still answer Media Not Found (injected once), then works.
    let once = c.publish(&token, USER, &id).await.unwrap_err();
    assert_eq!(once.subcode, Some(MEDIA_NOT_FOUND_SUBCODE));
    c.publish(&token, USER, &id).await.unwrap();
    // A container whose video Threads cannot take ends in ERROR with the reason in words.
    let bad = Container::Video {
        video_url: "https://cdn.example/long.mp4#fail=INVALID_DURATION".into(),
        text: None,
        alt_text: None,
    };
    let id = c.create_container(&token, USER, &bad, None).await.unwrap();
    h.advance(61).await;
    let status = c.container_status(&token, &id).await.unwrap();
    assert_eq!(status.status, ContainerState::Error);
    let failure = status.failure().unwrap();
    assert_eq!(failure.kind, ErrorKind::Permanent);
    assert!(failure.message.contains("5 minutes"), "{failure}");
    // Text over 500 (an emoji counts 4) and more than 5 links are refused at creation.
    let long = Container::Text {
        text: "a".repeat(497) + "😀",
        link_attachment: None,
    };
    let err = c
        .create_container(&token, USER, &long, None)
        .await
        .unwrap_err();
    assert!(err.message.contains("500"), "{err}");
    let links = Container::Text {
        text: (1..=6)
            .map(|i| format!("https://l{i}.example"))
            .collect::<Vec<_>>()
            .join(" "),
        link_attachment: None,
    };
    let err = c
        .create_container(&token, USER, &links, None)
        .await
        .unwrap_err();
    assert!(
        err.message.contains("THREADS_API__LINK_LIMIT_EXCEEDED"),
        "{err}"
    );
}

#[tokio::test]
async fn the_publishing_limit_and_a_lost_answer() {
    let h = Harness::start().await;
    h.admin_put(
        "/threads/settings",
        json!({"publishing_limit": 1, "lose_publish_answers": 1}),
    )
    .await;
    let c = client(&h);
    let token = long_token(&h).await;
    let text = |t: &str| Container::Text {
        text: t.into(),
        link_attachment: None,
    };
    let first = c
        .create_container(&token, USER, &text("one"), None)
        .await
        .unwrap();
    // The post is made, the answer lost: not retryable blindly.
    let lost = c.publish(&token, USER, &first).await.unwrap_err();
    assert_eq!(lost.kind, ErrorKind::OutcomeUnknown);
    assert_eq!(
        c.container_status(&token, &first).await.unwrap().status,
        ContainerState::Published
    );
    let second = c
        .create_container(&token, USER, &text("two"), None)
        .await
        .unwrap();
    let limit = c.publishing_limit(&token, USER).await.unwrap();
    assert_eq!(limit.remaining(), 0);
    let err = c.publish(&token, USER, &second).await.unwrap_err();
    assert!(is_publishing_limit(&err), "{err}");
    assert_eq!(err.kind, ErrorKind::RateLimited);
    let posts = h.admin_get("/threads/posts").await;
    assert_eq!(posts["posts"].as_array().unwrap().len(), 1);
}
