//! Group commit of completions for a worker pool.
//!
//! A run whose handler succeeded asks for its completion through a [`Completer`] and waits for
//! the answer. While the pool dispatches, its dispatcher takes every completion waiting at the
//! moment it claims and writes them in the claim's own transaction
//! ([`lease::complete_and_claim`]), so a busy pool pays one commit per round for the jobs it
//! finished and the jobs it takes next; a completion that arrives while the dispatcher has
//! nothing to claim is written at once, with whatever else is waiting. After the dispatcher
//! stops (shutdown), [`Completions::spawn_writer`] keeps completing for the runs still
//! finishing. Each row stays fenced by its own lease.

use std::collections::HashSet;

use tokio::sync::{mpsc, oneshot};

use crate::lease::{self, Lease};
use crate::{Error, Queue, Result};

/// Completions written by one statement at most.
const MAX_BATCH: usize = 64;

type Request = (Lease, oneshot::Sender<Result<bool, String>>);

/// The runs' side: asks for completions. Cheap to clone.
#[derive(Clone, Debug)]
pub(crate) struct Completer {
    requests: mpsc::UnboundedSender<Request>,
}

/// The pool's side: the completions asked for and not written yet.
#[derive(Debug)]
pub(crate) struct Completions {
    incoming: mpsc::UnboundedReceiver<Request>,
}

/// Completions taken together, to be written by one statement and answered.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    requests: Vec<Request>,
}

impl Completer {
    pub(crate) fn channel() -> (Completer, Completions) {
        let (requests, incoming) = mpsc::unbounded_channel();
        (Completer { requests }, Completions { incoming })
    }

    /// Marks the job succeeded; false when its lease was lost.
    pub(crate) async fn complete(&self, lease: &Lease) -> Result<bool> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send((lease.clone(), reply))
            .map_err(|_| Error::Database("the completer stopped".into()))?;
        answer
            .await
            .map_err(|_| Error::Database("the completer stopped".into()))?
            .map_err(Error::Database)
    }
}

impl Completions {
    /// Waits for a completion, then takes it and every other one waiting (up to a batch);
    /// `None` when every [`Completer`] is gone. Cancel-safe: nothing is taken unless it returns.
    pub(crate) async fn next(&mut self) -> Option<Batch> {
        let first = self.incoming.recv().await?;
        let mut batch = Batch {
            requests: vec![first],
        };
        self.fill(&mut batch);
        Some(batch)
    }

    /// The completions waiting now (up to a batch), without waiting.
    pub(crate) fn pending(&mut self) -> Batch {
        let mut batch = Batch::default();
        self.fill(&mut batch);
        batch
    }

    fn fill(&mut self, batch: &mut Batch) {
        while batch.requests.len() < MAX_BATCH
            && let Ok(next) = self.incoming.try_recv()
        {
            batch.requests.push(next);
        }
    }

    /// Writes completions on a task of their own until every [`Completer`] is gone: for the
    /// runs that finish after the dispatcher stopped.
    pub(crate) fn spawn_writer(mut self, queue: Queue) {
        tokio::spawn(async move {
            while let Some(batch) = self.next().await {
                let done =
                    lease::complete_many(queue.db(), queue.clock().now_ms(), &batch.leases()).await;
                batch.answer(done);
            }
        });
    }
}

impl Batch {
    pub(crate) fn extend(&mut self, other: Batch) {
        self.requests.extend(other.requests);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.requests.is_empty()
    }

    pub(crate) fn leases(&self) -> Vec<Lease> {
        self.requests
            .iter()
            .map(|(lease, _)| lease.clone())
            .collect()
    }

    /// Tells each run whether its job was completed (`done` holds the ids the statement
    /// completed), or the error that kept the statement from running.
    pub(crate) fn answer(self, done: Result<Vec<String>>) {
        let done: Result<HashSet<String>, String> =
            done.map(HashSet::from_iter).map_err(|e| e.to_string());
        for (lease, reply) in self.requests {
            let _ = reply.send(
                done.as_ref()
                    .map(|ids| ids.contains(&lease.job_id))
                    .map_err(Clone::clone),
            );
        }
    }
}
