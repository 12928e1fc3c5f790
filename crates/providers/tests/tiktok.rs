//! The TikTok client against the real emulator: OAuth, info, uploads, status, every error class
//! and webhook signatures.

mod support;

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use support::{Harness, param};
use tidepost_providers::tiktok::{
    ChunkAck, ChunkPlan, InitPhoto, InitVideo, PhotoMode, PostInfo, PostMode, PrivacyLevel,
    PublishState, SignatureError, TikTokClient, TikTokEndpoints, TikTokEvent, UserFields,
    VideoSource, code_challenge, parse_tiktok_webhook, pkce_verifier, verify_tiktok_signature,
};
use tidepost_providers::{ErrorKind, http_client};

const CLIENT_KEY: &str = "sandbox-tiktok-client-key";
const CLIENT_SECRET: &str = "sandbox-tiktok-client-secret";
const REDIRECT: &str = "https://app.tidepost.example/oauth/tiktok/callback";

fn client(h: &Harness) -> TikTokClient {
    client_with(h, http_client())
}

fn client_with(h: &Harness, http: reqwest::Client) -> TikTokClient {
    TikTokClient::new(
        http,
        TikTokEndpoints::emulator(&h.base),
        CLIENT_KEY,
        SecretString::from(CLIENT_SECRET),
    )
}

/// An access token for a fixture creator, minted through the admin API.
async fn token_for(h: &Harness, creator: &str) -> SecretString {
    let minted = h
        .admin_post("/tiktok/token", json!({ "creator": creator }))
        .await;
    SecretString::from(minted["access_token"].as_str().unwrap())
}

async fn token(h: &Harness) -> SecretString {
    token_for(h, "tidepost.sandbox").await
}

#[tokio::test]
async fn oauth_code_exchange_refresh_rotation_and_revoke() {
    let h = Harness::start().await;
    let tiktok = client(&h);
    let verifier = pkce_verifier();
    let url = tiktok.authorize_url(
        REDIRECT,
        &[
            "user.info.basic",
            "user.info.profile",
            "video.publish",
            "video.upload",
        ],
        "state-123",
        Some(&code_challenge(&verifier)),
    );
    assert!(url.starts_with(&format!("{}/tiktok/www/v2/auth/authorize/?", h.base)));
    let callback = h.consent(&url).await;
    assert_eq!(param(&callback, "state"), "state-123");
    let code = param(&callback, "code");

    // A wrong verifier is refused, and a refused code is a permanent, human-readable error.
    let wrong = tiktok
        .exchange_code(code, REDIRECT, Some("not-the-verifier"))
        .await
        .unwrap_err();
    assert_eq!(
        (wrong.kind, wrong.code.as_str()),
        (ErrorKind::Permanent, "invalid_grant")
    );
    assert!(wrong.message.contains("start the connection again"));

    let tokens = tiktok
        .exchange_code(code, REDIRECT, Some(&verifier))
        .await
        .unwrap();
    assert!(tokens.has_scope("video.publish"));
    assert!(tokens.expires_in > 0 && tokens.refresh_expires_in > tokens.expires_in);
    assert!(!tokens.refresh_token.expose_secret().is_empty());
    let debug = format!("{tokens:?}");
    assert!(!debug.contains(tokens.access_token.expose_secret()));
    assert!(!debug.contains(tokens.refresh_token.expose_secret()));

    // The code is single use.
    let reused = tiktok
        .exchange_code(code, REDIRECT, Some(&verifier))
        .await
        .unwrap_err();
    assert_eq!(reused.kind, ErrorKind::Permanent);

    let user = tiktok
        .user_info(&tokens.access_token, UserFields::for_scopes(&tokens.scopes))
        .await
        .unwrap();
    assert_eq!(user.open_id, tokens.open_id);
    assert_eq!(user.username.as_deref(), Some("tidepost.sandbox"));
    assert!(!user.display_name.is_empty());
    assert!(user.union_id.is_some() && user.avatar_url.is_some());
    // Asking for a field whose scope was not granted: reconnect.
    let missing = tiktok
        .user_info(&tokens.access_token, UserFields::ProfileAndStats)
        .await
        .unwrap_err();
    assert_eq!(
        (missing.kind, missing.code.as_str()),
        (ErrorKind::Reauth, "scope_permission_missed")
    );
    assert!(!missing.token_refresh_may_help());

    // Refresh rotates: the new pair works, the old refresh token is spent.
    let refreshed = tiktok.refresh(&tokens.refresh_token).await.unwrap();
    assert_ne!(
        refreshed.refresh_token.expose_secret(),
        tokens.refresh_token.expose_secret()
    );
    let spent = tiktok.refresh(&tokens.refresh_token).await.unwrap_err();
    assert_eq!(
        (spent.kind, spent.code.as_str()),
        (ErrorKind::Reauth, "invalid_grant")
    );
    tiktok
        .user_info(&refreshed.access_token, UserFields::Basic)
        .await
        .unwrap();

    // Revoke: every token of the creator stops working; a refresh may help is false for the
    // refresh token, but the API says "access_token_invalid" (refresh first, then reconnect).
    tiktok.revoke(&refreshed.access_token).await.unwrap();
    let revoked = tiktok
        .user_info(&refreshed.access_token, UserFields::Basic)
        .await
        .unwrap_err();
    assert_eq!(
        (revoked.kind, revoked.code.as_str()),
        (ErrorKind::Reauth, "access_token_invalid")
    );
    assert_eq!(revoked.http_status, Some(401));
    assert!(revoked.token_refresh_may_help());
    let after = tiktok.refresh(&refreshed.refresh_token).await.unwrap_err();
    assert_eq!(after.kind, ErrorKind::Reauth);

    // Wrong client secret: a configuration error, said plainly, without the secret.
    let bad = TikTokClient::new(
        http_client(),
        TikTokEndpoints::emulator(&h.base),
        CLIENT_KEY,
        SecretString::from("wrong-secret-value"),
    );
    let err = bad.refresh(&tokens.refresh_token).await.unwrap_err();
    assert_eq!(
        (err.kind, err.code.as_str()),
        (ErrorKind::Permanent, "invalid_client")
    );
    assert!(!err.to_string().contains("wrong-secret-value"));
    assert!(!format!("{bad:?}").contains("wrong-secret-value"));
}

#[tokio::test]
async fn oauth_errors_with_http_200_are_errors() {
    let h = Harness::start().await;
    h.admin_put("/tiktok/settings", json!({"oauth_errors_http_200": true}))
        .await;
    let err = client(&h)
        .refresh(&SecretString::from("unknown-refresh-token"))
        .await
        .unwrap_err();
    assert_eq!(
        (err.kind, err.code.as_str(), err.http_status),
        (ErrorKind::Reauth, "invalid_grant", Some(200))
    );
}

#[tokio::test]
async fn creator_info_and_its_200_with_error_answers() {
    let h = Harness::start().await;
    let tiktok = client(&h);
    let info = tiktok.creator_info(&token(&h).await).await.unwrap();
    assert_eq!(info.username, "tidepost.sandbox");
    assert!(
        info.privacy_level_options
            .contains(&PrivacyLevel::PublicToEveryone)
    );
    assert!(info.max_video_post_duration_sec > 0);

    let private = tiktok
        .creator_info(&token_for(&h, "tidepost.private").await)
        .await
        .unwrap();
    assert!(
        private
            .privacy_level_options
            .contains(&PrivacyLevel::FollowerOfCreator)
    );
    assert!(private.duet_disabled && private.stitch_disabled);

    let banned = tiktok
        .creator_info(&token_for(&h, "tidepost.banned").await)
        .await
        .unwrap_err();
    assert_eq!(banned.kind, ErrorKind::Permanent);
    assert_eq!(banned.code, "spam_risk_user_banned_from_posting");
    assert_eq!(banned.http_status, Some(200));
    assert!(banned.message.contains("banned"));
}

#[tokio::test]
async fn file_upload_in_chunks_to_publish_complete_with_exact_post_id() {
    let h = Harness::start().await;
    let tiktok = client(&h);
    let token = token(&h).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("video.mp4");
    let data = support::pattern(35_000_123);
    std::fs::write(&path, &data).unwrap();

    let plan = ChunkPlan::for_size(data.len() as u64).unwrap();
    assert_eq!(plan.total_chunk_count(), 3);
    let mut post = PostInfo::new(PrivacyLevel::PublicToEveryone);
    post.title = Some("Hello from tidepost #test".into());
    let init = tiktok
        .init_video(
            &token,
            &InitVideo {
                mode: PostMode::Direct(post),
                source: VideoSource::FileUpload(plan),
            },
        )
        .await
        .unwrap();
    assert!(init.publish_id.starts_with("v_pub_file~"));
    let upload_url = init.upload_url.expect("FILE_UPLOAD has an upload URL");
    assert!(!format!("{upload_url:?}").contains("upload_token"));

    let mut acks = Vec::new();
    for chunk in plan.chunks() {
        acks.push(
            tiktok
                .upload_chunk(&upload_url, &path, &chunk, "video/mp4")
                .await
                .unwrap(),
        );
    }
    assert_eq!(
        acks,
        [ChunkAck::Partial, ChunkAck::Partial, ChunkAck::Complete]
    );
    // Re-sending an acknowledged chunk is harmless.
    let again = tiktok
        .upload_chunk(&upload_url, &path, &plan.chunk(2).unwrap(), "video/mp4")
        .await
        .unwrap();
    assert_eq!(again, ChunkAck::Complete);

    let publish = h
        .admin_get(&format!("/tiktok/publishes/{}", init.publish_id))
        .await;
    assert_eq!(publish["sha256"], support::sha256_hex(&data));

    let status = tiktok.fetch_status(&token, &init.publish_id).await.unwrap();
    assert_eq!(status.uploaded_bytes, Some(data.len() as u64));

    h.advance(10).await;
    let status = tiktok.fetch_status(&token, &init.publish_id).await.unwrap();
    assert_eq!(status.status, PublishState::PublishComplete);
    h.advance(10).await;
    let status = tiktok.fetch_status(&token, &init.publish_id).await.unwrap();
    assert_eq!(status.public_post_ids.len(), 1);
    let id = &status.public_post_ids[0];
    assert_eq!(id.len(), 19);
    let admin_view = h
        .admin_get(&format!("/tiktok/publishes/{}", init.publish_id))
        .await;
    assert_eq!(id, &admin_view["post_ids"][0].as_u64().unwrap().to_string());
    assert!(status.failure().is_none());

    // A finished upload cannot be cancelled.
    let err = tiktok.cancel(&token, &init.publish_id).await.unwrap_err();
    assert_eq!(
        (err.kind, err.code.as_str()),
        (ErrorKind::Permanent, "publish_not_cancellable")
    );
    // Someone else's publish id.
    let other = token_for(&h, "tidepost.quiet").await;
    let err = tiktok
        .fetch_status(&other, &init.publish_id)
        .await
        .unwrap_err();
    assert_eq!(err.code, "token_not_authorized_for_specified_publish_id");
}

#[tokio::test]
async fn inbox_upload_and_failed_processing() {
    let h = Harness::start().await;
    let tiktok = client(&h);
    let token = token(&h).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("small.mov");
    let data = support::pattern(1_234_567);
    std::fs::write(&path, &data).unwrap();
    let plan = ChunkPlan::for_size(data.len() as u64).unwrap();
    assert_eq!(plan.total_chunk_count(), 1);

    let init = tiktok
        .init_video(
            &token,
            &InitVideo {
                mode: PostMode::Inbox,
                source: VideoSource::FileUpload(plan),
            },
        )
        .await
        .unwrap();
    let url = init.upload_url.unwrap();
    let ack = tiktok
        .upload_chunk(&url, &path, &plan.chunk(0).unwrap(), "video/quicktime")
        .await
        .unwrap();
    assert_eq!(ack, ChunkAck::Complete);
    h.advance(5).await;
    let status = tiktok.fetch_status(&token, &init.publish_id).await.unwrap();
    assert_eq!(status.status, PublishState::SendToUserInbox);

    // Processing failure: FAILED with a classified reason.
    h.faults("tiktok", json!({"fail_processing": true})).await;
    let init = tiktok
        .init_video(
            &token,
            &InitVideo {
                mode: PostMode::Inbox,
                source: VideoSource::FileUpload(plan),
            },
        )
        .await
        .unwrap();
    tiktok
        .upload_chunk(
            &init.upload_url.unwrap(),
            &path,
            &plan.chunk(0).unwrap(),
            "video/mp4",
        )
        .await
        .unwrap();
    h.advance(5).await;
    let status = tiktok.fetch_status(&token, &init.publish_id).await.unwrap();
    assert_eq!(status.status, PublishState::Failed);
    let failure = status.failure().unwrap();
    assert_eq!(
        (failure.kind, failure.code.as_str()),
        (ErrorKind::Permanent, "file_format_check_failed")
    );

    // The file changed size since the plan was made.
    std::fs::write(&path, b"short").unwrap();
    let err = tiktok
        .upload_chunk(&url, &path, &plan.chunk(0).unwrap(), "video/mp4")
        .await
        .unwrap_err();
    assert_eq!(err.code, "media_file");
}

#[tokio::test]
async fn pull_from_url_refusals_say_what_to_verify() {
    let h = Harness::start().await;
    let tiktok = client(&h);
    let token = token(&h).await;
    let err = tiktok
        .init_video(
            &token,
            &InitVideo {
                mode: PostMode::Direct(PostInfo::new(PrivacyLevel::SelfOnly)),
                source: VideoSource::PullFromUrl(
                    "https://cdn.unverified.example.net/videos/a.mp4?signature=SECRETSIG".into(),
                ),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(
        (err.kind, err.code.as_str(), err.http_status),
        (ErrorKind::Permanent, "url_ownership_unverified", Some(403))
    );
    assert!(
        err.message.contains("cdn.unverified.example.net"),
        "{}",
        err.message
    );
    assert!(
        err.message
            .contains("https://cdn.unverified.example.net/videos/")
    );
    assert!(err.message.contains("developer portal"));
    assert!(!err.to_string().contains("SECRETSIG"));

    let photo = tiktok
        .init_photo(
            &token,
            &InitPhoto {
                mode: PhotoMode::Upload {
                    title: Some("t".into()),
                    description: None,
                },
                photo_images: vec!["https://elsewhere.example.org/p/1.jpg".into()],
                photo_cover_index: 0,
                is_aigc: false,
            },
        )
        .await
        .unwrap_err();
    assert_eq!(photo.code, "url_ownership_unverified");
    assert!(photo.message.contains("elsewhere.example.org"));

    // A privacy level the creator does not offer.
    let err = tiktok
        .init_video(
            &token,
            &InitVideo {
                mode: PostMode::Direct(PostInfo::new(PrivacyLevel::FollowerOfCreator)),
                source: VideoSource::FileUpload(ChunkPlan::for_size(1000).unwrap()),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(
        (err.kind, err.code.as_str()),
        (ErrorKind::Permanent, "privacy_level_option_mismatch")
    );
}

#[tokio::test]
async fn unaudited_clients_are_told_so() {
    let h = Harness::start().await;
    h.admin_put("/tiktok/settings", json!({"unaudited": true}))
        .await;
    let err = client(&h)
        .init_video(
            &token(&h).await,
            &InitVideo {
                mode: PostMode::Direct(PostInfo::new(PrivacyLevel::PublicToEveryone)),
                source: VideoSource::FileUpload(ChunkPlan::for_size(1000).unwrap()),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Permanent);
    assert_eq!(
        err.code,
        "unaudited_client_can_only_post_to_private_accounts"
    );
    assert!(err.message.contains("private accounts") && err.message.contains("audit"));
}

#[tokio::test]
async fn error_classes_from_injected_faults() {
    let h = Harness::start().await;
    let tiktok = client(&h);
    let token = token(&h).await;

    h.faults(
        "tiktok",
        json!({"rate_limit_share": 1.0, "retry_after_secs": 7}),
    )
    .await;
    let err = tiktok.creator_info(&token).await.unwrap_err();
    assert_eq!(
        (err.kind, err.code.as_str(), err.http_status),
        (ErrorKind::RateLimited, "rate_limit_exceeded", Some(429))
    );
    assert_eq!(err.retry_after, Some(Duration::from_secs(7)));

    h.faults(
        "tiktok",
        json!({"rate_limit_share": 1.0, "retry_after_secs": 86_400}),
    )
    .await;
    let err = tiktok.creator_info(&token).await.unwrap_err();
    assert_eq!(
        err.retry_after,
        Some(tidepost_providers::error::MAX_RETRY_AFTER)
    );

    h.faults("tiktok", json!({"server_error_share": 1.0})).await;
    let err = tiktok
        .fetch_status(&token, "v_pub_file~v2-1.1")
        .await
        .unwrap_err();
    assert_eq!(
        (err.kind, err.code.as_str(), err.http_status),
        (ErrorKind::Retryable, "internal_error", Some(500))
    );
    let err = tiktok.refresh(&SecretString::from("x")).await.unwrap_err();
    assert_eq!(
        (err.kind, err.code.as_str()),
        (ErrorKind::Retryable, "server_error")
    );

    h.faults("tiktok", json!({"revoke_all_tokens": true})).await;
    let err = tiktok.creator_info(&token).await.unwrap_err();
    assert_eq!(
        (err.kind, err.code.as_str()),
        (ErrorKind::Reauth, "access_token_invalid")
    );
    h.faults("tiktok", json!({"refuse_refresh": true})).await;
    let err = tiktok.refresh(&SecretString::from("x")).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Reauth);
    h.clear_faults("tiktok").await;

    // Scope missing: reconnect.
    let minted = h
        .admin_post("/tiktok/token", json!({"scopes": ["user.info.basic"]}))
        .await;
    let narrow = SecretString::from(minted["access_token"].as_str().unwrap());
    let err = tiktok.creator_info(&narrow).await.unwrap_err();
    assert_eq!(
        (err.kind, err.code.as_str()),
        (ErrorKind::Reauth, "scope_not_authorized")
    );
    assert!(!err.token_refresh_may_help());
}

#[tokio::test]
async fn timeouts_are_retryable_or_outcome_unknown_by_idempotency() {
    let h = Harness::start().await;
    let token = token(&h).await;
    let impatient = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let tiktok = client_with(&h, impatient);
    h.faults("tiktok", json!({"latency_ms": 1500})).await;

    let err = tiktok.creator_info(&token).await.unwrap_err();
    assert_eq!(
        (err.kind, err.code.as_str()),
        (ErrorKind::Retryable, "transport")
    );
    assert!(err.message.contains("timed out"), "{}", err.message);

    let err = tiktok
        .init_video(
            &token,
            &InitVideo {
                mode: PostMode::Direct(PostInfo::new(PrivacyLevel::SelfOnly)),
                source: VideoSource::FileUpload(ChunkPlan::for_size(1000).unwrap()),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::OutcomeUnknown);
    assert!(err.message.contains("check its outcome"));
    assert!(!err.message.contains(token.expose_secret()));
    assert!(
        !err.message.contains("127.0.0.1"),
        "no URL in transport errors: {}",
        err.message
    );

    // Nothing listening: never sent, so even init is retryable.
    let dead = TikTokClient::new(
        http_client(),
        TikTokEndpoints::emulator("http://127.0.0.1:9"),
        CLIENT_KEY,
        SecretString::from(CLIENT_SECRET),
    );
    let err = dead
        .init_video(
            &token,
            &InitVideo {
                mode: PostMode::Inbox,
                source: VideoSource::FileUpload(ChunkPlan::for_size(1000).unwrap()),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Retryable, "{err}");
}

#[tokio::test]
async fn dropped_upload_is_retryable_and_the_chunk_can_be_sent_again() {
    let h = Harness::start().await;
    let tiktok = client(&h);
    let token = token(&h).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("video.webm");
    let data = support::pattern(12_000_000);
    std::fs::write(&path, &data).unwrap();
    let plan = ChunkPlan::with_chunk_size(data.len() as u64, 6_000_000).unwrap();
    let init = tiktok
        .init_video(
            &token,
            &InitVideo {
                mode: PostMode::Direct(PostInfo::new(PrivacyLevel::SelfOnly)),
                source: VideoSource::FileUpload(plan),
            },
        )
        .await
        .unwrap();
    let url = init.upload_url.unwrap();
    let first = plan.chunk(0).unwrap();

    h.faults("tiktok", json!({"drop_upload_after_bytes": 1_000_000}))
        .await;
    let err = tiktok
        .upload_chunk(&url, &path, &first, "video/webm")
        .await
        .unwrap_err();
    assert_eq!(
        (err.kind, err.code.as_str()),
        (ErrorKind::Retryable, "transport"),
        "{err}"
    );

    h.faults("tiktok", json!({"server_error_share": 1.0})).await;
    let err = tiktok
        .upload_chunk(&url, &path, &first, "video/webm")
        .await
        .unwrap_err();
    assert_eq!(
        (err.kind, err.http_status),
        (ErrorKind::Retryable, Some(503))
    );

    h.clear_faults("tiktok").await;
    let mut acks = Vec::new();
    for chunk in plan.chunks() {
        acks.push(
            tiktok
                .upload_chunk(&url, &path, &chunk, "video/webm")
                .await
                .unwrap(),
        );
    }
    assert_eq!(acks, [ChunkAck::Partial, ChunkAck::Complete]);
    let publish = h
        .admin_get(&format!("/tiktok/publishes/{}", init.publish_id))
        .await;
    assert_eq!(publish["sha256"], support::sha256_hex(&data));

    // Skipping ahead is refused with a range error.
    let init = tiktok
        .init_video(
            &token,
            &InitVideo {
                mode: PostMode::Direct(PostInfo::new(PrivacyLevel::SelfOnly)),
                source: VideoSource::FileUpload(plan),
            },
        )
        .await
        .unwrap();
    let err = tiktok
        .upload_chunk(
            &init.upload_url.unwrap(),
            &path,
            &plan.chunk(1).unwrap(),
            "video/webm",
        )
        .await
        .unwrap_err();
    assert_eq!(err.http_status, Some(416));
    assert!(err.message.contains("0 bytes"), "{}", err.message);
}

#[tokio::test]
async fn webhooks_from_the_emulator_verify_and_parse() {
    let h = Harness::start().await;
    let (hook, received) = support::webhook_receiver().await;
    h.admin_put("/tiktok/settings", json!({ "webhook_url": hook }))
        .await;
    h.admin_post(
        "/tiktok/revoke",
        json!({"creator": "tidepost.sandbox", "reason": 1}),
    )
    .await;
    let delivery = support::wait_webhook(&received, "authorization.removed").await;
    let header = delivery.headers["tiktok-signature"].to_str().unwrap();
    let secret = SecretString::from(CLIENT_SECRET);
    let now = support::now_secs();

    let t = verify_tiktok_signature(header, &delivery.body, &secret, now, 300).unwrap();
    assert!((now - t.0).abs() <= 5);
    let mut tampered = delivery.body.clone();
    tampered.push(b' ');
    assert_eq!(
        verify_tiktok_signature(header, &tampered, &secret, now, 300),
        Err(SignatureError::Mismatch)
    );
    assert_eq!(
        verify_tiktok_signature(
            header,
            &delivery.body,
            &SecretString::from("other"),
            now,
            300
        ),
        Err(SignatureError::Mismatch)
    );
    assert!(matches!(
        verify_tiktok_signature(header, &delivery.body, &secret, now + 3_600, 300),
        Err(SignatureError::OutsideWindow { .. })
    ));

    let event = parse_tiktok_webhook(&delivery.body).unwrap();
    assert_eq!(event.client_key, CLIENT_KEY);
    assert_eq!(event.event, "authorization.removed");
    assert!(event.user_openid.starts_with("act."));
    assert_eq!(
        event.content,
        TikTokEvent::AuthorizationRemoved { reason: 1 }
    );
}
