//! Connected provider accounts. Tokens are stored as vault envelopes (the app layer encrypts
//! them, bound to this table, the row id and the column), never as plain text.
//!
//! Refreshing a token spends a refresh token that providers rotate, so two instances must never
//! refresh one account at once: [`try_lease_refresh`] takes a lease on the row (a compare-and-set
//! on `refresh_lease_until`), and [`store_refreshed`] writes the new pair only while the lease is
//! still ours.

use serde::Serialize;
use tidepost_domain::Platform;

use crate::{Db, Result};

pub const TABLE: &str = "accounts";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountStatus {
    Active,
    NeedsReauth,
}

impl AccountStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AccountStatus::Active => "active",
            AccountStatus::NeedsReauth => "needs_reauth",
        }
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Account {
    pub id: String,
    pub workspace_id: String,
    pub platform: Platform,
    pub provider_user_id: String,
    pub display_name: String,
    pub username: Option<String>,
    pub avatar_url: Option<String>,
    pub status: String,
    pub status_reason: Option<String>,
    pub scopes: String,
    /// Vault envelope.
    pub access_token: String,
    /// Vault envelope.
    pub refresh_token: Option<String>,
    pub access_expires_at: Option<i64>,
    pub refresh_expires_at: Option<i64>,
    pub last_refreshed_at: Option<i64>,
    pub refresh_lease_until: Option<i64>,
    pub refresh_lease_by: Option<String>,
    /// Platform-specific JSON (e.g. the Facebook Page an Instagram account is reached through).
    pub details: String,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Account {
    pub fn needs_reauth(&self) -> bool {
        self.status == AccountStatus::NeedsReauth.as_str()
    }
}

macro_rules! select {
    ($rest:literal) => {
        concat!(
            "SELECT id, workspace_id, platform, provider_user_id, display_name, username, avatar_url, status, \
             status_reason, scopes, access_token, refresh_token, access_expires_at, refresh_expires_at, \
             last_refreshed_at, refresh_lease_until, refresh_lease_by, details, created_at, updated_at FROM accounts ",
            $rest
        )
    };
}

/// Inserts the account, or, when the same provider identity is already connected in this
/// workspace, replaces its profile and tokens and marks it active again.
pub async fn upsert(db: &Db, a: &Account) -> Result<()> {
    sqlx::query(
        "INSERT INTO accounts (id, workspace_id, platform, provider_user_id, display_name, username, avatar_url, \
         status, status_reason, scopes, access_token, refresh_token, access_expires_at, refresh_expires_at, \
         last_refreshed_at, details, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18) \
         ON CONFLICT (workspace_id, platform, provider_user_id) DO UPDATE SET \
         display_name = excluded.display_name, username = excluded.username, avatar_url = excluded.avatar_url, \
         status = excluded.status, status_reason = NULL, scopes = excluded.scopes, \
         access_token = excluded.access_token, refresh_token = excluded.refresh_token, \
         access_expires_at = excluded.access_expires_at, refresh_expires_at = excluded.refresh_expires_at, \
         last_refreshed_at = excluded.last_refreshed_at, details = excluded.details, updated_at = excluded.updated_at, \
         refresh_lease_until = NULL, refresh_lease_by = NULL",
    )
    .bind(&a.id)
    .bind(&a.workspace_id)
    .bind(a.platform.as_str())
    .bind(&a.provider_user_id)
    .bind(&a.display_name)
    .bind(&a.username)
    .bind(&a.avatar_url)
    .bind(&a.status)
    .bind(&a.status_reason)
    .bind(&a.scopes)
    .bind(&a.access_token)
    .bind(&a.refresh_token)
    .bind(a.access_expires_at)
    .bind(a.refresh_expires_at)
    .bind(a.last_refreshed_at)
    .bind(&a.details)
    .bind(a.created_at)
    .bind(a.updated_at)
    .execute(db.pool())
    .await?;
    Ok(())
}

pub async fn get(db: &Db, workspace_id: &str, id: &str) -> Result<Option<Account>> {
    Ok(
        sqlx::query_as(select!("WHERE workspace_id = $1 AND id = $2"))
            .bind(workspace_id)
            .bind(id)
            .fetch_optional(db.pool())
            .await?,
    )
}

/// The account of this provider identity in this workspace, if connected.
pub async fn find(
    db: &Db,
    workspace_id: &str,
    platform: Platform,
    provider_user_id: &str,
) -> Result<Option<Account>> {
    Ok(sqlx::query_as(select!(
        "WHERE workspace_id = $1 AND platform = $2 AND provider_user_id = $3"
    ))
    .bind(workspace_id)
    .bind(platform.as_str())
    .bind(provider_user_id)
    .fetch_optional(db.pool())
    .await?)
}

pub async fn list(db: &Db, workspace_id: &str) -> Result<Vec<Account>> {
    Ok(sqlx::query_as(select!(
        "WHERE workspace_id = $1 ORDER BY platform, display_name, id"
    ))
    .bind(workspace_id)
    .fetch_all(db.pool())
    .await?)
}

/// One page of the workspace's accounts, newest first (by UUIDv7 id): those with an id below
/// `after` (the last id of the previous page), at most `limit`.
pub async fn page(
    db: &Db,
    workspace_id: &str,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<Account>> {
    Ok(sqlx::query_as(select!(
        "WHERE workspace_id = $1 AND ($2 IS NULL OR id < $2) ORDER BY id DESC LIMIT $3"
    ))
    .bind(workspace_id)
    .bind(after)
    .bind(limit)
    .fetch_all(db.pool())
    .await?)
}

/// An account with the host application's id for its creator (`external_ref`, set by a connect
/// link).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Referenced {
    #[sqlx(flatten)]
    pub account: Account,
    pub external_ref: Option<String>,
}

macro_rules! select_referenced {
    ($rest:literal) => {
        concat!(
            "SELECT id, workspace_id, platform, provider_user_id, display_name, username, avatar_url, status, \
             status_reason, scopes, access_token, refresh_token, access_expires_at, refresh_expires_at, \
             last_refreshed_at, refresh_lease_until, refresh_lease_by, details, created_at, updated_at, \
             external_ref FROM accounts ",
            $rest
        )
    };
}

/// [`page`] with each account's `external_ref`, optionally only the accounts whose
/// `external_ref` is `external_ref`.
pub async fn page_referenced(
    db: &Db,
    workspace_id: &str,
    external_ref: Option<&str>,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<Referenced>> {
    Ok(sqlx::query_as(select_referenced!(
        "WHERE workspace_id = $1 AND ($2 IS NULL OR external_ref = $2) AND ($3 IS NULL OR id < $3) \
         ORDER BY id DESC LIMIT $4"
    ))
    .bind(workspace_id)
    .bind(external_ref)
    .bind(after)
    .bind(limit)
    .fetch_all(db.pool())
    .await?)
}

/// One account with its `external_ref`.
pub async fn get_referenced(db: &Db, workspace_id: &str, id: &str) -> Result<Option<Referenced>> {
    Ok(
        sqlx::query_as(select_referenced!("WHERE workspace_id = $1 AND id = $2"))
            .bind(workspace_id)
            .bind(id)
            .fetch_optional(db.pool())
            .await?,
    )
}

/// The host application's id for the account's creator, if one was given.
pub async fn external_ref(db: &Db, workspace_id: &str, id: &str) -> Result<Option<String>> {
    let found: Option<Option<String>> =
        sqlx::query_scalar("SELECT external_ref FROM accounts WHERE workspace_id = $1 AND id = $2")
            .bind(workspace_id)
            .bind(id)
            .fetch_optional(db.pool())
            .await?;
    Ok(found.flatten())
}

/// Stamps the host application's id for the creator on the account and on its creator record,
/// in one transaction.
pub async fn set_external_ref(
    db: &Db,
    workspace_id: &str,
    id: &str,
    external_ref: &str,
) -> Result<()> {
    let mut tx = db.begin_write().await?;
    sqlx::query("UPDATE accounts SET external_ref = $1 WHERE workspace_id = $2 AND id = $3")
        .bind(external_ref)
        .bind(workspace_id)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "UPDATE creators SET external_ref = $1 WHERE workspace_id = $2 \
         AND id = (SELECT creator_id FROM accounts WHERE workspace_id = $2 AND id = $3)",
    )
    .bind(external_ref)
    .bind(workspace_id)
    .bind(id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Every workspace's account for one provider identity: provider webhooks name the identity,
/// not the workspace, so this is the one lookup that crosses workspaces.
pub async fn by_provider_identity(
    db: &Db,
    platform: Platform,
    provider_user_id: &str,
) -> Result<Vec<Account>> {
    Ok(sqlx::query_as(select!(
        "WHERE platform = $1 AND provider_user_id = $2 ORDER BY id"
    ))
    .bind(platform.as_str())
    .bind(provider_user_id)
    .fetch_all(db.pool())
    .await?)
}

/// Replaces the account's platform details (JSON text).
pub async fn set_details(db: &Db, workspace_id: &str, id: &str, details: &str) -> Result<()> {
    sqlx::query("UPDATE accounts SET details = $1 WHERE workspace_id = $2 AND id = $3")
        .bind(details)
        .bind(workspace_id)
        .bind(id)
        .execute(db.pool())
        .await?;
    Ok(())
}

pub async fn delete(db: &Db, workspace_id: &str, id: &str) -> Result<bool> {
    let done = sqlx::query("DELETE FROM accounts WHERE workspace_id = $1 AND id = $2")
        .bind(workspace_id)
        .bind(id)
        .execute(db.pool())
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Marks the account; returns false when it was already in that status (so callers emit an
/// event once).
pub async fn set_status(
    db: &Db,
    workspace_id: &str,
    id: &str,
    status: AccountStatus,
    reason: Option<&str>,
    now: i64,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE accounts SET status = $1, status_reason = $2, updated_at = $3 \
         WHERE workspace_id = $4 AND id = $5 AND status <> $1",
    )
    .bind(status.as_str())
    .bind(reason)
    .bind(now)
    .bind(workspace_id)
    .bind(id)
    .execute(db.pool())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Active accounts whose access token expires before `before`, oldest expiry first.
pub async fn due_for_refresh(db: &Db, before: i64, limit: i64) -> Result<Vec<Account>> {
    Ok(sqlx::query_as(select!(
        "WHERE status = 'active' AND access_expires_at IS NOT NULL AND access_expires_at < $1 \
         ORDER BY access_expires_at LIMIT $2"
    ))
    .bind(before)
    .bind(limit)
    .fetch_all(db.pool())
    .await?)
}

/// [`due_for_refresh`] for one platform (whose tokens live longer and are renewed earlier).
pub async fn due_for_refresh_on(
    db: &Db,
    platform: Platform,
    before: i64,
    limit: i64,
) -> Result<Vec<Account>> {
    Ok(sqlx::query_as(select!(
        "WHERE status = 'active' AND platform = $1 AND access_expires_at IS NOT NULL AND access_expires_at < $2 \
         ORDER BY access_expires_at LIMIT $3"
    ))
    .bind(platform.as_str())
    .bind(before)
    .bind(limit)
    .fetch_all(db.pool())
    .await?)
}

/// Takes the refresh lease if nobody holds a live one.
pub async fn try_lease_refresh(
    db: &Db,
    id: &str,
    holder: &str,
    now: i64,
    lease_ms: i64,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE accounts SET refresh_lease_until = $1, refresh_lease_by = $2 \
         WHERE id = $3 AND (refresh_lease_until IS NULL OR refresh_lease_until < $4)",
    )
    .bind(now + lease_ms)
    .bind(holder)
    .bind(id)
    .bind(now)
    .execute(db.pool())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// New tokens from a refresh, written only while `holder` still holds the lease, which this
/// releases. A missing refresh token keeps the stored one (a refresh never blanks it).
#[derive(Debug, Clone)]
pub struct Refreshed<'a> {
    pub access_token: &'a str,
    pub refresh_token: Option<&'a str>,
    pub access_expires_at: Option<i64>,
    pub refresh_expires_at: Option<i64>,
}

pub async fn store_refreshed(
    db: &Db,
    id: &str,
    holder: &str,
    tokens: &Refreshed<'_>,
    now: i64,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE accounts SET access_token = $1, refresh_token = COALESCE($2, refresh_token), \
         access_expires_at = $3, refresh_expires_at = COALESCE($4, refresh_expires_at), last_refreshed_at = $5, \
         updated_at = $5, refresh_lease_until = NULL, refresh_lease_by = NULL, status = 'active', status_reason = NULL \
         WHERE id = $6 AND refresh_lease_by = $7",
    )
    .bind(tokens.access_token)
    .bind(tokens.refresh_token)
    .bind(tokens.access_expires_at)
    .bind(tokens.refresh_expires_at)
    .bind(now)
    .bind(id)
    .bind(holder)
    .execute(db.pool())
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn release_refresh(db: &Db, id: &str, holder: &str) -> Result<()> {
    sqlx::query("UPDATE accounts SET refresh_lease_until = NULL, refresh_lease_by = NULL WHERE id = $1 AND refresh_lease_by = $2")
        .bind(id)
        .bind(holder)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// The stored token envelopes of every account, for key rotation.
pub async fn all_token_envelopes(db: &Db) -> Result<Vec<(String, String, Option<String>)>> {
    Ok(
        sqlx::query_as("SELECT id, access_token, refresh_token FROM accounts ORDER BY id")
            .fetch_all(db.pool())
            .await?,
    )
}

/// Replaces one account's envelopes if they are still the ones read (so a refresh that
/// happened meanwhile is not undone by rotation).
pub async fn replace_token_envelopes(
    db: &Db,
    id: &str,
    old: (&str, Option<&str>),
    new: (&str, Option<&str>),
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE accounts SET access_token = $1, refresh_token = $2 \
         WHERE id = $3 AND access_token = $4 AND COALESCE(refresh_token, '') = COALESCE($5, '')",
    )
    .bind(new.0)
    .bind(new.1)
    .bind(id)
    .bind(old.0)
    .bind(old.1)
    .execute(db.pool())
    .await?;
    Ok(done.rows_affected() == 1)
}
