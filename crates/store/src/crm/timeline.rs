//! The timeline of a creator or a contact: posts, interactions, account events (connected,
//! needs re-auth, …) and metric milestones merged newest first in one keyset-paginated query,
//! so a page is exact however the sources interleave.

use serde::Serialize;

use super::{Cursor, Paged};
use crate::{Db, Result};

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Entry {
    /// Unique within the timeline (the row id of its source; milestones make one up).
    pub id: String,
    pub at: i64,
    /// `post`, `interaction`, `account_event` or `milestone`.
    pub kind: String,
    /// Post: its caption; interaction: its kind; account event: the event type; milestone:
    /// the metric.
    pub title: String,
    /// Post: `platform · state`; interaction: its text; account event: the account's name;
    /// milestone: the threshold crossed.
    pub detail: String,
    /// What the entry is about: the post, the interaction, the account or the target.
    pub ref_id: String,
}

const PAGE: &str = "SELECT id, at, kind, title, detail, ref_id FROM ({sources}) u \
     WHERE (at < $3 OR (at = $3 AND id < $4)) ORDER BY at DESC, id DESC LIMIT $5";

const CREATOR_SOURCES: &str = "\
    SELECT t.id AS id, COALESCE(t.finished_at, t.created_at) AS at, 'post' AS kind, p.caption AS title, \
           t.platform || ' · ' || t.state AS detail, t.post_id AS ref_id \
    FROM post_targets t JOIN posts p ON p.id = t.post_id JOIN accounts a ON a.id = t.account_id \
    WHERE t.workspace_id = $1 AND a.workspace_id = $1 AND a.creator_id = $2 \
    UNION ALL \
    SELECT i.id, i.occurred_at, 'interaction', i.kind, i.text, i.id \
    FROM interactions i WHERE i.workspace_id = $1 AND i.creator_id = $2 \
    UNION ALL \
    SELECT e.id, e.created_at, 'account_event', e.type, a.display_name, a.id \
    FROM events e JOIN accounts a ON a.id = e.subject_id \
    WHERE e.workspace_id = $1 AND a.workspace_id = $1 AND a.creator_id = $2 AND e.type LIKE 'account.%' \
    UNION ALL \
    SELECT m.target_id || ':' || m.metric || ':' || CAST(m.threshold AS TEXT), m.reached_at, 'milestone', m.metric, \
           CAST(m.threshold AS TEXT), m.target_id \
    FROM metric_milestones m JOIN post_targets t ON t.id = m.target_id JOIN accounts a ON a.id = t.account_id \
    WHERE m.workspace_id = $1 AND a.workspace_id = $1 AND a.creator_id = $2";

const CONTACT_SOURCES: &str = "\
    SELECT i.id AS id, i.occurred_at AS at, 'interaction' AS kind, i.kind AS title, i.text AS detail, i.id AS ref_id \
    FROM interactions i WHERE i.workspace_id = $1 AND (i.contact_id = $2 OR (i.direction = 'outbound' \
    AND i.parent_provider_id IN (SELECT c.provider_id FROM interactions c WHERE c.workspace_id = $1 AND c.contact_id = $2)))";

async fn page(
    db: &Db,
    sources: &str,
    workspace_id: &str,
    subject: &str,
    after: &Cursor,
    limit: i64,
) -> Result<Paged<Entry>> {
    let sql = PAGE.replace("{sources}", sources);
    let rows: Vec<Entry> = sqlx::query_as(&sql)
        .bind(workspace_id)
        .bind(subject)
        .bind(after.at)
        .bind(&after.id)
        .bind(limit + 1)
        .fetch_all(db.pool())
        .await?;
    Ok(Paged::from_fetch(rows, limit, |e| Cursor {
        at: e.at,
        id: e.id.clone(),
    }))
}

/// A creator's timeline: its accounts' posts and account events, its interactions and its
/// posts' milestones.
pub async fn of_creator(
    db: &Db,
    workspace_id: &str,
    creator_id: &str,
    after: &Cursor,
    limit: i64,
) -> Result<Paged<Entry>> {
    page(db, CREATOR_SOURCES, workspace_id, creator_id, after, limit).await
}

/// A contact's timeline: their interactions and the replies made to them.
pub async fn of_contact(
    db: &Db,
    workspace_id: &str,
    contact_id: &str,
    after: &Cursor,
    limit: i64,
) -> Result<Paged<Entry>> {
    page(db, CONTACT_SOURCES, workspace_id, contact_id, after, limit).await
}
