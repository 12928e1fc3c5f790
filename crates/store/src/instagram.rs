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
