//! Shared test harness: a real emulator, its admin API, and tiny local servers (webhook
//! receiver, media host).
#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::HeaderMap;
use axum::routing::post;
use serde_json::{Value, json};
use tidepost_emulator::{Emulator, EmulatorConfig};

pub struct Harness {
    pub emu: Emulator,
    pub base: String,
    /// A plain client for the admin API.
    pub admin: reqwest::Client,
}

impl Harness {
    pub async fn start() -> Self {
        let http = tidepost_providers::http_client();
        let emu = Emulator::start(
            "127.0.0.1:0".parse().unwrap(),
            EmulatorConfig {
                auto_approve: true,
                ..Default::default()
            },
        )
        .await
        .expect("emulator starts");
        let base = emu.base_url();
        Self {
            emu,
            base,
            admin: http,
        }
    }

    fn admin_url(&self, path: &str) -> String {
        format!("{}/_emulator{path}", self.base)
    }

    pub async fn admin_post(&self, path: &str, body: Value) -> Value {
        let response = self
            .admin
            .post(self.admin_url(path))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
        let text = response.text().await.unwrap();
        if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap()
        }
    }

    pub async fn admin_put(&self, path: &str, body: Value) -> Value {
        let response = self
            .admin
            .put(self.admin_url(path))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
        response.json().await.unwrap()
    }

    pub async fn admin_get(&self, path: &str) -> Value {
        let response = self.admin.get(self.admin_url(path)).send().await.unwrap();
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
        response.json().await.unwrap()
    }

    /// Sets the fault knobs of `provider` (`tiktok` or `meta`).
    pub async fn faults(&self, provider: &str, set: Value) {
        self.admin_put(&format!("/faults/{provider}"), set).await;
    }

    pub async fn clear_faults(&self, provider: &str) {
        self.admin_put(&format!("/faults/{provider}"), json!({}))
            .await;
    }

    pub async fn advance(&self, seconds: u64) {
        self.admin_post("/clock/advance", json!({ "seconds": seconds }))
            .await;
    }

    /// Follows the consent page's redirect by hand (auto-approve answers it at once) and
    /// returns the callback URL's query.
    pub async fn consent(&self, authorize_url: &str) -> Vec<(String, String)> {
        let response = self.admin.get(authorize_url).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 302, "consent redirects");
        let location = response.headers()["location"].to_str().unwrap().to_string();
        let location = location.split('#').next().unwrap();
        url::Url::parse(location)
            .unwrap()
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }
}

pub fn param<'a>(query: &'a [(String, String)], name: &str) -> &'a str {
    query
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no {name} in {query:?}"))
}

/// Serves `router` on a free local port; returns `http://127.0.0.1:PORT`.
pub async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    format!("http://{addr}")
}

/// One webhook delivery as received.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

/// A receiver answering 200 to every POST on `/hook`; returns its URL and the deliveries.
pub async fn webhook_receiver() -> (String, Arc<Mutex<Vec<Received>>>) {
    let received: Arc<Mutex<Vec<Received>>> = Arc::default();
    let sink = received.clone();
    let router = Router::new().route(
        "/hook",
        post(move |headers: HeaderMap, body: bytes::Bytes| {
            let sink = sink.clone();
            async move {
                sink.lock().unwrap().push(Received {
                    headers,
                    body: body.to_vec(),
                });
                "ok"
            }
        }),
    );
    (format!("{}/hook", serve(router).await), received)
}

/// Waits for the first delivery whose body contains `needle`.
pub async fn wait_webhook(received: &Arc<Mutex<Vec<Received>>>, needle: &str) -> Received {
    for _ in 0..200 {
        if let Some(found) = received
            .lock()
            .unwrap()
            .iter()
            .find(|r| String::from_utf8_lossy(&r.body).contains(needle))
        {
            return found.clone();
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("no webhook with {needle}");
}

/// Deterministic, non-repeating-looking bytes.
pub fn pattern(len: usize) -> Vec<u8> {
    let mut state: u32 = 0x9e37_79b9;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            (state >> 24) as u8
        })
        .collect()
}

pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}

pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}
