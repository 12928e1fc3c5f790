//! The calendar in a real browser (SQLite; 390×844 and 1280×800): a person chooses their time
//! zone in the settings, sees a week and a month of posts at their local times, drags a
//! scheduled post to another day (the day says live whether it may go there, and a day where
//! the creator's limit is reached says why, with the next free slot), and moves one without
//! dragging through its Move form. Screenshots under `target/screenshots/calendar_<width>/`.

use serde_json::json;
use tidepost_store::testing::Backend;

use crate::browser::Browser;
use crate::browser_compose::wait_until;
use crate::calendar::{post_at, scheduled_at};
use crate::support::*;

#[tokio::test]
async fn plan_the_week_in_the_calendar_at_390() {
    plan_the_week(390, 844).await;
}

#[tokio::test]
async fn plan_the_week_in_the_calendar_at_1280() {
    plan_the_week(1280, 800).await;
}

/// Drags the calendar entry of `post` over the day `date` the way a mouse does (the browser's
/// drag events, which WebDriver cannot drive natively), without dropping it.
async fn drag_over(b: &Browser, post: &str, date: &str) {
    b.client
        .execute(
            "const entry = document.querySelector(`.calendar-entry[data-post='${arguments[0]}']`); \
             const day = document.querySelector(`.calendar-day[data-date='${arguments[1]}']`); \
             window.__drag = new DataTransfer(); \
             entry.dispatchEvent(new DragEvent('dragstart', {bubbles: true, dataTransfer: window.__drag})); \
             day.dispatchEvent(new DragEvent('dragenter', {bubbles: true, dataTransfer: window.__drag})); \
             day.dispatchEvent(new DragEvent('dragover', {bubbles: true, cancelable: true, dataTransfer: window.__drag}));",
            vec![json!(post), json!(date)],
        )
        .await
        .unwrap();
}

async fn drop_on(b: &Browser, date: &str) {
    b.client
        .execute(
            "const day = document.querySelector(`.calendar-day[data-date='${arguments[0]}']`); \
             day.dispatchEvent(new DragEvent('drop', {bubbles: true, cancelable: true, dataTransfer: window.__drag}));",
            vec![json!(date)],
        )
        .await
        .unwrap();
}

async fn plan_the_week(width: u32, height: u32) {
    let test = format!("calendar_{width}");
    let app = spawn_app_with(
        Backend::Sqlite,
        Options {
            env: vec![("TIDEPOST_TIKTOK_PENDING_INBOX_CAP", "1".into())],
            ..Options::default()
        },
    )
    .await;
    let (_, workspace) = app.create_user("ada@example.com", "acme").await;
    let key = app.api_key(&workspace.id, "setup", &["api"]).await;
    let a = fixture_account(&app.db, &workspace.id, "tiktok", "act.weekA", "Creator A").await;
    let b_account =
        fixture_account(&app.db, &workspace.id, "tiktok", "act.weekB", "Creator B").await;
    // 09:30 in New York on Wednesday 10 and Friday 12 March 2027 (A), Thursday 11 (B).
    let spring = post_at(&app, &key, &a, "Spring tide", "2027-03-10T14:30:00Z").await;
    post_at(&app, &key, &b_account, "Neap tide", "2027-03-11T14:30:00Z").await;
    post_at(&app, &key, &a, "King tide", "2027-03-12T14:30:00Z").await;

    let b = Browser::start(width, height).await;
    b.goto(&app.url("/login")).await;
    b.fill("#email", "ada@example.com").await;
    b.fill("#password", PASSWORD).await;
    b.click("form[action='/login'] button[type=submit]").await;
    b.wait_for_path("the dashboard", |p| p == "/").await;

    // The zone, chosen in the settings.
    b.goto(&app.url("/settings")).await;
    b.click("#zone a[href='/settings/time-zone']").await;
    b.wait_for_path("the time zone page", |p| p == "/settings/time-zone")
        .await;
    b.client
        .execute(
            "document.getElementById('time-zone').value = 'America/New_York';",
            vec![],
        )
        .await
        .unwrap();
    b.click("#zone button[type=submit]").await;
    b.wait_for_path("the zone saved", |p| p.ends_with("saved=1"))
        .await;
    assert!(
        b.text_of("#current-zone")
            .await
            .contains("America/New_York")
    );
    b.screenshot(&test, "01-time-zone").await;

    // The week, at New York time.
    b.goto(&app.url("/calendar?view=week&date=2027-03-10"))
        .await;
    let week = "/calendar?view=week&date=2027-03-10";
    assert_eq!(b.text_of("#calendar-zone").await, "America/New_York");
    let spring_entry = format!(".calendar-entry[data-post='{spring}']");
    assert!(
        b.text_of(&format!(
            ".calendar-day[data-date='2027-03-10'] {spring_entry} .time"
        ))
        .await
        .contains("09:30")
    );
    b.assert_layout_fits(week).await;
    b.screenshot(&test, "02-week").await;

    // Over Friday (A's King tide is there, and A may have one a day): refused, with the slot.
    drag_over(&b, &spring, "2027-03-12").await;
    wait_until(
        &b,
        "Friday refused",
        "return document.querySelector(\".calendar-day[data-date='2027-03-12']\").classList.contains('drop-refused');",
        20,
    )
    .await;
    let live = b.text_of("#calendar-live").await;
    assert!(live.contains("next free slot"), "{live}");
    b.screenshot(&test, "03-drag-refused").await;
    // Over Thursday: fine.
    drag_over(&b, &spring, "2027-03-11").await;
    wait_until(
        &b,
        "Thursday accepted",
        "return document.querySelector(\".calendar-day[data-date='2027-03-11']\").classList.contains('drop-ok');",
        20,
    )
    .await;
    assert!(
        b.text_of("#calendar-live")
            .await
            .contains("Can move to Thu 11 Mar 2027, 09:30")
    );
    b.screenshot(&test, "04-drag-ok").await;
    drop_on(&b, "2027-03-11").await;
    wait_until(
        &b,
        "the post on Thursday",
        &format!(
            "return !!document.querySelector(\".calendar-day[data-date='2027-03-11'] {}\");",
            spring_entry.replace('\'', "\\'")
        ),
        20,
    )
    .await;
    assert_eq!(b.path().await, week);
    assert_eq!(
        scheduled_at(&app, &key, &spring).await,
        "2027-03-11T14:30:00Z"
    );

    // Without dragging: its Move form, to Thursday 07:15.
    b.click(&format!("{spring_entry} .move summary")).await;
    b.client
        .execute(
            "document.querySelector(arguments[0] + ' input[name=scheduled_at]').value = '2027-03-11T07:15';",
            vec![json!(spring_entry)],
        )
        .await
        .unwrap();
    b.screenshot(&test, "05-move-form").await;
    b.click(&format!("{spring_entry} .move button[type=submit]"))
        .await;
    wait_until(
        &b,
        "the post at 07:15",
        &format!(
            "const t = document.querySelector(\"{} .time\"); return !!t && t.textContent === '07:15';",
            spring_entry
        ),
        20,
    )
    .await;
    assert_eq!(
        scheduled_at(&app, &key, &spring).await,
        "2027-03-11T12:15:00Z"
    );

    // The month.
    b.goto(&app.url("/calendar?view=month&date=2027-03-10"))
        .await;
    assert!(b.text_of("#calendar-title").await.contains("March 2027"));
    b.assert_layout_fits("/calendar?view=month").await;
    b.screenshot(&test, "06-month").await;
    b.close().await;
}
