//! The Jobs page: the workspace's background work by kind and state, the failing and dead jobs
//! with their errors, and retry / cancel.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;
use tidepost_jobs::JobState;
use tidepost_jobs::admin::{self, Filter, Page, Scope};

use super::Chrome;
use crate::api::jobs::{Action, apply};
use crate::auth::{CsrfForm, Viewer};
use crate::error::PageError;
use crate::state::HttpState;

pub fn router() -> Router<HttpState> {
    Router::new()
        .route("/jobs", get(page))
        .route("/jobs/{id}/retry", post(retry))
        .route("/jobs/{id}/cancel", post(cancel))
}

struct CountRow {
    kind: String,
    queued: i64,
    running: i64,
    succeeded: i64,
    failed: i64,
    dead: i64,
    cancelled: i64,
}

struct JobRow {
    id: String,
    kind: String,
    state: &'static str,
    state_class: &'static str,
    attempts: i64,
    error: String,
    when: String,
    can_retry: bool,
    can_cancel: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "jobs.html")]
struct JobsPage {
    chrome: Chrome,
    counts: Vec<CountRow>,
    jobs: Vec<JobRow>,
    showing: String,
    notice: Option<String>,
}

#[derive(Deserialize, Default)]
struct JobsQuery {
    state: Option<String>,
    done: Option<String>,
}

fn jobs_error(err: tidepost_jobs::Error) -> PageError {
    PageError::internal(err)
}

async fn page(
    State(state): State<HttpState>,
    viewer: Viewer,
    Query(q): Query<JobsQuery>,
) -> Result<JobsPage, PageError> {
    let scope = Scope::Workspace(&viewer.workspace.id);
    let mut counts: Vec<CountRow> = Vec::new();
    for c in admin::counts(&state.app.db, scope)
        .await
        .map_err(jobs_error)?
    {
        let row = match counts.iter_mut().find(|r| r.kind == c.kind) {
            Some(row) => row,
            None => {
                counts.push(CountRow {
                    kind: c.kind.clone(),
                    queued: 0,
                    running: 0,
                    succeeded: 0,
                    failed: 0,
                    dead: 0,
                    cancelled: 0,
                });
                counts.last_mut().expect("just pushed")
            }
        };
        let slot = match c.state {
            JobState::Queued => &mut row.queued,
            JobState::Running => &mut row.running,
            JobState::Succeeded => &mut row.succeeded,
            JobState::Failed => &mut row.failed,
            JobState::Dead => &mut row.dead,
            JobState::Cancelled => &mut row.cancelled,
        };
        *slot += c.count;
    }
    // By default the page shows what needs attention: failing and dead jobs.
    let wanted: Vec<JobState> = match q.state.as_deref().and_then(|s| s.parse().ok()) {
        Some(one) => vec![one],
        None => vec![JobState::Dead, JobState::Failed],
    };
    let mut jobs = Vec::new();
    for job_state in &wanted {
        let filter = Filter {
            state: Some(*job_state),
            kind: None,
        };
        jobs.extend(
            admin::list(
                &state.app.db,
                scope,
                &filter,
                &Page {
                    limit: 100,
                    after: None,
                },
            )
            .await
            .map_err(jobs_error)?,
        );
    }
    let rows = jobs
        .into_iter()
        .map(|j| JobRow {
            state_class: match j.state {
                JobState::Dead => "bad",
                JobState::Failed => "warn",
                JobState::Succeeded => "ok",
                JobState::Queued | JobState::Running | JobState::Cancelled => "",
            },
            state: j.state.as_str(),
            can_retry: matches!(j.state, JobState::Failed | JobState::Dead),
            can_cancel: matches!(j.state, JobState::Queued | JobState::Failed),
            attempts: j.attempts,
            // A wait is never stored as an error; a succeeded job's error is of an attempt
            // before the one that succeeded, and says so.
            error: match (j.state, j.last_error) {
                (_, None) => String::new(),
                (JobState::Succeeded, Some(e)) => format!("Earlier attempt: {e}"),
                (
                    JobState::Queued
                    | JobState::Running
                    | JobState::Failed
                    | JobState::Dead
                    | JobState::Cancelled,
                    Some(e),
                ) => e,
            },
            when: viewer.zone.when(Some(j.updated_at)),
            kind: j.kind,
            id: j.id,
        })
        .collect();
    let showing = wanted
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(" and ");
    let notice = q.done.map(|d| format!("Job {d}."));
    Ok(JobsPage {
        chrome: Chrome::for_viewer(&state, &viewer, "Jobs"),
        counts,
        jobs: rows,
        showing,
        notice,
    })
}

async fn act(
    state: HttpState,
    viewer: Viewer,
    id: String,
    csrf: String,
    action: Action,
) -> Result<Response, PageError> {
    viewer.check_csrf(&csrf)?;
    match apply(&state, &viewer.workspace.id, &id, action).await {
        Ok(_) => {
            let done = match action {
                Action::Retry => "queued again",
                Action::Cancel => "cancelled",
            };
            Ok(Redirect::to(&format!("/jobs?done={}", done.replace(' ', "+"))).into_response())
        }
        Err(problem) => Err(
            PageError::new(problem.status, problem.title, problem.detail)
                .with_retry_after(problem.retry_after_secs),
        ),
    }
}

async fn retry(
    State(state): State<HttpState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, PageError> {
    act(state, viewer, id, form.csrf, Action::Retry).await
}

async fn cancel(
    State(state): State<HttpState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, PageError> {
    act(state, viewer, id, form.csrf, Action::Cancel).await
}
