//! The workspace event log: what happened (`account.connected`, `post.published`, …), in order.
//! The UI's timeline and the outbound webhooks read from it.
//!
//! Every event recorded in this process is also announced on [`recorded`], so a reader in the
//! same process (the outbound webhook dispatcher) can look at once instead of waiting for its
//! next periodic sweep; the sweep stays for events other processes record.

use std::sync::LazyLock;

use serde::Serialize;
use tokio::sync::watch;

use crate::{Db, Result};

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Event {
    pub id: String,
    pub workspace_id: String,
    #[serde(rename = "type")]
    pub r#type: String,
    pub subject_id: Option<String>,
    pub payload: String,
    pub created_at: i64,
}

/// How many events this process has recorded: `committed` by [`record`] (visible to readers
/// once announced) and `in_transaction` by [`record_in`] (announced before their transaction
/// commits, so a reader woken by one should look again a little later).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Recorded {
    pub committed: u64,
    pub in_transaction: u64,
}

static RECORDED: LazyLock<watch::Sender<Recorded>> =
    LazyLock::new(|| watch::Sender::new(Recorded::default()));

/// The process-wide announcement of recorded events: `subscribe()` to it and await
/// `changed()`. A watch rather than a `Notify` so that every subscriber (several apps in one
/// test process) sees every change, and a change made while a subscriber was busy is not lost.
pub fn recorded() -> &'static watch::Sender<Recorded> {
    &RECORDED
}

pub async fn record(
    db: &Db,
    workspace_id: &str,
    kind: &str,
    subject_id: Option<&str>,
    payload: &serde_json::Value,
) -> Result<Event> {
    let event = Event {
        id: tidepost_domain::new_id(),
        workspace_id: workspace_id.to_string(),
        r#type: kind.to_string(),
        subject_id: subject_id.map(str::to_string),
        payload: payload.to_string(),
        created_at: tidepost_domain::now_ms(),
    };
    sqlx::query("INSERT INTO events (id, workspace_id, type, subject_id, payload, created_at) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(&event.id)
        .bind(&event.workspace_id)
        .bind(&event.r#type)
        .bind(&event.subject_id)
        .bind(&event.payload)
        .bind(event.created_at)
        .execute(db.pool())
        .await?;
    RECORDED.send_modify(|n| n.committed += 1);
    Ok(event)
}

/// [`record`] inside a transaction (with the write that caused it).
pub async fn record_in(
    conn: &mut sqlx::AnyConnection,
    workspace_id: &str,
    kind: &str,
    subject_id: Option<&str>,
    payload: &serde_json::Value,
) -> Result<Event> {
    let event = Event {
        id: tidepost_domain::new_id(),
        workspace_id: workspace_id.to_string(),
        r#type: kind.to_string(),
        subject_id: subject_id.map(str::to_string),
        payload: payload.to_string(),
        created_at: tidepost_domain::now_ms(),
    };
    sqlx::query("INSERT INTO events (id, workspace_id, type, subject_id, payload, created_at) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(&event.id)
        .bind(&event.workspace_id)
        .bind(&event.r#type)
        .bind(&event.subject_id)
        .bind(&event.payload)
        .bind(event.created_at)
        .execute(conn)
        .await?;
    RECORDED.send_modify(|n| n.in_transaction += 1);
    Ok(event)
}

/// The newest events of the workspace, optionally about one subject.
pub async fn recent(
    db: &Db,
    workspace_id: &str,
    subject_id: Option<&str>,
    limit: i64,
) -> Result<Vec<Event>> {
    Ok(sqlx::query_as(
        "SELECT id, workspace_id, type, subject_id, payload, created_at FROM events \
         WHERE workspace_id = $1 AND ($2 IS NULL OR subject_id = $2) ORDER BY created_at DESC, id DESC LIMIT $3",
    )
    .bind(workspace_id)
    .bind(subject_id)
    .bind(limit)
    .fetch_all(db.pool())
    .await?)
}
