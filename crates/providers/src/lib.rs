//! Typed HTTP clients of the real TikTok and Meta (Facebook Login, Instagram Login, Graph) APIs.
//!
//! Every client is built on configurable base URLs: production uses the real hosts
//! ([`tiktok::TikTokEndpoints::production`], [`meta::MetaEndpoints::production`]); tests and
//! sandbox mode point them at the emulator ([`tiktok::TikTokEndpoints::emulator`],
//! [`meta::MetaEndpoints::emulator`]).
//!
//! - [`error`]: the one error type, [`ProviderError`], classified into an [`ErrorKind`] that
//!   tells the caller what to do next (retry, back off, re-authenticate, give up, reconcile).
//! - [`tiktok`]: Login Kit v2 OAuth, user and creator info, the Content Posting API (init,
//!   chunked uploads streamed from disk, status, cancel) and webhook verification.
//! - [`threads`]: Threads' own OAuth (short → long-lived tokens, refresh), the profile,
//!   containers, `threads_publish`, the publishing limit, media and insights.
//! - [`meta`]: Facebook Login and Instagram Login, Pages, IG users, content publishing
//!   (containers, publish, publishing limit), media, insights, comments, usage headers and
//!   webhook verification.
//!
//! Provider wire types live here and stay separate from `tidepost-domain` types; conversions
//! are the caller's, and explicit. Secrets (client secrets, access and refresh tokens) are
//! [`secrecy::SecretString`]s and never appear in errors, `Debug` output or logs: request URLs
//! are stripped from transport errors, and tokens travel in headers or bodies wherever the
//! provider allows it.

pub mod error;
mod http;
mod ids;
pub mod meta;
pub mod threads;
pub mod tiktok;

use std::time::Duration;

pub use error::{ErrorKind, ProviderError, SignatureError};
pub use tidepost_domain::Platform;

/// Time allowed to open a TCP + TLS connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Time allowed for a whole API call (uploads set a longer one per chunk).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// The HTTP client every provider client should share: rustls with the ring provider,
/// redirects **off** (OAuth token calls must never follow a redirect, and upload/pull URLs
/// must not either), connect and request timeouts and a tidepost `User-Agent`.
pub fn http_client() -> reqwest::Client {
    // reqwest is built without a bundled TLS provider; install ring once per process.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .user_agent(concat!("tidepost/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("the HTTP client configuration is static and valid")
}
