//! The dispatcher's writes, in groups: creating deliveries and recording their first attempts.
//!
//! Every first attempt ends with a write: its attempt row, its delivery counted and settled,
//! its endpoint's success and, when it failed, its retry job. Written one transaction per
//! attempt, a burst pays one commit (an fsync on PostgreSQL, a hold of the one write lock on
//! SQLite) per delivery and its writers queue on each other. Here the attempts that finish
//! while a write is in flight wait for it and are then written together, in one transaction:
//! the attempts that got through with one statement per workspace and status (plus one per
//! endpoint for its success), the failed ones with their retry jobs one by one. The
//! dispatcher's next page of deliveries is created by the same transaction (`insert`), so a
//! burst takes the write lock once per page for both, and the dispatcher's writes never wait
//! on each other's locks (on SQLite such a wait sleeps). A lone write is made at once.
//!
//! No task outlives a burst: the first write to find none in flight spawns one that writes
//! until nothing is waiting. When a group fails, each write is made again in its own
//! transaction, so that whatever failed fails only its own call (an attempt that cannot be
//! recorded leaves its delivery uncounted: the sweep then finds it stranded and retries it).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::{Arc, Mutex};

use tidepost_store::webhook_deliveries::{self, Attempt, Delivery, Outcome, PENDING};
use tidepost_store::webhook_endpoints;
use tokio::sync::oneshot;

use super::deliver::{self, SCHEDULE, Sent};
use crate::App;

/// Attempts written by one transaction at most.
const MAX_GROUP: usize = 256;

/// A first attempt that is done, waiting to be recorded.
pub(crate) struct Finished {
    pub delivery: Delivery,
    pub attempt: Attempt,
    pub sent: Sent,
}

type Answer = oneshot::Sender<Result<(), String>>;

/// One write waiting for the group.
enum Op {
    /// Deliveries to create; answered with the ids this write inserted.
    Insert(Vec<Delivery>, oneshot::Sender<Inserted>),
    Record(Box<Finished>, Answer),
}

/// The ids a page's insert created, or why it failed.
type Inserted = Result<HashSet<String>, String>;

/// The attempts waiting for the write in flight, and whether one is in flight (one per app,
/// in [`super::Live`]).
#[derive(Default)]
pub struct Recorder(Mutex<Pending>);

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Recorder")
    }
}

#[derive(Default)]
struct Pending {
    waiting: Vec<Op>,
    writing: bool,
}

/// Records a first attempt (with the others finishing at the same time); returns once it is
/// committed, or why it could not be.
pub(crate) async fn record(app: &App, finished: Finished) -> Result<(), String> {
    let (answer, answered) = oneshot::channel();
    submit(app, Op::Record(Box::new(finished), answer));
    answered.await.map_err(|_| ended())?
}

/// Creates the deliveries (each unless its endpoint has one for the event already), with the
/// attempts being recorded at the same time; returns the ones this call created.
pub(crate) async fn insert(app: &App, deliveries: Vec<Delivery>) -> Result<Vec<Delivery>, String> {
    let (answer, answered) = oneshot::channel();
    submit(app, Op::Insert(deliveries.clone(), answer));
    let inserted = answered.await.map_err(|_| ended())??;
    Ok(deliveries
        .into_iter()
        .filter(|d| inserted.contains(&d.id))
        .collect())
}

fn ended() -> String {
    "the dispatcher's writer ended (the runtime is shutting down)".to_string()
}

fn submit(app: &App, op: Op) {
    let recorder = app.outbound.recorder.clone();
    let lead = {
        let mut pending = recorder.0.lock().unwrap_or_else(|p| p.into_inner());
        pending.waiting.push(op);
        !std::mem::replace(&mut pending.writing, true)
    };
    if lead {
        tokio::spawn(write_groups(app.clone(), recorder));
    }
}

/// Lets the next attempt start a writer if this one ends without finishing (its runtime shut
/// down): the waiting attempts belong to that runtime and are gone with it.
struct Writing {
    recorder: Arc<Recorder>,
    finished: bool,
}

impl Drop for Writing {
    fn drop(&mut self) {
        if !self.finished {
            let mut pending = self.recorder.0.lock().unwrap_or_else(|p| p.into_inner());
            pending.writing = false;
            pending.waiting.clear();
        }
    }
}

async fn write_groups(app: App, recorder: Arc<Recorder>) {
    let mut writing = Writing {
        recorder: recorder.clone(),
        finished: false,
    };
    loop {
        // Let the attempts finishing at this moment join the group (their tasks are ready to
        // run) rather than leave the first one to a transaction of its own.
        tokio::task::yield_now().await;
        let batch: Vec<Op> = {
            let mut pending = recorder.0.lock().unwrap_or_else(|p| p.into_inner());
            if pending.waiting.is_empty() {
                pending.writing = false;
                writing.finished = true;
                return;
            }
            let take = pending.waiting.len().min(MAX_GROUP);
            pending.waiting.drain(..take).collect()
        };
        let mut inserts = Vec::new();
        let mut items = Vec::new();
        let mut answers = Vec::new();
        for op in batch {
            match op {
                Op::Insert(deliveries, answer) => inserts.push((deliveries, answer)),
                Op::Record(finished, answer) => {
                    items.push(*finished);
                    answers.push(answer);
                }
            }
        }
        let pages: Vec<&[Delivery]> = inserts.iter().map(|(d, _)| d.as_slice()).collect();
        let written = write_group(&app, &pages, &items).await;
        let (inserted, recorded): (Vec<Inserted>, Vec<Result<(), String>>) = match written {
            Ok(inserted) => (
                pages.iter().map(|_| Ok(inserted.clone())).collect(),
                items.iter().map(|_| Ok(())).collect(),
            ),
            // One write at a time, so that whatever failed fails only its own call.
            Err(err) if pages.len() + items.len() > 1 => {
                tracing::debug!("a grouped webhook write failed, writing one by one: {err}");
                let mut inserted = Vec::with_capacity(pages.len());
                for page in &pages {
                    let one = write_group(&app, &[page], &[]).await;
                    inserted.push(one.map_err(|e| e.to_string()));
                }
                let mut recorded = Vec::with_capacity(items.len());
                for item in &items {
                    let one = write_group(&app, &[], std::slice::from_ref(item)).await;
                    recorded.push(one.map(|_| ()).map_err(|e| e.to_string()));
                }
                (inserted, recorded)
            }
            Err(err) => (
                pages.iter().map(|_| Err(err.to_string())).collect(),
                items.iter().map(|_| Err(err.to_string())).collect(),
            ),
        };
        for ((_, answer), result) in inserts.into_iter().zip(inserted) {
            let _ = answer.send(result);
        }
        for (answer, result) in answers.into_iter().zip(recorded) {
            let _ = answer.send(result);
        }
    }
}

/// One transaction recording every attempt of `items` and creating the deliveries of `pages`;
/// returns the ids of the deliveries it created.
async fn write_group(
    app: &App,
    pages: &[&[Delivery]],
    items: &[Finished],
) -> Result<HashSet<String>, tidepost_jobs::Error> {
    let now = app.queue.clock().now_ms();
    let mut delivered: BTreeMap<(&str, Option<i64>), Vec<Attempt>> = BTreeMap::new();
    let mut endpoints: BTreeSet<(&str, &str)> = BTreeSet::new();
    let mut failed = Vec::new();
    for item in items {
        if item.sent.delivered() {
            delivered
                .entry((&item.delivery.workspace_id, item.attempt.status_code))
                .or_default()
                .push(item.attempt.clone());
            endpoints.insert((&item.delivery.workspace_id, &item.delivery.endpoint_id));
        } else {
            failed.push(item);
        }
    }
    let mut tx = app.db.begin_write().await?;
    for ((workspace_id, status), attempts) in &delivered {
        webhook_deliveries::record_delivered_in(&mut tx, workspace_id, *status, attempts, now)
            .await?;
    }
    for (workspace_id, endpoint_id) in &endpoints {
        webhook_endpoints::record_success_in(&mut tx, workspace_id, endpoint_id, now).await?;
    }
    for item in failed {
        let summary = item.sent.summary();
        let wait = SCHEDULE[1];
        let at = now + i64::try_from(wait.as_millis()).unwrap_or(i64::MAX / 2);
        let outcome = Outcome {
            state: PENDING,
            status: item.attempt.status_code,
            error: Some(&summary),
            next_attempt_at: Some(at),
        };
        let counted = webhook_deliveries::record_outcome_in(
            &mut tx,
            &item.attempt,
            true,
            Some(&outcome),
            now,
        )
        .await?;
        if counted.is_some() {
            app.queue
                .enqueue_in(&mut tx, deliver::job(&item.delivery).run_at(at))
                .await?;
            tracing::debug!(delivery_id = %item.delivery.id, "webhook attempt 1 of {}: {summary}", SCHEDULE.len());
        }
    }
    let mut inserted = HashSet::new();
    for page in pages {
        inserted.extend(webhook_deliveries::insert_many_in(&mut tx, page).await?);
    }
    tx.commit().await?;
    Ok(inserted)
}
