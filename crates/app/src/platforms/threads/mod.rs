//! Threads end to end, through its own API (`graph.threads.net`).
//!
//! - [`connect`]: Threads' OAuth (code → short-lived → long-lived token, the profile).
//! - [`refresh`]: renewing the 60-day long-lived token (`th_refresh_token`, only once it is a
//!   day old), called by [`crate::tokens::refresh`] under the account's refresh lease.
//! - [`options`], [`prepare`]: the options typed once and the checks before anything is sent.
//! - [`limits`]: the publishing limit (250 posts in a rolling 24 hours).
//! - [`publish`]: containers polled to `FINISHED`, `threads_publish` as a durable step.
//! - [`metrics`]: post insights for the CRM.

pub mod connect;
pub mod limits;
pub mod metrics;
pub mod options;
pub mod prepare;
pub mod publish;

use tidepost_domain::Platform;
use tidepost_providers::ProviderError;
use tidepost_store::accounts::Account;

use crate::App;

pub const PLATFORM: Platform = Platform::Threads;

/// The public page of a Threads post (Threads answers it; this is its shape).
pub fn post_url(username: &str, shortcode: &str) -> String {
    format!("https://www.threads.com/@{username}/post/{shortcode}")
}

/// Renews a Threads account's long-lived token with the token itself (the refresh lease is
/// held by the caller). Threads refuses a token under a day old; that refusal keeps it valid.
pub(crate) async fn refresh(
    app: &App,
    account: &Account,
) -> Result<Result<crate::tokens::NewTokens, ProviderError>, crate::tokens::TokenError> {
    let token = crate::tokens::open(app, account, crate::tokens::ACCESS_TOKEN)?;
    let client = app.providers.threads()?;
    let answer = client.refresh(&token).await;
    Ok(answer.map(|t| crate::tokens::NewTokens {
        access: t.access_token,
        refresh: None,
        access_expires_in: t.expires_in,
        refresh_expires_in: None,
    }))
}

/// Registers the Threads job kinds.
pub fn register(registry: tidepost_jobs::Registry, app: &App) -> tidepost_jobs::Registry {
    publish::register(registry, app)
}
