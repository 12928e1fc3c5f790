//! Interactions: a comment, reply or mention (later, messages) on a creator's account, linking
//! the contact who made it (none for the account's own replies), the creator, the account, the
//! post target and the provider's media id. `(workspace, platform, provider_id)` is unique, so
//! recording the same provider object twice (a duplicate webhook, a re-pulled page, a webhook
//! after a pull) is a no-op that reports it was already there.

use serde::Serialize;
use sqlx::AnyConnection;
use tidepost_domain::Platform;

use super::contacts::{self, Sighting};
use super::{Cursor, Paged};
use crate::{Db, Result};

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Interaction {
    pub id: String,
    pub workspace_id: String,
    pub platform: Platform,
    /// `comment`, `reply`, `mention` or `message`.
    pub kind: String,
    /// `inbound` (from a contact) or `outbound` (the account answering).
    pub direction: String,
    pub provider_id: String,
    pub parent_provider_id: Option<String>,
    pub contact_id: Option<String>,
    pub creator_id: Option<String>,
    pub account_id: Option<String>,
    pub target_id: Option<String>,
    pub provider_media_id: Option<String>,
    pub text: String,
    pub occurred_at: i64,
    pub created_at: i64,
}

const COLUMNS: &str = "id, workspace_id, platform, kind, direction, provider_id, parent_provider_id, contact_id, \
     creator_id, account_id, target_id, provider_media_id, text, occurred_at, created_at";

pub const KINDS: &[&str] = &["comment", "reply", "mention", "message"];

/// What a provider reported, before it is linked to a contact and a creator.
#[derive(Debug, Clone)]
pub struct Observed<'a> {
    pub platform: Platform,
    pub kind: &'a str,
    pub direction: &'a str,
    pub provider_id: &'a str,
    pub parent_provider_id: Option<&'a str>,
    /// The author, when the provider names them (a mention webhook does not).
    pub author: Option<Sighting<'a>>,
    pub account_id: &'a str,
    pub provider_media_id: Option<&'a str>,
    pub text: &'a str,
    pub occurred_at: i64,
}

/// Records an observed interaction in the caller's transaction: upserts its contact, links the
/// account's creator and the post target published as this media, and inserts the interaction
/// unless the provider id is already recorded. Returns the interaction when it is new.
pub async fn record_in(
    conn: &mut AnyConnection,
    workspace_id: &str,
    seen: &Observed<'_>,
) -> Result<Option<Interaction>> {
    let contact_id = match &seen.author {
        Some(author) => Some(contacts::upsert_in(conn, workspace_id, author).await?),
        None => None,
    };
    let creator_id =
        super::creators::creator_of_account(conn, workspace_id, seen.account_id).await?;
    let target_id = match seen.provider_media_id {
        Some(media) => {
            super::metrics::target_of_media(conn, workspace_id, seen.platform, media).await?
        }
        None => None,
    };
    let interaction = Interaction {
        id: tidepost_domain::new_id(),
        workspace_id: workspace_id.to_string(),
        platform: seen.platform,
        kind: seen.kind.to_string(),
        direction: seen.direction.to_string(),
        provider_id: seen.provider_id.to_string(),
        parent_provider_id: seen.parent_provider_id.map(str::to_string),
        contact_id,
        creator_id,
        account_id: Some(seen.account_id.to_string()),
        target_id,
        provider_media_id: seen.provider_media_id.map(str::to_string),
        text: seen.text.to_string(),
        occurred_at: seen.occurred_at,
        created_at: tidepost_domain::now_ms(),
    };
    let done = sqlx::query(&format!(
        "INSERT INTO interactions ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) \
         ON CONFLICT (workspace_id, platform, provider_id) DO NOTHING"
    ))
    .bind(&interaction.id)
    .bind(&interaction.workspace_id)
    .bind(interaction.platform.as_str())
    .bind(&interaction.kind)
    .bind(&interaction.direction)
    .bind(&interaction.provider_id)
    .bind(&interaction.parent_provider_id)
    .bind(&interaction.contact_id)
    .bind(&interaction.creator_id)
    .bind(&interaction.account_id)
    .bind(&interaction.target_id)
    .bind(&interaction.provider_media_id)
    .bind(&interaction.text)
    .bind(interaction.occurred_at)
    .bind(interaction.created_at)
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() == 0 {
        return Ok(None);
    }
    if let Some(contact) = &interaction.contact_id {
        contacts::count_interaction_in(conn, workspace_id, contact).await?;
    }
    Ok(Some(interaction))
}

/// [`record_in`] in a transaction of its own.
pub async fn record(
    db: &Db,
    workspace_id: &str,
    seen: &Observed<'_>,
) -> Result<Option<Interaction>> {
    let mut tx = db.begin_write().await?;
    let recorded = record_in(&mut tx, workspace_id, seen).await?;
    tx.commit().await?;
    Ok(recorded)
}

pub async fn get(db: &Db, workspace_id: &str, id: &str) -> Result<Option<Interaction>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM interactions WHERE workspace_id = $1 AND id = $2"
    ))
    .bind(workspace_id)
    .bind(id)
    .fetch_optional(db.pool())
    .await?)
}

/// Filters of [`list`]; `None` is "any".
#[derive(Debug, Clone, Default)]
pub struct Filter<'a> {
    pub creator_id: Option<&'a str>,
    pub contact_id: Option<&'a str>,
    pub kind: Option<&'a str>,
    pub direction: Option<&'a str>,
    pub account_id: Option<&'a str>,
}

/// Newest first.
pub async fn list(
    db: &Db,
    workspace_id: &str,
    filter: &Filter<'_>,
    after: &Cursor,
    limit: i64,
) -> Result<Paged<Interaction>> {
    let rows: Vec<Interaction> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM interactions WHERE workspace_id = $1 \
         AND (occurred_at < $2 OR (occurred_at = $2 AND id < $3)) \
         AND ($4 IS NULL OR creator_id = $4) AND ($5 IS NULL OR contact_id = $5) \
         AND ($6 IS NULL OR kind = $6) AND ($7 IS NULL OR direction = $7) AND ($8 IS NULL OR account_id = $8) \
         ORDER BY occurred_at DESC, id DESC LIMIT $9"
    ))
    .bind(workspace_id)
    .bind(after.at)
    .bind(&after.id)
    .bind(filter.creator_id)
    .bind(filter.contact_id)
    .bind(filter.kind)
    .bind(filter.direction)
    .bind(filter.account_id)
    .bind(limit + 1)
    .fetch_all(db.pool())
    .await?;
    Ok(Paged::from_fetch(rows, limit, |i| Cursor {
        at: i.occurred_at,
        id: i.id.clone(),
    }))
}

/// The outbound replies recorded to one provider object (the inbox shows them under it).
pub async fn replies_to(
    db: &Db,
    workspace_id: &str,
    platform: Platform,
    parent_provider_id: &str,
) -> Result<Vec<Interaction>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM interactions WHERE workspace_id = $1 AND platform = $2 \
         AND parent_provider_id = $3 ORDER BY occurred_at, id"
    ))
    .bind(workspace_id)
    .bind(platform.as_str())
    .bind(parent_provider_id)
    .fetch_all(db.pool())
    .await?)
}

pub async fn by_provider_id(
    db: &Db,
    workspace_id: &str,
    platform: Platform,
    provider_id: &str,
) -> Result<Option<Interaction>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM interactions WHERE workspace_id = $1 AND platform = $2 AND provider_id = $3"
    ))
    .bind(workspace_id)
    .bind(platform.as_str())
    .bind(provider_id)
    .fetch_optional(db.pool())
    .await?)
}
