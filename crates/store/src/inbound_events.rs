//! Inbound provider webhooks, stored raw before they are acknowledged, deduplicated by a key
//! (a hash of the raw body), and applied later by a job.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use sqlx::AnyConnection;
use tokio::sync::oneshot;

use crate::{Db, Result, StoreError};

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
/// whether this call inserted it. Returns only after the event is committed, so the caller
/// may acknowledge the sender. [`insert_then`] without a follow-up write.
pub async fn insert(db: &Db, e: &InboundEvent) -> Result<(InboundEvent, bool)> {
    insert_then(db, e, None).await
}

/// A future borrowing the transaction's connection.
pub type ThenFuture<'c> =
    Pin<Box<dyn Future<Output = std::result::Result<(), String>> + Send + 'c>>;

/// The writes that belong with stored events (enqueuing their application jobs): called
/// inside the transaction that stores them, with each stored event (the earlier twin for a
/// duplicate) and whether this delivery inserted it, so that the events and what follows them
/// commit together or not at all. One call covers every event of a group commit that came with
/// the same `Then` (the same `Arc`), so it can write for all of them with one statement: a
/// caller that builds its `Then` once and reuses it gets that. It may be called again after a
/// failed attempt (the failed transaction rolled back), so it must only write through the
/// connection it is given.
pub type Then = Arc<
    dyn for<'c> Fn(&'c mut AnyConnection, &'c [(&'c InboundEvent, bool)]) -> ThenFuture<'c>
        + Send
        + Sync,
>;

/// Makes a [`Then`] of a closure (which lets the compiler see the closure's signature as the
/// one [`Then`] needs).
pub fn then<F>(f: F) -> Then
where
    F: for<'c> Fn(&'c mut AnyConnection, &'c [(&'c InboundEvent, bool)]) -> ThenFuture<'c>
        + Send
        + Sync
        + 'static,
{
    Arc::new(f)
}

/// Stores the event unless one with the same dedupe key exists and runs `then` in the same
/// transaction. Returns the stored event and whether this call inserted it, only after both
/// are committed, so the caller may acknowledge the sender.
///
/// Commits in groups: calls on one database that arrive while a write is in flight wait for
/// it and are then stored together — one multi-row insert and every call's `then`, in one
/// transaction — so a burst of deliveries pays one commit (and on SQLite one hold of the
/// write lock) for many events and their jobs instead of two each, and a lone delivery is
/// written at once. A new event costs one statement (`RETURNING` says what was stored); only
/// duplicates are read back. No task outlives a burst: the first caller to find no write in
/// flight spawns one that writes until nothing is waiting. When a group fails, each call is
/// written again in its own transaction, so that whatever failed fails only its own call.
pub async fn insert_then(
    db: &Db,
    e: &InboundEvent,
    then: Option<Then>,
) -> Result<(InboundEvent, bool)> {
    let group = db.shared::<Group>();
    let (answer, answered) = oneshot::channel();
    let lead = {
        let mut waiting = group.0.lock().unwrap_or_else(|p| p.into_inner());
        waiting.events.push(Waiting {
            event: e.clone(),
            then,
            answer,
        });
        !std::mem::replace(&mut waiting.writing, true)
    };
    if lead {
        tokio::spawn(write_groups(db.clone(), group));
    }
    answered
        .await
        .map_err(|_| StoreError::Sqlx(sqlx::Error::PoolClosed))?
        .map_err(|e| StoreError::Sqlx(sqlx::Error::Protocol(e)))
}

/// Events stored by one grouped statement at most (7 parameters each).
const MAX_GROUP: usize = 128;

type Answer = oneshot::Sender<std::result::Result<(InboundEvent, bool), String>>;

/// One call waiting to be written.
struct Waiting {
    event: InboundEvent,
    then: Option<Then>,
    answer: Answer,
}

/// The calls waiting for the write in flight on one database, and whether one is in flight
/// (kept in [`Db::shared`], one per database).
#[derive(Default)]
struct Group(Mutex<Pending>);

#[derive(Default)]
struct Pending {
    events: Vec<Waiting>,
    writing: bool,
}

/// Lets the next insert start a writer if this one ends without finishing (its runtime shut
/// down): the waiting calls belong to that runtime and are gone with it.
struct Writing {
    group: Arc<Group>,
    finished: bool,
}

impl Drop for Writing {
    fn drop(&mut self) {
        if !self.finished {
            let mut group = self.group.0.lock().unwrap_or_else(|p| p.into_inner());
            group.writing = false;
            group.events.clear();
        }
    }
}

async fn write_groups(db: Db, group: Arc<Group>) {
    let mut writing = Writing {
        group: group.clone(),
        finished: false,
    };
    loop {
        let batch: Vec<Waiting> = {
            let mut waiting = group.0.lock().unwrap_or_else(|p| p.into_inner());
            if waiting.events.is_empty() {
                waiting.writing = false;
                writing.finished = true;
                return;
            }
            let take = waiting.events.len().min(MAX_GROUP);
            waiting.events.drain(..take).collect()
        };
        let mut answers = Vec::with_capacity(batch.len());
        let mut events = Vec::with_capacity(batch.len());
        for w in batch {
            events.push((w.event, w.then));
            answers.push(w.answer);
        }
        let results = match insert_group(&db, &events).await {
            Ok(results) => results.into_iter().map(Ok).collect(),
            // One event at a time, so that whatever failed fails only its own call.
            Err(err) if events.len() > 1 => {
                tracing::debug!("a grouped webhook insert failed, writing one by one: {err}");
                let mut results = Vec::with_capacity(events.len());
                for event in &events {
                    let one = insert_group(&db, std::slice::from_ref(event)).await;
                    results.push(one.map(|mut r| r.remove(0)).map_err(|e| e.to_string()));
                }
                results
            }
            Err(err) => vec![Err(err.to_string())],
        };
        for (answer, result) in answers.into_iter().zip(results) {
            let _ = answer.send(result);
        }
    }
}

/// One transaction: a multi-row insert that skips known dedupe keys; then, only when some
/// were skipped, a read of their stored twins (a key repeated inside the group resolves to
/// its first event); then each call's `then`.
async fn insert_group(
    db: &Db,
    events: &[(InboundEvent, Option<Then>)],
) -> Result<Vec<(InboundEvent, bool)>> {
    let values: Vec<String> = (0..events.len())
        .map(|i| {
            let params: Vec<String> = (1..=7).map(|n| format!("${}", 7 * i + n)).collect();
            format!("({})", params.join(", "))
        })
        .collect();
    let sql = format!(
        "INSERT INTO inbound_events (id, provider, dedupe_key, event_type, body, signature_ts, received_at) \
         VALUES {} ON CONFLICT (dedupe_key) DO NOTHING RETURNING id",
        values.join(", ")
    );
    let mut query = sqlx::query_scalar::<_, String>(&sql);
    for (e, _) in events {
        query = query
            .bind(&e.id)
            .bind(&e.provider)
            .bind(&e.dedupe_key)
            .bind(&e.event_type)
            .bind(&e.body)
            .bind(e.signature_ts)
            .bind(e.received_at);
    }
    let mut tx = db.begin_write().await?;
    let inserted: HashSet<String> = query.fetch_all(&mut *tx).await?.into_iter().collect();
    let skipped: Vec<&str> = events
        .iter()
        .filter(|(e, _)| !inserted.contains(&e.id))
        .map(|(e, _)| e.dedupe_key.as_str())
        .collect();
    let mut twins: HashMap<String, InboundEvent> = HashMap::new();
    if !skipped.is_empty() {
        let params: Vec<String> = (1..=skipped.len()).map(|n| format!("${n}")).collect();
        let sql = format!("{SELECT} WHERE dedupe_key IN ({})", params.join(", "));
        let mut query = sqlx::query_as::<_, InboundEvent>(&sql);
        for key in &skipped {
            query = query.bind(*key);
        }
        for stored in query.fetch_all(&mut *tx).await? {
            twins.insert(stored.dedupe_key.clone(), stored);
        }
    }
    let mut results = Vec::with_capacity(events.len());
    for (e, _) in events {
        results.push(if inserted.contains(&e.id) {
            let stored = InboundEvent {
                applied_at: None,
                apply_result: None,
                ..e.clone()
            };
            (stored, true)
        } else {
            let twin = twins
                .get(&e.dedupe_key)
                .ok_or(StoreError::Sqlx(sqlx::Error::RowNotFound))?;
            (twin.clone(), false)
        });
    }
    // Each distinct follow-up once, with all of its events, in arrival order.
    let mut follow_ups: Vec<(&Then, Vec<(&InboundEvent, bool)>)> = Vec::new();
    for ((_, then), (stored, new)) in events.iter().zip(&results) {
        let Some(then) = then else { continue };
        match follow_ups.iter_mut().find(|(t, _)| Arc::ptr_eq(t, then)) {
            Some((_, its)) => its.push((stored, *new)),
            None => follow_ups.push((then, vec![(stored, *new)])),
        }
    }
    for (then, its) in &follow_ups {
        then(&mut tx, its)
            .await
            .map_err(|e| StoreError::Sqlx(sqlx::Error::Protocol(e)))?;
    }
    drop(follow_ups);
    tx.commit().await?;
    Ok(results)
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
    use std::sync::atomic::{AtomicUsize, Ordering};

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

    // Concurrent deliveries are stored in groups: each new body once, a body repeated inside
    // one group (or already stored) resolving to the one stored event.
    both_backends!(concurrent_inserts_are_grouped, |db: Db| async move {
        let (known, _) = insert(&db, &event("k:known", "{}")).await.unwrap();
        let calls = (0..120).map(|n| {
            let db = db.clone();
            async move {
                let key = match n % 3 {
                    0 => format!("k:{n}"),
                    1 => "k:repeated".to_string(),
                    _ => "k:known".to_string(),
                };
                (
                    n,
                    insert(&db, &event(&key, &format!("{{\"n\":{n}}}")))
                        .await
                        .unwrap(),
                )
            }
        });
        let results = futures_join(calls).await;
        let repeated: Vec<_> = results.iter().filter(|(n, _)| n % 3 == 1).collect();
        assert_eq!(repeated.iter().filter(|(_, (_, new))| *new).count(), 1);
        assert!(
            repeated
                .iter()
                .all(|(_, (e, _))| e.id == repeated[0].1.0.id)
        );
        for (n, (stored, new)) in &results {
            match n % 3 {
                0 => assert!(*new && get(&db, &stored.id).await.unwrap().is_some()),
                2 => assert_eq!((*new, stored.id.as_str()), (false, known.id.as_str())),
                _ => {}
            }
        }
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM inbound_events")
            .fetch_one(db.pool())
            .await
            .unwrap();
        assert_eq!(count, 1 + 40 + 1);
    });

    /// A follow-up that marks each new stored event with `mark` through the transaction's
    /// connection, or fails (and so must undo its events) when a body says so; `calls` counts
    /// how often it runs.
    fn marking(mark: &'static str, calls: Arc<AtomicUsize>) -> Then {
        then(move |conn, stored| {
            calls.fetch_add(1, Ordering::SeqCst);
            Box::pin(async move {
                for (stored, new) in stored {
                    if stored.body.contains("fail") {
                        return Err("this follow-up fails".to_string());
                    }
                    if *new {
                        sqlx::query("UPDATE inbound_events SET apply_result = $1 WHERE id = $2")
                            .bind(mark)
                            .bind(&stored.id)
                            .execute(&mut *conn)
                            .await
                            .map_err(|e| e.to_string())?;
                    }
                }
                Ok(())
            })
        })
    }

    // The follow-up write commits with the event or neither does; in a group, a failing one
    // fails only its own call.
    both_backends!(then_commits_with_the_event, |db: Db| async move {
        let ok = event("k:ok", "{}");
        let calls = Arc::new(AtomicUsize::new(0));
        let m = marking("m", calls.clone());
        let (stored, new) = insert_then(&db, &ok, Some(m.clone())).await.unwrap();
        assert!(new);
        let read = get(&db, &stored.id).await.unwrap().expect("stored");
        assert_eq!(read.apply_result.as_deref(), Some("m"));

        let bad = event("k:bad", "{\"fail\":1}");
        assert!(insert_then(&db, &bad, Some(m)).await.is_err());
        assert!(get(&db, &bad.id).await.unwrap().is_none());

        // One follow-up shared by the group: a failing event still fails only its own call
        // (the group is written again one by one).
        let g = marking("g", calls.clone());
        calls.store(0, Ordering::SeqCst);
        let deliveries = (0..40).map(|n| {
            let db = db.clone();
            let g = g.clone();
            async move {
                let body = if n == 7 {
                    "{\"fail\":7}".to_string()
                } else {
                    format!("{{\"n\":{n}}}")
                };
                let e = event(&format!("g:{n}"), &body);
                (n, e.id.clone(), insert_then(&db, &e, Some(g)).await)
            }
        });
        for (n, id, result) in futures_join(deliveries).await {
            let read = get(&db, &id).await.unwrap();
            if n == 7 {
                assert!(result.is_err() && read.is_none());
            } else {
                assert!(result.unwrap().1);
                assert_eq!(read.unwrap().apply_result.as_deref(), Some("g"));
            }
        }
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM inbound_events")
            .fetch_one(db.pool())
            .await
            .unwrap();
        assert_eq!(count, 1 + 39);

        // Without a failure, a shared follow-up runs once per group commit, not per event.
        calls.store(0, Ordering::SeqCst);
        let deliveries = (0..40).map(|n| {
            let db = db.clone();
            let g = g.clone();
            async move { insert_then(&db, &event(&format!("h:{n}"), "{}"), Some(g)).await }
        });
        for result in futures_join(deliveries).await {
            assert!(result.unwrap().1);
        }
        let runs = calls.load(Ordering::SeqCst);
        assert!(
            runs < 40,
            "the follow-up ran {runs} times for 40 grouped events"
        );
        let marked: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM inbound_events WHERE apply_result = 'g'")
                .fetch_one(db.pool())
                .await
                .unwrap();
        assert_eq!(marked, 39 + 40);
    });

    /// Polls every call in one task, so that they arrive while a write is in flight.
    async fn futures_join<F: std::future::Future>(
        calls: impl Iterator<Item = F>,
    ) -> Vec<F::Output> {
        let handles: Vec<_> = calls.map(Box::pin).collect();
        let mut results = Vec::with_capacity(handles.len());
        let mut pending: Vec<_> = handles.into_iter().map(Some).collect();
        let mut outputs: Vec<Option<F::Output>> = (0..pending.len()).map(|_| None).collect();
        std::future::poll_fn(|cx| {
            let mut all = true;
            for (slot, out) in pending.iter_mut().zip(outputs.iter_mut()) {
                if let Some(fut) = slot {
                    match fut.as_mut().poll(cx) {
                        std::task::Poll::Ready(v) => {
                            *out = Some(v);
                            *slot = None;
                        }
                        std::task::Poll::Pending => all = false,
                    }
                }
            }
            if all {
                std::task::Poll::Ready(())
            } else {
                std::task::Poll::Pending
            }
        })
        .await;
        results.extend(outputs.into_iter().map(|o| o.expect("ready")));
        results
    }
}
