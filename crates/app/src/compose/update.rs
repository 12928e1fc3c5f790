//! Editing a post that has not been sent: its caption, media, targets (accounts added,
//! targets removed), each target's options and its time, for a post to one account or several.
//!
//! The post as it will be is checked like a new post ([`validate_except`], the one validation,
//! leaving out the post's own targets from the limits), then written in one transaction.
//!
//! Targets that have started (uploading, processing) or finished (published, failed) keep what
//! they were sent with: a change that touches them (the shared caption, media or time, or an
//! entry naming their account) is refused for them, each with its reason ([`Refusal`]), while
//! the targets that have not started change. Only when no target at all can take the change
//! is the whole edit refused ([`ComposeError::Started`]).
//!
//! Racing with a publish job: every target is written at the version the edit read, only while
//! it is queued or scheduled (`posts::edit_target_in`), and a job claims a target only at the
//! version it read its options at (`posts::claim`). Of the two, exactly one wins: an edit that
//! loses is rolled back whole (`Conflict`: nothing changed), a job that loses reads the post
//! again. Nothing is sent with half an edit.

use serde_json::{Value, json};
use tidepost_domain::publish::TargetState;
use tidepost_domain::time::rfc3339;
use tidepost_store::StoreError;
use tidepost_store::posts::{self, PostEdit, Target, TargetEdit};

use super::history::{self, Action, Change};
use super::issues::issue;
use super::store::recheck_in;
use super::validate::validate_except;
use super::{ComposeError, NewComposite, Schedule, StoredComposite, TargetSpec, When};
use crate::App;
use crate::pipeline::media::Item;
use crate::pipeline::{PostView, new_target};
use crate::platforms::publish_job;

/// A change to a post: every field optional (none: unchanged).
#[derive(Debug, Clone, Default)]
pub struct Update {
    /// The new shared caption (targets with their own caption keep it).
    pub caption: Option<String>,
    /// The new media set, shared by every target.
    pub media: Option<Vec<Item>>,
    /// `Some(schedule)`: the new time (`schedule.at == None`: now).
    pub schedule: Option<Schedule>,
    /// Per account: `Some(spec)` adds the account, or replaces its target's caption and
    /// options; `None` removes its target.
    pub targets: Vec<(String, Option<TargetSpec>)>,
    /// The post's version the change was made on (`If-Match`): a post changed since is
    /// refused ([`ComposeError::Stale`]).
    pub version: Option<i64>,
    /// Who changes it (a user's id or `api_key:<id>`), for the history.
    pub by: Option<String>,
}

/// A target an edit could not change, and why.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
#[schema(as = PostEditRefusal)]
pub struct Refusal {
    pub target_id: String,
    pub account_id: String,
    pub platform: tidepost_domain::Platform,
    pub state: String,
    pub reason: String,
}

/// The edited post, and the targets that kept what they had (empty: every target changed).
#[derive(Debug, Clone)]
pub struct Edited {
    pub view: PostView,
    pub refused: Vec<Refusal>,
}

fn editable(target: &Target) -> bool {
    matches!(
        TargetState::parse(&target.state),
        Some(TargetState::Queued | TargetState::Scheduled)
    )
}

fn refusal(target: &Target) -> Refusal {
    let who = target.platform.display_name();
    let reason = match TargetState::parse(&target.state) {
        Some(TargetState::Uploading | TargetState::Processing) => format!(
            "already sending to {who} ({}): it keeps what it is being sent with",
            target.state
        ),
        Some(TargetState::Published) => {
            format!("already published on {who}: it cannot be changed")
        }
        Some(TargetState::Failed) => {
            format!("it failed on {who}: retry it as it is, or post again, instead of changing it")
        }
        Some(TargetState::Queued | TargetState::Scheduled | TargetState::Cancelled) | None => {
            format!("it is {}: it cannot be changed", target.state)
        }
    };
    Refusal {
        target_id: target.id.clone(),
        account_id: target.account_id.clone(),
        platform: target.platform,
        state: target.state.clone(),
        reason,
    }
}

fn raced(target: &Target) -> ComposeError {
    ComposeError::Conflict(format!(
        "the {} target ({}) started sending or changed while this edit was being saved: nothing was changed; load the post again and edit what is still not sent",
        target.platform.display_name(),
        target.account_id
    ))
}

fn when_json(at: Option<i64>) -> Value {
    at.map_or(Value::Null, |at| Value::from(rfc3339(at)))
}

/// Edits a post: see the module. Every target that has not started is checked and changed;
/// those that have started and that the change touches are in [`Edited::refused`].
pub async fn update(
    app: &App,
    workspace_id: &str,
    post_id: &str,
    change: Update,
) -> Result<Edited, ComposeError> {
    apply(app, workspace_id, post_id, change, true)
        .await?
        .ok_or_else(|| ComposeError::NotFound("post"))
}

/// Whether [`update`] would accept `change` now (the calendar asks while a post is dragged):
/// every check of the change, limits included, under the same locks, and nothing written.
pub async fn check_update(
    app: &App,
    workspace_id: &str,
    post_id: &str,
    change: Update,
) -> Result<(), ComposeError> {
    apply(app, workspace_id, post_id, change, false)
        .await
        .map(drop)
}

/// [`update`]'s checks, then, when `write`, its writes (`None` when not written: the
/// transaction is dropped after the checks).
async fn apply(
    app: &App,
    workspace_id: &str,
    post_id: &str,
    change: Update,
    write: bool,
) -> Result<Option<Edited>, ComposeError> {
    let view = crate::pipeline::get(app, workspace_id, post_id).await?;
    if let Some(version) = change.version
        && version != view.post.version
    {
        return Err(ComposeError::Stale(view.post.version));
    }
    let (stored, composite) = match serde_json::from_str::<StoredComposite>(&view.post.options)
        .ok()
        .filter(|s| s.composite)
    {
        Some(stored) => (stored, true),
        None => (single_as_composite(&view)?, false),
    };
    let live: Vec<&Target> = view
        .targets
        .iter()
        .filter(|t| t.state != TargetState::Cancelled.as_str())
        .collect();
    if live.is_empty() {
        return Err(ComposeError::Conflict("the post was cancelled".into()));
    }
    let open: Vec<&Target> = live.iter().copied().filter(|t| editable(t)).collect();
    let shared = change.caption.is_some() || change.media.is_some() || change.schedule.is_some();
    let mut refused: Vec<Refusal> = Vec::new();
    if shared {
        refused.extend(live.iter().filter(|t| !editable(t)).map(|t| refusal(t)));
    }
    // The targets as they will be: the open ones (their specs as stored), changed as asked.
    let spec_of = |account_id: &str| {
        stored
            .targets
            .iter()
            .find(|s| s.account_id == account_id)
            .cloned()
            .unwrap_or_else(|| TargetSpec {
                account_id: account_id.to_string(),
                ..TargetSpec::default()
            })
    };
    let mut specs: Vec<TargetSpec> = open.iter().map(|t| spec_of(&t.account_id)).collect();
    let mut removed: Vec<&Target> = Vec::new();
    let mut issues = Vec::new();
    let mut touched = shared;
    for (account_id, entry) in &change.targets {
        if let Some(started) = live
            .iter()
            .find(|t| &t.account_id == account_id && !editable(t))
        {
            if !refused.iter().any(|r| r.target_id == started.id) {
                refused.push(refusal(started));
            }
            continue;
        }
        touched = true;
        let at = specs.iter().position(|s| &s.account_id == account_id);
        match (entry, at) {
            (Some(spec), Some(at)) => {
                specs[at] = TargetSpec {
                    account_id: account_id.clone(),
                    ..spec.clone()
                };
            }
            (Some(spec), None) => specs.push(TargetSpec {
                account_id: account_id.clone(),
                ..spec.clone()
            }),
            (None, Some(at)) => {
                specs.remove(at);
                if let Some(target) = open.iter().find(|t| &t.account_id == account_id) {
                    removed.push(target);
                }
            }
            (None, None) => issues.push(issue(
                None,
                format!("targets.{account_id}"),
                "not_found",
                "this account is not a target of the post: there is nothing to remove",
            )),
        }
    }
    if !issues.is_empty() {
        return Err(ComposeError::Invalid(issues));
    }
    if !touched {
        return Err(if refused.is_empty() {
            ComposeError::Conflict("nothing to change".into())
        } else {
            ComposeError::Started(refused)
        });
    }
    if open.is_empty() {
        return Err(ComposeError::Started(refused));
    }
    if specs.is_empty() {
        return Err(ComposeError::Invalid(vec![issue(
            None,
            "targets",
            "required",
            "an edit cannot remove every account that is left: cancel the post instead",
        )]));
    }
    let added: Vec<String> = specs
        .iter()
        .filter(|s| !open.iter().any(|t| t.account_id == s.account_id))
        .map(|s| s.account_id.clone())
        .collect();
    if !composite && !added.is_empty() && open.len() < live.len() {
        return Err(ComposeError::Conflict(
            "this post was made for one account and has started: it cannot take more accounts; make a new post for them".into(),
        ));
    }
    let schedule = change.schedule.clone().unwrap_or_else(|| Schedule {
        at: view.post.scheduled_at.map(|at_ms| When {
            at_ms,
            time_zone: view.post.time_zone.clone(),
        }),
        next_free_slot: false,
    });
    let new = NewComposite {
        caption: change.caption.clone().unwrap_or(stored.caption.clone()),
        media: change.media.clone().unwrap_or(stored.media.clone()),
        targets: specs,
        schedule,
        ..NewComposite::default()
    };
    // The time is checked (and the targets placed under the limits) when it changes or an
    // account is added; otherwise every target keeps its time and its place in the limits.
    let check_time = change.schedule.is_some() || !added.is_empty();
    let mut plan = validate_except(app, workspace_id, &new, Some(post_id), check_time).await?;

    // What changes, for the history.
    let mut changes = Vec::new();
    if new.caption != stored.caption {
        changes.push(Change::post(
            "caption",
            json!(stored.caption),
            json!(new.caption),
        ));
    }
    if new.media != stored.media {
        changes.push(Change::post("media", json!(stored.media), json!(new.media)));
    }
    let new_at = plan.at.as_ref().map(|w| w.at_ms);
    if change.schedule.is_some() && new_at != view.post.scheduled_at {
        changes.push(Change::post(
            "scheduled_at",
            when_json(view.post.scheduled_at),
            when_json(new_at),
        ));
    }
    for spec in &new.targets {
        let before = open
            .iter()
            .any(|t| t.account_id == spec.account_id)
            .then(|| spec_of(&spec.account_id));
        match before {
            None => changes.push(Change::target(
                "target",
                &spec.account_id,
                Value::Null,
                json!(spec),
            )),
            Some(before) if &before != spec => changes.push(Change::target(
                "options",
                &spec.account_id,
                json!(before),
                json!(spec),
            )),
            Some(_) => {}
        }
    }
    for target in &removed {
        changes.push(Change::target(
            "target",
            &target.account_id,
            json!(spec_of(&target.account_id)),
            Value::Null,
        ));
    }
    let action = if changes.iter().all(|c| c.field == "scheduled_at") {
        Action::Moved
    } else {
        Action::Edited
    };

    let now = tidepost_domain::now_ms();
    let mut tx = app.db.begin_write().await?;
    let zone = plan.at.as_ref().and_then(|w| w.time_zone.as_deref());
    recheck_in(&mut tx, app, &mut plan.targets, Some(post_id), zone).await?;
    if !write {
        return Ok(None);
    }
    // The post at the version read (the one `If-Match` named, when given): of two edits made
    // on one version, the second is refused rather than written over the first.
    let one_target = !composite && plan.targets.len() == 1 && added.is_empty();
    let options = match plan.targets.first() {
        // A single-account post keeps its options as its one target's, as it was made.
        Some(only) if one_target => only.prepared.options.clone(),
        _ => serde_json::to_string(&StoredComposite {
            composite: true,
            caption: new.caption.clone(),
            media: new.media.clone(),
            targets: new.targets.clone(),
        })
        .unwrap_or_else(|_| "{}".into()),
    };
    let (scheduled_at, time_zone) = if change.schedule.is_some() {
        (new_at, plan.at.as_ref().and_then(|w| w.time_zone.clone()))
    } else {
        (view.post.scheduled_at, view.post.time_zone.clone())
    };
    let written = posts::edit_post_in(
        &mut tx,
        workspace_id,
        post_id,
        Some(view.post.version),
        &PostEdit {
            caption: &new.caption,
            kind: plan.kind,
            media_id: new.media.iter().find_map(|i| i.media_id.as_deref()),
            media_url: new.media.iter().find_map(|i| i.url.as_deref()),
            options: &options,
            scheduled_at,
            time_zone: time_zone.as_deref(),
        },
        now,
    )
    .await?;
    if !written {
        return Err(match change.version {
            Some(_) => {
                let fresh = crate::pipeline::get(app, workspace_id, post_id).await?;
                ComposeError::Stale(fresh.post.version)
            }
            None => ComposeError::Conflict(
                "the post was changed by someone else meanwhile: nothing was changed; load it again and make the change on that".into(),
            ),
        });
    }
    for planned in &plan.targets {
        let p = &planned.prepared;
        let existing = open.iter().find(|t| t.account_id == p.account.id);
        let (run_at, state) = match existing {
            Some(target) if !check_time => (
                target.scheduled_at,
                TargetState::parse(&target.state).unwrap_or(TargetState::Queued),
            ),
            _ if planned.run_at.is_some() => (planned.run_at, TargetState::Scheduled),
            _ => (None, TargetState::Queued),
        };
        match existing {
            Some(target) => {
                let done = posts::edit_target_in(
                    &mut tx,
                    workspace_id,
                    &target.id,
                    target.version,
                    &TargetEdit {
                        mode: &p.mode,
                        source: &p.source,
                        bytes_total: p.bytes_total,
                        options: &p.options,
                        scheduled_at: run_at,
                        state: state.as_str(),
                    },
                    now,
                )
                .await?;
                if !done {
                    // Dropping the transaction rolls the whole edit back.
                    return Err(raced(target));
                }
                if run_at != target.scheduled_at {
                    let mut moved = (*target).clone();
                    moved.scheduled_at = run_at;
                    // A fresh key: the job of the old time stays in the queue and stops when
                    // it runs (`halt::due`).
                    let job = publish_job(&moved, run_at.unwrap_or(now)).idempotency_key(format!(
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
            }
            None => {
                let mut target =
                    new_target(&view.post, &p.account, &p.mode, &p.source, p.bytes_total);
                target.created_at = now;
                target.updated_at = now;
                target.options = Some(p.options.clone());
                target.scheduled_at = run_at;
                target.state = state.as_str().into();
                posts::insert_target_in(&mut tx, &target).await?;
                app.queue
                    .enqueue_in(&mut tx, publish_job(&target, run_at.unwrap_or(now)))
                    .await
                    .map_err(|e| ComposeError::Unavailable(e.to_string()))?;
            }
        }
    }
    for target in &removed {
        if !posts::remove_target_in(&mut tx, workspace_id, &target.id, target.version, now).await? {
            return Err(raced(target));
        }
    }
    history::record_in(
        &mut tx,
        workspace_id,
        post_id,
        change.by.as_deref(),
        action,
        &changes,
        now,
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(Some(Edited {
        view: crate::pipeline::get(app, workspace_id, post_id).await?,
        refused,
    }))
}

/// A post as the composer's edit mode shows it: what its targets not yet started hold, as a
/// draft holds a post (caption, media, those targets' specs, its time), the post's version, and
/// the targets that have started or finished (shown, not edited). The composer reads it back
/// with the drafts' reverse mapping and saves it through [`update`].
pub fn edit_form(
    view: &PostView,
) -> Result<(super::drafts::DraftBody, i64, Vec<Target>), ComposeError> {
    let stored = match serde_json::from_str::<StoredComposite>(&view.post.options)
        .ok()
        .filter(|s| s.composite)
    {
        Some(stored) => stored,
        None => single_as_composite(view)?,
    };
    let open: Vec<&Target> = view.targets.iter().filter(|t| editable(t)).collect();
    if open.is_empty() {
        return Err(ComposeError::Conflict(
            "every target of this post has started or finished: there is nothing left to edit"
                .into(),
        ));
    }
    let body = super::drafts::DraftBody {
        caption: stored.caption,
        media: stored.media,
        targets: stored
            .targets
            .into_iter()
            .filter(|s| open.iter().any(|t| t.account_id == s.account_id))
            .collect(),
        scheduled_at: view.post.scheduled_at,
        time_zone: view.post.time_zone.clone(),
        next_free_slot: false,
    };
    let started = view
        .targets
        .iter()
        .filter(|t| !editable(t) && t.state != TargetState::Cancelled.as_str())
        .cloned()
        .collect();
    Ok((body, view.post.version, started))
}

/// The accounts of the post's targets that have not started: what an edit may remove.
pub fn open_accounts(view: &PostView) -> Vec<String> {
    view.targets
        .iter()
        .filter(|t| editable(t))
        .map(|t| t.account_id.clone())
        .collect()
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::media::{Item, ItemKind};
    use crate::pipeline::new_target;
    use crate::platforms::instagram::options::{InstagramPost, MediaType};
    use crate::platforms::tiktok::{Mode, PostOptions};
    use tidepost_store::accounts::Account;
    use tidepost_store::posts::Post;

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

    /// A single-account post as versions before composites stored it: its target's options are
    /// the post's.
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
            version: 1,
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
            ..Default::default()
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
}
