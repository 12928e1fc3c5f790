//! Instagram specifics of published targets: the media id and permalink Meta answered.

use serde::Serialize;

use crate::{Db, Result};

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct InstagramMedia {
    pub target_id: String,
    pub workspace_id: String,
    pub media_id: Option<String>,
    pub permalink: Option<String>,
    pub media_type: String,
    pub created_at: i64,
}

/// Records (or completes) what is known of a target's published media.
pub async fn upsert(db: &Db, m: &InstagramMedia) -> Result<()> {
    sqlx::query(
        "INSERT INTO instagram_media (target_id, workspace_id, media_id, permalink, media_type, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (target_id) DO UPDATE SET \
         media_id = COALESCE(excluded.media_id, instagram_media.media_id), \
         permalink = COALESCE(excluded.permalink, instagram_media.permalink)",
    )
    .bind(&m.target_id)
    .bind(&m.workspace_id)
    .bind(&m.media_id)
    .bind(&m.permalink)
    .bind(&m.media_type)
    .bind(m.created_at)
    .execute(db.pool())
    .await?;
    Ok(())
}

pub async fn get(db: &Db, workspace_id: &str, target_id: &str) -> Result<Option<InstagramMedia>> {
    Ok(sqlx::query_as(
        "SELECT target_id, workspace_id, media_id, permalink, media_type, created_at FROM instagram_media \
         WHERE workspace_id = $1 AND target_id = $2",
    )
    .bind(workspace_id)
    .bind(target_id)
    .fetch_optional(db.pool())
    .await?)
}

/// A target's first comment: `pending` until it is posted under the media (`posted`, with
/// its id) or given up (`failed`, with the reason).
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct FirstComment {
    pub target_id: String,
    pub workspace_id: String,
    pub state: String,
    pub comment_id: Option<String>,
    pub error: Option<String>,
    pub attempts: i64,
    pub updated_at: i64,
}

/// Records that a target's first comment is to be posted (nothing changes when it is known).
pub async fn first_comment_pending(
    db: &Db,
    workspace_id: &str,
    target_id: &str,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO instagram_first_comments (target_id, workspace_id, state, attempts, updated_at) \
         VALUES ($1, $2, 'pending', 0, $3) ON CONFLICT (target_id) DO NOTHING",
    )
    .bind(target_id)
    .bind(workspace_id)
    .bind(now)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// Moves a first comment on: `posted` with its id, `failed` or still `pending` with the last
/// error; each call counts one attempt. A posted comment never changes again.
pub async fn set_first_comment(
    db: &Db,
    workspace_id: &str,
    target_id: &str,
    state: &str,
    comment_id: Option<&str>,
    error: Option<&str>,
    now: i64,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE instagram_first_comments SET state = $3, comment_id = COALESCE($4, comment_id), \
         error = $5, attempts = attempts + 1, updated_at = $6 \
         WHERE workspace_id = $1 AND target_id = $2 AND state <> 'posted'",
    )
    .bind(workspace_id)
    .bind(target_id)
    .bind(state)
    .bind(comment_id)
    .bind(error)
    .bind(now)
    .execute(db.pool())
    .await?;
    Ok(done.rows_affected() > 0)
}

pub async fn first_comment(
    db: &Db,
    workspace_id: &str,
    target_id: &str,
) -> Result<Option<FirstComment>> {
    Ok(sqlx::query_as(
        "SELECT target_id, workspace_id, state, comment_id, error, attempts, updated_at \
         FROM instagram_first_comments WHERE workspace_id = $1 AND target_id = $2",
    )
    .bind(workspace_id)
    .bind(target_id)
    .fetch_optional(db.pool())
    .await?)
}
