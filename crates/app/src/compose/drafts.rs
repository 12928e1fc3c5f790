//! Drafts: a post saved without being sent or scheduled, changed as often as wanted, and turned
//! into a post (now or at a time) through the same checks as any post ([`validate`]).
//!
//! A draft is saved as the post was described ([`NewComposite`]: caption, media, targets with
//! their options, the wished time) and checked only when it is published: it may be unfinished
//! (no account chosen yet, a caption to write), and [`issues`] says what still stops it. Drafts
//! count against no limit and start no job. Publishing stores the post and marks the draft
//! published in one transaction, at the version that was checked: a draft becomes one post,
//! however often (or concurrently) it is published, and an edit racing with its publication
//! either lands before it (and is what is published) or is refused.

use serde::{Deserialize, Serialize};
use tidepost_store::drafts::{self as repo};

use super::schedule::When;
use super::{ComposeError, Issue, NewComposite, Schedule, TargetSpec, validate};
use crate::App;
use crate::pipeline::PostView;
use crate::pipeline::media::Item;

/// The most drafts one page lists.
pub const MAX_PAGE: i64 = 200;

/// A draft as saved.
#[derive(Debug, Clone)]
pub struct Draft {
    pub id: String,
    pub body: DraftBody,
    pub created_by: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub version: i64,
    /// The post it became, once published.
    pub post_id: Option<String>,
    pub published_at: Option<i64>,
}

/// What a draft holds: the post as described, its time included.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DraftBody {
    pub caption: String,
    pub media: Vec<Item>,
    pub targets: Vec<TargetSpec>,
    /// The wished time (UTC ms); none: as soon as it is published.
    pub scheduled_at: Option<i64>,
    pub time_zone: Option<String>,
    pub next_free_slot: bool,
}

impl DraftBody {
    pub fn of(new: &NewComposite) -> Self {
        DraftBody {
            caption: new.caption.clone(),
            media: new.media.clone(),
            targets: new.targets.clone(),
            scheduled_at: new.schedule.at.as_ref().map(|w| w.at_ms),
            time_zone: new.schedule.at.as_ref().and_then(|w| w.time_zone.clone()),
            next_free_slot: new.schedule.next_free_slot,
        }
    }

    /// The post it describes, at its own time.
    pub fn composite(&self, created_by: Option<String>) -> NewComposite {
        NewComposite {
            caption: self.caption.clone(),
            media: self.media.clone(),
            targets: self.targets.clone(),
            schedule: Schedule {
                at: self.scheduled_at.map(|at_ms| When {
                    at_ms,
                    time_zone: self.time_zone.clone(),
                }),
                next_free_slot: self.next_free_slot,
            },
            idempotency_key: None,
            created_by,
        }
    }
}

impl Draft {
    fn of(row: repo::Draft) -> Self {
        Draft {
            // A body this version cannot read (written by a newer one) reads as an empty draft
            // rather than hiding the row.
            body: serde_json::from_str(&row.body).unwrap_or_default(),
            id: row.id,
            created_by: row.created_by,
            created_at: row.created_at,
            updated_at: row.updated_at,
            version: row.version,
            post_id: row.post_id,
            published_at: row.published_at,
        }
    }
}

fn body_text(body: &DraftBody) -> String {
    serde_json::to_string(body).unwrap_or_else(|_| "{}".into())
}

/// Saves `new` as a new draft; nothing is checked but its shape.
pub async fn save(
    app: &App,
    workspace_id: &str,
    new: &NewComposite,
) -> Result<Draft, ComposeError> {
    let now = tidepost_domain::now_ms();
    let row = repo::Draft {
        id: tidepost_domain::new_id(),
        workspace_id: workspace_id.to_string(),
        body: body_text(&DraftBody::of(new)),
        created_by: new.created_by.clone(),
        created_at: now,
        updated_at: now,
        version: 1,
        post_id: None,
        published_at: None,
    };
    repo::insert(&app.db, &row).await?;
    Ok(Draft::of(row))
}

pub async fn get(app: &App, workspace_id: &str, id: &str) -> Result<Draft, ComposeError> {
    repo::get(&app.db, workspace_id, id)
        .await?
        .map(Draft::of)
        .ok_or(ComposeError::NotFound("draft"))
}

/// A page of the drafts not yet published, newest first (`after`: the last id of the previous
/// page).
pub async fn list(
    app: &App,
    workspace_id: &str,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<Draft>, ComposeError> {
    Ok(
        repo::list_open(&app.db, workspace_id, after, limit.clamp(1, MAX_PAGE + 1))
            .await?
            .into_iter()
            .map(Draft::of)
            .collect(),
    )
}

/// Why a draft cannot be changed or published (any more): published, or changed since.
pub fn settled(draft: &Draft) -> ComposeError {
    match &draft.post_id {
        Some(post) => ComposeError::Conflict(format!(
            "the draft was published as post {post}: change the post instead"
        )),
        None => ComposeError::Conflict(format!(
            "the draft changed meanwhile (it is at version {}): load it again and make the change on that",
            draft.version
        )),
    }
}

/// Replaces what the draft holds with `new`, in one conditional write. `version`: the version
/// the change was made on, when the client knows it; a draft changed since is refused rather
/// than overwritten.
pub async fn replace(
    app: &App,
    workspace_id: &str,
    id: &str,
    new: &NewComposite,
    version: Option<i64>,
) -> Result<Draft, ComposeError> {
    let now = tidepost_domain::now_ms();
    let body = body_text(&DraftBody::of(new));
    match repo::replace(&app.db, workspace_id, id, version, &body, now).await? {
        Some(row) => Ok(Draft::of(row)),
        // Published, changed since `version`, or not there: read it to say which.
        None => Err(settled(&get(app, workspace_id, id).await?)),
    }
}

/// Deletes a draft (a published one too: the post stays).
pub async fn delete(app: &App, workspace_id: &str, id: &str) -> Result<(), ComposeError> {
    if repo::delete(&app.db, workspace_id, id).await? {
        Ok(())
    } else {
        Err(ComposeError::NotFound("draft"))
    }
}

/// What stops the draft from being published now, every problem at once (empty: nothing).
pub async fn issues(
    app: &App,
    workspace_id: &str,
    draft: &Draft,
) -> Result<Vec<Issue>, ComposeError> {
    match validate(app, workspace_id, &draft.body.composite(None)).await {
        Ok(_) => Ok(Vec::new()),
        Err(ComposeError::Invalid(issues)) => Ok(issues),
        Err(other) => Err(other),
    }
}

/// Publishes the draft as a post: at `schedule` when given, else at the draft's own time (none:
/// now), through every check of a new post. The post is stored and the draft marked published
/// in one transaction, only at the version that was checked. Published again, it answers the
/// post it became.
pub async fn publish(
    app: &App,
    workspace_id: &str,
    id: &str,
    schedule: Option<Schedule>,
    created_by: Option<String>,
) -> Result<PostView, ComposeError> {
    let draft = get(app, workspace_id, id).await?;
    if let Some(post_id) = &draft.post_id {
        return crate::pipeline::get(app, workspace_id, post_id)
            .await
            .map_err(ComposeError::from);
    }
    let mut new = draft
        .body
        .composite(created_by.or(draft.created_by.clone()));
    if let Some(schedule) = schedule {
        new.schedule = schedule;
    }
    let claim = super::store::DraftClaim {
        id: draft.id.clone(),
        version: draft.version,
    };
    let stored = match validate(app, workspace_id, &new).await {
        Ok(plan) => super::store::store_from(app, workspace_id, &new, plan, Some(&claim)).await,
        Err(err) => Err(err),
    };
    match stored {
        Ok(Some(view)) => Ok(view),
        // Not stored: when another publication of this draft won meanwhile (it took the slot
        // this one was refused for, or marked the draft first), its post is the answer.
        outcome @ (Ok(None) | Err(_)) => {
            let now = get(app, workspace_id, id).await?;
            match (&now.post_id, outcome) {
                (Some(post_id), _) => crate::pipeline::get(app, workspace_id, post_id)
                    .await
                    .map_err(ComposeError::from),
                (None, Err(err)) => Err(err),
                (None, Ok(_)) => Err(settled(&now)),
            }
        }
    }
}
