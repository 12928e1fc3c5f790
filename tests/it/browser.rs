//! The web UI in headless Chromium (Debian's `chromium` and `chromium-driver`), driven through
//! WebDriver with fantoccini. Each test starts its own chromedriver on a free port with a fresh
//! profile and saves screenshots to `target/screenshots/<test>/<name>-<width>.png`.
//!
//! Without chromedriver these tests fail (they never skip): `.ci/run` installs it.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tempfile::TempDir;

use crate::support::*;

/// One browser at a time: Chromium is heavy for a 2-core machine, and parallel browsers make
/// timings flaky.
static ONE_BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn find_program(env: &str, name: &str, fallback: &str) -> PathBuf {
    if let Some(path) = std::env::var_os(env) {
        return PathBuf::from(path);
    }
    if let Some(paths) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&paths) {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    PathBuf::from(fallback)
}

/// A headless Chromium window of a given size, with its chromedriver.
pub struct Browser {
    pub client: Client,
    pub width: u32,
    _driver: Driver,
    _guard: tokio::sync::MutexGuard<'static, ()>,
    _profile: TempDir,
}

/// The chromedriver process.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        // chromedriver runs in a process group of its own, with the Chromium it started: end
        // them together, even when the test panicked before `close`.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.0.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.0.wait();
    }
}

impl Browser {
    /// Starts chromedriver on a free port and a headless Chromium whose viewport is
    /// `width`×`height` CSS pixels.
    pub async fn start(width: u32, height: u32) -> Browser {
        let guard = ONE_BROWSER.lock().await;
        let driver_path = find_program("CHROMEDRIVER", "chromedriver", "/usr/bin/chromedriver");
        let chromium = find_program("CHROMIUM", "chromium", "/usr/bin/chromium");
        assert!(
            driver_path.is_file(),
            "chromedriver not found (looked in $CHROMEDRIVER, PATH and /usr/bin): the browser tests \
             need Debian's `chromium` and `chromium-driver` packages (`apt-get install -y chromium \
             chromium-driver`; .ci/run installs them)"
        );
        assert!(
            chromium.is_file(),
            "Chromium not found at {} (set $CHROMIUM): install Debian's `chromium` package",
            chromium.display()
        );
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut command = Command::new(&driver_path);
        command
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let driver = Driver(
            command
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", driver_path.display())),
        );
        let profile = tempfile::tempdir().unwrap();
        let mut browser_args = vec![
            "--headless".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--hide-scrollbars".into(),
            format!("--window-size={width},{height}"),
        ];
        browser_args.push(format!("--user-data-dir={}", profile.path().display()));
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("browserName".into(), json!("chrome"));
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": chromium.display().to_string(),
                "args": browser_args,
            }),
        );
        let webdriver = format!("http://127.0.0.1:{port}");
        let mut browser = Browser {
            client: connect(&webdriver, capabilities).await,
            width,
            _driver: driver,
            _guard: guard,
            _profile: profile,
        };
        browser.fit_viewport(width, height).await;
        browser
    }

    /// Makes the page's viewport exactly `width`×`height` (window sizes include no chrome in
    /// headless mode, but check and correct anyway).
    async fn fit_viewport(&mut self, width: u32, height: u32) {
        let inner: Value = self
            .client
            .execute("return [window.innerWidth, window.innerHeight];", vec![])
            .await
            .unwrap();
        let (w, h) = (
            inner[0].as_u64().unwrap() as u32,
            inner[1].as_u64().unwrap() as u32,
        );
        if (w, h) != (width, height) {
            let (ww, wh) = self.client.get_window_size().await.unwrap();
            self.client
                .set_window_size(
                    (ww as i64 + i64::from(width) - i64::from(w)) as u32,
                    (wh as i64 + i64::from(height) - i64::from(h)) as u32,
                )
                .await
                .unwrap();
        }
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.unwrap();
    }

    pub async fn path(&self) -> String {
        let url = self.client.current_url().await.unwrap();
        match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_string(),
        }
    }

    /// Waits for `css` to appear and returns its text. A page script may replace the element
    /// between finding it and reading it (a live check redrawing its list): then it is looked
    /// up again.
    pub async fn text_of(&self, css: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let element = self
                .client
                .wait()
                .at_most(Duration::from_secs(20))
                .for_element(Locator::Css(css))
                .await
                .unwrap_or_else(|e| panic!("{css} never appeared: {e}"));
            match element.text().await {
                Ok(text) => return text,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("{css} could not be read: {e}"),
            }
        }
    }

    pub async fn fill(&self, css: &str, value: &str) {
        let field = self.client.find(Locator::Css(css)).await.unwrap();
        field.clear().await.unwrap();
        field.send_keys(value).await.unwrap();
    }

    pub async fn click(&self, css: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css}: {e}"))
            .click()
            .await
            .unwrap();
    }

    /// Waits until the page's path (with query) satisfies `check`.
    pub async fn wait_for_path(&self, what: &str, check: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let path = self.path().await;
            if check(&path) {
                return path;
            }
            assert!(Instant::now() < deadline, "never reached {what}; at {path}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The page's own layout checks: nothing wider than the viewport (no sideways scrolling at
    /// 375 px) except inside the two boxes made to scroll sideways on their own (a wide table's
    /// wrapper and the phone's navigation row), and every button and link at least 24 px tall.
    pub async fn assert_layout_fits(&self, page: &str) {
        let report: Value = self
            .client
            .execute(
                r#"
                const vw = document.documentElement.clientWidth;
                const wide = [];
                for (const el of document.querySelectorAll("body *")) {
                  const r = el.getBoundingClientRect();
                  if (r.width > 0 && r.right > vw + 1 && !el.closest(".table-wrap, .nav")) {
                    wide.push(el.tagName.toLowerCase() + (el.className ? "." + el.className : "") + " right=" + Math.round(r.right));
                  }
                }
                const small = [];
                for (const el of document.querySelectorAll("button, .button")) {
                  const r = el.getBoundingClientRect();
                  if (r.height > 0 && r.height < 24) small.push(el.textContent.trim());
                }
                return {scroll: document.documentElement.scrollWidth, vw, wide: wide.slice(0, 10), small};
                "#,
                vec![],
            )
            .await
            .unwrap();
        assert!(
            report["scroll"].as_u64() <= report["vw"].as_u64(),
            "{page} at {} px scrolls sideways: {report}",
            self.width
        );
        assert!(
            report["wide"].as_array().unwrap().is_empty(),
            "{page} at {} px has elements wider than the screen: {report}",
            self.width
        );
        assert!(
            report["small"].as_array().unwrap().is_empty(),
            "{page} at {} px has tiny buttons: {report}",
            self.width
        );
    }

    /// Scrolls `css` into the middle of the viewport, then takes a [`screenshot`](Self::screenshot).
    pub async fn screenshot_of(&self, css: &str, test: &str, name: &str) -> PathBuf {
        self.client
            .execute(
                "document.querySelector(arguments[0]).scrollIntoView({block: 'center'});",
                vec![json!(css)],
            )
            .await
            .unwrap();
        self.screenshot(test, name).await
    }

    /// Saves a PNG of the viewport to `target/screenshots/<test>/<name>-<width>.png`.
    pub async fn screenshot(&self, test: &str, name: &str) -> PathBuf {
        let png = self.client.screenshot().await.unwrap();
        let dir = screenshot_dir().join(test);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}-{}.png", self.width));
        std::fs::write(&path, png).unwrap();
        path
    }

    /// Ends the WebDriver session (Chromium exits), then chromedriver.
    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }
}

async fn connect(webdriver: &str, capabilities: serde_json::Map<String, Value>) -> Client {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut builder =
            ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new());
        builder.capabilities(capabilities.clone());
        match builder.connect(webdriver).await {
            Ok(client) => return client,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("cannot start a Chromium session through chromedriver: {e}"),
        }
    }
}

/// `target/screenshots`, beside the target folder's `tmp`.
pub fn screenshot_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target folder")
        .join("screenshots")
}

both_backends!(
    sign_in_and_manage_api_keys_at_375,
    sign_in_and_manage_api_keys_at_1280,
);

async fn sign_in_and_manage_api_keys_at_375(backend: Backend) {
    api_key_flow(backend, 375, 812).await;
}

async fn sign_in_and_manage_api_keys_at_1280(backend: Backend) {
    api_key_flow(backend, 1280, 800).await;
}

/// Sign in, see the dashboard, create an API key (its secret shown once), revoke it, sign out.
async fn api_key_flow(backend: Backend, width: u32, height: u32) {
    let test = match backend {
        Backend::Sqlite => "api_key_flow_sqlite",
        Backend::Postgres => "api_key_flow_postgres",
    };
    let app = spawn_app(backend).await;
    app.create_user("ada@example.com", "acme").await;
    let b = Browser::start(width, height).await;
    let viewport: Value = b
        .client
        .execute("return [window.innerWidth, window.innerHeight];", vec![])
        .await
        .unwrap();
    assert_eq!(viewport, json!([width, height]), "viewport size");

    // Signed out, the dashboard sends us to sign in and back.
    b.goto(&app.url("/")).await;
    b.wait_for_path("the sign-in page", |p| p == "/login?next=%2F")
        .await;
    assert_eq!(b.text_of("h1").await, "Sign in");
    b.assert_layout_fits("sign-in").await;
    b.screenshot(test, "login").await;

    b.fill("#email", "ada@example.com").await;
    b.fill("#password", "not the password").await;
    b.click("form[action='/login'] button[type=submit]").await;
    assert_eq!(b.text_of(".notice.error").await, "Wrong email or password");
    b.screenshot(test, "login-failed").await;

    b.fill("#password", PASSWORD).await;
    b.click("form[action='/login'] button[type=submit]").await;
    b.wait_for_path("the dashboard", |p| p == "/").await;
    assert_eq!(b.text_of("h1").await, "Dashboard");
    assert_eq!(b.text_of(".empty h2").await, "Nothing connected yet");
    assert_eq!(b.text_of(".nav a[aria-current=page]").await, "Dashboard");
    b.assert_layout_fits("dashboard").await;
    b.screenshot(test, "dashboard").await;

    // Settings, through the navigation.
    b.click(".nav a[href='/settings']").await;
    b.wait_for_path("settings", |p| p == "/settings").await;
    assert_eq!(b.text_of("h1").await, "Settings");
    assert!(b.text_of("main").await.contains("No API keys yet."));
    b.assert_layout_fits("settings").await;
    b.screenshot(test, "settings-empty").await;

    b.fill("#name", "crm-production").await;
    b.click("form[action='/settings/api-keys'] button[type=submit]")
        .await;
    let secret = b.text_of("#new-key").await;
    assert_eq!(secret.len(), 46, "{secret}");
    assert!(secret.starts_with("tp_"), "{secret}");
    assert!(b.text_of(".notice.ok").await.contains("shown only once"));
    assert!(b.text_of("#api-keys").await.contains("crm-production"));
    b.assert_layout_fits("settings with a new key").await;
    b.screenshot(test, "key-created").await;
    assert_eq!(
        app.api_get(&secret, "/api/v1/me").await.status(),
        StatusCode::OK,
        "the key shown works"
    );

    // Shown once: a fresh look at the page has only its prefix.
    b.goto(&app.url("/settings")).await;
    let source = b.client.source().await.unwrap();
    assert!(!source.contains(&secret), "the secret is shown again");
    assert!(source.contains(&secret[..12]), "the prefix is shown");

    // Revoke it (the page asks first).
    b.click("#api-keys button.danger").await;
    accept_confirm(&b).await;
    b.wait_for_path("settings after revoking", |p| p == "/settings")
        .await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while !b.text_of("#api-keys").await.contains("revoked") {
        assert!(Instant::now() < deadline, "the key never showed as revoked");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        b.client
            .find(Locator::Css("#api-keys button.danger"))
            .await
            .is_err(),
        "a revoked key has no Revoke button"
    );
    b.assert_layout_fits("settings with a revoked key").await;
    b.screenshot_of("#api-keys", test, "key-revoked").await;
    assert_eq!(
        app.api_get(&secret, "/api/v1/me").await.status(),
        StatusCode::UNAUTHORIZED
    );

    // Sign out.
    b.click(".who button[type=submit]").await;
    b.wait_for_path("the signed-out page", |p| p == "/login?signed_out=1")
        .await;
    assert_eq!(b.text_of(".notice.info").await, "You are signed out.");
    b.screenshot(test, "signed-out").await;
    b.goto(&app.url("/settings")).await;
    b.wait_for_path("the sign-in page", |p| p.starts_with("/login"))
        .await;
    b.close().await;
}

/// Accepts the `confirm()` a form asks before it submits.
async fn accept_confirm(b: &Browser) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match b.client.get_alert_text().await {
            Ok(text) => {
                assert!(text.starts_with("Revoke"), "{text}");
                b.client.accept_alert().await.unwrap();
                return;
            }
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("no confirmation dialog: {e}"),
        }
    }
}

#[tokio::test]
async fn dashboard_actions_are_centred() {
    // The empty state's buttons are centred by the stylesheet (the CSP forbids inline styles).
    let app = spawn_app(Backend::Sqlite).await;
    app.create_user("ada@example.com", "acme").await;
    let b = Browser::start(1280, 800).await;
    b.goto(&app.url("/login")).await;
    b.fill("#email", "ada@example.com").await;
    b.fill("#password", PASSWORD).await;
    b.click("form[action='/login'] button[type=submit]").await;
    b.wait_for_path("the dashboard", |p| p == "/").await;
    let justify: Value = b
        .client
        .execute(
            "return getComputedStyle(document.querySelector('.empty .actions')).justifyContent;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(justify, "center");
    b.close().await;
}

/// Connects the emulator's Instagram business account through Facebook Login and the chooser,
/// in a signed-in browser (shared by the browser tests that need an Instagram account).
pub async fn connect_instagram(b: &Browser, app: &TestApp) {
    let emulator = app.emulator.clone().expect("the emulator runs");
    b.goto(&app.url("/connect/instagram")).await;
    b.click("form[action='/connect/instagram'] button[type=submit]")
        .await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while !b
        .client
        .current_url()
        .await
        .unwrap()
        .as_str()
        .starts_with(&emulator)
    {
        assert!(Instant::now() < deadline, "never reached Facebook's dialog");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    b.click("button[name=decision][value=approve]").await;
    b.wait_for_path("the chooser", |p| {
        p.starts_with("/oauth/instagram/callback")
    })
    .await;
    // Sent with nothing ticked: the same chooser again with the reason, inside the layout, and
    // no second Facebook login.
    b.click("form[action='/connect/instagram/choose'] button[type=submit]")
        .await;
    b.wait_for_path("the chooser shown again", |p| {
        p == "/connect/instagram/choose"
    })
    .await;
    let error = b.text_of("#choose-error").await;
    assert!(error.contains("Tick at least one Page"), "{error}");
    assert!(
        !b.text_of(".nav").await.is_empty(),
        "the chooser shown again keeps the navigation"
    );
    b.click(&format!(
        "input[name=page][value='{}']",
        tidepost_emulator::meta::state::BUSINESS_PAGE_ID
    ))
    .await;
    b.click("form[action='/connect/instagram/choose'] button[type=submit]")
        .await;
    b.wait_for_path("the account page", |p| p.ends_with("?connected=1"))
        .await;
}
