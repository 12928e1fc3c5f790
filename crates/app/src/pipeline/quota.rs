//! Placing posts under the platforms' daily limits, shared by every entry: a target counts
//! against its account's limit ([`DailyLimit`], the platform's: `crate::platforms::daily_limit`)
//! with every post of the account already sent, waiting or scheduled around its time. The
//! composer places each target with [`decide`] and checks it again under the account's lock
//! ([`lock_key`]) in the transaction that stores it, so requests racing for the last slot of a
//! day accept one.

use tidepost_store::StoreError;
use tidepost_store::accounts::Account;
use tidepost_store::posts;

pub const DAY_MS: i64 = 86_400_000;
/// How far ahead scheduled posts are counted when looking for a free slot.
pub const LOOKAHEAD_MS: i64 = 400 * DAY_MS;

/// The lock an account's post quotas are checked under, one per account: taken before a
/// provider publish (TikTok's init) and by the composer when it accepts or moves a post, so a
/// post being scheduled and one being sent never count the account's posts at once.
pub fn lock_key(account: &Account) -> String {
    format!("{}:quota:{}", account.platform, account.id)
}

/// A platform's limit on an account's posts in any 24 hours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DailyLimit {
    /// The target modes that share the limit (`None`: every post of the account counts).
    pub modes: Option<Vec<&'static str>>,
    pub cap: usize,
    /// What breaking it means, in words.
    pub message: String,
}

/// A target's daily limit as the composer's validation read it, for storing to check again
/// under the account's lock: the request's time and the limit (asking Meta for Instagram's happens
/// before, never inside the transaction).
#[derive(Debug, Clone)]
pub struct LimitCheck {
    /// The modes that share the limit (`None`: every post of the account counts).
    pub(crate) modes: Option<Vec<&'static str>>,
    pub(crate) cap: usize,
    /// What breaking it means, in words.
    pub(crate) message: String,
    /// The time asked for (or now).
    pub(crate) at: i64,
    pub(crate) next_free: bool,
}

impl LimitCheck {
    pub(crate) fn new(limit: DailyLimit, at: i64, next_free: bool) -> Self {
        Self {
            modes: limit.modes,
            cap: limit.cap,
            message: limit.message,
            at,
            next_free,
        }
    }

    /// The times of the account's posts that count against this limit around its time,
    /// leaving out `except_post`'s own.
    pub(crate) async fn events_in(
        &self,
        conn: &mut sqlx::AnyConnection,
        account_id: &str,
        except_post: Option<&str>,
    ) -> Result<Vec<i64>, StoreError> {
        posts::limit_events_in(
            conn,
            account_id,
            self.modes.as_deref(),
            self.at - DAY_MS,
            self.at + LOOKAHEAD_MS,
            except_post,
        )
        .await
    }
}

/// Where one more post of a limit `cap` goes, given the times `events` already counted: `at`
/// when it fits there; else the next free slot when `next_free`; else `Err` with that slot
/// (`None` when the limit is 0), on the whole second at or after it: the API shows times to
/// the second, and a slot shown rounded down would be refused when given back.
pub(crate) fn decide(
    events: &[i64],
    at: i64,
    cap: usize,
    next_free: bool,
) -> Result<i64, Option<i64>> {
    match first_fit(events, at, cap) {
        Some(slot) if slot == at => Ok(at),
        Some(slot) if next_free => Ok(slot),
        other => Err(other.map(|slot| (slot + 999).div_euclid(1000) * 1000)),
    }
}

/// Whether one more post at `at` keeps every rolling 24-hour window that contains it within
/// `cap`, given the times `events` (sorted) already counted. The windows that contain `at`
/// end between `at` and `at + 24 h`; the fullest of them ends at `at` or at an event.
pub fn fits(events: &[i64], at: i64, cap: usize) -> bool {
    let count_ending = |end: i64| {
        events
            .iter()
            .filter(|e| **e > end - DAY_MS && **e <= end)
            .count()
    };
    std::iter::once(at)
        .chain(
            events
                .iter()
                .copied()
                .filter(|e| *e >= at && *e < at + DAY_MS),
        )
        .all(|end| count_ending(end) < cap)
}

/// The earliest time at or after `at` where one more post fits (see [`fits`]): `at` itself,
/// or the instant a counted post leaves the window (an event + 24 h). `None` when `cap` is 0.
pub fn first_fit(events: &[i64], at: i64, cap: usize) -> Option<i64> {
    if cap == 0 {
        return None;
    }
    let mut candidates: Vec<i64> = std::iter::once(at)
        .chain(events.iter().map(|e| e + DAY_MS).filter(|c| *c > at))
        .collect();
    candidates.sort_unstable();
    candidates.into_iter().find(|c| fits(events, *c, cap))
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000;

    #[test]
    fn a_refused_time_names_a_slot_that_is_accepted_when_given_back() {
        // A post counted at a time with milliseconds: its slot frees 24 h later, mid-second.
        let events = [1_000_000_400];
        let at = events[0] + H;
        let slot = decide(&events, at, 1, false).unwrap_err().unwrap();
        assert_eq!(slot % 1000, 0, "{slot}");
        assert!(slot >= events[0] + DAY_MS);
        assert_eq!(decide(&events, slot, 1, false), Ok(slot));
    }

    #[test]
    fn windows() {
        let t = 100 * DAY_MS;
        assert!(fits(&[], t, 1));
        assert!(!fits(&[t - H], t, 1));
        // An event 24 h before no longer counts; one 24 h after does not either.
        assert!(fits(&[t - DAY_MS, t + DAY_MS], t, 1));
        // A later event in the same window counts.
        assert!(!fits(&[t + 23 * H], t, 1));
        // cap 2: two events 20 h apart around t: the window ending at the second holds both.
        assert!(!fits(&[t - 10 * H, t + 10 * H], t, 2));
        assert!(fits(&[t - 10 * H, t + 15 * H], t, 3));
    }

    #[test]
    fn next_slot() {
        let t = 100 * DAY_MS;
        assert_eq!(first_fit(&[], t, 1), Some(t));
        assert_eq!(first_fit(&[t - H], t, 1), Some(t - H + DAY_MS));
        // Two posts already in the window with cap 2: the slot opens when the first leaves
        // it, unless a later post would then make three in a window.
        assert_eq!(
            first_fit(&[t - 5 * H, t - H], t, 2),
            Some(t - 5 * H + DAY_MS)
        );
        assert_eq!(
            first_fit(&[t - 5 * H, t - H, t + 20 * H], t, 2),
            Some(t - H + DAY_MS)
        );
        assert_eq!(first_fit(&[t], t, 0), None);
        // Whatever the events, the slot found fits and nothing earlier among the candidates does.
        let events = [t - 20 * H, t - 3 * H, t + 2 * H, t + 30 * H];
        let slot = first_fit(&events, t, 2).unwrap();
        assert!(fits(&events, slot, 2));
        for probe in (t..slot).step_by(60_000) {
            assert!(!fits(&events, probe, 2), "{probe} fits before {slot}");
        }
    }

    #[test]
    fn a_slot_is_kept_moved_or_refused() {
        let day = DAY_MS;
        let at = 100 * day;
        assert_eq!(decide(&[at - 1], at, 2, false), Ok(at));
        // Refused: the slot named is the whole second at or after the one that frees.
        assert_eq!(decide(&[at - 1, at], at, 2, false), Err(Some(at + day)));
        assert_eq!(decide(&[at - 1, at], at, 2, true), Ok(at - 1 + day));
        assert_eq!(decide(&[], at, 0, true), Err(None));
    }
}
