//! The dashboard: what is connected and how it is doing, or what to do first. Each TikTok
//! account's card is its widget: token health, direct posts left today, drafts waiting in the
//! creator's inbox and the latest posts with their states (tidepost's own records only: no
//! call to TikTok while the page loads).

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
    let mut cards = Vec::new();
    for account in accounts::list(&state.app.db, &viewer.workspace.id).await? {
        cards.push(AccountCard::with_stats(&state, &account, &viewer.zone).await?);
    }
    Ok(DashboardPage {
        chrome: Chrome::for_viewer(&state, &viewer, "Dashboard"),
        cards,
    })
}
