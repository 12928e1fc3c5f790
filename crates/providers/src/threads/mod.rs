//! A typed client of the Threads API (`graph.threads.net`): Threads' own OAuth (authorize,
//! code → short-lived token, short → long-lived with `th_exchange_token`, refresh with
//! `th_refresh_token`), the profile, content publishing (containers polled to `FINISHED`,
//! `threads_publish`, the publishing limit), media read back and insights.
//!
//! - [`errors`]: the classification table of the Threads error codes.
//!
//! Threads has its own app id and secret (the Meta app shows a second pair). The long-lived
//! exchange takes the secret and the token but no client id; the refresh takes neither. Data
//! calls carry the token in `Authorization: Bearer`; the token endpoints take it as the
//! documented query parameter (transport errors never show URLs).
//!
//! Creating a container is safe to repeat (an unpublished one expires after 24 h);
//! `threads_publish` is not: a lost answer is [`ErrorKind::OutcomeUnknown`].

mod errors;

use std::fmt;

use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use tidepost_domain::Platform;

use crate::error::{Call, ErrorKind, ProviderError};
use crate::http::{Answer, send};
use crate::ids;

pub use errors::{MEDIA_NOT_FOUND_SUBCODE, is_publishing_limit};

const PLATFORM: Platform = Platform::Threads;

/// The permissions tidepost asks for: the profile, publishing, replies (read and manage) and
/// insights.
pub const SCOPES: &[&str] = &[
    "threads_basic",
    "threads_content_publish",
    "threads_manage_replies",
    "threads_read_replies",
    "threads_manage_insights",
];

/// Where Threads lives. Production hosts, or the emulator's prefixes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadsEndpoints {
    /// `https://threads.net` (the authorize dialog).
    pub www: String,
    /// `https://graph.threads.net` (tokens and data).
    pub graph: String,
    /// `v1.0`, the only version there is.
    pub version: String,
}

impl ThreadsEndpoints {
    pub fn production() -> Self {
        Self {
            www: "https://threads.net".into(),
            graph: "https://graph.threads.net".into(),
            version: "v1.0".into(),
        }
    }

    /// The emulator's Threads prefixes under `base` (e.g. `http://127.0.0.1:PORT`).
    pub fn emulator(base: &str) -> Self {
        let base = base.trim_end_matches('/');
        Self {
            www: format!("{base}/threads/www"),
            graph: format!("{base}/threads/graph"),
            version: "v1.0".into(),
        }
    }

    fn data_url(&self, path: &str) -> String {
        format!(
            "{}/{}/{}",
            self.graph.trim_end_matches('/'),
            self.version,
            path.trim_start_matches('/')
        )
    }

    /// Token endpoints have no version segment.
    fn token_url(&self, path: &str) -> String {
        format!(
            "{}/{}",
            self.graph.trim_end_matches('/'),
            path.trim_start_matches('/')
        )
    }
}

/// The Threads client of one app (its Threads app id and secret). Cheap to clone.
#[derive(Clone)]
pub struct ThreadsClient {
    http: reqwest::Client,
    endpoints: ThreadsEndpoints,
    app_id: String,
    app_secret: SecretString,
}

impl fmt::Debug for ThreadsClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThreadsClient")
            .field("endpoints", &self.endpoints)
            .field("app_id", &self.app_id)
            .finish_non_exhaustive()
    }
}

/// A Threads access token and its lifetime in seconds (the code exchange may omit it: 1 hour).
#[derive(Debug, Clone)]
pub struct ThreadsToken {
    pub access_token: SecretString,
    pub expires_in: Option<u64>,
}

/// The code exchange's answer: a short-lived token of the Threads user `user_id`.
#[derive(Debug, Clone)]
pub struct CodeToken {
    pub access_token: SecretString,
    /// Sent as a JSON number (17 digits): kept exactly, as a string.
    pub user_id: String,
    pub expires_in: Option<u64>,
}

/// A Threads profile.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Profile {
    #[serde(deserialize_with = "ids::id")]
    pub id: String,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub threads_profile_picture_url: Option<String>,
    #[serde(default)]
    pub threads_biography: Option<String>,
}

/// Who may reply to a post (`reply_control`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyControl {
    Everyone,
    AccountsYouFollow,
    MentionedOnly,
}

impl ReplyControl {
    pub fn as_str(self) -> &'static str {
        match self {
            ReplyControl::Everyone => "everyone",
            ReplyControl::AccountsYouFollow => "accounts_you_follow",
            ReplyControl::MentionedOnly => "mentioned_only",
        }
    }
}

/// A container to create (`POST /{user}/threads`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Container {
    Text {
        text: String,
        /// An explicit link-preview card (text posts only).
        link_attachment: Option<String>,
    },
    Image {
        image_url: String,
        text: Option<String>,
        alt_text: Option<String>,
    },
    Video {
        video_url: String,
        text: Option<String>,
        alt_text: Option<String>,
    },
    /// One item of a carousel (its text would be ignored).
    CarouselItem {
        source: MediaSource,
        alt_text: Option<String>,
    },
    /// A carousel of 2–20 FINISHED items, in display order.
    Carousel {
        children: Vec<String>,
        text: Option<String>,
    },
}

/// Where an image or a video comes from: a public URL Meta fetches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaSource {
    Image(String),
    Video(String),
}

impl Container {
    fn params(&self, reply_control: Option<ReplyControl>) -> Vec<(&'static str, String)> {
        let mut params: Vec<(&'static str, String)> = Vec::new();
        let mut opt = |name: &'static str, value: &Option<String>| {
            if let Some(v) = value {
                params.push((name, v.clone()));
            }
        };
        let mut extra = Vec::new();
        match self {
            Container::Text {
                text,
                link_attachment,
            } => {
                extra.push(("media_type", "TEXT".to_string()));
                extra.push(("text", text.clone()));
                opt("link_attachment", link_attachment);
            }
            Container::Image {
                image_url,
                text,
                alt_text,
            } => {
                extra.push(("media_type", "IMAGE".to_string()));
                extra.push(("image_url", image_url.clone()));
                opt("text", text);
                opt("alt_text", alt_text);
            }
            Container::Video {
                video_url,
                text,
                alt_text,
            } => {
                extra.push(("media_type", "VIDEO".to_string()));
                extra.push(("video_url", video_url.clone()));
                opt("text", text);
                opt("alt_text", alt_text);
            }
            Container::CarouselItem { source, alt_text } => {
                match source {
                    MediaSource::Image(url) => {
                        extra.push(("media_type", "IMAGE".to_string()));
                        extra.push(("image_url", url.clone()));
                    }
                    MediaSource::Video(url) => {
                        extra.push(("media_type", "VIDEO".to_string()));
                        extra.push(("video_url", url.clone()));
                    }
                }
                extra.push(("is_carousel_item", "true".to_string()));
                opt("alt_text", alt_text);
            }
            Container::Carousel { children, text } => {
                extra.push(("media_type", "CAROUSEL".to_string()));
                extra.push(("children", children.join(",")));
                opt("text", text);
            }
        }
        let is_item = matches!(self, Container::CarouselItem { .. });
        if let (Some(control), false) = (reply_control, is_item) {
            extra.push(("reply_control", control.as_str().to_string()));
        }
        extra.extend(params);
        extra
    }
}

/// A container's processing state (`status`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerState {
    InProgress,
    Finished,
    Published,
    Error,
    Expired,
    Unknown(String),
}

impl ContainerState {
    fn parse(text: &str) -> Self {
        match text {
            "IN_PROGRESS" => ContainerState::InProgress,
            "FINISHED" => ContainerState::Finished,
            "PUBLISHED" => ContainerState::Published,
            "ERROR" => ContainerState::Error,
            "EXPIRED" => ContainerState::Expired,
            other => ContainerState::Unknown(other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            ContainerState::InProgress => "IN_PROGRESS",
            ContainerState::Finished => "FINISHED",
            ContainerState::Published => "PUBLISHED",
            ContainerState::Error => "ERROR",
            ContainerState::Expired => "EXPIRED",
            ContainerState::Unknown(s) => s.as_str(),
        }
    }
}

/// A container's status and, on `ERROR`, Meta's reason (`FAILED_DOWNLOADING_VIDEO`, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerStatus {
    pub id: String,
    pub status: ContainerState,
    pub error_message: Option<String>,
}

impl ContainerStatus {
    /// The failure a container in `ERROR` or `EXPIRED` stands for, with Meta's reason in words.
    pub fn failure(&self) -> Option<ProviderError> {
        match self.status {
            ContainerState::Error => {
                let reason = self.error_message.as_deref().unwrap_or("UNKNOWN");
                let (kind, words) = errors::container_error(reason);
                Some(ProviderError::new(
                    PLATFORM,
                    kind,
                    format!("container_{}", reason.to_ascii_lowercase()),
                    words,
                ))
            }
            ContainerState::Expired => Some(ProviderError::new(
                PLATFORM,
                ErrorKind::Permanent,
                "container_expired",
                "The Threads container expired (not published within 24 hours).",
            )),
            ContainerState::InProgress
            | ContainerState::Finished
            | ContainerState::Published
            | ContainerState::Unknown(_) => None,
        }
    }
}

#[derive(Deserialize)]
struct StatusAnswer {
    #[serde(deserialize_with = "ids::id")]
    id: String,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    error_message: Option<String>,
}

/// The account's publishing limit (`threads_publishing_limit`): posts in the rolling window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublishingLimit {
    pub quota_usage: u32,
    pub quota_total: u32,
    /// The window, in seconds (86400).
    pub quota_duration: u64,
}

impl PublishingLimit {
    pub fn remaining(&self) -> u32 {
        self.quota_total.saturating_sub(self.quota_usage)
    }
}

#[derive(Deserialize)]
struct LimitAnswer {
    data: Vec<LimitEntry>,
}

#[derive(Deserialize)]
struct LimitEntry {
    #[serde(default)]
    quota_usage: u32,
    #[serde(default)]
    config: Option<LimitConfig>,
}

#[derive(Deserialize)]
struct LimitConfig {
    quota_total: u32,
    #[serde(default)]
    quota_duration: Option<u64>,
}

/// A published post as read back.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Media {
    #[serde(deserialize_with = "ids::id")]
    pub id: String,
    #[serde(default)]
    pub permalink: Option<String>,
    #[serde(default)]
    pub media_type: Option<String>,
    #[serde(default)]
    pub shortcode: Option<String>,
    #[serde(default)]
    pub text: Option<String>,
}

/// One media metric (`values[0].value`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Insight {
    pub name: String,
    pub value: i64,
}

#[derive(Deserialize)]
struct IdAnswer {
    #[serde(deserialize_with = "ids::id")]
    id: String,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

#[derive(Deserialize)]
struct CodeAnswer {
    access_token: String,
    #[serde(deserialize_with = "ids::id")]
    user_id: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

impl ThreadsClient {
    pub fn new(
        http: reqwest::Client,
        endpoints: ThreadsEndpoints,
        app_id: impl Into<String>,
        app_secret: SecretString,
    ) -> Self {
        Self {
            http,
            endpoints,
            app_id: app_id.into(),
            app_secret,
        }
    }

    pub fn endpoints(&self) -> &ThreadsEndpoints {
        &self.endpoints
    }

    pub fn app_id(&self) -> &str {
        &self.app_id
    }

    /// The key Threads webhooks and signed requests are signed with (the Threads app secret).
    pub fn app_secret(&self) -> &SecretString {
        &self.app_secret
    }

    /// The authorize dialog URL (no PKCE: Threads has none).
    pub fn authorize_url(&self, redirect_uri: &str, state: &str) -> String {
        let base = format!(
            "{}/oauth/authorize",
            self.endpoints.www.trim_end_matches('/')
        );
        let mut url = url::Url::parse(&base).expect("the Threads base URL is a URL");
        url.query_pairs_mut()
            .append_pair("client_id", &self.app_id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("scope", &SCOPES.join(","))
            .append_pair("response_type", "code")
            .append_pair("state", state);
        url.to_string()
    }

    /// The callback's `code` → a short-lived (1 h) token and the Threads user id.
    pub async fn exchange_code(
        &self,
        code: &str,
        redirect_uri: &str,
    ) -> Result<CodeToken, ProviderError> {
        let call = Call::idempotent("threads.oauth.exchange_code");
        let request = self
            .http
            .post(self.endpoints.token_url("oauth/access_token"))
            .form(&[
                ("client_id", self.app_id.as_str()),
                ("client_secret", self.app_secret.expose_secret()),
                ("code", code),
                ("grant_type", "authorization_code"),
                ("redirect_uri", redirect_uri),
            ]);
        let answer: CodeAnswer = self.json(call, request).await?;
        Ok(CodeToken {
            access_token: answer.access_token.into(),
            user_id: answer.user_id,
            expires_in: answer.expires_in,
        })
    }

    /// A short-lived token → a long-lived (60-day) one (`th_exchange_token`; secret, no id).
    pub async fn exchange_long_lived(
        &self,
        short: &SecretString,
    ) -> Result<ThreadsToken, ProviderError> {
        let call = Call::idempotent("threads.oauth.exchange_long_lived");
        let request = self
            .http
            .get(self.endpoints.token_url("access_token"))
            .query(&[
                ("grant_type", "th_exchange_token"),
                ("client_secret", self.app_secret.expose_secret()),
                ("access_token", short.expose_secret()),
            ]);
        let answer: TokenAnswer = self.json(call, request).await?;
        Ok(ThreadsToken {
            access_token: answer.access_token.into(),
            expires_in: answer.expires_in,
        })
    }

    /// A long-lived token at least 24 hours old and not expired → a fresh 60-day one
    /// (`th_refresh_token`; neither id nor secret). Store the returned value whatever it is.
    pub async fn refresh(&self, long: &SecretString) -> Result<ThreadsToken, ProviderError> {
        let call = Call::idempotent("threads.oauth.refresh");
        let request = self
            .http
            .get(self.endpoints.token_url("refresh_access_token"))
            .query(&[
                ("grant_type", "th_refresh_token"),
                ("access_token", long.expose_secret()),
            ]);
        let answer: TokenAnswer = self.json(call, request).await?;
        Ok(ThreadsToken {
            access_token: answer.access_token.into(),
            expires_in: answer.expires_in,
        })
    }

    /// The token's own profile.
    pub async fn me(&self, token: &SecretString) -> Result<Profile, ProviderError> {
        let request = self.data(Method::GET, "me", token).query(&[(
            "fields",
            "id,username,name,threads_profile_picture_url,threads_biography",
        )]);
        self.json(Call::idempotent("threads.me"), request).await
    }

    /// Creates a container and returns its id (safe to repeat: unpublished containers expire).
    pub async fn create_container(
        &self,
        token: &SecretString,
        user_id: &str,
        container: &Container,
        reply_control: Option<ReplyControl>,
    ) -> Result<String, ProviderError> {
        let request = self
            .data(Method::POST, &format!("{user_id}/threads"), token)
            .form(&container.params(reply_control));
        let answer: IdAnswer = self
            .json(Call::idempotent("threads.create_container"), request)
            .await?;
        Ok(answer.id)
    }

    /// A container's `status` and `error_message`.
    pub async fn container_status(
        &self,
        token: &SecretString,
        container_id: &str,
    ) -> Result<ContainerStatus, ProviderError> {
        let request = self
            .data(Method::GET, container_id, token)
            .query(&[("fields", "id,status,error_message")]);
        let answer: StatusAnswer = self
            .json(Call::idempotent("threads.container_status"), request)
            .await?;
        Ok(ContainerStatus {
            id: answer.id,
            status: ContainerState::parse(answer.status.as_deref().unwrap_or("")),
            error_message: answer.error_message,
        })
    }

    /// Publishes a FINISHED container: the post's media id. Not idempotent: a lost answer is
    /// [`ErrorKind::OutcomeUnknown`] (read the container's status before publishing again).
    pub async fn publish(
        &self,
        token: &SecretString,
        user_id: &str,
        container_id: &str,
    ) -> Result<String, ProviderError> {
        let request = self
            .data(Method::POST, &format!("{user_id}/threads_publish"), token)
            .form(&[("creation_id", container_id)]);
        let answer: IdAnswer = self
            .json(Call::non_idempotent("threads.publish"), request)
            .await?;
        Ok(answer.id)
    }

    /// The posts published in the rolling 24 hours and the total allowed.
    pub async fn publishing_limit(
        &self,
        token: &SecretString,
        user_id: &str,
    ) -> Result<PublishingLimit, ProviderError> {
        let request = self
            .data(
                Method::GET,
                &format!("{user_id}/threads_publishing_limit"),
                token,
            )
            .query(&[("fields", "quota_usage,config")]);
        let answer: LimitAnswer = self
            .json(Call::idempotent("threads.publishing_limit"), request)
            .await?;
        let entry =
            answer.data.into_iter().next().ok_or_else(|| {
                ProviderError::unexpected(PLATFORM, 200, "an empty publishing limit")
            })?;
        let config = entry.config.unwrap_or(LimitConfig {
            quota_total: 250,
            quota_duration: Some(86_400),
        });
        Ok(PublishingLimit {
            quota_usage: entry.quota_usage,
            quota_total: config.quota_total,
            quota_duration: config.quota_duration.unwrap_or(86_400),
        })
    }

    /// A published post: its permalink and media type.
    pub async fn media(
        &self,
        token: &SecretString,
        media_id: &str,
    ) -> Result<Media, ProviderError> {
        let request = self
            .data(Method::GET, media_id, token)
            .query(&[("fields", "id,permalink,media_type,shortcode,text")]);
        self.json(Call::idempotent("threads.media"), request).await
    }

    /// A post's lifetime metrics (`views`, `likes`, `replies`, `reposts`, `quotes`).
    pub async fn insights(
        &self,
        token: &SecretString,
        media_id: &str,
    ) -> Result<Vec<Insight>, ProviderError> {
        #[derive(Deserialize)]
        struct Answer {
            data: Vec<Metric>,
        }
        #[derive(Deserialize)]
        struct Metric {
            name: String,
            #[serde(default)]
            values: Vec<Value>,
        }
        #[derive(Deserialize)]
        struct Value {
            value: i64,
        }
        let request = self
            .data(Method::GET, &format!("{media_id}/insights"), token)
            .query(&[("metric", "views,likes,replies,reposts,quotes")]);
        let answer: Answer = self
            .json(Call::idempotent("threads.insights"), request)
            .await?;
        Ok(answer
            .data
            .into_iter()
            .map(|m| Insight {
                value: m.values.first().map_or(0, |v| v.value),
                name: m.name,
            })
            .collect())
    }

    fn data(&self, method: Method, path: &str, token: &SecretString) -> reqwest::RequestBuilder {
        self.http
            .request(method, self.endpoints.data_url(path))
            .bearer_auth(token.expose_secret())
    }

    async fn json<T: DeserializeOwned>(
        &self,
        call: Call,
        request: reqwest::RequestBuilder,
    ) -> Result<T, ProviderError> {
        let answer = send(PLATFORM, call, request).await?;
        if !answer.is_success() {
            return Err(errors::from_answer(&answer, call));
        }
        read_json(&answer, call)
    }
}

fn read_json<T: DeserializeOwned>(answer: &Answer, call: Call) -> Result<T, ProviderError> {
    serde_json::from_slice(&answer.body).map_err(|err| {
        let mut error = ProviderError::unexpected(
            PLATFORM,
            answer.status,
            &format!("a body {} cannot read ({err})", call.label),
        );
        if call.idempotency == crate::error::Idempotency::NonIdempotent {
            error.kind = ErrorKind::OutcomeUnknown;
        }
        error
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_params() {
        let text = Container::Text {
            text: "hi".into(),
            link_attachment: Some("https://example.com".into()),
        };
        let params = text.params(Some(ReplyControl::MentionedOnly));
        assert!(params.contains(&("media_type", "TEXT".into())));
        assert!(params.contains(&("link_attachment", "https://example.com".into())));
        assert!(params.contains(&("reply_control", "mentioned_only".into())));
        let item = Container::CarouselItem {
            source: MediaSource::Video("https://example.com/v.mp4".into()),
            alt_text: None,
        };
        let params = item.params(Some(ReplyControl::Everyone));
        assert!(params.contains(&("is_carousel_item", "true".into())));
        assert!(
            !params.iter().any(|(k, _)| *k == "reply_control"),
            "items take no post options"
        );
    }

    #[test]
    fn authorize_url_names_the_threads_app() {
        let client = ThreadsClient::new(
            crate::http_client(),
            ThreadsEndpoints::production(),
            "42",
            SecretString::from("s"),
        );
        let url = client.authorize_url("https://tp.example/oauth/threads/callback", "st");
        assert!(url.starts_with("https://threads.net/oauth/authorize?client_id=42&"));
        assert!(url.contains("scope=threads_basic%2Cthreads_content_publish"));
        assert!(!url.contains("client_secret"));
    }
}
