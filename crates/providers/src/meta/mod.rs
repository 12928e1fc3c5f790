//! A typed client of Meta's APIs for Instagram professional accounts: Facebook Login, Instagram
//! Login, and the Graph API on both hosts (`graph.facebook.com` for Facebook-Login tokens,
//! `graph.instagram.com` for Instagram-Login tokens — pick with [`GraphHost`]).
//!
//! - [`oauth`]: both login flows (authorize URLs, code exchanges, long-lived tokens, refresh).
//! - [`account`]: the Facebook user, Pages (paged), Instagram users.
//! - [`publishing`]: containers, their status, `media_publish`, the publishing limit, media.
//! - [`engagement`]: insights, comments, replies.
//! - [`webhook`]: `X-Hub-Signature-256` verification and typed `instagram` webhooks.
//! - [`usage`]: the `X-App-Usage` / `X-Business-Use-Case-Usage` figures, reported to an optional
//!   [`UsageSink`] after every call and attached to errors.
//! - `errors`: the classification table of Graph error codes.
//!
//! Access tokens travel in the `Authorization: Bearer` header, never in a URL we build (the
//! token endpoints themselves take secrets as documented query parameters; transport errors
//! never show URLs).

pub mod account;
pub mod engagement;
mod errors;
pub mod oauth;
pub mod publishing;
pub mod usage;
pub mod webhook;

use std::fmt;
use std::sync::Arc;

use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use tidepost_domain::Platform;

use crate::error::{Call, ProviderError};
use crate::http::{Answer, send};

pub use account::{FacebookUser, IgAccountRef, IgUser, Page};
pub use engagement::{Comment, CommentPage, Insight};
pub use oauth::{InstagramLoginToken, MetaToken};
pub use publishing::{
    Container, ContainerOptions, ContainerState, ContainerStatus, MediaInfo, MediaSource,
    PublishingLimit, UserTag,
};
pub use usage::Usage;
pub use webhook::{
    MetaChange, MetaWebhook, MetaWebhookEntry, parse_meta_webhook, verify_meta_signature,
};

const PLATFORM: Platform = Platform::Instagram;

/// Where Meta lives. Production hosts, or the emulator's prefixes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaEndpoints {
    /// `https://www.facebook.com` (Facebook Login dialog).
    pub facebook_www: String,
    /// `https://graph.facebook.com`.
    pub graph: String,
    /// `https://www.instagram.com` (Instagram Login dialog).
    pub instagram_www: String,
    /// `https://api.instagram.com` (Instagram Login code exchange).
    pub instagram_api: String,
    /// `https://graph.instagram.com`.
    pub instagram_graph: String,
    /// The pinned Graph version, e.g. `v22.0`.
    pub graph_version: String,
}

/// The Graph version production pins (insights' `views` metric needs v22.0+).
pub const DEFAULT_GRAPH_VERSION: &str = "v22.0";

impl MetaEndpoints {
    pub fn production() -> Self {
        Self {
            facebook_www: "https://www.facebook.com".into(),
            graph: "https://graph.facebook.com".into(),
            instagram_www: "https://www.instagram.com".into(),
            instagram_api: "https://api.instagram.com".into(),
            instagram_graph: "https://graph.instagram.com".into(),
            graph_version: DEFAULT_GRAPH_VERSION.into(),
        }
    }

    /// The emulator's Meta prefixes under `base` (e.g. `http://127.0.0.1:PORT`).
    pub fn emulator(base: &str) -> Self {
        let base = base.trim_end_matches('/');
        Self {
            facebook_www: format!("{base}/meta/www"),
            graph: format!("{base}/meta/graph"),
            instagram_www: format!("{base}/meta/instagram"),
            instagram_api: format!("{base}/meta/ig-api"),
            instagram_graph: format!("{base}/meta/ig-graph"),
            graph_version: DEFAULT_GRAPH_VERSION.into(),
        }
    }

    fn host(&self, host: GraphHost) -> &str {
        match host {
            GraphHost::Facebook => self.graph.trim_end_matches('/'),
            GraphHost::Instagram => self.instagram_graph.trim_end_matches('/'),
        }
    }

    /// A versioned Graph URL: `{host}/{version}/{path}`.
    fn graph_url(&self, host: GraphHost, path: &str) -> String {
        format!(
            "{}/{}/{}",
            self.host(host),
            self.graph_version,
            path.trim_start_matches('/')
        )
    }
}

/// Which Graph host a token belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GraphHost {
    /// `graph.facebook.com`: Facebook Login user or Page tokens.
    Facebook,
    /// `graph.instagram.com`: Instagram Login tokens.
    Instagram,
}

/// An app's id and secret.
#[derive(Debug, Clone)]
pub struct MetaApp {
    pub app_id: String,
    pub app_secret: SecretString,
}

/// Receives the usage figures of every Graph answer that carried them, with the call's label.
/// The BUC figures name their business object (the Instagram account), so one sink can keep
/// per-account windows for the limits service.
pub type UsageSink = Arc<dyn Fn(&'static str, &Usage) + Send + Sync>;

/// The Meta client of one Facebook app (and, for Instagram Login, its Instagram app). Cheap to
/// clone; share one [`reqwest::Client`] (see [`crate::http_client`]).
#[derive(Clone)]
pub struct MetaClient {
    http: reqwest::Client,
    endpoints: MetaEndpoints,
    facebook: MetaApp,
    instagram: MetaApp,
    usage_sink: Option<UsageSink>,
}

impl fmt::Debug for MetaClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetaClient")
            .field("endpoints", &self.endpoints)
            .field("facebook", &self.facebook)
            .field("instagram", &self.instagram)
            .finish_non_exhaustive()
    }
}

impl MetaClient {
    /// A client for the Facebook app `app_id`; Instagram Login uses the same app until
    /// [`MetaClient::with_instagram_app`] sets the Instagram app id and secret.
    pub fn new(
        http: reqwest::Client,
        endpoints: MetaEndpoints,
        app_id: impl Into<String>,
        app_secret: SecretString,
    ) -> Self {
        let facebook = MetaApp {
            app_id: app_id.into(),
            app_secret,
        };
        Self {
            http,
            endpoints,
            instagram: facebook.clone(),
            facebook,
            usage_sink: None,
        }
    }

    /// The Instagram app (Instagram Login has its own app id and secret).
    pub fn with_instagram_app(
        mut self,
        app_id: impl Into<String>,
        app_secret: SecretString,
    ) -> Self {
        self.instagram = MetaApp {
            app_id: app_id.into(),
            app_secret,
        };
        self
    }

    /// Reports usage headers to `sink` after every call.
    pub fn with_usage_sink(mut self, sink: UsageSink) -> Self {
        self.usage_sink = Some(sink);
        self
    }

    pub fn endpoints(&self) -> &MetaEndpoints {
        &self.endpoints
    }

    /// The secret webhooks are signed with for `host`'s logins (Facebook app for Facebook
    /// Login, Instagram app for Instagram Login).
    pub fn webhook_secret(&self, host: GraphHost) -> &SecretString {
        match host {
            GraphHost::Facebook => &self.facebook.app_secret,
            GraphHost::Instagram => &self.instagram.app_secret,
        }
    }

    /// A bearer-authenticated Graph request.
    fn graph_request(
        &self,
        method: Method,
        host: GraphHost,
        path: &str,
        token: &SecretString,
    ) -> reqwest::RequestBuilder {
        self.http
            .request(method, self.endpoints.graph_url(host, path))
            .bearer_auth(token.expose_secret())
    }

    /// Sends a Graph request and reads `T` from a success answer; reports usage either way.
    async fn graph<T: DeserializeOwned>(
        &self,
        call: Call,
        request: reqwest::RequestBuilder,
    ) -> Result<T, ProviderError> {
        let answer = self.send(call, request).await?;
        read_json(&answer, call)
    }

    async fn send(
        &self,
        call: Call,
        request: reqwest::RequestBuilder,
    ) -> Result<Answer, ProviderError> {
        let answer = send(PLATFORM, call, request).await?;
        let usage = Usage::from_headers(&answer.headers);
        if let (Some(sink), Some(usage)) = (&self.usage_sink, &usage) {
            sink(call.label, usage);
        }
        if answer.is_success() {
            Ok(answer)
        } else {
            Err(errors::from_answer(&answer, call, usage))
        }
    }
}

/// A success body as `T`; an unreadable one is an unexpected answer (or, for a call that
/// creates something, an unknown outcome).
fn read_json<T: DeserializeOwned>(answer: &Answer, call: Call) -> Result<T, ProviderError> {
    serde_json::from_slice(&answer.body).map_err(|err| {
        let mut error = ProviderError::unexpected(
            PLATFORM,
            answer.status,
            &format!("a body {} cannot read ({err})", call.label),
        );
        if call.idempotency == crate::error::Idempotency::NonIdempotent {
            error.kind = crate::ErrorKind::OutcomeUnknown;
        }
        error
    })
}
