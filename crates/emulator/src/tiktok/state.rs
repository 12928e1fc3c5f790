//! The TikTok provider state: fixture creators, authorization codes, tokens, publishes and the
//! per-token rate-limit windows. Guarded by one mutex in [`super::App`]; nothing here awaits.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;

use serde::Serialize;
use sha2::Sha256;
use tokio_util::sync::CancellationToken;

use crate::ctx::Ctx;

/// Every scope Login Kit v2 knows.
pub(crate) const ALL_SCOPES: &[&str] = &[
    "user.info.basic",
    "user.info.profile",
    "user.info.stats",
    "video.list",
    "video.upload",
    "video.publish",
];

pub(crate) const DAY_MS: i64 = 86_400_000;

/// A fixture TikTok account that can authorize the app.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Creator {
    pub open_id: String,
    pub union_id: String,
    pub username: String,
    pub display_name: String,
    pub avatar_url: String,
    pub bio_description: String,
    pub is_verified: bool,
    pub private_account: bool,
    pub comment_disabled: bool,
    pub duet_disabled: bool,
    pub stitch_disabled: bool,
    pub max_video_post_duration_sec: u32,
    pub banned_from_posting: bool,
    pub follower_count: u64,
    pub following_count: u64,
    pub likes_count: u64,
    pub video_count: u64,
}

impl Creator {
    pub fn privacy_level_options(&self) -> Vec<&'static str> {
        if self.private_account {
            vec!["FOLLOWER_OF_CREATOR", "MUTUAL_FOLLOW_FRIENDS", "SELF_ONLY"]
        } else {
            vec!["PUBLIC_TO_EVERYONE", "MUTUAL_FOLLOW_FRIENDS", "SELF_ONLY"]
        }
    }

    pub fn profile_deep_link(&self) -> String {
        format!("https://www.tiktok.com/@{}", self.username)
    }

    #[allow(clippy::too_many_arguments)]
    fn fixture(
        id: &str,
        username: &str,
        display_name: &str,
        private_account: bool,
        comment_disabled: bool,
        duet_stitch_disabled: bool,
        max_secs: u32,
        banned: bool,
    ) -> Self {
        Self {
            open_id: format!("act.{id}Emulator0000000000"),
            union_id: format!("uni.{id}Emulator0000000000"),
            username: username.into(),
            display_name: display_name.into(),
            avatar_url: format!("https://p16-sign.tiktokcdn.com/emulator/{username}.jpeg"),
            bio_description: format!("{display_name} (emulated creator)"),
            is_verified: !private_account,
            private_account,
            comment_disabled,
            duet_disabled: duet_stitch_disabled || private_account,
            stitch_disabled: duet_stitch_disabled || private_account,
            max_video_post_duration_sec: max_secs,
            banned_from_posting: banned,
            follower_count: 1_200,
            following_count: 87,
            likes_count: 45_000,
            video_count: 31,
        }
    }

    /// A public (or private) creator named by a test, with the sandbox creator's limits.
    pub fn new(username: &str, display_name: &str, private_account: bool) -> Self {
        let id: String = username
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .collect();
        let mut creator = Creator::fixture(
            &format!("{id}{}", &Ctx::random_token("")[..8]),
            username,
            display_name,
            private_account,
            false,
            false,
            600,
            false,
        );
        creator.username = username.to_string();
        creator
    }

    /// The fixture accounts; the first is the default one.
    pub fn fixtures() -> Vec<Creator> {
        vec![
            Creator::fixture(
                "sandboxCreator",
                "tidepost.sandbox",
                "Tidepost Sandbox",
                false,
                false,
                false,
                600,
                false,
            ),
            Creator::fixture(
                "privateCreator",
                "tidepost.private",
                "Private Pat",
                true,
                false,
                true,
                180,
                false,
            ),
            Creator::fixture(
                "quietCreator",
                "tidepost.quiet",
                "Quiet Quinn",
                false,
                true,
                true,
                300,
                false,
            ),
            Creator::fixture(
                "bannedCreator",
                "tidepost.banned",
                "Banned Bo",
                false,
                false,
                false,
                180,
                true,
            ),
        ]
    }
}

#[derive(Debug, Clone)]
pub(crate) struct AuthCode {
    pub open_id: String,
    pub scopes: Vec<String>,
    pub redirect_uri: String,
    pub code_challenge: Option<String>,
    pub expires_at_ms: i64,
    pub used: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct AccessToken {
    pub open_id: String,
    pub scopes: Vec<String>,
    pub expires_at_ms: i64,
    pub revoked: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct RefreshToken {
    pub open_id: String,
    pub scopes: Vec<String>,
    pub expires_at_ms: i64,
    /// Rotated away or revoked.
    pub revoked: bool,
    /// Spent by a refresh grant (a later grant with it is a reuse, not a revocation).
    pub rotated: bool,
}

/// One refresh grant as the admin API shows it, so tests can prove that no rotating refresh
/// token was ever presented twice.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct RefreshGrant {
    pub at_ms: i64,
    /// `None` when the presented token was never issued.
    pub open_id: Option<String>,
    /// `rotated` (granted), `reused` (already spent), `revoked`, `expired` or `unknown`.
    pub outcome: &'static str,
}

/// A call refused by a per-token rate limit (not an injected one): a client that paces itself
/// as TikTok documents never causes one.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct RateLimited {
    pub at_ms: i64,
    pub open_id: String,
    pub endpoint: String,
}

/// A freshly minted token pair.
#[derive(Debug, Clone)]
pub(crate) struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
    pub open_id: String,
    pub scopes: Vec<String>,
}

/// Endpoints with their own per-token rate limits and scopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Endpoint {
    UserInfo,
    CreatorInfo,
    VideoInit,
    InboxInit,
    ContentInit,
    StatusFetch,
    Cancel,
    /// `POST /v2/video/query/` (Display API).
    VideoQuery,
    /// `POST /v2/video/list/` (Display API).
    VideoList,
}

impl Endpoint {
    /// Requests per sliding minute per access token.
    pub fn limit_per_minute(self) -> usize {
        match self {
            Endpoint::UserInfo => 600,
            Endpoint::CreatorInfo => 20,
            Endpoint::VideoInit | Endpoint::InboxInit | Endpoint::ContentInit => 6,
            Endpoint::StatusFetch => 30,
            Endpoint::Cancel => 30,
            // Display API figure from integrations (unconfirmed).
            Endpoint::VideoQuery | Endpoint::VideoList => 600,
        }
    }

    /// The token needs at least one of these scopes (empty: any token).
    pub fn scopes(self) -> &'static [&'static str] {
        match self {
            Endpoint::UserInfo => &[],
            Endpoint::CreatorInfo | Endpoint::VideoInit => &["video.publish"],
            Endpoint::InboxInit => &["video.upload"],
            Endpoint::ContentInit | Endpoint::StatusFetch | Endpoint::Cancel => {
                &["video.publish", "video.upload"]
            }
            Endpoint::VideoQuery | Endpoint::VideoList => &["video.list"],
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Mode {
    Direct,
    Inbox,
}

impl Mode {
    /// `publish_type` in webhook contents.
    pub fn publish_type(self) -> &'static str {
        match self {
            Mode::Direct => "DIRECT_POST",
            Mode::Inbox => "INBOX_SHARE",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub(crate) enum Source {
    #[serde(rename = "FILE_UPLOAD")]
    FileUpload,
    #[serde(rename = "PULL_FROM_URL")]
    PullFromUrl,
    #[serde(rename = "photo")]
    Photo,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub(crate) enum Status {
    ProcessingUpload,
    ProcessingDownload,
    SendToUserInbox,
    PublishComplete,
    Failed,
}

impl Status {
    pub fn is_processing(self) -> bool {
        matches!(self, Status::ProcessingUpload | Status::ProcessingDownload)
    }
}

/// The chunked upload behind a FILE_UPLOAD publish.
#[derive(Debug, Clone)]
pub(crate) struct UploadTask {
    pub upload_id: String,
    pub upload_token: String,
    pub expires_at_ms: i64,
    pub video_size: u64,
    pub chunk_size: u64,
    pub total_chunk_count: u64,
    /// Chunks acknowledged so far (in order).
    pub chunks_done: u64,
    /// A chunk is being received right now.
    pub in_flight: bool,
    /// SHA-256 state over the acknowledged bytes.
    pub hasher: Sha256,
}

impl UploadTask {
    /// Inclusive byte range `(first, last)` of chunk `index` under the documented layout.
    pub fn chunk_range(&self, index: u64) -> (u64, u64) {
        let first = index * self.chunk_size;
        let last = if index + 1 == self.total_chunk_count {
            self.video_size - 1
        } else {
            first + self.chunk_size - 1
        };
        (first, last)
    }

    pub fn bytes_done(&self) -> u64 {
        if self.chunks_done == 0 {
            0
        } else {
            self.chunk_range(self.chunks_done - 1).1 + 1
        }
    }

    pub fn is_complete(&self) -> bool {
        self.chunks_done == self.total_chunk_count
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Publish {
    pub publish_id: String,
    /// Internal key used for file names.
    pub key: String,
    pub open_id: String,
    pub mode: Mode,
    pub source: Source,
    pub post_info: serde_json::Value,
    pub source_info: serde_json::Value,
    /// Privacy after the unaudited-client rules (`None` for inbox until the creator posts).
    pub privacy_level: Option<String>,
    pub created_ms: i64,
    pub status: Status,
    pub fail_reason: Option<String>,
    pub upload: Option<UploadTask>,
    pub bytes_received: u64,
    pub sha256: Option<String>,
    /// Chunks (uploads) or files (pulls) fully received.
    pub chunks_received: u64,
    /// When the last byte arrived; processing starts then.
    pub transfer_done_ms: Option<i64>,
    /// When the post became `PUBLISH_COMPLETE`.
    pub completed_ms: Option<i64>,
    pub post_ids: Vec<u64>,
    pub cancel: CancellationToken,
}

impl Publish {
    pub fn is_public(&self) -> bool {
        self.privacy_level.as_deref() == Some("PUBLIC_TO_EVERYONE")
    }

    pub fn is_failed(&self) -> bool {
        self.status == Status::Failed
    }

    /// Where the received bytes of this publish (file `index`) are written.
    pub fn file_path(&self, ctx: &Ctx, index: usize) -> PathBuf {
        ctx.data_dir()
            .join("tiktok")
            .join(format!("{}-{index}", self.key))
    }
}

/// All TikTok state.
pub(crate) struct Store {
    pub creators: Vec<Creator>,
    pub codes: HashMap<String, AuthCode>,
    pub access_tokens: HashMap<String, AccessToken>,
    pub refresh_tokens: HashMap<String, RefreshToken>,
    pub publishes: Vec<Publish>,
    pub windows: HashMap<(String, Endpoint), VecDeque<i64>>,
    /// The `revoke_all_tokens` fault was already applied to the tokens existing when it was seen.
    pub revoke_all_applied: bool,
    /// Every refresh grant, in order (`GET /_emulator/tiktok/refreshes`).
    pub refresh_grants: Vec<RefreshGrant>,
    /// Calls refused by a per-token rate limit (`GET /_emulator/tiktok/rate-limited`).
    pub rate_limited: Vec<RateLimited>,
}

impl Store {
    pub fn new() -> Self {
        Self {
            creators: Creator::fixtures(),
            codes: HashMap::new(),
            access_tokens: HashMap::new(),
            refresh_tokens: HashMap::new(),
            publishes: Vec::new(),
            windows: HashMap::new(),
            revoke_all_applied: false,
            refresh_grants: Vec::new(),
            rate_limited: Vec::new(),
        }
    }

    /// A creator by open_id or username.
    pub fn creator(&self, id: &str) -> Option<&Creator> {
        let id = id.trim_start_matches('@');
        self.creators
            .iter()
            .find(|c| c.open_id == id || c.username == id)
    }

    pub fn publish(&self, publish_id: &str) -> Option<&Publish> {
        self.publishes.iter().find(|p| p.publish_id == publish_id)
    }

    pub fn publish_mut(&mut self, publish_id: &str) -> Option<&mut Publish> {
        self.publishes
            .iter_mut()
            .find(|p| p.publish_id == publish_id)
    }

    pub fn publish_by_upload_mut(&mut self, upload_id: &str) -> Option<&mut Publish> {
        self.publishes
            .iter_mut()
            .find(|p| p.upload.as_ref().is_some_and(|u| u.upload_id == upload_id))
    }

    /// Mints an access/refresh token pair for a creator.
    pub fn mint_tokens(
        &mut self,
        open_id: &str,
        scopes: Vec<String>,
        now_ms: i64,
        access_ttl: u64,
        refresh_ttl: u64,
    ) -> TokenPair {
        let access_token = Ctx::random_token("act.");
        let refresh_token = Ctx::random_token("rft.");
        self.access_tokens.insert(
            access_token.clone(),
            AccessToken {
                open_id: open_id.into(),
                scopes: scopes.clone(),
                expires_at_ms: now_ms + secs_to_ms(access_ttl),
                revoked: false,
            },
        );
        self.refresh_tokens.insert(
            refresh_token.clone(),
            RefreshToken {
                open_id: open_id.into(),
                scopes: scopes.clone(),
                expires_at_ms: now_ms + secs_to_ms(refresh_ttl),
                revoked: false,
                rotated: false,
            },
        );
        TokenPair {
            access_token,
            refresh_token,
            open_id: open_id.into(),
            scopes,
        }
    }

    /// Applies the `revoke_all_tokens` fault once per activation: access tokens existing now are
    /// revoked; tokens minted later keep working.
    pub fn apply_revoke_all(&mut self, fault_on: bool) {
        if fault_on && !self.revoke_all_applied {
            self.access_tokens
                .values_mut()
                .for_each(|t| t.revoked = true);
        }
        self.revoke_all_applied = fault_on;
    }

    /// Removes a creator's authorization: every token of theirs stops working.
    pub fn revoke_creator(&mut self, open_id: &str) {
        self.access_tokens
            .values_mut()
            .filter(|t| t.open_id == open_id)
            .for_each(|t| t.revoked = true);
        self.refresh_tokens
            .values_mut()
            .filter(|t| t.open_id == open_id)
            .for_each(|t| t.revoked = true);
    }

    /// Records a call in the token's sliding one-minute window; `false` when over the limit.
    pub fn admit(&mut self, token: &str, endpoint: Endpoint, now_ms: i64) -> bool {
        let window = self
            .windows
            .entry((token.to_string(), endpoint))
            .or_default();
        while window.front().is_some_and(|&t| t <= now_ms - 60_000) {
            window.pop_front();
        }
        if window.len() >= endpoint.limit_per_minute() {
            let open_id = self
                .access_tokens
                .get(token)
                .map(|t| t.open_id.clone())
                .unwrap_or_default();
            self.rate_limited.push(RateLimited {
                at_ms: now_ms,
                open_id,
                endpoint: format!("{endpoint:?}"),
            });
            return false;
        }
        window.push_back(now_ms);
        true
    }

    /// Publishes of one creator in one mode created within the last 24 h that did not fail.
    pub fn recent_publishes(
        &self,
        open_id: Option<&str>,
        mode: Mode,
        now_ms: i64,
    ) -> impl Iterator<Item = &Publish> {
        self.publishes.iter().filter(move |p| {
            p.mode == mode
                && open_id.is_none_or(|id| p.open_id == id)
                && p.created_ms > now_ms - DAY_MS
                && !p.is_failed()
        })
    }
}

pub(crate) fn secs_to_ms(secs: u64) -> i64 {
    i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX / 2)
}

/// A random 19-digit TikTok-style id (fits in `u64` and in `i64`).
pub(crate) fn random_id19() -> u64 {
    use rand::Rng;
    rand::rng().random_range(7_000_000_000_000_000_000..9_000_000_000_000_000_000)
}
