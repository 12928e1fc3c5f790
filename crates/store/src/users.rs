//! Users and their memberships in workspaces. Passwords arrive here already hashed (argon2id,
//! by the app layer); emails are stored lower-cased.

use serde::Serialize;
use tidepost_domain::{new_id, now_ms};

use crate::error::conflict_as;
use crate::workspaces::Workspace;
use crate::{Db, Result};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct User {
    pub id: String,
    pub email: String,
    pub password_hash: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Role {
    Owner,
    Member,
}

impl Role {
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Member => "member",
        }
    }
}

pub async fn create(db: &Db, email: &str, password_hash: &str) -> Result<User> {
    let user = User {
        id: new_id(),
        email: email.trim().to_lowercase(),
        password_hash: password_hash.to_string(),
        created_at: now_ms(),
    };
    sqlx::query("INSERT INTO users (id, email, password_hash, created_at) VALUES ($1, $2, $3, $4)")
        .bind(&user.id)
        .bind(&user.email)
        .bind(&user.password_hash)
        .bind(user.created_at)
        .execute(db.pool())
        .await
        .map_err(conflict_as("a user with this email"))?;
    Ok(user)
}

pub async fn by_email(db: &Db, email: &str) -> Result<Option<User>> {
    Ok(
        sqlx::query_as("SELECT id, email, password_hash, created_at FROM users WHERE email = $1")
            .bind(email.trim().to_lowercase())
            .fetch_optional(db.pool())
            .await?,
    )
}

pub async fn by_id(db: &Db, id: &str) -> Result<Option<User>> {
    Ok(
        sqlx::query_as("SELECT id, email, password_hash, created_at FROM users WHERE id = $1")
            .bind(id)
            .fetch_optional(db.pool())
            .await?,
    )
}

pub async fn set_password_hash(db: &Db, user_id: &str, password_hash: &str) -> Result<()> {
    sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
        .bind(password_hash)
        .bind(user_id)
        .execute(db.pool())
        .await?;
    Ok(())
}

pub async fn count(db: &Db) -> Result<i64> {
    Ok(sqlx::query_scalar("SELECT COUNT(*) FROM users")
        .fetch_one(db.pool())
        .await?)
}

/// Adds the user to the workspace (no-op when already a member).
pub async fn add_membership(db: &Db, workspace_id: &str, user_id: &str, role: Role) -> Result<()> {
    sqlx::query(
        "INSERT INTO memberships (workspace_id, user_id, role, created_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (workspace_id, user_id) DO NOTHING",
    )
    .bind(workspace_id)
    .bind(user_id)
    .bind(role.as_str())
    .bind(now_ms())
    .execute(db.pool())
    .await?;
    Ok(())
}

/// The workspaces the user belongs to, oldest membership first.
pub async fn workspaces_of(db: &Db, user_id: &str) -> Result<Vec<Workspace>> {
    Ok(sqlx::query_as(
        "SELECT w.id, w.slug, w.name, w.created_at FROM workspaces w \
         JOIN memberships m ON m.workspace_id = w.id WHERE m.user_id = $1 ORDER BY m.created_at, w.slug",
    )
    .bind(user_id)
    .fetch_all(db.pool())
    .await?)
}

pub async fn is_member(db: &Db, workspace_id: &str, user_id: &str) -> Result<bool> {
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM memberships WHERE workspace_id = $1 AND user_id = $2",
    )
    .bind(workspace_id)
    .bind(user_id)
    .fetch_one(db.pool())
    .await?;
    Ok(n > 0)
}
