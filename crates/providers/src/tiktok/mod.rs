//! A typed client of TikTok's Login Kit v2 and Content Posting API.
//!
//! Two answer shapes exist (see the provider notes): the OAuth endpoints are form-encoded and
//! answer **flat** JSON (`access_token…` or `error, error_description`), possibly with HTTP 200
//! on failure; every other v2 endpoint answers `{"data": …, "error": {"code", "message",
//! "log_id"}}` and succeeded only when `error.code == "ok"`, whatever the HTTP status.
//!
//! - [`oauth`]: authorize URL, PKCE, code exchange, refresh (rotating), revoke.
//! - [`api`]: user info, creator info, video/photo init, status fetch, cancel.
//! - [`upload`]: chunk plans by the Media Transfer Guide rules, and chunk PUTs streamed from
//!   disk.
//! - [`video_list`], [`video_query`]: the creator's public videos (Display API, `video.list`).
//! - [`webhook`]: `TikTok-Signature` verification and typed events.
//! - `errors`: the classification table of TikTok's error codes.

pub mod api;
mod errors;
pub mod oauth;
pub mod upload;
pub mod video_list;
pub mod video_query;
pub mod webhook;

use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use tidepost_domain::Platform;

use crate::error::{Call, ProviderError};
use crate::http::{Answer, send};

pub use crate::error::SignatureError;
pub use api::{
    CreatorInfo, InitPhoto, InitResult, InitVideo, PhotoMode, PhotoPostInfo, PostInfo, PostMode,
    PrivacyLevel, PublishState, PublishStatus, TikTokUser, UserFields, VideoSource,
};
pub use oauth::{TokenSet, code_challenge, pkce_verifier};
pub use upload::{Chunk, ChunkAck, ChunkPlan, ChunkPlanError};
pub use video_list::{ListedVideo, VideoPage};
pub use video_query::VideoCounts;
pub use webhook::{
    TikTokEvent, TikTokWebhook, WebhookTimestamp, parse_tiktok_webhook, verify_tiktok_signature,
};

const PLATFORM: Platform = Platform::Tiktok;

/// Where TikTok lives: the consent page host and the API host. Upload URLs are absolute and
/// come from init.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TikTokEndpoints {
    /// `https://www.tiktok.com` in production.
    pub auth_base: String,
    /// `https://open.tiktokapis.com` in production.
    pub api_base: String,
}

impl TikTokEndpoints {
    pub fn production() -> Self {
        Self {
            auth_base: "https://www.tiktok.com".into(),
            api_base: "https://open.tiktokapis.com".into(),
        }
    }

    /// The emulator's TikTok prefixes under `base` (e.g. `http://127.0.0.1:PORT`).
    pub fn emulator(base: &str) -> Self {
        let base = base.trim_end_matches('/');
        Self {
            auth_base: format!("{base}/tiktok/www"),
            api_base: format!("{base}/tiktok/open"),
        }
    }

    fn api(&self, path: &str) -> String {
        format!("{}{path}", self.api_base.trim_end_matches('/'))
    }
}

/// The TikTok client of one app (client key + secret). Cheap to clone; share one
/// [`reqwest::Client`] (see [`crate::http_client`]).
#[derive(Debug, Clone)]
pub struct TikTokClient {
    http: reqwest::Client,
    endpoints: TikTokEndpoints,
    client_key: String,
    client_secret: SecretString,
}

/// The v2 envelope.
#[derive(Deserialize)]
struct Envelope {
    #[serde(default)]
    data: Option<serde_json::Value>,
    error: EnvelopeError,
}

#[derive(Deserialize)]
struct EnvelopeError {
    code: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    log_id: String,
}

impl TikTokClient {
    pub fn new(
        http: reqwest::Client,
        endpoints: TikTokEndpoints,
        client_key: impl Into<String>,
        client_secret: SecretString,
    ) -> Self {
        Self {
            http,
            endpoints,
            client_key: client_key.into(),
            client_secret,
        }
    }

    pub fn client_key(&self) -> &str {
        &self.client_key
    }

    pub fn endpoints(&self) -> &TikTokEndpoints {
        &self.endpoints
    }

    /// The client secret, for webhook verification.
    pub fn client_secret(&self) -> &SecretString {
        &self.client_secret
    }

    /// A bearer-authenticated v2 request.
    fn api_request(
        &self,
        method: Method,
        path: &str,
        token: &SecretString,
    ) -> reqwest::RequestBuilder {
        self.http
            .request(method, self.endpoints.api(path))
            .bearer_auth(token.expose_secret())
    }

    /// Sends a v2 request and unwraps the envelope's `data` into `T`. `context` feeds the error
    /// messages (e.g. the media URL of a PULL_FROM_URL init).
    async fn envelope<T: DeserializeOwned>(
        &self,
        call: Call,
        request: reqwest::RequestBuilder,
        context: &errors::Context<'_>,
    ) -> Result<T, ProviderError> {
        let answer = send(PLATFORM, call, request).await?;
        let Ok(envelope) = serde_json::from_slice::<Envelope>(&answer.body) else {
            return Err(errors::without_envelope(&answer, call));
        };
        if envelope.error.code != "ok" {
            return Err(errors::api_error(
                &answer,
                &envelope.error.code,
                &envelope.error.message,
                &envelope.error.log_id,
                context,
            ));
        }
        if !answer.is_success() {
            return Err(errors::without_envelope(&answer, call));
        }
        let data = envelope.data.unwrap_or(serde_json::Value::Null);
        serde_json::from_value(data).map_err(|e| bad_shape(&answer, call, &e))
    }
}

/// A success answer whose `data` does not have the documented shape.
/// For a call that creates something, the creation happened but its id is unreadable.
fn bad_shape(answer: &Answer, call: Call, err: &serde_json::Error) -> ProviderError {
    let mut error = ProviderError::unexpected(
        PLATFORM,
        answer.status,
        &format!("a body {} cannot read ({err})", call.label),
    );
    if call.idempotency == crate::error::Idempotency::NonIdempotent {
        error.kind = crate::ErrorKind::OutcomeUnknown;
    }
    error
}
