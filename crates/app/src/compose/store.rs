//! Writing a checked post: the limits checked again under each account's lock, the post, its
//! targets and one publish job per target (at its time), in one transaction.

use tidepost_domain::publish::TargetState;
use tidepost_store::StoreError;
use tidepost_store::posts::{self, Post};

use super::issues::quota_issue;
use super::{ComposeError, NewComposite, Plan, PlannedTarget, StoredComposite};
use crate::App;
use crate::pipeline::quota::{self};
use crate::pipeline::{PostView, new_target};
use crate::platforms::publish_job;

/// Writes a validated post: see [`submit`].
pub async fn store(
    app: &App,
    workspace_id: &str,
    new: &NewComposite,
    plan: Plan,
) -> Result<PostView, ComposeError> {
    store_from(app, workspace_id, new, plan, None)
        .await?
        .ok_or_else(|| ComposeError::Conflict("the post was not stored".into()))
}

/// The draft a post is published from, at the version that was checked.
#[derive(Debug, Clone)]
pub(super) struct DraftClaim {
    pub id: String,
    pub version: i64,
}

/// [`store`], and with `draft` the draft marked published in the same transaction: `None`
/// (nothing stored) when that draft changed or was published meanwhile.
pub(super) async fn store_from(
    app: &App,
    workspace_id: &str,
    new: &NewComposite,
    mut plan: Plan,
    draft: Option<&DraftClaim>,
) -> Result<Option<PostView>, ComposeError> {
    let now = tidepost_domain::now_ms();
    if plan.targets.is_empty() {
        return Err(ComposeError::Conflict(
            "a post needs at least one target".into(),
        ));
    }
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
        kind: plan.kind.into(),
        media_id: new.media.iter().find_map(|i| i.media_id.clone()),
        media_url: new.media.iter().find_map(|i| i.url.clone()),
        options: serde_json::to_string(&stored).unwrap_or_else(|_| "{}".into()),
        idempotency_key: new.idempotency_key.clone(),
        created_by: new.created_by.clone(),
        created_at: now,
        updated_at: now,
        scheduled_at: plan.at.as_ref().map(|w| w.at_ms),
        time_zone: plan.at.as_ref().and_then(|w| w.time_zone.clone()),
        version: 1,
    };
    let mut targets = Vec::with_capacity(plan.targets.len());
    let mut tx = app.db.begin_write().await?;
    // The draft first: of two publications of one draft the second waits here for the first
    // to commit, then finds it published (before it could meet the limits the first took).
    if let Some(draft) = draft
        && !tidepost_store::drafts::mark_published_in(
            &mut tx,
            workspace_id,
            &draft.id,
            draft.version,
            &post.id,
            now,
        )
        .await?
    {
        // Dropping the transaction rolls it back: nothing is kept.
        return Ok(None);
    }
    // The limits again, under the accounts' locks: the check and the insert are one step.
    let zone = plan.at.as_ref().and_then(|w| w.time_zone.as_deref());
    recheck_in(&mut tx, app, &mut plan.targets, None, zone).await?;
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
    let created = serde_json::json!({
        "caption": post.caption,
        "media": new.media,
        "targets": new.targets,
        "scheduled_at": post.scheduled_at.map(tidepost_domain::time::rfc3339),
    });
    super::history::record_in(
        &mut tx,
        workspace_id,
        &post.id,
        new.created_by.as_deref(),
        super::history::Action::Created,
        &[super::history::Change::post(
            "post",
            serde_json::Value::Null,
            created,
        )],
        now,
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(Some(PostView { post, targets }))
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
pub(super) async fn recheck_in(
    conn: &mut sqlx::AnyConnection,
    app: &App,
    targets: &mut [PlannedTarget],
    except_post: Option<&str>,
    time_zone: Option<&str>,
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
                time_zone,
            )),
        }
    }
    if issues.is_empty() {
        Ok(())
    } else {
        Err(ComposeError::Invalid(issues))
    }
}
