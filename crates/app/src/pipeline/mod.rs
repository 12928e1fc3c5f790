//! The publishing pipeline every platform shares: posts and their targets, the target state
//! machine ([`advance`]), the errors a person reads ([`PublishError`]), storing a checked target
//! with its job (the composer's `store`), cancelling, retrying and restarting targets, the
//! daily-limit placement ([`quota`]), the halts of a publish job ([`halt`]), inbound webhook
//! ingest ([`inbound`]) and media for publishing ([`media`]).
//!
//! What differs by platform (checking a target, its publish job, its limits) is behind
//! `crate::platforms`. One exception is left: [`retry`] refuses a target whose TikTok init
//! outcome is unknown (`platforms::tiktok::reconcile`), the only platform with that state.

pub(crate) mod halt;
pub mod inbound;
pub mod media;
pub mod quota;
pub mod spec;

use serde::{Deserialize, Serialize};
use serde_json::json;
use tidepost_domain::publish::TargetState;
use tidepost_providers::{ErrorKind, ProviderError};
use tidepost_store::accounts::Account;
use tidepost_store::posts::{self, Post, Target};
use tidepost_store::{StoreError, events};

use crate::App;
use crate::tokens::TokenError;

/// The payload of the publish and poll jobs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TargetRef {
    pub workspace_id: String,
    pub target_id: String,
    /// The target's `scheduled_at` when the job was enqueued. A rescheduled target gets a new
    /// job; the old one finds the target's time changed and does nothing ([`halt::due`]), so
    /// a post never goes out at a time it was moved away from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_at: Option<i64>,
}

/// Why a post was refused or an action failed, in words a person can act on.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{message}")]
    Quota {
        message: String,
        /// When the next slot opens (ms since the epoch).
        next_slot_ms: i64,
    },
    #[error("{0}")]
    Conflict(String),
    #[error("the account must be connected again: {0}")]
    NeedsReauth(String),
    #[error("{}", .0.message)]
    Provider(ProviderError),
    #[error("{0}")]
    Unavailable(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("storing the media failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("the upload is larger than the {max} bytes allowed")]
    TooLarge { max: u64 },
}

impl From<TokenError> for PublishError {
    fn from(err: TokenError) -> Self {
        match err {
            TokenError::Provider(e) => PublishError::Provider(e),
            TokenError::NeedsReauth(m) => PublishError::NeedsReauth(m),
            TokenError::Store(e) => PublishError::Store(e),
            other @ (TokenError::RefreshBusy
            | TokenError::NotConfigured(_)
            | TokenError::Vault(_)) => PublishError::Unavailable(other.to_string()),
        }
    }
}

pub(crate) fn invalid(field: &'static str, message: impl Into<String>) -> PublishError {
    PublishError::Invalid {
        field,
        message: message.into(),
    }
}

/// A post with its targets.
#[derive(Debug, Clone)]
pub struct PostView {
    pub post: Post,
    pub targets: Vec<Target>,
}

/// Media URLs must be absolute http(s) URLs.
pub fn check_media_url(field: &'static str, url: &str) -> Result<(), PublishError> {
    let parsed =
        url::Url::parse(url).map_err(|e| invalid(field, format!("{url:?} is not a URL ({e})")))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(invalid(
            field,
            "media URLs must start with http:// or https:// and name a host",
        ));
    }
    Ok(())
}

/// The SSRF guard on media URLs the provider will download ([`crate::net_guard::check_media_url`]):
/// none may aim at a loopback, private, link-local or metadata address, by IP or by a name that
/// resolves to one, unless the operator allows private targets (on in sandbox mode, where the
/// emulator downloads media served on this machine).
pub async fn guard_media_urls(
    app: &App,
    field: &'static str,
    urls: &[&str],
) -> Result<(), PublishError> {
    let policy = crate::outbound::policy(app);
    // Names are resolved side by side (a photo post has up to 35 URLs, each lookup may take
    // seconds); the first refused URL in the given order is reported.
    let mut checks = tokio::task::JoinSet::new();
    for (i, url) in urls.iter().enumerate() {
        let url = url.to_string();
        checks.spawn(async move { (i, crate::net_guard::check_media_url(&url, policy).await) });
    }
    let mut refused = None;
    while let Some(done) = checks.join_next().await {
        match done {
            Ok((i, Err(e))) if refused.as_ref().is_none_or(|(first, _)| i < *first) => {
                refused = Some((i, e.to_string()));
            }
            Ok(_) => {}
            Err(e) => {
                return Err(PublishError::Unavailable(format!(
                    "checking media URLs: {e}"
                )));
            }
        }
    }
    match refused {
        Some((_, why)) => Err(invalid(
            field,
            format!("this media URL cannot be used: {why}"),
        )),
        None => Ok(()),
    }
}

/// One target checked and ready to store: what its post row and its target row hold. Made by
/// [`prepare`] (TikTok) and `instagram::prepare::prepare`, shared by the single-target submits
/// and by `compose` (one post to several accounts), so every path runs the same checks.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub account: Account,
    /// `video` or `photo` (TikTok); the media type (Instagram).
    pub kind: String,
    /// `direct` or `inbox` (TikTok); the media type (Instagram).
    pub mode: String,
    pub source: String,
    pub bytes_total: i64,
    pub media_id: Option<String>,
    pub media_url: Option<String>,
    pub caption: String,
    /// JSON: the options as accepted (what the publish job reads).
    pub options: String,
}

/// A queued target of `post` on `account`: nothing sent yet.
pub(crate) fn new_target(
    post: &Post,
    account: &Account,
    mode: &str,
    source: &str,
    bytes_total: i64,
) -> Target {
    Target {
        id: tidepost_domain::new_id(),
        workspace_id: post.workspace_id.clone(),
        post_id: post.id.clone(),
        account_id: account.id.clone(),
        platform: account.platform,
        mode: mode.into(),
        source: source.into(),
        state: TargetState::Queued.as_str().into(),
        bytes_total,
        bytes_sent: 0,
        chunk_size: 0,
        chunks_total: 0,
        chunks_acked: 0,
        init_generation: 0,
        publish_id: None,
        provider_status: None,
        provider_post_ids: "[]".into(),
        error_code: None,
        error_message: None,
        error_retryable: 0,
        upload_url: None,
        upload_url_expires_at: None,
        init_at: None,
        finished_at: None,
        created_at: post.created_at,
        updated_at: post.created_at,
        options: None,
        scheduled_at: None,
        version: 1,
    }
}

pub async fn get(app: &App, workspace_id: &str, post_id: &str) -> Result<PostView, PublishError> {
    let post = posts::get(&app.db, workspace_id, post_id)
        .await?
        .ok_or(PublishError::NotFound("post"))?;
    let targets = posts::targets_of(&app.db, workspace_id, post_id).await?;
    Ok(PostView { post, targets })
}

/// Cancels every target of the post that has not reached its platform yet.
pub async fn cancel(
    app: &App,
    workspace_id: &str,
    post_id: &str,
) -> Result<PostView, PublishError> {
    cancel_by(app, workspace_id, post_id, None).await
}

/// [`cancel`], recorded in the post's history as done `by` (a user's id or `api_key:<id>`).
pub async fn cancel_by(
    app: &App,
    workspace_id: &str,
    post_id: &str,
    by: Option<&str>,
) -> Result<PostView, PublishError> {
    use crate::compose::history::{self, Action, Change};
    let view = get(app, workspace_id, post_id).await?;
    let mut cancelled = Vec::new();
    for target in &view.targets {
        let state = TargetState::parse(&target.state).unwrap_or(TargetState::Failed);
        if state.cancellable()
            && posts::set_state(
                &app.db,
                workspace_id,
                &target.id,
                state.as_str(),
                "cancelled",
                true,
                tidepost_domain::now_ms(),
            )
            .await?
        {
            cancelled.push(Change::target(
                "state",
                &target.account_id,
                json!(state.as_str()),
                json!(TargetState::Cancelled.as_str()),
            ));
        }
    }
    if !cancelled.is_empty() {
        tidepost_store::post_history::insert(
            &app.db,
            &history::row(
                workspace_id,
                post_id,
                by,
                Action::Cancelled,
                &cancelled,
                tidepost_domain::now_ms(),
            ),
        )
        .await?;
    }
    if cancelled.is_empty() {
        return Err(PublishError::Conflict(
            "nothing to cancel: every target has already reached its platform or finished".into(),
        ));
    }
    get(app, workspace_id, post_id).await
}

/// Tries a failed target again (a new provider publish).
pub async fn retry(
    app: &App,
    workspace_id: &str,
    post_id: &str,
    target_id: &str,
) -> Result<PostView, PublishError> {
    let target = target_of_post(app, workspace_id, post_id, target_id).await?;
    if crate::platforms::outcome_unknown(&target) {
        return Err(PublishError::Conflict(format!(
            "{} may already have this post (its outcome is unknown): check the creator's profile, then mark it published or send it again with confirmation",
            target.platform.display_name()
        )));
    }
    let state = TargetState::parse(&target.state).unwrap_or(TargetState::Failed);
    let next = state.retry().map_err(|e| {
        PublishError::Conflict(format!("only a failed target can be retried ({e})"))
    })?;
    let now = tidepost_domain::now_ms();
    if !posts::set_state(
        &app.db,
        workspace_id,
        target_id,
        state.as_str(),
        next.as_str(),
        false,
        now,
    )
    .await?
    {
        return Err(changed_meanwhile());
    }
    posts::clear_error(&app.db, workspace_id, target_id, now).await?;
    republish(
        app,
        workspace_id,
        post_id,
        target_id,
        target.init_generation,
        now,
    )
    .await
}

/// The target `target_id` of the workspace's post `post_id`.
pub(crate) async fn target_of_post(
    app: &App,
    workspace_id: &str,
    post_id: &str,
    target_id: &str,
) -> Result<posts::Target, PublishError> {
    posts::target(&app.db, workspace_id, target_id)
        .await?
        .filter(|t| t.post_id == post_id)
        .ok_or(PublishError::NotFound("target"))
}

/// The conflict of a compare-and-set on a target that another change got to first.
pub(crate) fn changed_meanwhile() -> PublishError {
    PublishError::Conflict("the target changed meanwhile; reload and try again".into())
}

/// Starts the publish of a target already moved back to `queued` over (a new init generation
/// after `generation`, nothing of the earlier upload kept) and queues it; returns the post.
pub(crate) async fn republish(
    app: &App,
    workspace_id: &str,
    post_id: &str,
    target_id: &str,
    generation: i64,
    now: i64,
) -> Result<PostView, PublishError> {
    posts::restart_publish(&app.db, workspace_id, target_id, generation, now).await?;
    let fresh = posts::target(&app.db, workspace_id, target_id)
        .await?
        .ok_or(PublishError::NotFound("target"))?;
    app.queue
        .enqueue(crate::platforms::publish_job(&fresh, now))
        .await
        .map_err(|e| PublishError::Unavailable(e.to_string()))?;
    get(app, workspace_id, post_id).await
}

/// The outbound event of a target that reached the final state `to` with `error`:
/// `post.published`; `post.failed` for a failure; `post.outcome_unknown` for a failure whose
/// outcome is not known (the request may have reached the platform, its answer was lost), which
/// is not announced as a failure because it may yet turn out published.
pub fn final_event(to: TargetState, error: Option<&ProviderError>) -> Option<&'static str> {
    match to {
        TargetState::Published => Some("post.published"),
        TargetState::Failed if error.is_some_and(|e| e.kind == ErrorKind::OutcomeUnknown) => {
            Some("post.outcome_unknown")
        }
        TargetState::Failed => Some("post.failed"),
        TargetState::Queued
        | TargetState::Scheduled
        | TargetState::Uploading
        | TargetState::Processing
        | TargetState::Cancelled => None,
    }
}

/// The payload of a target's `post.*` event: its ids, and what the platform told of the post
/// (`post_ids`, `post_url`) as far as known.
pub async fn event_payload(
    app: &App,
    target: &Target,
    error: Option<&ProviderError>,
) -> Result<serde_json::Value, StoreError> {
    Ok(json!({
        "post_id": target.post_id,
        "target_id": target.id,
        "account_id": target.account_id,
        "platform": target.platform,
        "mode": target.mode,
        "state": target.state,
        // Which attempt at the target (a retry or a new send is a new one).
        "attempt": target.init_generation,
        "publish_id": target.publish_id,
        "post_ids": target.post_ids(),
        "post_url": crate::platforms::post_url(app, target).await?,
        "error": error.map(|e| json!({"code": e.code, "message": e.message})),
    }))
}

/// Records what the platform reports of a target (`status`, and its public post ids when
/// given). When new ids arrive for a target already published (its `post.published` went out
/// before the platform knew them), records `post.updated` with the ids and the post's URL.
/// The ids are written compare-and-set, so of two reporters at once (a poll and a webhook)
/// only the one that changed them records the event.
pub async fn record_provider_status(
    app: &App,
    target: &Target,
    status: &str,
    post_ids: Option<&[String]>,
) -> Result<(), StoreError> {
    let (workspace_id, target_id) = (&target.workspace_id, &target.id);
    let mut known = target.clone();
    for _ in 0..5 {
        let now = tidepost_domain::now_ms();
        let mut ids = known.post_ids();
        let before = ids.len();
        for id in post_ids.unwrap_or_default() {
            if !ids.contains(id) {
                ids.push(id.clone());
            }
        }
        if ids.len() == before {
            return posts::set_provider_status(&app.db, workspace_id, target_id, status, None, now)
                .await;
        }
        let changed = posts::add_post_ids(
            &app.db,
            workspace_id,
            target_id,
            status,
            &known.provider_post_ids,
            &ids,
            now,
        )
        .await?;
        let Some(fresh) = posts::target(&app.db, workspace_id, target_id).await? else {
            return Ok(());
        };
        if !changed {
            // Another reporter changed the ids meanwhile: merge into what it stored.
            known = fresh;
            continue;
        }
        if fresh.state == TargetState::Published.as_str() {
            events::record(
                &app.db,
                workspace_id,
                "post.updated",
                Some(&fresh.post_id),
                &event_payload(app, &fresh, None).await?,
            )
            .await?;
        }
        return Ok(());
    }
    Ok(())
}

/// Moves a target to `to` if the state machine allows it (compare-and-set, retried when
/// another updater got there first). Returns the state it moved from, or `None` when the
/// update was refused (backwards, repeated or already final). Records the final event
/// ([`final_event`]: `post.published`, `post.failed` or `post.outcome_unknown`) on the move
/// into a final state. A target that reaches `published` keeps no error: the store clears the
/// error of earlier, retried attempts with the move (their history stays on the jobs and in
/// the event log).
pub async fn advance(
    app: &App,
    workspace_id: &str,
    target_id: &str,
    to: TargetState,
    error: Option<&ProviderError>,
) -> Result<Option<TargetState>, StoreError> {
    for _ in 0..5 {
        let Some(target) = posts::target(&app.db, workspace_id, target_id).await? else {
            return Ok(None);
        };
        let from = TargetState::parse(&target.state).unwrap_or(TargetState::Queued);
        if from.apply(to).is_err() {
            return Ok(None);
        }
        let now = tidepost_domain::now_ms();
        // The state and its error in one write: a reader never sees a failed target without
        // its reason.
        let moved = match error.filter(|_| to != TargetState::Published) {
            Some(err) => {
                let retryable = err.is_retryable() || err.kind == ErrorKind::OutcomeUnknown;
                posts::set_state_with_error(
                    &app.db,
                    workspace_id,
                    target_id,
                    from.as_str(),
                    to.as_str(),
                    to.is_final(),
                    (&err.code, &err.message, retryable),
                    now,
                )
                .await?
            }
            None => {
                posts::set_state(
                    &app.db,
                    workspace_id,
                    target_id,
                    from.as_str(),
                    to.as_str(),
                    to.is_final(),
                    now,
                )
                .await?
            }
        };
        if !moved {
            continue;
        }
        if from != to
            && let Some(kind) = final_event(to, error)
        {
            let target = posts::target(&app.db, workspace_id, target_id)
                .await?
                .unwrap_or(target);
            events::record(
                &app.db,
                workspace_id,
                kind,
                Some(&target.post_id),
                &event_payload(app, &target, error).await?,
            )
            .await?;
        }
        return Ok(Some(from));
    }
    Ok(None)
}
