//! The CRM pages: creators (`/creators`, `/creators/{id}` with its accounts, posts and their
//! metrics over time as a small inline SVG chart, and its timeline), contacts with search
//! (`/contacts`, `/contacts/{id}` with its timeline) and the interaction inbox (`/inbox`) with
//! replies to Instagram comments. Server-rendered; every id is looked up in the viewer's
//! workspace.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;
use tidepost_domain::Platform;
use tidepost_store::crm::contacts::{self, Contact};
use tidepost_store::crm::creators::{self, OwnedAccount};
use tidepost_store::crm::interactions::{self, Filter, Interaction};
use tidepost_store::crm::metrics::{self, Sample};
use tidepost_store::crm::timeline::{self, Entry};
use tidepost_store::crm::{Cursor, Paged};

use super::Chrome;
use crate::api::crm::crm_problem;
use crate::auth::{CsrfForm, Viewer};
use crate::error::PageError;
use crate::state::HttpState;
use crate::zone::Zone;

pub fn router() -> Router<HttpState> {
    Router::new()
        .route("/creators", get(creators_page).post(create_creator))
        .route("/creators/{id}", get(creator_page).post(update_creator))
        .route("/creators/{id}/accounts", post(attach_account))
        .route(
            "/creators/{id}/accounts/{account_id}/detach",
            post(detach_account),
        )
        .route("/creators/{id}/delete", post(delete_creator))
        .route("/contacts", get(contacts_page))
        .route("/contacts/{id}", get(contact_page))
        .route("/inbox", get(inbox_page))
        .route("/inbox/{id}/reply", post(reply))
}

const PAGE: i64 = 30;

fn cursor(after: Option<&str>) -> Result<Cursor, PageError> {
    match after.filter(|a| !a.is_empty()) {
        None => Ok(Cursor::start()),
        Some(text) => Cursor::parse(text).ok_or_else(|| {
            PageError::new(
                StatusCode::BAD_REQUEST,
                "Not a page of this list",
                "This link points to no page of the list. Start again from its first page.",
            )
        }),
    }
}

fn next_of<T>(page: &Paged<T>) -> Option<String> {
    page.next.as_ref().map(Cursor::encode)
}

#[derive(Deserialize, Default)]
struct ListQuery {
    q: Option<String>,
    after: Option<String>,
}

// ---- creators ----

struct CreatorRow {
    id: String,
    name: String,
    accounts: String,
    created: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "crm_creators.html")]
struct CreatorsPage {
    chrome: Chrome,
    q: String,
    rows: Vec<CreatorRow>,
    next: Option<String>,
    error: Option<String>,
}

async fn creators_page(
    State(state): State<HttpState>,
    viewer: Viewer,
    Query(q): Query<ListQuery>,
) -> Result<CreatorsPage, PageError> {
    render_creators(&state, &viewer, q, None).await
}

async fn render_creators(
    state: &HttpState,
    viewer: &Viewer,
    q: ListQuery,
    error: Option<String>,
) -> Result<CreatorsPage, PageError> {
    let ws = &viewer.workspace.id;
    let zone = &viewer.zone;
    let after = cursor(q.after.as_deref())?;
    let page = creators::list(&state.app.db, ws, q.q.as_deref(), None, &after, PAGE).await?;
    let mut rows = Vec::new();
    for c in &page.items {
        let owned = creators::accounts_of(&state.app.db, ws, &c.id).await?;
        rows.push(CreatorRow {
            id: c.id.clone(),
            name: c.name.clone(),
            accounts: accounts_line(&owned),
            created: zone.when(Some(c.created_at)),
        });
    }
    Ok(CreatorsPage {
        chrome: Chrome::for_viewer(state, viewer, "Creators"),
        q: q.q.unwrap_or_default(),
        next: next_of(&page),
        rows,
        error,
    })
}

fn accounts_line(owned: &[OwnedAccount]) -> String {
    if owned.is_empty() {
        return "no accounts".into();
    }
    owned
        .iter()
        .map(|a| format!("{} ({})", a.display_name, platform_name(&a.platform)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn platform_name(platform: &Platform) -> &'static str {
    platform.display_name()
}

#[derive(Deserialize)]
struct CreatorForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    notes: String,
}

async fn create_creator(
    State(state): State<HttpState>,
    viewer: Viewer,
    Form(form): Form<CreatorForm>,
) -> Result<Response, PageError> {
    viewer.check_csrf(&form.csrf)?;
    if let Err(message) = creators::validate(&form.name, &form.notes) {
        let page = render_creators(
            &state,
            &viewer,
            ListQuery::default(),
            Some(crate::error::capitalize(&message)),
        )
        .await?;
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    }
    let c = creators::create(&state.app.db, &viewer.workspace.id, &form.name, &form.notes).await?;
    Ok(Redirect::to(&format!("/creators/{}?done=created", c.id)).into_response())
}

struct AccountRow {
    id: String,
    name: String,
    platform: &'static str,
    status: String,
}

struct PostRow {
    caption: String,
    post_id: String,
    platform: &'static str,
    state: String,
    latest: String,
    chart: Option<Chart>,
    tracking: String,
}

/// A small line chart of views over time, drawn server-side as SVG.
struct Chart {
    points: String,
    label: String,
    width: u32,
    height: u32,
}

fn chart(samples: &[Sample], zone: &Zone) -> Option<Chart> {
    let points: Vec<(i64, i64)> = samples
        .iter()
        .filter_map(|s| s.views.or(s.reach).or(s.likes).map(|v| (s.sampled_at, v)))
        .collect();
    if points.len() < 2 {
        return None;
    }
    let (width, height, pad) = (240.0_f64, 60.0_f64, 3.0_f64);
    let (t0, t1) = (points[0].0, points[points.len() - 1].0);
    let max = points.iter().map(|p| p.1).max().unwrap_or(0).max(1) as f64;
    let span = (t1 - t0).max(1) as f64;
    let coords = points
        .iter()
        .map(|(t, v)| {
            let x = pad + (width - 2.0 * pad) * ((t - t0) as f64 / span);
            let y = height - pad - (height - 2.0 * pad) * (*v as f64 / max);
            format!("{x:.1},{y:.1}")
        })
        .collect::<Vec<_>>()
        .join(" ");
    let last = points[points.len() - 1].1;
    Some(Chart {
        points: coords,
        label: format!(
            "{} samples from {} to {}; now {last}",
            points.len(),
            zone.when(Some(t0)),
            zone.when(Some(t1))
        ),
        width: width as u32,
        height: height as u32,
    })
}

fn latest_line(samples: &[Sample]) -> String {
    let Some(s) = samples.last() else {
        return "no metrics yet".into();
    };
    let mut parts = Vec::new();
    for (name, value) in [
        ("views", s.views),
        ("likes", s.likes),
        ("comments", s.comments),
        ("shares", s.shares),
        ("saves", s.saves),
        ("reach", s.reach),
    ] {
        if let Some(v) = value {
            parts.push(format!("{v} {name}"));
        }
    }
    if parts.is_empty() {
        "no figures given by the platform".into()
    } else {
        parts.join(" · ")
    }
}

struct EntryRow {
    when: String,
    icon: &'static str,
    text: String,
    href: Option<String>,
}

fn entry_row(e: &Entry, zone: &Zone) -> EntryRow {
    let (icon, text, href) = match e.kind.as_str() {
        "post" => (
            "Post",
            format!("{} ({})", e.title, e.detail),
            Some(format!("/posts/{}", e.ref_id)),
        ),
        "interaction" => ("Interaction", format!("{}: {}", e.title, e.detail), None),
        "account_event" => (
            "Account",
            format!(
                "{} — {}",
                e.title.trim_start_matches("account.").replace('_', " "),
                e.detail
            ),
            Some(format!("/accounts/{}", e.ref_id)),
        ),
        "milestone" => (
            "Milestone",
            format!("passed {} {}", e.detail, e.title),
            None,
        ),
        _ => ("Event", e.title.clone(), None),
    };
    EntryRow {
        when: zone.when(Some(e.at)),
        icon,
        text,
        href,
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "crm_creator.html")]
struct CreatorPage {
    chrome: Chrome,
    id: String,
    name: String,
    notes: String,
    accounts: Vec<AccountRow>,
    others: Vec<(String, String)>,
    posts: Vec<PostRow>,
    timeline: Vec<EntryRow>,
    next: Option<String>,
    notice: Option<String>,
}

#[derive(Deserialize, Default)]
struct CreatorQuery {
    after: Option<String>,
    done: Option<String>,
}

async fn creator_page(
    State(state): State<HttpState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Query(q): Query<CreatorQuery>,
) -> Result<CreatorPage, PageError> {
    let ws = &viewer.workspace.id;
    let zone = &viewer.zone;
    let db = &state.app.db;
    let creator = creators::get(db, ws, &id)
        .await?
        .ok_or_else(PageError::not_found)?;
    let after = cursor(q.after.as_deref())?;
    let owned = creators::accounts_of(db, ws, &id).await?;
    let others = tidepost_store::accounts::list(db, ws)
        .await?
        .into_iter()
        .filter(|a| !owned.iter().any(|o| o.id == a.id))
        .map(|a| {
            (
                a.id,
                format!("{} ({})", a.display_name, platform_name(&a.platform)),
            )
        })
        .collect();
    let mut posts = Vec::new();
    for p in metrics::posts_of_creator(db, ws, &id, 20).await? {
        let samples = metrics::series(db, ws, &p.target_id, 500).await?;
        let track = metrics::track(db, ws, &p.target_id).await?;
        let tracking = match &track {
            None if p.state == "published" => "metrics start within a minute".to_string(),
            None => String::new(),
            Some(t) => match (t.next_sample_at, &t.last_error) {
                (_, Some(err)) => format!("last sync: {err}"),
                (Some(next), None) => format!("next sample {}", zone.when(Some(next))),
                (None, None) => "sampling finished".to_string(),
            },
        };
        posts.push(PostRow {
            caption: if p.caption.trim().is_empty() {
                "(no caption)".into()
            } else {
                p.caption.clone()
            },
            post_id: p.post_id.clone(),
            platform: platform_name(&p.platform),
            state: p.state.clone(),
            latest: latest_line(&samples),
            chart: chart(&samples, zone),
            tracking,
        });
    }
    let page = timeline::of_creator(db, ws, &id, &after, PAGE).await?;
    Ok(CreatorPage {
        chrome: Chrome::for_viewer(&state, &viewer, "Creators"),
        id: creator.id,
        name: creator.name,
        notes: creator.notes,
        accounts: owned
            .iter()
            .map(|a| AccountRow {
                id: a.id.clone(),
                name: a.display_name.clone(),
                platform: platform_name(&a.platform),
                status: a.status.replace('_', " "),
            })
            .collect(),
        others,
        posts,
        timeline: page.items.iter().map(|e| entry_row(e, zone)).collect(),
        next: next_of(&page),
        notice: q.done.map(|d| match d.as_str() {
            "created" => "Creator created.".to_string(),
            "saved" => "Saved.".to_string(),
            "attached" => "Account attached.".to_string(),
            _ => "Done.".to_string(),
        }),
    })
}

async fn update_creator(
    State(state): State<HttpState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Form(form): Form<CreatorForm>,
) -> Result<Response, PageError> {
    viewer.check_csrf(&form.csrf)?;
    creators::get(&state.app.db, &viewer.workspace.id, &id)
        .await?
        .ok_or_else(PageError::not_found)?;
    creators::validate(&form.name, &form.notes).map_err(|m| {
        PageError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Not saved",
            crate::error::capitalize(&m),
        )
        .with_action(format!("/creators/{id}"), "Back to the creator")
    })?;
    if !creators::update(
        &state.app.db,
        &viewer.workspace.id,
        &id,
        &form.name,
        &form.notes,
    )
    .await?
    {
        return Err(PageError::not_found());
    }
    Ok(Redirect::to(&format!("/creators/{id}?done=saved")).into_response())
}

#[derive(Deserialize)]
struct AttachForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    account_id: String,
}

async fn attach_account(
    State(state): State<HttpState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Form(form): Form<AttachForm>,
) -> Result<Response, PageError> {
    viewer.check_csrf(&form.csrf)?;
    creators::get(&state.app.db, &viewer.workspace.id, &id)
        .await?
        .ok_or_else(PageError::not_found)?;
    if !creators::attach(&state.app.db, &viewer.workspace.id, &id, &form.account_id).await? {
        return Err(PageError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Not attached",
            "Choose one of this workspace's accounts to attach.",
        )
        .with_action(format!("/creators/{id}"), "Back to the creator"));
    }
    Ok(Redirect::to(&format!("/creators/{id}?done=attached")).into_response())
}

async fn detach_account(
    State(state): State<HttpState>,
    viewer: Viewer,
    Path((id, account_id)): Path<(String, String)>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, PageError> {
    viewer.check_csrf(&form.csrf)?;
    let own = creators::detach(&state.app.db, &viewer.workspace.id, &id, &account_id)
        .await?
        .ok_or_else(PageError::not_found)?;
    Ok(Redirect::to(&format!("/creators/{}?done=created", own.id)).into_response())
}

async fn delete_creator(
    State(state): State<HttpState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, PageError> {
    viewer.check_csrf(&form.csrf)?;
    match creators::delete(&state.app.db, &viewer.workspace.id, &id).await {
        Ok(true) => Ok(Redirect::to("/creators").into_response()),
        Ok(false) => Err(PageError::not_found()),
        Err(e) if e.is_unique_violation() => Err(PageError::new(
            StatusCode::CONFLICT,
            "Not deleted",
            "This creator still owns accounts: attach them to another creator or detach them first.",
        )
        .with_action(format!("/creators/{id}"), "Back to the creator")),
        Err(e) => Err(e.into()),
    }
}

// ---- contacts ----

struct ContactRow {
    id: String,
    handle: String,
    platform: &'static str,
    interactions: i64,
    last_seen: String,
}

fn contact_row(c: &Contact, zone: &Zone) -> ContactRow {
    ContactRow {
        id: c.id.clone(),
        handle: c
            .handle
            .as_ref()
            .map(|h| format!("@{h}"))
            .or_else(|| c.name.clone())
            .unwrap_or_else(|| c.platform_user_id.clone()),
        platform: platform_name(&c.platform),
        interactions: c.interactions,
        last_seen: zone.when(Some(c.last_seen_at)),
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "crm_contacts.html")]
struct ContactsPage {
    chrome: Chrome,
    q: String,
    rows: Vec<ContactRow>,
    next: Option<String>,
}

async fn contacts_page(
    State(state): State<HttpState>,
    viewer: Viewer,
    Query(q): Query<ListQuery>,
) -> Result<ContactsPage, PageError> {
    let zone = &viewer.zone;
    let after = cursor(q.after.as_deref())?;
    let search =
        q.q.as_deref()
            .map(|s| s.chars().take(200).collect::<String>());
    let page = contacts::list(
        &state.app.db,
        &viewer.workspace.id,
        search.as_deref(),
        None,
        &after,
        PAGE,
    )
    .await?;
    Ok(ContactsPage {
        chrome: Chrome::for_viewer(&state, &viewer, "Contacts"),
        q: search.unwrap_or_default(),
        rows: page.items.iter().map(|c| contact_row(c, zone)).collect(),
        next: next_of(&page),
    })
}

#[derive(Template, WebTemplate)]
#[template(path = "crm_contact.html")]
struct ContactPage {
    chrome: Chrome,
    id: String,
    contact: ContactRow,
    platform_user_id: String,
    first_seen: String,
    timeline: Vec<EntryRow>,
    next: Option<String>,
}

async fn contact_page(
    State(state): State<HttpState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Query(q): Query<CreatorQuery>,
) -> Result<ContactPage, PageError> {
    let ws = &viewer.workspace.id;
    let zone = &viewer.zone;
    let contact = contacts::get(&state.app.db, ws, &id)
        .await?
        .ok_or_else(PageError::not_found)?;
    let after = cursor(q.after.as_deref())?;
    let page = timeline::of_contact(&state.app.db, ws, &id, &after, PAGE).await?;
    Ok(ContactPage {
        chrome: Chrome::for_viewer(&state, &viewer, "Contacts"),
        id: contact.id.clone(),
        contact: contact_row(&contact, zone),
        platform_user_id: contact.platform_user_id.clone(),
        first_seen: zone.when(Some(contact.first_seen_at)),
        timeline: page.items.iter().map(|e| entry_row(e, zone)).collect(),
        next: next_of(&page),
    })
}

// ---- inbox ----

struct InboxRow {
    id: String,
    kind: String,
    text: String,
    who: String,
    contact_id: Option<String>,
    platform: &'static str,
    when: String,
    can_reply: bool,
    replies: Vec<(String, String)>,
}

#[derive(Template, WebTemplate)]
#[template(path = "crm_inbox.html")]
struct InboxPage {
    chrome: Chrome,
    kind: String,
    rows: Vec<InboxRow>,
    next: Option<String>,
    notice: Option<String>,
}

#[derive(Deserialize, Default)]
struct InboxQuery {
    kind: Option<String>,
    after: Option<String>,
    done: Option<String>,
}

async fn inbox_page(
    State(state): State<HttpState>,
    viewer: Viewer,
    Query(q): Query<InboxQuery>,
) -> Result<InboxPage, PageError> {
    let ws = &viewer.workspace.id;
    let db = &state.app.db;
    let after = cursor(q.after.as_deref())?;
    let kind = q
        .kind
        .as_deref()
        .filter(|k| interactions::KINDS.contains(k))
        .map(str::to_string);
    let filter = Filter {
        kind: kind.as_deref(),
        direction: Some("inbound"),
        ..Filter::default()
    };
    let page = interactions::list(db, ws, &filter, &after, PAGE).await?;
    let mut rows = Vec::new();
    for i in &page.items {
        rows.push(inbox_row(&state, ws, i, &viewer.zone).await?);
    }
    Ok(InboxPage {
        chrome: Chrome::for_viewer(&state, &viewer, "Inbox"),
        kind: kind.unwrap_or_default(),
        rows,
        next: next_of(&page),
        notice: q
            .done
            .filter(|d| d == "replied")
            .map(|_| "Reply posted.".to_string()),
    })
}

async fn inbox_row(
    state: &HttpState,
    ws: &str,
    i: &Interaction,
    zone: &Zone,
) -> Result<InboxRow, PageError> {
    let db = &state.app.db;
    let who = match &i.contact_id {
        Some(id) => contacts::get(db, ws, id)
            .await?
            .map(|c| contact_row(&c, zone).handle)
            .unwrap_or_else(|| "someone".into()),
        None => "someone (the platform does not say who)".into(),
    };
    let replies = interactions::replies_to(db, ws, i.platform, &i.provider_id)
        .await?
        .into_iter()
        .filter(|r| r.direction == "outbound")
        .map(|r| (zone.when(Some(r.occurred_at)), r.text))
        .collect();
    Ok(InboxRow {
        id: i.id.clone(),
        kind: i.kind.clone(),
        text: if i.text.is_empty() {
            "(no text)".into()
        } else {
            i.text.clone()
        },
        who,
        contact_id: i.contact_id.clone(),
        platform: platform_name(&i.platform),
        when: zone.when(Some(i.occurred_at)),
        can_reply: match i.platform {
            Platform::Instagram => matches!(i.kind.as_str(), "comment" | "reply"),
            Platform::Tiktok | Platform::Threads => false,
        },
        replies,
    })
}

#[derive(Deserialize)]
struct ReplyForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    text: String,
}

async fn reply(
    State(state): State<HttpState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Form(form): Form<ReplyForm>,
) -> Result<Response, PageError> {
    viewer.check_csrf(&form.csrf)?;
    match tidepost_app::crm::reply(&state.app, &viewer.workspace.id, &id, &form.text).await {
        Ok(_) => Ok(Redirect::to("/inbox?done=replied").into_response()),
        Err(err) => {
            let problem = crm_problem(err);
            Err(PageError::new(
                problem.status,
                "Reply not posted",
                crate::error::capitalize(&problem.detail),
            )
            .with_retry_after(problem.retry_after_secs)
            .with_action("/inbox", "Back to the inbox"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chart_spans_its_box() {
        let s = |t, v| Sample {
            sampled_at: t,
            views: Some(v),
            ..Sample::default()
        };
        assert!(chart(&[s(0, 5)], &Zone::utc()).is_none());
        let c = chart(&[s(0, 0), s(50, 50), s(100, 100)], &Zone::utc()).unwrap();
        assert_eq!(c.points, "3.0,57.0 120.0,30.0 237.0,3.0");
    }
}
