//! An Instagram target's options ([`InstagramOptions`], what a person or a client chooses) and
//! the post as accepted ([`InstagramPost`], what the publish job reads).

use serde::{Deserialize, Serialize};

use crate::pipeline::media::Item;

/// What is published.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = InstagramMediaType)]
pub enum MediaType {
    Image,
    Reel,
    Carousel,
    Story,
}

impl MediaType {
    pub fn as_str(self) -> &'static str {
        match self {
            MediaType::Image => "image",
            MediaType::Reel => "reel",
            MediaType::Carousel => "carousel",
            MediaType::Story => "story",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "image" => Some(MediaType::Image),
            "reel" => Some(MediaType::Reel),
            "carousel" => Some(MediaType::Carousel),
            "story" => Some(MediaType::Story),
            _ => None,
        }
    }
}

/// An Instagram target's options, as a person or a client chooses them (`targets[].instagram`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct InstagramOptions {
    /// Inferred from the media when absent: one image → image, one video → reel, several →
    /// carousel.
    pub media_type: Option<MediaType>,
    pub cover_url: Option<String>,
    pub share_to_feed: Option<bool>,
}

/// An Instagram post as accepted (stored as the post's options).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstagramPost {
    pub media_type: MediaType,
    #[serde(default)]
    pub caption: String,
    pub items: Vec<Item>,
    /// Reels: a JPEG shown as the cover in the Reels tab.
    #[serde(default)]
    pub cover_url: Option<String>,
    /// Reels: also show the reel in the feed.
    #[serde(default)]
    pub share_to_feed: Option<bool>,
}

/// A post to one Instagram account in the single-account shape (the API's `account_id` with an
/// `instagram` object); `compose` takes it as the one-target composite it is.
#[derive(Debug, Clone)]
pub struct NewInstagramPost {
    pub account_id: String,
    pub post: InstagramPost,
    pub idempotency_key: Option<String>,
    pub created_by: Option<String>,
}
