//! Error pages keep the layout: a person who hits a refusal, a missing page or our own failure
//! still has the navigation (when signed in), the sandbox banner and a way back.
//!
//! Handlers answer a [`PageError`] without knowing who is looking; the page it renders alone
//! has no navigation. This layer sees the `PageError` the response carries and renders it again
//! with the viewer's [`Chrome`], read from the request's session cookie (one lookup, and only
//! for error pages).

use axum::extract::{FromRequestParts, Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::Response;

use super::Chrome;
use crate::auth::MaybeViewer;
use crate::error::PageError;
use crate::state::HttpState;

pub async fn layer(State(state): State<HttpState>, request: Request, next: Next) -> Response {
    let back = came_from(&state, request.headers());
    let cookies: Vec<_> = request
        .headers()
        .get_all(header::COOKIE)
        .iter()
        .cloned()
        .collect();
    let response = next.run(request).await;
    let Some(error) = response.extensions().get::<PageError>().cloned() else {
        return response;
    };
    let chrome = match viewer(&state, cookies).await {
        Some(viewer) => Chrome::for_viewer(&state, &viewer, ""),
        None => Chrome::anonymous(&state),
    };
    let (parts, _) = response.into_parts();
    let mut page = error.page(chrome, back);
    keep_headers(&parts.headers, page.headers_mut());
    page
}

/// The signed-in person, when the session cookie is live. A failing lookup (the database is
/// down: often the very error shown) is no one: the page still renders.
async fn viewer(
    state: &HttpState,
    cookies: Vec<axum::http::HeaderValue>,
) -> Option<crate::auth::Viewer> {
    if cookies.is_empty() {
        return None;
    }
    let mut request = axum::http::Request::new(());
    for cookie in cookies {
        request.headers_mut().append(header::COOKIE, cookie);
    }
    let (mut parts, ()) = request.into_parts();
    MaybeViewer::from_request_parts(&mut parts, state)
        .await
        .ok()
        .and_then(|m| m.0)
}

/// The page the request came from, when it is one of ours (its path and query): a refused form
/// sends the person back to it, with what they typed.
fn came_from(state: &HttpState, headers: &HeaderMap) -> Option<String> {
    let referer = headers.get(header::REFERER)?.to_str().ok()?;
    let url = url::Url::parse(referer).ok()?;
    // Ours: the public address, or the host this request was sent to.
    let public = url::Url::parse(&state.app.config.url("/")).ok()?;
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let authority = match url.port() {
        Some(port) => format!("{}:{port}", url.host_str()?),
        None => url.host_str()?.to_string(),
    };
    if url.origin() != public.origin() && host != Some(authority.as_str()) {
        return None;
    }
    let path = match url.query() {
        Some(query) => format!("{}?{query}", url.path()),
        None => url.path().to_string(),
    };
    crate::auth::safe_next(&path).map(str::to_string)
}

/// What the handler said besides the page (`Retry-After`, cookies it set or cleared, …) stays.
/// The page's own headers (its type, length and `Retry-After`) are not doubled.
fn keep_headers(from: &HeaderMap, to: &mut HeaderMap) {
    let own: Vec<_> = to.keys().cloned().collect();
    for (name, value) in from {
        if name == header::CONTENT_LENGTH || own.contains(name) {
            continue;
        }
        to.append(name.clone(), value.clone());
    }
}
