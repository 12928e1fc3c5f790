//! Stored media files: content-addressed by SHA-256, one row per workspace and content.

use serde::Serialize;

use crate::{Db, Result};

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Media {
    pub id: String,
    pub workspace_id: String,
    pub sha256: String,
    pub size_bytes: i64,
    pub content_type: String,
    /// `video` or `image`.
    pub kind: String,
    /// Relative to the data folder (`media/<sha256>`).
    pub storage_path: String,
    pub original_name: Option<String>,
    pub created_at: i64,
}

const SELECT: &str = "SELECT id, workspace_id, sha256, size_bytes, content_type, kind, storage_path, \
     original_name, created_at FROM media ";

/// Inserts `m`, or returns the workspace's existing row for the same content.
pub async fn insert_or_get(db: &Db, m: &Media) -> Result<Media> {
    sqlx::query(
        "INSERT INTO media (id, workspace_id, sha256, size_bytes, content_type, kind, storage_path, original_name, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (workspace_id, sha256) DO NOTHING",
    )
    .bind(&m.id)
    .bind(&m.workspace_id)
    .bind(&m.sha256)
    .bind(m.size_bytes)
    .bind(&m.content_type)
    .bind(&m.kind)
    .bind(&m.storage_path)
    .bind(&m.original_name)
    .bind(m.created_at)
    .execute(db.pool())
    .await?;
    Ok(
        sqlx::query_as(&format!("{SELECT} WHERE workspace_id = $1 AND sha256 = $2"))
            .bind(&m.workspace_id)
            .bind(&m.sha256)
            .fetch_one(db.pool())
            .await?,
    )
}

pub async fn get(db: &Db, workspace_id: &str, id: &str) -> Result<Option<Media>> {
    Ok(
        sqlx::query_as(&format!("{SELECT} WHERE workspace_id = $1 AND id = $2"))
            .bind(workspace_id)
            .bind(id)
            .fetch_optional(db.pool())
            .await?,
    )
}
