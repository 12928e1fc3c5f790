//! What every integration test shares: a tidepost server on a fresh database (SQLite file or
//! PostgreSQL schema) bound to a free port, HTTP clients with their own cookie jars, and helpers
//! that go through the real sign-in form, make users and API keys, and read problem+json.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, HeaderMap, LOCATION, SET_COOKIE};
use serde_json::Value;
use tidepost_app::access;
use tidepost_app::config::RawSettings;
use tidepost_app::providers::Providers;
use tidepost_app::{App, Config};
use tidepost_http::{Server, SetupToken};
use tidepost_store::Db;
pub use tidepost_store::testing::Backend;
use tidepost_store::testing::TestDb;
use tidepost_store::users::User;
use tidepost_store::workspaces::Workspace;
use tidepost_vault::Keyring;
use tidepost_vault::secrecy::ExposeSecret;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The password every test user gets (long enough for the 10-character rule).
pub const PASSWORD: &str = "correct horse battery staple";

/// Declares `mod NAME { sqlite, postgres }` tests that call `async fn NAME(backend: Backend)`
/// defined beside it, so one test body proves both backends.
macro_rules! both_backends {
    ($($name:ident),+ $(,)?) => {
        $(
            mod $name {
                #[tokio::test]
                async fn sqlite() {
                    super::$name($crate::support::Backend::Sqlite).await
                }

                #[tokio::test]
                async fn postgres() {
                    super::$name($crate::support::Backend::Postgres).await
                }
            }
        )+
    };
}
pub(crate) use both_backends;

/// reqwest is built without a default rustls provider: install ring's once per process.
pub fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A client with its own cookie jar that does not follow redirects (tests check `Location`).
pub fn client() -> reqwest::Client {
    install_crypto();
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .expect("HTTP client")
}

/// A client without a cookie jar, for requests whose cookies the test sets by hand.
pub fn bare_client() -> reqwest::Client {
    install_crypto();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .expect("HTTP client")
}

/// How [`spawn_app_with`] sets the server up.
#[derive(Default, Clone)]
pub struct Options {
    /// `TIDEPOST_PUBLIC_URL` (https turns on HSTS and Secure cookies).
    pub public_url: Option<String>,
    /// Serve with this live first-run setup token.
    pub setup_token: Option<String>,
    /// Use this database (already prepared) instead of a fresh migrated one.
    pub database_url: Option<String>,
    /// Leave the fresh database without its schema (for readiness checks).
    pub unmigrated: bool,
    /// Start the in-process emulator with its consent pages asking (no auto-approve), short
    /// TikTok processing and moderation delays and its webhooks pointed at this server, and
    /// point the providers at it. The server then listens on a port picked beforehand, so that
    /// the OAuth redirect and webhook URLs name it.
    pub emulator: bool,
    /// Run background work in the test: a worker pool over the registry of `serve`, polling
    /// every 100 ms, stopped with the server.
    pub workers: bool,
    /// More environment settings (`TIDEPOST_…`, value).
    pub env: Vec<(&'static str, String)>,
    /// Keep media on a fresh bucket of an S3 server (moto) the test starts, instead of the
    /// local folder.
    pub s3: bool,
}

impl Options {
    /// The in-process emulator on ([`Options::emulator`]), everything else by default.
    pub fn emulated() -> Options {
        Options {
            emulator: true,
            ..Options::default()
        }
    }
}

/// Where a test's media lives: [`every_storage!`] runs a test on both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaStorage {
    Local,
    S3,
}

/// Declares `mod NAME { sqlite, postgres, sqlite_s3, postgres_s3 }` tests that call
/// `async fn NAME(backend: Backend, storage: MediaStorage)`: one test body proves both
/// databases and both media storages.
macro_rules! every_storage {
    ($($name:ident),+ $(,)?) => {
        $(
            mod $name {
                use $crate::support::{Backend, MediaStorage};

                #[tokio::test]
                async fn sqlite() {
                    super::$name(Backend::Sqlite, MediaStorage::Local).await
                }

                #[tokio::test]
                async fn postgres() {
                    super::$name(Backend::Postgres, MediaStorage::Local).await
                }

                #[tokio::test]
                async fn sqlite_s3() {
                    super::$name(Backend::Sqlite, MediaStorage::S3).await
                }

                #[tokio::test]
                async fn postgres_s3() {
                    super::$name(Backend::Postgres, MediaStorage::S3).await
                }
            }
        )+
    };
}
pub(crate) use every_storage;

/// The emulator's TikTok settings [`Options::emulator`] starts with (besides the webhook URL):
/// processing long enough for a browser to see it, moderation short.
pub const EMULATOR_TIKTOK_SETTINGS: &str =
    r#"{"processing_delay_ms": 1500, "moderation_delay_ms": 500}"#;

/// A running tidepost server. Stops when dropped.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub base: String,
    pub db: Db,
    /// The application the server runs (its configuration, storage, keyring).
    pub app: App,
    /// A client with its own cookie jar, not signed in.
    pub client: reqwest::Client,
    pub setup: SetupToken,
    /// The in-process emulator's base URL (`http://127.0.0.1:PORT`), with [`Options::emulator`].
    pub emulator: Option<String>,
    /// The S3 server media lives on, with [`Options::s3`] (stop it for an outage).
    pub s3: Option<tidepost_app::media::s3_server::S3Server>,
    /// The database's URL (another instance on the same database: [`Options::database_url`]).
    pub database_url: String,
    shutdown: CancellationToken,
    _task: JoinHandle<()>,
    _workers: Option<JoinHandle<tidepost_jobs::ShutdownReport>>,
    _emulator: Option<tidepost_emulator::Emulator>,
    _test_db: Option<TestDb>,
    _dir: Option<tempfile::TempDir>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A server in sandbox mode on a fresh, migrated database of `backend`.
pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, Options::default()).await
}

/// A fresh, never migrated database and its URL.
pub async fn unmigrated_db(backend: Backend) -> (String, Option<tempfile::TempDir>) {
    match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().expect("temporary folder");
            let url = format!("sqlite://{}", dir.path().join("fresh.db").display());
            (url, Some(dir))
        }
        Backend::Postgres => (TestDb::postgres_schema_url().await, None),
    }
}

pub async fn spawn_app_with(backend: Backend, options: Options) -> TestApp {
    install_crypto();
    let (db, db_url, test_db, dir) = if let Some(url) = &options.database_url {
        let db = Db::connect(url)
            .await
            .expect("connect to the given database");
        (db, url.clone(), None, None)
    } else if options.unmigrated {
        let (url, dir) = unmigrated_db(backend).await;
        let db = Db::connect(&url)
            .await
            .expect("connect to a fresh database");
        (db, url, None, dir)
    } else {
        let test_db = TestDb::new(backend).await;
        (test_db.db.clone(), test_db.url.clone(), Some(test_db), None)
    };
    let keys = Keyring::generate_key_text();
    // With the emulator, the public URL (OAuth redirect, webhooks) must name the real port.
    let listen = if options.emulator {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        probe.local_addr().expect("its address").to_string()
    } else {
        "127.0.0.1:0".to_string()
    };
    let flags = vec![
        ("listen", listen),
        ("database_url", db_url.clone()),
        ("sandbox", "true".to_string()),
        ("workers", "false".to_string()),
    ];
    let public_url = options.public_url.clone();
    let mut env = options.env.clone();
    let s3 = if options.s3 {
        let server = tokio::task::spawn_blocking(tidepost_app::media::s3_server::S3Server::start)
            .await
            .expect("start moto");
        env.extend(server.env().await);
        Some(server)
    } else {
        None
    };
    let raw = RawSettings::gather(
        &flags,
        |name| match name {
            "TIDEPOST_KEYS" => Some(keys.expose_secret().to_string()),
            "TIDEPOST_PUBLIC_URL" => public_url.clone(),
            other => env
                .iter()
                .find(|(name, _)| *name == other)
                .map(|(_, value)| value.clone()),
        },
        None,
    )
    .expect("test settings");
    let config = Config::from_raw(&raw).expect("test configuration");
    let keyring = tidepost_app::keys::load_keyring(&config).expect("test keyring");
    // Without `options.emulator`, tests that need providers start one and configure it
    // themselves.
    let emulator = if options.emulator {
        let emulator = tidepost_emulator::Emulator::start(
            "127.0.0.1:0".parse().unwrap(),
            tidepost_emulator::EmulatorConfig {
                auto_approve: false,
                ..Default::default()
            },
        )
        .await
        .expect("start the emulator");
        Some(emulator)
    } else {
        None
    };
    let emulator_base = emulator.as_ref().map(|e| e.base_url());
    let providers = Providers::from_config(&config, emulator_base.as_deref());
    let app = App::new(config, db.clone(), keyring, providers);
    if let Some(base) = &emulator_base {
        let mut settings: Value = serde_json::from_str(EMULATOR_TIKTOK_SETTINGS).unwrap();
        settings["webhook_url"] = Value::from(app.config.url("/webhooks/tiktok"));
        // As `serve --sandbox` does: the TikTok app verified tidepost's media URLs.
        settings["verified_url_prefixes"] =
            serde_json::json!(["https://media.tidepost.example/", app.config.url("/media/")]);
        let answer = bare_client()
            .put(format!("{base}/_emulator/tiktok/settings"))
            .json(&settings)
            .send()
            .await
            .expect("configure the emulator");
        assert_eq!(answer.status(), StatusCode::OK, "emulator settings");
    }
    let setup = SetupToken::new(options.setup_token.clone());
    let server = Server::build(app.clone(), setup.clone()).expect("bind a free port");
    let addr = server.addr();
    let shutdown = CancellationToken::new();
    let workers = if options.workers {
        tidepost_app::work::ensure_schedules(&app)
            .await
            .expect("recurring schedules");
        let config = tidepost_jobs::WorkerConfig {
            name: "test-worker".into(),
            poll_interval: Duration::from_millis(100),
            grace: Duration::from_secs(2),
            ..Default::default()
        };
        let pool = tidepost_jobs::WorkerPool::new(
            app.queue.clone(),
            tidepost_app::work::registry(&app),
            config,
        );
        Some(pool.spawn(shutdown.clone()))
    } else {
        None
    };
    let stop = shutdown.clone();
    let task = tokio::spawn(async move {
        server.run_until_stopped(stop).await.expect("server runs");
    });
    TestApp {
        base: format!("http://{addr}"),
        db,
        app: app.clone(),
        client: client(),
        setup,
        emulator: emulator_base,
        s3,
        database_url: db_url,
        shutdown,
        _task: task,
        _workers: workers,
        _emulator: emulator,
        _test_db: test_db,
        _dir: dir,
    }
}

/// Someone signed in through the real form: their client (its cookie jar holds the session)
/// and the CSRF token their pages carry.
pub struct SignedIn {
    pub client: reqwest::Client,
    pub csrf: String,
    pub workspace: Workspace,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A user who owns `workspace` (created if needed), with [`PASSWORD`].
    pub async fn create_user(&self, email: &str, workspace: &str) -> (User, Workspace) {
        access::create_user(&self.db, email, PASSWORD, workspace)
            .await
            .expect("create a test user")
    }

    /// Opens the sign-in form with `client` and returns its CSRF field (the cookie is in the jar).
    pub async fn login_csrf(&self, client: &reqwest::Client) -> String {
        let page = client.get(self.url("/login")).send().await.unwrap();
        assert_eq!(page.status(), StatusCode::OK);
        let html = page.text().await.unwrap();
        hidden_input(&html, "csrf").expect("the sign-in form has a csrf field")
    }

    /// Posts the sign-in form the way a browser does: fetch it, then send it back with its token.
    pub async fn sign_in(
        &self,
        client: &reqwest::Client,
        email: &str,
        password: &str,
        next: &str,
    ) -> reqwest::Response {
        let csrf = self.login_csrf(client).await;
        client
            .post(self.url("/login"))
            .form(&[
                ("csrf", csrf.as_str()),
                ("email", email),
                ("password", password),
                ("next", next),
            ])
            .send()
            .await
            .unwrap()
    }

    /// Creates `owner@WORKSPACE.example` in `workspace` and signs them in with a new client.
    pub async fn signed_in(&self, workspace: &str) -> SignedIn {
        let email = format!("owner@{workspace}.example");
        let (_, workspace) = self.create_user(&email, workspace).await;
        let client = client();
        let response = self.sign_in(&client, &email, PASSWORD, "/").await;
        assert_eq!(
            response.status(),
            StatusCode::SEE_OTHER,
            "sign-in redirects"
        );
        assert_eq!(location(&response), "/");
        let dashboard = client.get(self.url("/")).send().await.unwrap();
        assert_eq!(dashboard.status(), StatusCode::OK);
        let html = dashboard.text().await.unwrap();
        let csrf = hidden_input(&html, "csrf").expect("the sign-out form carries the CSRF token");
        SignedIn {
            client,
            csrf,
            workspace,
        }
    }

    /// Signs in a new member of `workspace` with `role` (`EMAIL` made for it).
    pub async fn member(
        &self,
        workspace: &Workspace,
        email: &str,
        role: tidepost_domain::Role,
    ) -> SignedIn {
        let (user, _) = self.create_user(email, &workspace.slug).await;
        assert_eq!(
            tidepost_store::users::set_role(&self.db, &workspace.id, &user.id, role)
                .await
                .unwrap(),
            tidepost_store::users::MembershipChange::Done
        );
        let client = client();
        let response = self.sign_in(&client, email, PASSWORD, "/").await;
        assert_eq!(
            response.status(),
            StatusCode::SEE_OTHER,
            "sign-in redirects"
        );
        let html = self.page_text(&client, "/").await;
        let csrf = hidden_input(&html, "csrf").expect("the sign-out form carries the CSRF token");
        SignedIn {
            client,
            csrf,
            workspace: workspace.clone(),
        }
    }

    /// An API key of `workspace_id` acting with `role` (made by the operator).
    pub async fn role_key(&self, workspace_id: &str, role: tidepost_domain::Role) -> String {
        let grant = access::KeyGrant {
            role,
            created_by: None,
        };
        access::create_api_key_as(&self.db, workspace_id, &format!("{role} key"), &[], grant)
            .await
            .expect("create a test API key")
            .secret
    }

    /// The body of `GET path` as `client` sees it (a page, whatever its status).
    pub async fn page_text(&self, client: &reqwest::Client, path: &str) -> String {
        client
            .get(self.url(path))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// An API key for `workspace_id` with `scopes` (empty: `api`); returns the secret.
    pub async fn api_key(&self, workspace_id: &str, name: &str, scopes: &[&str]) -> String {
        access::create_api_key(&self.db, workspace_id, name, scopes)
            .await
            .expect("create a test API key")
            .secret
    }

    /// The id of the API key with this secret.
    pub async fn key_id(&self, secret: &str) -> String {
        tidepost_store::api_keys::find_by_hash(&self.db, &access::sha256_hex(secret))
            .await
            .unwrap()
            .expect("the key exists")
            .id
    }

    /// `GET path` with `Authorization: Bearer key`.
    pub async fn api_get(&self, key: &str, path: &str) -> reqwest::Response {
        bare_client()
            .get(self.url(path))
            .bearer_auth(key)
            .send()
            .await
            .unwrap()
    }
}

/// The `value` of `<input … name="NAME" value="…">` in a page.
pub fn hidden_input(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')?;
    Some(html[start..start + end].to_string())
}

/// The `Location` header (panics when absent).
pub fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get(LOCATION)
        .unwrap_or_else(|| panic!("no Location header (status {})", response.status()))
        .to_str()
        .unwrap()
        .to_string()
}

/// The `Set-Cookie` header that sets `name`, if any.
pub fn set_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(str::to_string)
}

/// The value a `Set-Cookie` line sets.
pub fn cookie_value(set_cookie: &str) -> String {
    let pair = set_cookie.split(';').next().unwrap();
    pair.split_once('=').unwrap().1.to_string()
}

/// Asserts an `application/problem+json` answer with `status` and `code`; returns its body.
pub async fn problem(response: reqwest::Response, status: StatusCode, code: &str) -> Value {
    assert_eq!(response.status(), status, "status of {}", response.url());
    let content_type = response
        .headers()
        .get(CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let url = response.url().to_string();
    assert_eq!(
        content_type, "application/problem+json",
        "content type of {url}"
    );
    let body: Value = response.json().await.expect("a JSON problem");
    assert_eq!(
        body["type"],
        format!("urn:tidepost:problem:{code}"),
        "{body}"
    );
    assert_eq!(body["status"], status.as_u16(), "{body}");
    assert!(
        body["title"].as_str().is_some_and(|t| !t.is_empty()),
        "{body}"
    );
    assert!(
        body["detail"].as_str().is_some_and(|t| !t.is_empty()),
        "{body}"
    );
    body
}

/// Asserts an HTML error page with `status` whose text contains `needle`; returns the page.
pub async fn page_error(response: reqwest::Response, status: StatusCode, needle: &str) -> String {
    assert_eq!(response.status(), status, "status of {}", response.url());
    let content_type = response
        .headers()
        .get(CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    assert!(content_type.starts_with("text/html"), "{content_type}");
    let html = response.text().await.unwrap();
    assert!(html.contains(needle), "expected {needle:?} in:\n{html}");
    html
}

/// Approves the emulator's TikTok consent form (`consent`, the page's HTML) as `creator`, or as
/// the first creator the page lists when `None`, the way a person clicking "Approve" does: the
/// URL the emulator sends the person back to (tidepost's callback).
pub async fn approve_tiktok_consent(
    emulator: &str,
    consent: &str,
    creator: Option<&str>,
) -> String {
    answer_tiktok_consent(emulator, consent, creator, "approve").await
}

/// [`approve_tiktok_consent`] with the button `decision` (`approve` or `deny`).
pub async fn answer_tiktok_consent(
    emulator: &str,
    consent: &str,
    creator: Option<&str>,
    decision: &str,
) -> String {
    let mut form: Vec<(String, String)> = consent
        .split("<input type=\"hidden\" name=\"")
        .skip(1)
        .map(|rest| {
            let (name, rest) = rest.split_once('"').unwrap();
            let value = rest.split("value=\"").nth(1).unwrap();
            let value = value.split('"').next().unwrap().replace("&amp;", "&");
            (name.to_string(), value)
        })
        .collect();
    let creator = creator.map(str::to_string).or_else(|| {
        consent
            .split("name=\"creator\" value=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .map(str::to_string)
    });
    if let Some(creator) = creator {
        form.push(("creator".into(), creator));
    }
    form.push(("decision".into(), decision.into()));
    let approved = bare_client()
        .post(format!("{emulator}/tiktok/www/v2/auth/authorize/"))
        .form(&form)
        .send()
        .await
        .unwrap();
    location(&approved)
}

/// Sets the in-process emulator's settings of `provider` (`tiktok` or `meta`): the JSON merged
/// into its current ones. Needs [`Options::emulator`].
pub async fn set_emulator(app: &TestApp, provider: &str, settings: Value) {
    let emu = app
        .emulator
        .as_deref()
        .expect("the app runs with the emulator");
    let set = bare_client()
        .put(format!("{emu}/_emulator/{provider}/settings"))
        .json(&settings)
        .send()
        .await
        .unwrap();
    assert_eq!(
        set.status(),
        StatusCode::OK,
        "{provider} settings {settings}"
    );
}

/// Adds the TikTok creator `creator` (`{"username": …}` and any other of the emulator's creator
/// fields) to the in-process emulator and connects it through the API with `key`: the new
/// account's id.
pub async fn connect_new_creator(app: &TestApp, key: &str, creator: Value) -> String {
    let emu = app
        .emulator
        .as_deref()
        .expect("the app runs with the emulator");
    let username = creator["username"]
        .as_str()
        .expect("a username")
        .to_string();
    let added = bare_client()
        .post(format!("{emu}/_emulator/tiktok/creators"))
        .json(&creator)
        .send()
        .await
        .unwrap();
    assert_eq!(added.status(), StatusCode::CREATED, "{creator}");
    connect_tiktok_via_api(app, key, &username).await
}

/// Connects the emulator's TikTok creator `creator` (open_id or username) to the API key's
/// workspace the way a host application does: `POST /api/v1/connect/tiktok`, the creator
/// approves on the emulator's consent form, the browser lands on tidepost's callback. Returns
/// the new account's id. Needs [`Options::emulator`].
pub async fn connect_tiktok_via_api(app: &TestApp, key: &str, creator: &str) -> String {
    let emulator = app
        .emulator
        .clone()
        .expect("the app runs with the emulator");
    let started = bare_client()
        .post(app.url("/api/v1/connect/tiktok"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), StatusCode::CREATED);
    let started: Value = started.json().await.unwrap();
    let authorize = started["authorize_url"].as_str().unwrap();
    let consent = bare_client()
        .get(authorize)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let callback = approve_tiktok_consent(&emulator, &consent, Some(creator)).await;
    let landed = bare_client().get(&callback).send().await.unwrap();
    // A connection started through the API ends on a "connected" page (a redirect for one
    // started in the UI).
    assert!(
        landed.status().is_success() || landed.status().is_redirection(),
        "callback answered {}",
        landed.status()
    );
    let accounts: Value = app
        .api_get(key, "/api/v1/accounts")
        .await
        .json()
        .await
        .unwrap();
    let creator = creator.trim_start_matches('@');
    accounts["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["username"] == creator || a["provider_user_id"] == creator)
        .unwrap_or_else(|| panic!("{creator} is not among the accounts: {accounts}"))["id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The `<input type="hidden" name=… value=…>` fields of a page, values unescaped.
pub fn hidden_fields(html: &str) -> Vec<(String, String)> {
    html.split("<input type=\"hidden\" name=\"")
        .skip(1)
        .map(|rest| {
            let (name, rest) = rest.split_once('"').unwrap();
            let value = rest.split("value=\"").nth(1).unwrap();
            let value = value
                .split('"')
                .next()
                .unwrap()
                .replace("&quot;", "\"")
                .replace("&amp;", "&");
            (name.to_string(), value)
        })
        .collect()
}

/// "Continue" on the emulator's Facebook Login dialog at `dialog_url`: the callback URL the
/// person is sent back to.
pub async fn approve_facebook_dialog(emulator: &str, dialog_url: &str) -> String {
    assert!(dialog_url.starts_with(emulator), "{dialog_url}");
    let dialog = bare_client()
        .get(dialog_url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let action = dialog
        .split("<form method=\"post\" action=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no form on the dialog: {dialog}"))
        .replace("&amp;", "&");
    let mut form = hidden_fields(&dialog);
    form.push(("decision".into(), "approve".into()));
    let approved = bare_client()
        .post(format!("{emulator}{action}"))
        .form(&form)
        .send()
        .await
        .unwrap();
    location(&approved)
}

/// Connects the emulator's Instagram business account to `me`'s workspace over HTTP, the way
/// a person does in a browser: Facebook Login from `/connect/instagram`, "Continue" on the
/// emulator's dialog, the emulator's business Page picked in tidepost's chooser. Returns the
/// new account's id. Needs [`Options::emulator`].
pub async fn connect_instagram_via_http(app: &TestApp, me: &SignedIn) -> String {
    let emulator = app
        .emulator
        .clone()
        .expect("the app runs with the emulator");
    let page = app.page_text(&me.client, "/connect/instagram").await;
    let csrf = hidden_input(&page, "csrf").expect("the connect form has a csrf field");
    let started = me
        .client
        .post(app.url("/connect/instagram"))
        .form(&[("csrf", csrf.as_str()), ("login", "facebook")])
        .send()
        .await
        .unwrap();
    let callback = approve_facebook_dialog(&emulator, &location(&started)).await;
    let chooser = me.client.get(&callback).send().await.unwrap();
    assert_eq!(chooser.status(), StatusCode::OK, "the chooser");
    let chooser = chooser.text().await.unwrap();
    let mut form = hidden_fields(&chooser);
    form.push((
        "page".into(),
        tidepost_emulator::meta::state::BUSINESS_PAGE_ID.into(),
    ));
    let chosen = me
        .client
        .post(app.url("/connect/instagram/choose"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(chosen.status(), StatusCode::SEE_OTHER, "choosing the Page");
    let account = location(&chosen);
    assert!(account.ends_with("?connected=1"), "{account}");
    account
        .trim_start_matches("/accounts/")
        .trim_end_matches("?connected=1")
        .to_string()
}

/// A route as registered: its method and full path template (`{…}` placeholders kept).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Route {
    pub method: String,
    pub template: String,
}

/// Every route registered with `.route("PATH", get(..).post(..))` in `crates/http/src`. Files
/// under `api/` and functions named `api_router` are nested under `/api/v1`.
pub fn registered_routes() -> Vec<Route> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/http/src");
    let mut found = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().and_then(|e| e.to_str()) != Some("rs") {
                continue;
            }
            let in_api = path.strip_prefix(&root).unwrap().starts_with("api");
            let source = std::fs::read_to_string(&path).unwrap();
            for (at, template, methods) in routes_in(&source) {
                let api = in_api || enclosing_fn(&source, at).contains("api_router");
                let prefix = if api { "/api/v1" } else { "" };
                for method in methods {
                    found.push(Route {
                        method,
                        template: format!("{prefix}{template}"),
                    });
                }
            }
        }
    }
    found.sort();
    found.dedup();
    let known = ["/logout", "/settings/api-keys", "/api/v1/api-keys"];
    for path in known {
        assert!(
            found
                .iter()
                .any(|r| r.method == "POST" && r.template == path),
            "the route scan missed POST {path}; does crates/http/src still register routes with .route(…)? {found:?}"
        );
    }
    found
}

/// The name of the function whose body holds byte `at`.
pub fn enclosing_fn(source: &str, at: usize) -> &str {
    let before = &source[..at];
    let Some(start) = before.rfind("fn ") else {
        return "";
    };
    let name = &before[start + 3..];
    let end = name
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(name.len());
    &name[..end]
}

/// `.route("PATH", get(a).post(b))` → (offset, PATH, [GET, POST]).
pub fn routes_in(source: &str) -> Vec<(usize, String, Vec<String>)> {
    let mut out = Vec::new();
    let mut offset = 0;
    while let Some(found) = source[offset..].find(".route(") {
        let at = offset + found;
        let rest = &source[at + ".route(".len()..];
        let Some(open) = rest.find('"') else { break };
        let Some(close) = rest[open + 1..].find('"') else {
            break;
        };
        let template = rest[open + 1..open + 1 + close].to_string();
        let mut depth = 1;
        let mut end = rest.len();
        for (i, c) in rest.char_indices() {
            match c {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        end = i;
                        break;
                    }
                }
                _ => {}
            }
        }
        let handlers = &rest[open + 1 + close + 1..end];
        let methods = ["get", "post", "put", "patch", "delete"]
            .iter()
            .filter(|m| {
                handlers.match_indices(&format!("{m}(")).any(|(i, _)| {
                    i == 0
                        || !handlers.as_bytes()[i - 1].is_ascii_alphanumeric()
                            && handlers.as_bytes()[i - 1] != b'_'
                })
            })
            .map(|m| m.to_uppercase())
            .collect();
        out.push((at, template, methods));
        offset = at + ".route(".len() + end;
    }
    out
}

/// Inserts an active `platform` account for `provider_user_id` in `workspace_id` whose tokens
/// this server cannot use, for tests that need an account without going through OAuth (nothing
/// that checks a post without calling the provider minds; connecting the same provider user
/// again replaces the tokens and keeps the row). Its access token is good for a day. Returns
/// the account's id (the existing row's when it was there already).
pub async fn fixture_account(
    db: &Db,
    workspace_id: &str,
    platform: &str,
    provider_user_id: &str,
    name: &str,
) -> String {
    use tidepost_store::accounts;
    let now = tidepost_domain::now_ms();
    let account = accounts::Account {
        id: tidepost_domain::new_id(),
        workspace_id: workspace_id.into(),
        platform: platform.parse().expect("a platform name"),
        provider_user_id: provider_user_id.into(),
        display_name: name.into(),
        username: None,
        avatar_url: None,
        status: "active".into(),
        status_reason: None,
        scopes: "user.info.basic,video.publish,video.upload".into(),
        access_token: "not-a-usable-token".into(),
        refresh_token: None,
        access_expires_at: Some(now + 86_400_000),
        refresh_expires_at: None,
        last_refreshed_at: None,
        refresh_lease_until: None,
        refresh_lease_by: None,
        details: "{}".into(),
        created_at: now,
        updated_at: now,
    };
    accounts::upsert(db, &account).await.unwrap();
    accounts::list(db, workspace_id)
        .await
        .unwrap()
        .into_iter()
        .find(|a| a.platform.as_str() == platform && a.provider_user_id == provider_user_id)
        .expect("the account was just stored")
        .id
}

/// GET `path` of the emulator at `emu` (its admin API, `/_emulator/…`), as JSON.
pub async fn emulator_json(emu: &str, path: &str) -> Value {
    let answer = bare_client()
        .get(format!("{emu}{path}"))
        .send()
        .await
        .unwrap();
    assert!(
        answer.status().is_success(),
        "GET {path}: {}",
        answer.status()
    );
    answer.json().await.unwrap()
}

/// Sets the emulator's faults for `provider` (`tiktok`, `meta`); `None` clears them.
pub async fn emulator_faults(emu: &str, provider: &str, set: Option<Value>) {
    let url = format!("{emu}/_emulator/faults/{provider}");
    let answer = match &set {
        Some(set) => bare_client().put(url).json(set).send().await.unwrap(),
        None => bare_client().delete(url).send().await.unwrap(),
    };
    assert!(
        answer.status().is_success(),
        "faults {provider} {set:?}: {}",
        answer.status()
    );
}

/// Forgets the requests the emulator logged (`/_emulator/requests`).
pub async fn emulator_clear_log(emu: &str) {
    let cleared = bare_client()
        .delete(format!("{emu}/_emulator/requests"))
        .send()
        .await
        .unwrap();
    assert_eq!(cleared.status(), StatusCode::NO_CONTENT);
}

/// A direct, public TikTok post to `account` through the API's multipart shape, of a small
/// generated video (`bytes` long, distinct for each caption).
pub async fn post_tiktok_video(
    app: &TestApp,
    key: &str,
    account: &str,
    caption: &str,
    bytes: usize,
) -> reqwest::Response {
    let video = tidepost_app::media::testing::video(bytes, caption);
    let form = tiktok_video_form(account, caption, "PUBLIC_TO_EVERYONE", video);
    bare_client()
        .post(app.url("/api/v1/posts"))
        .bearer_auth(key)
        .multipart(form)
        .send()
        .await
        .unwrap()
}

/// The API's multipart shape of a direct TikTok post of `video` to `account`.
pub fn tiktok_video_form(
    account: &str,
    caption: &str,
    privacy: &'static str,
    video: Vec<u8>,
) -> reqwest::multipart::Form {
    reqwest::multipart::Form::new()
        .text("account_id", account.to_string())
        .text("mode", "direct")
        .text("caption", caption.to_string())
        .text("privacy_level", privacy)
        .part(
            "file",
            reqwest::multipart::Part::bytes(video)
                .file_name("tide.mp4")
                .mime_str("video/mp4")
                .unwrap(),
        )
}
