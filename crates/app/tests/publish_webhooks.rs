//! The inbound TikTok webhook: signature and timestamp checks, durable dedupe, application by
//! a job, out-of-order deliveries that never move a target backwards, authorization removal.

mod publish_support;

use hmac::{Hmac, KeyInit, Mac};
use publish_support::*;
use serde_json::json;
use sha2::Sha256;
use tidepost_app::tiktok::webhooks::{self, WebhookError};
use tidepost_app::tiktok::{self as publish, Mode};
use tidepost_providers::tiktok::SignatureError;

const SECRET: &str = "sandbox-tiktok-client-secret";

fn sign(t: i64, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    format!("t={t},s={}", hex::encode(mac.finalize().into_bytes()))
}

fn body(event: &str, open_id: &str, content: serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "client_key": "sandbox-tiktok-client-key",
        "event": event,
        "create_time": 1_700_000_000,
        "user_openid": open_id,
        "content": content.to_string(),
    }))
    .unwrap()
}

fn now() -> i64 {
    tidepost_domain::now_ms() / 1000
}

on_both!(signature_timestamp_and_duplicates, |backend| async move {
    let h = harness(backend).await;
    let b = body("brand.new.event", "act.x", json!({"x": 1}));
    // Missing and bad signatures.
    assert!(matches!(
        webhooks::receive(&h.app, None, &b, now()).await,
        Err(WebhookError::MissingSignature)
    ));
    let bad = sign(now(), b"another body");
    let err = webhooks::receive(&h.app, Some(&bad), &b, now())
        .await
        .unwrap_err();
    assert!(
        matches!(err, WebhookError::Signature(SignatureError::Mismatch)),
        "{err}"
    );
    assert_eq!(err.reason(), "bad_signature");
    // An old timestamp (replay).
    let old = sign(now() - 301, &b);
    let err = webhooks::receive(&h.app, Some(&old), &b, now())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            WebhookError::Signature(SignatureError::OutsideWindow { .. })
        ),
        "{err}"
    );
    assert!(
        tidepost_store::inbound_events::recent(&h.app.db, "tiktok", 10)
            .await
            .unwrap()
            .is_empty()
    );
    // A good one, then the same delivery again (signed anew, as TikTok retries).
    let first = webhooks::receive(&h.app, Some(&sign(now(), &b)), &b, now())
        .await
        .unwrap();
    assert!(!first.duplicate);
    let second = webhooks::receive(&h.app, Some(&sign(now() - 5, &b)), &b, now())
        .await
        .unwrap();
    assert!(second.duplicate);
    assert_eq!(first.event_id, second.event_id);
    let report = h.drain().await;
    assert_eq!(report.succeeded, 1, "applied once: {report:?}");
    let stored = tidepost_store::inbound_events::recent(&h.app.db, "tiktok", 10)
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert!(stored[0].applied_at.is_some());
});

on_both!(
    out_of_order_webhooks_never_move_backwards,
    |backend| async move {
        let h = harness(backend).await;
        let (media, _) = h.media(100_000).await;
        let view = h
            .submit_file(
                &media.id,
                Mode::Direct,
                h.direct_options("PUBLIC_TO_EVERYONE"),
            )
            .await
            .unwrap();
        let target_id = view.targets[0].id.clone();
        // Run only the publish job (init + upload), not the poller.
        let kinds = vec![publish::PUBLISH_JOB.to_string()];
        tidepost_jobs::drain_due(&h.queue, &h.registry, Some(&kinds), 10)
            .await
            .unwrap();
        let target = h.target(&target_id).await;
        assert_eq!(target.state, "processing");
        let publish_id = target.publish_id.clone().unwrap();
        let open_id = h.account.provider_user_id.clone();
        let deliver = |event: &str, content: serde_json::Value| {
            let b = body(event, &open_id, content);
            let app = h.app.clone();
            async move {
                webhooks::receive(&app, Some(&sign(now(), &b)), &b, now())
                    .await
                    .unwrap()
            }
        };
        // The post id arrives first, then completion, then a stale failure.
        deliver(
        "post.publish.publicly_available",
        json!({"publish_id": publish_id, "publish_type": "DIRECT_POST", "post_id": 7_423_456_789_012_345_678u64}),
    )
    .await;
        deliver(
            "post.publish.complete",
            json!({"publish_id": publish_id, "publish_type": "DIRECT_POST"}),
        )
        .await;
        deliver(
            "post.publish.failed",
            json!({"publish_id": publish_id, "publish_type": "DIRECT_POST", "reason": "internal"}),
        )
        .await;
        let webhook_kind = vec![publish::WEBHOOK_JOB.to_string()];
        tidepost_jobs::drain_due(&h.queue, &h.registry, Some(&webhook_kind), 10)
            .await
            .unwrap();
        let target = h.target(&target_id).await;
        assert_eq!(target.state, "published", "{target:?}");
        assert_eq!(
            target.post_ids(),
            ["7423456789012345678"],
            "the 19-digit id stays exact"
        );
        assert!(target.error_code.is_none());
        let events = tidepost_store::events::recent(&h.app.db, &h.ws, Some(&view.post.id), 10)
            .await
            .unwrap();
        assert_eq!(
            events
                .iter()
                .filter(|e| e.r#type == "post.published")
                .count(),
            1
        );
        assert_eq!(
            events.iter().filter(|e| e.r#type == "post.failed").count(),
            0
        );
        // Polling afterwards changes nothing either.
        let final_target = h.run_to_final(&target_id).await;
        assert_eq!(final_target.state, "published");
    }
);

on_both!(
    authorization_removed_marks_the_account,
    |backend| async move {
        let h = harness(backend).await;
        let b = body(
            "authorization.removed",
            &h.account.provider_user_id,
            json!({"reason": 1}),
        );
        webhooks::receive(&h.app, Some(&sign(now(), &b)), &b, now())
            .await
            .unwrap();
        h.drain().await;
        let account = tidepost_store::accounts::get(&h.app.db, &h.ws, &h.account.id)
            .await
            .unwrap()
            .unwrap();
        assert!(account.needs_reauth(), "{account:?}");
        assert!(account.status_reason.unwrap().contains("removed"));
        // Posting to it is refused in plain words.
        let (media, _) = h.media(1000).await;
        let err = h
            .submit_file(&media.id, Mode::Inbox, Default::default())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("connected again"), "{err}");
    }
);

on_both!(
    a_reported_failure_is_confirmed_before_the_target_fails,
    |backend| async move {
        let h = harness(backend).await;
        let (media, _) = h.media(100_000).await;
        let view = h
            .submit_file(&media.id, Mode::Direct, h.direct_options("SELF_ONLY"))
            .await
            .unwrap();
        let target_id = view.targets[0].id.clone();
        let kinds = vec![publish::PUBLISH_JOB.to_string()];
        tidepost_jobs::drain_due(&h.queue, &h.registry, Some(&kinds), 10)
            .await
            .unwrap();
        let publish_id = h.target(&target_id).await.publish_id.unwrap();
        // TikTok really failed it, and says so by webhook.
        h.admin(
            reqwest::Method::POST,
            &format!("/_emulator/tiktok/publishes/{publish_id}/fail"),
            Some(json!({"fail_reason": "duration_check_failed"})),
        )
        .await;
        let b = body(
            "post.publish.failed",
            &h.account.provider_user_id,
            json!({"publish_id": publish_id, "publish_type": "DIRECT_POST", "reason": "duration_check_failed"}),
        );
        webhooks::receive(&h.app, Some(&sign(now(), &b)), &b, now())
            .await
            .unwrap();
        let target = h.run_to_final(&target_id).await;
        assert_eq!(target.state, "failed", "{target:?}");
        assert_eq!(
            target.error_code.as_deref(),
            Some("duration_check_failed"),
            "{target:?}"
        );
    }
);
