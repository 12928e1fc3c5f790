//! The one place a request's client address is read.
//!
//! Anything keyed by who is calling (the sign-in limit) takes [`ClientAddr`] rather than the
//! connection's address, so that behind a trusted reverse proxy each client is told apart by the
//! address the proxy put in `X-Forwarded-For` (see [`tidepost_app::proxies`]), while a client
//! that connects directly cannot choose its address by sending that header itself.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header::HeaderName;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};

use crate::error::PageError;
use crate::state::HttpState;

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// The client's address: the peer's, or the one a trusted proxy forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

impl ClientAddr {
    /// The client address for a request from `peer` with these headers, under `state`'s
    /// `trusted_proxies`.
    pub fn resolve(state: &HttpState, peer: IpAddr, headers: &axum::http::HeaderMap) -> Self {
        let forwarded = headers
            .get_all(X_FORWARDED_FOR)
            .iter()
            // A header that is not text cannot name an address; it counts as an empty one.
            .map(|value| value.to_str().unwrap_or(""));
        Self(
            state
                .app
                .config
                .trusted_proxies
                .client_address(peer, forwarded),
        )
    }
}

impl FromRequestParts<HttpState> for ClientAddr {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &HttpState,
    ) -> Result<Self, Self::Rejection> {
        let Some(ConnectInfo(peer)) = parts.extensions.get::<ConnectInfo<SocketAddr>>().copied()
        else {
            // Only a router served without connection info gets here: a wiring mistake.
            tracing::error!("no connection info on the request: the server must be built with it");
            return Err(PageError::new(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "The server cannot tell where this request came from.",
            )
            .into_response());
        };
        Ok(Self::resolve(state, peer.ip(), &parts.headers))
    }
}
