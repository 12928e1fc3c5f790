//! The publish state machine of one target (one post to one account):
//!
//! ```text
//! queued ──► scheduled ──► uploading(bytes) ──► processing ──► published
//!    │            │              │                  │
//!    └────────────┴──────────────┴──────────────────┴──► failed(reason, retryable) | cancelled
//! ```
//!
//! Updates arrive from several places at once (the worker's own progress, status polling,
//! provider webhooks), late, duplicated and out of order. [`TargetState::apply`] accepts an
//! update only if it moves the target forward, so nothing ever moves a post backwards; the one
//! way back is an explicit retry of a failed target ([`TargetState::retry`]).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetState {
    Queued,
    Scheduled,
    Uploading,
    Processing,
    Published,
    Failed,
    Cancelled,
}

/// Why an update was not applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Transition {
    #[error("already {0}: a finished target does not change")]
    AlreadyFinal(TargetState),
    #[error("{from} → {to} would move the target backwards")]
    Backwards { from: TargetState, to: TargetState },
    #[error("already {0}")]
    Same(TargetState),
}

impl TargetState {
    pub const ALL: [TargetState; 7] = [
        TargetState::Queued,
        TargetState::Scheduled,
        TargetState::Uploading,
        TargetState::Processing,
        TargetState::Published,
        TargetState::Failed,
        TargetState::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TargetState::Queued => "queued",
            TargetState::Scheduled => "scheduled",
            TargetState::Uploading => "uploading",
            TargetState::Processing => "processing",
            TargetState::Published => "published",
            TargetState::Failed => "failed",
            TargetState::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|state| state.as_str() == s)
    }

    /// Published, failed and cancelled targets are finished.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            TargetState::Published | TargetState::Failed | TargetState::Cancelled
        )
    }

    /// How far along the pipeline a state is; finished states are furthest.
    fn rank(self) -> u8 {
        match self {
            TargetState::Queued => 0,
            TargetState::Scheduled => 1,
            TargetState::Uploading => 2,
            TargetState::Processing => 3,
            TargetState::Published | TargetState::Failed | TargetState::Cancelled => 4,
        }
    }

    /// The state after `update`, or why the update is ignored. `uploading → uploading` is
    /// allowed (byte progress); any other repeat is reported as [`Transition::Same`].
    pub fn apply(self, update: TargetState) -> Result<TargetState, Transition> {
        if self.is_final() {
            return Err(Transition::AlreadyFinal(self));
        }
        if self == update {
            return if update == TargetState::Uploading {
                Ok(update)
            } else {
                Err(Transition::Same(self))
            };
        }
        if update.rank() < self.rank() {
            return Err(Transition::Backwards {
                from: self,
                to: update,
            });
        }
        Ok(update)
    }

    /// A failed target may be tried again; nothing else goes back to `queued`.
    pub fn retry(self) -> Result<TargetState, Transition> {
        match self {
            TargetState::Failed => Ok(TargetState::Queued),
            other if other.is_final() => Err(Transition::AlreadyFinal(other)),
            other => Err(Transition::Backwards {
                from: other,
                to: TargetState::Queued,
            }),
        }
    }

    /// Whether the target can still be cancelled (it has not reached the provider yet).
    pub fn cancellable(self) -> bool {
        matches!(self, TargetState::Queued | TargetState::Scheduled)
    }
}

impl std::fmt::Display for TargetState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The state of a post, summarised from its targets' states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PostSummary {
    /// Nothing has started yet (queued or scheduled).
    Pending,
    /// Some target is on its way.
    InProgress,
    Published,
    /// Every target is finished, some published and some failed or cancelled.
    PartlyFailed,
    Failed,
    Cancelled,
}

impl PostSummary {
    pub fn of(states: &[TargetState]) -> PostSummary {
        use TargetState::*;
        if states.is_empty() {
            return PostSummary::Pending;
        }
        if !states.iter().all(|s| s.is_final()) {
            return if states.iter().all(|s| matches!(s, Queued | Scheduled)) {
                PostSummary::Pending
            } else {
                PostSummary::InProgress
            };
        }
        let published = states.iter().filter(|s| **s == Published).count();
        let cancelled = states.iter().filter(|s| **s == Cancelled).count();
        match published {
            n if n == states.len() => PostSummary::Published,
            0 if cancelled == states.len() => PostSummary::Cancelled,
            0 => PostSummary::Failed,
            _ => PostSummary::PartlyFailed,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PostSummary::Pending => "pending",
            PostSummary::InProgress => "in_progress",
            PostSummary::Published => "published",
            PostSummary::PartlyFailed => "partly_failed",
            PostSummary::Failed => "failed",
            PostSummary::Cancelled => "cancelled",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::TargetState::*;
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_happy_path() {
        let mut s = Queued;
        for next in [Scheduled, Uploading, Uploading, Processing, Published] {
            s = s.apply(next).unwrap();
        }
        assert_eq!(s, Published);
    }

    #[test]
    fn every_transition() {
        // (from, to, allowed)
        for from in TargetState::ALL {
            for to in TargetState::ALL {
                let allowed = from.apply(to).is_ok();
                let expected = !from.is_final()
                    && (from != to || to == Uploading)
                    && (to.rank() >= from.rank());
                assert_eq!(allowed, expected, "{from} → {to}");
            }
        }
        assert_eq!(
            Processing.apply(Uploading),
            Err(Transition::Backwards {
                from: Processing,
                to: Uploading
            })
        );
        assert_eq!(
            Published.apply(Failed),
            Err(Transition::AlreadyFinal(Published))
        );
        assert_eq!(
            Failed.apply(Published),
            Err(Transition::AlreadyFinal(Failed))
        );
    }

    #[test]
    fn retry_and_cancel() {
        assert_eq!(Failed.retry(), Ok(Queued));
        assert!(Published.retry().is_err() && Uploading.retry().is_err());
        assert!(Queued.cancellable() && Scheduled.cancellable());
        assert!(!Uploading.cancellable() && !Published.cancellable());
    }

    #[test]
    fn names_round_trip() {
        for s in TargetState::ALL {
            assert_eq!(TargetState::parse(s.as_str()), Some(s));
        }
        assert_eq!(TargetState::parse("nope"), None);
    }

    #[test]
    fn summaries() {
        assert_eq!(PostSummary::of(&[Queued, Scheduled]), PostSummary::Pending);
        assert_eq!(
            PostSummary::of(&[Queued, Uploading]),
            PostSummary::InProgress
        );
        assert_eq!(
            PostSummary::of(&[Published, Published]),
            PostSummary::Published
        );
        assert_eq!(
            PostSummary::of(&[Published, Failed]),
            PostSummary::PartlyFailed
        );
        assert_eq!(PostSummary::of(&[Failed, Cancelled]), PostSummary::Failed);
        assert_eq!(PostSummary::of(&[Cancelled]), PostSummary::Cancelled);
        assert_eq!(
            PostSummary::of(&[Published, Processing]),
            PostSummary::InProgress
        );
    }

    fn any_state() -> impl Strategy<Value = TargetState> {
        proptest::sample::select(TargetState::ALL.to_vec())
    }

    proptest! {
        /// Whatever order updates arrive in, the state never moves backwards and never leaves
        /// a final state.
        #[test]
        fn never_backwards(updates in proptest::collection::vec(any_state(), 0..40)) {
            let mut state = Queued;
            for update in updates {
                let before = state;
                if let Ok(next) = state.apply(update) {
                    state = next;
                }
                prop_assert!(state.rank() >= before.rank());
                if before.is_final() {
                    prop_assert_eq!(state, before);
                }
            }
        }
    }
}
