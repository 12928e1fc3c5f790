//! Shared helpers of the Meta fidelity tests: an emulator, a raw reqwest client that does not
//! follow redirects, a tiny media server (bytes with known SHA-256) and a webhook receiver.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tidepost_emulator::{Emulator, EmulatorConfig};

pub const V: &str = "v21.0";

pub struct Harness {
    pub emulator: Emulator,
    pub http: reqwest::Client,
    pub base: String,
}

impl Harness {
    pub async fn start() -> Self {
        Self::with(EmulatorConfig::default()).await
    }

    pub async fn with(config: EmulatorConfig) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let emulator = Emulator::start("127.0.0.1:0".parse().expect("addr"), config)
            .await
            .expect("emulator starts");
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        let base = emulator.base_url();
        Self {
            emulator,
            http,
            base,
        }
    }

    pub fn graph(&self, path: &str) -> String {
        format!("{}/meta/graph/{V}/{path}", self.base)
    }

    pub fn ig_graph(&self, path: &str) -> String {
        format!("{}/meta/ig-graph/{V}/{path}", self.base)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `POST /_emulator/meta/token`.
    pub async fn admin_token(&self) -> AdminToken {
        let body: Value = self
            .http
            .post(self.url("/_emulator/meta/token"))
            .send()
            .await
            .expect("token")
            .json()
            .await
            .expect("json");
        AdminToken {
            access_token: s(&body["access_token"]),
            ig_user_id: s(&body["ig_user_id"]),
            page_id: s(&body["page_id"]),
        }
    }

    pub async fn get(&self, url: &str, query: &[(&str, &str)]) -> (StatusCode, Value) {
        let response = self.http.get(url).query(query).send().await.expect("GET");
        status_json(response).await
    }

    pub async fn post(&self, url: &str, query: &[(&str, &str)]) -> (StatusCode, Value) {
        let response = self.http.post(url).query(query).send().await.expect("POST");
        status_json(response).await
    }

    pub async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Value,
    ) -> (StatusCode, Value) {
        let response = self
            .http
            .request(method, self.url(path))
            .json(&body)
            .send()
            .await
            .expect("admin");
        status_json(response).await
    }

    pub async fn advance(&self, seconds: u64) {
        self.admin(
            reqwest::Method::POST,
            "/_emulator/clock/advance",
            json!({ "seconds": seconds }),
        )
        .await;
    }

    pub async fn faults(&self, faults: Value) {
        let (status, _) = self
            .admin(reqwest::Method::PUT, "/_emulator/faults/meta", faults)
            .await;
        assert_eq!(status, StatusCode::OK);
    }

    /// Creates a container and returns its id, asserting success.
    pub async fn container(&self, token: &str, ig: &str, params: &[(&str, &str)]) -> String {
        let mut query = params.to_vec();
        query.push(("access_token", token));
        let (status, body) = self.post(&self.graph(&format!("{ig}/media")), &query).await;
        assert_eq!(status, StatusCode::OK, "create container: {body}");
        s(&body["id"])
    }

    /// Polls a container until it leaves IN_PROGRESS; returns the final status_code.
    pub async fn wait_container(&self, token: &str, id: &str) -> Value {
        for _ in 0..100 {
            let (_, body) = self
                .get(
                    &self.graph(id),
                    &[("fields", "status_code,status,id"), ("access_token", token)],
                )
                .await;
            if body["status_code"] != "IN_PROGRESS" {
                return body;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("container {id} stayed IN_PROGRESS");
    }

    pub async fn publish(&self, token: &str, ig: &str, creation_id: &str) -> (StatusCode, Value) {
        self.post(
            &self.graph(&format!("{ig}/media_publish")),
            &[("creation_id", creation_id), ("access_token", token)],
        )
        .await
    }

    pub async fn admin_media(&self) -> Value {
        self.get(&self.url("/_emulator/meta/media"), &[]).await.1
    }
}

pub struct AdminToken {
    pub access_token: String,
    pub ig_user_id: String,
    pub page_id: String,
}

pub fn s(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_string()
}

pub async fn status_json(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let text = response.text().await.expect("body");
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, value)
}

/// Asserts Graph's error envelope with `code` (and `subcode` when given).
pub fn assert_graph_error(body: &Value, code: i64, subcode: Option<i64>) {
    let error = &body["error"];
    assert_eq!(error["code"], code, "error body: {body}");
    if let Some(subcode) = subcode {
        assert_eq!(error["error_subcode"], subcode, "error body: {body}");
    }
    assert!(error["message"].is_string(), "message: {body}");
    assert!(error["type"].is_string(), "type: {body}");
    assert!(error["fbtrace_id"].is_string(), "fbtrace_id: {body}");
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A tiny server for media bytes: `/image.jpg`, `/video.mp4`, `/cover.jpg`, `/missing` (404).
pub struct MediaServer {
    pub base: String,
    pub image: Vec<u8>,
    pub video: Vec<u8>,
}

impl MediaServer {
    pub async fn start() -> Self {
        let mut image = vec![0xff, 0xd8, 0xff, 0xe0];
        image.extend((0..50_000u32).map(|i| (i % 251) as u8));
        let video: Vec<u8> = (0..300_000u32)
            .map(|i| (i.wrapping_mul(7) % 253) as u8)
            .collect();
        let (img, vid) = (Bytes::from(image.clone()), Bytes::from(video.clone()));
        let app = Router::new()
            .route(
                "/image.jpg",
                get(move || async move { ([("content-type", "image/jpeg")], img.clone()) }),
            )
            .route(
                "/cover.jpg",
                get(|| async {
                    (
                        [("content-type", "image/jpeg")],
                        vec![0xffu8, 0xd8, 0xff, 1, 2, 3],
                    )
                }),
            )
            .route(
                "/video.mp4",
                get(move || async move { ([("content-type", "video/mp4")], vid.clone()) }),
            )
            .route("/missing", get(|| async { StatusCode::NOT_FOUND }));
        let base = serve(app).await;
        Self { base, image, video }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

/// Serves `app` on a free local port; returns its base URL.
pub async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr: SocketAddr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

/// A webhook receiver: records POSTs (headers + raw body) and answers the handshake when the
/// verify token matches.
#[derive(Clone, Default)]
pub struct Receiver {
    pub deliveries: Arc<Mutex<Vec<(HeaderMap, Bytes)>>>,
}

impl Receiver {
    pub async fn start(verify_token: &'static str) -> (Self, String) {
        let receiver = Self::default();
        let app = Router::new()
            .route(
                "/hook",
                get(
                    move |Query(q): Query<std::collections::HashMap<String, String>>| async move {
                        let ok = q.get("hub.mode").map(String::as_str) == Some("subscribe")
                            && q.get("hub.verify_token").map(String::as_str) == Some(verify_token);
                        match (ok, q.get("hub.challenge")) {
                            (true, Some(challenge)) => (StatusCode::OK, challenge.clone()),
                            _ => (StatusCode::FORBIDDEN, String::new()),
                        }
                    },
                )
                .post(
                    |State(r): State<Receiver>, headers: HeaderMap, body: Bytes| async move {
                        r.deliveries.lock().expect("lock").push((headers, body));
                        StatusCode::OK
                    },
                ),
            )
            .with_state(receiver.clone());
        let base = serve(app).await;
        (receiver, format!("{base}/hook"))
    }

    /// Waits until at least `n` deliveries arrived.
    pub async fn wait_for(&self, n: usize) -> Vec<(HeaderMap, Bytes)> {
        for _ in 0..100 {
            let got = self.deliveries.lock().expect("lock").clone();
            if got.len() >= n {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("expected {n} webhook deliveries");
    }
}

pub const REDIRECT: &str = "https://app.tidepost.example/oauth/callback";

/// Query parameters of a redirect's `Location` (fragment returned separately).
pub fn location(
    response: &reqwest::Response,
) -> (std::collections::HashMap<String, String>, Option<String>) {
    let location = response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .expect("Location header");
    let url = url::Url::parse(location).expect("absolute Location");
    (
        url.query_pairs().into_owned().collect(),
        url.fragment().map(str::to_string),
    )
}

impl Harness {
    /// Runs Instagram Login for `account` up to a short-lived token.
    pub async fn ig_login(&self, account: &str) -> String {
        let form = [
            ("client_id", "9876543210987654"),
            ("redirect_uri", REDIRECT),
            ("response_type", "code"),
            (
                "scope",
                "instagram_business_basic,instagram_business_content_publish,instagram_business_manage_comments,instagram_business_manage_insights",
            ),
            ("state", "st"),
            ("decision", "approve"),
            ("account", account),
        ];
        let response = self
            .http
            .post(self.url("/meta/instagram/oauth/authorize"))
            .form(&form)
            .send()
            .await
            .expect("authorize");
        assert_eq!(response.status(), StatusCode::FOUND);
        let (query, _) = location(&response);
        let code = query.get("code").expect("code").clone();
        let token_form = [
            ("client_id", "9876543210987654"),
            ("client_secret", "emulator-instagram-app-secret"),
            ("grant_type", "authorization_code"),
            ("redirect_uri", REDIRECT),
            ("code", code.as_str()),
        ];
        let response = self
            .http
            .post(self.url("/meta/ig-api/oauth/access_token"))
            .form(&token_form)
            .send()
            .await
            .expect("token");
        let (status, body) = status_json(response).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        s(&body["access_token"])
    }
}
