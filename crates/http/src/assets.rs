//! Static assets, compiled into the binary: no CDN, nothing to deploy beside it.

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::state::HttpState;

const ASSETS: &[(&str, &str, &str)] = &[
    (
        "app.css",
        "text/css; charset=utf-8",
        include_str!("../assets/app.css"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/app.js"),
    ),
    (
        "tus_upload.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/tus_upload.js"),
    ),
    (
        "preview.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/preview.js"),
    ),
    (
        "compose.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/compose.js"),
    ),
    (
        "calendar.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/calendar.js"),
    ),
    (
        "tidepost-account.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/tidepost-account.js"),
    ),
    (
        "favicon.svg",
        "image/svg+xml",
        include_str!("../assets/favicon.svg"),
    ),
];

pub fn router() -> Router<HttpState> {
    Router::new().route("/assets/{name}", get(asset))
}

async fn asset(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|(n, _, _)| *n == name) {
        Some((_, content_type, body)) => {
            let mut response = (*body).into_response();
            let headers = response.headers_mut();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            headers.insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=3600"),
            );
            response
        }
        None => StatusCode::NOT_FOUND.into_response(),
    }
}
