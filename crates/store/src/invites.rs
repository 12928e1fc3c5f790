//! Invites to join a workspace with a role: one-time, expiring links. Only the SHA-256 of a
//! link's token is stored; accepting spends the invite with one conditional update, so of two
//! acceptances of one link exactly one joins.

use tidepost_domain::Role;

use crate::error::conflict_as;
use crate::users::User;
use crate::{Db, Result};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Invite {
    pub id: String,
    pub workspace_id: String,
    pub email: String,
    pub role: Role,
    pub token_hash: String,
    pub invited_by: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
    pub accepted_at: Option<i64>,
    pub accepted_by: Option<String>,
    pub revoked_at: Option<i64>,
}

/// Where an invite stands at `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InviteState {
    Pending,
    Accepted,
    Revoked,
    Expired,
}

impl Invite {
    pub fn state(&self, now: i64) -> InviteState {
        if self.accepted_at.is_some() {
            InviteState::Accepted
        } else if self.revoked_at.is_some() {
            InviteState::Revoked
        } else if self.expires_at <= now {
            InviteState::Expired
        } else {
            InviteState::Pending
        }
    }
}

macro_rules! select {
    ($rest:literal) => {
        concat!(
            "SELECT id, workspace_id, email, role, token_hash, invited_by, created_at, expires_at, \
             accepted_at, accepted_by, revoked_at FROM invites ",
            $rest
        )
    };
}

pub async fn insert(db: &Db, invite: &Invite) -> Result<()> {
    sqlx::query(
        "INSERT INTO invites (id, workspace_id, email, role, token_hash, invited_by, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&invite.id)
    .bind(&invite.workspace_id)
    .bind(&invite.email)
    .bind(invite.role.as_str())
    .bind(&invite.token_hash)
    .bind(&invite.invited_by)
    .bind(invite.created_at)
    .bind(invite.expires_at)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// The workspace's invites not yet accepted, revoked or expired at `now`, newest first.
pub async fn pending(db: &Db, workspace_id: &str, now: i64) -> Result<Vec<Invite>> {
    Ok(sqlx::query_as(select!(
        "WHERE workspace_id = $1 AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > $2 \
         ORDER BY created_at DESC, id DESC"
    ))
    .bind(workspace_id)
    .bind(now)
    .fetch_all(db.pool())
    .await?)
}

/// The invite behind a link (by its token's hash), whatever its state.
pub async fn by_token_hash(db: &Db, token_hash: &str) -> Result<Option<Invite>> {
    Ok(sqlx::query_as(select!("WHERE token_hash = $1"))
        .bind(token_hash)
        .fetch_optional(db.pool())
        .await?)
}

pub async fn get(db: &Db, workspace_id: &str, id: &str) -> Result<Option<Invite>> {
    Ok(
        sqlx::query_as(select!("WHERE workspace_id = $1 AND id = $2"))
            .bind(workspace_id)
            .bind(id)
            .fetch_optional(db.pool())
            .await?,
    )
}

/// Revokes a pending invite; false when this workspace has no such pending invite.
pub async fn revoke(db: &Db, workspace_id: &str, id: &str, now: i64) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE invites SET revoked_at = $1 WHERE workspace_id = $2 AND id = $3 \
         AND accepted_at IS NULL AND revoked_at IS NULL",
    )
    .bind(now)
    .bind(workspace_id)
    .bind(id)
    .execute(db.pool())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Who accepts an invite.
#[derive(Debug, Clone, Copy)]
pub enum Joiner<'a> {
    /// A user who exists (signed in).
    Existing(&'a str),
    /// A new person: the user is created in the same transaction (its password already hashed).
    New(&'a User),
}

/// Spends the invite for the joiner and makes them a member with the invite's role (an existing
/// membership keeps the higher of the two roles), in one transaction. False when the invite was
/// accepted, revoked or expired in the meantime: nothing changes then (no user is created).
pub async fn accept(db: &Db, invite: &Invite, joiner: Joiner<'_>, now: i64) -> Result<bool> {
    let mut tx = db.begin_write().await?;
    let user_id = match joiner {
        Joiner::Existing(id) => id,
        Joiner::New(user) => {
            sqlx::query(
                "INSERT INTO users (id, email, password_hash, created_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(&user.id)
            .bind(&user.email)
            .bind(&user.password_hash)
            .bind(user.created_at)
            .execute(&mut *tx)
            .await
            .map_err(conflict_as("a user with this email"))?;
            &user.id
        }
    };
    let spent = sqlx::query(
        "UPDATE invites SET accepted_at = $1, accepted_by = $2 WHERE id = $3 \
         AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > $1",
    )
    .bind(now)
    .bind(user_id)
    .bind(&invite.id)
    .execute(&mut *tx)
    .await?;
    if spent.rows_affected() != 1 {
        return Ok(false);
    }
    let current: Option<Role> =
        sqlx::query_scalar("SELECT role FROM memberships WHERE workspace_id = $1 AND user_id = $2")
            .bind(&invite.workspace_id)
            .bind(user_id)
            .fetch_optional(&mut *tx)
            .await?;
    match current {
        Some(role) if role >= invite.role => {}
        Some(_) => {
            sqlx::query(
                "UPDATE memberships SET role = $1 WHERE workspace_id = $2 AND user_id = $3",
            )
            .bind(invite.role.as_str())
            .bind(&invite.workspace_id)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        }
        None => {
            sqlx::query(
                "INSERT INTO memberships (workspace_id, user_id, role, created_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(&invite.workspace_id)
            .bind(user_id)
            .bind(invite.role.as_str())
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
    }
    tx.commit().await?;
    Ok(true)
}
