//! One paging rule for every list under `/api/v1`, so a client learns it once:
//!
//! - `limit` is from 1 to [`MAX_LIMIT`]; anything else (0, 1000, -1) is a 422 problem naming
//!   the field and the range — never silently clamped, which would hide a client's bug.
//! - A list answers `{"data": [...], "next_cursor": …}`; `next_cursor` is null on the last page
//!   and is passed back as `after` for the next one. Lists of rows with UUIDv7 ids page by id
//!   (`id < $after ORDER BY id DESC`, newest first), so a page never repeats or skips an item
//!   when rows are added meanwhile; the cursor is then the last id of the page.
//! - The store is asked for `limit + 1` rows: the extra row only says whether another page
//!   exists, so the last page (even a full one) answers `next_cursor: null`.

use crate::error::Problem;

/// The largest `limit` any list accepts.
pub const MAX_LIMIT: i64 = 200;

/// The page size asked for, or `default`; a 422 naming the range when it is out of it.
pub fn limit(limit: Option<i64>, default: i64) -> Result<i64, Problem> {
    let limit = limit.unwrap_or(default);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(
            Problem::invalid(format!("limit: expected 1 to {MAX_LIMIT}, got {limit}"))
                .with("field", "limit"),
        );
    }
    Ok(limit)
}

/// `after` as given, with an empty value meaning the first page.
pub fn after(after: Option<&str>) -> Option<&str> {
    after.filter(|a| !a.is_empty())
}

/// Cuts rows fetched with `limit + 1` to the page, and gives the cursor of the next page (the
/// last id of this one) when the extra row shows there is one.
pub fn page<T>(mut rows: Vec<T>, limit: i64, id: impl Fn(&T) -> &str) -> (Vec<T>, Option<String>) {
    let limit = usize::try_from(limit).unwrap_or(0);
    if rows.len() <= limit {
        return (rows, None);
    }
    rows.truncate(limit);
    let next = rows.last().map(|r| id(r).to_string());
    (rows, next)
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;

    use super::*;

    #[test]
    fn limits_outside_the_range_are_refused_alike() {
        assert_eq!(limit(None, 50).unwrap(), 50);
        assert_eq!(limit(Some(1), 50).unwrap(), 1);
        assert_eq!(limit(Some(200), 50).unwrap(), 200);
        for bad in [0, 201, 1000, -1] {
            let p = limit(Some(bad), 50).unwrap_err();
            assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
            assert_eq!(p.detail, format!("limit: expected 1 to 200, got {bad}"));
        }
    }

    #[test]
    fn the_extra_row_decides_whether_a_page_follows() {
        let ids = |n: usize| (0..n).map(|i| i.to_string()).collect::<Vec<_>>();
        assert_eq!(page(ids(2), 2, |s| s), (ids(2), None));
        assert_eq!(page(ids(3), 2, |s| s), (ids(2), Some("1".into())));
        assert_eq!(page(ids(0), 2, |s| s), (vec![], None));
        assert_eq!(after(Some("")), None);
        assert_eq!(after(Some("x")), Some("x"));
    }
}
