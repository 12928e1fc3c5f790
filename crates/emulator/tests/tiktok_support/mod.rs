//! Shared helpers for the TikTok fidelity tests: an emulator plus a raw reqwest client, and
//! tiny local servers (webhook receiver, media host).
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::HeaderMap;
use axum::routing::post;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tidepost_emulator::{Emulator, EmulatorConfig};

pub const CLIENT_KEY: &str = "sandbox-tiktok-client-key";
pub const CLIENT_SECRET: &str = "sandbox-tiktok-client-secret";

pub struct Harness {
    pub emu: Emulator,
    pub http: reqwest::Client,
    pub base: String,
}

impl Harness {
    pub async fn start() -> Self {
        Self::start_with(EmulatorConfig::default()).await
    }

    pub async fn start_with(config: EmulatorConfig) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let emu = Emulator::start("127.0.0.1:0".parse().unwrap(), config)
            .await
            .unwrap();
        let base = emu.base_url();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Self { emu, http, base }
    }

    pub fn open(&self, path: &str) -> String {
        format!("{}/tiktok/open{path}", self.base)
    }

    pub fn www(&self, path: &str) -> String {
        format!("{}/tiktok/www{path}", self.base)
    }

    pub fn admin(&self, path: &str) -> String {
        format!("{}/_emulator{path}", self.base)
    }

    /// Mints a token through the admin API.
    pub async fn token(&self, body: Value) -> Value {
        let response = self
            .http
            .post(self.admin("/tiktok/token"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }

    /// An access token with every scope for the default (public) creator.
    pub async fn access_token(&self) -> String {
        self.token(json!({})).await["access_token"]
            .as_str()
            .unwrap()
            .to_string()
    }

    pub async fn access_token_for(&self, creator: &str) -> String {
        self.token(json!({"creator": creator})).await["access_token"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// A JSON POST to an open API path; returns status, headers and body.
    pub async fn post(&self, token: &str, path: &str, body: Value) -> (StatusCode, Value) {
        let (status, _, body) = self.post_full(token, path, body).await;
        (status, body)
    }

    pub async fn post_full(
        &self,
        token: &str,
        path: &str,
        body: Value,
    ) -> (StatusCode, HeaderMap, Value) {
        let response = self
            .http
            .post(self.open(path))
            .bearer_auth(token)
            .header("Content-Type", "application/json; charset=UTF-8")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        (
            status,
            headers,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn settings(&self, patch: Value) {
        let response = self
            .http
            .put(self.admin("/tiktok/settings"))
            .json(&patch)
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "{}",
            response.text().await.unwrap()
        );
    }

    pub async fn faults(&self, set: Value) {
        let response = self
            .http
            .put(self.admin("/faults/tiktok"))
            .json(&set)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }

    pub async fn advance(&self, seconds: u64) {
        let response = self
            .http
            .post(self.admin("/clock/advance"))
            .json(&json!({ "seconds": seconds }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }

    pub async fn publish(&self, publish_id: &str) -> Value {
        let response = self
            .http
            .get(self.admin(&format!("/tiktok/publishes/{publish_id}")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }

    pub async fn status(&self, token: &str, publish_id: &str) -> Value {
        let (status, body) = self
            .post(
                token,
                "/v2/post/publish/status/fetch/",
                json!({ "publish_id": publish_id }),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["error"]["code"], "ok");
        body["data"].clone()
    }

    /// Direct-post FILE_UPLOAD init for `size` bytes in `chunk_size` chunks.
    pub async fn init_upload(
        &self,
        token: &str,
        size: u64,
        chunk_size: u64,
        privacy: &str,
    ) -> (String, String) {
        let (status, body) = self
            .post(
                token,
                "/v2/post/publish/video/init/",
                file_upload_body(size, chunk_size, privacy),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        (
            body["data"]["publish_id"].as_str().unwrap().into(),
            body["data"]["upload_url"].as_str().unwrap().into(),
        )
    }

    /// PUTs one chunk.
    pub async fn put_chunk(
        &self,
        url: &str,
        data: &[u8],
        first: u64,
        total: u64,
    ) -> reqwest::Response {
        let last = first + data.len() as u64 - 1;
        self.http
            .put(url)
            .header("Content-Type", "video/mp4")
            .header("Content-Range", format!("bytes {first}-{last}/{total}"))
            .body(data.to_vec())
            .send()
            .await
            .unwrap()
    }

    /// Uploads `data` following the documented chunk layout; returns each PUT's status.
    pub async fn upload(&self, url: &str, data: &[u8], chunk_size: u64) -> Vec<StatusCode> {
        let mut statuses = Vec::new();
        for (first, last) in layout(data.len() as u64, chunk_size) {
            let chunk = &data[first as usize..=last as usize];
            statuses.push(
                self.put_chunk(url, chunk, first, data.len() as u64)
                    .await
                    .status(),
            );
        }
        statuses
    }

    /// Polls status fetch until `status` (advancing the emulated clock as needed).
    pub async fn wait_status(&self, token: &str, publish_id: &str, wanted: &str) -> Value {
        for _ in 0..100 {
            let data = self.status(token, publish_id).await;
            if data["status"] == wanted {
                return data;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{publish_id} never reached {wanted}");
    }
}

pub fn file_upload_body(size: u64, chunk_size: u64, privacy: &str) -> Value {
    json!({
        "post_info": {"title": "hello #tidepost", "privacy_level": privacy, "disable_comment": false, "brand_content_toggle": false},
        "source_info": {"source": "FILE_UPLOAD", "video_size": size, "chunk_size": chunk_size,
                        "total_chunk_count": size.checked_div(chunk_size).unwrap_or(0)},
    })
}

/// The documented chunk layout: floor(size / chunk) chunks, the remainder in the last one.
pub fn layout(size: u64, chunk_size: u64) -> Vec<(u64, u64)> {
    let n = (size / chunk_size).max(1);
    (0..n)
        .map(|i| {
            (
                i * chunk_size,
                if i + 1 == n {
                    size - 1
                } else {
                    (i + 1) * chunk_size - 1
                },
            )
        })
        .collect()
}

/// Deterministic test bytes.
pub fn bytes(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}

/// Serves `router` on a free local port; returns `http://127.0.0.1:PORT`.
pub async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    format!("http://{addr}")
}

/// A webhook as received: the signature header and the raw body.
#[derive(Debug, Clone)]
pub struct Received {
    pub signature: String,
    pub body: Vec<u8>,
}

impl Received {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// A local webhook receiver; returns its URL and what it received.
pub async fn webhook_receiver() -> (String, Arc<Mutex<Vec<Received>>>) {
    let received: Arc<Mutex<Vec<Received>>> = Arc::default();
    let sink = received.clone();
    let router = Router::new().route(
        "/hook",
        post(move |headers: HeaderMap, body: bytes::Bytes| {
            let sink = sink.clone();
            async move {
                let signature = headers
                    .get("tiktok-signature")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                sink.lock().unwrap().push(Received {
                    signature,
                    body: body.to_vec(),
                });
                "ok"
            }
        }),
    );
    (format!("{}/hook", serve(router).await), received)
}

/// Waits until a webhook with `event` arrived.
pub async fn wait_webhook(received: &Arc<Mutex<Vec<Received>>>, event: &str) -> Received {
    for _ in 0..100 {
        if let Some(hit) = received
            .lock()
            .unwrap()
            .iter()
            .find(|r| r.json()["event"] == event)
        {
            return hit.clone();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no {event} webhook arrived");
}
