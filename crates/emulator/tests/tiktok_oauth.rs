//! Fidelity tests of the emulated Login Kit v2 OAuth flow, with raw HTTP calls.

mod tiktok_support;

use base64::Engine;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::Digest;
use tidepost_emulator::EmulatorConfig;
use tiktok_support::{CLIENT_KEY, CLIENT_SECRET, Harness};

const REDIRECT: &str = "https://app.tidepost.example/oauth/tiktok/callback";

fn authorize_query(extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut query: Vec<(String, String)> = [
        ("client_key", CLIENT_KEY),
        ("response_type", "code"),
        ("scope", "user.info.basic,video.publish,video.upload"),
        ("redirect_uri", REDIRECT),
        ("state", "csrf-123"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    query.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    query
}

/// Query pairs of a redirect `Location`.
fn location_query(response: &reqwest::Response) -> Vec<(String, String)> {
    let location = response.headers()["location"].to_str().unwrap();
    let url = url::Url::parse(location).unwrap();
    assert!(location.starts_with(REDIRECT), "{location}");
    url.query_pairs().into_owned().collect()
}

fn param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Approves the consent form for `creator`; returns the redirect's query.
async fn approve(h: &Harness, extra: &[(&str, &str)], creator: &str) -> Vec<(String, String)> {
    let mut form = authorize_query(extra);
    form.push(("creator".into(), creator.into()));
    form.push(("decision".into(), "approve".into()));
    let response = h
        .http
        .post(h.www("/v2/auth/authorize/"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    location_query(&response)
}

async fn token_call(h: &Harness, form: &[(&str, &str)]) -> (StatusCode, Value) {
    let response = h
        .http
        .post(h.open("/v2/oauth/token/"))
        .header("Cache-Control", "no-cache")
        .form(form)
        .send()
        .await
        .unwrap();
    (response.status(), response.json().await.unwrap())
}

async fn redeem(h: &Harness, code: &str, verifier: Option<&str>) -> (StatusCode, Value) {
    let mut form = vec![
        ("client_key", CLIENT_KEY),
        ("client_secret", CLIENT_SECRET),
        ("code", code),
        ("grant_type", "authorization_code"),
        ("redirect_uri", REDIRECT),
    ];
    if let Some(verifier) = verifier {
        form.push(("code_verifier", verifier));
    }
    token_call(h, &form).await
}

async fn refresh(h: &Harness, refresh_token: &str) -> (StatusCode, Value) {
    token_call(
        h,
        &[
            ("client_key", CLIENT_KEY),
            ("client_secret", CLIENT_SECRET),
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ],
    )
    .await
}

async fn user_open_id(h: &Harness, token: &str) -> (StatusCode, Value) {
    let response = h
        .http
        .get(h.open("/v2/user/info/?fields=open_id,display_name"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    (response.status(), response.json().await.unwrap())
}

#[tokio::test]
async fn consent_page_lists_creators_and_approve_issues_a_working_code() {
    let h = Harness::start().await;
    let page = h
        .http
        .get(h.www("/v2/auth/authorize/"))
        .query(&authorize_query(&[]))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    for name in [
        "Tidepost Sandbox",
        "Private Pat",
        "Quiet Quinn",
        "Authorize",
        "Deny",
        "video.publish",
    ] {
        assert!(html.contains(name), "consent page lacks {name}");
    }

    let query = approve(&h, &[], "tidepost.private").await;
    assert_eq!(param(&query, "state"), Some("csrf-123"));
    assert_eq!(
        param(&query, "scopes"),
        Some("user.info.basic,video.publish,video.upload")
    );
    let code = param(&query, "code").unwrap().to_string();

    let (status, token) = redeem(&h, &code, None).await;
    assert_eq!(status, StatusCode::OK, "{token}");
    assert_eq!(token["token_type"], "Bearer");
    assert_eq!(token["expires_in"], 86_400);
    assert_eq!(token["refresh_expires_in"], 31_536_000);
    assert_eq!(token["scope"], "user.info.basic,video.publish,video.upload");
    assert!(token["open_id"].as_str().unwrap().starts_with("act."));
    assert!(token.get("data").is_none(), "token answers are flat");

    let (status, user) = user_open_id(&h, token["access_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(user["data"]["user"]["display_name"], "Private Pat");
    assert_eq!(user["data"]["user"]["open_id"], token["open_id"]);

    // Codes are single-use.
    let (status, error) = redeem(&h, &code, None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error["error"], "invalid_grant");
    assert!(error["log_id"].is_string() && error["error_description"].is_string());
}

#[tokio::test]
async fn deny_redirects_with_access_denied() {
    let h = Harness::start().await;
    let mut form = authorize_query(&[]);
    form.push(("decision".into(), "deny".into()));
    let response = h
        .http
        .post(h.www("/v2/auth/authorize/"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert!(response.status().is_redirection());
    let query = location_query(&response);
    assert_eq!(param(&query, "error"), Some("access_denied"));
    assert!(param(&query, "error_description").is_some());
    assert_eq!(param(&query, "state"), Some("csrf-123"));
    assert_eq!(param(&query, "code"), None);
}

#[tokio::test]
async fn authorize_validates_its_parameters() {
    let h = Harness::start().await;
    let get = |query: Vec<(String, String)>| {
        h.http
            .get(h.www("/v2/auth/authorize/"))
            .query(&query)
            .send()
    };

    let mut bad_client = authorize_query(&[]);
    bad_client[0].1 = "someone-else".into();
    assert_eq!(
        get(bad_client).await.unwrap().status(),
        StatusCode::BAD_REQUEST
    );

    for uri in [
        "/relative",
        "ftp://x.example/cb",
        "https://x.example/cb?x=1",
        "https://x.example/cb#frag",
    ] {
        let mut query = authorize_query(&[]);
        query[3].1 = uri.into();
        assert_eq!(
            get(query).await.unwrap().status(),
            StatusCode::BAD_REQUEST,
            "{uri}"
        );
    }

    let mut bad_type = authorize_query(&[]);
    bad_type[1].1 = "token".into();
    let response = get(bad_type).await.unwrap();
    assert_eq!(
        param(&location_query(&response), "error"),
        Some("unsupported_response_type")
    );

    let mut bad_scope = authorize_query(&[]);
    bad_scope[2].1 = "user.info.basic,video.everything".into();
    let response = get(bad_scope).await.unwrap();
    assert_eq!(
        param(&location_query(&response), "error"),
        Some("invalid_scope")
    );

    h.settings(json!({"registered_redirect_uris": ["https://other.example/cb"]}))
        .await;
    assert_eq!(
        get(authorize_query(&[])).await.unwrap().status(),
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn auto_approve_redirects_at_once_for_the_named_creator() {
    let h = Harness::start_with(EmulatorConfig {
        auto_approve: true,
        ..EmulatorConfig::default()
    })
    .await;
    let response = h
        .http
        .get(h.www("/v2/auth/authorize/"))
        .query(&authorize_query(&[]))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_redirection());
    let code = param(&location_query(&response), "code")
        .unwrap()
        .to_string();
    let (_, token) = redeem(&h, &code, None).await;
    assert_eq!(token["open_id"], "act.sandboxCreatorEmulator0000000000");

    let query = authorize_query(&[("emulator_creator", "tidepost.quiet")]);
    let response = h
        .http
        .get(h.www("/v2/auth/authorize/"))
        .query(&query)
        .send()
        .await
        .unwrap();
    let code = param(&location_query(&response), "code")
        .unwrap()
        .to_string();
    let (_, token) = redeem(&h, &code, None).await;
    assert_eq!(token["open_id"], "act.quietCreatorEmulator0000000000");
}

#[tokio::test]
async fn codes_expire_and_redirect_uri_must_match() {
    let h = Harness::start().await;
    let code = param(&approve(&h, &[], "tidepost.sandbox").await, "code")
        .unwrap()
        .to_string();
    let (status, error) = token_call(
        &h,
        &[
            ("client_key", CLIENT_KEY),
            ("client_secret", CLIENT_SECRET),
            ("code", &code),
            ("grant_type", "authorization_code"),
            ("redirect_uri", "https://app.tidepost.example/other"),
        ],
    )
    .await;
    assert_eq!(
        (status, error["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );

    h.advance(301).await;
    let (status, error) = redeem(&h, &code, None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error["error"], "invalid_grant");
    assert_eq!(error["error_description"], "Authorization code is expired.");
}

#[tokio::test]
async fn pkce_accepts_hex_and_base64url_challenges_and_refuses_mismatches() {
    let h = Harness::start().await;
    let verifier = "a-long-random-code-verifier-0123456789-abcdefghijklmnop";
    let digest = sha2::Sha256::digest(verifier.as_bytes());
    let hex_challenge = hex::encode(digest);
    let b64_challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest);

    for challenge in [hex_challenge.as_str(), b64_challenge.as_str()] {
        let extra = [
            ("code_challenge", challenge),
            ("code_challenge_method", "S256"),
        ];
        let code = param(&approve(&h, &extra, "tidepost.sandbox").await, "code")
            .unwrap()
            .to_string();
        let (status, error) = redeem(&h, &code, Some("wrong-verifier")).await;
        assert_eq!(
            (status, error["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_grant"))
        );
        let (status, error) = redeem(&h, &code, None).await;
        assert_eq!(
            (status, error["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_grant"))
        );
        let (status, token) = redeem(&h, &code, Some(verifier)).await;
        assert_eq!(status, StatusCode::OK, "{token}");
    }

    // No challenge at authorize: a verifier on the token call is tolerated.
    let code = param(&approve(&h, &[], "tidepost.sandbox").await, "code")
        .unwrap()
        .to_string();
    assert_eq!(redeem(&h, &code, Some(verifier)).await.0, StatusCode::OK);
}

#[tokio::test]
async fn refresh_rotates_and_the_old_refresh_token_stops_working() {
    let h = Harness::start().await;
    let code = param(&approve(&h, &[], "tidepost.sandbox").await, "code")
        .unwrap()
        .to_string();
    let (_, first) = redeem(&h, &code, None).await;
    let old_refresh = first["refresh_token"].as_str().unwrap();

    let (status, second) = refresh(&h, old_refresh).await;
    assert_eq!(status, StatusCode::OK, "{second}");
    assert_ne!(second["refresh_token"], first["refresh_token"]);
    assert_ne!(second["access_token"], first["access_token"]);
    assert_eq!(second["open_id"], first["open_id"]);
    assert_eq!(
        user_open_id(&h, second["access_token"].as_str().unwrap())
            .await
            .0,
        StatusCode::OK
    );

    let (status, error) = refresh(&h, old_refresh).await;
    assert_eq!(
        (status, error["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    assert_eq!(
        refresh(&h, second["refresh_token"].as_str().unwrap())
            .await
            .0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn access_tokens_expire_on_the_emulated_clock() {
    let h = Harness::start().await;
    let token = h.access_token().await;
    assert_eq!(user_open_id(&h, &token).await.0, StatusCode::OK);
    h.advance(86_401).await;
    let (status, body) = user_open_id(&h, &token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "access_token_invalid");
}

#[tokio::test]
async fn token_endpoint_errors() {
    let h = Harness::start().await;
    let (status, error) = token_call(
        &h,
        &[
            ("client_key", CLIENT_KEY),
            ("client_secret", "wrong"),
            ("grant_type", "refresh_token"),
        ],
    )
    .await;
    assert_eq!(
        (status, error["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_client"))
    );
    let (_, error) = token_call(
        &h,
        &[
            ("client_key", CLIENT_KEY),
            ("client_secret", CLIENT_SECRET),
            ("grant_type", "password"),
        ],
    )
    .await;
    assert_eq!(error["error"], "unsupported_grant_type");
    let (_, error) = token_call(
        &h,
        &[("client_key", CLIENT_KEY), ("client_secret", CLIENT_SECRET)],
    )
    .await;
    assert_eq!(error["error"], "invalid_request");
    let (_, error) = refresh(&h, "rft.unknown").await;
    assert_eq!(error["error"], "invalid_grant");

    // TikTok was seen answering OAuth errors with HTTP 200.
    h.settings(json!({"oauth_errors_http_200": true})).await;
    let (status, error) = refresh(&h, "rft.unknown").await;
    assert_eq!(
        (status, error["error"].as_str()),
        (StatusCode::OK, Some("invalid_grant"))
    );

    let response = h.http.get(h.open("/v2/oauth/token/")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn refuse_refresh_fault_refuses_refresh_grants() {
    let h = Harness::start().await;
    let minted = h.token(json!({})).await;
    assert_eq!(minted["client_key"], CLIENT_KEY);
    assert_eq!(minted["client_secret"], CLIENT_SECRET);
    h.faults(json!({"refuse_refresh": true})).await;
    let (status, error) = refresh(&h, minted["refresh_token"].as_str().unwrap()).await;
    assert_eq!(
        (status, error["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    h.faults(json!({})).await;
    assert_eq!(
        refresh(&h, minted["refresh_token"].as_str().unwrap())
            .await
            .0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn revoke_kills_every_token_of_the_user() {
    let h = Harness::start().await;
    let minted = h.token(json!({})).await;
    let access = minted["access_token"].as_str().unwrap();
    let response = h
        .http
        .post(h.open("/v2/oauth/revoke/"))
        .form(&[
            ("client_key", CLIENT_KEY),
            ("client_secret", CLIENT_SECRET),
            ("token", access),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(user_open_id(&h, access).await.0, StatusCode::UNAUTHORIZED);
    let (_, error) = refresh(&h, minted["refresh_token"].as_str().unwrap()).await;
    assert_eq!(error["error"], "invalid_grant");

    let response = h
        .http
        .post(h.open("/v2/oauth/revoke/"))
        .form(&[
            ("client_key", CLIENT_KEY),
            ("client_secret", "nope"),
            ("token", access),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.json::<Value>().await.unwrap()["error"],
        "invalid_client"
    );
}
