//! Connect links: a host application's single-use, expiring invitation for one of its creators
//! to connect (or reconnect) an account, ending back at the host's `return_url`. Only the
//! SHA-256 of the link's token is stored; [`consume`] spends a link atomically, so of two
//! requests racing with one link exactly one wins. The allowed origins a link may return to
//! are [`crate::allowed_origins`].

pub use crate::oauth_states::Refusal;
use crate::{Db, Result};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ConnectLink {
    pub id: String,
    pub workspace_id: String,
    /// The platforms offered, space-separated (`tiktok instagram`).
    pub platforms: String,
    /// The host's id for the creator, stamped on the account and its creator.
    pub external_ref: Option<String>,
    pub return_url: String,
    /// The account this link connects again (its platform identity must come back).
    pub reconnect_account_id: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
    /// When the creator started connecting with it (a link is spent then).
    pub used_at: Option<i64>,
    /// When its flow ended (connected, reconnected, declined or error).
    pub finished_at: Option<i64>,
    pub status: Option<String>,
    /// The error's code when `status` is `declined` or `error`.
    pub error: Option<String>,
    pub account_id: Option<String>,
}

impl ConnectLink {
    pub fn platform_names(&self) -> impl Iterator<Item = &str> {
        self.platforms.split_whitespace()
    }
}

const COLUMNS: &str = "id, workspace_id, platforms, external_ref, return_url, reconnect_account_id, \
     created_at, expires_at, used_at, finished_at, status, error, account_id";

pub async fn insert(db: &Db, link: &ConnectLink, token_hash: &str) -> Result<()> {
    sqlx::query(
        "INSERT INTO connect_links (id, workspace_id, token_hash, platforms, external_ref, return_url, \
         reconnect_account_id, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&link.id)
    .bind(&link.workspace_id)
    .bind(token_hash)
    .bind(&link.platforms)
    .bind(&link.external_ref)
    .bind(&link.return_url)
    .bind(&link.reconnect_account_id)
    .bind(link.created_at)
    .bind(link.expires_at)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// Why the link with this hash cannot be used, read after a failed [`peek`] or [`consume`].
async fn refusal(db: &Db, token_hash: &str) -> Result<Refusal> {
    let seen: Option<(Option<i64>, i64)> =
        sqlx::query_as("SELECT used_at, expires_at FROM connect_links WHERE token_hash = $1")
            .bind(token_hash)
            .fetch_optional(db.pool())
            .await?;
    Ok(match seen {
        None => Refusal::Unknown,
        Some((Some(_), _)) => Refusal::AlreadyUsed,
        Some((None, _)) => Refusal::Expired,
    })
}

/// The link when it is live (not used, not expired), without spending it.
pub async fn peek(
    db: &Db,
    token_hash: &str,
    now: i64,
) -> Result<std::result::Result<ConnectLink, Refusal>> {
    let live: Option<ConnectLink> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM connect_links WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2"
    ))
    .bind(token_hash)
    .bind(now)
    .fetch_optional(db.pool())
    .await?;
    match live {
        Some(link) => Ok(Ok(link)),
        None => Ok(Err(refusal(db, token_hash).await?)),
    }
}

/// Spends the link and returns it, atomically (single use).
pub async fn consume(
    db: &Db,
    token_hash: &str,
    now: i64,
) -> Result<std::result::Result<ConnectLink, Refusal>> {
    let won: Option<ConnectLink> = sqlx::query_as(&format!(
        "UPDATE connect_links SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL AND expires_at > $1 \
         RETURNING {COLUMNS}"
    ))
    .bind(now)
    .bind(token_hash)
    .fetch_optional(db.pool())
    .await?;
    match won {
        Some(link) => Ok(Ok(link)),
        None => Ok(Err(refusal(db, token_hash).await?)),
    }
}

pub async fn get(db: &Db, workspace_id: &str, id: &str) -> Result<Option<ConnectLink>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM connect_links WHERE workspace_id = $1 AND id = $2"
    ))
    .bind(workspace_id)
    .bind(id)
    .fetch_optional(db.pool())
    .await?)
}

/// Records how the link's flow ended; only the first ending counts (false for a later one).
pub async fn finish(
    db: &Db,
    workspace_id: &str,
    id: &str,
    status: &str,
    error: Option<&str>,
    account_id: Option<&str>,
    now: i64,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE connect_links SET finished_at = $1, status = $2, error = $3, account_id = $4 \
         WHERE workspace_id = $5 AND id = $6 AND finished_at IS NULL",
    )
    .bind(now)
    .bind(status)
    .bind(error)
    .bind(account_id)
    .bind(workspace_id)
    .bind(id)
    .execute(db.pool())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Forgets links that expired before `before`.
pub async fn prune(db: &Db, before: i64) -> Result<u64> {
    Ok(
        sqlx::query("DELETE FROM connect_links WHERE expires_at < $1")
            .bind(before)
            .execute(db.pool())
            .await?
            .rows_affected(),
    )
}
