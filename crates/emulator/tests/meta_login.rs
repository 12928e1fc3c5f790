//! Fidelity of Facebook Login, Instagram Login, identity nodes and token errors.

mod meta_support;

use meta_support::*;
use reqwest::StatusCode;
use serde_json::json;
use tidepost_emulator::EmulatorConfig;

const FB_APP: &str = "1234567890123456";
const FB_SECRET: &str = "emulator-facebook-app-secret";
const SCOPES: &str =
    "instagram_basic,instagram_content_publish,pages_show_list,pages_read_engagement";

fn dialog_form(decision: &str, grants: &[&str]) -> Vec<(&'static str, String)> {
    let mut form = vec![
        ("client_id", FB_APP.to_string()),
        ("redirect_uri", REDIRECT.to_string()),
        ("state", "csrf-123".to_string()),
        ("scope", SCOPES.to_string()),
        ("decision", decision.to_string()),
    ];
    form.extend(grants.iter().map(|g| ("grant", g.to_string())));
    form
}

async fn fb_code(h: &Harness, grants: &[&str]) -> String {
    let url = h.url(&format!("/meta/www/{V}/dialog/oauth"));
    let response = h
        .http
        .post(url)
        .form(&dialog_form("approve", grants))
        .send()
        .await
        .expect("submit");
    assert_eq!(response.status(), StatusCode::FOUND);
    let (query, fragment) = location(&response);
    assert_eq!(query.get("state").map(String::as_str), Some("csrf-123"));
    assert_eq!(fragment.as_deref(), Some("_=_"));
    query.get("code").expect("code").clone()
}

async fn exchange(h: &Harness, code: &str, redirect: &str) -> (StatusCode, serde_json::Value) {
    let query = [
        ("client_id", FB_APP),
        ("client_secret", FB_SECRET),
        ("redirect_uri", redirect),
        ("code", code),
    ];
    h.get(&h.graph("oauth/access_token"), &query).await
}

#[tokio::test]
async fn facebook_login_consent_code_and_long_lived_token() {
    let h = Harness::start().await;
    let dialog = h.url(&format!("/meta/www/{V}/dialog/oauth"));
    let query = [
        ("client_id", FB_APP),
        ("redirect_uri", REDIRECT),
        ("state", "csrf-123"),
        ("scope", SCOPES),
    ];
    let response = h
        .http
        .get(&dialog)
        .query(&query)
        .send()
        .await
        .expect("dialog");
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap_or("")
            .starts_with("text/html")
    );
    let html = response.text().await.expect("html");
    assert!(
        html.contains("<form")
            && html.contains("value=\"approve\"")
            && html.contains("value=\"deny\"")
    );

    // Bad client_id: an error page, no redirect.
    let response = h
        .http
        .get(&dialog)
        .query(&[("client_id", "42"), ("redirect_uri", REDIRECT)])
        .send()
        .await
        .expect("bad");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    // The user unticks pages_read_engagement.
    let code = fb_code(
        &h,
        &[
            "instagram_basic",
            "instagram_content_publish",
            "pages_show_list",
        ],
    )
    .await;
    let (status, body) = exchange(&h, &code, "https://app.tidepost.example/other").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_graph_error(&body, 100, Some(36008));
    assert_eq!(body["error"]["type"], "OAuthException");

    let (status, body) = h
        .get(
            &h.graph("oauth/access_token"),
            &[
                ("client_id", FB_APP),
                ("client_secret", "nope"),
                ("redirect_uri", REDIRECT),
                ("code", &code),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_graph_error(&body, 1, None);

    let (status, body) = exchange(&h, &code, REDIRECT).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["token_type"], "bearer");
    let short = s(&body["access_token"]);
    assert!(short.starts_with("EAA"));
    let expires_in = body["expires_in"].as_i64().expect("expires_in");
    assert!((3500..=3600).contains(&expires_in), "{expires_in}");

    let (status, body) = exchange(&h, &code, REDIRECT).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_graph_error(&body, 100, Some(36009));

    let (status, body) = h
        .get(
            &h.graph("oauth/access_token"),
            &[
                ("grant_type", "fb_exchange_token"),
                ("client_id", FB_APP),
                ("client_secret", FB_SECRET),
                ("fb_exchange_token", &short),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let long = s(&body["access_token"]);
    let expires_in = body["expires_in"].as_i64().expect("expires_in");
    assert!(
        (5_183_000..=5_183_944).contains(&expires_in),
        "{expires_in}"
    );

    let (_, body) = h
        .get(&h.graph("me/permissions"), &[("access_token", &long)])
        .await;
    let declined: Vec<_> = body["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter(|p| p["status"] == "declined")
        .collect();
    assert_eq!(declined.len(), 1);
    assert_eq!(declined[0]["permission"], "pages_read_engagement");

    let (status, body) = h
        .get(
            &h.graph("me"),
            &[("fields", "id,name,picture"), ("access_token", &long)],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(body["id"].is_string() && body["name"].is_string());
    assert!(body["picture"]["data"]["url"].is_string());

    let (status, body) = h
        .get(
            &h.graph("debug_token"),
            &[
                ("input_token", &long),
                ("access_token", &format!("{FB_APP}|{FB_SECRET}")),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["is_valid"], true);
    assert_eq!(body["data"]["type"], "USER");
    assert_eq!(body["data"]["app_id"], FB_APP);
    assert!(body["data"]["expires_at"].as_i64().unwrap_or(0) > 0);
}

#[tokio::test]
async fn facebook_login_denial_and_auto_approve() {
    let h = Harness::start().await;
    let response = h
        .http
        .post(h.url(&format!("/meta/www/{V}/dialog/oauth")))
        .form(&dialog_form("deny", &[]))
        .send()
        .await
        .expect("deny");
    assert_eq!(response.status(), StatusCode::FOUND);
    let (query, fragment) = location(&response);
    assert_eq!(query["error"], "access_denied");
    assert_eq!(query["error_code"], "200");
    assert_eq!(query["error_reason"], "user_denied");
    assert_eq!(query["error_description"], "Permissions error");
    assert_eq!(query["state"], "csrf-123");
    assert_eq!(fragment.as_deref(), Some("_=_"));

    let auto = Harness::with(EmulatorConfig {
        auto_approve: true,
        ..Default::default()
    })
    .await;
    let query = [
        ("client_id", FB_APP),
        ("redirect_uri", REDIRECT),
        ("state", "s1"),
        ("scope", SCOPES),
    ];
    let response = auto
        .http
        .get(auto.url("/meta/www/v25.0/dialog/oauth"))
        .query(&query)
        .send()
        .await
        .expect("auto");
    assert_eq!(response.status(), StatusCode::FOUND);
    let (query, _) = location(&response);
    assert!(query.contains_key("code"));
}

#[tokio::test]
async fn pages_and_instagram_fixtures() {
    let h = Harness::start().await;
    let token = h.admin_token().await;
    let fields = "id,name,access_token,instagram_business_account";
    let (status, body) = h
        .get(
            &h.graph("me/accounts"),
            &[("fields", fields), ("access_token", &token.access_token)],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let pages = body["data"].as_array().expect("pages");
    assert_eq!(pages.len(), 3);
    assert!(body["paging"]["cursors"]["after"].is_string());
    let linked: Vec<_> = pages
        .iter()
        .filter_map(|p| p["instagram_business_account"]["id"].as_str())
        .collect();
    assert_eq!(linked.len(), 2, "one Page has no Instagram account");
    assert!(
        pages
            .iter()
            .any(|p| p.get("instagram_business_account").is_none())
    );
    assert!(linked.contains(&token.ig_user_id.as_str()));
    let page = pages
        .iter()
        .find(|p| p["id"] == token.page_id.as_str())
        .expect("page");
    let page_token = s(&page["access_token"]);

    // A Page token from a long-lived user token never expires.
    let app_token = format!("{FB_APP}|{FB_SECRET}");
    let (_, debug) = h
        .get(
            &h.graph("debug_token"),
            &[("input_token", &page_token), ("access_token", &app_token)],
        )
        .await;
    assert_eq!(debug["data"]["type"], "PAGE");
    assert_eq!(debug["data"]["expires_at"], 0);

    let (_, body) = h
        .get(
            &h.graph(&token.page_id),
            &[
                ("fields", "instagram_business_account"),
                ("access_token", &page_token),
            ],
        )
        .await;
    assert_eq!(
        body["instagram_business_account"]["id"],
        token.ig_user_id.as_str()
    );
    assert_eq!(body["id"], token.page_id.as_str());

    let fields = "id,username,name,profile_picture_url,followers_count,follows_count,media_count";
    for ig in linked {
        let (status, body) = h
            .get(
                &h.graph(ig),
                &[("fields", fields), ("access_token", &token.access_token)],
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["id"], ig);
        assert!(body["username"].is_string() && body["profile_picture_url"].is_string());
        assert!(body["followers_count"].as_u64().is_some());
    }
    let (status, body) = h
        .get(
            &h.graph(&token.ig_user_id),
            &[
                ("fields", "account_type"),
                ("access_token", &token.access_token),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_graph_error(&body, 100, None);
}

#[tokio::test]
async fn instagram_login_flow_refresh_and_account_types() {
    let h = Harness::start().await;
    let authorize = h.url("/meta/instagram/oauth/authorize");
    let query = [
        ("client_id", "9876543210987654"),
        ("redirect_uri", REDIRECT),
        ("response_type", "code"),
        (
            "scope",
            "instagram_business_basic,instagram_business_content_publish",
        ),
    ];
    let response = h
        .http
        .get(&authorize)
        .query(&query)
        .send()
        .await
        .expect("consent");
    assert_eq!(response.status(), StatusCode::OK);
    let html = response.text().await.expect("html");
    assert!(html.contains("name=\"account\"") && html.contains("PERSONAL"));

    let mut form: Vec<(&str, &str)> = query.to_vec();
    form.push(("decision", "deny"));
    let response = h
        .http
        .post(&authorize)
        .form(&form)
        .send()
        .await
        .expect("deny");
    let (denied, _) = location(&response);
    assert_eq!(denied["error"], "access_denied");
    assert_eq!(denied["error_reason"], "user_denied");
    assert_eq!(denied["error_description"], "The user denied your request");

    form.pop();
    form.push(("decision", "approve"));
    let response = h
        .http
        .post(&authorize)
        .form(&form)
        .send()
        .await
        .expect("approve");
    let (approved, fragment) = location(&response);
    assert_eq!(fragment.as_deref(), Some("_"));
    let code = approved["code"].clone();

    // Multipart, as Meta's sample sends it.
    let multipart = || {
        reqwest::multipart::Form::new()
            .text("client_id", "9876543210987654")
            .text("client_secret", "emulator-instagram-app-secret")
            .text("grant_type", "authorization_code")
            .text("redirect_uri", REDIRECT)
            .text("code", code.clone())
    };
    let token_url = h.url("/meta/ig-api/oauth/access_token");
    let (status, body) = status_json(
        h.http
            .post(&token_url)
            .multipart(multipart())
            .send()
            .await
            .expect("token"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["user_id"].is_u64(), "user_id is a JSON number: {body}");
    assert!(body["permissions"].is_array());
    let short = s(&body["access_token"]);
    assert!(short.starts_with("IGAA"));

    let (status, body) = status_json(
        h.http
            .post(&token_url)
            .multipart(multipart())
            .send()
            .await
            .expect("reuse"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        json!({"error_type": "OAuthException", "code": 400, "error_message": "Matching code was not found or was already used"})
    );

    let exchange = format!("{}/meta/ig-graph/access_token", h.base);
    let (status, body) = h
        .get(
            &exchange,
            &[
                ("grant_type", "ig_exchange_token"),
                ("client_secret", "emulator-instagram-app-secret"),
                ("access_token", &short),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["expires_in"], 5_183_944);
    let long = s(&body["access_token"]);

    let refresh = format!("{}/meta/ig-graph/refresh_access_token", h.base);
    let (status, body) = h
        .get(
            &refresh,
            &[("grant_type", "ig_refresh_token"), ("access_token", &long)],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "too young to refresh");
    assert_graph_error(&body, 190, None);
    assert_eq!(body["error"]["type"], "IGApiException");

    h.advance(25 * 3600).await;
    let (status, body) = h
        .get(
            &refresh,
            &[("grant_type", "ig_refresh_token"), ("access_token", &long)],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["expires_in"], 5_183_944);

    // The short-lived token has expired by now.
    let (status, body) = h.get(&h.ig_graph("me"), &[("access_token", &short)]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_graph_error(&body, 190, Some(463));

    let fields =
        "user_id,id,username,name,account_type,profile_picture_url,followers_count,media_count";
    let (status, me) = h
        .get(
            &h.ig_graph("me"),
            &[("fields", fields), ("access_token", &long)],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["account_type"], "BUSINESS");
    assert_ne!(
        me["id"], me["user_id"],
        "app-scoped id differs from user_id"
    );

    // The personal account logs in but cannot use the professional API.
    let personal = h.ig_login("17841405822304999").await;
    let (_, me) = h
        .get(
            &format!("{}/meta/ig-graph/me", h.base),
            &[
                ("fields", "user_id,account_type"),
                ("access_token", &personal),
            ],
        )
        .await;
    assert_eq!(me["account_type"], "PERSONAL");
    let (status, body) = h
        .post(
            &h.ig_graph("me/media"),
            &[
                ("image_url", "http://127.0.0.1:9/x.jpg"),
                ("access_token", &personal),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_graph_error(&body, 10, None);
}

#[tokio::test]
async fn token_and_request_errors() {
    let h = Harness::start().await;
    let token = h.admin_token().await;
    let me = h.graph("me");

    let (status, body) = h.get(&me, &[]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_graph_error(&body, 104, None);

    let (_, body) = h.get(&me, &[("access_token", "garbage")]).await;
    assert_graph_error(&body, 190, None);

    // An Instagram Login token is not valid on graph.facebook.com.
    let ig_token = h.ig_login("17841405822304914").await;
    let (_, body) = h.get(&me, &[("access_token", &ig_token)]).await;
    assert_graph_error(&body, 190, None);

    let (status, body) = h
        .get(
            &h.graph("17841400000000000"),
            &[("access_token", &token.access_token)],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_graph_error(&body, 100, Some(33));
    assert_eq!(body["error"]["type"], "GraphMethodException");
    let (_, body) = h
        .get(
            &h.graph("somebody"),
            &[("access_token", &token.access_token)],
        )
        .await;
    assert_graph_error(&body, 803, None);
    let (_, body) = h
        .get(
            &h.graph("me/nonsense"),
            &[("access_token", &token.access_token)],
        )
        .await;
    assert_graph_error(&body, 100, None);
    let response = h
        .http
        .delete(h.graph("me"))
        .bearer_auth(&token.access_token)
        .send()
        .await
        .expect("delete");
    let (status, body) = status_json(response).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_graph_error(&body, 100, None);
    let (_, body) = h
        .get(
            &h.graph(&format!("{}/media_publish", token.ig_user_id)),
            &[("access_token", &token.access_token)],
        )
        .await;
    assert_graph_error(&body, 100, None);
    assert!(s(&body["error"]["message"]).contains("method type: get"));
    let response = h
        .http
        .post(h.graph("me/feed"))
        .header("content-type", "application/json")
        .body("{not json")
        .bearer_auth(&token.access_token)
        .send()
        .await
        .expect("bad json");
    let (status, body) = status_json(response).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_graph_error(&body, 100, None);

    let (status, _) = h
        .admin(
            reqwest::Method::POST,
            "/_emulator/meta/tokens/expire",
            json!({"access_token": token.access_token}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let response = h
        .http
        .get(&me)
        .bearer_auth(&token.access_token)
        .send()
        .await
        .expect("expired");
    assert!(response.headers().get("www-authenticate").is_some());
    let (_, body) = status_json(response).await;
    assert_graph_error(&body, 190, Some(463));
    assert!(s(&body["error"]["message"]).contains("Session has expired"));

    let other = h.admin_token().await;
    h.admin(
        reqwest::Method::POST,
        "/_emulator/meta/tokens/revoke",
        json!({"access_token": other.access_token}),
    )
    .await;
    let (_, body) = h.get(&me, &[("access_token", &other.access_token)]).await;
    assert_graph_error(&body, 190, Some(458));
}

#[tokio::test]
async fn deleting_permissions_revokes_the_user_and_its_page_tokens() {
    let h = Harness::start().await;
    let token = h.admin_token().await;
    let (status, body) = h
        .get(
            &h.graph("me/accounts"),
            &[
                ("fields", "id,access_token"),
                ("access_token", &token.access_token),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let page_token = s(&body["data"][0]["access_token"]);
    let page_id = s(&body["data"][0]["id"]);

    let response = h
        .http
        .delete(h.graph("me/permissions"))
        .bearer_auth(&token.access_token)
        .send()
        .await
        .expect("DELETE");
    let (status, body) = status_json(response).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"success": true}));

    // The user token and the Page token derived from it stop working.
    let (status, body) = h
        .get(&h.graph("me"), &[("access_token", &token.access_token)])
        .await;
    assert_ne!(status, StatusCode::OK, "{body}");
    assert_eq!(body["error"]["code"], 190, "{body}");
    let (status, body) = h
        .get(&h.graph(&page_id), &[("access_token", &page_token)])
        .await;
    assert_ne!(status, StatusCode::OK, "{body}");
    assert_eq!(body["error"]["code"], 190, "{body}");
}
