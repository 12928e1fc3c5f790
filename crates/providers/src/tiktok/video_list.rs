//! `POST /v2/video/list/` (Display API, scope `video.list`): the creator's own public videos,
//! newest first, at most 20 a page. Only public videos are listed: private (`SELF_ONLY`,
//! followers, friends) posts and inbox drafts never appear. The cursor is opaque to us (TikTok
//! hands it back with `has_more`); video ids may arrive as numbers or strings and are read as
//! text.

use reqwest::Method;
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::TikTokClient;
use super::errors::Context;
use crate::error::{Call, ProviderError};
use crate::ids;

/// TikTok's documented maximum of videos per page.
pub const MAX_COUNT: u32 = 20;

/// The fields asked for: enough to recognise a post.
const FIELDS: &str = "id,title,video_description,create_time";

/// One listed video.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct ListedVideo {
    #[serde(deserialize_with = "ids::id")]
    pub id: String,
    /// The caption of a video (TikTok calls it the title).
    pub title: Option<String>,
    pub video_description: Option<String>,
    /// Unix seconds.
    pub create_time: Option<i64>,
}

/// One page of the list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VideoPage {
    pub videos: Vec<ListedVideo>,
    /// Pass back to get the next page; `None` when TikTok gave none.
    pub cursor: Option<i64>,
    pub has_more: bool,
}

#[derive(Deserialize)]
struct ListData {
    #[serde(default)]
    videos: Vec<ListedVideo>,
    #[serde(default)]
    cursor: Option<i64>,
    #[serde(default)]
    has_more: bool,
}

impl TikTokClient {
    /// One page of the creator's public videos, newest first: `max_count` of them (1 to
    /// [`MAX_COUNT`], refused before any call otherwise), older than `cursor` when given.
    pub async fn list_videos(
        &self,
        token: &SecretString,
        cursor: Option<i64>,
        max_count: u32,
    ) -> Result<VideoPage, ProviderError> {
        if !(1..=MAX_COUNT).contains(&max_count) {
            return Err(ProviderError::unexpected(
                super::PLATFORM,
                0,
                &format!("a video list page of {max_count} (TikTok takes 1 to {MAX_COUNT})"),
            ));
        }
        let mut body = Map::new();
        body.insert("max_count".into(), json!(max_count));
        if let Some(cursor) = cursor {
            body.insert("cursor".into(), json!(cursor));
        }
        let request = self
            .api_request(
                Method::POST,
                &format!("/v2/video/list/?fields={FIELDS}"),
                token,
            )
            .json(&Value::Object(body));
        let data: ListData = self
            .envelope(
                Call::idempotent("tiktok.video_list"),
                request,
                &Context::default(),
            )
            .await?;
        Ok(VideoPage {
            videos: data.videos,
            cursor: data.cursor,
            has_more: data.has_more,
        })
    }
}
