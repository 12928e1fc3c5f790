//! The web UI: server-rendered pages (askama templates in `templates/`), one module a page
//! group. Every form carries the session's CSRF token; every page that takes an id looks it up
//! within the viewer's workspace and answers 404 otherwise.

pub mod accounts;
mod api_docs;
mod calendar;
mod compose;
mod crm;
mod dashboard;
mod drafts;
pub mod error_chrome;
pub mod flash;
mod jobs;
mod media;
mod members;
mod post_comments;
mod posts;
mod preview;
mod session;
mod settings;
mod time_zone;
mod webhooks;

use axum::Router;
use axum::http::Uri;
use axum::response::{IntoResponse, Response};

use crate::auth::Viewer;
use crate::error::PageError;
use crate::state::HttpState;

pub fn router() -> Router<HttpState> {
    Router::new()
        .merge(session::router())
        .merge(accounts::router())
        .merge(api_docs::router())
        .merge(calendar::router())
        .merge(compose::router())
        .merge(drafts::router())
        .merge(crm::router())
        .merge(dashboard::router())
        .merge(jobs::router())
        .merge(media::router())
        .merge(members::router())
        .merge(posts::router())
        .merge(post_comments::router())
        .merge(settings::router())
        .merge(time_zone::router())
        .merge(webhooks::router())
}

/// Paths no route matches: an HTML page, or problem+json under `/api`.
pub async fn not_found(uri: Uri) -> Response {
    if uri.path() == "/api" || uri.path().starts_with("/api/") {
        return crate::api::unknown_route().await.into_response();
    }
    PageError::not_found().into_response()
}

/// What the layout needs on every page: who is signed in, the CSRF token for its forms, the
/// sandbox banner and which navigation item is current.
#[derive(Debug, Clone)]
pub struct Chrome {
    pub user_email: Option<String>,
    pub workspace: String,
    pub csrf: String,
    pub sandbox: bool,
    pub active: &'static str,
    pub version: &'static str,
    /// The zone the viewer sees times in.
    pub zone: String,
    /// The viewer's role: the navigation shows only the pages it opens.
    pub role: Option<tidepost_domain::Role>,
}

impl Chrome {
    pub fn for_viewer(state: &HttpState, viewer: &Viewer, active: &'static str) -> Self {
        Self {
            user_email: Some(viewer.user.email.clone()),
            workspace: viewer.workspace.name.clone(),
            csrf: viewer.csrf().to_string(),
            sandbox: state.app.config.sandbox,
            active,
            version: env!("CARGO_PKG_VERSION"),
            zone: viewer.zone.name().to_string(),
            role: Some(viewer.role),
        }
    }

    /// [`Chrome::for_viewer`] when someone is signed in, else [`Chrome::anonymous`] (the pages
    /// that people without a session reach too: OAuth callbacks, a connect link's pages).
    pub fn for_maybe_viewer(
        state: &HttpState,
        viewer: &Option<Viewer>,
        active: &'static str,
    ) -> Self {
        match viewer {
            Some(v) => Self::for_viewer(state, v, active),
            None => Self::anonymous(state),
        }
    }

    /// No one signed in and no banner: what a page has before [`error_chrome`] knows better.
    pub fn bare() -> Self {
        Self {
            user_email: None,
            workspace: String::new(),
            csrf: String::new(),
            sandbox: false,
            active: "",
            version: env!("CARGO_PKG_VERSION"),
            zone: "UTC".into(),
            role: None,
        }
    }

    pub fn anonymous(state: &HttpState) -> Self {
        Self {
            user_email: None,
            workspace: String::new(),
            csrf: String::new(),
            sandbox: state.app.config.sandbox,
            active: "",
            version: env!("CARGO_PKG_VERSION"),
            zone: "UTC".into(),
            role: None,
        }
    }

    /// The main navigation, in order.
    /// The navigation's links the viewer's role opens (every one's rule in `roles.rs`).
    pub fn nav_items(&self) -> Vec<(&'static str, &'static str)> {
        let opens = |href: &str| {
            let path = href.split('#').next().unwrap_or(href);
            match (
                crate::roles::rule_for(&axum::http::Method::GET, path),
                self.role,
            ) {
                (Some(crate::roles::Rule::Public), _) => true,
                (Some(crate::roles::Rule::Needs(p)), Some(role)) => role.allows(p),
                (Some(crate::roles::Rule::Needs(_)), None) | (None, _) => false,
            }
        };
        Self::NAV
            .iter()
            .copied()
            .filter(|(href, _)| opens(href))
            .collect()
    }

    const NAV: &'static [(&'static str, &'static str)] = &[
        ("/", "Dashboard"),
        ("/compose", "Compose"),
        ("/drafts", "Drafts"),
        ("/posts", "Posts"),
        ("/calendar", "Calendar"),
        ("/posts/scheduled", "Schedule"),
        ("/accounts", "Accounts"),
        ("/media", "Media"),
        ("/creators", "Creators"),
        ("/contacts", "Contacts"),
        ("/inbox", "Inbox"),
        ("/jobs", "Jobs"),
        ("/settings/webhooks", "Webhooks"),
        ("/settings#keys", "API keys"),
        ("/settings/members", "Members"),
        ("/settings", "Settings"),
    ];
}
