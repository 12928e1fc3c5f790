//! `POST /api/v1/posts/validate`: the checks of `POST /posts`, without storing anything —
//! what the composer page calls as a person edits, so every problem shows next to the account
//! it concerns before they press "Publish".
//!
//! It takes every body `POST /posts` takes (read by the same [`super::body`]: one account or
//! `targets[]`, JSON or multipart; a `file` part is refused, since validating stores nothing:
//! give the `media_id` of an upload) and answers `200` with `valid`, every issue at once (the
//! same `errors` a refused `POST /posts` carries) and, when valid, when each target would go
//! out. A body `POST /posts` would refuse before checking the post (a malformed field) is the
//! same `400`/`422` problem here.

use axum::Json;
use axum::extract::{Request, State};
use serde::Serialize;
use tidepost_app::compose::{self, ComposeError, Issue, ProviderRefusal};
use tidepost_domain::Platform;

use super::body::{self, Files, Shape};
use super::problems::{compose_problem, single_issues, single_problem};
use crate::auth::Caller;
use crate::error::Problem;
use crate::state::HttpState;

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
    /// For a platform's refusal: its code and whether trying again may work.
    provider: Option<ProviderRefusal>,
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
            provider: i.provider.clone(),
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

/// Checks a post without storing it.
#[utoipa::path(
    post, path = "/api/v1/posts/validate", tag = "posts",
    request_body(content = super::docs::CreatePostDoc, description = "Any body `POST /api/v1/posts` takes (JSON, or multipart/form-data without `file` parts)"),
    responses(
        (status = 200, description = "The verdict: every problem at once, or when each target would go out", body = Validation),
        (status = 422, description = "A field does not parse (named in `field`), as `POST /api/v1/posts` would answer", body = Problem),
        (status = 503, description = "The platform is not answering right now (its rate limit or a 5xx while the post was checked): `Retry-After` says when to try again", body = Problem),
    ),
)]
pub(crate) async fn validate(
    caller: Caller,
    State(state): State<HttpState>,
    request: Request,
) -> Result<Json<Validation>, Problem> {
    caller.require_scope("api")?;
    let submission = body::read(&state, &caller.workspace_id, request, Files::Refuse, None).await?;
    match compose::validate(&state.app, &caller.workspace_id, &submission.new).await {
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
        // The platform could not be asked: no verdict, the same 503 `POST /posts` answers.
        Err(ComposeError::Invalid(issues)) if Issue::only_provider_trouble(&issues).is_some() => {
            Err(match submission.shape {
                Shape::Composite => compose_problem(ComposeError::Invalid(issues)),
                Shape::Single(platform) => single_problem(ComposeError::Invalid(issues), platform),
            })
        }
        Err(ComposeError::Invalid(issues)) => {
            let issues = match submission.shape {
                Shape::Composite => issues,
                Shape::Single(platform) => single_issues(issues, platform),
            };
            Ok(Json(Validation {
                valid: false,
                errors: issues.iter().map(ValidationIssue::from).collect(),
                targets: Vec::new(),
            }))
        }
        Err(other) => Err(match submission.shape {
            Shape::Composite => compose_problem(other),
            Shape::Single(platform) => single_problem(other, platform),
        }),
    }
}
