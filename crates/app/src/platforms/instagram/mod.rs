//! Instagram end to end, through Meta's Graph API.
//!
//! - [`connect`]: Facebook Login (Pages → their Instagram professional account, with a
//!   chooser) and Instagram Login, on the shared single-use OAuth states of [`crate::connect`].
//! - [`refresh`]: extending long-lived (60-day) tokens, called by [`crate::tokens::refresh`]
//!   under the account's refresh lease.
//! - [`publish`]: images, reels, carousels and stories on the publish pipeline.
//! - [`media_url`]: signed, expiring URLs from which Meta fetches uploaded media.
//! - [`webhooks`]: the inbound `instagram` webhook (handshake, signature, dedupe, apply).
//! - [`metrics`] and [`comments`]: media insights and comment pulls for the CRM.

pub mod comments;
pub mod connect;
pub mod first_comment;
pub mod limits;
pub mod media_url;
pub mod metrics;
pub mod options;
pub mod prepare;
pub mod publish;
pub mod webhooks;

use serde::{Deserialize, Serialize};
use tidepost_domain::Platform;
use tidepost_providers::ProviderError;
use tidepost_providers::meta::GraphHost;
use tidepost_store::accounts::Account;

use crate::App;

pub const PLATFORM: Platform = Platform::Instagram;

/// How an Instagram account was connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Login {
    /// Facebook Login: a Facebook user token, through a Page.
    Facebook,
    /// Instagram Login: an Instagram user token, no Page.
    Instagram,
}

impl Login {
    pub fn as_str(self) -> &'static str {
        match self {
            Login::Facebook => "facebook",
            Login::Instagram => "instagram",
        }
    }

    pub fn host(self) -> GraphHost {
        match self {
            Login::Facebook => GraphHost::Facebook,
            Login::Instagram => GraphHost::Instagram,
        }
    }

    /// The provider a person signs in at.
    pub fn provider_name(self) -> &'static str {
        match self {
            Login::Facebook => "Facebook",
            Login::Instagram => "Instagram",
        }
    }
}

/// The platform specifics kept in an Instagram account's `details`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Details {
    pub login: Option<Login>,
    pub page_id: Option<String>,
    pub page_name: Option<String>,
    pub page_picture_url: Option<String>,
    pub facebook_user_id: Option<String>,
    pub facebook_user_name: Option<String>,
    /// Instagram Login's app-scoped id.
    pub app_scoped_id: Option<String>,
    /// `BUSINESS` or `MEDIA_CREATOR` when known.
    pub account_type: Option<String>,
}

impl Details {
    pub fn of(account: &Account) -> Self {
        serde_json::from_str(&account.details).unwrap_or_default()
    }

    pub fn login(&self) -> Login {
        self.login.unwrap_or(Login::Facebook)
    }
}

/// The Graph host an account's token belongs to.
pub fn host_of(account: &Account) -> GraphHost {
    Details::of(account).login().host()
}

/// The Graph client and the host `account` is reached on, for a job: a job whose provider
/// is not configured stops for good.
pub(crate) fn graph_for_job(
    app: &App,
    account: &Account,
) -> Result<(tidepost_providers::meta::MetaClient, GraphHost), tidepost_jobs::JobError> {
    let client = app
        .providers
        .meta()
        .map_err(|e| tidepost_jobs::JobError::permanent(e.to_string()))?
        .clone();
    Ok((client, host_of(account)))
}

/// Extends an Instagram account's long-lived token (the account's refresh lease is held by the
/// caller) with the token itself: Instagram Login tokens through `refresh_access_token`,
/// Facebook Login user tokens by exchanging the still-valid long-lived token again.
pub(crate) async fn refresh(
    app: &App,
    account: &Account,
) -> Result<Result<crate::tokens::NewTokens, ProviderError>, crate::tokens::TokenError> {
    let token = crate::tokens::open(app, account, crate::tokens::ACCESS_TOKEN)?;
    let client = app.providers.meta()?;
    let answer = match Details::of(account).login() {
        Login::Instagram => client.refresh_instagram(&token).await,
        Login::Facebook => client.exchange_long_lived(&token).await,
    };
    Ok(answer.map(|t| crate::tokens::NewTokens {
        access: t.access_token,
        refresh: None,
        access_expires_in: t.expires_in,
        refresh_expires_in: None,
    }))
}

/// Registers the Instagram job kinds.
pub fn register(registry: tidepost_jobs::Registry, app: &App) -> tidepost_jobs::Registry {
    let webhook_app = app.clone();
    let registry = registry.register_with(
        webhooks::WEBHOOK_JOB,
        tidepost_jobs::RetryPolicy::new(
            10,
            std::time::Duration::from_secs(2),
            std::time::Duration::from_secs(600),
        ),
        tidepost_jobs::handler_fn(move |_ctx, payload: crate::pipeline::inbound::EventRef| {
            let app = webhook_app.clone();
            async move { webhooks::apply(&app, &payload).await }
        }),
    );
    let registry = first_comment::register(registry, app);
    publish::register(registry, app)
}
