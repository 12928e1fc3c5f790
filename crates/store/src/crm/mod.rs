//! The CRM records: creators and the accounts they own ([`creators`]), the people who interact
//! with them ([`contacts`]), what those people did ([`interactions`]), post metrics as a time
//! series with their sampling schedule and milestones ([`metrics`]), incremental pull cursors
//! ([`cursors`]), and the merged timeline of a creator or a contact ([`timeline`]).
//!
//! Every function takes the workspace id and filters by it. Writes that must be exactly once
//! (an interaction seen twice, a metrics slot sampled by two workers) rely on unique keys or
//! compare-and-set, never on a read before the write.

pub mod contacts;
pub mod creators;
pub mod cursors;
pub mod interactions;
pub mod metrics;
pub mod timeline;

/// A keyset position in a list ordered by `(at, id)` newest first, written as `{at}_{id}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub at: i64,
    pub id: String,
}

impl Cursor {
    /// The position before everything (the first page).
    pub fn start() -> Self {
        Self {
            at: i64::MAX,
            id: String::new(),
        }
    }

    pub fn encode(&self) -> String {
        format!("{}_{}", self.at, self.id)
    }

    /// Reads a cursor given back by a client; `None` when it is not one of ours.
    pub fn parse(text: &str) -> Option<Self> {
        let (at, id) = text.split_once('_')?;
        let at = at.parse::<i64>().ok()?;
        let valid_id = !id.is_empty()
            && id.len() <= 64
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b':');
        valid_id.then(|| Self {
            at,
            id: id.to_string(),
        })
    }
}

/// One page and where the next one starts (`None` on the last page).
#[derive(Debug, Clone)]
pub struct Paged<T> {
    pub items: Vec<T>,
    pub next: Option<Cursor>,
}

impl<T> Paged<T> {
    /// Cuts a `limit + 1` fetch to `limit` items and derives the next cursor from the last kept one.
    pub(crate) fn from_fetch(mut items: Vec<T>, limit: i64, key: impl Fn(&T) -> Cursor) -> Self {
        let limit = limit.max(1) as usize;
        let more = items.len() > limit;
        items.truncate(limit);
        let next = if more { items.last().map(key) } else { None };
        Self { items, next }
    }
}

/// `%text%` for a case-insensitive `LIKE`, with the wildcards in `text` taken literally.
pub(crate) fn like_pattern(text: &str) -> String {
    let escaped = text
        .to_lowercase()
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_junk() {
        let c = Cursor {
            at: 42,
            id: "0190-ab".into(),
        };
        assert_eq!(Cursor::parse(&c.encode()), Some(c));
        assert_eq!(Cursor::parse("x_1"), None);
        assert_eq!(Cursor::parse("12_"), None);
        assert_eq!(Cursor::parse("12_a'b"), None);
        assert_eq!(like_pattern("A_b%"), "%a\\_b\\%%");
    }
}

#[cfg(test)]
mod store_tests;
