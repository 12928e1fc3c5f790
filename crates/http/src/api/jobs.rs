//! `/api/v1/jobs`: the workspace's background jobs (list, counts, one with its steps, retry,
//! cancel), and `POST /api/v1/jobs/run-due`, which lets an external scheduler drive the workers
//! (allowed only to API keys with the `worker` scope).

use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use tidepost_domain::time::rfc3339;
use tidepost_jobs::admin::{self, Filter, Page, Scope};
use tidepost_jobs::{Job, JobState};

use crate::auth::Caller;
use crate::error::Problem;
use crate::state::HttpState;

pub fn router() -> Router<HttpState> {
    Router::new()
        .route("/jobs", get(list))
        .route("/jobs/counts", get(counts))
        .route("/jobs/run-due", post(run_due))
        .route("/jobs/{id}", get(show))
        .route("/jobs/{id}/retry", post(retry))
        .route("/jobs/{id}/cancel", post(cancel))
}

/// A background job as the API shows it (built by [`job_json`]).
#[derive(serde::Serialize, utoipa::ToSchema)]
#[schema(as = Job)]
#[allow(dead_code)]
struct JobDoc {
    id: String,
    /// What the job does, e.g. `tiktok.publish`.
    #[schema(example = "tiktok.publish")]
    kind: String,
    /// `queued`, `running`, `succeeded`, `failed`, `dead` or `cancelled`.
    #[schema(example = "queued")]
    state: String,
    attempts: i64,
    /// Null: the job kind's retry policy decides.
    max_attempts: Option<i64>,
    last_error: Option<String>,
    /// RFC 3339: when it runs (again).
    run_at: String,
    created_at: String,
    updated_at: String,
    finished_at: Option<String>,
}

/// A job with the steps it recorded (`GET /api/v1/jobs/{id}`).
#[derive(serde::Serialize, utoipa::ToSchema)]
#[schema(as = JobWithSteps)]
#[allow(dead_code)]
struct JobStepsDoc {
    #[schema(inline)]
    #[serde(flatten)]
    job: JobDoc,
    steps: Vec<StepDoc>,
}

/// A non-repeatable side effect of a job, recorded once done.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[schema(as = JobStep)]
#[allow(dead_code)]
struct StepDoc {
    name: String,
    state: String,
    attempt: i64,
    updated_at: String,
}

/// A page of jobs, newest first; pass `next_cursor` as `after` for the next page.
#[derive(utoipa::ToSchema)]
#[schema(as = JobList)]
#[allow(dead_code)]
struct JobListDoc {
    data: Vec<JobDoc>,
    /// Absent (null) on the last page.
    next_cursor: Option<String>,
}

/// How many jobs of each kind are in each state.
#[derive(utoipa::ToSchema)]
#[schema(as = JobCounts)]
#[allow(dead_code)]
struct CountsDoc {
    data: Vec<CountDoc>,
}

#[derive(utoipa::ToSchema)]
#[schema(as = JobCount)]
#[allow(dead_code)]
struct CountDoc {
    kind: String,
    state: String,
    count: i64,
}

/// What `POST /api/v1/jobs/run-due` did.
#[derive(utoipa::ToSchema)]
#[schema(as = RunDueReport)]
#[allow(dead_code)]
struct RunDueDoc {
    report: RunReportDoc,
    /// True when no job failed.
    all_ok: bool,
}

#[derive(utoipa::ToSchema)]
#[schema(as = RunReport)]
#[allow(dead_code)]
struct RunReportDoc {
    claimed: i64,
    succeeded: i64,
    /// Failed and scheduled to try again.
    retrying: i64,
    dead: i64,
    /// Could not be settled: the lease was gone (the job will run again elsewhere).
    lost: i64,
    /// Given back unfinished at shutdown.
    released: i64,
}

pub fn job_json(job: &Job) -> Value {
    json!({
        "id": job.id,
        "kind": job.kind,
        "state": job.state.as_str(),
        "attempts": job.attempts,
        "max_attempts": job.max_attempts,
        "last_error": job.last_error,
        "run_at": rfc3339(job.run_at),
        "created_at": rfc3339(job.created_at),
        "updated_at": rfc3339(job.updated_at),
        "finished_at": job.finished_at.map(rfc3339),
    })
}

fn jobs_error(err: tidepost_jobs::Error) -> Problem {
    Problem::internal(err)
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// Only jobs in this state: `queued`, `running`, `succeeded`, `failed`, `dead` or `cancelled`.
    state: Option<String>,
    /// Only jobs of this kind.
    kind: Option<String>,
    /// The `next_cursor` of the previous page.
    after: Option<String>,
    /// At most this many jobs (1 to 200, default 50).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
}

#[utoipa::path(
    get, path = "/api/v1/jobs", tag = "jobs",
    params(ListQuery),
    responses(
        (status = 200, description = "A page of the workspace's jobs", body = JobListDoc),
        (status = 422, description = "An unknown state, or a limit out of range", body = Problem),
    ),
)]
async fn list(
    caller: Caller,
    State(state): State<HttpState>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, Problem> {
    caller.require_scope("api")?;
    let job_state = match q.state.as_deref() {
        None | Some("") => None,
        Some(s) => Some(s.parse::<JobState>().map_err(|_| {
            Problem::invalid(format!(
                "unknown state {s:?}: use queued, running, succeeded, failed, dead or cancelled"
            ))
        })?),
    };
    let limit = super::paging::limit(q.limit, 50)?;
    let filter = Filter {
        state: job_state,
        kind: q.kind.filter(|k| !k.is_empty()),
    };
    let page = Page {
        // At most MAX_LIMIT + 1: the extra job only says whether another page follows.
        limit: u32::try_from(limit + 1).unwrap_or(u32::MAX),
        after: q.after.filter(|a| !a.is_empty()),
    };
    let jobs = admin::list(
        &state.app.db,
        Scope::Workspace(&caller.workspace_id),
        &filter,
        &page,
    )
    .await
    .map_err(jobs_error)?;
    let (jobs, next) = super::paging::page(jobs, limit, |j| &j.id);
    Ok(Json(
        json!({"data": jobs.iter().map(job_json).collect::<Vec<_>>(), "next_cursor": next}),
    ))
}

#[utoipa::path(
    get, path = "/api/v1/jobs/counts", tag = "jobs",
    responses((status = 200, description = "How many of the workspace's jobs are in each state, per kind", body = CountsDoc)),
)]
async fn counts(caller: Caller, State(state): State<HttpState>) -> Result<Json<Value>, Problem> {
    caller.require_scope("api")?;
    let counts = admin::counts(&state.app.db, Scope::Workspace(&caller.workspace_id))
        .await
        .map_err(jobs_error)?;
    Ok(Json(json!({"data": counts})))
}

#[utoipa::path(
    get, path = "/api/v1/jobs/{id}", tag = "jobs",
    params(("id" = String, Path, description = "The job's id")),
    responses(
        (status = 200, description = "The job and its recorded steps", body = JobStepsDoc),
        (status = 404, description = "No such job in this workspace", body = Problem),
    ),
)]
async fn show(
    caller: Caller,
    State(state): State<HttpState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, Problem> {
    caller.require_scope("api")?;
    let scope = Scope::Workspace(&caller.workspace_id);
    let job = admin::get(&state.app.db, scope, &id)
        .await
        .map_err(jobs_error)?
        .ok_or_else(|| Problem::not_found("job"))?;
    let steps = admin::steps(&state.app.db, scope, &id)
        .await
        .map_err(jobs_error)?;
    let mut out = job_json(&job);
    out["steps"] = json!(steps
        .iter()
        .map(|s| json!({"name": s.name, "state": s.state, "attempt": s.attempt, "updated_at": rfc3339(s.updated_at)}))
        .collect::<Vec<_>>());
    Ok(Json(out))
}

#[utoipa::path(
    post, path = "/api/v1/jobs/{id}/retry", tag = "jobs",
    params(("id" = String, Path, description = "The job's id")),
    responses(
        (status = 200, description = "The job, queued again", body = JobDoc),
        (status = 404, description = "No such job in this workspace", body = Problem),
        (status = 409, description = "Only failed or dead jobs can be retried", body = Problem),
    ),
)]
async fn retry(
    caller: Caller,
    State(state): State<HttpState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, Problem> {
    act(caller, state, id, Action::Retry).await
}

#[utoipa::path(
    post, path = "/api/v1/jobs/{id}/cancel", tag = "jobs",
    params(("id" = String, Path, description = "The job's id")),
    responses(
        (status = 200, description = "The job, cancelled", body = JobDoc),
        (status = 404, description = "No such job in this workspace", body = Problem),
        (status = 409, description = "Only jobs waiting to run can be cancelled", body = Problem),
    ),
)]
async fn cancel(
    caller: Caller,
    State(state): State<HttpState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, Problem> {
    act(caller, state, id, Action::Cancel).await
}

#[derive(Clone, Copy)]
pub(crate) enum Action {
    Retry,
    Cancel,
}

/// Retries or cancels a job of the workspace; a job in the wrong state is a 409 that says why.
pub(crate) async fn apply(
    state: &HttpState,
    workspace_id: &str,
    id: &str,
    action: Action,
) -> Result<Job, Problem> {
    let scope = Scope::Workspace(workspace_id);
    let db = &state.app.db;
    let job = admin::get(db, scope, id)
        .await
        .map_err(jobs_error)?
        .ok_or_else(|| Problem::not_found("job"))?;
    let done = match action {
        Action::Retry => admin::retry(&state.app.queue, scope, id).await,
        Action::Cancel => admin::cancel(&state.app.queue, scope, id).await,
    }
    .map_err(jobs_error)?;
    if !done {
        let what = match action {
            Action::Retry => "only failed or dead jobs can be retried",
            Action::Cancel => "only jobs waiting to run can be cancelled",
        };
        return Err(Problem::conflict(format!(
            "{what}; this one is {}",
            job.state.as_str()
        )));
    }
    admin::get(db, scope, id)
        .await
        .map_err(jobs_error)?
        .ok_or_else(|| Problem::not_found("job"))
}

async fn act(
    caller: Caller,
    state: HttpState,
    id: String,
    action: Action,
) -> Result<Json<Value>, Problem> {
    caller.require_scope("api")?;
    Ok(Json(job_json(
        &apply(&state, &caller.workspace_id, &id, action).await?,
    )))
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct RunDue {
    /// Only jobs of these kinds (default: every kind).
    #[serde(default)]
    kinds: Vec<String>,
    /// At most this many jobs (1 to 1000, default 100).
    #[schema(minimum = 1, maximum = 1000)]
    max: Option<usize>,
}

/// Runs the jobs that are due (every workspace's: this is the workers' trigger, not a tenant
/// view) and reports what happened.
#[utoipa::path(
    post, path = "/api/v1/jobs/run-due", tag = "jobs",
    request_body(content = Option<RunDue>, description = "Optional: which kinds and how many (an empty body runs up to 100 due jobs of any kind)"),
    responses(
        (status = 200, description = "What ran (every workspace's due jobs: this is the workers' trigger; needs the `worker` scope)", body = RunDueDoc),
        (status = 422, description = "An unknown kind, or max out of range", body = Problem),
    ),
)]
async fn run_due(
    caller: Caller,
    State(state): State<HttpState>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, Problem> {
    caller.require_scope("worker")?;
    let body: RunDue = if body.iter().all(u8::is_ascii_whitespace) {
        RunDue::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            Problem::bad_request(format!("the body is not valid JSON for this route: {e}"))
        })?
    };
    let max = body.max.unwrap_or(100);
    if !(1..=1000).contains(&max) {
        return Err(Problem::invalid("max must be from 1 to 1000"));
    }
    let registry = tidepost_app::work::registry(&state.app);
    if let Some(unknown) = body.kinds.iter().find(|k| !registry.kinds().contains(k)) {
        return Err(Problem::invalid(format!("unknown job kind {unknown:?}")));
    }
    let kinds = (!body.kinds.is_empty()).then_some(body.kinds.as_slice());
    let report = tidepost_jobs::drain_due(&state.app.queue, &registry, kinds, max)
        .await
        .map_err(jobs_error)?;
    Ok(Json(json!({"report": report, "all_ok": report.all_ok()})))
}
