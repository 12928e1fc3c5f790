//! The bearer-authenticated v2 endpoints: user info, creator info, video and photo init,
//! status fetch and cancel.

use reqwest::Method;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::TikTokClient;
use super::errors::{self, Context};
use super::upload::ChunkPlan;
use crate::error::{Call, ProviderError};
use crate::ids;

/// Which user info fields to ask for; each set needs its scope (asking for a field whose
/// scope was not granted is an error).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserFields {
    /// `user.info.basic`: open_id, union_id, avatar_url, display_name.
    Basic,
    /// + `user.info.profile`: username, bio, profile link, verified flag.
    Profile,
    /// + `user.info.stats`: follower, following, likes and video counts.
    ProfileAndStats,
}

impl UserFields {
    /// The richest set the granted scopes allow.
    pub fn for_scopes(scopes: &[String]) -> Self {
        let has = |s: &str| scopes.iter().any(|g| g == s);
        match (has("user.info.profile"), has("user.info.stats")) {
            (true, true) => UserFields::ProfileAndStats,
            (true, false) => UserFields::Profile,
            _ => UserFields::Basic,
        }
    }

    fn query(self) -> &'static str {
        const BASIC: &str = "open_id,union_id,avatar_url,display_name";
        match self {
            UserFields::Basic => BASIC,
            UserFields::Profile => {
                "open_id,union_id,avatar_url,display_name,username,bio_description,profile_deep_link,is_verified"
            }
            UserFields::ProfileAndStats => {
                "open_id,union_id,avatar_url,display_name,username,bio_description,profile_deep_link,is_verified,follower_count,following_count,likes_count,video_count"
            }
        }
    }
}

/// `GET /v2/user/info/`; fields outside the requested set are `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct TikTokUser {
    pub open_id: String,
    pub union_id: Option<String>,
    pub display_name: String,
    pub avatar_url: Option<String>,
    /// Handle without `@` (`user.info.profile`).
    pub username: Option<String>,
    pub bio_description: Option<String>,
    pub profile_deep_link: Option<String>,
    pub is_verified: Option<bool>,
    pub follower_count: Option<u64>,
    pub following_count: Option<u64>,
    pub likes_count: Option<u64>,
    pub video_count: Option<u64>,
}

#[derive(Deserialize)]
struct UserData {
    user: TikTokUser,
}

/// A privacy level of a post. Unknown values are kept, not refused.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum PrivacyLevel {
    PublicToEveryone,
    MutualFollowFriends,
    FollowerOfCreator,
    SelfOnly,
    Other(String),
}

impl PrivacyLevel {
    pub fn as_str(&self) -> &str {
        match self {
            PrivacyLevel::PublicToEveryone => "PUBLIC_TO_EVERYONE",
            PrivacyLevel::MutualFollowFriends => "MUTUAL_FOLLOW_FRIENDS",
            PrivacyLevel::FollowerOfCreator => "FOLLOWER_OF_CREATOR",
            PrivacyLevel::SelfOnly => "SELF_ONLY",
            PrivacyLevel::Other(other) => other,
        }
    }
}

impl From<String> for PrivacyLevel {
    fn from(value: String) -> Self {
        match value.as_str() {
            "PUBLIC_TO_EVERYONE" => PrivacyLevel::PublicToEveryone,
            "MUTUAL_FOLLOW_FRIENDS" => PrivacyLevel::MutualFollowFriends,
            "FOLLOWER_OF_CREATOR" => PrivacyLevel::FollowerOfCreator,
            "SELF_ONLY" => PrivacyLevel::SelfOnly,
            _ => PrivacyLevel::Other(value),
        }
    }
}

impl From<PrivacyLevel> for String {
    fn from(value: PrivacyLevel) -> Self {
        value.as_str().to_string()
    }
}

/// `POST /v2/post/publish/creator_info/query/`: what the creator may post right now. Fetch it
/// each time the posting screen is shown.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CreatorInfo {
    #[serde(rename = "creator_nickname", default)]
    pub nickname: String,
    #[serde(rename = "creator_username", default)]
    pub username: String,
    /// Valid for about two hours.
    #[serde(rename = "creator_avatar_url", default)]
    pub avatar_url: String,
    pub privacy_level_options: Vec<PrivacyLevel>,
    #[serde(default)]
    pub comment_disabled: bool,
    #[serde(default)]
    pub duet_disabled: bool,
    #[serde(default)]
    pub stitch_disabled: bool,
    #[serde(default)]
    pub max_video_post_duration_sec: u32,
}

/// `post_info` of a direct video post.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PostInfo {
    /// Caption with #hashtags and @mentions, at most 2200 UTF-16 units.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Must be one of the creator's `privacy_level_options`, picked by the user.
    pub privacy_level: PrivacyLevel,
    pub disable_comment: bool,
    pub disable_duet: bool,
    pub disable_stitch: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub video_cover_timestamp_ms: Option<u32>,
    /// Paid partnership ("Branded content"); not allowed with `SELF_ONLY`.
    pub brand_content_toggle: bool,
    /// The creator's own business ("Your brand").
    pub brand_organic_toggle: bool,
    /// AI-generated content label.
    pub is_aigc: bool,
}

impl PostInfo {
    /// A post with this privacy level and every toggle off.
    pub fn new(privacy_level: PrivacyLevel) -> Self {
        Self {
            title: None,
            privacy_level,
            disable_comment: false,
            disable_duet: false,
            disable_stitch: false,
            video_cover_timestamp_ms: None,
            brand_content_toggle: false,
            brand_organic_toggle: false,
            is_aigc: false,
        }
    }
}

/// Direct post, or upload to the creator's inbox as a draft they finish in the app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PostMode {
    Direct(PostInfo),
    Inbox,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VideoSource {
    /// Upload the bytes in chunks to the returned `upload_url`.
    FileUpload(ChunkPlan),
    /// TikTok downloads the video; the URL must lie under a verified domain or URL prefix.
    PullFromUrl(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitVideo {
    pub mode: PostMode,
    pub source: VideoSource,
}

/// `post_info` of a direct photo post.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PhotoPostInfo {
    /// At most 90 UTF-16 units.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Caption, at most 4000 UTF-16 units.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub privacy_level: PrivacyLevel,
    pub disable_comment: bool,
    pub auto_add_music: bool,
    pub brand_content_toggle: bool,
    pub brand_organic_toggle: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PhotoMode {
    Direct(PhotoPostInfo),
    /// To the creator's inbox (`MEDIA_UPLOAD`); only title and description are sent.
    Upload {
        title: Option<String>,
        description: Option<String>,
    },
}

/// A photo post: TikTok pulls the images (JPEG/WebP, verified URLs, up to 35).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitPhoto {
    pub mode: PhotoMode,
    pub photo_images: Vec<String>,
    pub photo_cover_index: u32,
    pub is_aigc: bool,
}

/// The answer of an init. `upload_url` (FILE_UPLOAD only) is a capability valid one hour, so
/// it is kept secret like a token.
#[derive(Debug, Clone)]
pub struct InitResult {
    pub publish_id: String,
    pub upload_url: Option<SecretString>,
}

#[derive(Deserialize)]
struct InitData {
    publish_id: String,
    #[serde(default)]
    upload_url: Option<String>,
}

/// `status` of a status fetch.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize)]
#[serde(from = "String")]
pub enum PublishState {
    ProcessingUpload,
    ProcessingDownload,
    /// Inbox flow: the draft reached the creator's inbox (final from the API's side).
    SendToUserInbox,
    PublishComplete,
    Failed,
    Unknown(String),
}

impl From<String> for PublishState {
    fn from(value: String) -> Self {
        match value.as_str() {
            "PROCESSING_UPLOAD" => PublishState::ProcessingUpload,
            "PROCESSING_DOWNLOAD" => PublishState::ProcessingDownload,
            "SEND_TO_USER_INBOX" => PublishState::SendToUserInbox,
            "PUBLISH_COMPLETE" => PublishState::PublishComplete,
            "FAILED" => PublishState::Failed,
            _ => PublishState::Unknown(value),
        }
    }
}

impl PublishState {
    pub fn is_processing(&self) -> bool {
        matches!(
            self,
            PublishState::ProcessingUpload | PublishState::ProcessingDownload
        )
    }
}

/// `POST /v2/post/publish/status/fetch/`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PublishStatus {
    pub status: PublishState,
    #[serde(default)]
    pub fail_reason: Option<String>,
    #[serde(default)]
    pub uploaded_bytes: Option<u64>,
    #[serde(default)]
    pub downloaded_bytes: Option<u64>,
    /// Public post ids, exact (TikTok sends 19-digit JSON numbers). Filled after moderation,
    /// for public posts only; may hold several ids for one inbox draft.
    #[serde(
        rename = "publicaly_available_post_id",
        alias = "publicly_available_post_id",
        default,
        deserialize_with = "ids::id_list"
    )]
    pub public_post_ids: Vec<String>,
}

impl PublishStatus {
    /// For a `FAILED` publish, its `fail_reason` as an error of the right kind.
    pub fn failure(&self) -> Option<ProviderError> {
        (self.status == PublishState::Failed)
            .then(|| errors::fail_reason_error(self.fail_reason.as_deref().unwrap_or_default()))
    }
}

impl TikTokClient {
    /// `GET /v2/user/info/` with the chosen field set.
    pub async fn user_info(
        &self,
        token: &SecretString,
        fields: UserFields,
    ) -> Result<TikTokUser, ProviderError> {
        let request = self
            .api_request(Method::GET, "/v2/user/info/", token)
            .query(&[("fields", fields.query())]);
        let data: UserData = self
            .envelope(
                Call::idempotent("tiktok.user_info"),
                request,
                &Context::default(),
            )
            .await?;
        Ok(data.user)
    }

    /// `POST /v2/post/publish/creator_info/query/`. The documented cap errors that come back
    /// with HTTP 200 (`spam_risk_*`, `reached_active_user_cap`) are errors here.
    pub async fn creator_info(&self, token: &SecretString) -> Result<CreatorInfo, ProviderError> {
        let request = self
            .api_request(Method::POST, "/v2/post/publish/creator_info/query/", token)
            .json(&json!({}));
        self.envelope(
            Call::idempotent("tiktok.creator_info"),
            request,
            &Context::default(),
        )
        .await
    }

    /// Starts a video publish: direct post (`/video/init/`) or inbox draft
    /// (`/inbox/video/init/`). Not idempotent: a lost answer is
    /// [`crate::ErrorKind::OutcomeUnknown`].
    pub async fn init_video(
        &self,
        token: &SecretString,
        init: &InitVideo,
    ) -> Result<InitResult, ProviderError> {
        let (source_info, pull_urls) = match &init.source {
            VideoSource::FileUpload(plan) => (
                json!({
                    "source": "FILE_UPLOAD",
                    "video_size": plan.video_size(),
                    "chunk_size": plan.chunk_size(),
                    "total_chunk_count": plan.total_chunk_count(),
                }),
                Vec::new(),
            ),
            VideoSource::PullFromUrl(url) => (
                json!({"source": "PULL_FROM_URL", "video_url": url}),
                vec![url.clone()],
            ),
        };
        let (path, body) = match &init.mode {
            PostMode::Direct(post_info) => (
                "/v2/post/publish/video/init/",
                json!({"post_info": post_info, "source_info": source_info}),
            ),
            PostMode::Inbox => (
                "/v2/post/publish/inbox/video/init/",
                json!({"source_info": source_info}),
            ),
        };
        self.init(token, "tiktok.init_video", path, &body, &pull_urls)
            .await
    }

    /// Starts a photo post (`/content/init/`, PULL_FROM_URL only). Not idempotent.
    pub async fn init_photo(
        &self,
        token: &SecretString,
        init: &InitPhoto,
    ) -> Result<InitResult, ProviderError> {
        let (post_mode, post_info) = match &init.mode {
            PhotoMode::Direct(info) => (
                "DIRECT_POST",
                serde_json::to_value(info).unwrap_or(Value::Null),
            ),
            PhotoMode::Upload { title, description } => {
                let mut info = serde_json::Map::new();
                if let Some(title) = title {
                    info.insert("title".into(), json!(title));
                }
                if let Some(description) = description {
                    info.insert("description".into(), json!(description));
                }
                ("MEDIA_UPLOAD", Value::Object(info))
            }
        };
        let body = json!({
            "media_type": "PHOTO",
            "post_mode": post_mode,
            "post_info": post_info,
            "source_info": {
                "source": "PULL_FROM_URL",
                "photo_images": init.photo_images,
                "photo_cover_index": init.photo_cover_index,
            },
            // The photo reference puts is_aigc at the top level, not in post_info.
            "is_aigc": init.is_aigc,
        });
        self.init(
            token,
            "tiktok.init_photo",
            "/v2/post/publish/content/init/",
            &body,
            &init.photo_images,
        )
        .await
    }

    async fn init(
        &self,
        token: &SecretString,
        label: &'static str,
        path: &str,
        body: &Value,
        pull_urls: &[String],
    ) -> Result<InitResult, ProviderError> {
        let request = self.api_request(Method::POST, path, token).json(body);
        let context = Context { pull_urls };
        let data: InitData = self
            .envelope(Call::non_idempotent(label), request, &context)
            .await?;
        Ok(InitResult {
            publish_id: data.publish_id,
            upload_url: data
                .upload_url
                .filter(|u| !u.is_empty())
                .map(SecretString::from),
        })
    }

    /// `POST /v2/post/publish/status/fetch/`.
    pub async fn fetch_status(
        &self,
        token: &SecretString,
        publish_id: &str,
    ) -> Result<PublishStatus, ProviderError> {
        let request = self
            .api_request(Method::POST, "/v2/post/publish/status/fetch/", token)
            .json(&json!({"publish_id": publish_id}));
        self.envelope(
            Call::idempotent("tiktok.fetch_status"),
            request,
            &Context::default(),
        )
        .await
    }

    /// `POST /v2/post/publish/cancel/`: best-effort cancel of an ongoing PULL_FROM_URL download.
    pub async fn cancel(
        &self,
        token: &SecretString,
        publish_id: &str,
    ) -> Result<(), ProviderError> {
        let request = self
            .api_request(Method::POST, "/v2/post/publish/cancel/", token)
            .json(&json!({"publish_id": publish_id}));
        let _: serde::de::IgnoredAny = self
            .envelope(
                Call::idempotent("tiktok.cancel"),
                request,
                &Context::default(),
            )
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_keeps_big_ids_exact() {
        let status: PublishStatus = serde_json::from_str(
            r#"{"status":"PUBLISH_COMPLETE","publicaly_available_post_id":[7423456789012345678],"uploaded_bytes":10}"#,
        )
        .unwrap();
        assert_eq!(status.public_post_ids, ["7423456789012345678"]);
        assert_eq!(status.status, PublishState::PublishComplete);
        let odd: PublishStatus = serde_json::from_str(r#"{"status":"SOMETHING_NEW"}"#).unwrap();
        assert_eq!(odd.status, PublishState::Unknown("SOMETHING_NEW".into()));
        assert!(odd.public_post_ids.is_empty());
    }

    #[test]
    fn post_info_wire_shape() {
        let mut info = PostInfo::new(PrivacyLevel::SelfOnly);
        info.title = Some("hi #tag".into());
        let value = serde_json::to_value(&info).unwrap();
        assert_eq!(value["privacy_level"], "SELF_ONLY");
        assert_eq!(value["title"], "hi #tag");
        assert!(value.get("video_cover_timestamp_ms").is_none());
    }

    #[test]
    fn failure_reasons_are_classified() {
        let status = |reason: &str| PublishStatus {
            status: PublishState::Failed,
            fail_reason: Some(reason.into()),
            uploaded_bytes: None,
            downloaded_bytes: None,
            public_post_ids: vec![],
        };
        use crate::ErrorKind::*;
        assert_eq!(status("internal").failure().unwrap().kind, Retryable);
        assert_eq!(
            status("video_pull_failed").failure().unwrap().kind,
            Retryable
        );
        assert_eq!(status("auth_removed").failure().unwrap().kind, Reauth);
        assert_eq!(status("spam_risk_text").failure().unwrap().kind, Permanent);
        assert_eq!(
            status("frame_rate_check_failed").failure().unwrap().kind,
            Permanent
        );
    }
}
