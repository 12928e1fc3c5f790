//! Pending OAuth authorizations. The `state` sent to the provider is 32 random bytes; only its
//! SHA-256 is stored, and the callback finds the row by hashing what it received, so the lookup
//! never compares the secret itself byte by byte. Each state is single use and expires.

use crate::{Db, Result};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OAuthState {
    pub state_hash: String,
    pub workspace_id: String,
    pub user_id: Option<String>,
    /// `tiktok`, `facebook` or `instagram`.
    pub flow: String,
    /// Vault envelope of the PKCE verifier, when the flow uses PKCE.
    pub pkce_verifier: Option<String>,
    /// Where to send the person afterwards (a relative path), or a host app's URL.
    pub return_to: Option<String>,
    /// The connect link this authorization was started from (its callback finishes into it).
    pub connect_link_id: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
}

pub async fn insert(db: &Db, s: &OAuthState) -> Result<()> {
    sqlx::query(
        "INSERT INTO oauth_states (state_hash, workspace_id, user_id, flow, pkce_verifier, return_to, created_at, expires_at, connect_link_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&s.state_hash)
    .bind(&s.workspace_id)
    .bind(&s.user_id)
    .bind(&s.flow)
    .bind(&s.pkce_verifier)
    .bind(&s.return_to)
    .bind(s.created_at)
    .bind(s.expires_at)
    .bind(&s.connect_link_id)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// Why a state was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Unknown,
    AlreadyUsed,
    Expired,
}

/// Marks the state used and returns it, atomically: of two callbacks racing with one state,
/// exactly one wins.
pub async fn consume(
    db: &Db,
    state_hash: &str,
    now: i64,
) -> Result<std::result::Result<OAuthState, Refusal>> {
    let won: Option<OAuthState> = sqlx::query_as(
        "UPDATE oauth_states SET used_at = $1 WHERE state_hash = $2 AND used_at IS NULL AND expires_at > $1 \
         RETURNING state_hash, workspace_id, user_id, flow, pkce_verifier, return_to, created_at, expires_at, used_at, connect_link_id",
    )
    .bind(now)
    .bind(state_hash)
    .fetch_optional(db.pool())
    .await?;
    if let Some(state) = won {
        return Ok(Ok(state));
    }
    let seen: Option<(Option<i64>, i64)> =
        sqlx::query_as("SELECT used_at, expires_at FROM oauth_states WHERE state_hash = $1")
            .bind(state_hash)
            .fetch_optional(db.pool())
            .await?;
    Ok(Err(match seen {
        None => Refusal::Unknown,
        Some((Some(_), _)) => Refusal::AlreadyUsed,
        Some((None, _)) => Refusal::Expired,
    }))
}

/// The state when it is live (not used, not expired), without using it: a page that shows a
/// pending choice again reads it this way.
pub async fn peek(db: &Db, state_hash: &str, now: i64) -> Result<Option<OAuthState>> {
    Ok(sqlx::query_as(
        "SELECT state_hash, workspace_id, user_id, flow, pkce_verifier, return_to, created_at, expires_at, used_at, connect_link_id \
         FROM oauth_states WHERE state_hash = $1 AND used_at IS NULL AND expires_at > $2",
    )
    .bind(state_hash)
    .bind(now)
    .fetch_optional(db.pool())
    .await?)
}

/// Forgets states that expired before `before`.
pub async fn prune(db: &Db, before: i64) -> Result<u64> {
    Ok(
        sqlx::query("DELETE FROM oauth_states WHERE expires_at < $1")
            .bind(before)
            .execute(db.pool())
            .await?
            .rows_affected(),
    )
}

/// The workspace and connect link of a state, used or not (a callback of a link's flow finishes
/// into the link even when the state itself is refused).
pub async fn connect_link_of(db: &Db, state_hash: &str) -> Result<Option<(String, String)>> {
    Ok(sqlx::query_as(
        "SELECT workspace_id, connect_link_id FROM oauth_states \
         WHERE state_hash = $1 AND connect_link_id IS NOT NULL",
    )
    .bind(state_hash)
    .fetch_optional(db.pool())
    .await?)
}
