//! Threads specifics of published targets: the post's media id and permalink Threads answered.

use serde::Serialize;

use crate::{Db, Result};

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct ThreadsMedia {
    pub target_id: String,
    pub workspace_id: String,
    pub media_id: Option<String>,
    pub permalink: Option<String>,
    pub media_type: String,
    pub created_at: i64,
}

/// Records (or completes) what is known of a target's published post.
pub async fn upsert(db: &Db, m: &ThreadsMedia) -> Result<()> {
    sqlx::query(
        "INSERT INTO threads_media (target_id, workspace_id, media_id, permalink, media_type, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (target_id) DO UPDATE SET \
         media_id = COALESCE(excluded.media_id, threads_media.media_id), \
         permalink = COALESCE(excluded.permalink, threads_media.permalink)",
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

pub async fn get(db: &Db, workspace_id: &str, target_id: &str) -> Result<Option<ThreadsMedia>> {
    Ok(sqlx::query_as(
        "SELECT target_id, workspace_id, media_id, permalink, media_type, created_at FROM threads_media \
         WHERE workspace_id = $1 AND target_id = $2",
    )
    .bind(workspace_id)
    .bind(target_id)
    .fetch_optional(db.pool())
    .await?)
}
