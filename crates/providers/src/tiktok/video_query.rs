//! `POST /v2/video/query/` (Display API, scope `video.list`): the public counts of up to 20 of
//! the creator's own videos by id, for metrics. Video ids are ~19-digit numbers beyond what
//! JavaScript can hold, so TikTok may send them as numbers or strings; both are read as text.

use reqwest::Method;
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::json;

use super::TikTokClient;
use super::errors::Context;
use crate::error::{Call, ProviderError};
use crate::ids;

/// TikTok's documented maximum of ids per query.
pub const MAX_IDS_PER_QUERY: usize = 20;

/// The fields asked for: the id and the four public counts.
const FIELDS: &str = "id,create_time,like_count,comment_count,share_count,view_count";

/// One video's counts; a count TikTok leaves out is `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct VideoCounts {
    #[serde(deserialize_with = "ids::id")]
    pub id: String,
    /// Unix seconds.
    pub create_time: Option<i64>,
    pub like_count: Option<i64>,
    pub comment_count: Option<i64>,
    pub share_count: Option<i64>,
    pub view_count: Option<i64>,
}

#[derive(Deserialize)]
struct QueryData {
    #[serde(default)]
    videos: Vec<VideoCounts>,
}

impl TikTokClient {
    /// The counts of `video_ids` (at most [`MAX_IDS_PER_QUERY`]; more is refused before any
    /// call). Ids TikTok does not return (deleted, private, not the token's) are simply absent.
    pub async fn query_videos(
        &self,
        token: &SecretString,
        video_ids: &[String],
    ) -> Result<Vec<VideoCounts>, ProviderError> {
        if video_ids.len() > MAX_IDS_PER_QUERY {
            return Err(ProviderError::unexpected(
                super::PLATFORM,
                0,
                &format!(
                    "a video query of {} ids (TikTok takes at most {MAX_IDS_PER_QUERY})",
                    video_ids.len()
                ),
            ));
        }
        let request = self
            .api_request(
                Method::POST,
                &format!("/v2/video/query/?fields={FIELDS}"),
                token,
            )
            .json(&json!({"filters": {"video_ids": video_ids}}));
        let data: QueryData = self
            .envelope(
                Call::idempotent("tiktok.video_query"),
                request,
                &Context::default(),
            )
            .await?;
        Ok(data.videos)
    }
}
