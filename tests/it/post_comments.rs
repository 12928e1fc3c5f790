//! Comments on a post between members (SQLite and PostgreSQL): added from the post's page by a
//! signed-in person and through the API by a key, each named with who and when; listed newest
//! first with the API's paging; empty, too long, badly shaped and misplaced comments refused
//! clearly, nothing stored; text shown as text.

use reqwest::StatusCode;
use serde_json::{Value, json};
use tidepost_store::testing::Backend;

use crate::support::*;

async fn comment(app: &TestApp, key: &str, post: &str, body: Value) -> reqwest::Response {
    bare_client()
        .post(app.url(&format!("/api/v1/posts/{post}/comments")))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap()
}

both_backends!(members_talk_about_a_post);

async fn members_talk_about_a_post(backend: Backend) {
    let app = spawn_app(backend).await;
    let ada = app.signed_in("talk").await;
    let ws = ada.workspace.id.clone();
    let key = app.api_key(&ws, "host crm", &[]).await;
    let account = fixture_account(&app.db, &ws, "tiktok", "act.talk", "Creator").await;
    let created = bare_client()
        .post(app.url("/api/v1/posts"))
        .bearer_auth(&key)
        .json(&json!({
            "caption": "Spring tide",
            "media": [{"url": "https://media.tidepost.example/clip.mp4"}],
            "targets": [{"account_id": account, "tiktok": {"mode": "inbox"}}],
            "scheduled_at": "2027-03-10T14:30:00Z",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::ACCEPTED);
    let post = created.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();

    // From the post's page, as a person: back to the comments, shown with who and when.
    let added = ada
        .client
        .post(app.url(&format!("/posts/{post}/comments")))
        .form(&[
            ("csrf", ada.csrf.as_str()),
            ("body", "  Can we say <b>king</b> tide?\nIt is bigger.  "),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(added.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&added), format!("/posts/{post}#comments"));
    let page = app.page_text(&ada.client, &format!("/posts/{post}")).await;
    assert!(page.contains("owner@talk.example"), "{page}");
    assert!(
        page.contains("Can we say &#60;b&#62;king&#60;/b&#62; tide?"),
        "the text is shown as text: {page}"
    );
    assert!(!page.contains("<b>king</b>"));
    assert!(
        page.contains(" UTC</p>"),
        "when, in the viewer's zone, named"
    );

    // Through the API, as the host application's key.
    let reply = comment(&app, &key, &post, json!({"body": "Yes, changing it."})).await;
    assert_eq!(reply.status(), StatusCode::CREATED);
    let reply: Value = reply.json().await.unwrap();
    assert_eq!(reply["author"]["kind"], "api_key");
    assert_eq!(reply["author"]["name"], "host crm");
    assert_eq!(reply["body"], "Yes, changing it.");
    assert_eq!(reply["post_id"], post.as_str());
    let page = app.page_text(&ada.client, &format!("/posts/{post}")).await;
    let first = page.find("king").unwrap();
    let second = page.find("Yes, changing it.").unwrap();
    assert!(first < second, "a conversation reads oldest first");
    assert!(page.contains("host crm (API key)"));

    // Listed newest first, a page at a time.
    let list: Value = app
        .api_get(&key, &format!("/api/v1/posts/{post}/comments?limit=1"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["data"][0]["body"], "Yes, changing it.");
    let next = list["next_cursor"].as_str().unwrap();
    let older: Value = app
        .api_get(
            &key,
            &format!("/api/v1/posts/{post}/comments?limit=1&after={next}"),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        older["data"][0]["body"],
        "Can we say <b>king</b> tide?\nIt is bigger."
    );
    assert_eq!(older["data"][0]["author"]["kind"], "user");
    assert_eq!(older["data"][0]["author"]["name"], "owner@talk.example");
    assert_eq!(older["next_cursor"], Value::Null);

    // Refused, each clearly, nothing stored.
    for (body, status, code) in [
        (
            json!({"body": "   "}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-request",
        ),
        (
            json!({"body": "x".repeat(2001)}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-request",
        ),
        (
            json!({"text": "hello"}),
            StatusCode::BAD_REQUEST,
            "bad-request",
        ),
        (json!({"body": 42}), StatusCode::BAD_REQUEST, "bad-request"),
    ] {
        let refused = comment(&app, &key, &post, body.clone()).await;
        let refused = problem(refused, status, code).await;
        if status == StatusCode::UNPROCESSABLE_ENTITY {
            assert_eq!(refused["field"], "body", "{body}");
        }
    }
    let refused = ada
        .client
        .post(app.url(&format!("/posts/{post}/comments")))
        .form(&[("csrf", ada.csrf.as_str()), ("body", " ")])
        .send()
        .await
        .unwrap();
    let refused = page_error(
        refused,
        StatusCode::UNPROCESSABLE_ENTITY,
        "The comment is empty",
    )
    .await;
    assert!(refused.contains("Back to the post"));
    let forged = ada
        .client
        .post(app.url(&format!("/posts/{post}/comments")))
        .form(&[("body", "no token")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    let unknown = comment(
        &app,
        &key,
        "0190aaaa-0000-7000-8000-000000000000",
        json!({"body": "hi"}),
    )
    .await;
    problem(unknown, StatusCode::NOT_FOUND, "not-found").await;
    let all: Value = app
        .api_get(&key, &format!("/api/v1/posts/{post}/comments"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(all["data"].as_array().unwrap().len(), 2);
    let limit = app
        .api_get(&key, &format!("/api/v1/posts/{post}/comments?limit=0"))
        .await;
    problem(limit, StatusCode::UNPROCESSABLE_ENTITY, "invalid-request").await;
}
