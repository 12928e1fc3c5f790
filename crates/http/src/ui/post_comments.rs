//! Comments on a post's page: the latest, oldest first as a conversation reads, and the form
//! that adds one (`POST /posts/{id}/comments`, back to the post's comments).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::post;
use axum::{Form, Router};
use serde::Deserialize;
use tidepost_app::compose::comments::{self, CommentError, CommentText};

use crate::auth::Viewer;
use crate::error::PageError;
use crate::state::HttpState;

pub fn router() -> Router<HttpState> {
    Router::new().route("/posts/{id}/comments", post(add))
}

/// How many comments a post's page shows (the API pages through all of them).
const SHOWN: i64 = 100;

/// A comment as the post's page shows it.
pub struct CommentRow {
    pub author: String,
    pub when: String,
    pub body: String,
}

/// The post's latest comments, oldest first, with who wrote them and when (in the viewer's
/// zone).
pub async fn rows(
    state: &HttpState,
    viewer: &Viewer,
    post_id: &str,
) -> Result<Vec<CommentRow>, PageError> {
    let ws = &viewer.workspace.id;
    let mut found = match comments::list(&state.app, ws, post_id, None, SHOWN).await {
        Ok(found) => found,
        Err(CommentError::NotFound(_)) => return Err(PageError::not_found()),
        Err(CommentError::Store(e)) => return Err(PageError::from(e)),
        Err(other @ (CommentError::Empty | CommentError::TooLong(_))) => {
            return Err(PageError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "The comments could not be read",
                other.to_string(),
            ));
        }
    };
    found.reverse();
    let authors = comments::authors(
        &state.app,
        ws,
        &found.iter().map(|c| c.author.as_str()).collect::<Vec<_>>(),
    )
    .await?;
    Ok(found
        .into_iter()
        .map(|c| CommentRow {
            author: match authors.get(&c.author) {
                Some(a) if a.kind == "api_key" => format!("{} (API key)", a.name),
                Some(a) => a.name.clone(),
                None => "(removed)".into(),
            },
            when: viewer.zone.when(Some(c.created_at)),
            body: c.body,
        })
        .collect())
}

#[derive(Deserialize)]
struct CommentForm {
    /// Missing is the same as wrong: `check_csrf` answers with the "form has expired" page.
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    body: String,
}

async fn add(
    viewer: Viewer,
    State(state): State<HttpState>,
    Path(id): Path<String>,
    Form(form): Form<CommentForm>,
) -> Result<Response, PageError> {
    viewer.check_csrf(&form.csrf)?;
    // Another workspace's post (or none) is a 404 before the form is read.
    if tidepost_store::posts::get(&state.app.db, &viewer.workspace.id, &id)
        .await?
        .is_none()
    {
        return Err(PageError::not_found());
    }
    let refused = |message: String| {
        PageError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "The comment was not added",
            crate::error::capitalize(&message),
        )
        .with_action(format!("/posts/{id}#comments"), "Back to the post")
    };
    let text = CommentText::parse(&form.body).map_err(|e| refused(e.to_string()))?;
    match comments::add(&state.app, &viewer.workspace.id, &id, &viewer.user.id, text).await {
        Ok(_) => Ok(Redirect::to(&format!("/posts/{id}#comments")).into_response()),
        Err(CommentError::NotFound(_)) => Err(PageError::not_found()),
        Err(CommentError::Store(e)) => Err(PageError::from(e)),
        Err(other @ (CommentError::Empty | CommentError::TooLong(_))) => {
            Err(refused(other.to_string()))
        }
    }
}
