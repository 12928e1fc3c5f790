//! What the publish jobs of every platform share: why a run stopped short ([`Halt`]), what a
//! token-wrapped call's failure means for the publish ([`halt_for`]), and how a run's outcome
//! settles the target and the job ([`settle`]): failed for good, or retried with the provider's
//! error shown on the target, failed once the attempts run out.

use std::time::Duration;

use tidepost_domain::Platform;
use tidepost_domain::publish::TargetState;
use tidepost_jobs::{JobContext, JobError};
use tidepost_providers::{ErrorKind, ProviderError};
use tidepost_store::StoreError;
use tidepost_store::posts::{self, Target};

use super::{TargetRef, advance};
use crate::App;
use crate::tokens::TokenError;

/// Why a run stopped short of the end.
#[derive(Debug)]
pub(crate) enum Halt {
    /// The target failed for good (until someone retries it).
    Fail(ProviderError),
    /// Try again later; `error` is the provider error behind it, if any.
    Retry {
        message: String,
        after: Option<Duration>,
        error: Option<ProviderError>,
    },
    /// Nothing went wrong: waiting for something outside (the platform still processing, a
    /// rate-limit slot) and looking again after `after`. Not an error: the target keeps its
    /// state and shows nothing, the job stores no error ([`JobError::wait`]).
    Wait { note: String, after: Duration },
    /// The engine's own error (lease lost, database).
    Job(JobError),
    /// Nothing to do (target gone, cancelled or already finished).
    Stop,
}

impl From<StoreError> for Halt {
    fn from(err: StoreError) -> Self {
        Halt::Job(JobError::from(err))
    }
}

impl From<JobError> for Halt {
    fn from(err: JobError) -> Self {
        Halt::Job(err)
    }
}

pub(crate) fn retry(
    message: impl Into<String>,
    after: Option<Duration>,
    error: Option<ProviderError>,
) -> Halt {
    Halt::Retry {
        message: message.into(),
        after,
        error,
    }
}

/// "Wait and look again" after `after`: not an error ([`Halt::Wait`]).
pub(crate) fn wait(note: impl Into<String>, after: Duration) -> Halt {
    Halt::Wait {
        note: note.into(),
        after,
    }
}

/// An error of ours about `platform`, in the provider error shape the targets store.
pub(crate) fn error_on(
    platform: Platform,
    code: &str,
    message: impl Into<String>,
    kind: ErrorKind,
) -> ProviderError {
    ProviderError {
        platform,
        kind,
        code: code.to_string(),
        subcode: None,
        message: message.into(),
        http_status: None,
        retry_after: None,
        usage: None,
    }
}

/// What a token-wrapped call's failure means for a publish to `platform`; `reauth` words the
/// failure of an account that must be connected again.
pub(crate) fn halt_for(
    platform: Platform,
    err: TokenError,
    reauth: impl FnOnce(String) -> String,
) -> Halt {
    match err {
        TokenError::NeedsReauth(message) => Halt::Fail(error_on(
            platform,
            "needs_reauth",
            reauth(message),
            ErrorKind::Reauth,
        )),
        TokenError::Provider(e) => match e.kind {
            ErrorKind::Retryable | ErrorKind::OutcomeUnknown => {
                retry(e.message.clone(), None, Some(e))
            }
            ErrorKind::RateLimited => retry(e.message.clone(), e.retry_after, Some(e)),
            ErrorKind::Reauth | ErrorKind::Permanent => Halt::Fail(e),
        },
        other @ (TokenError::RefreshBusy
        | TokenError::NotConfigured(_)
        | TokenError::Vault(_)
        | TokenError::Store(_)) => {
            if other.is_retryable() {
                retry(other.to_string(), None, None)
            } else {
                Halt::Fail(error_on(
                    platform,
                    "unavailable",
                    other.to_string(),
                    ErrorKind::Permanent,
                ))
            }
        }
    }
}

/// The target of a run, unless it is gone or finished ([`Halt::Stop`]).
pub(crate) async fn load(app: &App, r: &TargetRef) -> Result<Target, Halt> {
    let target = posts::target(&app.db, &r.workspace_id, &r.target_id)
        .await?
        .ok_or(Halt::Stop)?;
    match TargetState::parse(&target.state) {
        Some(state) if !state.is_final() => Ok(target),
        _ => Err(Halt::Stop),
    }
}

/// The target a publish job starts on, like [`load`], unless the job was enqueued for a time
/// the target has since been moved away from (`TargetRef::due_at` no longer its
/// `scheduled_at`): the job of the new time publishes it, this one stops.
pub(crate) async fn due(app: &App, r: &TargetRef) -> Result<Target, Halt> {
    let target = load(app, r).await?;
    if target.scheduled_at != r.due_at {
        tracing::debug!(target_id = %r.target_id, "a job of an earlier schedule of this target: nothing to do");
        return Err(Halt::Stop);
    }
    Ok(target)
}

/// Takes a target that has not started (queued or scheduled) for sending, at the version the
/// run read it at (`target`, read before the post and its options): the last moment an edit
/// can change it. Called right before the first request to the platform. An edit that
/// committed since the run read the target wins: the run waits a moment and runs again, reading
/// the edited post (or, moved to another time, finds its time changed and stops). A target that
/// is already on its way (a later run of the same job) is this run's to go on with.
pub(crate) async fn claim(app: &App, target: &Target) -> Result<(), Halt> {
    if !matches!(
        TargetState::parse(&target.state),
        Some(TargetState::Queued | TargetState::Scheduled)
    ) {
        return Ok(());
    }
    let now = tidepost_domain::now_ms();
    if posts::claim(
        &app.db,
        &target.workspace_id,
        &target.id,
        target.version,
        now,
    )
    .await?
    {
        return Ok(());
    }
    let fresh = posts::target(&app.db, &target.workspace_id, &target.id)
        .await?
        .ok_or(Halt::Stop)?;
    match TargetState::parse(&fresh.state) {
        Some(TargetState::Queued | TargetState::Scheduled) => Err(wait(
            "the post was edited while it was about to be sent: reading it again",
            Duration::from_millis(1),
        )),
        // Claimed by another run, or finished or cancelled meanwhile: nothing for this one.
        Some(
            TargetState::Uploading
            | TargetState::Processing
            | TargetState::Published
            | TargetState::Failed
            | TargetState::Cancelled,
        )
        | None => Err(Halt::Stop),
    }
}

/// Settles a run of a publish job to `platform` that may run `max_attempts` times: a failure
/// marks the target failed; a retry shows its provider error on the target and asks the engine
/// to run again (after the provider's wait, when it gave one), or fails the target once the
/// attempts are spent; a wait asks the engine to look again later, with no error anywhere.
pub(crate) async fn settle(
    app: &App,
    ctx: &JobContext,
    r: &TargetRef,
    platform: Platform,
    max_attempts: u32,
    outcome: Result<(), Halt>,
) -> Result<(), JobError> {
    match outcome {
        Ok(()) | Err(Halt::Stop) => Ok(()),
        Err(Halt::Job(err)) => Err(err),
        Err(Halt::Wait { note, after }) => Err(JobError::wait(note, after)),
        Err(Halt::Fail(err)) => {
            tracing::info!(target_id = %r.target_id, code = %err.code, %platform, "publish failed: {}", err.message);
            advance(
                app,
                &r.workspace_id,
                &r.target_id,
                TargetState::Failed,
                Some(&err),
            )
            .await?;
            Ok(())
        }
        Err(Halt::Retry {
            message,
            after,
            error,
        }) => {
            if ctx.attempt() >= i64::from(max_attempts) {
                let err = error.unwrap_or_else(|| {
                    error_on(platform, "gave_up", message.clone(), ErrorKind::Retryable)
                });
                advance(
                    app,
                    &r.workspace_id,
                    &r.target_id,
                    TargetState::Failed,
                    Some(&err),
                )
                .await?;
                return Ok(());
            }
            if let Some(err) = &error {
                // Shown as the last problem while the target keeps trying.
                posts::set_error(
                    &app.db,
                    &r.workspace_id,
                    &r.target_id,
                    Some(&err.code),
                    Some(&err.message),
                    true,
                    ctx.clock().now_ms(),
                )
                .await?;
            }
            let job_error = JobError::retryable(message);
            Err(match after {
                Some(after) => job_error.retry_after(after),
                None => job_error,
            })
        }
    }
}
