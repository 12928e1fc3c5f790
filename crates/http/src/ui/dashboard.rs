//! The dashboard: what is connected and how it is doing, or what to do first.

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::State;
use axum::routing::get;
use tidepost_store::accounts;

use super::Chrome;
use super::accounts::AccountCard;
use crate::auth::Viewer;
use crate::error::PageError;
use crate::state::HttpState;

pub fn router() -> Router<HttpState> {
    Router::new().route("/", get(dashboard))
}

#[derive(Template, WebTemplate)]
#[template(path = "dashboard.html")]
struct DashboardPage {
    chrome: Chrome,
    cards: Vec<AccountCard>,
}

async fn dashboard(
    State(state): State<HttpState>,
    viewer: Viewer,
) -> Result<DashboardPage, PageError> {
    let cards = accounts::list(&state.app.db, &viewer.workspace.id)
        .await?
        .iter()
        .map(AccountCard::of)
        .collect();
    Ok(DashboardPage {
        chrome: Chrome::for_viewer(&state, &viewer, "Dashboard"),
        cards,
    })
}
