//! Group commit of completions for a worker pool: runs that finish while one completing
//! statement is in flight are completed together by the next, so a busy pool pays one commit
//! for many jobs and an idle one waits for nothing. Each row stays fenced by its own lease.

use std::collections::HashSet;

use tokio::sync::{mpsc, oneshot};

use crate::lease::{self, Lease};
use crate::{Error, Queue, Result};

/// Completions written by one statement at most.
const MAX_BATCH: usize = 64;

type Request = (Lease, oneshot::Sender<Result<bool, String>>);

/// A handle on the completing task; it ends when every handle is dropped.
#[derive(Clone, Debug)]
pub(crate) struct Completer {
    requests: mpsc::UnboundedSender<Request>,
}

impl Completer {
    pub(crate) fn spawn(queue: Queue) -> Self {
        let (requests, incoming) = mpsc::unbounded_channel();
        tokio::spawn(complete_batches(queue, incoming));
        Self { requests }
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

async fn complete_batches(queue: Queue, mut incoming: mpsc::UnboundedReceiver<Request>) {
    while let Some(first) = incoming.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH
            && let Ok(next) = incoming.try_recv()
        {
            batch.push(next);
        }
        let leases: Vec<Lease> = batch.iter().map(|(lease, _)| lease.clone()).collect();
        let done = lease::complete_many(queue.db(), queue.clock().now_ms(), &leases).await;
        let done: Result<HashSet<String>, String> =
            done.map(HashSet::from_iter).map_err(|e| e.to_string());
        for (lease, reply) in batch {
            let _ = reply.send(
                done.as_ref()
                    .map(|ids| ids.contains(&lease.job_id))
                    .map_err(Clone::clone),
            );
        }
    }
}
