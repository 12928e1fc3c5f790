//! OAuth callbacks. The provider sends the person back here with `code` and `state` (or an
//! error); every refusal is a readable page and stores nothing.

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use tidepost_app::connect::{Callback, CallbackSession};

use crate::auth::MaybeViewer;
use crate::error::{PageError, capitalize};
use crate::state::HttpState;
use crate::ui::Chrome;

pub fn router() -> Router<HttpState> {
    Router::new()
        .route("/oauth/tiktok/callback", get(tiktok_callback))
        .route("/oauth/threads/callback", get(threads_callback))
}

#[derive(Template, WebTemplate)]
#[template(path = "connected.html")]
struct ConnectedPage {
    chrome: Chrome,
    platform: &'static str,
    name: String,
}

async fn tiktok_callback(
    State(state): State<HttpState>,
    MaybeViewer(viewer): MaybeViewer,
    Query(callback): Query<Callback>,
) -> Response {
    let session = viewer.as_ref().map(|v| CallbackSession {
        workspace_id: &v.workspace.id,
        user_id: &v.user.id,
    });
    let link = match crate::connect_links::link_of(&state, callback.state.as_deref()).await {
        Ok(link) => link,
        Err(e) => return e.into_response(),
    };
    let finished = tidepost_app::tiktok::connect::finish(&state.app, &callback, session).await;
    if let Some(link) = link {
        let chrome = Chrome::for_maybe_viewer(&state, &viewer, "Accounts");
        return crate::connect_links::land(&state, chrome, link, "TikTok", finished.map(|_| ()))
            .await;
    }
    match finished {
        Ok(account) if viewer.is_some() => {
            Redirect::to(&format!("/accounts/{}?connected=1", account.id)).into_response()
        }
        Ok(account) => ConnectedPage {
            chrome: Chrome::anonymous(&state),
            platform: "TikTok",
            name: account.display_name,
        }
        .into_response(),
        Err(err) if err.is_refusal() => {
            tracing::info!(reason = %err, "TikTok connection refused");
            PageError::new(
                StatusCode::BAD_REQUEST,
                "TikTok was not connected",
                format!("{}.", capitalize(&err.to_string())),
            )
            .with_action("/connect/tiktok", "Try again")
            .into_response()
        }
        Err(err) => PageError::internal(err).into_response(),
    }
}

/// Threads' callback: the code exchanged for a short-lived then a long-lived token, the
/// profile stored; every refusal a page with "Try again".
async fn threads_callback(
    State(state): State<HttpState>,
    MaybeViewer(viewer): MaybeViewer,
    Query(callback): Query<Callback>,
) -> Response {
    let session = viewer.as_ref().map(|v| CallbackSession {
        workspace_id: &v.workspace.id,
        user_id: &v.user.id,
    });
    let link = match crate::connect_links::link_of(&state, callback.state.as_deref()).await {
        Ok(link) => link,
        Err(e) => return e.into_response(),
    };
    let finished = tidepost_app::threads::connect::finish(&state.app, &callback, session).await;
    if let Some(link) = link {
        let chrome = Chrome::for_maybe_viewer(&state, &viewer, "Accounts");
        return crate::connect_links::land(&state, chrome, link, "Threads", finished.map(|_| ()))
            .await;
    }
    match finished {
        Ok(account) if viewer.is_some() => {
            Redirect::to(&format!("/accounts/{}?connected=1", account.id)).into_response()
        }
        Ok(account) => ConnectedPage {
            chrome: Chrome::anonymous(&state),
            platform: "Threads",
            name: account.display_name,
        }
        .into_response(),
        Err(err) if err.is_refusal() => {
            tracing::info!(reason = %err, "Threads connection refused");
            PageError::new(
                StatusCode::BAD_REQUEST,
                "Threads was not connected",
                format!("{}.", capitalize(&err.to_string())),
            )
            .with_action("/connect/threads", "Try again")
            .into_response()
        }
        Err(err) => PageError::internal(err).into_response(),
    }
}
