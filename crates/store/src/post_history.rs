//! A post's history: who changed what and when (its creation, edits, moves, cancellations).
//! `changes` is the app's JSON (a list of field, target, before, after); this module keeps the
//! rows, written in the transaction of the change they record.

use sqlx::AnyConnection;

use crate::{Db, Result};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Entry {
    pub id: String,
    pub workspace_id: String,
    pub post_id: String,
    pub at: i64,
    /// `user:<id>` or `api_key:<id>`; `None`: tidepost itself.
    pub actor: Option<String>,
    /// `created`, `edited`, `moved` or `cancelled`.
    pub action: String,
    /// JSON array.
    pub changes: String,
}

const COLUMNS: &str = "id, workspace_id, post_id, at, actor, action, changes";

pub async fn insert_in(conn: &mut AnyConnection, entry: &Entry) -> Result<()> {
    sqlx::query(&format!(
        "INSERT INTO post_history ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
    ))
    .bind(&entry.id)
    .bind(&entry.workspace_id)
    .bind(&entry.post_id)
    .bind(entry.at)
    .bind(&entry.actor)
    .bind(&entry.action)
    .bind(&entry.changes)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn insert(db: &Db, entry: &Entry) -> Result<()> {
    let mut conn = db.pool().acquire().await?;
    insert_in(&mut conn, entry).await
}

/// The post's history, newest first; `after`: the last id of the previous page (ids are
/// UUIDv7, so they sort by time).
pub async fn list(
    db: &Db,
    workspace_id: &str,
    post_id: &str,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<Entry>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM post_history WHERE workspace_id = $1 AND post_id = $2 \
         AND ($3 IS NULL OR id < $3) ORDER BY id DESC LIMIT $4"
    ))
    .bind(workspace_id)
    .bind(post_id)
    .bind(after)
    .bind(limit)
    .fetch_all(db.pool())
    .await?)
}
