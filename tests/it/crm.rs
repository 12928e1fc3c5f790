//! The CRM end to end through the binary, on SQLite and PostgreSQL: creators over the API
//! (create, validate, search, rename, attach and detach an account, delete refused while it
//! owns accounts), contacts with search, interactions with filters and the refusal to reply to
//! a TikTok one, the creator timeline, cursor pagination and its errors as problem+json, and
//! the CRM pages (creators, a creator, contacts with search, a contact, the inbox).

use reqwest::StatusCode;
use serde_json::{Value, json};
use tidepost_store::crm::contacts::Sighting;
use tidepost_store::crm::interactions::{self, Observed};

use crate::support::*;

async fn account(app: &TestApp, ws: &str, platform: &str, name: &str) -> String {
    let user = format!("user-{}", &tidepost_domain::new_id()[24..]);
    fixture_account(&app.db, ws, platform, &user, name).await
}

async fn comment(
    app: &TestApp,
    ws: &str,
    platform: &str,
    account_id: &str,
    fan: &str,
    id: &str,
    at: i64,
) -> String {
    interactions::record(
        &app.db,
        ws,
        &Observed {
            platform: platform.parse().expect("a platform name"),
            kind: "comment",
            direction: "inbound",
            provider_id: id,
            parent_provider_id: None,
            author: Some(Sighting {
                platform: platform.parse().expect("a platform name"),
                platform_user_id: fan,
                handle: Some(fan),
                name: None,
                at,
            }),
            account_id,
            provider_media_id: None,
            text: &format!("hello from {fan}"),
            occurred_at: at,
        },
    )
    .await
    .unwrap()
    .unwrap()
    .id
}

async fn crm_api(backend: Backend) {
    let app = spawn_app(backend).await;
    let browser = app.signed_in("crm").await;
    let ws = browser.workspace.id.clone();
    let key = app.api_key(&ws, "crm", &[]).await;
    let http = bare_client();
    let api = |path: &str| app.url(&format!("/api/v1{path}"));

    // Creators: create, refuse a bad one, search, rename.
    let made = http
        .post(api("/creators"))
        .bearer_auth(&key)
        .json(&json!({"name": "Ada Studio", "notes": "VIP"}))
        .send()
        .await
        .unwrap();
    assert_eq!(made.status(), StatusCode::CREATED);
    let ada: Value = made.json().await.unwrap();
    let ada_id = ada["id"].as_str().unwrap().to_string();
    let bad = http
        .post(api("/creators"))
        .bearer_auth(&key)
        .json(&json!({"name": "  "}))
        .send()
        .await
        .unwrap();
    problem(bad, StatusCode::UNPROCESSABLE_ENTITY, "invalid-request").await;
    let unknown_field = http
        .post(api("/creators"))
        .bearer_auth(&key)
        .json(&json!({"name": "x", "colour": "red"}))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown_field.status().as_u16() / 100, 4);
    http.post(api("/creators"))
        .bearer_auth(&key)
        .json(&json!({"name": "Bob Brand"}))
        .send()
        .await
        .unwrap();
    let found: Value = http
        .get(api("/creators?q=ada"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(found["data"].as_array().unwrap().len(), 1, "{found}");
    let renamed: Value = http
        .patch(api(&format!("/creators/{ada_id}")))
        .bearer_auth(&key)
        .json(&json!({"name": "Ada Studios"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (renamed["name"].as_str(), renamed["notes"].as_str()),
        (Some("Ada Studios"), Some("VIP"))
    );

    // Attach an account, refuse to delete, detach (the account gets its own creator), delete.
    let tok = account(&app, &ws, "tiktok", "Ada on TikTok").await;
    let attached: Value = http
        .post(api(&format!("/creators/{ada_id}/accounts")))
        .bearer_auth(&key)
        .json(&json!({"account_id": tok}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(attached["accounts"][0]["id"], json!(tok), "{attached}");
    let missing = http
        .post(api(&format!("/creators/{ada_id}/accounts")))
        .bearer_auth(&key)
        .json(&json!({"account_id": "nope"}))
        .send()
        .await
        .unwrap();
    problem(missing, StatusCode::NOT_FOUND, "not-found").await;
    let refused = http
        .delete(api(&format!("/creators/{ada_id}")))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    problem(refused, StatusCode::CONFLICT, "conflict").await;
    let own: Value = http
        .delete(api(&format!("/creators/{ada_id}/accounts/{tok}")))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(own["name"], "Ada on TikTok");
    assert_eq!(own["accounts"][0]["id"], json!(tok));
    let gone = http
        .delete(api(&format!("/creators/{ada_id}")))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), StatusCode::NO_CONTENT);
    problem(
        http.get(api(&format!("/creators/{ada_id}")))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap(),
        StatusCode::NOT_FOUND,
        "not-found",
    )
    .await;

    // Contacts and interactions on the account; search, filters and pages.
    let own_id = own["id"].as_str().unwrap().to_string();
    let base = tidepost_domain::now_ms() - 60_000;
    for (i, fan) in ["zoe.fan", "yan.fan", "xia.other"].iter().enumerate() {
        comment(
            &app,
            &ws,
            "tiktok",
            &tok,
            fan,
            &format!("c{i}"),
            base + i as i64 * 1000,
        )
        .await;
    }
    let page1: Value = http
        .get(api("/contacts?limit=2"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page1["data"].as_array().unwrap().len(), 2);
    assert_eq!(
        page1["data"][0]["handle"], "xia.other",
        "most recently seen first"
    );
    let cursor = page1["next_cursor"].as_str().unwrap();
    let page2: Value = http
        .get(api(&format!("/contacts?limit=2&after={cursor}")))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page2["data"].as_array().unwrap().len(), 1);
    assert!(page2["next_cursor"].is_null());
    let fans: Value = http
        .get(api("/contacts?q=FAN"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(fans["data"].as_array().unwrap().len(), 2, "{fans}");
    problem(
        http.get(api("/contacts?limit=0"))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid-request",
    )
    .await;
    problem(
        http.get(api("/contacts?after=garbage"))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid-request",
    )
    .await;
    problem(
        http.get(api("/contacts?platform=myspace"))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid-request",
    )
    .await;
    let zoe_id = fans["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["handle"] == "zoe.fan")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let of_zoe: Value = http
        .get(api(&format!("/interactions?contact_id={zoe_id}")))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(of_zoe["data"].as_array().unwrap().len(), 1);
    assert_eq!(of_zoe["data"][0]["creator_id"], json!(own_id));
    let by_creator: Value = http
        .get(api(&format!(
            "/interactions?creator_id={own_id}&kind=comment"
        )))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(by_creator["data"].as_array().unwrap().len(), 3);
    problem(
        http.get(api("/interactions?kind=poke"))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid-request",
    )
    .await;
    let first = of_zoe["data"][0]["id"].as_str().unwrap();
    let reply = http
        .post(api(&format!("/interactions/{first}/reply")))
        .bearer_auth(&key)
        .json(&json!({"text": "thanks"}))
        .send()
        .await
        .unwrap();
    let refused = problem(reply, StatusCode::CONFLICT, "conflict").await;
    assert!(
        refused["detail"].as_str().unwrap().contains("Instagram"),
        "{refused}"
    );

    // The creator's timeline: its interactions, newest first, paged.
    let t1: Value = http
        .get(api(&format!("/creators/{own_id}/timeline?limit=2")))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let texts: Vec<&str> = t1["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["detail"].as_str().unwrap())
        .collect();
    assert_eq!(
        texts,
        ["hello from xia.other", "hello from yan.fan"],
        "{t1}"
    );
    let t2: Value = http
        .get(api(&format!(
            "/creators/{own_id}/timeline?limit=2&after={}",
            t1["next_cursor"].as_str().unwrap()
        )))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(t2["data"][0]["detail"], "hello from zoe.fan");
    let contact_timeline: Value = http
        .get(api(&format!("/contacts/{zoe_id}/timeline")))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(contact_timeline["data"].as_array().unwrap().len(), 1);

    // The pages.
    let page = |path: &str| {
        let (client, url) = (browser.client.clone(), app.url(path));
        async move {
            let response = client.get(url).send().await.unwrap();
            assert_eq!(response.status(), StatusCode::OK, "{}", response.url());
            response.text().await.unwrap()
        }
    };
    let creators_html = page("/creators").await;
    assert!(creators_html.contains("Bob Brand") && creators_html.contains("Ada on TikTok"));
    let creator_html = page(&format!("/creators/{own_id}")).await;
    assert!(creator_html.contains("hello from zoe.fan") && creator_html.contains("Detach"));
    let contacts_html = page("/contacts?q=other").await;
    assert!(contacts_html.contains("@xia.other") && !contacts_html.contains("@zoe.fan"));
    assert!(
        page("/contacts?q=nobody-at-all")
            .await
            .contains("Nobody matches")
    );
    assert!(
        page(&format!("/contacts/{zoe_id}"))
            .await
            .contains("hello from zoe.fan")
    );
    let inbox = page("/inbox").await;
    assert!(
        inbox.contains("hello from yan.fan") && !inbox.contains("Reply on Instagram"),
        "TikTok comments cannot be answered"
    );
    assert!(
        page("/inbox?kind=mention")
            .await
            .contains("Nothing here yet")
    );
    // A creator form with an empty name is refused with a reason, on the page.
    let refused = browser
        .client
        .post(app.url("/creators"))
        .form(&[("csrf", browser.csrf.as_str()), ("name", "")])
        .send()
        .await
        .unwrap();
    page_error_or_form(refused).await;
}

/// The creators page answers a refused form with 422 and the reason.
async fn page_error_or_form(response: reqwest::Response) {
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("Name must not be empty")
    );
}

both_backends!(crm_api);
