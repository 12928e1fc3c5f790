//! A TikTok target's options: what the composer, the single-account forms, the API and the
//! publish job share, and their checks against the creator's current `creator_info`.

use serde::{Deserialize, Serialize};
use tidepost_providers::tiktok::{CreatorInfo, PrivacyLevel};

use super::prepare::MediaSource;
use crate::App;
use crate::pipeline::{PublishError, check_media_url, invalid};

/// How a TikTok post is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = TikTokMode)]
pub enum Mode {
    /// Posted on the creator's profile.
    Direct,
    /// A draft in the creator's TikTok inbox, which they finish in the app.
    Inbox,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Direct => "direct",
            Mode::Inbox => "inbox",
        }
    }
}

/// A TikTok target's options, as a person or a client chooses them: the composer, the
/// single-account forms and the API (`targets[].tiktok`) all take this type.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct TikTokOptions {
    /// `direct` (the default): posted on the creator's profile; `inbox`: a draft in their
    /// TikTok inbox, finished in the app.
    pub mode: Option<Mode>,
    /// Who can see a direct post: one of the creator's `privacy_level_options`
    /// (`PUBLIC_TO_EVERYONE`, `MUTUAL_FOLLOW_FRIENDS`, `FOLLOWER_OF_CREATOR`, `SELF_ONLY`).
    /// Required for direct posts; never defaulted.
    pub privacy_level: Option<String>,
    /// Turn comments off (forced on when the creator disabled them).
    pub disable_comment: bool,
    /// Turn duets off (videos only).
    pub disable_duet: bool,
    /// Turn stitches off (videos only).
    pub disable_stitch: bool,
    /// The video frame used as the cover, in milliseconds from the start.
    #[schema(minimum = 0)]
    pub video_cover_timestamp_ms: Option<u32>,
    /// Commercial content promoting the creator's own brand ("Your brand").
    pub brand_content_toggle: bool,
    /// Commercial content promoting a third party ("Branded content"); not with `SELF_ONLY`.
    pub brand_organic_toggle: bool,
    /// Label the post as AI-generated content.
    pub is_aigc: bool,
    /// The video's length in seconds when known, checked against the creator's maximum.
    #[schema(minimum = 0)]
    pub duration_sec: Option<u32>,
    /// Photo posts: which image (from 0) is the cover.
    #[schema(minimum = 0)]
    pub photo_cover_index: u32,
}

impl TikTokOptions {
    /// The options' names, as the API and forms give them (the JSON object's keys).
    pub const FIELDS: &[&str] = &[
        "mode",
        "privacy_level",
        "disable_comment",
        "disable_duet",
        "disable_stitch",
        "video_cover_timestamp_ms",
        "brand_content_toggle",
        "brand_organic_toggle",
        "is_aigc",
        "duration_sec",
        "photo_cover_index",
    ];
}

/// What a TikTok target stores for its publish job: the options as accepted (checked, with
/// the flags the creator disabled for good turned on), its caption and, for a photo post, the
/// image URLs TikTok pulls.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PostOptions {
    pub caption: String,
    #[serde(flatten)]
    pub options: TikTokOptions,
    /// Photo posts: the image URLs TikTok pulls.
    pub photo_urls: Vec<String>,
}

/// Checks `options` against the creator's info and the app's rules; may turn flags on that
/// the creator has disabled for good.
pub fn check_options(
    app: &App,
    mode: Mode,
    media: &MediaSource,
    options: &mut PostOptions,
    creator: Option<&CreatorInfo>,
) -> Result<(), PublishError> {
    if options.caption.encode_utf16().count() > 2200 {
        return Err(invalid(
            "caption",
            "the caption is longer than TikTok's 2200 characters",
        ));
    }
    if let MediaSource::VideoUrl(url) = media {
        check_media_url("media_url", url)?;
    }
    if *media == MediaSource::Photos {
        if options.photo_urls.is_empty() || options.photo_urls.len() > 35 {
            return Err(invalid(
                "photo_urls",
                "a photo post needs between 1 and 35 image URLs",
            ));
        }
        for url in &options.photo_urls {
            check_media_url("photo_urls", url)?;
        }
        if options.options.photo_cover_index as usize >= options.photo_urls.len() {
            return Err(invalid(
                "photo_cover_index",
                "the cover index must point at one of the photos",
            ));
        }
    }
    if mode == Mode::Inbox {
        return Ok(());
    }
    let Some(privacy) = options
        .options
        .privacy_level
        .as_deref()
        .filter(|p| !p.is_empty())
    else {
        return Err(invalid(
            "privacy_level",
            "choose who can see the post: TikTok requires the creator to pick a privacy level (there is no default)",
        ));
    };
    if let Some(creator) = creator {
        let allowed: Vec<&str> = creator
            .privacy_level_options
            .iter()
            .map(PrivacyLevel::as_str)
            .collect();
        if !allowed.contains(&privacy) {
            return Err(invalid(
                "privacy_level",
                format!(
                    "{privacy} is not one of this creator's privacy options ({})",
                    allowed.join(", ")
                ),
            ));
        }
        if creator.comment_disabled {
            options.options.disable_comment = true;
        }
        if creator.duet_disabled {
            options.options.disable_duet = true;
        }
        if creator.stitch_disabled {
            options.options.disable_stitch = true;
        }
        if let (Some(duration), max) = (
            options.options.duration_sec,
            creator.max_video_post_duration_sec,
        ) && max > 0
            && duration > max
        {
            return Err(invalid(
                "duration_sec",
                format!("the video lasts {duration} s but this creator may post at most {max} s"),
            ));
        }
    }
    if options.options.brand_content_toggle && privacy == "SELF_ONLY" {
        return Err(invalid(
            "brand_content_toggle",
            "branded content cannot be private (SELF_ONLY): choose another privacy level or turn branded content off",
        ));
    }
    if app.config.publish.tiktok_unaudited && privacy != "SELF_ONLY" {
        return Err(invalid(
            "privacy_level",
            "this TikTok app is not audited yet, so TikTok only accepts private posts (SELF_ONLY, \"only me\")",
        ));
    }
    Ok(())
}

impl PostOptions {
    /// What a target with `options` stores for its job.
    pub fn new(caption: &str, photo_urls: Vec<String>, options: TikTokOptions) -> Self {
        Self {
            caption: caption.to_string(),
            options,
            photo_urls,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_names_are_the_serialized_keys() {
        let value = serde_json::to_value(TikTokOptions::default()).unwrap();
        let mut keys: Vec<&str> = value
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut fields = TikTokOptions::FIELDS.to_vec();
        keys.sort_unstable();
        fields.sort_unstable();
        assert_eq!(keys, fields);
    }

    #[test]
    fn stored_options_read_the_flat_object_of_earlier_versions() {
        let stored: PostOptions = serde_json::from_str(
            r#"{"caption":"hi","privacy_level":"SELF_ONLY","disable_duet":true,"photo_urls":["https://a.example/1.jpg"]}"#,
        )
        .unwrap();
        assert_eq!(stored.caption, "hi");
        assert_eq!(stored.options.privacy_level.as_deref(), Some("SELF_ONLY"));
        assert!(stored.options.disable_duet);
        assert_eq!(stored.photo_urls.len(), 1);
        let again: PostOptions =
            serde_json::from_value(serde_json::to_value(&stored).unwrap()).unwrap();
        assert_eq!(again, stored);
    }
}
