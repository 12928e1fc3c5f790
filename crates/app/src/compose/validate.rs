//! Checking a post before anything is stored: the post as a whole (targets, media, time),
//! then each target with its platform's checks ([`crate::platforms::prepare_target`]), the
//! media rules of its stored media, and its place under the daily limits at its time.

use tidepost_store::StoreError;
use tidepost_store::accounts::{self, Account};

use super::issues::{issue, issue_of, quota_issue};
use super::{
    ComposeError, Issue, MAX_TARGETS, NewComposite, PAST_TOLERANCE_MS, Plan, PlannedTarget,
    Schedule, TargetInput, TargetSpec,
};
use crate::App;
use crate::pipeline::Prepared;
use crate::pipeline::media::{Item, ItemKind, extension, kind_of_extension};
use crate::pipeline::quota::{self, LimitCheck};

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
    schedule: &Schedule,
    except_post: Option<&str>,
) -> Result<(i64, LimitCheck), Issue> {
    let next_free = schedule.next_free_slot;
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
        Err(next) => Err(quota_issue(
            index,
            spec,
            platform,
            &limit,
            next,
            schedule.at.as_ref().and_then(|w| w.time_zone.as_deref()),
        )),
    }
}

/// Whether the post may go without media: every target an account of a platform that
/// publishes text alone (Threads).
async fn text_only(
    app: &App,
    workspace_id: &str,
    new: &NewComposite,
) -> Result<bool, ComposeError> {
    if new.targets.is_empty() {
        return Ok(false);
    }
    for spec in &new.targets {
        match accounts::get(&app.db, workspace_id, &spec.account_id).await? {
            Some(account) if crate::platforms::publishes_text_alone(account.platform) => {}
            _ => return Ok(false),
        }
    }
    Ok(true)
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
pub(super) async fn validate_except(
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
    if new.media.is_empty() && !text_only(app, workspace_id, new).await? {
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
                "the time chosen, {}, is in the past: choose a later time, or publish now",
                super::schedule::spoken(when.at_ms, when.time_zone.as_deref())
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
        if new.media.is_empty() && !crate::platforms::publishes_text_alone(platform) {
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
        let (run_at, limit) =
            match place(app, index, spec, &prepared, at, &new.schedule, except_post).await {
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
        kind: post_kind(&kinds),
    })
}

/// A post's kind as people read it: its media, not the first platform's name for them.
fn post_kind(kinds: &[Option<ItemKind>]) -> &'static str {
    if kinds.is_empty() {
        "text"
    } else if kinds.contains(&Some(ItemKind::Video)) {
        "video"
    } else {
        "photo"
    }
}
