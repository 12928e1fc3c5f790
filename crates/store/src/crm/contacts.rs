//! Contacts: the people who interact with a workspace's creators, one row per platform
//! identity (`(workspace, platform, platform_user_id)` is unique), with the handle and name
//! last seen and when they were first and last seen.

use serde::Serialize;
use sqlx::AnyConnection;
use tidepost_domain::Platform;

use super::{Cursor, Paged};
use crate::{Db, Result};

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Contact {
    pub id: String,
    pub workspace_id: String,
    pub platform: Platform,
    pub platform_user_id: String,
    pub handle: Option<String>,
    pub name: Option<String>,
    /// How many interactions of theirs are recorded.
    pub interactions: i64,
    pub first_seen_at: i64,
    pub last_seen_at: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

const COLUMNS: &str = "id, workspace_id, platform, platform_user_id, handle, name, interactions, \
     first_seen_at, last_seen_at, created_at, updated_at";

/// Who was seen: a platform identity with what the provider said of it.
#[derive(Debug, Clone)]
pub struct Sighting<'a> {
    pub platform: Platform,
    pub platform_user_id: &'a str,
    pub handle: Option<&'a str>,
    pub name: Option<&'a str>,
    pub at: i64,
}

/// Records a sighting: creates the contact, or widens its first/last seen and takes the newer
/// handle and name. Returns the contact's id.
pub async fn upsert_in(
    conn: &mut AnyConnection,
    workspace_id: &str,
    seen: &Sighting<'_>,
) -> Result<String> {
    let now = tidepost_domain::now_ms();
    sqlx::query(&format!(
        "INSERT INTO contacts ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, 0, $7, $7, $8, $8) \
         ON CONFLICT (workspace_id, platform, platform_user_id) DO UPDATE SET \
         handle = CASE WHEN excluded.last_seen_at >= contacts.last_seen_at AND excluded.handle IS NOT NULL \
                  THEN excluded.handle ELSE COALESCE(contacts.handle, excluded.handle) END, \
         name = CASE WHEN excluded.last_seen_at >= contacts.last_seen_at AND excluded.name IS NOT NULL \
                THEN excluded.name ELSE COALESCE(contacts.name, excluded.name) END, \
         first_seen_at = CASE WHEN excluded.first_seen_at < contacts.first_seen_at \
                         THEN excluded.first_seen_at ELSE contacts.first_seen_at END, \
         last_seen_at = CASE WHEN excluded.last_seen_at > contacts.last_seen_at \
                        THEN excluded.last_seen_at ELSE contacts.last_seen_at END, \
         updated_at = excluded.updated_at"
    ))
    .bind(tidepost_domain::new_id())
    .bind(workspace_id)
    .bind(seen.platform.as_str())
    .bind(seen.platform_user_id)
    .bind(seen.handle)
    .bind(seen.name)
    .bind(seen.at)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(sqlx::query_scalar(
        "SELECT id FROM contacts WHERE workspace_id = $1 AND platform = $2 AND platform_user_id = $3",
    )
    .bind(workspace_id)
    .bind(seen.platform.as_str())
    .bind(seen.platform_user_id)
    .fetch_one(&mut *conn)
    .await?)
}

/// Counts one more interaction of the contact (called only for a newly recorded one).
pub async fn count_interaction_in(
    conn: &mut AnyConnection,
    workspace_id: &str,
    id: &str,
) -> Result<()> {
    sqlx::query(
        "UPDATE contacts SET interactions = interactions + 1 WHERE workspace_id = $1 AND id = $2",
    )
    .bind(workspace_id)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn get(db: &Db, workspace_id: &str, id: &str) -> Result<Option<Contact>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM contacts WHERE workspace_id = $1 AND id = $2"
    ))
    .bind(workspace_id)
    .bind(id)
    .fetch_optional(db.pool())
    .await?)
}

/// The most recently seen first; `search` matches the handle, the name or the platform id
/// (case-insensitive, anywhere), `platform` filters.
pub async fn list(
    db: &Db,
    workspace_id: &str,
    search: Option<&str>,
    platform: Option<Platform>,
    after: &Cursor,
    limit: i64,
) -> Result<Paged<Contact>> {
    let pattern = search
        .map(|s| s.trim().trim_start_matches('@'))
        .filter(|s| !s.is_empty())
        .map(super::like_pattern);
    let rows: Vec<Contact> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM contacts WHERE workspace_id = $1 \
         AND (last_seen_at < $2 OR (last_seen_at = $2 AND id < $3)) \
         AND ($4 IS NULL OR LOWER(COALESCE(handle, '')) LIKE $4 ESCAPE '\\' \
              OR LOWER(COALESCE(name, '')) LIKE $4 ESCAPE '\\' OR platform_user_id LIKE $4 ESCAPE '\\') \
         AND ($5 IS NULL OR platform = $5) \
         ORDER BY last_seen_at DESC, id DESC LIMIT $6"
    ))
    .bind(workspace_id)
    .bind(after.at)
    .bind(&after.id)
    .bind(pattern)
    .bind(platform.map(Platform::as_str))
    .bind(limit + 1)
    .fetch_all(db.pool())
    .await?;
    Ok(Paged::from_fetch(rows, limit, |c| Cursor {
        at: c.last_seen_at,
        id: c.id.clone(),
    }))
}
