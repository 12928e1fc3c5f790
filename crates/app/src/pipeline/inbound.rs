//! Inbound provider webhooks, whatever the platform: an event is stored raw under its dedupe
//! key and its application (a job of the platform's kind, payload [`EventRef`]) is enqueued in
//! the same transaction, grouped with concurrent deliveries, before the sender gets its 2xx.
//! Verifying and parsing a delivery, and applying it, are the platform's
//! (`platforms::tiktok::webhooks`, `platforms::instagram::webhooks`).

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use tidepost_jobs::{NewJob, Queue};
use tidepost_store::StoreError;
use tidepost_store::inbound_events::{self, InboundEvent, Then};

use crate::App;

/// The payload of a webhook application job.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EventRef {
    pub event_id: String,
}

/// Stores an inbound event and enqueues its application (a `job_kind` job whose payload is
/// an [`EventRef`]) in one transaction, grouped with concurrent deliveries (see
/// [`inbound_events::insert_then`]): a burst of deliveries pays one commit for all its
/// events, their jobs are written by one statement, and the sender gets its 2xx only once
/// both are durable. A duplicate delivery stores nothing and enqueues nothing: its job
/// committed with its event, under the event's idempotency key, so it is only looked up by
/// that key, and only while the event is not applied yet (an event stored without its job, by
/// a version that wrote them apart and stopped between the two, gets it then). Workers are
/// woken once the job is committed.
pub(crate) async fn store_and_enqueue(
    app: &App,
    event: &InboundEvent,
    job_kind: &'static str,
) -> Result<(InboundEvent, bool), StoreError> {
    let then = app.ingest.follow_up(job_kind, || {
        enqueue_application(app.queue.clone(), job_kind)
    });
    let stored = inbound_events::insert_then(&app.db, event, Some(then)).await?;
    if stored.1 {
        app.queue.wake_workers();
    }
    Ok(stored)
}

/// The follow-ups of stored inbound events, one per job kind, made once per app: the
/// deliveries of one group commit then share one, and their jobs are enqueued together.
#[derive(Default)]
pub struct IngestFollowUps(Mutex<HashMap<&'static str, Then>>);

impl IngestFollowUps {
    fn follow_up(&self, job_kind: &'static str, make: impl FnOnce() -> Then) -> Then {
        let mut made = self.0.lock().unwrap_or_else(|p| p.into_inner());
        made.entry(job_kind).or_insert_with(make).clone()
    }
}

/// Enqueues a `job_kind` job for each stored event that is new or not yet applied, all with
/// one multi-row insert through the storing transaction.
fn enqueue_application(queue: Queue, job_kind: &'static str) -> Then {
    inbound_events::then(move |conn, stored| {
        let mut seen = HashSet::new();
        let jobs: Vec<NewJob> = stored
            .iter()
            .filter(|(event, new)| *new || event.applied_at.is_none())
            .filter(|(event, _)| seen.insert(event.id.as_str()))
            .map(|(event, _)| {
                NewJob::new(
                    job_kind,
                    &EventRef {
                        event_id: event.id.clone(),
                    },
                )
                .idempotency_key(format!("{job_kind}:{}", event.id))
            })
            .collect();
        let queue = queue.clone();
        Box::pin(async move {
            if jobs.is_empty() {
                return Ok(());
            }
            queue
                .enqueue_many_in(conn, &jobs)
                .await
                .map(|_| ())
                .map_err(|e| format!("enqueuing {job_kind}: {e}"))
        })
    })
}
