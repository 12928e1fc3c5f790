//! `POST /api/v1/posts/validate`: the checks of `POST /posts` with several targets, without
//! storing anything — what the composer page calls as a person edits, so every problem shows
//! next to the account it concerns before they press "Publish".
//!
//! It takes the composite shape of `POST /posts` (`caption`, `media`, `targets`, `scheduled_at`,
//! `time_zone`, `schedule`) and answers `200` with `valid`, every issue at once (the same
//! `errors` a refused `POST /posts` carries) and, when valid, when each target would go out.
//! A body that is not that shape is a `400`/`422` problem like any other.

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tidepost_app::compose::{self, ComposeError, Issue, NewComposite, TargetSpec};
use tidepost_app::pipeline::media::Item;
use tidepost_domain::Platform;

use super::ApiJson;
use crate::auth::Caller;
use crate::error::Problem;
use crate::state::HttpState;

pub fn router() -> Router<HttpState> {
    Router::new().route("/posts/validate", post(validate))
}

/// What `POST /posts/validate` checks: a post to several accounts as `POST /posts` takes it.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ValidateRequest {
    /// The caption every target uses unless it has its own.
    caption: String,
    /// The shared media: `{url | media_id, kind?}` each.
    #[schema(value_type = Vec<Object>)]
    media: Vec<Item>,
    /// One per account: `{account_id, caption?, tiktok?{…}, instagram?{…}}`.
    #[schema(value_type = Vec<Object>)]
    targets: Vec<TargetSpec>,
    /// RFC 3339 with an offset, or a local time with `time_zone`.
    scheduled_at: Option<String>,
    /// An IANA zone name (`Europe/Paris`) for a local `scheduled_at`.
    time_zone: Option<String>,
    /// `exact` (the default) or `next_free_slot`.
    schedule: Option<String>,
}

/// One problem, named by the target (its index in `targets`) and the rule it breaks.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ValidationIssue {
    target: Option<usize>,
    account_id: Option<String>,
    platform: Option<Platform>,
    field: String,
    rule: String,
    message: String,
    /// For a limit refusal: when the next slot opens (RFC 3339).
    next_slot_at: Option<String>,
}

impl From<&Issue> for ValidationIssue {
    fn from(i: &Issue) -> Self {
        Self {
            target: i.target,
            account_id: i.account_id.clone(),
            platform: i.platform,
            field: i.field.clone(),
            rule: i.rule.clone(),
            message: i.message.clone(),
            next_slot_at: i.next_slot_ms.map(tidepost_domain::time::rfc3339),
        }
    }
}

/// When one target of a valid post would go out.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PlannedTargetDoc {
    account_id: String,
    platform: Platform,
    /// RFC 3339; `null`: as soon as it is accepted.
    run_at: Option<String>,
}

/// The verdict.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Validation {
    valid: bool,
    errors: Vec<ValidationIssue>,
    /// Empty unless valid.
    targets: Vec<PlannedTargetDoc>,
}

/// Checks a post to several accounts without storing it.
#[utoipa::path(
    post, path = "/api/v1/posts/validate", tag = "posts",
    request_body = ValidateRequest,
    responses(
        (status = 200, description = "The verdict: every problem at once, or when each target would go out", body = Validation),
        (status = 422, description = "The schedule fields do not parse (named in `field`)", body = Problem),
    ),
)]
async fn validate(
    caller: Caller,
    State(state): State<HttpState>,
    ApiJson(body): ApiJson<ValidateRequest>,
) -> Result<Json<Validation>, Problem> {
    caller.require_scope("api")?;
    let schedule = super::posts::schedule_of(
        body.scheduled_at.as_deref(),
        body.time_zone.as_deref(),
        body.schedule.as_deref(),
    )?;
    let new = NewComposite {
        caption: body.caption,
        media: body.media,
        targets: body.targets,
        schedule,
        idempotency_key: None,
        created_by: None,
    };
    match compose::validate(&state.app, &caller.workspace_id, &new).await {
        Ok(plan) => Ok(Json(Validation {
            valid: true,
            errors: Vec::new(),
            targets: plan
                .targets
                .iter()
                .map(|t| PlannedTargetDoc {
                    account_id: t.spec.account_id.clone(),
                    platform: t.prepared.account.platform,
                    run_at: t.run_at.map(tidepost_domain::time::rfc3339),
                })
                .collect(),
        })),
        Err(ComposeError::Invalid(issues)) => Ok(Json(Validation {
            valid: false,
            errors: issues.iter().map(ValidationIssue::from).collect(),
            targets: Vec::new(),
        })),
        Err(other) => Err(super::posts::compose_problem(other)),
    }
}
