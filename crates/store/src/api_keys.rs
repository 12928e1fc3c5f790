//! API keys: random, shown once, stored as a SHA-256 hash, scoped to one workspace, revocable.

use serde::Serialize;

use crate::{Db, Result};

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct ApiKey {
    pub id: String,
    pub workspace_id: String,
    pub name: String,
    /// The first characters of the key, shown so people can tell keys apart.
    pub prefix: String,
    #[serde(skip)]
    pub key_hash: String,
    /// Space-separated scopes (e.g. `api worker`).
    pub scopes: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
    /// The role the key acts with (never above its creator's, see [`find_by_hash`]).
    pub role: tidepost_domain::Role,
    /// The member who made it; `None` for keys made on the command line or before roles.
    pub created_by: Option<String>,
}

impl ApiKey {
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.split_whitespace().any(|s| s == scope)
    }
}

/// `SELECT` of every column, followed by the rest of the query.
macro_rules! select {
    ($rest:literal) => {
        concat!(
            "SELECT id, workspace_id, name, prefix, key_hash, scopes, created_at, last_used_at, revoked_at, role, created_by FROM api_keys ",
            $rest
        )
    };
}

pub async fn insert(db: &Db, key: &ApiKey) -> Result<()> {
    sqlx::query(
        "INSERT INTO api_keys (id, workspace_id, name, prefix, key_hash, scopes, created_at, role, created_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&key.id)
    .bind(&key.workspace_id)
    .bind(&key.name)
    .bind(&key.prefix)
    .bind(&key.key_hash)
    .bind(&key.scopes)
    .bind(key.created_at)
    .bind(key.role.as_str())
    .bind(&key.created_by)
    .execute(db.pool())
    .await?;
    Ok(())
}

pub async fn list(db: &Db, workspace_id: &str) -> Result<Vec<ApiKey>> {
    Ok(sqlx::query_as(select!(
        "WHERE workspace_id = $1 ORDER BY created_at DESC, id DESC"
    ))
    .bind(workspace_id)
    .fetch_all(db.pool())
    .await?)
}

/// One page of the workspace's keys, newest first (by UUIDv7 id): those with an id below
/// `after` (the last id of the previous page), at most `limit`.
pub async fn page(
    db: &Db,
    workspace_id: &str,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<ApiKey>> {
    Ok(sqlx::query_as(select!(
        "WHERE workspace_id = $1 AND ($2 IS NULL OR id < $2) ORDER BY id DESC LIMIT $3"
    ))
    .bind(workspace_id)
    .bind(after)
    .bind(limit)
    .fetch_all(db.pool())
    .await?)
}

pub async fn get(db: &Db, workspace_id: &str, id: &str) -> Result<Option<ApiKey>> {
    Ok(
        sqlx::query_as(select!("WHERE workspace_id = $1 AND id = $2"))
            .bind(workspace_id)
            .bind(id)
            .fetch_optional(db.pool())
            .await?,
    )
}

/// The key with this hash, whatever its state (the caller tells revoked keys apart).
pub async fn find_by_hash(db: &Db, key_hash: &str) -> Result<Option<ApiKey>> {
    Ok(sqlx::query_as(select!("WHERE key_hash = $1"))
        .bind(key_hash)
        .fetch_optional(db.pool())
        .await?)
}

/// Revokes the key; false when no such live key exists in this workspace.
pub async fn revoke(db: &Db, workspace_id: &str, id: &str, now: i64) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE api_keys SET revoked_at = $1 WHERE workspace_id = $2 AND id = $3 AND revoked_at IS NULL",
    )
    .bind(now)
    .bind(workspace_id)
    .bind(id)
    .execute(db.pool())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Records a use, at most once a minute per key to keep the hot path cheap.
pub async fn touch(db: &Db, id: &str, now: i64) -> Result<()> {
    sqlx::query(
        "UPDATE api_keys SET last_used_at = $1 WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $3)",
    )
    .bind(now)
    .bind(id)
    .bind(now - 60_000)
    .execute(db.pool())
    .await?;
    Ok(())
}
