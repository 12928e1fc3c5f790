//! One post to several accounts, now or at a scheduled time.
//!
//! A composite post has one caption and one media set ([`NewComposite`]) and a target per
//! account ([`TargetSpec`]), each with its own overrides (caption; TikTok mode, privacy and
//! interaction options; Instagram media type, reel cover). Every target is checked by its
//! platform's own checks (`publish::prepare` for TikTok, `instagram::prepare::prepare` for
//! Instagram — the same code as a single-account post) and then runs its platform's own job
//! (`tiktok.publish`, `instagram.publish`), one job per target, with its own state machine; the
//! post's state is [`PostSummary::of`] its targets.
//!
//! - [`validate`] checks everything before anything is stored and returns **every** problem at
//!   once ([`Issue`]: the target's index, account and platform, the field, the rule and a
//!   message). [`submit`] stores the post only when there is none: all or nothing.
//! - Scheduling: the targets' jobs are enqueued with `run_at` (durable: it is the job queue). A
//!   time that would break a creator's TikTok daily cap or Instagram's 24-hour publishing
//!   limit — counting the posts already scheduled — is refused with the next free slot
//!   ([`Issue::next_slot_ms`]); [`Schedule::next_free_slot`] takes that slot instead. The
//!   limit is checked again under the account's lock in the transaction that stores the post
//!   (`recheck_in`), so concurrent requests for an account's last slot get it once.
//! - [`update`] changes the caption or the time of a post that has not started (409 after);
//!   cancelling and retrying one failed target are `publish::cancel` and `publish::retry`.
//!
//! These functions are what the API (`/api/v1/posts`) and the UI call.

pub mod schedule;
mod single;

use serde::{Deserialize, Serialize};
use tidepost_domain::Platform;
use tidepost_domain::publish::{PostSummary, TargetState};
use tidepost_store::StoreError;
use tidepost_store::accounts::{self, Account};
use tidepost_store::posts::{self, Post, PostFilter};

use crate::App;
use crate::pipeline::media::{Item, ItemKind, extension, kind_of_extension};
use crate::pipeline::quota::{self, LimitCheck};
use crate::pipeline::{PostView, Prepared, PublishError, new_target};
use crate::platforms::publish_job;

pub use crate::pipeline::spec::{TargetInput, TargetSpec};
pub use crate::platforms::instagram::options::InstagramOptions;
pub use crate::platforms::tiktok::TikTokOptions;
pub use crate::platforms::tiktok::creator_cache::creator_info;
pub use schedule::When;

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

/// One problem with a composite post.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Issue {
    /// The index of the target in the request; `None` for the post as a whole.
    pub target: Option<usize>,
    pub account_id: Option<String>,
    pub platform: Option<Platform>,
    /// The field at fault, as the API names it (`targets[1].tiktok.privacy_level`,
    /// `scheduled_at`, `media`).
    pub field: String,
    /// A stable name of the rule (`required`, `not_found`, `duplicate`, `wrong_platform`,
    /// `needs_reauth`, `quota`, `in_past`, or the platform check's field such as
    /// `privacy_level`, `caption`, `items`).
    pub rule: String,
    pub message: String,
    /// For a `quota` refusal: when the next slot opens (ms since the epoch).
    pub next_slot_ms: Option<i64>,
    /// For a `provider` refusal: the platform's error code and whether trying again may work.
    pub provider: Option<ProviderRefusal>,
}

/// What a platform said when it refused a check (an `Issue` of rule `provider`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ProviderRefusal {
    pub code: String,
    pub retryable: bool,
}

impl std::fmt::Display for Issue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.account_id, &self.platform) {
            (Some(account), Some(platform)) => {
                write!(f, "{platform} account {account}: ")?;
            }
            (Some(account), None) => write!(f, "account {account}: ")?,
            _ => {}
        }
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Why a composite post or a change to it was refused.
#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    /// Every problem found, at once.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<Issue>),
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The post has started (or finished): it can no longer be changed.
    #[error("{0}")]
    Conflict(String),
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
}

fn issue(
    target: Option<(usize, &TargetSpec, Option<Platform>)>,
    field: impl Into<String>,
    rule: &str,
    message: impl Into<String>,
) -> Issue {
    Issue {
        target: target.map(|t| t.0),
        account_id: target.map(|t| t.1.account_id.clone()),
        platform: target.and_then(|t| t.2),
        field: field.into(),
        rule: rule.into(),
        message: message.into(),
        next_slot_ms: None,
        provider: None,
    }
}

/// The issue a platform check's refusal makes, its field under the target.
fn issue_of(index: usize, spec: &TargetSpec, platform: Platform, err: PublishError) -> Issue {
    let at = Some((index, spec, Some(platform)));
    let base = format!("targets[{index}]");
    // A platform's options are under its name (`targets[0].tiktok.privacy_level`).
    let section = platform.as_str();
    match err {
        PublishError::Invalid { field, message } => {
            let path = match field {
                "caption" => format!("{base}.caption"),
                "media" | "media_url" | "photo_urls" | "items" => "media".to_string(),
                "account_id" => format!("{base}.account_id"),
                other => format!("{base}.{section}.{other}"),
            };
            issue(at, path, field, message)
        }
        PublishError::NotFound(what) => issue(
            at,
            if what == "media" {
                "media".to_string()
            } else {
                format!("{base}.account_id")
            },
            "not_found",
            format!("{what} not found"),
        ),
        PublishError::NeedsReauth(message) => issue(
            at,
            format!("{base}.account_id"),
            "needs_reauth",
            format!("the account must be connected again: {message}"),
        ),
        PublishError::Quota {
            message,
            next_slot_ms,
        } => Issue {
            next_slot_ms: Some(next_slot_ms),
            ..issue(at, "scheduled_at", "quota", message)
        },
        PublishError::Provider(e) => Issue {
            provider: Some(ProviderRefusal {
                code: e.code.clone(),
                retryable: e.is_retryable(),
            }),
            ..issue(
                at,
                format!("{base}.account_id"),
                "provider",
                format!("the provider refused: {}", e.message),
            )
        },
        other @ (PublishError::Conflict(_)
        | PublishError::Unavailable(_)
        | PublishError::Store(_)
        | PublishError::Io(_)
        | PublishError::TooLarge { .. }) => issue(at, base, "unavailable", other.to_string()),
    }
}

/// The kind of a media item: given, or the stored media's, or the URL's extension.
async fn item_kind(
    app: &App,
    workspace_id: &str,
    item: &Item,
) -> Result<Option<ItemKind>, StoreError> {
    if let Some(kind) = item.kind {
        return Ok(Some(kind));
    }
    if let Some(id) = &item.media_id {
        return Ok(tidepost_store::media::get(&app.db, workspace_id, id)
            .await?
            .map(|m| {
                if m.kind == "video" {
                    ItemKind::Video
                } else {
                    ItemKind::Image
                }
            }));
    }
    Ok(item
        .url
        .as_deref()
        .and_then(extension)
        .as_deref()
        .and_then(kind_of_extension))
}

/// The media library's per-platform rules (`media::rules::check`) for each uploaded item that
/// was probed (container, codecs, duration, size, dimensions), as issues of this target: every
/// broken rule of every item, each named (`tiktok.video.duration`, `instagram.reel.codec`, …).
async fn media_rules(
    app: &App,
    workspace_id: &str,
    media: &[Item],
    index: usize,
    spec: &TargetSpec,
    prepared: &Prepared,
) -> Result<Vec<Issue>, StoreError> {
    let platform = prepared.account.platform;
    let Some(target) = crate::platforms::media_target(prepared) else {
        return Ok(Vec::new());
    };
    let mut issues = Vec::new();
    for (n, item) in media.iter().enumerate() {
        let Some(id) = &item.media_id else { continue };
        let Some(stored) = tidepost_store::media::get(&app.db, workspace_id, id).await? else {
            continue;
        };
        for v in crate::pipeline::media::check(app, &stored, target).await {
            issues.push(issue(
                Some((index, spec, Some(platform))),
                format!("media[{n}]"),
                v.rule,
                v.message,
            ));
        }
    }
    Ok(issues)
}

/// Checks the target `spec` (index `index`) with its platform's checks.
async fn prepare_target(
    app: &App,
    workspace_id: &str,
    new: &NewComposite,
    kinds: &[Option<ItemKind>],
    index: usize,
    spec: &TargetSpec,
    account: Account,
) -> Result<Prepared, Issue> {
    let platform = account.platform;
    let at = Some((index, spec, Some(platform)));
    if let Some(other) = spec.option_platforms().into_iter().find(|p| *p != platform) {
        return Err(issue(
            at,
            format!("targets[{index}].{other}"),
            "wrong_platform",
            format!(
                "this is a {} account: {} options do not apply (use `{platform}`)",
                platform.display_name(),
                other.display_name()
            ),
        ));
    }
    let input = TargetInput {
        caption: spec.caption.as_deref().unwrap_or(&new.caption),
        media: &new.media,
        kinds,
        spec,
    };
    crate::platforms::prepare_target(app, workspace_id, account, &input)
        .await
        .map_err(|e| issue_of(index, spec, platform, e))
}

/// The `quota` issue of a target refused at `at` by its limit, naming the next free slot.
fn quota_issue(
    index: usize,
    spec: &TargetSpec,
    platform: Platform,
    limit: &LimitCheck,
    next: Option<i64>,
) -> Issue {
    let at = Some((index, spec, Some(platform)));
    let message = &limit.message;
    match next {
        Some(slot) => Issue {
            next_slot_ms: Some(slot),
            ..issue(
                at,
                "scheduled_at",
                "quota",
                format!(
                    "{message} at {}; the next free slot is {}",
                    tidepost_domain::time::rfc3339(limit.at),
                    tidepost_domain::time::rfc3339(slot)
                ),
            )
        },
        None => issue(
            at,
            "scheduled_at",
            "quota",
            format!("{message}: the limit is 0, nothing can be posted"),
        ),
    }
}

/// Places one target in time: `at` (or now) if its daily limit allows one more post there,
/// counting what is already posted and scheduled; else the next free slot when `next_free`,
/// else a `quota` issue naming that slot. Read without a lock: [`store`] checks again under
/// the account's lock ([`recheck_in`]) before anything is written.
async fn place(
    app: &App,
    index: usize,
    spec: &TargetSpec,
    prepared: &Prepared,
    at: i64,
    next_free: bool,
    except_post: Option<&str>,
) -> Result<(i64, LimitCheck), Issue> {
    let limit = LimitCheck::new(
        crate::platforms::daily_limit(app, prepared).await,
        at,
        next_free,
    );
    let platform = prepared.account.platform;
    let events = async {
        let mut conn = app.db.pool().acquire().await.map_err(StoreError::from)?;
        limit
            .events_in(&mut conn, &prepared.account.id, except_post)
            .await
    }
    .await
    .map_err(|e| {
        issue(
            Some((index, spec, Some(platform))),
            "scheduled_at",
            "unavailable",
            e.to_string(),
        )
    })?;
    match quota::decide(&events, at, limit.cap, next_free) {
        Ok(slot) => Ok((slot, limit)),
        Err(next) => Err(quota_issue(index, spec, platform, &limit, next)),
    }
}

/// Checks the limits of `targets` again inside the write transaction `conn`, each under its
/// account's lock (taken in one order, so two posts to the same accounts cannot deadlock), and
/// moves a `next_free` target to the slot that is free now. Every refusal at once. What
/// [`validate`] read took no lock: two requests could both have seen the last free slot, and
/// only the first to get here keeps it.
///
/// On SQLite the write transaction is already exclusive (`BEGIN IMMEDIATE`); on PostgreSQL the
/// lock is a row of `rate_locks` held `FOR UPDATE` until commit (`store::limits::lock_in`):
/// the mechanism the TikTok quotas already use at send time, so both paths share one lock per
/// account and no other table's rows are locked.
async fn recheck_in(
    conn: &mut sqlx::AnyConnection,
    app: &App,
    targets: &mut [PlannedTarget],
    except_post: Option<&str>,
) -> Result<(), ComposeError> {
    let mut keys: Vec<String> = targets
        .iter()
        .filter(|t| t.limit.is_some())
        .map(|t| quota::lock_key(&t.prepared.account))
        .collect();
    keys.sort_unstable();
    keys.dedup();
    for key in &keys {
        tidepost_store::limits::lock_in(conn, app.db.dialect(), key).await?;
    }
    let mut issues = Vec::new();
    for target in targets.iter_mut() {
        let Some(limit) = &target.limit else { continue };
        let events = limit
            .events_in(conn, &target.prepared.account.id, except_post)
            .await?;
        match quota::decide(&events, limit.at, limit.cap, limit.next_free) {
            Ok(slot) if slot == limit.at => {}
            Ok(slot) => target.run_at = Some(slot),
            Err(next) => issues.push(quota_issue(
                target.index,
                &target.spec,
                target.prepared.account.platform,
                limit,
                next,
            )),
        }
    }
    if issues.is_empty() {
        Ok(())
    } else {
        Err(ComposeError::Invalid(issues))
    }
}

/// Checks a composite post before anything is stored: the post (targets, media, time), then
/// each target with its platform's checks and its daily limit at its time. Returns every
/// problem at once (`ComposeError::Invalid`), or the plan [`store`] writes.
pub async fn validate(
    app: &App,
    workspace_id: &str,
    new: &NewComposite,
) -> Result<Plan, ComposeError> {
    validate_except(app, workspace_id, new, None, true).await
}

/// [`validate`], leaving out `except_post`'s own targets from the limits (a post being
/// changed); without `check_time` the time and the limits are not looked at (only the caption
/// changes) and every target's `run_at` is `None`.
async fn validate_except(
    app: &App,
    workspace_id: &str,
    new: &NewComposite,
    except_post: Option<&str>,
    check_time: bool,
) -> Result<Plan, ComposeError> {
    let mut issues = Vec::new();
    let now = tidepost_domain::now_ms();
    if new.targets.is_empty() {
        issues.push(issue(
            None,
            "targets",
            "required",
            "choose at least one account to post to",
        ));
    }
    if new.targets.len() > MAX_TARGETS {
        issues.push(issue(
            None,
            "targets",
            "too_many",
            format!(
                "a post goes to at most {MAX_TARGETS} accounts ({} given)",
                new.targets.len()
            ),
        ));
    }
    if new.media.is_empty() {
        issues.push(issue(
            None,
            "media",
            "required",
            "add the media: a video, or images (each a url or the media_id of an upload)",
        ));
    }
    if check_time
        && let Some(when) = &new.schedule.at
        && when.at_ms < now - PAST_TOLERANCE_MS
    {
        issues.push(issue(
            None,
            "scheduled_at",
            "in_past",
            format!(
                "{} is in the past; leave scheduled_at out to post now",
                tidepost_domain::time::rfc3339(when.at_ms)
            ),
        ));
    }
    let mut kinds = Vec::with_capacity(new.media.len());
    for item in &new.media {
        kinds.push(item_kind(app, workspace_id, item).await?);
    }
    let at = new.schedule.at.as_ref().map_or(now, |w| w.at_ms.max(now));
    let mut planned = Vec::with_capacity(new.targets.len());
    let mut seen = std::collections::HashSet::new();
    for (index, spec) in new.targets.iter().enumerate() {
        let field = format!("targets[{index}].account_id");
        if spec.account_id.trim().is_empty() {
            issues.push(issue(
                Some((index, spec, None)),
                field,
                "required",
                "choose the account",
            ));
            continue;
        }
        if !seen.insert(spec.account_id.clone()) {
            issues.push(issue(
                Some((index, spec, None)),
                field,
                "duplicate",
                "this account is already a target of the post",
            ));
            continue;
        }
        let Some(account) = accounts::get(&app.db, workspace_id, &spec.account_id).await? else {
            issues.push(issue(
                Some((index, spec, None)),
                field,
                "not_found",
                "no such account in this workspace",
            ));
            continue;
        };
        let platform = account.platform;
        if account.needs_reauth() {
            issues.push(issue(
                Some((index, spec, Some(platform))),
                field,
                "needs_reauth",
                format!(
                    "the account must be connected again: {}",
                    account
                        .status_reason
                        .as_deref()
                        .unwrap_or("access was revoked")
                ),
            ));
            continue;
        }
        if new.media.is_empty() {
            continue;
        }
        let prepared =
            match prepare_target(app, workspace_id, new, &kinds, index, spec, account).await {
                Ok(prepared) => prepared,
                Err(problem) => {
                    issues.push(problem);
                    continue;
                }
            };
        let violations = media_rules(app, workspace_id, &new.media, index, spec, &prepared).await?;
        if !violations.is_empty() {
            issues.extend(violations);
            continue;
        }
        if !check_time {
            planned.push(PlannedTarget {
                index,
                spec: spec.clone(),
                prepared,
                run_at: None,
                limit: None,
            });
            continue;
        }
        let (run_at, limit) = match place(
            app,
            index,
            spec,
            &prepared,
            at,
            new.schedule.next_free_slot,
            except_post,
        )
        .await
        {
            Ok(placed) => placed,
            Err(problem) => {
                issues.push(problem);
                continue;
            }
        };
        // Sent now: the platform's own count (posts from other apps too) must allow one more.
        if run_at == now
            && new.schedule.at.is_none()
            && let Err(err) = crate::platforms::admit_now(app, &prepared, now).await
        {
            issues.push(issue_of(index, spec, platform, err));
            continue;
        }
        planned.push(PlannedTarget {
            index,
            spec: spec.clone(),
            prepared,
            run_at: (new.schedule.at.is_some() || run_at != now).then_some(run_at),
            limit: Some(limit),
        });
    }
    if !issues.is_empty() {
        return Err(ComposeError::Invalid(issues));
    }
    Ok(Plan {
        targets: planned,
        at: new.schedule.at.clone(),
    })
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

/// Writes a validated post: see [`submit`].
pub async fn store(
    app: &App,
    workspace_id: &str,
    new: &NewComposite,
    mut plan: Plan,
) -> Result<PostView, ComposeError> {
    let now = tidepost_domain::now_ms();
    let first = &plan
        .targets
        .first()
        .ok_or_else(|| ComposeError::Conflict("a post needs at least one target".into()))?
        .prepared;
    let stored = StoredComposite {
        composite: true,
        caption: new.caption.clone(),
        media: new.media.clone(),
        targets: new.targets.clone(),
    };
    let post = Post {
        id: tidepost_domain::new_id(),
        workspace_id: workspace_id.to_string(),
        caption: new.caption.clone(),
        kind: first.kind.clone(),
        media_id: new.media.iter().find_map(|i| i.media_id.clone()),
        media_url: new.media.iter().find_map(|i| i.url.clone()),
        options: serde_json::to_string(&stored).unwrap_or_else(|_| "{}".into()),
        idempotency_key: new.idempotency_key.clone(),
        created_by: new.created_by.clone(),
        created_at: now,
        updated_at: now,
        scheduled_at: plan.at.as_ref().map(|w| w.at_ms),
        time_zone: plan.at.as_ref().and_then(|w| w.time_zone.clone()),
    };
    let mut targets = Vec::with_capacity(plan.targets.len());
    let mut tx = app.db.begin_write().await?;
    // The limits again, under the accounts' locks: the check and the insert are one step.
    recheck_in(&mut tx, app, &mut plan.targets, None).await?;
    posts::insert_post_in(&mut tx, &post).await?;
    for planned in &plan.targets {
        let p = &planned.prepared;
        let mut target = new_target(&post, &p.account, &p.mode, &p.source, p.bytes_total);
        target.options = Some(p.options.clone());
        target.scheduled_at = planned.run_at;
        if planned.run_at.is_some() {
            target.state = TargetState::Scheduled.as_str().into();
        }
        posts::insert_target_in(&mut tx, &target).await?;
        app.queue
            .enqueue_in(&mut tx, publish_job(&target, planned.run_at.unwrap_or(now)))
            .await
            .map_err(|e| ComposeError::Unavailable(e.to_string()))?;
        targets.push(target);
    }
    tx.commit().await.map_err(StoreError::from)?;
    Ok(PostView { post, targets })
}

/// A change to a post that has not started.
#[derive(Debug, Clone, Default)]
pub struct Update {
    /// The new shared caption (targets with their own caption keep it).
    pub caption: Option<String>,
    /// `Some(schedule)`: the new time (`schedule.at == None`: now).
    pub schedule: Option<Schedule>,
}

/// Changes the caption or the time of a post none of whose targets has started (each is
/// queued, scheduled or cancelled): the whole post is checked again as when it was created
/// (its limits without its own targets), then the targets move to their new times with new
/// jobs; the jobs of the old times find the time changed and do nothing. `Conflict` once a
/// target has started. A post made for one account (not by [`submit`]) is changed the same
/// way, read back as the one-target post it is ([`single_as_composite`]).
pub async fn update(
    app: &App,
    workspace_id: &str,
    post_id: &str,
    change: Update,
) -> Result<PostView, ComposeError> {
    let view = crate::pipeline::get(app, workspace_id, post_id).await?;
    let started = view.targets.iter().any(|t| {
        !matches!(
            TargetState::parse(&t.state),
            Some(TargetState::Queued | TargetState::Scheduled | TargetState::Cancelled)
        )
    });
    if started {
        return Err(ComposeError::Conflict(
            "the post has started: a post can be changed only before any of its targets is sent (cancel or retry targets instead)".into(),
        ));
    }
    let live: Vec<&posts::Target> = view
        .targets
        .iter()
        .filter(|t| t.state != TargetState::Cancelled.as_str())
        .collect();
    if live.is_empty() {
        return Err(ComposeError::Conflict("the post was cancelled".into()));
    }
    let (stored, composite) = match serde_json::from_str::<StoredComposite>(&view.post.options)
        .ok()
        .filter(|s| s.composite)
    {
        Some(stored) => (stored, true),
        None => (single_as_composite(&view)?, false),
    };
    let schedule = change.schedule.clone().unwrap_or_else(|| Schedule {
        at: view.post.scheduled_at.map(|at_ms| When {
            at_ms,
            time_zone: view.post.time_zone.clone(),
        }),
        next_free_slot: false,
    });
    let new = NewComposite {
        caption: change.caption.clone().unwrap_or(stored.caption.clone()),
        media: stored.media.clone(),
        targets: stored
            .targets
            .iter()
            .filter(|spec| live.iter().any(|t| t.account_id == spec.account_id))
            .cloned()
            .collect(),
        schedule,
        ..NewComposite::default()
    };
    // Only the caption changes: the targets keep their times and their places in the limits.
    let check_time = change.schedule.is_some();
    let mut plan = validate_except(app, workspace_id, &new, Some(post_id), check_time).await?;
    let now = tidepost_domain::now_ms();
    let mut tx = app.db.begin_write().await?;
    recheck_in(&mut tx, app, &mut plan.targets, Some(post_id)).await?;
    if change.caption.is_some() {
        // A single-account post keeps its options as its one target's, as it was made.
        let options = match plan.targets.first() {
            Some(only) if !composite => only.prepared.options.clone(),
            _ => serde_json::to_string(&StoredComposite {
                caption: new.caption.clone(),
                ..stored
            })
            .unwrap_or_else(|_| "{}".into()),
        };
        posts::set_caption_in(&mut tx, workspace_id, post_id, &new.caption, &options, now).await?;
    }
    if change.schedule.is_some() {
        posts::set_schedule_in(
            &mut tx,
            workspace_id,
            post_id,
            plan.at.as_ref().map(|w| w.at_ms),
            plan.at.as_ref().and_then(|w| w.time_zone.as_deref()),
            now,
        )
        .await?;
    }
    for planned in &plan.targets {
        let Some(target) = live
            .iter()
            .find(|t| t.account_id == planned.prepared.account.id)
        else {
            continue;
        };
        if !posts::set_target_options_in(
            &mut tx,
            workspace_id,
            &target.id,
            &planned.prepared.options,
            now,
        )
        .await?
        {
            return Err(ComposeError::Conflict(
                "a target started meanwhile; reload the post".into(),
            ));
        }
        if change.schedule.is_none() {
            continue;
        }
        let state = if planned.run_at.is_some() {
            TargetState::Scheduled
        } else {
            TargetState::Queued
        };
        if !posts::set_target_schedule_in(
            &mut tx,
            workspace_id,
            &target.id,
            planned.run_at,
            state.as_str(),
            now,
        )
        .await?
        {
            return Err(ComposeError::Conflict(
                "a target started meanwhile; reload the post".into(),
            ));
        }
        let mut moved = (*target).clone();
        moved.scheduled_at = planned.run_at;
        // A fresh key: the job of the old time stays in the queue and stops when it runs.
        let job = publish_job(&moved, planned.run_at.unwrap_or(now)).idempotency_key(format!(
            "{}:{}:{}:at:{}",
            crate::platforms::publish_job_kind(moved.platform),
            moved.id,
            moved.init_generation,
            tidepost_domain::new_id()
        ));
        app.queue
            .enqueue_in(&mut tx, job)
            .await
            .map_err(|e| ComposeError::Unavailable(e.to_string()))?;
    }
    tx.commit().await.map_err(StoreError::from)?;
    Ok(crate::pipeline::get(app, workspace_id, post_id).await?)
}

/// A post made for one account (`POST /posts` without `targets` or a schedule, or the
/// single-account forms) as the composite post it is the same as: its media, its caption and
/// its one target's options, read back from what it stored (`publish::PostOptions` for
/// TikTok, an `InstagramPost` for Instagram), so [`update`] checks and changes it like any
/// other post.
fn single_as_composite(view: &PostView) -> Result<StoredComposite, ComposeError> {
    let unreadable = || {
        ComposeError::Conflict(
            "this post's options cannot be read back to change it; cancel it and post again".into(),
        )
    };
    let [target] = view.targets.as_slice() else {
        return Err(unreadable());
    };
    let (caption, media, spec) =
        crate::platforms::single_as_spec(&view.post, target).ok_or_else(unreadable)?;
    Ok(StoredComposite {
        composite: false,
        caption,
        media,
        targets: vec![spec],
    })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::quota::decide;
    use crate::platforms::instagram::options::{InstagramPost, MediaType};
    use crate::platforms::tiktok::{Mode, PostOptions};

    fn account(platform: &str) -> Account {
        Account {
            id: "acc".into(),
            workspace_id: "ws".into(),
            platform: platform.parse().expect("a platform name"),
            provider_user_id: "user".into(),
            display_name: "Creator".into(),
            username: None,
            avatar_url: None,
            status: "active".into(),
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

    /// A single-account post as `publish::submit` stores it: its target's options are the post's.
    fn single(
        platform: &str,
        mode: &str,
        kind: &str,
        media: (Option<&str>, Option<&str>),
        options: String,
    ) -> PostView {
        let post = Post {
            id: "post".into(),
            workspace_id: "ws".into(),
            caption: "words".into(),
            kind: kind.into(),
            media_id: media.0.map(str::to_string),
            media_url: media.1.map(str::to_string),
            options,
            idempotency_key: None,
            created_by: None,
            created_at: 0,
            updated_at: 0,
            scheduled_at: None,
            time_zone: None,
        };
        let target = new_target(&post, &account(platform), mode, "pull_from_url", 0);
        PostView {
            post,
            targets: vec![target],
        }
    }

    #[test]
    fn single_posts_read_back_as_one_target() {
        // A TikTok photo post: its images from the options, its mode from the target.
        // As stored before the options had their own type: one flat object, which the flattened
        // `PostOptions` reads the same way.
        let options = serde_json::json!({
            "caption": "words",
            "privacy_level": "SELF_ONLY",
            "disable_comment": true,
            "disable_duet": false,
            "photo_cover_index": 1,
            "photo_urls": ["https://m.example/a.jpg", "https://m.example/b.jpg"],
        });
        let view = single(
            "tiktok",
            "direct",
            "photo",
            (None, None),
            options.to_string(),
        );
        let stored = single_as_composite(&view).unwrap();
        assert_eq!(stored.caption, "words");
        assert_eq!(stored.media.len(), 2);
        assert!(stored.media.iter().all(|i| i.kind == Some(ItemKind::Image)));
        assert_eq!(
            stored.media[1].url.as_deref(),
            Some("https://m.example/b.jpg")
        );
        let tiktok = stored.targets[0].tiktok.clone().unwrap();
        assert_eq!(tiktok.mode, Some(Mode::Direct));
        assert_eq!(tiktok.privacy_level.as_deref(), Some("SELF_ONLY"));
        assert!(tiktok.disable_comment);
        assert_eq!(tiktok.photo_cover_index, 1);
        assert_eq!(stored.targets[0].account_id, "acc");

        // A stored video sent to the inbox.
        let view = single(
            "tiktok",
            "inbox",
            "video",
            (Some("media-1"), None),
            serde_json::to_string(&PostOptions::default()).unwrap(),
        );
        let stored = single_as_composite(&view).unwrap();
        assert_eq!(stored.media.len(), 1);
        assert_eq!(stored.media[0].media_id.as_deref(), Some("media-1"));
        assert_eq!(stored.media[0].kind, Some(ItemKind::Video));
        assert_eq!(
            stored.targets[0].tiktok.as_ref().unwrap().mode,
            Some(Mode::Inbox)
        );

        // An Instagram reel: its items, type, cover and share_to_feed.
        let reel = InstagramPost {
            media_type: MediaType::Reel,
            caption: "reel words".into(),
            items: vec![Item {
                url: Some("https://m.example/r.mp4".into()),
                kind: Some(ItemKind::Video),
                ..Item::default()
            }],
            cover_url: Some("https://m.example/c.jpg".into()),
            share_to_feed: Some(false),
        };
        let view = single(
            "instagram",
            "reel",
            "reel",
            (None, Some("https://m.example/r.mp4")),
            serde_json::to_string(&reel).unwrap(),
        );
        let stored = single_as_composite(&view).unwrap();
        assert_eq!(stored.caption, "reel words");
        assert_eq!(stored.media, reel.items);
        let instagram = stored.targets[0].instagram.clone().unwrap();
        assert_eq!(instagram.media_type, Some(MediaType::Reel));
        assert_eq!(instagram.cover_url, reel.cover_url);
        assert_eq!(instagram.share_to_feed, Some(false));

        // Options that are not a post's cannot be changed, in words.
        let view = single("instagram", "image", "image", (None, None), "{}".into());
        assert!(matches!(
            single_as_composite(&view),
            Err(ComposeError::Conflict(_))
        ));
    }

    #[test]
    fn a_slot_is_kept_moved_or_refused() {
        let day = schedule::DAY_MS;
        let at = 100 * day;
        assert_eq!(decide(&[at - 1], at, 2, false), Ok(at));
        assert_eq!(decide(&[at - 1, at], at, 2, false), Err(Some(at - 1 + day)));
        assert_eq!(decide(&[at - 1, at], at, 2, true), Ok(at - 1 + day));
        assert_eq!(decide(&[], at, 0, true), Err(None));
    }
}
