//! The one entry for posts: a post to one account or several, now or at a scheduled time.
//!
//! A post has one caption and one media set ([`NewComposite`]) and a target per account
//! ([`TargetSpec`]), each with its own overrides (its caption, its platform's options:
//! [`TikTokOptions`], [`InstagramOptions`]). The single-account shapes are one-target posts
//! (`single`). Every target is checked by its platform's adapter
//! (`crate::platforms::prepare_target`) and runs its platform's own publish job, one job per
//! target, with its own state machine; the post's state is [`PostSummary::of`] its targets.
//!
//! - `validate`: everything is checked before anything is stored, and **every** problem is
//!   returned at once ([`Issue`], in `issues`). [`submit`] stores the post only when there is
//!   none (`store`): all or nothing.
//! - Scheduling: the targets' jobs are enqueued with `run_at` (durable: it is the job queue). A
//!   time that would break a daily limit — counting the posts already scheduled — is refused
//!   with the next free slot ([`Issue::next_slot_ms`]); [`Schedule::next_free_slot`] takes that
//!   slot instead. The limit is checked again under the account's lock in the transaction that
//!   stores the post, so concurrent requests for an account's last slot get it once.
//! - `drafts`: posts saved without being sent or scheduled, published later through [`validate`].
//! - `update` edits what has not been sent: caption, media, targets, options, time (the
//!   targets already sending or sent keep theirs, each refused with its reason); `history`
//!   records who changed what and when;
//!   cancelling and retrying one failed target are `pipeline::cancel` and `pipeline::retry`.
//!
//! These functions are what the API (`/api/v1/posts`) and the UI call.

pub mod comments;
pub mod drafts;
pub mod history;
mod issues;
pub mod schedule;
mod single;
mod store;
mod update;
mod validate;

use serde::{Deserialize, Serialize};
use tidepost_domain::publish::{PostSummary, TargetState};
use tidepost_store::StoreError;
use tidepost_store::posts::{self, PostFilter};

use crate::App;
use crate::pipeline::media::Item;
use crate::pipeline::quota::LimitCheck;
use crate::pipeline::{PostView, Prepared, PublishError};

pub use crate::pipeline::spec::{TargetInput, TargetSpec};
pub use crate::platforms::instagram::options::InstagramOptions;
pub use crate::platforms::tiktok::TikTokOptions;
pub use crate::platforms::tiktok::creator_cache::creator_info;
pub use issues::{DEFAULT_RETRY_AFTER_SECS, Issue, ProviderRefusal};
pub use schedule::When;
pub use store::store;
pub use update::{Edited, Refusal, Update, check_update, edit_form, open_accounts, update};
pub use validate::validate;

/// The most accounts one post may go to.
pub const MAX_TARGETS: usize = 50;
/// A schedule this far in the past is a mistake, not "now".
const PAST_TOLERANCE_MS: i64 = 60_000;

/// A post to several accounts, as a client describes it.
#[derive(Debug, Clone, Default)]
pub struct NewComposite {
    /// The caption every target uses unless it has its own.
    pub caption: String,
    /// The media set, shared by every target: one video, or images (a TikTok photo post takes
    /// image URLs; Instagram takes one image, one video as a reel, or 2–10 as a carousel).
    pub media: Vec<Item>,
    pub targets: Vec<TargetSpec>,
    pub schedule: Schedule,
    pub idempotency_key: Option<String>,
    pub created_by: Option<String>,
}

/// When the post goes out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Schedule {
    /// `None`: as soon as it is accepted.
    pub at: Option<When>,
    /// When the time (or now) would break a limit, take the next free slot instead of refusing.
    pub next_free_slot: bool,
}

/// What a composite post stores as its options: the request as accepted.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct StoredComposite {
    pub composite: bool,
    pub caption: String,
    pub media: Vec<Item>,
    pub targets: Vec<TargetSpec>,
}

/// Why a composite post or a change to it was refused.
#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    /// Every problem found, at once.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<Issue>),
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The post has started (or finished), or changed meanwhile: it can no longer be changed.
    #[error("{0}")]
    Conflict(String),
    /// The post changed since the version the change was made on (`If-Match`); it is at this
    /// version now.
    #[error(
        "the post changed since the version the change was made on (it is at version {0}): load it again and make the change on that"
    )]
    Stale(i64),
    /// No target can take the change: each has started or finished, for the reason given.
    #[error("{}", .0.iter().map(|r| format!("{}: {}", r.account_id, r.reason)).collect::<Vec<_>>().join("; "))]
    Started(Vec<Refusal>),
    #[error("{0}")]
    Unavailable(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Publish(#[from] PublishError),
}

impl ComposeError {
    /// Whether every issue is a limit refusal (the request is fine, the time is not).
    pub fn only_quota(&self) -> bool {
        matches!(self, ComposeError::Invalid(issues) if !issues.is_empty() && issues.iter().all(|i| i.rule == "quota"))
    }
}

/// The post's state, summarised from its targets'.
pub fn summary(view: &PostView) -> PostSummary {
    let states: Vec<TargetState> = view
        .targets
        .iter()
        .map(|t| TargetState::parse(&t.state).unwrap_or(TargetState::Failed))
        .collect();
    PostSummary::of(&states)
}

/// A target checked and placed in time.
#[derive(Debug, Clone)]
pub struct PlannedTarget {
    /// Its index in the request.
    pub index: usize,
    pub spec: TargetSpec,
    pub prepared: Prepared,
    /// When its job runs; `None`: now.
    pub run_at: Option<i64>,
    /// The daily limit it was placed under, checked again when it is stored; `None` when the
    /// time was not looked at (only the caption changes).
    pub limit: Option<LimitCheck>,
}

/// A composite post that passed [`validate`]: ready to store.
#[derive(Debug, Clone)]
pub struct Plan {
    pub targets: Vec<PlannedTarget>,
    pub at: Option<When>,
    /// What the post is, whatever each platform makes of it: `video` when its media hold a
    /// video, else `photo` (an Instagram reel and a TikTok video are one video post).
    pub kind: &'static str,
}

/// Accepts a composite post: validates it ([`validate`]), then stores the post and its
/// targets and enqueues one publish job per target (at its time), in one transaction. With an
/// idempotency key already used in the workspace, returns that post unchanged.
pub async fn submit(
    app: &App,
    workspace_id: &str,
    new: NewComposite,
) -> Result<PostView, ComposeError> {
    if let Some(key) = &new.idempotency_key
        && let Some(post) = posts::by_idempotency_key(&app.db, workspace_id, key).await?
    {
        let targets = posts::targets_of(&app.db, workspace_id, &post.id).await?;
        return Ok(PostView { post, targets });
    }
    let plan = validate(app, workspace_id, &new).await?;
    store(app, workspace_id, &new, plan).await
}

/// A page of the workspace's posts, newest first, with their targets.
pub async fn list(
    app: &App,
    workspace_id: &str,
    filter: &PostFilter,
    limit: i64,
) -> Result<Vec<PostView>, ComposeError> {
    let found = posts::list_filtered(&app.db, workspace_id, filter, limit).await?;
    let ids: Vec<String> = found.iter().map(|p| p.id.clone()).collect();
    let mut by_post: std::collections::HashMap<String, Vec<posts::Target>> =
        std::collections::HashMap::new();
    for target in posts::targets_of_posts(&app.db, workspace_id, &ids).await? {
        by_post
            .entry(target.post_id.clone())
            .or_default()
            .push(target);
    }
    Ok(found
        .into_iter()
        .map(|post| PostView {
            targets: by_post.remove(&post.id).unwrap_or_default(),
            post,
        })
        .collect())
}
