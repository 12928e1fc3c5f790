//! The calendar and each person's time zone, end to end over HTTP (SQLite and PostgreSQL):
//!
//! - two members of one workspace choose New York and Tokyo: the same post sits on the same
//!   day at 09:30 for one and 23:30 for the other, in the month and the week view, on the post
//!   page and the schedule; a zone that does not exist is refused with the form again;
//! - the filters by account and by creator, and a page asked for a wrong date, view, account
//!   or creator (a notice, never a dead end);
//! - the live check of a move (limits at the new time, the next free slot in the viewer's
//!   zone, nothing written) and the move itself through the move form, back to the calendar;
//! - daylight saving time: a move to 02:30 on the night New York skips it is refused with the
//!   change named; one to the repeated 01:30 in November asks which;
//! - another workspace's post is a 404 for the check and the move.

use reqwest::StatusCode;
use serde_json::{Value, json};
use tidepost_store::testing::Backend;

use crate::support::*;

/// 10 March 2027, 14:30 UTC: 09:30 in New York (EST), 23:30 in Tokyo.
const P1_AT: &str = "2027-03-10T14:30:00Z";
/// 11 March 2027, 14:30 UTC.
const P2_AT: &str = "2027-03-11T14:30:00Z";

pub(crate) async fn post_at(
    app: &TestApp,
    key: &str,
    account: &str,
    caption: &str,
    at: &str,
) -> String {
    let response = bare_client()
        .post(app.url("/api/v1/posts"))
        .bearer_auth(key)
        .json(&json!({
            "caption": caption,
            "media": [{"url": "https://media.tidepost.example/clip.mp4"}],
            "targets": [{"account_id": account, "tiktok": {"mode": "inbox"}}],
            "scheduled_at": at,
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED, "{caption}");
    let post: Value = response.json().await.unwrap();
    post["id"].as_str().unwrap().to_string()
}

/// Signs in a second member of `workspace` (an owner too: roles are not this test's matter).
async fn member(app: &TestApp, email: &str, workspace: &str) -> SignedIn {
    let (_, workspace) = app.create_user(email, workspace).await;
    let client = client();
    let response = app.sign_in(&client, email, PASSWORD, "/").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let html = app.page_text(&client, "/").await;
    let csrf = hidden_input(&html, "csrf").unwrap();
    SignedIn {
        client,
        csrf,
        workspace,
    }
}

async fn choose_zone(app: &TestApp, who: &SignedIn, zone: &str) -> reqwest::Response {
    who.client
        .post(app.url("/settings/time-zone"))
        .form(&[("csrf", who.csrf.as_str()), ("time_zone", zone)])
        .send()
        .await
        .unwrap()
}

/// The HTML of the calendar day `date` (`2027-03-10`) on `page`.
fn day<'a>(page: &'a str, date: &str) -> &'a str {
    let start = page
        .find(&format!("data-date=\"{date}\""))
        .unwrap_or_else(|| panic!("no day {date} on the page"));
    let rest = &page[start..];
    let end = rest.find("</section>").unwrap();
    &rest[..end]
}

/// The entry of `post` in the day's HTML, with its time.
fn entry_time(day: &str, post: &str) -> Option<String> {
    let start = day.find(&format!("data-post=\"{post}\""))?;
    let rest = &day[start..];
    let open = rest.find("<strong class=\"time\">")? + "<strong class=\"time\">".len();
    let close = rest[open..].find("</strong>")?;
    Some(rest[open..open + close].to_string())
}

async fn check(app: &TestApp, who: &SignedIn, post: &str, at: &str, zone: &str) -> Value {
    let response = who
        .client
        .get(app.url("/calendar/check"))
        .query(&[("post", post), ("scheduled_at", at), ("time_zone", zone)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

async fn move_post(
    app: &TestApp,
    who: &SignedIn,
    post: &str,
    at: &str,
    zone: &str,
    return_to: &str,
) -> reqwest::Response {
    who.client
        .post(app.url(&format!("/posts/{post}/reschedule")))
        .form(&[
            ("csrf", who.csrf.as_str()),
            ("scheduled_at", at),
            ("time_zone", zone),
            ("return_to", return_to),
        ])
        .send()
        .await
        .unwrap()
}

pub(crate) async fn scheduled_at(app: &TestApp, key: &str, post: &str) -> String {
    let post: Value = app
        .api_get(key, &format!("/api/v1/posts/{post}"))
        .await
        .json()
        .await
        .unwrap();
    post["scheduled_at"].as_str().unwrap().to_string()
}

both_backends!(each_person_sees_the_calendar_in_their_zone);

async fn each_person_sees_the_calendar_in_their_zone(backend: Backend) {
    let app = spawn_app_with(
        backend,
        Options {
            // One pending inbox draft per creator per day: a second post on a day is refused.
            env: vec![("TIDEPOST_TIKTOK_PENDING_INBOX_CAP", "1".into())],
            ..Options::default()
        },
    )
    .await;
    let ada = app.signed_in("tide").await;
    let bo = member(&app, "bo@tide.example", "tide").await;
    let ws = ada.workspace.id.clone();
    let key = app.api_key(&ws, "calendar", &[]).await;
    let a = fixture_account(&app.db, &ws, "tiktok", "act.calendarA", "Creator A").await;
    let b = fixture_account(&app.db, &ws, "tiktok", "act.calendarB", "Creator B").await;
    let p1 = post_at(&app, &key, &a, "Spring tide", P1_AT).await;
    let p2 = post_at(&app, &key, &b, "Neap tide", P2_AT).await;

    // Without a choice and without a browser's zone: UTC, named.
    let utc = app
        .page_text(&ada.client, "/calendar?view=month&date=2027-03-01")
        .await;
    assert!(utc.contains("id=\"calendar-zone\">UTC<"), "{utc}");
    assert_eq!(
        entry_time(day(&utc, "2027-03-10"), &p1).as_deref(),
        Some("14:30")
    );

    // A zone that does not exist is refused with the form and its reason; nothing kept.
    let wrong = choose_zone(&app, &ada, "Mars/Olympus").await;
    let wrong = page_error(
        wrong,
        StatusCode::UNPROCESSABLE_ENTITY,
        "is not a known time zone",
    )
    .await;
    assert!(wrong.contains("name=\"time_zone\""), "the form comes back");
    // A form without its token is the expired-form page.
    let forged = ada
        .client
        .post(app.url("/settings/time-zone"))
        .form(&[("time_zone", "Asia/Tokyo")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);

    let saved = choose_zone(&app, &ada, "America/New_York").await;
    assert_eq!(saved.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&saved), "/settings/time-zone?saved=1");
    let settings = app
        .page_text(&ada.client, "/settings/time-zone?saved=1")
        .await;
    assert!(settings.contains("id=\"current-zone\">America/New_York<"));
    assert!(settings.contains("you chose it"));
    assert_eq!(
        choose_zone(&app, &bo, "Asia/Tokyo").await.status(),
        StatusCode::SEE_OTHER
    );

    // The same post, on the same day, at each one's local time, with the zone named.
    let ada_month = app
        .page_text(&ada.client, "/calendar?view=month&date=2027-03-01")
        .await;
    assert!(ada_month.contains("id=\"calendar-zone\">America/New_York<"));
    assert!(ada_month.contains("March 2027"));
    assert_eq!(
        entry_time(day(&ada_month, "2027-03-10"), &p1).as_deref(),
        Some("09:30")
    );
    assert_eq!(
        entry_time(day(&ada_month, "2027-03-11"), &p2).as_deref(),
        Some("09:30")
    );
    let bo_month = app
        .page_text(&bo.client, "/calendar?view=month&date=2027-03-01")
        .await;
    assert!(bo_month.contains("id=\"calendar-zone\">Asia/Tokyo<"));
    assert_eq!(
        entry_time(day(&bo_month, "2027-03-10"), &p1).as_deref(),
        Some("23:30")
    );
    let bo_week = app
        .page_text(&bo.client, "/calendar?view=week&date=2027-03-10")
        .await;
    assert!(bo_week.contains("8 Mar – 14 Mar 2027"), "Monday to Sunday");
    assert_eq!(
        entry_time(day(&bo_week, "2027-03-10"), &p1).as_deref(),
        Some("23:30")
    );
    assert!(!bo_week.contains("data-date=\"2027-03-15\""));
    // A post near midnight falls on another day in another zone: 15:30 UTC on the 12th is
    // 00:30 on the 13th in Tokyo, 10:30 on the 12th in New York.
    let late = post_at(&app, &key, &b, "Late tide", "2027-03-12T15:30:00Z").await;
    let bo_week = app
        .page_text(&bo.client, "/calendar?view=week&date=2027-03-10")
        .await;
    assert_eq!(
        entry_time(day(&bo_week, "2027-03-13"), &late).as_deref(),
        Some("00:30")
    );
    let ada_week = app
        .page_text(&ada.client, "/calendar?view=week&date=2027-03-10")
        .await;
    assert_eq!(
        entry_time(day(&ada_week, "2027-03-12"), &late).as_deref(),
        Some("10:30")
    );

    // A viewer sees the calendar but nothing to drag or move.
    let (cy, _) = app.create_user("cy@tide.example", "tide").await;
    tidepost_store::users::set_role(&app.db, &ws, &cy.id, tidepost_domain::Role::Viewer)
        .await
        .unwrap();
    let cy_client = client();
    assert_eq!(
        app.sign_in(&cy_client, "cy@tide.example", PASSWORD, "/")
            .await
            .status(),
        StatusCode::SEE_OTHER
    );
    let cy_week = app
        .page_text(&cy_client, "/calendar?view=week&date=2027-03-10")
        .await;
    assert!(cy_week.contains(&format!("data-post=\"{p1}\"")));
    assert!(!cy_week.contains("draggable") && !cy_week.contains("class=\"move\""));
    let ada_week = app
        .page_text(&ada.client, "/calendar?view=week&date=2027-03-10")
        .await;
    assert!(ada_week.contains("draggable=\"true\"") && ada_week.contains("class=\"move\""));

    // The post page and the schedule say it in the viewer's zone too.
    let ada_post = app.page_text(&ada.client, &format!("/posts/{p1}")).await;
    assert!(
        ada_post.contains("2027-03-10 09:30") && ada_post.contains("America/New_York"),
        "{ada_post}"
    );
    let bo_post = app.page_text(&bo.client, &format!("/posts/{p1}")).await;
    assert!(bo_post.contains("2027-03-10 23:30") && bo_post.contains("Asia/Tokyo"));
    let bo_schedule = app.page_text(&bo.client, "/posts/scheduled").await;
    assert!(bo_schedule.contains("id=\"schedule-zone\">Asia/Tokyo<"));
    assert!(bo_schedule.contains("23:30"));

    // Filters: by account, by creator (the fixture accounts have none: nothing shows).
    let only_b = app
        .page_text(
            &ada.client,
            &format!("/calendar?view=month&date=2027-03-01&account={b}"),
        )
        .await;
    assert!(only_b.contains(&p2) && !only_b.contains(&format!("data-post=\"{p1}\"")));
    let creator = tidepost_store::crm::creators::create(&app.db, &ws, "Ana", "")
        .await
        .unwrap();
    let by_creator = app
        .page_text(
            &ada.client,
            &format!(
                "/calendar?view=month&date=2027-03-01&creator={}",
                creator.id
            ),
        )
        .await;
    assert!(by_creator.contains("id=\"calendar-empty\""), "{by_creator}");
    // Wrong input is a notice over a page that works.
    let wrong = app
        .page_text(
            &ada.client,
            "/calendar?view=year&date=31-02-2027&account=nope&creator=nobody",
        )
        .await;
    for notice in [
        "\"year\" is not a calendar view",
        "\"31-02-2027\" is not a date",
        "That account is not in this workspace",
        "That creator is not in this workspace",
    ] {
        assert!(
            wrong.contains(&notice.replace('"', "&#34;")),
            "{notice}: {wrong}"
        );
    }
    assert!(wrong.contains("class=\"calendar view-month\""));

    // The live check: a free day is fine; the day of A's next post is refused with the next
    // free slot, in the viewer's zone; nothing moves.
    let ok = check(&app, &ada, &p1, "2027-03-11T09:30", "America/New_York").await;
    assert_eq!(ok["ok"], true, "{ok}");
    assert!(
        ok["message"]
            .as_str()
            .unwrap()
            .contains("Thu 11 Mar 2027, 09:30 (America/New_York)")
    );
    let third = post_at(&app, &key, &a, "Third tide", "2027-03-16T14:30:00Z").await;
    let refused = check(&app, &ada, &p1, "2027-03-16T10:30", "America/New_York").await;
    assert_eq!(refused["ok"], false, "{refused}");
    let message = refused["message"].as_str().unwrap();
    assert!(
        message.contains("next free slot") && message.contains("(America/New_York)"),
        "{message}"
    );
    assert_eq!(scheduled_at(&app, &key, &p1).await, P1_AT);

    // The move form: moved, back on the calendar page it came from.
    let back = "/calendar?view=week&date=2027-03-10";
    let moved = move_post(
        &app,
        &ada,
        &p1,
        "2027-03-11T08:00",
        "America/New_York",
        back,
    )
    .await;
    assert_eq!(moved.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&moved), back);
    assert_eq!(scheduled_at(&app, &key, &p1).await, "2027-03-11T13:00:00Z");
    // A refused move says why and leads back to the calendar; the post stays.
    let refused = move_post(
        &app,
        &ada,
        &p1,
        "2027-03-16T10:30",
        "America/New_York",
        back,
    )
    .await;
    let page = page_error(refused, StatusCode::UNPROCESSABLE_ENTITY, "next free slot").await;
    assert!(
        page.contains("Back to the calendar") && page.contains(&back.replace('&', "&#38;")),
        "{page}"
    );
    assert_eq!(scheduled_at(&app, &key, &p1).await, "2027-03-11T13:00:00Z");
    // Only a page of this site's calendar is a way back.
    let elsewhere = move_post(
        &app,
        &ada,
        &p1,
        "2027-03-11T08:30",
        "America/New_York",
        "https://elsewhere.example/calendar",
    )
    .await;
    assert_eq!(location(&elsewhere), format!("/posts/{p1}"));

    // Daylight saving time: 14 March 2027 skips 02:00–03:00 in New York; 7 November 2027
    // repeats 01:00–02:00.
    let skipped = move_post(
        &app,
        &ada,
        &p1,
        "2027-03-14T02:30",
        "America/New_York",
        back,
    )
    .await;
    let page = page_error(
        skipped,
        StatusCode::UNPROCESSABLE_ENTITY,
        "does not exist in America/New_York",
    )
    .await;
    assert!(page.contains("clocks go forward"), "{page}");
    let twice = check(&app, &ada, &p1, "2027-11-07T01:30", "America/New_York").await;
    assert_eq!(twice["ok"], false);
    let message = twice["message"].as_str().unwrap();
    assert!(
        message.contains("happens twice in America/New_York")
            && message.contains("2027-11-07T01:30-04")
            && message.contains("2027-11-07T01:30-05"),
        "{message}"
    );
    assert_eq!(
        scheduled_at(&app, &key, &third).await,
        "2027-03-16T14:30:00Z"
    );

    // The composer asks which 01:30, naming both; once chosen, the time is the one chosen.
    let compose = |repeated: Option<&'static str>| {
        let mut pairs: Vec<(String, String)> = [
            ("csrf", ada.csrf.as_str()),
            ("caption", "Fall back"),
            ("targets", b.as_str()),
            ("media_url", "https://media.tidepost.example/clip.mp4"),
            ("media_url_kind", "video"),
            ("when", "at"),
            ("scheduled_at", "2027-11-07T01:30"),
            ("time_zone", "America/New_York"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        pairs.push((format!("mode:{b}"), "inbox".into()));
        if let Some(which) = repeated {
            pairs.push(("repeated_hour".into(), which.into()));
        }
        ada.client.post(app.url("/compose")).form(&pairs).send()
    };
    let asked = compose(None).await.unwrap();
    let asked = page_error(
        asked,
        StatusCode::UNPROCESSABLE_ENTITY,
        "id=\"repeated-hour\"",
    )
    .await;
    assert!(
        asked.contains("2027-11-07T01:30:00-04:00") && asked.contains("2027-11-07T01:30:00-05:00"),
        "{asked}"
    );
    let chosen = compose(Some("second")).await.unwrap();
    assert_eq!(
        chosen.status(),
        StatusCode::SEE_OTHER,
        "{}",
        chosen.text().await.unwrap()
    );
    let post = location(&chosen);
    let post = post.trim_start_matches("/posts/");
    assert_eq!(scheduled_at(&app, &key, post).await, "2027-11-07T06:30:00Z");

    // Another workspace's post is not there for the check nor the move.
    let other = app.signed_in("elsewhere").await;
    let response = other
        .client
        .get(app.url("/calendar/check"))
        .query(&[
            ("post", p1.as_str()),
            ("scheduled_at", "2027-03-12T09:00"),
            ("time_zone", "UTC"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let response = move_post(&app, &other, &p1, "2027-03-12T09:00", "UTC", back).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let other_calendar = app
        .page_text(&other.client, "/calendar?view=month&date=2027-03-01")
        .await;
    assert!(!other_calendar.contains(&p1) && other_calendar.contains("id=\"calendar-empty\""));
}
