//! Creators: a person or brand of the workspace, owning one or more connected accounts
//! (`accounts.creator_id`). Connecting an account that has no creator gives it one named after
//! the account ([`ensure_for_account`]), so no account is ever without one for long.

use serde::Serialize;
use sqlx::AnyConnection;
use tidepost_domain::Platform;

use super::{Cursor, Paged};
use crate::{Db, Result, StoreError};

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Creator {
    pub id: String,
    pub workspace_id: String,
    pub name: String,
    pub notes: String,
    pub created_at: i64,
    pub updated_at: i64,
    /// The host application's id for this creator (stamped by a connect link).
    pub external_ref: Option<String>,
}

/// The accounts of a creator, as lists show them (no tokens).
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct OwnedAccount {
    pub id: String,
    pub creator_id: Option<String>,
    pub platform: Platform,
    pub display_name: String,
    pub username: Option<String>,
    pub avatar_url: Option<String>,
    pub status: String,
    pub provider_user_id: String,
}

const COLUMNS: &str = "id, workspace_id, name, notes, created_at, updated_at, external_ref";
const ACCOUNT_COLUMNS: &str =
    "id, creator_id, platform, display_name, username, avatar_url, status, provider_user_id";

pub const NAME_MAX: usize = 200;
pub const NOTES_MAX: usize = 10_000;

/// Checks a name and notes as given by a person; the message says what to change.
pub fn validate(name: &str, notes: &str) -> std::result::Result<(), String> {
    let trimmed = name.trim();
    if trimmed.is_empty() {
        return Err("name must not be empty".into());
    }
    if trimmed.chars().count() > NAME_MAX {
        return Err(format!("name must be at most {NAME_MAX} characters"));
    }
    if notes.chars().count() > NOTES_MAX {
        return Err(format!("notes must be at most {NOTES_MAX} characters"));
    }
    Ok(())
}

pub async fn create_in(
    conn: &mut AnyConnection,
    workspace_id: &str,
    name: &str,
    notes: &str,
    now: i64,
) -> Result<Creator> {
    let creator = Creator {
        id: tidepost_domain::new_id(),
        workspace_id: workspace_id.to_string(),
        name: name.trim().to_string(),
        notes: notes.to_string(),
        created_at: now,
        updated_at: now,
        external_ref: None,
    };
    sqlx::query(&format!(
        "INSERT INTO creators ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
    ))
    .bind(&creator.id)
    .bind(&creator.workspace_id)
    .bind(&creator.name)
    .bind(&creator.notes)
    .bind(creator.created_at)
    .bind(creator.updated_at)
    .bind(&creator.external_ref)
    .execute(conn)
    .await?;
    Ok(creator)
}

pub async fn create(db: &Db, workspace_id: &str, name: &str, notes: &str) -> Result<Creator> {
    let mut conn = db.pool().acquire().await?;
    create_in(
        &mut conn,
        workspace_id,
        name,
        notes,
        tidepost_domain::now_ms(),
    )
    .await
}

pub async fn get(db: &Db, workspace_id: &str, id: &str) -> Result<Option<Creator>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM creators WHERE workspace_id = $1 AND id = $2"
    ))
    .bind(workspace_id)
    .bind(id)
    .fetch_optional(db.pool())
    .await?)
}

/// Newest first (ids are UUIDv7), optionally only names containing `search`, or only the
/// creators with the host's id `external_ref`.
pub async fn list(
    db: &Db,
    workspace_id: &str,
    search: Option<&str>,
    external_ref: Option<&str>,
    after: &Cursor,
    limit: i64,
) -> Result<Paged<Creator>> {
    let pattern = search
        .filter(|s| !s.trim().is_empty())
        .map(|s| super::like_pattern(s.trim()));
    let rows: Vec<Creator> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM creators WHERE workspace_id = $1 \
         AND (created_at < $2 OR (created_at = $2 AND id < $3)) \
         AND ($4 IS NULL OR LOWER(name) LIKE $4 ESCAPE '\\') \
         AND ($5 IS NULL OR external_ref = $5) \
         ORDER BY created_at DESC, id DESC LIMIT $6"
    ))
    .bind(workspace_id)
    .bind(after.at)
    .bind(&after.id)
    .bind(pattern)
    .bind(external_ref)
    .bind(limit + 1)
    .fetch_all(db.pool())
    .await?;
    Ok(Paged::from_fetch(rows, limit, |c| Cursor {
        at: c.created_at,
        id: c.id.clone(),
    }))
}

/// Renames and re-notes; false when no such creator is in the workspace.
pub async fn update(
    db: &Db,
    workspace_id: &str,
    id: &str,
    name: &str,
    notes: &str,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE creators SET name = $1, notes = $2, updated_at = $3 WHERE workspace_id = $4 AND id = $5",
    )
    .bind(name.trim())
    .bind(notes)
    .bind(tidepost_domain::now_ms())
    .bind(workspace_id)
    .bind(id)
    .execute(db.pool())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Deletes a creator that owns no account (its interactions keep their contact, and lose the
/// creator link). `Conflict` when it still owns accounts: they must be moved first, so none
/// is left without a creator.
pub async fn delete(db: &Db, workspace_id: &str, id: &str) -> Result<bool> {
    let mut tx = db.begin_write().await?;
    let owned: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM accounts WHERE workspace_id = $1 AND creator_id = $2",
    )
    .bind(workspace_id)
    .bind(id)
    .fetch_one(&mut *tx)
    .await?;
    if owned > 0 {
        return Err(StoreError::Conflict {
            what: "accounts owned by this creator (move or detach them first); a creator with",
        });
    }
    let done = sqlx::query("DELETE FROM creators WHERE workspace_id = $1 AND id = $2")
        .bind(workspace_id)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(done.rows_affected() == 1)
}

/// The accounts a creator owns.
pub async fn accounts_of(db: &Db, workspace_id: &str, id: &str) -> Result<Vec<OwnedAccount>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE workspace_id = $1 AND creator_id = $2 \
         ORDER BY platform, display_name, id"
    ))
    .bind(workspace_id)
    .bind(id)
    .fetch_all(db.pool())
    .await?)
}

/// One account of the workspace with its creator link.
pub async fn account(
    db: &Db,
    workspace_id: &str,
    account_id: &str,
) -> Result<Option<OwnedAccount>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE workspace_id = $1 AND id = $2"
    ))
    .bind(workspace_id)
    .bind(account_id)
    .fetch_optional(db.pool())
    .await?)
}

/// The creator of an account, if it has one.
pub async fn creator_of_account(
    conn: &mut AnyConnection,
    workspace_id: &str,
    account_id: &str,
) -> Result<Option<String>> {
    Ok(sqlx::query_scalar::<_, Option<String>>(
        "SELECT creator_id FROM accounts WHERE workspace_id = $1 AND id = $2",
    )
    .bind(workspace_id)
    .bind(account_id)
    .fetch_optional(conn)
    .await?
    .flatten())
}

/// Moves an account to a creator of the same workspace. False when either is unknown there.
pub async fn attach(
    db: &Db,
    workspace_id: &str,
    creator_id: &str,
    account_id: &str,
) -> Result<bool> {
    let mut tx = db.begin_write().await?;
    let creator_exists: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM creators WHERE workspace_id = $1 AND id = $2")
            .bind(workspace_id)
            .bind(creator_id)
            .fetch_one(&mut *tx)
            .await?;
    if creator_exists == 0 {
        return Ok(false);
    }
    let done =
        sqlx::query("UPDATE accounts SET creator_id = $1 WHERE workspace_id = $2 AND id = $3")
            .bind(creator_id)
            .bind(workspace_id)
            .bind(account_id)
            .execute(&mut *tx)
            .await?;
    tx.commit().await?;
    Ok(done.rows_affected() == 1)
}

/// Takes an account away from `creator_id`: it gets a creator of its own, named after it.
/// Returns that new creator; `None` when the account is not this creator's.
pub async fn detach(
    db: &Db,
    workspace_id: &str,
    creator_id: &str,
    account_id: &str,
) -> Result<Option<Creator>> {
    let mut tx = db.begin_write().await?;
    let name: Option<String> = sqlx::query_scalar(
        "SELECT display_name FROM accounts WHERE workspace_id = $1 AND id = $2 AND creator_id = $3",
    )
    .bind(workspace_id)
    .bind(account_id)
    .bind(creator_id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(name) = name else {
        return Ok(None);
    };
    let now = tidepost_domain::now_ms();
    let own = create_in(&mut tx, workspace_id, &name, "", now).await?;
    sqlx::query("UPDATE accounts SET creator_id = $1 WHERE workspace_id = $2 AND id = $3")
        .bind(&own.id)
        .bind(workspace_id)
        .bind(account_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(Some(own))
}

/// Gives the account a creator named after it unless it has one; returns the creator id.
/// Safe to call concurrently: the link is set by compare-and-set, and a loser's fresh creator
/// is removed in the same transaction.
pub async fn ensure_for_account(
    db: &Db,
    workspace_id: &str,
    account_id: &str,
) -> Result<Option<String>> {
    let mut tx = db.begin_write().await?;
    let row: Option<(Option<String>, String)> = sqlx::query_as(
        "SELECT creator_id, display_name FROM accounts WHERE workspace_id = $1 AND id = $2",
    )
    .bind(workspace_id)
    .bind(account_id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((existing, name)) = row else {
        return Ok(None);
    };
    if let Some(existing) = existing {
        return Ok(Some(existing));
    }
    let now = tidepost_domain::now_ms();
    let creator = create_in(&mut tx, workspace_id, &name, "", now).await?;
    let linked = sqlx::query(
        "UPDATE accounts SET creator_id = $1 WHERE workspace_id = $2 AND id = $3 AND creator_id IS NULL",
    )
    .bind(&creator.id)
    .bind(workspace_id)
    .bind(account_id)
    .execute(&mut *tx)
    .await?;
    if linked.rows_affected() == 1 {
        tx.commit().await?;
        return Ok(Some(creator.id));
    }
    tx.rollback().await?;
    let mut conn = db.pool().acquire().await?;
    creator_of_account(&mut conn, workspace_id, account_id).await
}

/// Accounts of every workspace that have no creator yet (connected before the CRM existed).
pub async fn orphan_accounts(db: &Db, limit: i64) -> Result<Vec<(String, String)>> {
    Ok(sqlx::query_as(
        "SELECT workspace_id, id FROM accounts WHERE creator_id IS NULL ORDER BY id LIMIT $1",
    )
    .bind(limit)
    .fetch_all(db.pool())
    .await?)
}
