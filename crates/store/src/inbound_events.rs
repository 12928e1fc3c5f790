//! Inbound provider webhooks, stored raw before they are acknowledged, deduplicated by a key
//! (a hash of the raw body), and applied later by a job.

use serde::Serialize;

use crate::{Db, Result};

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct InboundEvent {
    pub id: String,
    pub provider: String,
    pub dedupe_key: String,
    pub event_type: String,
    pub body: String,
    pub signature_ts: Option<i64>,
    pub received_at: i64,
    pub applied_at: Option<i64>,
    pub apply_result: Option<String>,
}

const SELECT: &str = "SELECT id, provider, dedupe_key, event_type, body, signature_ts, received_at, \
     applied_at, apply_result FROM inbound_events ";

/// Stores the event unless one with the same dedupe key exists. Returns the stored event and
/// whether this call inserted it.
///
/// One round trip for a new event (the usual case): the insert says by `RETURNING` whether it
/// stored the row, and only a duplicate reads the stored one back. The insert is its own
/// transaction, committed before this returns, so the caller may acknowledge the sender.
pub async fn insert(db: &Db, e: &InboundEvent) -> Result<(InboundEvent, bool)> {
    let inserted: Option<String> = sqlx::query_scalar(
        "INSERT INTO inbound_events (id, provider, dedupe_key, event_type, body, signature_ts, received_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (dedupe_key) DO NOTHING RETURNING id",
    )
    .bind(&e.id)
    .bind(&e.provider)
    .bind(&e.dedupe_key)
    .bind(&e.event_type)
    .bind(&e.body)
    .bind(e.signature_ts)
    .bind(e.received_at)
    .fetch_optional(db.pool())
    .await?;
    if inserted.is_some() {
        let stored = InboundEvent {
            applied_at: None,
            apply_result: None,
            ..e.clone()
        };
        return Ok((stored, true));
    }
    let stored = sqlx::query_as(&format!("{SELECT} WHERE dedupe_key = $1"))
        .bind(&e.dedupe_key)
        .fetch_one(db.pool())
        .await?;
    Ok((stored, false))
}

/// System-wide (webhooks are not bound to a workspace until applied).
pub async fn get(db: &Db, id: &str) -> Result<Option<InboundEvent>> {
    Ok(sqlx::query_as(&format!("{SELECT} WHERE id = $1"))
        .bind(id)
        .fetch_optional(db.pool())
        .await?)
}

/// Marks the event applied once; false when it already was.
pub async fn mark_applied(db: &Db, id: &str, result: &str, now: i64) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE inbound_events SET applied_at = $1, apply_result = $2 WHERE id = $3 AND applied_at IS NULL",
    )
    .bind(now)
    .bind(result)
    .bind(id)
    .execute(db.pool())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// [`mark_applied`] inside a transaction, so that what applying wrote and the mark commit
/// together (false: another run applied it first; roll back).
pub async fn mark_applied_in(
    conn: &mut sqlx::AnyConnection,
    id: &str,
    result: &str,
    now: i64,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE inbound_events SET applied_at = $1, apply_result = $2 WHERE id = $3 AND applied_at IS NULL",
    )
    .bind(now)
    .bind(result)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Events of one provider received since `since`, newest first (for the UI and tests).
pub async fn recent(db: &Db, provider: &str, limit: i64) -> Result<Vec<InboundEvent>> {
    Ok(sqlx::query_as(&format!(
        "{SELECT} WHERE provider = $1 ORDER BY received_at DESC, id DESC LIMIT $2"
    ))
    .bind(provider)
    .bind(limit)
    .fetch_all(db.pool())
    .await?)
}

#[cfg(all(test, feature = "testing"))]
mod tests {
    use super::*;
    use crate::both_backends;

    fn event(key: &str, body: &str) -> InboundEvent {
        InboundEvent {
            id: tidepost_domain::new_id(),
            provider: "tiktok".into(),
            dedupe_key: key.into(),
            event_type: "post.publish.complete".into(),
            body: body.into(),
            signature_ts: Some(1_800_000_000),
            received_at: 1_800_000_000_123,
            applied_at: None,
            apply_result: None,
        }
    }

    both_backends!(insert_stores_once_per_dedupe_key, |db: Db| async move {
        let first = event("tiktok:abc", "{\"n\":1}");
        let (stored, inserted) = insert(&db, &first).await.unwrap();
        assert!(inserted);
        assert_eq!(
            (stored.id.as_str(), stored.body.as_str()),
            (first.id.as_str(), "{\"n\":1}")
        );
        let read = get(&db, &first.id).await.unwrap().expect("stored");
        assert_eq!(
            (
                read.dedupe_key,
                read.signature_ts,
                read.received_at,
                read.applied_at
            ),
            (
                "tiktok:abc".to_string(),
                Some(1_800_000_000),
                1_800_000_000_123,
                None
            )
        );

        // The same key again (a retried delivery): nothing new, the stored event comes back.
        assert!(mark_applied(&db, &first.id, "done", 5).await.unwrap());
        let again = event("tiktok:abc", "{\"n\":1}");
        let (stored, inserted) = insert(&db, &again).await.unwrap();
        assert!(!inserted);
        assert_eq!(stored.id, first.id);
        assert_eq!(stored.apply_result.as_deref(), Some("done"));

        let (other, inserted) = insert(&db, &event("tiktok:def", "{}")).await.unwrap();
        assert!(inserted && other.id != first.id);
        assert_eq!(recent(&db, "tiktok", 10).await.unwrap().len(), 2);
    });
}
