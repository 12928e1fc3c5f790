//! What the TikTok and Instagram test harnesses share: the `App` in sandbox mode on a migrated
//! database, the in-process emulator and its admin API, and a job queue on a clock the test
//! moves (drain, advance both clocks, run a target to its final state). Each harness holds a
//! [`Driver`] and dereferences to it.
#![allow(dead_code)]

use std::time::Duration;

use serde_json::{Value, json};
use tidepost_app::config::RawSettings;
use tidepost_app::providers::Providers;
use tidepost_app::{App, Config};
use tidepost_emulator::Emulator;
use tidepost_jobs::{Clock, Queue, Registry, drain_due};
use tidepost_store::posts::{self, Target};
use tidepost_store::testing::TestDb;
use tidepost_vault::Keyring;

pub struct Driver {
    pub app: App,
    pub emu: Emulator,
    pub ws: String,
    pub clock: Clock,
    pub queue: Queue,
    pub registry: Registry,
    pub http: reqwest::Client,
}

impl Driver {
    /// An `App` in sandbox mode on `test_db` with its data in `dir` and the extra `settings`,
    /// talking to the emulator at `provider_base` (the emulator itself, or a proxy in front of
    /// it), the workspace `acme`, and `register`'s job kinds on a system clock.
    pub async fn new(
        test_db: &TestDb,
        emu: Emulator,
        dir: &std::path::Path,
        settings: Vec<(&'static str, String)>,
        provider_base: Option<String>,
        register: fn(Registry, &App) -> Registry,
    ) -> Driver {
        let mut flags: Vec<(&'static str, String)> = vec![
            ("database_url", test_db.url.clone()),
            ("data_dir", dir.display().to_string()),
            ("sandbox", "true".into()),
        ];
        flags.extend(settings);
        let raw = RawSettings::gather(&flags, |_| None, None).unwrap();
        let config = Config::from_raw(&raw).unwrap();
        let keyring = Keyring::parse(secrecy::ExposeSecret::expose_secret(
            &Keyring::generate_key_text(),
        ))
        .unwrap();
        let base = provider_base.unwrap_or_else(|| emu.base_url());
        let providers = Providers::from_config(&config, Some(&base));
        let app = App::new(config, test_db.db.clone(), keyring, providers);
        let ws = tidepost_store::workspaces::create(&test_db.db, "acme", "Acme")
            .await
            .unwrap()
            .id;
        let clock = Clock::system();
        let queue = Queue::with_clock(test_db.db.clone(), clock.clone());
        let registry = register(Registry::new(), &app);
        Driver {
            app,
            emu,
            ws,
            clock,
            queue,
            registry,
            http: reqwest::Client::new(),
        }
    }

    pub fn emu_url(&self, path: &str) -> String {
        format!("{}{path}", self.emu.base_url())
    }

    pub async fn admin(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self.http.request(method, self.emu_url(path));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        assert!(status.is_success(), "{path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    /// Sets the emulator's faults for `platform` (`tiktok` or `meta`).
    pub async fn set_faults_of(&self, platform: &str, faults: Value) {
        self.admin(
            reqwest::Method::PUT,
            &format!("/_emulator/faults/{platform}"),
            Some(faults),
        )
        .await;
    }

    pub async fn clear_faults_of(&self, platform: &str) {
        let response = self
            .http
            .delete(self.emu_url(&format!("/_emulator/faults/{platform}")))
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success());
    }

    pub async fn target(&self, id: &str) -> Target {
        posts::target(&self.app.db, &self.ws, id)
            .await
            .unwrap()
            .unwrap()
    }

    pub async fn drain(&self) -> tidepost_jobs::DrainReport {
        drain_due(&self.queue, &self.registry, None, 200)
            .await
            .unwrap()
    }

    /// Moves tidepost's job clock and the emulator's clock forward together.
    pub async fn advance(&self, secs: u64) {
        self.clock.advance(Duration::from_secs(secs));
        self.admin(
            reqwest::Method::POST,
            "/_emulator/clock/advance",
            Some(json!({"seconds": secs})),
        )
        .await;
    }

    /// Drains, moving the clocks on whenever nothing is due, until `target_id` is final.
    pub async fn run_to_final(&self, target_id: &str) -> Target {
        for _ in 0..80 {
            let report = self.drain().await;
            let target = self.target(target_id).await;
            if matches!(target.state.as_str(), "published" | "failed" | "cancelled")
                && report.claimed == 0
            {
                return target;
            }
            if report.claimed == 0 {
                self.advance(30).await;
            }
        }
        panic!(
            "target {target_id} never finished: {:?}",
            self.target(target_id).await
        );
    }
}

/// Declares a test on both backends.
#[macro_export]
macro_rules! on_both {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                ($body)(tidepost_store::testing::Backend::Sqlite).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                ($body)(tidepost_store::testing::Backend::Postgres).await;
            }
        }
    };
}
