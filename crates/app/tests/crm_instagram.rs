//! The CRM on Instagram against the emulator, on SQLite and PostgreSQL: connecting gives the
//! account a creator; a comments webhook delivered three times (twice the same body, once
//! re-sent with another time) makes one contact and one interaction with one
//! `interaction.created`; the comments pull records a real comment of a published image once
//! however often it runs; and a reply goes to Instagram's replies endpoint and is recorded
//! under the comment.

mod instagram_support;

use hmac::{KeyInit, Mac};
use instagram_support::*;
use serde_json::{Value, json};
use sha2::Sha256;
use tidepost_app::crm;
use tidepost_app::instagram::options::{InstagramPost, MediaType, NewInstagramPost};
use tidepost_app::instagram::webhooks;
use tidepost_app::pipeline::media::Item;
use tidepost_jobs::{Registry, drain_due};
use tidepost_store::crm::interactions::{self, Filter};
use tidepost_store::crm::{Cursor, contacts, creators, timeline};
use tidepost_store::testing::Backend;

fn sign(body: &[u8]) -> String {
    let mut mac =
        <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(b"emulator-facebook-app-secret").unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

fn comment_webhook(ig: &str, time: i64, comment: &str, text: &str) -> Vec<u8> {
    json!({"object": "instagram", "entry": [{"id": ig, "time": time,
        "changes": [{"field": "comments", "value": {"id": comment, "text": text,
            "from": {"id": "555", "username": "bob"}, "media": {"id": "17900000000000009", "media_product_type": "FEED"}}}]}]})
    .to_string()
    .into_bytes()
}

async fn created_events(h: &Harness) -> Vec<Value> {
    tidepost_store::events::recent(&h.app.db, &h.ws, None, 200)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.r#type == "interaction.created")
        .map(|e| serde_json::from_str(&e.payload).unwrap())
        .collect()
}

async fn webhook_once(backend: Backend) {
    let h = harness(backend).await;
    let account = h.business_account().await;
    let owned = creators::accounts_of(
        &h.app.db,
        &h.ws,
        &creators::ensure_for_account(&h.app.db, &h.ws, &account.id)
            .await
            .unwrap()
            .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(
        owned.len(),
        1,
        "connecting gave the account a creator of its own"
    );

    let body = comment_webhook(BUSINESS_IG, 1_714_560_000, "17990000000000001", "love it");
    let resent = comment_webhook(BUSINESS_IG, 1_714_560_060, "17990000000000001", "love it");
    for delivery in [&body, &body, &resent] {
        webhooks::receive(&h.app, Some(&sign(delivery)), delivery)
            .await
            .unwrap();
    }
    h.drain().await;
    h.drain().await;
    let fans = contacts::list(&h.app.db, &h.ws, None, None, &Cursor::start(), 10)
        .await
        .unwrap()
        .items;
    assert_eq!(fans.len(), 1, "{fans:?}");
    assert_eq!(
        (
            fans[0].handle.as_deref(),
            fans[0].platform_user_id.as_str(),
            fans[0].interactions
        ),
        (Some("bob"), "555", 1)
    );
    let all = interactions::list(&h.app.db, &h.ws, &Filter::default(), &Cursor::start(), 10)
        .await
        .unwrap()
        .items;
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0].kind, "comment");
    assert_eq!(all[0].contact_id.as_deref(), Some(fans[0].id.as_str()));
    assert_eq!(all[0].account_id.as_deref(), Some(account.id.as_str()));
    let events = created_events(&h).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["interaction_id"], json!(all[0].id));
    assert_eq!(events[0]["contact_id"], json!(fans[0].id));
    // The contact's timeline holds it.
    let theirs = timeline::of_contact(&h.app.db, &h.ws, &fans[0].id, &Cursor::start(), 10)
        .await
        .unwrap();
    assert_eq!(theirs.items.len(), 1);
    assert_eq!(theirs.items[0].detail, "love it");
}

async fn pull_and_reply(backend: Backend) {
    let h = harness(backend).await;
    let account = h.business_account().await;
    let view = tidepost_app::compose::submit(
        &h.app,
        &h.ws,
        NewInstagramPost {
            account_id: account.id.clone(),
            post: InstagramPost {
                media_type: MediaType::Image,
                caption: "hello".into(),
                items: vec![Item {
                    url: Some(h.file_url("photo.jpg")),
                    ..Item::default()
                }],
                cover_url: None,
                share_to_feed: None,
                ..Default::default()
            },
            idempotency_key: None,
            created_by: None,
        }
        .into(),
    )
    .await
    .unwrap();
    let target = h.run_to_final(&view.targets[0].id).await;
    assert_eq!(target.state, "published", "{target:?}");
    let media_id = target.post_ids().remove(0);
    let injected = h
        .admin(
            reqwest::Method::POST,
            "/_emulator/meta/comments",
            Some(json!({"media_id": media_id, "text": "where is this?", "username": "carol"})),
        )
        .await;
    let comment_id = injected["comment_id"].as_str().unwrap().to_string();

    // The sweep tracks the image, samples its insights, and pulls its comments: twice, once.
    let registry = crm::register(Registry::new(), &h.app);
    let kinds = vec![
        crm::sync::METRICS.to_string(),
        crm::sync::COMMENTS.to_string(),
    ];
    for _ in 0..2 {
        crm::sync::sweep(&h.app, h.clock.now_ms()).await.unwrap();
        let report = drain_due(&h.queue, &registry, Some(&kinds), 100)
            .await
            .unwrap();
        assert!(report.all_ok(), "{report:?}");
        h.advance(16 * 60).await;
    }
    let pulled = interactions::by_provider_id(
        &h.app.db,
        &h.ws,
        tidepost_domain::Platform::Instagram,
        &comment_id,
    )
    .await
    .unwrap()
    .expect("the pull recorded the comment");
    assert_eq!(pulled.target_id.as_deref(), Some(target.id.as_str()));
    assert_eq!(pulled.text, "where is this?");
    let carol = contacts::get(&h.app.db, &h.ws, pulled.contact_id.as_deref().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(carol.handle.as_deref(), Some("carol"));
    assert_eq!(carol.interactions, 1);
    let samples = tidepost_store::crm::metrics::series(&h.app.db, &h.ws, &target.id, 10)
        .await
        .unwrap();
    assert!(
        !samples.is_empty() && samples[0].reach.is_some(),
        "{samples:?}"
    );

    // Reply through the Graph API, recorded under the comment.
    let reply = crm::reply(&h.app, &h.ws, &pulled.id, "Lisbon!")
        .await
        .unwrap();
    assert_eq!(
        (reply.kind.as_str(), reply.direction.as_str()),
        ("reply", "outbound")
    );
    assert_eq!(
        reply.parent_provider_id.as_deref(),
        Some(comment_id.as_str())
    );
    let graph = h
        .http
        .get(h.emu_url(&format!("/meta/graph/v22.0/{comment_id}/replies")))
        .bearer_auth(
            tidepost_app::tokens::open(&h.app, &account, tidepost_app::tokens::ACCESS_TOKEN)
                .map(|t| secrecy::ExposeSecret::expose_secret(&t).to_string())
                .unwrap(),
        )
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(graph["data"][0]["text"], "Lisbon!", "{graph}");
    assert_eq!(graph["data"][0]["id"], json!(reply.provider_id));
    // Bad replies are refused with a reason before anything is sent.
    assert!(matches!(
        crm::reply(&h.app, &h.ws, &pulled.id, "  ").await,
        Err(crm::CrmError::Invalid(_))
    ));
    assert!(matches!(
        crm::reply(&h.app, "another-workspace", &pulled.id, "x").await,
        Err(crm::CrmError::NotFound(_))
    ));
}

on_both!(a_comment_webhook_is_recorded_once, webhook_once);
on_both!(comments_are_pulled_and_answered, pull_and_reply);
