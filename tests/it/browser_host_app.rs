//! The proof, in a real browser: `examples/host-app` (a pretend creator CRM on the
//! TypeScript client, run with node) against tidepost with the emulator. From the CRM's page a
//! creator is sent to a connect link, consents on the emulator, lands back on the CRM with the
//! account, whose widget the CRM frames; a video is published from the CRM's page with its
//! progress bar, and the CRM's webhook receiver verified every event. Needs node and npm (the
//! test installs the client and the example with `npm ci` when they are not yet); screenshots
//! under `target/screenshots/host_app/`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::Locator;

use crate::browser::Browser;
use crate::support::*;

/// Runs `npm args` in `dir`, panicking with its output when it fails.
fn npm(dir: &Path, args: &[&str]) {
    let out = Command::new("npm")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("npm could not run ({e}): install Debian's nodejs and npm"));
    assert!(
        out.status.success(),
        "npm {args:?} in {}: {}{}",
        dir.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The client built and the example's dependencies installed.
fn prepare() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let client = root.join("clients/typescript");
    let example = root.join("examples/host-app");
    if !client.join("node_modules/.package-lock.json").exists() {
        npm(&client, &["ci", "--no-audit", "--no-fund"]);
    }
    npm(&client, &["run", "build"]);
    if !example.join("node_modules/@tidepost/client").exists() {
        npm(&example, &["ci", "--no-audit", "--no-fund"]);
    }
    example
}

struct Crm(Child);

impl Drop for Crm {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn until(b: &Browser, what: &str, script: &str) {
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let ok = b.client.execute(script, vec![]).await.unwrap();
        if ok.as_bool() == Some(true) {
            return;
        }
        assert!(Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

async fn host_app_end_to_end(backend: Backend) {
    let test = "host_app";
    let example = tokio::task::spawn_blocking(prepare).await.unwrap();
    let app = spawn_app_with(
        backend,
        Options {
            emulator: true,
            workers: true,
            ..Options::default()
        },
    )
    .await;
    let (_, ws) = app.create_user("owner@crm.example", "crm").await;
    let key = app.api_key(&ws.id, "crm", &[]).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let crm_url = format!("http://127.0.0.1:{port}");
    let _crm = Crm(Command::new("node")
        .arg("server.mjs")
        .current_dir(&example)
        .env("PORT", port.to_string())
        .env("PUBLIC_URL", &crm_url)
        .env("TIDEPOST_URL", &app.base)
        .env("TIDEPOST_API_KEY", &key)
        .stdout(Stdio::null())
        .spawn()
        .expect("node runs the example"));
    let deadline = Instant::now() + Duration::from_secs(20);
    while bare_client().get(&crm_url).send().await.is_err() {
        assert!(Instant::now() < deadline, "the CRM never answered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let b = Browser::start(1280, 900).await;
    b.goto(&crm_url).await;
    assert!(
        b.text_of("section[data-creator=crm-ada]")
            .await
            .contains("Ada Lovelace")
    );
    b.screenshot(test, "01-crm").await;

    // Connect: the hosted page, the emulator's consent, back on the CRM.
    b.click("section[data-creator=crm-ada] form button").await;
    b.click("button[name=choice][value=tiktok]").await;
    let emulator = app.emulator.clone().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !b
        .client
        .current_url()
        .await
        .unwrap()
        .as_str()
        .starts_with(&emulator)
    {
        assert!(Instant::now() < deadline, "never reached the consent page");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    b.click("input[name=creator]").await;
    b.click("button[name=decision][value=approve]").await;
    assert!(
        b.text_of(".returned").await.contains("connected"),
        "back on the CRM with the account"
    );
    assert!(b.text_of(".returned").await.contains("crm-ada"));
    // The account's widget, framed by the CRM.
    let frame = b
        .client
        .find(Locator::Css("section[data-creator=crm-ada] iframe.widget"))
        .await
        .unwrap();
    frame.enter_frame().await.unwrap();
    assert!(
        b.text_of(".account-card")
            .await
            .contains("Direct posts left today")
    );
    b.client.enter_parent_frame().await.unwrap();
    b.screenshot(test, "02-connected").await;

    // Publish a video from the CRM's page: the bar fills, the post ends published.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tide.mp4");
    std::fs::write(
        &file,
        tidepost_app::media::testing::video(200_000, "host app"),
    )
    .unwrap();
    b.client
        .find(Locator::Css("form.publish input[type=file]"))
        .await
        .unwrap()
        .send_keys(file.to_str().unwrap())
        .await
        .unwrap();
    b.click("form.publish button").await;
    until(
        &b,
        "the progress bar full",
        "const p = document.querySelector('form.publish progress'); return !p.hidden && p.value === 1;",
    )
    .await;
    until(
        &b,
        "the post published",
        "return document.querySelector('form.publish output').dataset.summary === 'published';",
    )
    .await;
    b.screenshot(test, "03-published").await;

    // The CRM's webhook receiver verified the account's and the post's events.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        b.goto(&crm_url).await;
        let events = b.text_of("#events").await;
        // The CRM lists only events whose signature it verified.
        if events.contains("post.published") {
            assert!(events.contains("account.connected"), "{events}");
            assert_eq!(
                events.matches("verified").count(),
                events.lines().count(),
                "{events}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the CRM never got post.published: {events}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    b.screenshot(test, "04-events").await;
    // The widget lists the post, read-only: no link into tidepost's own pages.
    let frame = b
        .client
        .find(Locator::Css("section[data-creator=crm-ada] iframe.widget"))
        .await
        .unwrap();
    frame.enter_frame().await.unwrap();
    assert!(
        b.text_of(".account-card .recent")
            .await
            .contains("From the CRM")
    );
    let links = b
        .client
        .find_all(Locator::Css(".account-card a"))
        .await
        .unwrap();
    assert!(links.is_empty(), "the widget links into tidepost");
    b.client.enter_parent_frame().await.unwrap();
    b.close().await;
}

mod host_app_end_to_end {
    #[tokio::test]
    async fn sqlite() {
        super::host_app_end_to_end(crate::support::Backend::Sqlite).await
    }
}
