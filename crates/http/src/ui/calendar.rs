//! The calendar: a month or a week of posts (scheduled, on their way, published, failed) in the
//! viewer's time zone, filtered by account or creator. A post still waiting for its time moves
//! by dragging it to another day (`assets/calendar.js`), or, without a mouse or a script, by
//! its move form; both post to `/posts/{id}/reschedule`, which checks the whole post again at
//! the new time, limits included, and comes back here.

use std::collections::{BTreeMap, HashMap};

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use jiff::ToSpan;
use jiff::civil::Date;
use serde::{Deserialize, Serialize};
use tidepost_app::compose::{self, ComposeError, StoredComposite};
use tidepost_app::pipeline::media::ItemKind;
use tidepost_domain::{PostSummary, TargetState};
use tidepost_store::accounts;
use tidepost_store::crm::{Cursor, creators};
use tidepost_store::posts::PostFilter;

use super::Chrome;
use crate::auth::Viewer;
use crate::error::PageError;
use crate::state::HttpState;
use crate::zone::Zone;

pub fn router() -> Router<HttpState> {
    Router::new()
        .route("/calendar", get(page))
        .route("/calendar/check", get(check))
}

/// The most posts one page of the calendar shows; a busier window says so.
const CALENDAR_LIMIT: i64 = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum View {
    Month,
    Week,
}

impl View {
    fn as_str(self) -> &'static str {
        match self {
            View::Month => "month",
            View::Week => "week",
        }
    }
}

#[derive(Debug, Default, Deserialize)]
struct CalendarQuery {
    #[serde(default)]
    view: String,
    #[serde(default)]
    date: String,
    #[serde(default)]
    account: String,
    #[serde(default)]
    creator: String,
}

/// The days a page shows, and the instants they span in the viewer's zone.
#[derive(Debug, PartialEq, Eq)]
struct Window {
    days: Vec<Date>,
    from_ms: i64,
    to_ms: i64,
    previous: Date,
    next: Date,
}

/// The Monday on or before `date`.
fn monday_of(date: Date) -> Date {
    let back = date.weekday().to_monday_zero_offset();
    date.checked_sub(i64::from(back).days()).unwrap_or(date)
}

/// Midnight of `date` in `zone` (the first instant of the day where midnight is skipped).
fn day_start_ms(date: Date, zone: &Zone) -> i64 {
    date.to_zoned_datetime(zone.tz().clone())
        .and_then(|z| z.start_of_day())
        .map(|z| z.timestamp().as_millisecond())
        .unwrap_or(0)
}

fn window(view: View, anchor: Date, zone: &Zone) -> Window {
    let (first, last, previous, next) = match view {
        View::Week => {
            let first = monday_of(anchor);
            let last = first.checked_add(6.days()).unwrap_or(first);
            (
                first,
                last,
                first.checked_sub(7.days()).unwrap_or(first),
                first.checked_add(7.days()).unwrap_or(first),
            )
        }
        View::Month => {
            let month_first = anchor.first_of_month();
            let month_last = anchor.last_of_month();
            let first = monday_of(month_first);
            let back = 6 - i64::from(month_last.weekday().to_monday_zero_offset());
            let last = month_last.checked_add(back.days()).unwrap_or(month_last);
            (
                first,
                last,
                month_first
                    .checked_sub(1.month())
                    .unwrap_or(month_first)
                    .first_of_month(),
                month_first
                    .checked_add(1.month())
                    .unwrap_or(month_first)
                    .first_of_month(),
            )
        }
    };
    let days: Vec<Date> = first.series(1.day()).take_while(|d| *d <= last).collect();
    let after_last = last.checked_add(1.day()).unwrap_or(last);
    Window {
        from_ms: day_start_ms(first, zone),
        to_ms: day_start_ms(after_last, zone),
        days,
        previous,
        next,
    }
}

struct Entry {
    id: String,
    time: String,
    caption: String,
    accounts: Vec<(&'static str, String)>,
    summary: String,
    summary_class: &'static str,
    thumb: Option<String>,
    /// Still waiting for its time: it can be moved.
    movable: bool,
    /// Its time as the move form's field holds it, in the viewer's zone.
    local: String,
    /// Its time of day (`09:30`), kept when it is dragged to another day.
    time_of_day: String,
}

struct DayCell {
    date: String,
    label: String,
    weekday: &'static str,
    in_month: bool,
    today: bool,
    entries: Vec<Entry>,
}

struct Choice {
    value: String,
    label: String,
    selected: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "calendar.html")]
struct CalendarPage {
    chrome: Chrome,
    view: &'static str,
    title: String,
    zone: String,
    notices: Vec<String>,
    weeks: Vec<Vec<DayCell>>,
    previous: String,
    next: String,
    today: String,
    /// The query kept by the view switch and the arrows (filters).
    filters: String,
    /// The page to come back to after a move.
    here: String,
    accounts: Vec<Choice>,
    creators: Vec<Choice>,
    truncated: bool,
    empty: bool,
}

const WEEKDAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

fn query_string(pairs: &[(&str, &str)]) -> String {
    let mut out = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        if !v.is_empty() {
            out.append_pair(k, v);
        }
    }
    out.finish()
}

/// The first library item of a post, as a thumbnail URL (a video's first frame, an image
/// itself); posts from a URL have none (the browser would fetch a stranger's host).
fn thumbnail(post: &tidepost_store::posts::Post) -> Option<String> {
    let first = serde_json::from_str::<StoredComposite>(&post.options)
        .ok()
        .and_then(|s| s.media.into_iter().next())
        .and_then(|item| {
            item.media_id
                .map(|id| (id, item.kind == Some(ItemKind::Video)))
        })
        .or_else(|| {
            post.media_id
                .clone()
                .map(|id| (id, post.kind == "video" || post.kind == "reel"))
        })?;
    let (id, video) = first;
    Some(if video {
        format!("/api/v1/media/{id}/frame?at_ms=0")
    } else {
        format!("/api/v1/media/{id}/content")
    })
}

fn short(text: &str, max: usize) -> String {
    let text = text.trim();
    if text.is_empty() {
        return "(no caption)".into();
    }
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(max - 1).collect();
    cut.push('…');
    cut
}

async fn page(
    viewer: Viewer,
    State(state): State<HttpState>,
    Query(q): Query<CalendarQuery>,
) -> Result<axum::response::Response, PageError> {
    use axum::response::IntoResponse;
    let ws = &viewer.workspace.id;
    let zone = &viewer.zone;
    let mut notices = Vec::new();
    let view = match q.view.trim() {
        "" | "month" => View::Month,
        "week" => View::Week,
        other => {
            notices.push(format!(
                "{other:?} is not a calendar view (month or week); showing the month."
            ));
            View::Month
        }
    };
    let today = jiff::Timestamp::now()
        .to_zoned_datetime(zone.tz().clone())
        .date();
    let anchor = match q.date.trim() {
        "" => today,
        text => text.parse::<Date>().unwrap_or_else(|_| {
            notices.push(format!(
                "{text:?} is not a date (YYYY-MM-DD); showing today."
            ));
            today
        }),
    };
    let all_accounts = accounts::list(&state.app.db, ws).await?;
    let account = q.account.trim();
    let account = if account.is_empty() || all_accounts.iter().any(|a| a.id == account) {
        account
    } else {
        notices.push("That account is not in this workspace; showing every account.".into());
        ""
    };
    let all_creators = creators::list(&state.app.db, ws, None, None, &Cursor::start(), 500)
        .await?
        .items;
    let creator = q.creator.trim();
    let creator = if creator.is_empty() || all_creators.iter().any(|c| c.id == creator) {
        creator
    } else {
        notices.push("That creator is not in this workspace; showing every creator.".into());
        ""
    };
    let win = window(view, anchor, zone);
    let filter = PostFilter {
        account_id: Some(account.to_string()).filter(|s| !s.is_empty()),
        creator_id: Some(creator.to_string()).filter(|s| !s.is_empty()),
        planned_between: Some((win.from_ms, win.to_ms)),
        ..PostFilter::default()
    };
    let views = compose::list(&state.app, ws, &filter, CALENDAR_LIMIT)
        .await
        .map_err(|e| super::compose::list_refused(e, "The calendar could not be read"))?;
    let truncated = views.len() as i64 == CALENDAR_LIMIT;
    let names: HashMap<&str, (&'static str, &str)> = all_accounts
        .iter()
        .map(|a| {
            (
                a.id.as_str(),
                (a.platform.as_str(), a.display_name.as_str()),
            )
        })
        .collect();
    let may_move = viewer.role.allows(tidepost_domain::Permission::EditPosts);
    let mut by_day: BTreeMap<Date, Vec<(i64, Entry)>> = BTreeMap::new();
    for view in &views {
        let at = view.post.scheduled_at.unwrap_or(view.post.created_at);
        let Some(local) = zone.zoned(at) else {
            continue;
        };
        let states: Vec<TargetState> = view
            .targets
            .iter()
            .filter_map(|t| TargetState::parse(&t.state))
            .collect();
        let summary = PostSummary::of(&states);
        let entry = Entry {
            id: view.post.id.clone(),
            time: local.strftime("%H:%M").to_string(),
            caption: short(&view.post.caption, 60),
            accounts: view
                .targets
                .iter()
                .map(|t| match names.get(t.account_id.as_str()) {
                    Some((platform, name)) => (*platform, (*name).to_string()),
                    None => (t.platform.as_str(), "(disconnected account)".to_string()),
                })
                .collect(),
            summary: summary.as_str().replace('_', " "),
            summary_class: summary.as_str(),
            thumb: thumbnail(&view.post),
            // Still waiting for its time, and the viewer's role may move posts.
            movable: may_move && states.contains(&TargetState::Scheduled),
            local: local.strftime("%Y-%m-%dT%H:%M").to_string(),
            time_of_day: local.strftime("%H:%M").to_string(),
        };
        by_day.entry(local.date()).or_default().push((at, entry));
    }
    let empty = by_day.is_empty();
    let mut cells: Vec<DayCell> = win
        .days
        .iter()
        .enumerate()
        .map(|(i, day)| {
            let mut entries = by_day.remove(day).unwrap_or_default();
            entries.sort_by_key(|(at, _)| *at);
            DayCell {
                date: day.to_string(),
                label: match view {
                    View::Month if day.day() == 1 => day.strftime("%-d %b").to_string(),
                    View::Month => day.day().to_string(),
                    View::Week => day.strftime("%-d %b").to_string(),
                },
                weekday: WEEKDAYS[i % 7],
                in_month: view == View::Week || day.month() == anchor.month(),
                today: *day == today,
                entries: entries.into_iter().map(|(_, e)| e).collect(),
            }
        })
        .collect();
    let mut weeks = Vec::new();
    while !cells.is_empty() {
        let rest = cells.split_off(cells.len().min(7));
        weeks.push(std::mem::replace(&mut cells, rest));
    }
    let title = match view {
        View::Month => anchor.strftime("%B %Y").to_string(),
        View::Week => {
            let first = win.days.first().copied().unwrap_or(anchor);
            let last = win.days.last().copied().unwrap_or(anchor);
            format!(
                "{} – {}",
                first.strftime("%-d %b"),
                last.strftime("%-d %b %Y")
            )
        }
    };
    let filters = query_string(&[("account", account), ("creator", creator)]);
    let here = format!(
        "/calendar?{}",
        query_string(&[
            ("view", view.as_str()),
            ("date", &anchor.to_string()),
            ("account", account),
            ("creator", creator),
        ])
    );
    Ok(CalendarPage {
        chrome: Chrome::for_viewer(&state, &viewer, "Calendar"),
        view: view.as_str(),
        title,
        zone: zone.name().to_string(),
        notices,
        weeks,
        previous: win.previous.to_string(),
        next: win.next.to_string(),
        today: today.to_string(),
        filters,
        here,
        accounts: all_accounts
            .iter()
            .map(|a| Choice {
                value: a.id.clone(),
                label: format!("{} ({})", a.display_name, a.platform.display_name()),
                selected: a.id == account,
            })
            .collect(),
        creators: all_creators
            .iter()
            .map(|c| Choice {
                value: c.id.clone(),
                label: c.name.clone(),
                selected: c.id == creator,
            })
            .collect(),
        truncated,
        empty,
    }
    .into_response())
}

#[derive(Debug, Deserialize)]
struct CheckQuery {
    #[serde(default)]
    post: String,
    #[serde(default)]
    scheduled_at: String,
    #[serde(default)]
    time_zone: String,
}

/// Whether the whole post could move to the time asked, and why not.
#[derive(Debug, Serialize)]
struct Verdict {
    ok: bool,
    message: String,
}

/// `GET /calendar/check`: what a drop would answer, asked while the post is dragged. Every
/// check of a move (the time, each account's limits at that time) and nothing written; a
/// refusal names the next free slot in the viewer's zone.
async fn check(
    viewer: Viewer,
    State(state): State<HttpState>,
    Query(q): Query<CheckQuery>,
) -> Result<Json<Verdict>, PageError> {
    let ws = &viewer.workspace.id;
    if tidepost_store::posts::get(&state.app.db, ws, q.post.trim())
        .await?
        .is_none()
    {
        return Err(PageError::not_found());
    }
    let zone = Some(q.time_zone.as_str()).filter(|z| !z.trim().is_empty());
    let refused = |message: String| Verdict { ok: false, message };
    let verdict = match compose::schedule::parse(&q.scheduled_at, zone) {
        Err(e) => refused(crate::error::capitalize(&e.message)),
        Ok(at) => {
            let spoken = viewer.zone.spoken(at.at_ms);
            let change = compose::Update {
                schedule: Some(compose::Schedule {
                    at: Some(at),
                    next_free_slot: false,
                }),
                ..compose::Update::default()
            };
            match compose::check_update(&state.app, ws, q.post.trim(), change).await {
                Ok(()) => Verdict {
                    ok: true,
                    message: format!("Can move to {spoken}."),
                },
                Err(ComposeError::NotFound(_)) => return Err(PageError::not_found()),
                Err(ComposeError::Store(e)) => return Err(PageError::from(e)),
                Err(
                    other @ (ComposeError::Invalid(_)
                    | ComposeError::Conflict(_)
                    | ComposeError::Stale(_)
                    | ComposeError::Started(_)
                    | ComposeError::Unavailable(_)
                    | ComposeError::Publish(_)),
                ) => refused(super::compose::refusal_words(&other)),
            }
        }
    };
    Ok(Json(verdict))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone(name: &str) -> Zone {
        Zone::pick(Some(name), None)
    }

    #[test]
    fn a_month_is_whole_weeks_from_monday() {
        let w = window(View::Month, "2026-12-17".parse().unwrap(), &zone("UTC"));
        assert_eq!(w.days.first().unwrap().to_string(), "2026-11-30");
        assert_eq!(w.days.last().unwrap().to_string(), "2027-01-03");
        assert_eq!(w.days.len() % 7, 0);
        assert_eq!(w.previous.to_string(), "2026-11-01");
        assert_eq!(w.next.to_string(), "2027-01-01");
        // February 2027 starts on a Monday and ends on a Sunday: exactly four weeks.
        let w = window(View::Month, "2027-02-10".parse().unwrap(), &zone("UTC"));
        assert_eq!(w.days.len(), 28);
        assert_eq!(w.days.first().unwrap().to_string(), "2027-02-01");
    }

    #[test]
    fn a_week_runs_monday_to_sunday_in_the_viewers_zone() {
        let tokyo = zone("Asia/Tokyo");
        let w = window(View::Week, "2026-12-10".parse().unwrap(), &tokyo);
        assert_eq!(w.days.first().unwrap().to_string(), "2026-12-07");
        assert_eq!(w.days.last().unwrap().to_string(), "2026-12-13");
        // Monday 7 December 00:00 in Tokyo is Sunday 6 December 15:00 UTC.
        assert_eq!(
            tidepost_domain::time::rfc3339(w.from_ms),
            "2026-12-06T15:00:00Z"
        );
        assert_eq!(w.to_ms - w.from_ms, 7 * 24 * 3_600_000);
        assert_eq!(w.previous.to_string(), "2026-11-30");
        assert_eq!(w.next.to_string(), "2026-12-14");
    }

    #[test]
    fn a_week_across_a_clock_change_is_an_hour_longer() {
        // New York's clocks go back on Sunday 1 November 2026.
        let w = window(
            View::Week,
            "2026-10-28".parse().unwrap(),
            &zone("America/New_York"),
        );
        assert_eq!(w.to_ms - w.from_ms, 7 * 24 * 3_600_000 + 3_600_000);
    }
}
