//! Errors: [`Error`] for the engine's own calls, [`JobError`] for what a handler returns.

use std::fmt;
use std::time::Duration;

use thiserror::Error;
use tidepost_store::StoreError;

/// What can go wrong calling the engine.
#[derive(Debug, Error)]
pub enum Error {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the job payload cannot be encoded as JSON: {0}")]
    Payload(String),
    #[error("database error: {0}")]
    Database(String),
    #[error("the job lease was lost: another worker may hold the job now")]
    LeaseLost,
}

impl From<sqlx::Error> for Error {
    fn from(err: sqlx::Error) -> Self {
        Error::Store(StoreError::Sqlx(err))
    }
}

/// Whether a failed job should be tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Try again after the policy's backoff, or after `after` when the error says so (a
    /// provider's `Retry-After`).
    Yes { after: Option<Duration> },
    /// Never: the job goes straight to `dead`.
    No,
    /// Nothing went wrong: the job is waiting for something outside (a provider still
    /// processing, a rate-limit slot) and looks again after `after`. Not a failure: no
    /// `last_error` is stored, nothing is logged as failed, and the run does not count as
    /// failed in the metrics; the attempt still counts toward the kind's `max_attempts`.
    Wait { after: Duration },
}

/// What a handler returns when it did not finish: a failure (the message is kept on the job as
/// `last_error`) and whether to retry, or a wait ([`JobError::wait`], the message is a note
/// logged at debug level and kept nowhere).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobError {
    pub message: String,
    pub retry: Retry,
}

impl JobError {
    /// A failure that may pass (a timeout, a 5xx): retried with backoff.
    pub fn retryable(message: impl fmt::Display) -> Self {
        Self {
            message: message.to_string(),
            retry: Retry::Yes { after: None },
        }
    }

    /// A failure that will not pass by retrying (a refused request, bad input): dead at once.
    pub fn permanent(message: impl fmt::Display) -> Self {
        Self {
            message: message.to_string(),
            retry: Retry::No,
        }
    }

    /// Not a failure: "wait and look again" after `after` (a provider still processing, a
    /// slot of a rate limit not free yet). `note` says what is awaited (logged at debug).
    pub fn wait(note: impl fmt::Display, after: Duration) -> Self {
        Self {
            message: note.to_string(),
            retry: Retry::Wait { after },
        }
    }

    /// True for a [`wait`](Self::wait), false for a failure.
    pub fn is_wait(&self) -> bool {
        matches!(self.retry, Retry::Wait { .. })
    }

    /// Asks for the next try no sooner than `after` (a 429's `Retry-After`).
    pub fn retry_after(mut self, after: Duration) -> Self {
        self.retry = Retry::Yes { after: Some(after) };
        self
    }

    pub fn is_permanent(&self) -> bool {
        self.retry == Retry::No
    }

    pub(crate) fn lease_lost() -> Self {
        Self::retryable(Error::LeaseLost)
    }
}

impl fmt::Display for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for JobError {}

/// Infrastructure failures (the database, the engine) are worth another try.
impl From<Error> for JobError {
    fn from(err: Error) -> Self {
        JobError::retryable(err)
    }
}

impl From<StoreError> for JobError {
    fn from(err: StoreError) -> Self {
        JobError::retryable(err)
    }
}

impl From<sqlx::Error> for JobError {
    fn from(err: sqlx::Error) -> Self {
        JobError::retryable(format!("database error: {err}"))
    }
}
