//! An Instagram target's options ([`InstagramOptions`], what a person or a client chooses) and
//! the post as accepted ([`InstagramPost`], what the publish job reads).

use serde::{Deserialize, Serialize};

use crate::pipeline::media::Item;

/// What is published.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = InstagramMediaType)]
pub enum MediaType {
    #[default]
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

/// A person tagged in a photo (or, on a reel or a carousel video, by name only).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = InstagramUserTag)]
pub struct UserTag {
    /// A carousel's item the tag is on, counted from 0; only for carousels (a single image or
    /// reel has one media).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item: Option<usize>,
    /// A public Instagram username, without `@`.
    pub username: String,
    /// Images: where the tag sits, from the left edge (0.0) to the right (1.0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<f64>,
    /// Images: where the tag sits, from the top edge (0.0) to the bottom (1.0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<f64>,
}

/// How a trial reel (shown to non-followers first) graduates to the followers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = InstagramGraduationStrategy)]
pub enum GraduationStrategy {
    /// The person graduates it in the app.
    #[serde(rename = "MANUAL")]
    Manual,
    /// Instagram graduates it when it performs well with non-followers.
    #[serde(rename = "SS_PERFORMANCE")]
    SsPerformance,
}

impl GraduationStrategy {
    pub fn as_str(self) -> &'static str {
        match self {
            GraduationStrategy::Manual => "MANUAL",
            GraduationStrategy::SsPerformance => "SS_PERFORMANCE",
        }
    }
}

/// A trial reel's parameters (`trial_params`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = InstagramTrialParams)]
pub struct TrialParams {
    pub graduation_strategy: GraduationStrategy,
}

/// An Instagram target's options, as a person or a client chooses them (`targets[].instagram`).
/// Which media type takes which option, and the limits, are checked by
/// [`prepare`](super::prepare) (`takes` and `check_options`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct InstagramOptions {
    /// Inferred from the media when absent: one image → image, one video → reel, several →
    /// carousel.
    pub media_type: Option<MediaType>,
    /// Reels: a JPEG shown as the cover in the Reels tab (or give `thumb_offset`).
    pub cover_url: Option<String>,
    /// Reels: also show the reel in the feed.
    pub share_to_feed: Option<bool>,
    /// Up to 3 usernames invited as collaborators (not on stories).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub collaborators: Vec<String>,
    /// People tagged: on an image at `x`/`y`; on a reel by name; on a carousel per `item`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub user_tags: Vec<UserTag>,
    /// The id of a Facebook Page with a location (digits; not on stories).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location_id: Option<String>,
    /// Image posts: the text a screen reader says (up to 1000 characters).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alt_text: Option<String>,
    /// Reels: the frame used as the cover, in milliseconds from the start.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thumb_offset: Option<u64>,
    /// Reels: the name of the reel's original audio.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audio_name: Option<String>,
    /// Reels: publish as a trial reel, shown to non-followers first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trial_params: Option<TrialParams>,
    /// A comment tidepost posts under the media right after it is published (not on stories;
    /// up to 2200 characters and 30 hashtags).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_comment: Option<String>,
}

/// An Instagram post as accepted (stored as the post's options). Fields added after the first
/// release are `#[serde(default)]`: posts stored before them still read.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
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
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub collaborators: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub user_tags: Vec<UserTag>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alt_text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thumb_offset: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trial_params: Option<TrialParams>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_comment: Option<String>,
}

impl InstagramPost {
    /// The post of a target: its media type, caption and media, and the options chosen
    /// (empty texts are no choice).
    pub fn from_options(
        media_type: MediaType,
        caption: String,
        items: Vec<Item>,
        o: InstagramOptions,
    ) -> Self {
        let text = |t: Option<String>| t.map(|t| t.trim().to_string()).filter(|t| !t.is_empty());
        InstagramPost {
            media_type,
            caption,
            items,
            cover_url: text(o.cover_url),
            share_to_feed: o.share_to_feed,
            collaborators: o.collaborators,
            user_tags: o.user_tags,
            location_id: text(o.location_id),
            alt_text: text(o.alt_text),
            thumb_offset: o.thumb_offset,
            audio_name: text(o.audio_name),
            trial_params: o.trial_params,
            first_comment: text(o.first_comment),
        }
    }

    /// The options this post was made with (its media type given).
    pub fn options(&self) -> InstagramOptions {
        InstagramOptions {
            media_type: Some(self.media_type),
            cover_url: self.cover_url.clone(),
            share_to_feed: self.share_to_feed,
            collaborators: self.collaborators.clone(),
            user_tags: self.user_tags.clone(),
            location_id: self.location_id.clone(),
            alt_text: self.alt_text.clone(),
            thumb_offset: self.thumb_offset,
            audio_name: self.audio_name.clone(),
            trial_params: self.trial_params,
            first_comment: self.first_comment.clone(),
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Posts stored before the options were added still read, with none of them; a post
    /// without options is stored as before (no new keys).
    #[test]
    fn stored_posts_read_without_the_new_options() {
        let old = r#"{"media_type":"reel","caption":"c","items":[{"url":"https://m.example/r.mp4"}],"cover_url":null,"share_to_feed":true}"#;
        let post: InstagramPost = serde_json::from_str(old).unwrap();
        assert_eq!(post.media_type, MediaType::Reel);
        assert!(post.collaborators.is_empty() && post.user_tags.is_empty());
        assert_eq!(post.first_comment, None);
        let stored = serde_json::to_value(&post).unwrap();
        for key in ["collaborators", "user_tags", "location_id", "first_comment"] {
            assert!(stored.get(key).is_none(), "{key} in {stored}");
        }
        // And every option survives the round trip through the options and back.
        let options = InstagramOptions {
            collaborators: vec!["a".into()],
            user_tags: vec![UserTag {
                item: Some(1),
                username: "b".into(),
                x: Some(0.5),
                y: Some(0.5),
            }],
            location_id: Some(" 1 ".into()),
            alt_text: Some("".into()),
            thumb_offset: Some(3),
            audio_name: Some("s".into()),
            trial_params: Some(TrialParams {
                graduation_strategy: GraduationStrategy::Manual,
            }),
            first_comment: Some("hi".into()),
            ..InstagramOptions::default()
        };
        let post = InstagramPost::from_options(MediaType::Reel, "c".into(), vec![], options);
        assert_eq!(post.location_id.as_deref(), Some("1"));
        assert_eq!(post.alt_text, None, "an empty text is no choice");
        let back: InstagramPost =
            serde_json::from_str(&serde_json::to_string(&post).unwrap()).unwrap();
        assert_eq!(back, post);
        assert_eq!(back.options().trial_params, post.trial_params);
        assert!(serde_json::from_str::<TrialParams>(r#"{"graduation_strategy":"SOON"}"#).is_err());
    }
}
