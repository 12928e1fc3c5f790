//! Shared set-up of the publish tests: a migrated database (SQLite or PostgreSQL), an
//! in-process emulator, an `App` pointed at it in sandbox mode, a connected TikTok account,
//! and a job queue on a clock the test moves.
#![allow(dead_code)]

use std::path::PathBuf;

use secrecy::SecretString;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tidepost_app::tiktok::{self as publish, MediaSource, Mode, NewPost, PostOptions};
use tidepost_app::tokens;
use tidepost_emulator::{Emulator, EmulatorConfig};
use tidepost_store::accounts::{self, Account};
use tidepost_store::testing::{Backend, TestDb};

#[path = "../job_support/mod.rs"]
mod job_support;
pub use job_support::Driver;

/// The shared driver (app, emulator, workspace, queue, clock) and a connected TikTok account.
pub struct Harness {
    pub driver: Driver,
    pub account: Account,
    pub dir: tempfile::TempDir,
    _db: TestDb,
}

impl std::ops::Deref for Harness {
    type Target = Driver;
    fn deref(&self) -> &Driver {
        &self.driver
    }
}

pub async fn harness(backend: Backend) -> Harness {
    harness_with(backend, &[], |_| {}).await
}

/// `settings`: extra tidepost settings; `tiktok`: changes to the emulator's TikTok app.
pub async fn harness_with(
    backend: Backend,
    settings: &[(&'static str, &str)],
    tiktok: impl FnOnce(&mut tidepost_emulator::tiktok::Config),
) -> Harness {
    let test_db = TestDb::new(backend).await;
    let mut emu_config = EmulatorConfig {
        auto_approve: true,
        ..Default::default()
    };
    emu_config.tiktok.processing_delay_ms = 0;
    emu_config.tiktok.moderation_delay_ms = 0;
    tiktok(&mut emu_config.tiktok);
    let emu = Emulator::start("127.0.0.1:0".parse().unwrap(), emu_config)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let settings = settings.iter().map(|(k, v)| (*k, v.to_string())).collect();
    let driver = Driver::new(&test_db, emu, dir.path(), settings, None, publish::register).await;
    let mut h = Harness {
        account: dummy_account(),
        driver,
        dir,
        _db: test_db,
    };
    h.account = h.connect(None).await;
    h
}

fn dummy_account() -> Account {
    Account {
        id: String::new(),
        workspace_id: String::new(),
        platform: tidepost_domain::Platform::Tiktok,
        provider_user_id: String::new(),
        display_name: String::new(),
        username: None,
        avatar_url: None,
        status: String::new(),
        status_reason: None,
        scopes: String::new(),
        access_token: String::new(),
        refresh_token: None,
        access_expires_at: None,
        refresh_expires_at: None,
        last_refreshed_at: None,
        refresh_lease_until: None,
        refresh_lease_by: None,
        details: "{}".into(),
        created_at: 0,
        updated_at: 0,
    }
}

impl Harness {
    /// Connects an emulator creator (the default one when `None`) as a TikTok account.
    pub async fn connect(&self, creator: Option<&str>) -> Account {
        let body = match creator {
            Some(c) => json!({"creator": c}),
            None => json!({}),
        };
        let minted = self
            .admin(reqwest::Method::POST, "/_emulator/tiktok/token", Some(body))
            .await;
        let id = tidepost_domain::new_id();
        let now = tidepost_domain::now_ms();
        let access = SecretString::from(minted["access_token"].as_str().unwrap().to_string());
        let refresh = SecretString::from(minted["refresh_token"].as_str().unwrap().to_string());
        let account = Account {
            id: id.clone(),
            workspace_id: self.ws.clone(),
            platform: tidepost_domain::Platform::Tiktok,
            provider_user_id: minted["open_id"].as_str().unwrap().into(),
            display_name: creator.unwrap_or("Tidepost Sandbox").into(),
            status: "active".into(),
            scopes: "user.info.basic,video.publish,video.upload".into(),
            access_token: tokens::seal(&self.app, &id, tokens::ACCESS_TOKEN, &access),
            refresh_token: Some(tokens::seal(
                &self.app,
                &id,
                tokens::REFRESH_TOKEN,
                &refresh,
            )),
            access_expires_at: Some(now + 86_400_000),
            refresh_expires_at: Some(now + 365 * 86_400_000),
            created_at: now,
            updated_at: now,
            ..dummy_account()
        };
        accounts::upsert(&self.app.db, &account).await.unwrap();
        accounts::get(&self.app.db, &self.ws, &id)
            .await
            .unwrap()
            .unwrap()
    }

    /// Stores a real video of `size` bytes (at least the test clip's; see
    /// `tidepost_app::media::testing`), distinct for each size, as media.
    pub async fn media(&self, size: usize) -> (tidepost_store::media::Media, String) {
        let bytes = tidepost_app::media::testing::video(size, &size.to_string());
        let sha = hex::encode(Sha256::digest(&bytes));
        let media = tidepost_app::pipeline::media::store(
            &self.app,
            &self.ws,
            &bytes[..],
            "video/mp4",
            Some("clip.mp4"),
        )
        .await
        .unwrap();
        assert_eq!(media.sha256, sha);
        (media, sha)
    }

    pub fn direct_options(&self, privacy: &str) -> PostOptions {
        PostOptions {
            caption: "hello #tidepost".into(),
            options: tidepost_app::tiktok::TikTokOptions {
                privacy_level: Some(privacy.into()),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    /// A private direct post of a new video of `size` bytes ([`Self::media`]); returns the
    /// post and the video's SHA-256.
    pub async fn submit_private(&self, size: usize) -> (tidepost_app::pipeline::PostView, String) {
        let (media, sha) = self.media(size).await;
        let view = self
            .submit_file(&media.id, Mode::Direct, self.direct_options("SELF_ONLY"))
            .await
            .unwrap();
        (view, sha)
    }

    pub async fn submit_file(
        &self,
        media_id: &str,
        mode: Mode,
        options: PostOptions,
    ) -> Result<tidepost_app::pipeline::PostView, tidepost_app::compose::ComposeError> {
        tidepost_app::compose::submit(
            &self.app,
            &self.ws,
            NewPost {
                account_id: self.account.id.clone(),
                mode,
                options,
                media: MediaSource::Stored(media_id.into()),
                idempotency_key: None,
                created_by: None,
            }
            .into(),
        )
        .await
    }

    pub async fn publishes(&self) -> Vec<Value> {
        self.admin(reqwest::Method::GET, "/_emulator/tiktok/publishes", None)
            .await["publishes"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    pub async fn set_faults(&self, faults: Value) {
        self.set_faults_of("tiktok", faults).await;
    }

    pub async fn clear_faults(&self) {
        self.clear_faults_of("tiktok").await;
    }

    pub async fn set_tiktok(&self, settings: Value) {
        self.admin(
            reqwest::Method::PUT,
            "/_emulator/tiktok/settings",
            Some(settings),
        )
        .await;
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }
}

/// Serves `files` (path → bytes) on a local port; returns its base URL.
pub async fn serve_files(files: Vec<(&'static str, Vec<u8>)>) -> String {
    use axum::routing::get;
    let mut router = axum::Router::new();
    for (path, bytes) in files {
        router = router.route(path, get(move || async move { bytes.clone() }));
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}")
}

/// The one issue of a refused post (a single-account post is refused for one reason).
pub fn only_issue(err: &tidepost_app::compose::ComposeError) -> &tidepost_app::compose::Issue {
    let tidepost_app::compose::ComposeError::Invalid(issues) = err else {
        panic!("expected one issue, got {err:?}")
    };
    assert_eq!(issues.len(), 1, "{issues:?}");
    &issues[0]
}
