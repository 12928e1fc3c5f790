//! The Meta client against the real emulator: both logins, Pages, publishing every container
//! kind from a local media server, container errors, the publishing limit, every error class,
//! usage headers and webhook signatures.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::header;
use axum::routing::get;
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use support::{Harness, param};
use tidepost_providers::meta::{
    Container, ContainerState, GraphHost, MediaSource, MetaChange, MetaClient, MetaEndpoints,
    Usage, parse_meta_webhook, verify_meta_signature,
};
use tidepost_providers::{ErrorKind, SignatureError, http_client};

const APP_ID: &str = "1234567890123456";
const APP_SECRET: &str = "emulator-facebook-app-secret";
const IG_APP_ID: &str = "9876543210987654";
const IG_APP_SECRET: &str = "emulator-instagram-app-secret";
const BUSINESS_IG: &str = "17841405822304914";
const REDIRECT: &str = "https://app.tidepost.example/oauth/meta/callback";
const FB_SCOPES: &[&str] = &[
    "instagram_basic",
    "instagram_content_publish",
    "instagram_manage_comments",
    "instagram_manage_insights",
    "pages_show_list",
    "pages_read_engagement",
];

fn client(h: &Harness) -> MetaClient {
    client_with(h, http_client())
}

fn client_with(h: &Harness, http: reqwest::Client) -> MetaClient {
    MetaClient::new(
        http,
        MetaEndpoints::emulator(&h.base),
        APP_ID,
        SecretString::from(APP_SECRET),
    )
    .with_instagram_app(IG_APP_ID, SecretString::from(IG_APP_SECRET))
}

/// A long-lived Facebook Login user token with every scope, from the admin API.
async fn fb_token(h: &Harness) -> SecretString {
    let minted = h.admin_post("/meta/token", json!({})).await;
    SecretString::from(minted["access_token"].as_str().unwrap())
}

/// Serves `/image.jpg`, `/cover.jpg` and `/video.mp4`; anything else is 404.
async fn media_server() -> String {
    let jpeg = || async {
        let mut bytes = vec![0xFF, 0xD8, 0xFF, 0xE0];
        bytes.extend(support::pattern(40_000));
        ([(header::CONTENT_TYPE, "image/jpeg")], bytes)
    };
    let router = Router::new()
        .route("/image.jpg", get(jpeg))
        .route("/cover.jpg", get(jpeg))
        .route(
            "/video.mp4",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "video/mp4")],
                    support::pattern(300_000),
                )
            }),
        );
    support::serve(router).await
}

/// Polls a container until it leaves IN_PROGRESS (moving the emulated clock along).
async fn settle(
    h: &Harness,
    meta: &MetaClient,
    host: GraphHost,
    token: &SecretString,
    id: &str,
) -> ContainerState {
    for _ in 0..100 {
        let status = meta.container_status(host, token, id).await.unwrap();
        if status.status_code != ContainerState::InProgress {
            return status.status_code;
        }
        h.advance(2).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("container {id} stayed IN_PROGRESS");
}

#[tokio::test]
async fn facebook_login_to_pages_and_instagram_user() {
    let h = Harness::start().await;
    let meta = client(&h);
    let url = meta.authorize_url(REDIRECT, FB_SCOPES, "fb-state");
    assert!(url.starts_with(&format!("{}/meta/www/v22.0/dialog/oauth?", h.base)));
    let callback = h.consent(&url).await;
    assert_eq!(param(&callback, "state"), "fb-state");
    let short = meta
        .exchange_code(param(&callback, "code"), REDIRECT)
        .await
        .unwrap();
    let long = meta.exchange_long_lived(&short.access_token).await.unwrap();
    assert!(long.expires_in.unwrap() > 5_000_000);
    assert!(!format!("{long:?}").contains(long.access_token.expose_secret()));

    // The code is single use; a used code is a permanent, readable error.
    let err = meta
        .exchange_code(param(&callback, "code"), REDIRECT)
        .await
        .unwrap_err();
    assert_eq!((err.kind, err.code.as_str()), (ErrorKind::Permanent, "100"));

    let me = meta.me(&long.access_token).await.unwrap();
    assert_eq!(me.name, "Tia Tester");
    assert!(me.picture_url.is_some());
    let permissions = meta.permissions(&long.access_token).await.unwrap();
    assert!(
        permissions
            .iter()
            .any(|p| p.permission == "pages_show_list" && p.status == "granted")
    );

    // One Page per request, so the listing must be followed.
    let pages = meta
        .pages_with_page_size(&long.access_token, 1)
        .await
        .unwrap();
    let fixtures = h.admin_get("/meta/accounts").await;
    assert_eq!(pages.len(), fixtures["pages"].as_array().unwrap().len());
    assert!(pages.len() >= 2);
    let linked = pages
        .iter()
        .find(|p| p.instagram_business_account.is_some())
        .expect("a Page with Instagram");
    assert_eq!(
        linked.instagram_business_account.as_ref().unwrap().id,
        BUSINESS_IG
    );
    assert!(linked.access_token.is_some() && linked.picture_url.is_some());
    assert!(
        pages.iter().any(|p| p.instagram_business_account.is_none()),
        "a Page without Instagram"
    );
    assert_eq!(
        meta.pages(&long.access_token).await.unwrap().len(),
        pages.len()
    );

    let ig = meta.ig_user(&long.access_token, BUSINESS_IG).await.unwrap();
    assert_eq!(ig.id, BUSINESS_IG);
    assert!(!ig.username.is_empty());
    assert!(ig.followers_count.is_some() && ig.profile_picture_url.is_some());

    // The Page token works for the linked account too.
    let page_token = linked.access_token.clone().unwrap();
    assert_eq!(
        meta.ig_user(&page_token, BUSINESS_IG).await.unwrap().id,
        BUSINESS_IG
    );

    // Fewer permissions: listing Pages fails, and says which permission.
    let url = meta.authorize_url(REDIRECT, &["instagram_basic"], "s2");
    let callback = h.consent(&url).await;
    let narrow = meta
        .exchange_code(param(&callback, "code"), REDIRECT)
        .await
        .unwrap();
    let err = meta.pages(&narrow.access_token).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Permanent);
    assert!(err.message.contains("pages_show_list"), "{}", err.message);
}

#[tokio::test]
async fn instagram_login_exchange_refresh_and_publish_on_the_instagram_host() {
    let h = Harness::start().await;
    let meta = client(&h);
    let media = media_server().await;
    let scopes = [
        "instagram_business_basic",
        "instagram_business_content_publish",
    ];
    let url = meta.authorize_url_instagram(REDIRECT, &scopes, "ig-state");
    assert!(url.starts_with(&format!("{}/meta/instagram/oauth/authorize?", h.base)));
    let callback = h.consent(&url).await;
    assert_eq!(param(&callback, "state"), "ig-state");
    let code = format!("{}#_", param(&callback, "code"));
    let short = meta.exchange_code_instagram(&code, REDIRECT).await.unwrap();
    assert_eq!(short.user_id, BUSINESS_IG);
    assert!(
        short
            .permissions
            .iter()
            .any(|p| p == "instagram_business_basic")
    );
    let err = meta
        .exchange_code_instagram(&code, REDIRECT)
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Permanent);
    assert!(err.message.contains("already used"), "{}", err.message);

    let long = meta
        .exchange_long_lived_instagram(&short.access_token)
        .await
        .unwrap();
    assert!(long.expires_in.unwrap() > 5_000_000);
    let me = meta.me_instagram(&long.access_token).await.unwrap();
    assert_eq!(me.id, BUSINESS_IG);
    assert!(
        me.app_scoped_id
            .as_deref()
            .is_some_and(|id| id != BUSINESS_IG)
    );
    assert_eq!(me.account_type.as_deref(), Some("BUSINESS"));

    // Too young to refresh: not a reason to reconnect.
    let err = meta
        .refresh_instagram(&long.access_token)
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Permanent, "{err}");
    h.advance(25 * 3600).await;
    let refreshed = meta.refresh_instagram(&long.access_token).await.unwrap();
    assert!(refreshed.expires_in.unwrap() > 5_000_000);

    let token = refreshed.access_token;
    let container = meta
        .create_container(
            GraphHost::Instagram,
            &token,
            BUSINESS_IG,
            &Container::Image {
                image_url: format!("{media}/image.jpg"),
                caption: Some("from Instagram Login".into()),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        settle(&h, &meta, GraphHost::Instagram, &token, &container).await,
        ContainerState::Finished
    );
    let media_id = meta
        .publish(GraphHost::Instagram, &token, BUSINESS_IG, &container)
        .await
        .unwrap();
    let info = meta
        .media(GraphHost::Instagram, &token, &media_id)
        .await
        .unwrap();
    assert_eq!(info.caption.as_deref(), Some("from Instagram Login"));

    // An Instagram-Login token is not valid on the Facebook host.
    let err = meta.ig_user(&token, BUSINESS_IG).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Reauth);
}

#[tokio::test]
async fn publish_image_reel_carousel_and_story() {
    let h = Harness::start().await;
    let meta = client(&h);
    let token = fb_token(&h).await;
    let media = media_server().await;
    let host = GraphHost::Facebook;
    let create = |container: Container| {
        let (meta, token) = (meta.clone(), token.clone());
        async move {
            meta.create_container(host, &token, BUSINESS_IG, &container)
                .await
        }
    };

    // Image: FINISHED at once.
    let image = create(Container::Image {
        image_url: format!("{media}/image.jpg"),
        caption: Some("Fresh #coffee".into()),
    })
    .await
    .unwrap();
    assert_eq!(
        settle(&h, &meta, host, &token, &image).await,
        ContainerState::Finished
    );
    let image_media = meta
        .publish(host, &token, BUSINESS_IG, &image)
        .await
        .unwrap();
    let info = meta.media(host, &token, &image_media).await.unwrap();
    assert_eq!(info.id, image_media);
    assert_eq!(info.media_type.as_deref(), Some("IMAGE"));
    assert!(
        info.permalink
            .as_deref()
            .is_some_and(|p| p.starts_with("https://www.instagram.com/"))
    );
    assert!(info.timestamp.is_some());
    let status = meta.container_status(host, &token, &image).await.unwrap();
    assert_eq!(status.status_code, ContainerState::Published);
    // Publishing the same container twice is refused.
    let err = meta
        .publish(host, &token, BUSINESS_IG, &image)
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Permanent);

    // Reel: IN_PROGRESS first; publishing too early is "not ready", retryable.
    let reel = create(Container::Reel {
        video_url: format!("{media}/video.mp4"),
        caption: Some("A reel".into()),
        cover_url: Some(format!("{media}/cover.jpg")),
        share_to_feed: Some(true),
    })
    .await
    .unwrap();
    let early = meta
        .publish(host, &token, BUSINESS_IG, &reel)
        .await
        .unwrap_err();
    assert_eq!(
        (early.kind, early.code.as_str(), early.subcode),
        (ErrorKind::Retryable, "9007", Some(2207027))
    );
    assert_eq!(
        settle(&h, &meta, host, &token, &reel).await,
        ContainerState::Finished
    );
    let reel_media = meta
        .publish(host, &token, BUSINESS_IG, &reel)
        .await
        .unwrap();
    let info = meta.media(host, &token, &reel_media).await.unwrap();
    assert_eq!(info.media_product_type.as_deref(), Some("REELS"));

    // Carousel: children first.
    let mut children = Vec::new();
    for source in [
        MediaSource::Image(format!("{media}/image.jpg")),
        MediaSource::Video(format!("{media}/video.mp4")),
    ] {
        let child = create(Container::CarouselItem(source)).await.unwrap();
        assert_eq!(
            settle(&h, &meta, host, &token, &child).await,
            ContainerState::Finished
        );
        children.push(child);
    }
    let carousel = create(Container::Carousel {
        children,
        caption: Some("Two things".into()),
    })
    .await
    .unwrap();
    assert_eq!(
        settle(&h, &meta, host, &token, &carousel).await,
        ContainerState::Finished
    );
    let carousel_media = meta
        .publish(host, &token, BUSINESS_IG, &carousel)
        .await
        .unwrap();
    let info = meta.media(host, &token, &carousel_media).await.unwrap();
    assert_eq!(info.media_type.as_deref(), Some("CAROUSEL_ALBUM"));

    // Story.
    let story = create(Container::Story(MediaSource::Image(format!(
        "{media}/image.jpg"
    ))))
    .await
    .unwrap();
    assert_eq!(
        settle(&h, &meta, host, &token, &story).await,
        ContainerState::Finished
    );
    let story_media = meta
        .publish(host, &token, BUSINESS_IG, &story)
        .await
        .unwrap();
    let info = meta.media(host, &token, &story_media).await.unwrap();
    assert_eq!(info.media_product_type.as_deref(), Some("STORY"));

    // Four posts count against the limit (the carousel is one).
    let limit = meta
        .publishing_limit(host, &token, BUSINESS_IG)
        .await
        .unwrap();
    assert_eq!(limit.quota_usage, 4);
    assert_eq!(limit.quota_total, Some(100));
    assert_eq!(limit.window_secs, Some(86_400));
    assert_eq!(limit.remaining(), Some(96));

    // Over the limit: rate limited until the window frees a slot.
    h.admin_put("/meta/settings", json!({"publishing_limit": 4}))
        .await;
    let next = create(Container::Image {
        image_url: format!("{media}/image.jpg"),
        caption: None,
    })
    .await
    .unwrap();
    settle(&h, &meta, host, &token, &next).await;
    let err = meta
        .publish(host, &token, BUSINESS_IG, &next)
        .await
        .unwrap_err();
    assert_eq!(
        (err.kind, err.code.as_str(), err.subcode),
        (ErrorKind::RateLimited, "9", Some(2207042))
    );
    assert!(err.retry_after.is_some());

    // Engagement on the published image.
    let insights = meta
        .insights(host, &token, &image_media, &["reach", "likes"])
        .await
        .unwrap();
    assert_eq!(insights.len(), 2);
    assert!(insights.iter().all(|i| i.value.is_some()));
    let err = meta
        .insights(host, &token, &image_media, &["no_such_metric"])
        .await
        .unwrap_err();
    assert_eq!((err.kind, err.code.as_str()), (ErrorKind::Permanent, "100"));
    for i in 0..3 {
        h.admin_post(
            "/meta/comments",
            json!({"media_id": image_media, "text": format!("comment {i}")}),
        )
        .await;
    }
    let first = meta
        .comments(host, &token, &image_media, None)
        .await
        .unwrap();
    assert_eq!(first.comments.len(), 3);
    assert_eq!(first.comments[0].text, "comment 0");
    assert!(first.next_cursor.is_none());
    let reply = meta
        .reply(host, &token, &first.comments[0].id, "Thanks!")
        .await
        .unwrap();
    assert!(!reply.is_empty());
}

#[tokio::test]
async fn container_errors_are_classified() {
    let h = Harness::start().await;
    let meta = client(&h);
    let token = fb_token(&h).await;
    let media = media_server().await;
    let host = GraphHost::Facebook;

    // An image Meta cannot fetch fails the create call itself.
    let err = meta
        .create_container(
            host,
            &token,
            BUSINESS_IG,
            &Container::Image {
                image_url: format!("{media}/missing.jpg"),
                caption: None,
            },
        )
        .await
        .unwrap_err();
    assert_eq!(
        (err.kind, err.subcode),
        (ErrorKind::Retryable, Some(2207052))
    );
    assert!(
        err.message
            .contains("Meta could not fetch the media from its URL"),
        "{}",
        err.message
    );

    // A video Meta cannot fetch turns the container ERROR.
    let reel = meta
        .create_container(
            host,
            &token,
            BUSINESS_IG,
            &Container::Reel {
                video_url: format!("{media}/missing.mp4"),
                caption: None,
                cover_url: None,
                share_to_feed: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        settle(&h, &meta, host, &token, &reel).await,
        ContainerState::Error
    );
    let status = meta.container_status(host, &token, &reel).await.unwrap();
    assert_eq!(status.error_subcode(), Some(2207052));
    let failure = status.failure().unwrap();
    assert_eq!(failure.kind, ErrorKind::Retryable);
    assert!(failure.message.contains("could not fetch"));

    // Processing failure.
    h.faults("meta", json!({"fail_processing": true})).await;
    let image = meta
        .create_container(
            host,
            &token,
            BUSINESS_IG,
            &Container::Image {
                image_url: format!("{media}/image.jpg"),
                caption: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        settle(&h, &meta, host, &token, &image).await,
        ContainerState::Error
    );
    let status = meta.container_status(host, &token, &image).await.unwrap();
    assert_eq!(status.error_subcode(), Some(2207001));
    h.clear_faults("meta").await;

    // A container left for a day expires.
    let image = meta
        .create_container(
            host,
            &token,
            BUSINESS_IG,
            &Container::Image {
                image_url: format!("{media}/image.jpg"),
                caption: None,
            },
        )
        .await
        .unwrap();
    h.advance(25 * 3600).await;
    let status = meta.container_status(host, &token, &image).await.unwrap();
    assert_eq!(status.status_code, ContainerState::Expired);
    assert_eq!(status.failure().unwrap().kind, ErrorKind::Permanent);
    let err = meta
        .publish(host, &token, BUSINESS_IG, &image)
        .await
        .unwrap_err();
    assert_eq!(
        (err.kind, err.subcode),
        (ErrorKind::Permanent, Some(2207020))
    );
}

#[tokio::test]
async fn error_classes_and_usage() {
    let h = Harness::start().await;
    let seen: Arc<Mutex<Vec<(&'static str, Usage)>>> = Arc::default();
    let sink = seen.clone();
    let meta = client(&h).with_usage_sink(Arc::new(move |label, usage: &Usage| {
        sink.lock().unwrap().push((label, usage.clone()));
    }));
    let token = fb_token(&h).await;

    meta.ig_user(&token, BUSINESS_IG).await.unwrap();
    {
        let seen = seen.lock().unwrap();
        let (label, usage) = seen.last().expect("usage reported");
        assert_eq!(*label, "meta.ig_user");
        assert!(usage.app.is_some());
        assert!(
            usage
                .business
                .iter()
                .any(|b| b.object_id == BUSINESS_IG && b.kind == "instagram")
        );
        assert!(!usage.should_back_off());
    }

    h.faults(
        "meta",
        json!({"rate_limit_share": 1.0, "retry_after_secs": 120}),
    )
    .await;
    let err = meta.ig_user(&token, BUSINESS_IG).await.unwrap_err();
    assert_eq!(
        (err.kind, err.code.as_str()),
        (ErrorKind::RateLimited, "17")
    );
    assert_eq!(err.retry_after, Some(Duration::from_secs(120)));
    let usage = err.usage.as_deref().expect("usage on the error");
    assert!(usage.should_back_off() && usage.max_percent() >= 100);

    h.faults("meta", json!({"server_error_share": 1.0})).await;
    let err = meta.ig_user(&token, BUSINESS_IG).await.unwrap_err();
    assert_eq!(
        (err.kind, err.code.as_str(), err.http_status),
        (ErrorKind::Retryable, "2", Some(500))
    );
    // The same 5xx on media_publish says nothing about whether it published.
    let err = meta
        .publish(GraphHost::Facebook, &token, BUSINESS_IG, "123")
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::OutcomeUnknown);
    h.clear_faults("meta").await;

    // A timeout on media_publish: outcome unknown; on a read: retryable.
    let impatient = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let slow = client_with(&h, impatient);
    h.faults("meta", json!({"latency_ms": 1500})).await;
    let err = slow
        .publish(GraphHost::Facebook, &token, BUSINESS_IG, "123")
        .await
        .unwrap_err();
    assert_eq!(
        (err.kind, err.code.as_str()),
        (ErrorKind::OutcomeUnknown, "transport")
    );
    let err = slow.ig_user(&token, BUSINESS_IG).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Retryable);
    h.clear_faults("meta").await;

    // Token problems: expired, app removed, password changed.
    for (action, subcode) in [("expire", 463), ("revoke", 458), ("password-changed", 460)] {
        let token = fb_token(&h).await;
        h.admin_post(
            &format!("/meta/tokens/{action}"),
            json!({"access_token": token.expose_secret()}),
        )
        .await;
        let err = meta.ig_user(&token, BUSINESS_IG).await.unwrap_err();
        assert_eq!(
            (err.kind, err.code.as_str(), err.subcode),
            (ErrorKind::Reauth, "190", Some(subcode)),
            "{action}"
        );
        assert_eq!(err.token_refresh_may_help(), subcode == 463);
        assert!(!err.to_string().contains(token.expose_secret()));
    }

    // Unknown objects are permanent.
    let err = meta
        .media(GraphHost::Facebook, &token, "999999999")
        .await
        .unwrap_err();
    assert_eq!((err.kind, err.code.as_str()), (ErrorKind::Permanent, "100"));
}

#[tokio::test]
async fn webhooks_from_the_emulator_verify_and_parse() {
    let h = Harness::start().await;
    let meta = client(&h);
    let token = fb_token(&h).await;
    let media = media_server().await;
    let (hook, received) = support::webhook_receiver().await;
    h.admin_put("/meta/settings", json!({ "webhook_url": hook }))
        .await;
    let container = meta
        .create_container(
            GraphHost::Facebook,
            &token,
            BUSINESS_IG,
            &Container::Image {
                image_url: format!("{media}/image.jpg"),
                caption: None,
            },
        )
        .await
        .unwrap();
    let media_id = meta
        .publish(GraphHost::Facebook, &token, BUSINESS_IG, &container)
        .await
        .unwrap();

    h.admin_post(
        "/meta/comments",
        json!({"media_id": media_id, "text": "Looks great ☕", "username": "bob"}),
    )
    .await;
    let delivery = support::wait_webhook(&received, "\"comments\"").await;
    let header = delivery.headers["x-hub-signature-256"].to_str().unwrap();
    let secret = meta.webhook_secret(GraphHost::Facebook);
    verify_meta_signature(header, &delivery.body, secret).unwrap();
    let mut tampered = delivery.body.clone();
    tampered.push(b'\n');
    assert_eq!(
        verify_meta_signature(header, &tampered, secret),
        Err(SignatureError::Mismatch)
    );
    assert_eq!(
        verify_meta_signature(
            header,
            &delivery.body,
            meta.webhook_secret(GraphHost::Instagram)
        ),
        Err(SignatureError::Mismatch)
    );
    assert_eq!(
        verify_meta_signature("sha256=nothex", &delivery.body, secret),
        Err(SignatureError::Malformed)
    );

    let parsed = parse_meta_webhook(&delivery.body).unwrap();
    assert_eq!(parsed.object, "instagram");
    assert_eq!(parsed.entries[0].account_id, BUSINESS_IG);
    match &parsed.entries[0].changes[0] {
        MetaChange::Comment {
            text,
            from_username,
            media_id: on,
            media_product_type,
            ..
        } => {
            assert_eq!(text, "Looks great ☕");
            assert_eq!(from_username.as_deref(), Some("bob"));
            assert_eq!(on.as_deref(), Some(media_id.as_str()));
            assert_eq!(media_product_type.as_deref(), Some("FEED"));
        }
        other => panic!("expected a comment, got {other:?}"),
    }

    h.admin_post(
        "/meta/comments",
        json!({"mention_of": BUSINESS_IG, "text": "@tidepost look"}),
    )
    .await;
    let delivery = support::wait_webhook(&received, "\"mentions\"").await;
    let header = delivery.headers["x-hub-signature-256"].to_str().unwrap();
    verify_meta_signature(header, &delivery.body, secret).unwrap();
    let parsed = parse_meta_webhook(&delivery.body).unwrap();
    assert!(matches!(
        &parsed.entries[0].changes[0],
        MetaChange::Mention {
            comment_id: Some(_),
            ..
        }
    ));
}
