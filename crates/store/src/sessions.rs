//! Browser sessions. The cookie holds a random token; the database holds only its SHA-256, so a
//! leaked database does not leak live sessions.

use crate::{Db, Result};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Session {
    pub token_hash: String,
    pub workspace_id: String,
    pub user_id: String,
    pub csrf_token: String,
    pub created_at: i64,
    pub expires_at: i64,
}

pub async fn create(db: &Db, session: &Session) -> Result<()> {
    sqlx::query(
        "INSERT INTO sessions (token_hash, workspace_id, user_id, csrf_token, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&session.token_hash)
    .bind(&session.workspace_id)
    .bind(&session.user_id)
    .bind(&session.csrf_token)
    .bind(session.created_at)
    .bind(session.expires_at)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// The session with this token hash, if it has not expired at `now`.
pub async fn find_live(db: &Db, token_hash: &str, now: i64) -> Result<Option<Session>> {
    Ok(sqlx::query_as(
        "SELECT token_hash, workspace_id, user_id, csrf_token, created_at, expires_at \
         FROM sessions WHERE token_hash = $1 AND expires_at > $2",
    )
    .bind(token_hash)
    .bind(now)
    .fetch_optional(db.pool())
    .await?)
}

/// Moves the session to another of the user's workspaces.
pub async fn switch_workspace(db: &Db, token_hash: &str, workspace_id: &str) -> Result<()> {
    sqlx::query("UPDATE sessions SET workspace_id = $1 WHERE token_hash = $2")
        .bind(workspace_id)
        .bind(token_hash)
        .execute(db.pool())
        .await?;
    Ok(())
}

pub async fn delete(db: &Db, token_hash: &str) -> Result<()> {
    sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
        .bind(token_hash)
        .execute(db.pool())
        .await?;
    Ok(())
}

pub async fn delete_expired(db: &Db, now: i64) -> Result<u64> {
    Ok(sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
        .bind(now)
        .execute(db.pool())
        .await?
        .rows_affected())
}
