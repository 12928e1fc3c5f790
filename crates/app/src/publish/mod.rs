//! Publishing to TikTok, end to end.
//!
//! - [`submit`] accepts a post for one account: checks the options against the creator's
//!   `creator_info` (privacy level one of theirs, interaction flags, duration), checks the
//!   quotas, stores the post and its target and enqueues a `tiktok.publish` job, all in one
//!   transaction. Media files are stored first with [`media::store`] (streamed to disk while
//!   hashed, content-addressed).
//! - [`job`]: `tiktok.publish` inits through a durable step (intent → call → outcome; a lost
//!   answer is reconciled, never re-sent), persists the `publish_id` first, then uploads the
//!   chunks streamed from the file, recording each acknowledged chunk so that a re-run resumes.
//! - [`status`]: `tiktok.poll_status` polls until a final state; every state change goes
//!   through [`TargetState::apply`], so nothing moves a target backwards.
//! - [`reconcile`]: `tiktok.reconcile` looks for a post whose init answer was lost among the
//!   creator's public videos; a person marks it published or, confirming, sends it again.
//! - [`limits`]: the shared rate limit and the quotas, kept in the database.
//! - [`webhooks`]: the inbound TikTok webhook, stored raw and deduplicated, applied by a job.

pub(crate) mod halt;
pub mod job;
pub mod limits;
pub mod media;
pub mod reconcile;
pub mod status;
pub mod webhooks;

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;
use tidepost_domain::publish::TargetState;
use tidepost_jobs::{NewJob, Registry, RetryPolicy, handler_fn};
use tidepost_providers::tiktok::{CreatorInfo, PrivacyLevel};
use tidepost_providers::{ErrorKind, ProviderError};
use tidepost_store::accounts::{self, Account};
use tidepost_store::posts::{self, Post, Target};
use tidepost_store::{StoreError, events};

use crate::App;
use crate::tokens::{self, TokenError};

pub const PUBLISH_JOB: &str = "tiktok.publish";
pub const POLL_JOB: &str = "tiktok.poll_status";
pub const WEBHOOK_JOB: &str = "tiktok.webhook";

/// Registers the publishing job kinds.
pub fn register(registry: Registry, app: &App) -> Registry {
    let publish_app = app.clone();
    let poll_app = app.clone();
    let webhook_app = app.clone();
    let reconcile_app = app.clone();
    registry
        .register_with(
            PUBLISH_JOB,
            RetryPolicy::new(
                job::MAX_ATTEMPTS,
                Duration::from_secs(5),
                Duration::from_secs(600),
            ),
            handler_fn(move |ctx, payload: TargetRef| {
                let app = publish_app.clone();
                async move { job::run(&app, &ctx, &payload).await }
            }),
        )
        .register_with(
            POLL_JOB,
            RetryPolicy::new(
                status::MAX_ATTEMPTS,
                Duration::from_secs(2),
                Duration::from_secs(300),
            ),
            handler_fn(move |ctx, payload: TargetRef| {
                let app = poll_app.clone();
                async move { status::run(&app, &ctx, &payload).await }
            }),
        )
        .register_with(
            reconcile::RECONCILE_JOB,
            RetryPolicy::new(
                reconcile::MAX_ATTEMPTS,
                Duration::from_secs(15),
                Duration::from_secs(300),
            ),
            handler_fn(move |ctx, payload: reconcile::ReconcileRef| {
                let app = reconcile_app.clone();
                async move { reconcile::run(&app, &ctx, &payload).await }
            }),
        )
        .register_with(
            WEBHOOK_JOB,
            RetryPolicy::new(10, Duration::from_secs(2), Duration::from_secs(600)),
            handler_fn(move |_ctx, payload: webhooks::EventRef| {
                let app = webhook_app.clone();
                async move { webhooks::apply(&app, &payload).await }
            }),
        )
}

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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Posted on the creator's profile.
    Direct,
    /// A draft in the creator's TikTok inbox, which they finish in the app.
    Inbox,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Direct => "direct",
            Mode::Inbox => "inbox",
        }
    }
}

/// The options of a post, as accepted and stored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PostOptions {
    pub caption: String,
    /// Required for direct posts; one of the creator's options. Never defaulted.
    pub privacy_level: Option<String>,
    pub disable_comment: bool,
    pub disable_duet: bool,
    pub disable_stitch: bool,
    pub video_cover_timestamp_ms: Option<u32>,
    pub brand_content_toggle: bool,
    pub brand_organic_toggle: bool,
    pub is_aigc: bool,
    /// The video's duration when the client knows it (checked against the creator's maximum).
    pub duration_sec: Option<u32>,
    /// Photo posts: which image is the cover.
    pub photo_cover_index: u32,
    /// Photo posts: the image URLs TikTok pulls.
    pub photo_urls: Vec<String>,
}

/// Where the media comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaSource {
    /// A stored media file (see [`media::store`]): FILE_UPLOAD.
    Stored(String),
    /// PULL_FROM_URL: TikTok downloads the video.
    VideoUrl(String),
    /// A photo post: TikTok pulls the images (URLs in the options).
    Photos,
}

#[derive(Debug, Clone)]
pub struct NewPost {
    pub account_id: String,
    pub mode: Mode,
    pub options: PostOptions,
    pub media: MediaSource,
    pub idempotency_key: Option<String>,
    pub created_by: Option<String>,
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
            other => PublishError::Unavailable(other.to_string()),
        }
    }
}

fn invalid(field: &'static str, message: impl Into<String>) -> PublishError {
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

/// The account the post goes to, checked: in this workspace, TikTok, connected.
pub async fn tiktok_account(
    app: &App,
    workspace_id: &str,
    account_id: &str,
) -> Result<Account, PublishError> {
    let account = accounts::get(&app.db, workspace_id, account_id)
        .await?
        .ok_or(PublishError::NotFound("account"))?;
    if account.platform != "tiktok" {
        return Err(invalid(
            "account_id",
            "this account is not a TikTok account",
        ));
    }
    if account.needs_reauth() {
        return Err(PublishError::NeedsReauth(
            account
                .status_reason
                .clone()
                .unwrap_or_else(|| "TikTok access was revoked".into()),
        ));
    }
    Ok(account)
}

/// The creator's current posting options (fetched each time the posting screen is shown).
pub async fn creator_info(app: &App, account: &Account) -> Result<CreatorInfo, PublishError> {
    let client = app
        .tiktok()
        .map_err(|e| PublishError::Unavailable(e.to_string()))?;
    Ok(tokens::with_token(app, account, |token| async move {
        client.creator_info(&token).await
    })
    .await?)
}

/// Checks `options` against the creator's info and the app's rules; may turn flags on that
/// the creator has disabled for good.
pub fn check_options(
    app: &App,
    mode: Mode,
    media: &MediaSource,
    options: &mut PostOptions,
    creator: Option<&CreatorInfo>,
) -> Result<(), PublishError> {
    if options.caption.encode_utf16().count() > 2200 {
        return Err(invalid(
            "caption",
            "the caption is longer than TikTok's 2200 characters",
        ));
    }
    if let MediaSource::VideoUrl(url) = media {
        check_media_url("media_url", url)?;
    }
    if *media == MediaSource::Photos {
        if options.photo_urls.is_empty() || options.photo_urls.len() > 35 {
            return Err(invalid(
                "photo_urls",
                "a photo post needs between 1 and 35 image URLs",
            ));
        }
        for url in &options.photo_urls {
            check_media_url("photo_urls", url)?;
        }
        if options.photo_cover_index as usize >= options.photo_urls.len() {
            return Err(invalid(
                "photo_cover_index",
                "the cover index must point at one of the photos",
            ));
        }
    }
    if mode == Mode::Inbox {
        return Ok(());
    }
    let Some(privacy) = options.privacy_level.as_deref().filter(|p| !p.is_empty()) else {
        return Err(invalid(
            "privacy_level",
            "choose who can see the post: TikTok requires the creator to pick a privacy level (there is no default)",
        ));
    };
    if let Some(creator) = creator {
        let allowed: Vec<&str> = creator
            .privacy_level_options
            .iter()
            .map(PrivacyLevel::as_str)
            .collect();
        if !allowed.contains(&privacy) {
            return Err(invalid(
                "privacy_level",
                format!(
                    "{privacy} is not one of this creator's privacy options ({})",
                    allowed.join(", ")
                ),
            ));
        }
        if creator.comment_disabled {
            options.disable_comment = true;
        }
        if creator.duet_disabled {
            options.disable_duet = true;
        }
        if creator.stitch_disabled {
            options.disable_stitch = true;
        }
        if let (Some(duration), max) = (options.duration_sec, creator.max_video_post_duration_sec)
            && max > 0
            && duration > max
        {
            return Err(invalid(
                "duration_sec",
                format!("the video lasts {duration} s but this creator may post at most {max} s"),
            ));
        }
    }
    if options.brand_content_toggle && privacy == "SELF_ONLY" {
        return Err(invalid(
            "brand_content_toggle",
            "branded content cannot be private (SELF_ONLY): choose another privacy level or turn branded content off",
        ));
    }
    if app.config.publish.tiktok_unaudited && privacy != "SELF_ONLY" {
        return Err(invalid(
            "privacy_level",
            "this TikTok app is not audited yet, so TikTok only accepts private posts (SELF_ONLY, \"only me\")",
        ));
    }
    Ok(())
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

/// Accepts a post: see the module docs.
pub async fn submit(app: &App, workspace_id: &str, new: NewPost) -> Result<PostView, PublishError> {
    if let Some(key) = &new.idempotency_key
        && let Some(post) = posts::by_idempotency_key(&app.db, workspace_id, key).await?
    {
        let targets = posts::targets_of(&app.db, workspace_id, &post.id).await?;
        return Ok(PostView { post, targets });
    }
    let account = tiktok_account(app, workspace_id, &new.account_id).await?;
    let prepared = prepare(
        app,
        workspace_id,
        account,
        new.mode,
        &new.media,
        new.options,
    )
    .await?;
    limits::check_quotas(
        app,
        &prepared.account,
        new.mode,
        None,
        tidepost_domain::now_ms(),
    )
    .await?;
    let now = tidepost_domain::now_ms();
    let limit = crate::compose::limit_now(app, &prepared, now).await;
    let post = prepared.post(
        workspace_id,
        new.idempotency_key.clone(),
        new.created_by.clone(),
        now,
    );
    let target = new_target(
        &post,
        &prepared.account,
        &prepared.mode,
        &prepared.source,
        prepared.bytes_total,
    );
    store_and_enqueue(app, post, target, Some((&prepared.account, &limit))).await
}

/// One target checked and ready to store: what its post row and its target row hold. Made by
/// [`prepare`] (TikTok) and `instagram::publish::prepare`, shared by the single-target submits
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

impl Prepared {
    /// The post row of a single-target post made of this target.
    pub(crate) fn post(
        &self,
        workspace_id: &str,
        idempotency_key: Option<String>,
        created_by: Option<String>,
        now: i64,
    ) -> Post {
        Post {
            id: tidepost_domain::new_id(),
            workspace_id: workspace_id.to_string(),
            caption: self.caption.clone(),
            kind: self.kind.clone(),
            media_id: self.media_id.clone(),
            media_url: self.media_url.clone(),
            options: self.options.clone(),
            idempotency_key,
            created_by,
            created_at: now,
            updated_at: now,
            scheduled_at: None,
            time_zone: None,
        }
    }
}

/// Checks a TikTok target without storing anything: the media (stored media must be a video),
/// the creator's current options for a direct post (`creator_info`, a call to TikTok), and the
/// options against them and the app's rules ([`check_options`]). The quotas are the caller's.
pub async fn prepare(
    app: &App,
    workspace_id: &str,
    account: Account,
    mode: Mode,
    media: &MediaSource,
    mut options: PostOptions,
) -> Result<Prepared, PublishError> {
    let (kind, media_id, media_url, source, bytes_total) = match media {
        MediaSource::Stored(id) => {
            let media = tidepost_store::media::get(&app.db, workspace_id, id)
                .await?
                .ok_or(PublishError::NotFound("media"))?;
            if media.kind != "video" {
                return Err(invalid(
                    "media",
                    "TikTok takes uploaded files for videos only; photos must be given as URLs under a verified domain",
                ));
            }
            (
                "video",
                Some(media.id.clone()),
                None,
                "file_upload",
                media.size_bytes,
            )
        }
        MediaSource::VideoUrl(url) => ("video", None, Some(url.clone()), "pull_from_url", 0),
        MediaSource::Photos => ("photo", None, None, "pull_from_url", 0),
    };
    // Before anything is asked of TikTok: a refused URL costs no call.
    if let Some(url) = &media_url {
        guard_media_urls(app, "media_url", &[url]).await?;
    }
    // More than 35 photos is refused below without looking at them.
    if *media == MediaSource::Photos && options.photo_urls.len() <= 35 {
        let urls: Vec<&str> = options.photo_urls.iter().map(String::as_str).collect();
        guard_media_urls(app, "photo_urls", &urls).await?;
    }
    let creator = if mode == Mode::Direct {
        Some(creator_info(app, &account).await?)
    } else {
        None
    };
    check_options(app, mode, media, &mut options, creator.as_ref())?;
    Ok(Prepared {
        account,
        kind: kind.into(),
        mode: mode.as_str().into(),
        source: source.into(),
        bytes_total,
        media_id,
        media_url,
        caption: options.caption.clone(),
        options: serde_json::to_string(&options).unwrap_or_else(|_| "{}".into()),
    })
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
        platform: account.platform.clone(),
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
    }
}

/// Stores the post and its target and enqueues the target's publish job, in one transaction,
/// after admitting it under `limit` there (the account's daily limit, checked under its lock
/// with everything already waiting counted: see [`crate::compose::admit_now_in`]).
pub(crate) async fn store_and_enqueue(
    app: &App,
    post: Post,
    target: Target,
    limit: Option<(&Account, &crate::compose::LimitCheck)>,
) -> Result<PostView, PublishError> {
    let mut tx = app.db.begin_write().await?;
    if let Some((account, limit)) = limit {
        crate::compose::admit_now_in(&mut tx, app, account, limit).await?;
    }
    posts::insert_post_in(&mut tx, &post).await?;
    posts::insert_target_in(&mut tx, &target).await?;
    app.queue
        .enqueue_in(&mut tx, publish_job(&target, post.created_at))
        .await
        .map_err(|e| PublishError::Unavailable(e.to_string()))?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(PostView {
        post,
        targets: vec![target],
    })
}

/// The publish job of `target` on its platform, due at `run_at`.
pub(crate) fn publish_job(target: &Target, run_at: i64) -> NewJob {
    if target.platform == crate::instagram::PLATFORM {
        return crate::instagram::publish::publish_job(target, run_at);
    }
    NewJob::new(
        PUBLISH_JOB,
        &TargetRef {
            workspace_id: target.workspace_id.clone(),
            target_id: target.id.clone(),
            due_at: target.scheduled_at,
        },
    )
    .workspace(&target.workspace_id)
    .idempotency_key(format!(
        "{PUBLISH_JOB}:{}:{}",
        target.id, target.init_generation
    ))
    .run_at(run_at)
}

pub async fn get(app: &App, workspace_id: &str, post_id: &str) -> Result<PostView, PublishError> {
    let post = posts::get(&app.db, workspace_id, post_id)
        .await?
        .ok_or(PublishError::NotFound("post"))?;
    let targets = posts::targets_of(&app.db, workspace_id, post_id).await?;
    Ok(PostView { post, targets })
}

/// Cancels every target of the post that has not reached TikTok yet.
pub async fn cancel(
    app: &App,
    workspace_id: &str,
    post_id: &str,
) -> Result<PostView, PublishError> {
    let view = get(app, workspace_id, post_id).await?;
    let mut cancelled = 0;
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
            cancelled += 1;
        }
    }
    if cancelled == 0 {
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
    if reconcile::is_unknown(&target) {
        return Err(PublishError::Conflict(
            "TikTok may already have this post (its outcome is unknown): check the creator's profile, then mark it published or send it again with confirmation".into(),
        ));
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
        .enqueue(publish_job(&fresh, now))
        .await
        .map_err(|e| PublishError::Unavailable(e.to_string()))?;
    get(app, workspace_id, post_id).await
}

/// Moves a target to `to` if the state machine allows it (compare-and-set, retried when
/// another updater got there first). Returns the state it moved from, or `None` when the
/// update was refused (backwards, repeated or already final). Records `post.published` and
/// `post.failed` on the move into those states.
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
        if !posts::set_state(
            &app.db,
            workspace_id,
            target_id,
            from.as_str(),
            to.as_str(),
            to.is_final(),
            now,
        )
        .await?
        {
            continue;
        }
        if let Some(err) = error {
            let retryable = err.is_retryable() || err.kind == ErrorKind::OutcomeUnknown;
            posts::set_error(
                &app.db,
                workspace_id,
                target_id,
                Some(&err.code),
                Some(&err.message),
                retryable,
                now,
            )
            .await?;
        }
        if from != to && matches!(to, TargetState::Published | TargetState::Failed) {
            let target = posts::target(&app.db, workspace_id, target_id)
                .await?
                .unwrap_or(target);
            let kind = if to == TargetState::Published {
                "post.published"
            } else {
                "post.failed"
            };
            events::record(
                &app.db,
                workspace_id,
                kind,
                Some(&target.post_id),
                &json!({
                    "post_id": target.post_id,
                    "target_id": target.id,
                    "account_id": target.account_id,
                    "platform": target.platform,
                    "mode": target.mode,
                    "publish_id": target.publish_id,
                    "post_ids": target.post_ids(),
                    "error": error.map(|e| json!({"code": e.code, "message": e.message})),
                }),
            )
            .await?;
        }
        return Ok(Some(from));
    }
    Ok(None)
}

/// An error of ours, in the provider error shape the targets store.
pub(crate) fn local_error(
    code: &str,
    message: impl Into<String>,
    kind: ErrorKind,
) -> ProviderError {
    halt::error_on(tidepost_domain::Platform::Tiktok, code, message, kind)
}
