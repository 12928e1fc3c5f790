//! Sign-in throttling in the database, so that every instance shares it (table
//! `login_throttle`, migration 0012).
//!
//! A *subject* is what is counted: an (account, client address) pair, or an account alone; each
//! belongs to an *account* (the lower-cased email) so that an unlock can clear them all. Before a
//! password is checked, [`admit`] takes one attempt from the subject's row — unless the row is
//! blocked — with a single compare-and-set update. The check and the count are that one step:
//! forty requests racing for a row with five free attempts get exactly five, on SQLite and on
//! PostgreSQL alike. A successful sign-in [`clear`]s its subjects; every other attempt stays
//! counted.

use crate::{Db, Result};

/// What [`admit`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// The attempt was taken: it is the `attempt`-th of the subject's current run.
    Granted { attempt: i64 },
    /// The subject is blocked until this time (ms): nothing was counted.
    Refused { until: i64 },
}

/// How a subject's attempts are let through.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// After this long without an attempt and without a wait (counted from the later of its last
    /// attempt and the end of its wait), a subject's count starts again.
    pub window_ms: i64,
    /// How long the subject is blocked after its `n`-th attempt (1-based); 0: not at all.
    pub delay_after: fn(i64) -> i64,
}

/// How many times [`admit`] retries its compare-and-set before it gives up. Each lost race
/// means another request took an attempt, and a subject stops granting after a handful, so
/// this is never reached in practice; if it is, the attempt is refused (the safe side).
const MAX_ROUNDS: usize = 200;

/// Takes one attempt for `subject` (of `account`) at `now`, or refuses it while the subject is
/// blocked. Atomic across connections, processes and instances.
pub async fn admit(
    db: &Db,
    account: &str,
    subject: &str,
    now: i64,
    policy: Policy,
) -> Result<Admission> {
    for _ in 0..MAX_ROUNDS {
        sqlx::query(
            "INSERT INTO login_throttle (subject, account, attempts, last_at, blocked_until) \
             VALUES ($1, $2, 0, $3, 0) ON CONFLICT (subject) DO NOTHING",
        )
        .bind(subject)
        .bind(account)
        .bind(now)
        .execute(db.pool())
        .await?;
        let row: Option<(i64, i64, i64)> = sqlx::query_as(
            "SELECT attempts, last_at, blocked_until FROM login_throttle WHERE subject = $1",
        )
        .bind(subject)
        .fetch_optional(db.pool())
        .await?;
        // Cleared between the two statements (a sign-in succeeded): insert it again.
        let Some((attempts, last_at, blocked_until)) = row else {
            continue;
        };
        if blocked_until > now {
            return Ok(Admission::Refused {
                until: blocked_until,
            });
        }
        // The quiet window is counted from the end of the subject's wait, not from its last
        // attempt: a wait as long as the window must not hand out a fresh run of free attempts.
        let run = if now - last_at.max(blocked_until) >= policy.window_ms {
            0
        } else {
            attempts
        };
        let attempt = run + 1;
        let delay = (policy.delay_after)(attempt);
        let blocked = if delay > 0 { now + delay } else { 0 };
        let taken = sqlx::query(
            "UPDATE login_throttle SET attempts = $1, last_at = $2, blocked_until = $3 \
             WHERE subject = $4 AND attempts = $5 AND last_at = $6 AND blocked_until = $7",
        )
        .bind(attempt)
        .bind(now.max(last_at))
        .bind(blocked)
        .bind(subject)
        .bind(attempts)
        .bind(last_at)
        .bind(blocked_until)
        .execute(db.pool())
        .await?
        .rows_affected();
        if taken == 1 {
            return Ok(Admission::Granted { attempt });
        }
    }
    Ok(Admission::Refused { until: now + 1_000 })
}

/// Until when `subject` is blocked, if it is at `now`.
pub async fn blocked_until(db: &Db, subject: &str, now: i64) -> Result<Option<i64>> {
    let until: Option<i64> =
        sqlx::query_scalar("SELECT blocked_until FROM login_throttle WHERE subject = $1")
            .bind(subject)
            .fetch_optional(db.pool())
            .await?;
    Ok(until.filter(|until| *until > now))
}

/// Forgets the subjects' counts (after a successful sign-in).
pub async fn clear(db: &Db, subjects: &[&str]) -> Result<()> {
    for subject in subjects {
        sqlx::query("DELETE FROM login_throttle WHERE subject = $1")
            .bind(subject)
            .execute(db.pool())
            .await?;
    }
    Ok(())
}

/// Forgets every count of `account` (its lock and each of its pairs); returns how many subjects
/// were blocked at `now`.
pub async fn unlock(db: &Db, account: &str, now: i64) -> Result<u64> {
    let blocked: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM login_throttle WHERE account = $1 AND blocked_until > $2",
    )
    .bind(account)
    .bind(now)
    .fetch_one(db.pool())
    .await?;
    sqlx::query("DELETE FROM login_throttle WHERE account = $1")
        .bind(account)
        .execute(db.pool())
        .await?;
    Ok(u64::try_from(blocked).unwrap_or(0))
}

/// Forgets subjects with no attempt since `before` and no block reaching past it.
pub async fn prune(db: &Db, before: i64) -> Result<u64> {
    Ok(
        sqlx::query("DELETE FROM login_throttle WHERE last_at < $1 AND blocked_until < $1")
            .bind(before)
            .execute(db.pool())
            .await?
            .rows_affected(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::both_backends;

    /// Five free attempts, then blocked for a minute.
    fn five_then_a_minute(attempt: i64) -> i64 {
        if attempt >= 5 { 60_000 } else { 0 }
    }

    const POLICY: Policy = Policy {
        window_ms: 15 * 60_000,
        delay_after: five_then_a_minute,
    };

    both_backends!(
        concurrent_attempts_are_counted_exactly,
        |db: Db| async move {
            let now = 1_000_000;
            let mut tasks = Vec::new();
            for _ in 0..40 {
                let db = db.clone();
                tasks.push(tokio::spawn(async move {
                    admit(&db, "ada@example.com", "pair ada", now, POLICY)
                        .await
                        .unwrap()
                }));
            }
            let mut granted = Vec::new();
            let mut refused = 0;
            for task in tasks {
                match task.await.unwrap() {
                    Admission::Granted { attempt } => granted.push(attempt),
                    Admission::Refused { until } => {
                        assert_eq!(until, now + 60_000);
                        refused += 1;
                    }
                }
            }
            granted.sort_unstable();
            assert_eq!(granted, vec![1, 2, 3, 4, 5], "each attempt taken once");
            assert_eq!(refused, 35);
            // Another subject of the same account is not affected.
            assert_eq!(
                admit(&db, "ada@example.com", "pair other", now, POLICY)
                    .await
                    .unwrap(),
                Admission::Granted { attempt: 1 }
            );
        }
    );

    /// Blocked for the whole window after the second attempt.
    fn two_then_a_window(attempt: i64) -> i64 {
        if attempt >= 2 { POLICY.window_ms } else { 0 }
    }

    both_backends!(
        a_wait_as_long_as_the_window_does_not_restart_the_count,
        |db: Db| async move {
            let policy = Policy {
                window_ms: POLICY.window_ms,
                delay_after: two_then_a_window,
            };
            let now = 7_000_000;
            for attempt in 1..=2 {
                assert_eq!(
                    admit(&db, "a", "s", now, policy).await.unwrap(),
                    Admission::Granted { attempt }
                );
            }
            // The wait ends a full window after the last attempt: the next one is the third
            // (and waits again), not a first of a new run.
            let waited = now + policy.window_ms;
            assert_eq!(
                admit(&db, "a", "s", waited, policy).await.unwrap(),
                Admission::Granted { attempt: 3 }
            );
            // Only a quiet window after the end of that wait starts the count again.
            let quiet = waited + 2 * policy.window_ms;
            assert_eq!(
                admit(&db, "a", "s", quiet, policy).await.unwrap(),
                Admission::Granted { attempt: 1 }
            );
        }
    );

    both_backends!(
        blocks_end_windows_restart_and_unlock_clears,
        |db: Db| async move {
            let now = 5_000_000;
            for attempt in 1..=5 {
                assert_eq!(
                    admit(&db, "a", "s", now, POLICY).await.unwrap(),
                    Admission::Granted { attempt }
                );
            }
            assert_eq!(
                blocked_until(&db, "s", now).await.unwrap(),
                Some(now + 60_000)
            );
            // Once the block ends, the next attempt is the sixth (blocked again at once).
            let later = now + 60_000;
            assert_eq!(
                admit(&db, "a", "s", later, POLICY).await.unwrap(),
                Admission::Granted { attempt: 6 }
            );
            assert_eq!(
                admit(&db, "a", "s", later + 1, POLICY).await.unwrap(),
                Admission::Refused {
                    until: later + 60_000
                }
            );
            // A quiet window after the block starts the count again.
            let quiet = later + 60_000 + POLICY.window_ms;
            assert_eq!(
                admit(&db, "a", "s", quiet, POLICY).await.unwrap(),
                Admission::Granted { attempt: 1 }
            );
            // Unlock clears every subject of the account and says how many were blocked.
            for _ in 0..4 {
                admit(&db, "a", "s", quiet, POLICY).await.unwrap();
            }
            admit(&db, "a", "t", quiet, POLICY).await.unwrap();
            admit(&db, "b", "u", quiet, POLICY).await.unwrap();
            assert_eq!(unlock(&db, "a", quiet).await.unwrap(), 1);
            assert_eq!(blocked_until(&db, "s", quiet).await.unwrap(), None);
            assert_eq!(
                admit(&db, "a", "s", quiet, POLICY).await.unwrap(),
                Admission::Granted { attempt: 1 }
            );
            // Clear forgets one subject; prune the idle ones.
            clear(&db, &["s"]).await.unwrap();
            assert_eq!(
                admit(&db, "a", "s", quiet, POLICY).await.unwrap(),
                Admission::Granted { attempt: 1 }
            );
            // Left: `s` again and `u` (unlock took `t`).
            assert_eq!(prune(&db, quiet + 1).await.unwrap(), 2);
        }
    );
}
