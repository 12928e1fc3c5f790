//! Changing a post that has not started: its caption or its time, checked again like a new
//! post (leaving out its own targets from the limits), for a post to one account or several.

use tidepost_domain::publish::TargetState;
use tidepost_store::StoreError;
use tidepost_store::posts::{self};

use super::store::recheck_in;
use super::validate::validate_except;
use super::{ComposeError, NewComposite, Schedule, StoredComposite, When};
use crate::App;
use crate::pipeline::PostView;
use crate::platforms::publish_job;

/// A change to a post that has not started.
#[derive(Debug, Clone, Default)]
pub struct Update {
    /// The new shared caption (targets with their own caption keep it).
    pub caption: Option<String>,
    /// `Some(schedule)`: the new time (`schedule.at == None`: now).
    pub schedule: Option<Schedule>,
}

/// Whether [`update`] would accept `change` now (the calendar asks while a post is dragged):
/// every check of the change, limits included, and nothing written.
pub async fn check_update(
    app: &App,
    workspace_id: &str,
    post_id: &str,
    change: Update,
) -> Result<(), ComposeError> {
    apply(app, workspace_id, post_id, change, false).await
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
    apply(app, workspace_id, post_id, change, true).await?;
    Ok(crate::pipeline::get(app, workspace_id, post_id).await?)
}

/// [`update`]'s checks, then its writes when `write` (else the transaction is dropped
/// unwritten).
async fn apply(
    app: &App,
    workspace_id: &str,
    post_id: &str,
    change: Update,
    write: bool,
) -> Result<(), ComposeError> {
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
    let zone = plan.at.as_ref().and_then(|w| w.time_zone.as_deref());
    recheck_in(&mut tx, app, &mut plan.targets, Some(post_id), zone).await?;
    if !write {
        return Ok(());
    }
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
    Ok(())
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
