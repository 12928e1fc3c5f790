//! The Threads part's state behind one lock: the fixture user, codes, tokens, containers and
//! published posts.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::Serialize;

use super::Settings;
use crate::ctx::Ctx;
use crate::faults::{FaultSet, Provider};

/// The fixture Threads user (17 digits: beyond 2^53, as real ids are).
pub const USER_ID: &str = "25046813579135791";
pub const USERNAME: &str = "threads_tester";
pub const NAME: &str = "Threads Tester";

pub const DAY_MS: i64 = 86_400_000;

#[derive(Clone)]
pub struct Threads(Arc<Inner>);

pub struct Inner {
    pub ctx: Ctx,
    pub config: super::Config,
    settings: Mutex<Settings>,
    store: Mutex<Store>,
}

impl std::ops::Deref for Threads {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl Threads {
    pub fn new(ctx: Ctx) -> Self {
        let config = ctx.config.threads.clone();
        let settings = Settings::from(&config);
        Self(Arc::new(Inner {
            ctx,
            config,
            settings: Mutex::new(settings),
            store: Mutex::new(Store::default()),
        }))
    }

    /// Runs `f` with the store locked (never held across an await).
    pub fn store<R>(&self, f: impl FnOnce(&mut Store) -> R) -> R {
        let mut store = self.store.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut store)
    }

    pub fn settings(&self) -> Settings {
        self.settings
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn update_settings(&self, f: impl FnOnce(&mut Settings)) -> Settings {
        let mut settings = self.settings.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut settings);
        settings.clone()
    }

    pub fn now_ms(&self) -> i64 {
        self.ctx.clock.now_ms()
    }

    pub fn faults(&self) -> FaultSet {
        self.ctx.faults.get(Provider::Threads)
    }

    /// A new token for the fixture user.
    pub fn issue(&self, kind: TokenKind, scopes: Vec<String>) -> (String, Token) {
        let settings = self.settings();
        let now = self.now_ms();
        let lifetime = match kind {
            TokenKind::Short => settings.short_lived_secs,
            TokenKind::Long => settings.long_lived_secs,
        };
        let value = Ctx::random_token("THAA");
        let token = Token {
            user_id: USER_ID.into(),
            kind,
            scopes,
            issued_ms: now,
            expires_ms: now + lifetime * 1000,
            revoked: false,
        };
        self.store(|s| s.tokens.insert(value.clone(), token.clone()));
        (value, token)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenKind {
    Short,
    Long,
}

#[derive(Debug, Clone, Serialize)]
pub struct Token {
    pub user_id: String,
    pub kind: TokenKind,
    pub scopes: Vec<String>,
    pub issued_ms: i64,
    pub expires_ms: i64,
    pub revoked: bool,
}

#[derive(Debug, Clone)]
pub struct AuthCode {
    pub redirect_uri: String,
    pub scopes: Vec<String>,
    pub created_ms: i64,
    pub used: bool,
}

/// A container as created, with what it was created with.
#[derive(Debug, Clone, Serialize)]
pub struct Container {
    pub id: String,
    pub user_id: String,
    pub media_type: String,
    pub params: HashMap<String, String>,
    pub children: Vec<String>,
    pub is_carousel_item: bool,
    pub created_ms: i64,
    /// When processing ends (emulated clock).
    pub ready_ms: i64,
    /// Set when processing ends in `ERROR`.
    pub error_message: Option<String>,
    /// The post it became.
    pub published_id: Option<String>,
}

impl Container {
    /// The status at `now`.
    pub fn status(&self, now: i64) -> &'static str {
        if self.published_id.is_some() {
            "PUBLISHED"
        } else if now < self.ready_ms {
            "IN_PROGRESS"
        } else if self.error_message.is_some() {
            "ERROR"
        } else if now >= self.created_ms + DAY_MS {
            "EXPIRED"
        } else {
            "FINISHED"
        }
    }
}

/// A published post.
#[derive(Debug, Clone, Serialize)]
pub struct Post {
    pub id: String,
    pub container_id: String,
    pub user_id: String,
    /// The read-side type: `TEXT_POST`, `IMAGE`, `VIDEO`, `CAROUSEL_ALBUM`.
    pub media_type: String,
    pub text: Option<String>,
    pub shortcode: String,
    pub permalink: String,
    pub published_ms: i64,
    pub reply_control: Option<String>,
    pub link_attachment: Option<String>,
    pub children: Vec<String>,
}

#[derive(Debug, Default)]
pub struct Store {
    pub codes: HashMap<String, AuthCode>,
    pub tokens: HashMap<String, Token>,
    pub containers: HashMap<String, Container>,
    /// In publishing order.
    pub posts: Vec<Post>,
    next_id: u64,
}

impl Store {
    /// A new 17-digit numeric id.
    pub fn new_id(&mut self) -> String {
        self.next_id += 1;
        format!("{}", 18_000_000_000_000_000u64 + self.next_id * 7919)
    }

    /// Posts published by `user_id` within the 24 hours before `now`.
    pub fn published_in_window(&self, user_id: &str, now: i64) -> usize {
        self.posts
            .iter()
            .filter(|p| p.user_id == user_id && now - p.published_ms < DAY_MS)
            .count()
    }

    /// When the oldest post of the window leaves it.
    pub fn window_frees_at(&self, user_id: &str, now: i64) -> Option<i64> {
        self.posts
            .iter()
            .filter(|p| p.user_id == user_id && now - p.published_ms < DAY_MS)
            .map(|p| p.published_ms + DAY_MS)
            .min()
    }
}
