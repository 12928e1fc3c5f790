//! Posts: the history (`/posts`) and one post (`/posts/{id}`), which refreshes itself while a
//! target is still moving (`app.js`). `/posts/new?account=…`, the old single-account form,
//! opens the composer (`/compose`) with that account chosen: every post from the UI goes
//! through `compose::submit`.
//!
//! A TikTok target whose outcome is unknown (the answer to its publish request was lost) shows
//! what happened and two explicit actions instead of Retry: "It is on TikTok — mark published"
//! (with the video's link, optional) and "It is not on TikTok — send again", which needs its
//! confirmation box ticked.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;
use tidepost_app::pipeline::{self, PublishError};
use tidepost_app::platforms;
use tidepost_app::tiktok::reconcile;
use tidepost_domain::Platform;
use tidepost_domain::{PostSummary, TargetState};
use tidepost_store::{accounts, posts};

use super::Chrome;
use crate::auth::{CsrfForm, Viewer};
use crate::error::PageError;
use crate::state::HttpState;

pub fn router() -> Router<HttpState> {
    Router::new()
        .route("/posts", get(history))
        .route("/posts/new", get(new_post))
        .route("/posts/{id}", get(detail))
        .route("/posts/{id}/cancel", post(cancel))
        .route("/posts/{id}/targets/{target}/retry", post(retry))
        .route(
            "/posts/{id}/targets/{target}/mark-published",
            post(mark_published),
        )
        .route("/posts/{id}/targets/{target}/send-again", post(send_again))
}

pub(super) fn page_error(err: PublishError) -> PageError {
    match err {
        PublishError::NotFound(_) => PageError::not_found(),
        PublishError::Store(e) => PageError::from(e),
        other @ (PublishError::Invalid { .. }
        | PublishError::Quota { .. }
        | PublishError::Conflict(_)
        | PublishError::NeedsReauth(_)
        | PublishError::Provider(_)
        | PublishError::Unavailable(_)
        | PublishError::Io(_)
        | PublishError::TooLarge { .. }) => PageError::new(
            axum::http::StatusCode::CONFLICT,
            "That did not work",
            other.to_string(),
        ),
    }
}

#[derive(Deserialize)]
struct NewQuery {
    account: Option<String>,
}

/// The single-account form is the composer with the account chosen: old links (bookmarks,
/// `/posts/new?account=…`) land there.
async fn new_post(Query(q): Query<NewQuery>) -> Redirect {
    match q.account.filter(|a| !a.is_empty()) {
        Some(account) => Redirect::to(&format!(
            "/compose?account={}",
            url::form_urlencoded::byte_serialize(account.as_bytes()).collect::<String>()
        )),
        None => Redirect::to("/compose"),
    }
}

struct PostRow {
    id: String,
    caption: String,
    kind: String,
    summary: String,
    summary_class: &'static str,
    states: String,
    created: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "posts.html")]
struct HistoryPage {
    chrome: Chrome,
    rows: Vec<PostRow>,
    next: Option<String>,
}

#[derive(Deserialize)]
struct HistoryQuery {
    after: Option<String>,
}

async fn history(
    viewer: Viewer,
    State(state): State<HttpState>,
    Query(q): Query<HistoryQuery>,
) -> Result<Response, PageError> {
    let ws = &viewer.workspace.id;
    let list = posts::list(&state.app.db, ws, q.after.as_deref(), 25).await?;
    let ids: Vec<String> = list.iter().map(|p| p.id.clone()).collect();
    let all_targets = posts::targets_of_posts(&state.app.db, ws, &ids).await?;
    let mut rows = Vec::new();
    for post in &list {
        let targets: Vec<&posts::Target> = all_targets
            .iter()
            .filter(|t| t.post_id == post.id)
            .collect();
        let states: Vec<TargetState> = targets
            .iter()
            .filter_map(|t| TargetState::parse(&t.state))
            .collect();
        let summary = PostSummary::of(&states);
        rows.push(PostRow {
            id: post.id.clone(),
            caption: if post.caption.is_empty() {
                "(no caption)".into()
            } else {
                post.caption.clone()
            },
            kind: post.kind.clone(),
            summary: summary.as_str().replace('_', " "),
            summary_class: summary.as_str(),
            states: targets
                .iter()
                .map(|t| format!("{} ({})", t.state, t.mode))
                .collect::<Vec<_>>()
                .join(", "),
            created: viewer.zone.when(Some(post.created_at)),
        });
    }
    let next = (list.len() == 25)
        .then(|| list.last().map(|p| p.id.clone()))
        .flatten();
    Ok(HistoryPage {
        chrome: Chrome::for_viewer(&state, &viewer, "Posts"),
        rows,
        next,
    }
    .into_response())
}

struct TargetRow {
    id: String,
    account: String,
    /// "TikTok" or "Instagram".
    platform: &'static str,
    /// Instagram: the published media's permalink and id.
    permalink: Option<String>,
    media_id: Option<String>,
    /// Instagram: the first comment's state, as a sentence.
    first_comment: Option<String>,
    mode: String,
    state: String,
    progress: String,
    provider_status: String,
    publish_id: String,
    post_ids: Vec<String>,
    error: Option<String>,
    retryable: bool,
    /// TikTok may have the post (its answer was lost): the two explicit actions instead of Retry.
    unknown: bool,
    cancellable: bool,
    published: bool,
    /// The preview as the composer showed it (`assets/preview.js`'s model, JSON), with the
    /// link to the post on the platform.
    preview: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "post_detail.html")]
struct DetailPage {
    chrome: Chrome,
    id: String,
    caption: String,
    kind: String,
    summary: String,
    summary_class: &'static str,
    created: String,
    targets: Vec<TargetRow>,
    live: bool,
    /// A scheduled post: when, shown in the zone it was scheduled in, and whether it can
    /// still be moved (no target has started).
    schedule: Option<ScheduleBox>,
    /// What members said about the post.
    comments: Vec<super::post_comments::CommentRow>,
    /// Some target has not started: the post can be edited (`/compose?post=`).
    editable: bool,
    /// Who changed what and when, newest first.
    history: Vec<HistoryRow>,
}

/// One entry of a post's history as the post page shows it.
struct HistoryRow {
    at: String,
    who: String,
    action: &'static str,
    lines: Vec<String>,
}

/// The most history entries the post page shows (the API pages through all of them).
const HISTORY_SHOWN: i64 = 50;

/// Who made a change, as a person reads it: a member's email, an API key's name (looked up
/// once for the page, [`tidepost_app::compose::comments::authors`]).
fn actor_name(
    authors: &std::collections::HashMap<String, tidepost_app::compose::comments::Author>,
    actor: Option<&str>,
) -> String {
    match actor.map(|a| authors.get(a)) {
        None => "tidepost".into(),
        Some(Some(a)) if a.kind == "api_key" => format!("API key “{}”", a.name),
        Some(Some(a)) => a.name.clone(),
        Some(None) => "(removed)".into(),
    }
}

/// A change as a line of text: what, for which account, before and after.
fn change_line(
    change: &tidepost_app::compose::history::Change,
    names: &std::collections::HashMap<String, String>,
    zone: Option<&str>,
) -> String {
    use serde_json::Value;
    let account = change.account_id.as_ref().map(|a| {
        names
            .get(a)
            .cloned()
            .unwrap_or_else(|| "(disconnected account)".into())
    });
    let time = |v: &Value| match v.as_str() {
        Some(text) => tidepost_app::compose::schedule::parse(text, None)
            .map(|w| tidepost_app::compose::schedule::spoken(w.at_ms, zone))
            .unwrap_or_else(|_| text.to_string()),
        None => "now".into(),
    };
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    match (change.field.as_str(), account) {
        ("post", _) => "Created".into(),
        ("caption", _) => format!(
            "Caption: “{}” → “{}”",
            text(&change.before),
            text(&change.after)
        ),
        ("media", _) => format!(
            "Media: {} item(s) → {} item(s)",
            change.before.as_array().map_or(0, Vec::len),
            change.after.as_array().map_or(0, Vec::len)
        ),
        ("scheduled_at", _) => format!("Time: {} → {}", time(&change.before), time(&change.after)),
        ("target", Some(account)) if change.before.is_null() => format!("{account} added"),
        ("target", Some(account)) => format!("{account} removed"),
        ("options", Some(account)) => format!("{account}: its caption or options changed"),
        ("state", Some(account)) => format!(
            "{account}: {} → {}",
            text(&change.before),
            text(&change.after)
        ),
        (field, Some(account)) => format!("{account}: {field} changed"),
        (field, None) => format!("{field} changed"),
    }
}

struct ScheduleBox {
    /// RFC 3339 in the viewer's zone.
    at: String,
    /// `YYYY-MM-DDTHH:MM` in that zone, for the date-time field.
    local: String,
    /// The viewer's zone.
    time_zone: String,
    /// The time in the zone the post was scheduled in, when that is another zone
    /// (`Tue 8 Dec 2026, 09:30 (America/New_York)`).
    set_in: Option<String>,
    movable: bool,
}

async fn detail(
    viewer: Viewer,
    State(state): State<HttpState>,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let ws = &viewer.workspace.id;
    let view = pipeline::get(&state.app, ws, &id)
        .await
        .map_err(page_error)?;
    let mut targets = Vec::new();
    for t in &view.targets {
        let account = accounts::get(&state.app.db, ws, &t.account_id)
            .await?
            .map(|a| a.display_name)
            .unwrap_or_else(|| "(disconnected account)".into());
        let target_state = TargetState::parse(&t.state).unwrap_or(TargetState::Failed);
        if t.platform == Platform::Instagram {
            let recorded = tidepost_store::instagram::get(&state.app.db, ws, &t.id).await?;
            let permalink = recorded.as_ref().and_then(|m| m.permalink.clone());
            let preview =
                super::preview::of(&state, &view.post, t, &account, permalink.clone()).await?;
            let comment = tidepost_store::instagram::first_comment(&state.app.db, ws, &t.id)
                .await?
                .map(|c| match (c.state.as_str(), c.comment_id, c.error) {
                    ("posted", Some(id), _) => format!("posted (comment id {id})"),
                    ("failed", _, error) => format!(
                        "not posted: {}",
                        error.unwrap_or_else(|| "no reason given".into())
                    ),
                    (_, _, Some(error)) => format!("waiting to be tried again ({error})"),
                    (state, _, _) => state.to_string(),
                });
            targets.push(TargetRow {
                first_comment: comment,
                id: t.id.clone(),
                account,
                platform: "Instagram",
                permalink,
                preview,
                media_id: recorded.and_then(|m| m.media_id),
                mode: match t.mode.as_str() {
                    "reel" => "Reel".into(),
                    "carousel" => "Carousel".into(),
                    "story" => "Story".into(),
                    _ => "Image".into(),
                },
                state: t.state.clone(),
                progress: if t.source == "upload" {
                    "Meta fetches the files from tidepost's signed, expiring links".into()
                } else {
                    "Meta downloads the media from its URL".into()
                },
                provider_status: t.provider_status.clone().unwrap_or_default(),
                publish_id: t.publish_id.clone().unwrap_or_default(),
                post_ids: t.post_ids(),
                error: t.error_message.clone(),
                retryable: target_state == TargetState::Failed,
                unknown: false,
                cancellable: target_state.cancellable(),
                published: target_state == TargetState::Published,
            });
            continue;
        }
        if t.platform == Platform::Threads {
            let recorded = tidepost_store::threads::get(&state.app.db, ws, &t.id).await?;
            let permalink = recorded.as_ref().and_then(|m| m.permalink.clone());
            let preview =
                super::preview::of(&state, &view.post, t, &account, permalink.clone()).await?;
            targets.push(TargetRow {
                first_comment: None,
                id: t.id.clone(),
                account,
                platform: "Threads",
                permalink,
                preview,
                media_id: recorded.and_then(|m| m.media_id),
                mode: match t.mode.as_str() {
                    "image" => "Image".into(),
                    "video" => "Video".into(),
                    "carousel" => "Carousel".into(),
                    _ => "Text".into(),
                },
                state: t.state.clone(),
                progress: match t.source.as_str() {
                    "upload" => {
                        "Threads fetches the files from tidepost's signed, expiring links".into()
                    }
                    _ if t.mode == "text" => "Text only: nothing to upload".into(),
                    _ => "Threads downloads the media from its URL".into(),
                },
                provider_status: t.provider_status.clone().unwrap_or_default(),
                publish_id: t.publish_id.clone().unwrap_or_default(),
                post_ids: t.post_ids(),
                error: t.error_message.clone(),
                retryable: target_state == TargetState::Failed,
                unknown: false,
                cancellable: target_state.cancellable(),
                published: target_state == TargetState::Published,
            });
            continue;
        }
        let link = t
            .post_ids()
            .first()
            .map(|id| tidepost_app::tiktok::post_url(id));
        let preview = super::preview::of(&state, &view.post, t, &account, link).await?;
        targets.push(TargetRow {
            preview,
            id: t.id.clone(),
            account,
            platform: "TikTok",
            permalink: None,
            media_id: None,
            first_comment: None,
            mode: if t.mode == "inbox" {
                "Draft in the creator's inbox".into()
            } else {
                "Direct post".into()
            },
            state: t.state.clone(),
            progress: if t.bytes_total > 0 {
                format!("{} of {} bytes sent to TikTok", t.bytes_sent, t.bytes_total)
            } else {
                "TikTok downloads the media itself".into()
            },
            provider_status: t.provider_status.clone().unwrap_or_default(),
            publish_id: t.publish_id.clone().unwrap_or_default(),
            post_ids: t.post_ids(),
            error: t.error_message.clone(),
            retryable: target_state == TargetState::Failed && !platforms::outcome_unknown(t),
            unknown: platforms::outcome_unknown(t),
            cancellable: target_state.cancellable(),
            published: target_state == TargetState::Published,
        });
    }
    let states: Vec<TargetState> = view
        .targets
        .iter()
        .filter_map(|t| TargetState::parse(&t.state))
        .collect();
    let live = states.iter().any(|s| !s.is_final());
    let schedule = view.post.scheduled_at.map(|at| {
        let zone = viewer.zone.name();
        let shown = tidepost_app::compose::schedule::show(at, Some(zone));
        ScheduleBox {
            local: shown.get(..16).unwrap_or_default().to_string(),
            at: shown,
            time_zone: zone.to_string(),
            set_in: view
                .post
                .time_zone
                .as_deref()
                .filter(|set| *set != zone)
                .map(|set| tidepost_app::compose::schedule::spoken(at, Some(set))),
            movable: !states.is_empty()
                && states
                    .iter()
                    .all(|s| matches!(s, TargetState::Queued | TargetState::Scheduled)),
        }
    });
    let names: std::collections::HashMap<String, String> = accounts::list(&state.app.db, ws)
        .await?
        .into_iter()
        .map(|a| (a.id, a.display_name))
        .collect();
    let zone = Some(viewer.zone.name());
    let entries =
        tidepost_app::compose::history::list(&state.app, ws, &id, None, HISTORY_SHOWN).await?;
    let authors = tidepost_app::compose::comments::authors(
        &state.app,
        ws,
        &entries
            .iter()
            .filter_map(|e| e.actor.as_deref())
            .collect::<Vec<_>>(),
    )
    .await?;
    let mut history = Vec::new();
    for entry in entries {
        history.push(HistoryRow {
            at: viewer.zone.when(Some(entry.at)),
            who: actor_name(&authors, entry.actor.as_deref()),
            action: entry.action.as_str(),
            lines: entry
                .changes
                .iter()
                .map(|c| change_line(c, &names, zone))
                .collect(),
        });
    }
    let editable = states
        .iter()
        .any(|s| matches!(s, TargetState::Queued | TargetState::Scheduled));
    Ok(DetailPage {
        editable,
        history,
        chrome: Chrome::for_viewer(&state, &viewer, "Posts"),
        id: view.post.id.clone(),
        caption: view.post.caption.clone(),
        kind: view.post.kind.clone(),
        summary: PostSummary::of(&states).as_str().replace('_', " "),
        summary_class: PostSummary::of(&states).as_str(),
        created: viewer.zone.when(Some(view.post.created_at)),
        targets,
        live,
        schedule,
        comments: super::post_comments::rows(&state, &viewer, &view.post.id).await?,
    }
    .into_response())
}

async fn cancel(
    viewer: Viewer,
    State(state): State<HttpState>,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, PageError> {
    viewer.check_csrf(&form.csrf)?;
    pipeline::cancel_by(&state.app, &viewer.workspace.id, &id, Some(&viewer.user.id))
        .await
        .map_err(page_error)?;
    Ok(Redirect::to(&format!("/posts/{id}")).into_response())
}

async fn retry(
    viewer: Viewer,
    State(state): State<HttpState>,
    Path((id, target)): Path<(String, String)>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, PageError> {
    viewer.check_csrf(&form.csrf)?;
    pipeline::retry(&state.app, &viewer.workspace.id, &id, &target)
        .await
        .map_err(page_error)?;
    Ok(Redirect::to(&format!("/posts/{id}")).into_response())
}

/// The "It is on TikTok" form: the video's link or id, optional.
#[derive(Deserialize)]
struct MarkPublishedForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    video: String,
}

/// The "It is not on TikTok" form: the confirmation box must be ticked.
#[derive(Deserialize)]
struct SendAgainForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    confirm: Option<String>,
}

async fn mark_published(
    viewer: Viewer,
    State(state): State<HttpState>,
    Path((id, target)): Path<(String, String)>,
    Form(form): Form<MarkPublishedForm>,
) -> Result<Response, PageError> {
    viewer.check_csrf(&form.csrf)?;
    let video = Some(form.video.as_str()).filter(|v| !v.trim().is_empty());
    reconcile::mark_published(&state.app, &viewer.workspace.id, &id, &target, video)
        .await
        .map_err(page_error)?;
    Ok(Redirect::to(&format!("/posts/{id}")).into_response())
}

async fn send_again(
    viewer: Viewer,
    State(state): State<HttpState>,
    Path((id, target)): Path<(String, String)>,
    Form(form): Form<SendAgainForm>,
) -> Result<Response, PageError> {
    viewer.check_csrf(&form.csrf)?;
    let confirmed = form.confirm.as_deref().is_some_and(|c| !c.is_empty());
    reconcile::send_again(&state.app, &viewer.workspace.id, &id, &target, confirmed)
        .await
        .map_err(page_error)?;
    Ok(Redirect::to(&format!("/posts/{id}")).into_response())
}
