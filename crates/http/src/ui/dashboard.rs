//! The dashboard: what is connected and what happens, or what to do first.

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::State;
use axum::routing::get;

use super::Chrome;
use crate::auth::Viewer;
use crate::state::HttpState;

pub fn router() -> Router<HttpState> {
    Router::new().route("/", get(dashboard))
}

#[derive(Template, WebTemplate)]
#[template(path = "dashboard.html")]
struct DashboardPage {
    chrome: Chrome,
}

async fn dashboard(State(state): State<HttpState>, viewer: Viewer) -> DashboardPage {
    DashboardPage {
        chrome: Chrome::for_viewer(&state, &viewer, "Dashboard"),
    }
}
