//! Shared set-up of the Instagram tests: a migrated database (SQLite or PostgreSQL), an
//! in-process emulator, an `App` in sandbox mode pointed at it, a small "public" server that
//! plays tidepost's own `GET /media/{id}/{token}` route (and serves fixture files by URL), and a
//! job queue on a clock the test moves.
#![allow(dead_code)]

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::{Value, json};
use tidepost_app::App;
use tidepost_app::connect::{Callback, CallbackSession, Initiator};
use tidepost_app::instagram::connect::{self as ig_connect, Finished};
use tidepost_app::instagram::{self, Login};
use tidepost_emulator::{Emulator, EmulatorConfig};
use tidepost_store::accounts::Account;
use tidepost_store::testing::{Backend, TestDb};

pub const USER: &str = "user-1";
pub const BUSINESS_PAGE: &str = "134895793791914";
pub const CREATOR_PAGE: &str = "134895793791915";
pub const EMPTY_PAGE: &str = "134895793791916";
pub const BUSINESS_IG: &str = "17841405822304914";
pub const CREATOR_IG: &str = "17841405822304915";
pub const PERSONAL_IG: &str = "17841405822304999";

#[path = "../job_support/mod.rs"]
mod job_support;
pub use job_support::Driver;

/// The shared driver (app, emulator, workspace, queue, clock) and the "public" server.
pub struct Harness {
    pub driver: Driver,
    pub no_redirects: reqwest::Client,
    /// The "public" server: tidepost's signed media route and fixture files.
    pub public_url: String,
    pub dir: tempfile::TempDir,
    _db: TestDb,
}

pub struct Options {
    /// The emulator's dialogs approve at once (granting everything).
    pub auto_approve: bool,
    /// tidepost talks to the emulator through a proxy that forwards `media_publish` but
    /// answers it with a rate-limit error (code 4): the publish happened, its answer says no.
    pub rate_limit_after_publish: bool,
}

impl std::ops::Deref for Harness {
    type Target = Driver;
    fn deref(&self) -> &Driver {
        &self.driver
    }
}

impl Default for Options {
    fn default() -> Self {
        Self {
            auto_approve: true,
            rate_limit_after_publish: false,
        }
    }
}

/// Forwards everything to `upstream`; `media_publish` is sent, then answered with code 4.
async fn proxy(upstream: String) -> String {
    use axum::body::Bytes;
    use axum::http::{HeaderMap, Method, Uri};
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let handler = move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
        let client = client.clone();
        let upstream = upstream.clone();
        async move {
            let url = format!(
                "{upstream}{}",
                uri.path_and_query().map(|p| p.as_str()).unwrap_or("/")
            );
            let mut request = client.request(method, &url).body(body);
            for (name, value) in &headers {
                if name != "host" && name != "content-length" {
                    request = request.header(name, value);
                }
            }
            let answer = request.send().await.unwrap();
            let status = answer.status();
            let mut out = HeaderMap::new();
            for (name, value) in answer.headers() {
                if name != "content-length" && name != "transfer-encoding" {
                    out.insert(name.clone(), value.clone());
                }
            }
            let bytes = answer.bytes().await.unwrap();
            if uri.path().ends_with("/media_publish") && status.is_success() {
                let body = json!({"error": {"message": "(#4) Application request limit reached",
                    "type": "OAuthException", "code": 4, "is_transient": true, "fbtrace_id": "proxy"}});
                return (StatusCode::BAD_REQUEST, axum::Json(body)).into_response();
            }
            (status, out, bytes).into_response()
        }
    };
    let router = axum::Router::new().fallback(handler);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}")
}

#[derive(Clone)]
struct PublicState {
    app: std::sync::Arc<tokio::sync::OnceCell<App>>,
    files: std::sync::Arc<HashMap<String, (Vec<u8>, &'static str)>>,
}

async fn signed_media(
    State(state): State<PublicState>,
    Path((id, token)): Path<(String, String)>,
) -> axum::response::Response {
    let app = state.app.get().expect("app set");
    let now = tidepost_domain::now_ms() / 1000;
    match instagram::media_url::open(app, &id, &token, now).await {
        Ok(media) => {
            let path = tidepost_app::pipeline::media::path_of(app, &media);
            let bytes = tokio::fs::read(path).await.unwrap();
            (
                [(axum::http::header::CONTENT_TYPE, media.content_type)],
                bytes,
            )
                .into_response()
        }
        Err(_) => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn fixture(
    State(state): State<PublicState>,
    Path(name): Path<String>,
) -> axum::response::Response {
    match state.files.get(&name) {
        Some((bytes, ct)) => {
            ([(axum::http::header::CONTENT_TYPE, *ct)], bytes.clone()).into_response()
        }
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// A JPEG-looking file of `width` x `height` (an SOF0 header and filler).
pub fn jpeg(width: u16, height: u16, filler: usize) -> Vec<u8> {
    let mut bytes = vec![0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10];
    bytes.extend_from_slice(b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0");
    bytes.extend_from_slice(&[0xFF, 0xC0, 0x00, 0x11, 0x08]);
    bytes.extend_from_slice(&height.to_be_bytes());
    bytes.extend_from_slice(&width.to_be_bytes());
    bytes.extend_from_slice(&[0x03, 0x01, 0x22, 0x00, 0x02, 0x11, 0x01, 0x03, 0x11, 0x01]);
    let mut x: u32 = 0x1234_5678 ^ (filler as u32);
    for _ in 0..filler {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        bytes.push((x & 0x7F) as u8);
    }
    bytes.extend_from_slice(&[0xFF, 0xD9]);
    bytes
}

/// A real MP4 video of `size` bytes (see `tidepost_app::media::testing`).
pub fn mp4(size: usize) -> Vec<u8> {
    tidepost_app::media::testing::video(size, &format!("mp4 {size}"))
}

pub async fn harness(backend: Backend) -> Harness {
    harness_with(backend, Options::default()).await
}

pub async fn harness_with(backend: Backend, options: Options) -> Harness {
    let test_db = TestDb::new(backend).await;
    let mut emu_config = EmulatorConfig {
        auto_approve: options.auto_approve,
        ..Default::default()
    };
    emu_config.meta.video_processing_ms = 0;
    let emu = Emulator::start("127.0.0.1:0".parse().unwrap(), emu_config)
        .await
        .unwrap();
    let cell = std::sync::Arc::new(tokio::sync::OnceCell::new());
    let mut files = HashMap::new();
    files.insert(
        "photo.jpg".to_string(),
        (jpeg(1080, 1080, 5000), "image/jpeg"),
    );
    files.insert(
        "tall.jpg".to_string(),
        (jpeg(1080, 1350, 4000), "image/jpeg"),
    );
    files.insert(
        "cover.jpg".to_string(),
        (jpeg(1080, 1920, 3000), "image/jpeg"),
    );
    files.insert("clip.mp4".to_string(), (mp4(20_000), "video/mp4"));
    let public = PublicState {
        app: cell.clone(),
        files: std::sync::Arc::new(files),
    };
    let router = axum::Router::new()
        .route("/media/{id}/{token}", axum::routing::get(signed_media))
        .route("/files/{name}", axum::routing::get(fixture))
        .with_state(public);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let public_url = format!("http://{addr}");
    let dir = tempfile::tempdir().unwrap();
    let proxied = if options.rate_limit_after_publish {
        Some(proxy(emu.base_url()).await)
    } else {
        None
    };
    let driver = Driver::new(
        &test_db,
        emu,
        dir.path(),
        vec![("public_url", public_url.clone())],
        proxied,
        instagram::register,
    )
    .await;
    let _ = cell.set(driver.app.clone());
    Harness {
        driver,
        no_redirects: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        public_url,
        dir,
        _db: test_db,
    }
}

impl Harness {
    pub fn session(&self) -> Option<CallbackSession<'_>> {
        Some(CallbackSession {
            workspace_id: &self.ws,
            user_id: USER,
        })
    }

    pub fn who(&self) -> Initiator<'_> {
        Initiator {
            workspace_id: &self.ws,
            user_id: Some(USER),
            connect_link: None,
        }
    }

    /// Starts `login` and returns the dialog URL.
    pub async fn start(&self, login: Login) -> String {
        ig_connect::start(&self.app, self.who(), login)
            .await
            .unwrap()
    }

    /// Follows a redirect to tidepost's callback and reads its query.
    pub fn callback_of(&self, location: &str) -> Callback {
        assert!(
            location.starts_with(&self.app.config.meta.redirect_uri),
            "{location}"
        );
        let url = url::Url::parse(location).unwrap();
        let pairs: HashMap<String, String> = url.query_pairs().into_owned().collect();
        Callback {
            code: pairs.get("code").cloned(),
            state: pairs.get("state").cloned(),
            scopes: None,
            error: pairs.get("error").cloned(),
            error_description: pairs.get("error_description").cloned(),
        }
    }

    /// Auto-approving dialog: start → the callback's query.
    pub async fn authorize(&self, login: Login) -> Callback {
        let url = self.start(login).await;
        let answer = self.no_redirects.get(&url).send().await.unwrap();
        assert_eq!(
            answer.status(),
            302,
            "{}",
            answer.text().await.unwrap_or_default()
        );
        let location = answer.headers()["location"].to_str().unwrap().to_string();
        self.callback_of(&location)
    }

    /// Consent page (not auto-approving): submits `form` extra fields to the dialog.
    pub async fn decide(&self, login: Login, extra: &[(&str, &str)]) -> Callback {
        let url = self.start(login).await;
        let parsed = url::Url::parse(&url).unwrap();
        let mut form: Vec<(String, String)> = parsed.query_pairs().into_owned().collect();
        for (k, v) in extra {
            form.push((k.to_string(), v.to_string()));
        }
        let mut action = parsed.clone();
        action.set_query(None);
        let answer = self
            .no_redirects
            .post(action.as_str())
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(
            answer.status(),
            302,
            "{}",
            answer.text().await.unwrap_or_default()
        );
        let location = answer.headers()["location"].to_str().unwrap().to_string();
        self.callback_of(&location)
    }

    /// Facebook Login → chooser → connects `pages`.
    pub async fn connect_facebook(&self, pages: &[&str]) -> Vec<Account> {
        let callback = self.authorize(Login::Facebook).await;
        let Finished::Choose(choice) = ig_connect::finish(&self.app, &callback, self.session())
            .await
            .unwrap()
        else {
            panic!("Facebook Login leads to the chooser")
        };
        let ids: Vec<String> = pages.iter().map(|p| p.to_string()).collect();
        ig_connect::choose(
            &self.app,
            secrecy::ExposeSecret::expose_secret(&choice.token),
            &ids,
            self.session(),
        )
        .await
        .unwrap()
    }

    /// The business account, connected through Facebook Login.
    pub async fn business_account(&self) -> Account {
        self.connect_facebook(&[BUSINESS_PAGE]).await.remove(0)
    }

    pub async fn emulator_media(&self) -> Value {
        self.admin(reqwest::Method::GET, "/_emulator/meta/media", None)
            .await
    }

    pub async fn set_faults(&self, faults: Value) {
        self.set_faults_of("meta", faults).await;
    }

    pub async fn clear_faults(&self) {
        self.clear_faults_of("meta").await;
    }

    pub async fn set_meta(&self, settings: Value) {
        self.admin(
            reqwest::Method::PUT,
            "/_emulator/meta/settings",
            Some(settings),
        )
        .await;
    }

    pub fn file_url(&self, name: &str) -> String {
        format!("{}/files/{name}", self.public_url)
    }
}
