//! Outbound webhook deliveries and their attempts, and the dispatcher's cursor over the event
//! log.
//!
//! A delivery is one event for one endpoint, unique on `(endpoint_id, event_id)`: however many
//! dispatchers look at the same event (several instances, a repeated sweep), it becomes one
//! delivery, and only the one insert that created it enqueues its job ([`insert_in`] says
//! whether it inserted). Its `body` is fixed when it is created, so every attempt sends the same
//! bytes under the same `webhook-id` (the event id). Every attempt is a row of
//! `webhook_attempts` with what the receiver answered.
//!
//! An attempt is counted when its outcome is recorded, in the same transaction as its
//! `webhook_attempts` row and the delivery's new state ([`record_outcome_in`],
//! [`record_delivered_in`]): the counters never show an attempt without its outcome, and an
//! attempt cut short by a crash is not counted — it is made again (its job is run again, or
//! the dispatcher's sweep finds the delivery [`stranded`]).

use serde::Serialize;
use sqlx::AnyConnection;

use crate::{Db, Result, multi_row};

/// Where a delivery stands.
pub const PENDING: &str = "pending";
pub const SUCCEEDED: &str = "succeeded";
pub const FAILED: &str = "failed";

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Delivery {
    pub id: String,
    pub workspace_id: String,
    pub endpoint_id: String,
    pub event_id: String,
    pub event_type: String,
    pub body: String,
    pub state: String,
    pub attempts: i64,
    pub auto_attempts: i64,
    pub resends: i64,
    pub next_attempt_at: Option<i64>,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    pub event_created_at: i64,
    pub created_at: i64,
    pub updated_at: i64,
    pub finished_at: Option<i64>,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Attempt {
    pub id: String,
    pub workspace_id: String,
    pub delivery_id: String,
    pub attempt: i64,
    /// `auto` (the retry schedule) or `manual` (a re-send).
    pub cause: String,
    pub url: String,
    pub status_code: Option<i64>,
    pub latency_ms: i64,
    pub response_excerpt: Option<String>,
    pub error: Option<String>,
    pub started_at: i64,
}

/// An event of the log that an enabled endpoint of its workspace wants and has no delivery
/// for yet.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Candidate {
    pub event_id: String,
    pub workspace_id: String,
    pub event_type: String,
    pub payload: String,
    pub event_created_at: i64,
    pub endpoint_id: String,
}

macro_rules! select {
    ($rest:literal) => {
        concat!(
            "SELECT id, workspace_id, endpoint_id, event_id, event_type, body, state, attempts, \
             auto_attempts, resends, next_attempt_at, last_status, last_error, event_created_at, \
             created_at, updated_at, finished_at FROM webhook_deliveries ",
            $rest
        )
    };
}

/// Events created after `since` (ms) of the types in `types` that an enabled endpoint of the
/// same workspace, created no later than the event, subscribes to and has no delivery for yet;
/// oldest first. Each call after inserting the previous answer's deliveries returns the next
/// ones, so a caller loops until it gets an empty page.
pub async fn candidates(db: &Db, since: i64, types: &[&str], limit: i64) -> Result<Vec<Candidate>> {
    candidates_after(db, since, None, types, limit).await
}

/// Where a page of [`candidates`] ended: the last pair's (event time, event id, endpoint id).
pub type Position = (i64, String, String);

/// [`candidates`] after `after` in their order: a caller that has handled a page (every pair
/// of it has its delivery now) asks for the next one from where it ended instead of reading
/// the handled pairs again.
pub async fn candidates_after(
    db: &Db,
    since: i64,
    after: Option<&Position>,
    types: &[&str],
    limit: i64,
) -> Result<Vec<Candidate>> {
    if types.is_empty() {
        return Ok(Vec::new());
    }
    // Read in the index's order (`events_created`, migration 0011) and stopped at the limit:
    // a page costs what it returns, not the whole backlog behind it. The keyset test repeats
    // its first column as a plain range so that both databases start the index scan there.
    let (keyset, first_type) = match after {
        Some(_) => (
            "AND e.created_at >= $3 AND (e.created_at > $3 OR (e.created_at = $3 \
             AND (e.id > $4 OR (e.id = $4 AND ep.id > $5))))",
            6,
        ),
        None => ("", 3),
    };
    let placeholders: Vec<String> = (0..types.len())
        .map(|i| format!("${}", i + first_type))
        .collect();
    let sql = format!(
        "SELECT e.id AS event_id, e.workspace_id, e.type AS event_type, e.payload, \
             e.created_at AS event_created_at, ep.id AS endpoint_id \
         FROM events e \
         JOIN webhook_endpoints ep ON ep.workspace_id = e.workspace_id AND e.created_at >= ep.created_at \
         WHERE ep.disabled_at IS NULL AND e.created_at > $1 {keyset} \
           AND e.type IN ({}) \
           AND (ep.event_types = '' OR (' ' || ep.event_types || ' ') LIKE ('% ' || e.type || ' %')) \
           AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d \
               WHERE d.endpoint_id = ep.id AND d.event_id = e.id) \
         ORDER BY e.created_at, e.id, ep.id LIMIT $2",
        placeholders.join(", ")
    );
    // Planned on each run rather than once per connection: the tables it reads grow fast (a
    // burst of events, their deliveries), and a plan cached while they were small — on
    // PostgreSQL a generic plan kept until the next ANALYZE — can read every delivery for each
    // event (seen: a second per page instead of a few milliseconds).
    let mut query = sqlx::query_as::<_, Candidate>(&sql)
        .persistent(false)
        .bind(since)
        .bind(limit);
    if let Some((at, event_id, endpoint_id)) = after {
        query = query
            .bind(*at)
            .bind(event_id.as_str())
            .bind(endpoint_id.as_str());
    }
    for t in types {
        query = query.bind(*t);
    }
    Ok(query.fetch_all(db.pool()).await?)
}

/// Inserts a pending delivery unless the endpoint already has one for the event; true when
/// this call inserted it (and so must enqueue its job, in the same transaction).
pub async fn insert_in(conn: &mut AnyConnection, delivery: &Delivery) -> Result<bool> {
    let done = sqlx::query(
        "INSERT INTO webhook_deliveries (id, workspace_id, endpoint_id, event_id, event_type, body, \
         state, attempts, auto_attempts, resends, next_attempt_at, last_status, last_error, \
         event_created_at, created_at, updated_at, finished_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) \
         ON CONFLICT (endpoint_id, event_id) DO NOTHING",
    )
    .bind(&delivery.id)
    .bind(&delivery.workspace_id)
    .bind(&delivery.endpoint_id)
    .bind(&delivery.event_id)
    .bind(&delivery.event_type)
    .bind(&delivery.body)
    .bind(&delivery.state)
    .bind(delivery.attempts)
    .bind(delivery.auto_attempts)
    .bind(delivery.resends)
    .bind(delivery.next_attempt_at)
    .bind(delivery.last_status)
    .bind(&delivery.last_error)
    .bind(delivery.event_created_at)
    .bind(delivery.created_at)
    .bind(delivery.updated_at)
    .bind(delivery.finished_at)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Deliveries inserted by one statement at most. Kept small on purpose: SQLite looks each
/// parameter up by name through a list of all of them, so binding costs grow with the square of
/// a statement's parameters (a 200-row insert of 17 columns spent most of its time there).
pub const MAX_INSERT: usize = 32;

/// [`insert_in`] for many new deliveries with one statement per [`MAX_INSERT`]: each is stored
/// pending with no attempt made (its state, counters, status, error and `finished_at` are
/// taken as a new delivery has them); returns the ids of the ones this call inserted (a pair
/// that already had a delivery is skipped).
pub async fn insert_many_in(
    conn: &mut AnyConnection,
    deliveries: &[Delivery],
) -> Result<Vec<String>> {
    let mut inserted = Vec::with_capacity(deliveries.len());
    for chunk in deliveries.chunks(MAX_INSERT) {
        let values = multi_row::values(
            "(?1, ?2, ?3, ?4, ?5, ?6, 'pending', 0, 0, 0, ?7, NULL, NULL, ?8, ?9, ?10, NULL)",
            chunk.len(),
            0,
        );
        let sql = format!(
            "INSERT INTO webhook_deliveries (id, workspace_id, endpoint_id, event_id, event_type, body, \
             state, attempts, auto_attempts, resends, next_attempt_at, last_status, last_error, \
             event_created_at, created_at, updated_at, finished_at) VALUES {} \
             ON CONFLICT (endpoint_id, event_id) DO NOTHING RETURNING id",
            values
        );
        let mut query = sqlx::query_scalar::<_, String>(&sql);
        for d in chunk {
            query = query
                .bind(&d.id)
                .bind(&d.workspace_id)
                .bind(&d.endpoint_id)
                .bind(&d.event_id)
                .bind(&d.event_type)
                .bind(&d.body)
                .bind(d.next_attempt_at)
                .bind(d.event_created_at)
                .bind(d.created_at)
                .bind(d.updated_at);
        }
        inserted.extend(query.fetch_all(&mut *conn).await?);
    }
    Ok(inserted)
}

pub async fn get(db: &Db, workspace_id: &str, id: &str) -> Result<Option<Delivery>> {
    Ok(
        sqlx::query_as(select!("WHERE workspace_id = $1 AND id = $2"))
            .bind(workspace_id)
            .bind(id)
            .fetch_optional(db.pool())
            .await?,
    )
}

/// An endpoint's deliveries, newest first, optionally in one state, after the cursor `after`.
pub async fn list_for_endpoint(
    db: &Db,
    workspace_id: &str,
    endpoint_id: &str,
    state: Option<&str>,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<Delivery>> {
    Ok(sqlx::query_as(select!(
        "WHERE workspace_id = $1 AND endpoint_id = $2 AND ($3 IS NULL OR state = $3) \
         AND ($4 IS NULL OR id < $4) ORDER BY id DESC LIMIT $5"
    ))
    .bind(workspace_id)
    .bind(endpoint_id)
    .bind(state)
    .bind(after)
    .bind(limit)
    .fetch_all(db.pool())
    .await?)
}

/// Counts an attempt (`attempts`, and `auto_attempts` when `automatic`) as its outcome is
/// recorded — call it in the transaction that stores the attempt's row and settles the
/// delivery. Returns (attempts, auto attempts) after counting, or `None` when the delivery is
/// gone.
pub async fn count_attempt_in(
    conn: &mut AnyConnection,
    workspace_id: &str,
    id: &str,
    automatic: bool,
    now: i64,
) -> Result<Option<(i64, i64)>> {
    Ok(sqlx::query_as(
        "UPDATE webhook_deliveries SET attempts = attempts + 1, auto_attempts = auto_attempts + $3, \
         updated_at = $4 WHERE workspace_id = $1 AND id = $2 RETURNING attempts, auto_attempts",
    )
    .bind(workspace_id)
    .bind(id)
    .bind(i64::from(automatic))
    .bind(now)
    .fetch_optional(conn)
    .await?)
}

/// Records one attempt's outcome on the caller's connection (inside a transaction, so that
/// they go together): counts it ([`count_attempt_in`]), stores its `webhook_attempts` row under
/// the number it got and, given an outcome, settles the delivery as [`settle_in`] does.
/// Returns (attempts, auto attempts) after counting, or `None` when the delivery is gone
/// (nothing written).
pub async fn record_outcome_in(
    conn: &mut AnyConnection,
    attempt: &Attempt,
    automatic: bool,
    outcome: Option<&Outcome<'_>>,
    now: i64,
) -> Result<Option<(i64, i64)>> {
    let Some((attempts, auto_attempts)) = count_attempt_in(
        &mut *conn,
        &attempt.workspace_id,
        &attempt.delivery_id,
        automatic,
        now,
    )
    .await?
    else {
        return Ok(None);
    };
    let numbered = Attempt {
        attempt: attempts,
        ..attempt.clone()
    };
    record_attempt_in(&mut *conn, &numbered).await?;
    if let Some(outcome) = outcome {
        settle_in(
            &mut *conn,
            &attempt.workspace_id,
            &attempt.delivery_id,
            outcome,
            now,
        )
        .await?;
    }
    Ok(Some((attempts, auto_attempts)))
}

/// Attempts stored by one statement at most (see [`MAX_INSERT`] for why so few).
const MAX_ATTEMPTS: usize = 32;

/// [`record_outcome_in`] for automatic attempts (stored with cause `auto`) of one workspace
/// that got through with the same status: one statement counts them and marks their deliveries succeeded, one more stores
/// their attempt rows (per [`MAX_ATTEMPTS`]). Each attempt's number is the one its delivery's
/// count gave it (the number in `attempts` is ignored); a delivery gone meanwhile is skipped.
/// Returns the attempts stored.
pub async fn record_delivered_in(
    conn: &mut AnyConnection,
    workspace_id: &str,
    status: Option<i64>,
    attempts: &[Attempt],
    now: i64,
) -> Result<Vec<Attempt>> {
    let mut stored = Vec::with_capacity(attempts.len());
    for chunk in attempts.chunks(MAX_ATTEMPTS) {
        let ids: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 4)).collect();
        let sql = format!(
            "UPDATE webhook_deliveries SET attempts = attempts + 1, auto_attempts = auto_attempts + 1, \
             state = 'succeeded', last_status = $2, last_error = NULL, next_attempt_at = NULL, \
             finished_at = $3, updated_at = $3 WHERE workspace_id = $1 AND id IN ({}) \
             RETURNING id, attempts",
            ids.join(", ")
        );
        let mut query = sqlx::query_as::<_, (String, i64)>(&sql)
            .bind(workspace_id)
            .bind(status)
            .bind(now);
        for a in chunk {
            query = query.bind(&a.delivery_id);
        }
        let counted: std::collections::HashMap<String, i64> =
            query.fetch_all(&mut *conn).await?.into_iter().collect();
        let numbered: Vec<Attempt> = chunk
            .iter()
            .filter_map(|a| {
                counted.get(&a.delivery_id).map(|n| Attempt {
                    attempt: *n,
                    ..a.clone()
                })
            })
            .collect();
        if numbered.is_empty() {
            continue;
        }
        let values = multi_row::values(
            "(?1, $1, ?2, ?3, 'auto', ?4, ?5, ?6, ?7, ?8, ?9)",
            numbered.len(),
            1,
        );
        let sql = format!(
            "INSERT INTO webhook_attempts (id, workspace_id, delivery_id, attempt, cause, url, \
             status_code, latency_ms, response_excerpt, error, started_at) VALUES {}",
            values
        );
        let mut query = sqlx::query(&sql).bind(workspace_id);
        for a in &numbered {
            query = query
                .bind(&a.id)
                .bind(&a.delivery_id)
                .bind(a.attempt)
                .bind(&a.url)
                .bind(a.status_code)
                .bind(a.latency_ms)
                .bind(&a.response_excerpt)
                .bind(&a.error)
                .bind(a.started_at);
        }
        query.execute(&mut *conn).await?;
        stored.extend(numbered);
    }
    Ok(stored)
}

pub async fn record_attempt(db: &Db, attempt: &Attempt) -> Result<()> {
    let mut conn = db.pool().acquire().await?;
    record_attempt_in(&mut conn, attempt).await
}

/// [`record_attempt`] on a connection (in the transaction that also settles the delivery).
pub async fn record_attempt_in(conn: &mut AnyConnection, attempt: &Attempt) -> Result<()> {
    sqlx::query(
        "INSERT INTO webhook_attempts (id, workspace_id, delivery_id, attempt, cause, url, status_code, \
         latency_ms, response_excerpt, error, started_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(&attempt.id)
    .bind(&attempt.workspace_id)
    .bind(&attempt.delivery_id)
    .bind(attempt.attempt)
    .bind(&attempt.cause)
    .bind(&attempt.url)
    .bind(attempt.status_code)
    .bind(attempt.latency_ms)
    .bind(&attempt.response_excerpt)
    .bind(&attempt.error)
    .bind(attempt.started_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// The outcome of an attempt as the delivery keeps it.
#[derive(Debug, Clone)]
pub struct Outcome<'a> {
    pub state: &'a str,
    pub status: Option<i64>,
    pub error: Option<&'a str>,
    /// When the next automatic attempt is due (pending deliveries).
    pub next_attempt_at: Option<i64>,
}

/// Records where the delivery stands after an attempt. A delivery that already succeeded
/// stays succeeded (a late failing attempt of a concurrent run does not undo it). Returns
/// whether the row changed.
pub async fn settle(
    db: &Db,
    workspace_id: &str,
    id: &str,
    outcome: &Outcome<'_>,
    now: i64,
) -> Result<bool> {
    let mut conn = db.pool().acquire().await?;
    settle_in(&mut conn, workspace_id, id, outcome, now).await
}

/// [`settle`] on a connection (in the transaction that also records the attempt).
pub async fn settle_in(
    conn: &mut AnyConnection,
    workspace_id: &str,
    id: &str,
    outcome: &Outcome<'_>,
    now: i64,
) -> Result<bool> {
    let finished = (outcome.state != PENDING).then_some(now);
    let done = sqlx::query(
        "UPDATE webhook_deliveries SET state = $3, last_status = $4, last_error = $5, \
         next_attempt_at = $6, finished_at = $7, updated_at = $8 \
         WHERE workspace_id = $1 AND id = $2 AND (state <> 'succeeded' OR $3 = 'succeeded')",
    )
    .bind(workspace_id)
    .bind(id)
    .bind(outcome.state)
    .bind(outcome.status)
    .bind(outcome.error)
    .bind(outcome.next_attempt_at)
    .bind(finished)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// A delivery's attempts, first first.
pub async fn attempts(db: &Db, workspace_id: &str, delivery_id: &str) -> Result<Vec<Attempt>> {
    Ok(sqlx::query_as(
        "SELECT id, workspace_id, delivery_id, attempt, cause, url, status_code, latency_ms, \
         response_excerpt, error, started_at FROM webhook_attempts \
         WHERE workspace_id = $1 AND delivery_id = $2 ORDER BY attempt, started_at",
    )
    .bind(workspace_id)
    .bind(delivery_id)
    .fetch_all(db.pool())
    .await?)
}

/// Counts a manual re-send; returns the number of re-sends so far (part of its job's key), or
/// `None` when there is no such delivery.
pub async fn count_resend(db: &Db, workspace_id: &str, id: &str, now: i64) -> Result<Option<i64>> {
    Ok(sqlx::query_scalar(
        "UPDATE webhook_deliveries SET resends = resends + 1, updated_at = $3 \
         WHERE workspace_id = $1 AND id = $2 RETURNING resends",
    )
    .bind(workspace_id)
    .bind(id)
    .bind(now)
    .fetch_optional(db.pool())
    .await?)
}

/// Fails every pending delivery of an endpoint (it was disabled); returns how many.
pub async fn fail_pending(
    db: &Db,
    workspace_id: &str,
    endpoint_id: &str,
    reason: &str,
    now: i64,
) -> Result<u64> {
    let done = sqlx::query(
        "UPDATE webhook_deliveries SET state = 'failed', last_error = $3, next_attempt_at = NULL, \
         finished_at = $4, updated_at = $4 \
         WHERE workspace_id = $1 AND endpoint_id = $2 AND state = 'pending'",
    )
    .bind(workspace_id)
    .bind(endpoint_id)
    .bind(reason)
    .bind(now)
    .execute(db.pool())
    .await?;
    Ok(done.rows_affected())
}

/// The query of [`stranded`]; its literal conditions are the partial index's, so that both
/// databases use it.
const STRANDED: &str = select!(
    "WHERE state = 'pending' AND auto_attempts = 0 AND updated_at < $1 \
     ORDER BY updated_at LIMIT $2"
);

/// Pending deliveries with no automatic attempt recorded, last touched before `before`: the
/// dispatcher makes a delivery's first attempt itself right after creating it (rather than
/// through a job) and records it, counted, when it is done, so one still uncounted this long
/// after was cut short (its process died mid-request, or the recording failed). Nothing else
/// will retry them: the dispatch sweep enqueues their retry job and [`touch_in`]s them. Oldest
/// first, across workspaces (a system sweep); the partial index
/// `webhook_deliveries_unattempted` holds only such deliveries.
pub async fn stranded(db: &Db, before: i64, limit: i64) -> Result<Vec<Delivery>> {
    Ok(sqlx::query_as(STRANDED)
        .bind(before)
        .bind(limit)
        .fetch_all(db.pool())
        .await?)
}

/// Marks a delivery as looked at now (`updated_at`), so that [`stranded`] does not return it
/// again before another full wait.
pub async fn touch_in(
    conn: &mut AnyConnection,
    workspace_id: &str,
    id: &str,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "UPDATE webhook_deliveries SET updated_at = $3 WHERE workspace_id = $1 AND id = $2",
    )
    .bind(workspace_id)
    .bind(id)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// Counts of an endpoint's deliveries by state: (pending, succeeded, failed).
pub async fn counts(db: &Db, workspace_id: &str, endpoint_id: &str) -> Result<(i64, i64, i64)> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT state, COUNT(*) FROM webhook_deliveries WHERE workspace_id = $1 AND endpoint_id = $2 \
         GROUP BY state",
    )
    .bind(workspace_id)
    .bind(endpoint_id)
    .fetch_all(db.pool())
    .await?;
    let get = |s: &str| rows.iter().find(|(k, _)| k == s).map_or(0, |(_, n)| *n);
    Ok((get(PENDING), get(SUCCEEDED), get(FAILED)))
}

const CURSOR: &str = "events";

/// Where the dispatcher stands in the event log (ms), if it ever ran.
pub async fn cursor(db: &Db) -> Result<Option<i64>> {
    Ok(
        sqlx::query_scalar("SELECT position FROM webhook_dispatch_cursor WHERE name = $1")
            .bind(CURSOR)
            .fetch_optional(db.pool())
            .await?,
    )
}

/// Moves the cursor forward to `position` (never back: of two dispatchers, the later one wins).
pub async fn advance_cursor(db: &Db, position: i64, now: i64) -> Result<()> {
    sqlx::query(
        "INSERT INTO webhook_dispatch_cursor (name, position, updated_at) VALUES ($1, $2, $3) \
         ON CONFLICT (name) DO UPDATE SET position = excluded.position, updated_at = excluded.updated_at \
         WHERE webhook_dispatch_cursor.position < excluded.position",
    )
    .bind(CURSOR)
    .bind(position)
    .bind(now)
    .execute(db.pool())
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::both_backends;
    use crate::webhook_endpoints;

    fn delivery(c: &Candidate, now: i64) -> Delivery {
        Delivery {
            id: tidepost_domain::new_id(),
            workspace_id: c.workspace_id.clone(),
            endpoint_id: c.endpoint_id.clone(),
            event_id: c.event_id.clone(),
            event_type: c.event_type.clone(),
            body: c.payload.clone(),
            state: PENDING.into(),
            attempts: 0,
            auto_attempts: 0,
            resends: 0,
            next_attempt_at: Some(now),
            last_status: None,
            last_error: None,
            event_created_at: c.event_created_at,
            created_at: now,
            updated_at: now,
            finished_at: None,
        }
    }

    both_backends!(dispatch_and_attempts, |db: Db| async move {
        let a = crate::workspaces::create(&db, "a", "A").await.unwrap().id;
        let b = crate::workspaces::create(&db, "b", "B").await.unwrap().id;
        let types = ["post.published", "account.connected"];
        // An event before any endpoint existed goes nowhere.
        crate::events::record(
            &db,
            &a,
            "post.published",
            None,
            &serde_json::json!({"n": 0}),
        )
        .await
        .unwrap();
        // The endpoints are made a few milliseconds later (their `created_at` is `now - 1`).
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        let now = tidepost_domain::now_ms();
        let mut all = webhook_endpoints::tests::endpoint(&a, "https://all.example", "", now);
        all.created_at = now - 1;
        webhook_endpoints::insert(&db, &all).await.unwrap();
        let mut posts =
            webhook_endpoints::tests::endpoint(&a, "https://posts.example", "post.published", now);
        posts.created_at = now - 1;
        webhook_endpoints::insert(&db, &posts).await.unwrap();
        let mut other = webhook_endpoints::tests::endpoint(&b, "https://b.example", "", now);
        other.created_at = now - 1;
        webhook_endpoints::insert(&db, &other).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;

        let published = crate::events::record(
            &db,
            &a,
            "post.published",
            None,
            &serde_json::json!({"n": 1}),
        )
        .await
        .unwrap();
        let connected = crate::events::record(
            &db,
            &a,
            "account.connected",
            None,
            &serde_json::json!({"n": 2}),
        )
        .await
        .unwrap();
        crate::events::record(&db, &a, "internal.thing", None, &serde_json::json!({}))
            .await
            .unwrap();

        let found = candidates(&db, 0, &types, 100).await.unwrap();
        let pairs: Vec<(&str, &str)> = found
            .iter()
            .map(|c| (c.event_id.as_str(), c.endpoint_id.as_str()))
            .collect();
        let mut expected = vec![
            (published.id.as_str(), all.id.as_str()),
            (published.id.as_str(), posts.id.as_str()),
            (connected.id.as_str(), all.id.as_str()),
        ];
        expected.sort();
        let mut got = pairs.clone();
        got.sort();
        assert_eq!(
            got, expected,
            "workspace b's endpoint and unknown types get nothing"
        );
        assert_eq!(found[0].event_id, published.id, "oldest first");
        // A page at a time, each from where the last one ended.
        let mut paged: Vec<(String, String)> = Vec::new();
        let mut after: Option<Position> = None;
        loop {
            let page = candidates_after(&db, 0, after.as_ref(), &types, 1)
                .await
                .unwrap();
            let Some(last) = page.last() else { break };
            after = Some((
                last.event_created_at,
                last.event_id.clone(),
                last.endpoint_id.clone(),
            ));
            paged.extend(
                page.iter()
                    .map(|c| (c.event_id.clone(), c.endpoint_id.clone())),
            );
        }
        let all_at_once: Vec<(String, String)> = found
            .iter()
            .map(|c| (c.event_id.clone(), c.endpoint_id.clone()))
            .collect();
        assert_eq!(paged, all_at_once);

        // Exactly once: a second insert of the same pair does nothing.
        let mut conn = db.pool().acquire().await.unwrap();
        let first = delivery(&found[0], now);
        assert!(insert_in(&mut conn, &first).await.unwrap());
        assert!(
            !insert_in(&mut conn, &delivery(&found[0], now))
                .await
                .unwrap()
        );
        for c in &found[1..] {
            assert!(insert_in(&mut conn, &delivery(c, now)).await.unwrap());
        }
        drop(conn);
        assert!(candidates(&db, 0, &types, 100).await.unwrap().is_empty());

        // A disabled endpoint gets nothing new.
        webhook_endpoints::disable(&db, &a, &posts.id, "off", now)
            .await
            .unwrap();
        crate::events::record(
            &db,
            &a,
            "post.published",
            None,
            &serde_json::json!({"n": 3}),
        )
        .await
        .unwrap();
        let found = candidates(&db, 0, &types, 100).await.unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].endpoint_id, all.id);

        // Attempts: each counted with its outcome, in one transaction.
        let attempt = |cause: &str, status: i64| Attempt {
            id: tidepost_domain::new_id(),
            workspace_id: a.clone(),
            delivery_id: first.id.clone(),
            attempt: 0,
            cause: cause.into(),
            url: "https://all.example".into(),
            status_code: Some(status),
            latency_ms: 12,
            response_excerpt: Some("no".into()),
            error: None,
            started_at: now,
        };
        let retry = Outcome {
            state: PENDING,
            status: Some(500),
            error: Some("the receiver answered 500"),
            next_attempt_at: Some(now + 5_000),
        };
        // An attempt whose transaction never commits (the process died) leaves no trace.
        let mut tx = db.begin_write().await.unwrap();
        assert_eq!(
            record_outcome_in(&mut tx, &attempt("auto", 500), true, Some(&retry), now)
                .await
                .unwrap(),
            Some((1, 1))
        );
        tx.rollback().await.unwrap();
        let got = get(&db, &a, &first.id).await.unwrap().unwrap();
        assert_eq!(
            (got.attempts, got.auto_attempts, got.last_status),
            (0, 0, None)
        );
        assert!(attempts(&db, &a, &first.id).await.unwrap().is_empty());

        let mut tx = db.begin_write().await.unwrap();
        assert_eq!(
            record_outcome_in(&mut tx, &attempt("auto", 500), true, Some(&retry), now)
                .await
                .unwrap(),
            Some((1, 1))
        );
        assert_eq!(
            record_outcome_in(&mut tx, &attempt("manual", 500), false, Some(&retry), now)
                .await
                .unwrap(),
            Some((2, 1))
        );
        let elsewhere = Attempt {
            workspace_id: b.clone(),
            ..attempt("auto", 500)
        };
        assert_eq!(
            record_outcome_in(&mut tx, &elsewhere, true, Some(&retry), now)
                .await
                .unwrap(),
            None,
            "another workspace's delivery is not touched"
        );
        tx.commit().await.unwrap();
        let got = get(&db, &a, &first.id).await.unwrap().unwrap();
        assert_eq!(
            (
                got.attempts,
                got.auto_attempts,
                got.state.as_str(),
                got.last_status
            ),
            (2, 1, PENDING, Some(500))
        );
        assert_eq!(got.next_attempt_at, Some(now + 5_000));
        assert!(attempts(&db, &b, &first.id).await.unwrap().is_empty());

        // Attempts that got through, recorded together; a delivery gone meanwhile is skipped.
        let gone = Attempt {
            delivery_id: "no-such-delivery".into(),
            ..attempt("auto", 204)
        };
        let mut tx = db.begin_write().await.unwrap();
        let stored = record_delivered_in(
            &mut tx,
            &a,
            Some(204),
            &[attempt("auto", 204), gone],
            now + 1,
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(stored.len(), 1);
        let log = attempts(&db, &a, &first.id).await.unwrap();
        let numbers: Vec<(i64, &str, Option<i64>)> = log
            .iter()
            .map(|x| (x.attempt, x.cause.as_str(), x.status_code))
            .collect();
        assert_eq!(
            numbers,
            [
                (1, "auto", Some(500)),
                (2, "manual", Some(500)),
                (3, "auto", Some(204))
            ]
        );
        let got = get(&db, &a, &first.id).await.unwrap().unwrap();
        assert_eq!(
            (
                got.attempts,
                got.auto_attempts,
                got.last_error,
                got.next_attempt_at
            ),
            (3, 2, None, None)
        );

        let late_failure = Outcome {
            state: PENDING,
            status: Some(500),
            error: Some("x"),
            next_attempt_at: Some(1),
        };
        assert!(
            !settle(&db, &a, &first.id, &late_failure, now + 2)
                .await
                .unwrap()
        );
        let got = get(&db, &a, &first.id).await.unwrap().unwrap();
        assert_eq!(
            (got.state.as_str(), got.finished_at),
            (SUCCEEDED, Some(now + 1))
        );
        assert_eq!(
            count_resend(&db, &a, &first.id, now).await.unwrap(),
            Some(1)
        );
        assert_eq!(count_resend(&db, &b, &first.id, now).await.unwrap(), None);

        let listed = list_for_endpoint(&db, &a, &all.id, None, None, 10)
            .await
            .unwrap();
        assert_eq!(listed.len(), 2);
        let failed_only = list_for_endpoint(&db, &a, &all.id, Some(FAILED), None, 10)
            .await
            .unwrap();
        assert!(failed_only.is_empty());
        assert_eq!(
            fail_pending(&db, &a, &all.id, "disabled", now)
                .await
                .unwrap(),
            1
        );
        assert_eq!(counts(&db, &a, &all.id).await.unwrap(), (0, 1, 1));

        // The cursor only moves forward.
        assert_eq!(cursor(&db).await.unwrap(), None);
        advance_cursor(&db, 100, 1).await.unwrap();
        advance_cursor(&db, 50, 2).await.unwrap();
        assert_eq!(cursor(&db).await.unwrap(), Some(100));
        advance_cursor(&db, 150, 3).await.unwrap();
        assert_eq!(cursor(&db).await.unwrap(), Some(150));
    });

    both_backends!(
        stranded_deliveries_are_found_by_their_index,
        |db: Db| async move {
            let mut conn = db.pool().acquire().await.unwrap();
            let explain = match db.dialect() {
                crate::Dialect::Sqlite => format!("EXPLAIN QUERY PLAN {STRANDED}"),
                crate::Dialect::Postgres => {
                    // An empty table is read whole whatever its indexes: ask whether the index
                    // can serve the query at all.
                    sqlx::query("SET enable_seqscan = off")
                        .execute(&mut *conn)
                        .await
                        .unwrap();
                    format!("EXPLAIN {STRANDED}")
                }
            };
            let rows = sqlx::query(&explain)
                .bind(1_i64)
                .bind(10_i64)
                .fetch_all(&mut *conn)
                .await
                .unwrap();
            let plan: Vec<String> = rows
                .iter()
                .map(|row| {
                    use sqlx::Row;
                    row.try_get::<String, _>("detail")
                        .or_else(|_| row.try_get::<String, _>(0))
                        .unwrap()
                })
                .collect();
            assert!(
                plan.iter()
                    .any(|line| line.contains("webhook_deliveries_unattempted")),
                "the stranded-delivery query does not use its index: {plan:?}"
            );
            assert!(
                !plan
                    .iter()
                    .any(|line| line.contains("TEMP B-TREE") || line.contains("Sort")),
                "the index gives the order too: {plan:?}"
            );
        }
    );
}
