//! The Meta emulator's state behind one lock: fixture accounts (a Facebook user with three
//! Pages, Instagram professional and personal accounts), tokens, authorization codes,
//! containers, published media and comments.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use serde::Serialize;

use super::Settings;
use super::engagement::Comment;
use super::errors::{self, GraphError, GraphResult, Host};
use super::publishing::{Container, Media};
use crate::ctx::Ctx;
use crate::faults::{FaultSet, Provider};

pub const FB_USER_ID: &str = "10158000000000001";
pub const BUSINESS_PAGE_ID: &str = "134895793791914";
pub const BUSINESS_IG_ID: &str = "17841405822304914";
pub const CREATOR_IG_ID: &str = "17841405822304915";
pub const PERSONAL_IG_ID: &str = "17841405822304999";

/// The Meta half's shared handle: the emulator context, configuration, run-time settings and
/// the store.
#[derive(Clone)]
pub struct Meta(Arc<Inner>);

pub struct Inner {
    pub ctx: Ctx,
    pub config: super::Config,
    settings: Mutex<Settings>,
    store: Mutex<Store>,
}

impl std::ops::Deref for Meta {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl Meta {
    pub fn new(ctx: Ctx) -> Self {
        let config = ctx.config.meta.clone();
        let settings = Settings::from(&config);
        Self(Arc::new(Inner {
            ctx,
            config,
            settings: Mutex::new(settings),
            store: Mutex::new(Store::with_fixtures()),
        }))
    }

    /// Runs `f` with the store locked (never held across an await).
    pub fn store<R>(&self, f: impl FnOnce(&mut Store) -> R) -> R {
        let mut store = self
            .store
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut store)
    }

    pub fn settings(&self) -> Settings {
        self.settings
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    pub fn update_settings(&self, f: impl FnOnce(&mut Settings)) -> Settings {
        let mut settings = self
            .settings
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut settings);
        settings.clone()
    }

    pub fn now_ms(&self) -> i64 {
        self.ctx.clock.now_ms()
    }

    pub fn faults(&self) -> FaultSet {
        self.ctx.faults.get(Provider::Meta)
    }

    /// The token `value` if it is valid on `host` now, else the documented 190 error.
    pub fn authenticate(&self, value: Option<&str>, host: Host) -> GraphResult<Token> {
        let value = value
            .filter(|v| !v.is_empty())
            .ok_or_else(errors::token_required)?;
        let revoke_all = self.faults().revoke_all_tokens;
        let now = self.now_ms();
        let token = self
            .store(|s| s.tokens.get(value).cloned())
            .ok_or_else(errors::invalid_token)?;
        if token.login.host() != host {
            return Err(errors::invalid_token());
        }
        if revoke_all || token.state == TokenState::Revoked {
            return Err(errors::token_revoked(&self.config.app_id));
        }
        if token.state == TokenState::PasswordChanged {
            return Err(errors::password_changed());
        }
        if token.expired(now) {
            return Err(errors::token_expired(token.expires_ms, now));
        }
        Ok(token)
    }
}

/// Which login produced a token (and so which Graph host accepts it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Login {
    Facebook,
    Instagram,
}

impl Login {
    pub fn host(self) -> Host {
        match self {
            Login::Facebook => Host::Facebook,
            Login::Instagram => Host::Instagram,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// A Facebook user or an Instagram (Instagram Login) user.
    User,
    Page,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenState {
    Active,
    Revoked,
    PasswordChanged,
}

#[derive(Debug, Clone)]
pub struct Token {
    pub value: String,
    pub login: Login,
    pub kind: TokenKind,
    /// Facebook user id, Page id, or Instagram user id (Instagram Login).
    pub subject: String,
    pub scopes: Vec<String>,
    pub declined: Vec<String>,
    pub issued_ms: i64,
    /// 0: never expires (Page tokens derived from a long-lived user token).
    pub expires_ms: i64,
    pub long_lived: bool,
    pub state: TokenState,
    /// The user token a Page token was derived from.
    pub parent: Option<String>,
}

impl Token {
    pub fn expired(&self, now_ms: i64) -> bool {
        self.expires_ms != 0 && now_ms >= self.expires_ms
    }

    pub fn expires_in(&self, now_ms: i64) -> i64 {
        if self.expires_ms == 0 {
            0
        } else {
            ((self.expires_ms - now_ms) / 1000).max(0)
        }
    }

    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }
}

/// A single-use authorization code from one of the consent dialogs.
#[derive(Debug, Clone)]
pub struct AuthCode {
    pub login: Login,
    pub redirect_uri: String,
    /// Facebook user id or Instagram user id.
    pub subject: String,
    pub scopes: Vec<String>,
    pub declined: Vec<String>,
    pub created_ms: i64,
    pub used: bool,
}

#[derive(Debug, Clone)]
pub struct FbUser {
    pub id: String,
    pub name: String,
    pub email: String,
}

#[derive(Debug, Clone)]
pub struct Page {
    pub id: String,
    pub name: String,
    pub category: String,
    pub ig_user_id: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountType {
    Business,
    MediaCreator,
    Personal,
}

impl AccountType {
    pub fn as_str(self) -> &'static str {
        match self {
            AccountType::Business => "BUSINESS",
            AccountType::MediaCreator => "MEDIA_CREATOR",
            AccountType::Personal => "PERSONAL",
        }
    }
}

#[derive(Debug, Clone)]
pub struct IgAccount {
    pub id: String,
    /// The app-scoped id Instagram Login's `/me` reports as `id` (differs from `user_id`).
    pub app_scoped_id: String,
    pub username: String,
    pub name: String,
    pub account_type: AccountType,
    pub followers: u64,
    pub follows: u64,
    pub base_media_count: u64,
    pub biography: String,
    pub website: String,
}

impl IgAccount {
    pub fn professional(&self) -> bool {
        self.account_type != AccountType::Personal
    }
}

pub struct Store {
    pub fb_user: FbUser,
    pub pages: Vec<Page>,
    pub ig_accounts: Vec<IgAccount>,
    pub tokens: HashMap<String, Token>,
    pub codes: HashMap<String, AuthCode>,
    pub containers: BTreeMap<String, Container>,
    pub media: BTreeMap<String, Media>,
    pub comments: BTreeMap<String, Comment>,
    /// `subscribed_apps` fields per Page or Instagram user.
    pub subscriptions: HashMap<String, Vec<String>>,
    /// Graph calls in the last hour, for `X-App-Usage`.
    pub calls: VecDeque<i64>,
    next_id: u64,
}

impl Store {
    fn with_fixtures() -> Self {
        let ig =
            |id: &str, scoped: &str, username: &str, name: &str, kind, followers, bio: &str| {
                IgAccount {
                    id: id.into(),
                    app_scoped_id: scoped.into(),
                    username: username.into(),
                    name: name.into(),
                    account_type: kind,
                    followers,
                    follows: followers / 10 + 7,
                    base_media_count: followers % 97,
                    biography: bio.into(),
                    website: format!("https://{username}.example"),
                }
            };
        let page = |id: &str, name: &str, category: &str, ig: Option<&str>| Page {
            id: id.into(),
            name: name.into(),
            category: category.into(),
            ig_user_id: ig.map(Into::into),
        };
        Self {
            fb_user: FbUser {
                id: FB_USER_ID.into(),
                name: "Tia Tester".into(),
                email: "tia@tidepost.example".into(),
            },
            pages: vec![
                page(
                    BUSINESS_PAGE_ID,
                    "Tidepost Coffee",
                    "Coffee shop",
                    Some(BUSINESS_IG_ID),
                ),
                page(
                    "134895793791915",
                    "Tia Creates",
                    "Digital creator",
                    Some(CREATOR_IG_ID),
                ),
                page("134895793791916", "Tidepost Drafts", "Community", None),
            ],
            ig_accounts: vec![
                ig(
                    BUSINESS_IG_ID,
                    "26000000000000014",
                    "tidepost.coffee",
                    "Tidepost Coffee",
                    AccountType::Business,
                    1234,
                    "Small-batch coffee",
                ),
                ig(
                    CREATOR_IG_ID,
                    "26000000000000015",
                    "tia.creates",
                    "Tia Creates",
                    AccountType::MediaCreator,
                    5678,
                    "Making things",
                ),
                ig(
                    PERSONAL_IG_ID,
                    "26000000000000099",
                    "tia.private",
                    "Tia",
                    AccountType::Personal,
                    42,
                    "",
                ),
            ],
            tokens: HashMap::new(),
            codes: HashMap::new(),
            containers: BTreeMap::new(),
            media: BTreeMap::new(),
            comments: BTreeMap::new(),
            subscriptions: HashMap::new(),
            calls: VecDeque::new(),
            next_id: 17_900_000_000_000_001,
        }
    }

    /// A fresh 17-digit object id.
    pub fn next_id(&mut self) -> String {
        self.next_id += 1 + u64::from(rand::random::<u8>() % 7);
        self.next_id.to_string()
    }

    pub fn ig_account(&self, id: &str) -> Option<&IgAccount> {
        self.ig_accounts.iter().find(|a| a.id == id)
    }

    pub fn page(&self, id: &str) -> Option<&Page> {
        self.pages.iter().find(|p| p.id == id)
    }

    /// Mints a token and stores it.
    pub fn issue(&mut self, template: TokenTemplate, now_ms: i64) -> Token {
        let prefix = match template.login {
            Login::Facebook => "EAA",
            Login::Instagram => "IGAA",
        };
        let token = Token {
            value: Ctx::random_token(prefix),
            login: template.login,
            kind: template.kind,
            subject: template.subject,
            scopes: template.scopes,
            declined: template.declined,
            issued_ms: now_ms,
            expires_ms: if template.lifetime_secs == 0 {
                0
            } else {
                now_ms.saturating_add(template.lifetime_secs.saturating_mul(1000))
            },
            long_lived: template.long_lived,
            state: TokenState::Active,
            parent: template.parent,
        };
        self.tokens.insert(token.value.clone(), token.clone());
        token
    }

    /// The Page token for `page_id` derived from the user token `parent` (minted once per pair):
    /// never expires when the parent is long-lived, else expires with it.
    pub fn page_token(&mut self, parent: &Token, page_id: &str, now_ms: i64) -> String {
        if let Some(existing) = self.tokens.values().find(|t| {
            t.kind == TokenKind::Page
                && t.subject == page_id
                && t.parent.as_deref() == Some(parent.value.as_str())
        }) {
            return existing.value.clone();
        }
        let lifetime = if parent.long_lived {
            0
        } else {
            parent.expires_in(now_ms).max(1)
        };
        let mut template = TokenTemplate::from_token(parent);
        template.kind = TokenKind::Page;
        template.subject = page_id.to_string();
        template.lifetime_secs = lifetime;
        template.parent = Some(parent.value.clone());
        self.issue(template, now_ms).value
    }

    /// The Instagram user a token acts for by default (`me` on graph.instagram.com, a Page's
    /// linked account on graph.facebook.com).
    pub fn token_ig_user(&self, token: &Token) -> Option<String> {
        match (token.login, token.kind) {
            (Login::Instagram, _) => Some(token.subject.clone()),
            (Login::Facebook, TokenKind::Page) => {
                self.page(&token.subject).and_then(|p| p.ig_user_id.clone())
            }
            (Login::Facebook, TokenKind::User) => None,
        }
    }

    /// Whether `token` may act on the Instagram account `ig_id`.
    pub fn can_access_ig(&self, token: &Token, ig_id: &str) -> bool {
        match (token.login, token.kind) {
            (Login::Instagram, _) => token.subject == ig_id,
            (Login::Facebook, TokenKind::Page) => {
                self.token_ig_user(token).as_deref() == Some(ig_id)
            }
            (Login::Facebook, TokenKind::User) => {
                token.subject == self.fb_user.id
                    && self
                        .pages
                        .iter()
                        .any(|p| p.ig_user_id.as_deref() == Some(ig_id))
            }
        }
    }

    /// Whether `token` may act on the Page `page_id`.
    pub fn can_access_page(&self, token: &Token, page_id: &str) -> bool {
        match (token.login, token.kind) {
            (Login::Instagram, _) => false,
            (Login::Facebook, TokenKind::Page) => token.subject == page_id,
            (Login::Facebook, TokenKind::User) => {
                token.subject == self.fb_user.id && self.page(page_id).is_some()
            }
        }
    }

    /// Records a Graph call at `now_ms` and returns the share of the hourly budget used (%).
    pub fn record_call(&mut self, now_ms: i64, hourly_budget: u64) -> u64 {
        while self.calls.front().is_some_and(|&t| t <= now_ms - 3_600_000) {
            self.calls.pop_front();
        }
        self.calls.push_back(now_ms);
        (self.calls.len() as u64 * 100 / hourly_budget.max(1)).min(100)
    }
}

/// What to mint: see [`Store::issue`].
#[derive(Debug, Clone)]
pub struct TokenTemplate {
    pub login: Login,
    pub kind: TokenKind,
    pub subject: String,
    pub scopes: Vec<String>,
    pub declined: Vec<String>,
    /// 0: never expires.
    pub lifetime_secs: i64,
    pub long_lived: bool,
    pub parent: Option<String>,
}

impl TokenTemplate {
    pub fn from_token(token: &Token) -> Self {
        Self {
            login: token.login,
            kind: token.kind,
            subject: token.subject.clone(),
            scopes: token.scopes.clone(),
            declined: token.declined.clone(),
            lifetime_secs: 0,
            long_lived: token.long_lived,
            parent: None,
        }
    }
}

/// Rejects an operation with the documented permission error when `token` lacks `scope`
/// (Facebook Login) or `ig_scope` (Instagram Login).
pub fn require_scope(token: &Token, scope: &str, ig_scope: &str) -> Result<(), GraphError> {
    let needed = match token.login {
        Login::Facebook => scope,
        Login::Instagram => ig_scope,
    };
    if token.has_scope(needed) {
        Ok(())
    } else {
        Err(errors::permission_missing(10, needed))
    }
}
