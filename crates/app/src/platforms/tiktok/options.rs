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
    /// Commercial content promoting a third party ("Branded content", labelled "Paid
    /// partnership"); not with `SELF_ONLY`.
    pub brand_content_toggle: bool,
    /// Commercial content promoting the creator's own brand ("Your brand", labelled
    /// "Promotional content").
    pub brand_organic_toggle: bool,
    /// Label the post as AI-generated content.
    pub is_aigc: bool,
    /// The video's length in seconds when known, checked against the creator's maximum.
    #[schema(minimum = 0)]
    pub duration_sec: Option<u32>,
    /// Photo posts: which image (from 0) is the cover.
    #[schema(minimum = 0)]
    pub photo_cover_index: u32,
    /// Photo posts: a title shown above the description, at most 90 characters (UTF-16
    /// units).
    #[schema(max_length = 90)]
    pub title: Option<String>,
    /// Photo posts: the description, at most 4000 characters (UTF-16 units); the caption when
    /// not given.
    #[schema(max_length = 4000)]
    pub description: Option<String>,
    /// Photo posts made directly: let TikTok add recommended music.
    pub auto_add_music: bool,
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
        "title",
        "description",
        "auto_add_music",
    ];

    /// The options that are text whatever they look like (a form's title "2024" stays text).
    pub const TEXT_FIELDS: &[&str] = &["privacy_level", "title", "description"];
}

/// A video's caption (its `title` on TikTok), in UTF-16 units.
pub const MAX_VIDEO_CAPTION: usize = 2200;
/// A photo post's title, in UTF-16 units.
pub const MAX_PHOTO_TITLE: usize = 90;
/// A photo post's description, in UTF-16 units.
pub const MAX_PHOTO_DESCRIPTION: usize = 4000;

/// Checks the texts of a post: a video's caption; a photo post's title and description (the
/// caption when no description is given). The photo post's texts are refused on a video.
fn check_texts(media: &MediaSource, mode: Mode, options: &PostOptions) -> Result<(), PublishError> {
    let units = |text: &str| text.encode_utf16().count();
    let o = &options.options;
    if *media != MediaSource::Photos {
        if units(&options.caption) > MAX_VIDEO_CAPTION {
            return Err(invalid(
                "caption",
                format!("the caption is longer than TikTok's {MAX_VIDEO_CAPTION} characters"),
            ));
        }
        for (field, given) in [
            ("title", o.title.is_some()),
            ("description", o.description.is_some()),
            ("auto_add_music", o.auto_add_music),
        ] {
            if given {
                return Err(invalid(
                    field,
                    format!("{field} is a photo post's: a video's text is its caption"),
                ));
            }
        }
        return Ok(());
    }
    if let Some(title) = &o.title
        && units(title) > MAX_PHOTO_TITLE
    {
        return Err(invalid(
            "title",
            format!(
                "a photo post's title is at most {MAX_PHOTO_TITLE} characters (this one has {})",
                units(title)
            ),
        ));
    }
    let (field, description) = match &o.description {
        Some(d) => ("description", d.as_str()),
        None => ("caption", options.caption.as_str()),
    };
    if units(description) > MAX_PHOTO_DESCRIPTION {
        return Err(invalid(
            field,
            format!(
                "a photo post's description is at most {MAX_PHOTO_DESCRIPTION} characters (this one has {})",
                units(description)
            ),
        ));
    }
    if o.auto_add_music && mode == Mode::Inbox {
        return Err(invalid(
            "auto_add_music",
            "TikTok adds music only to a photo post made directly; a draft's music is chosen in the app",
        ));
    }
    Ok(())
}

/// What a TikTok target stores for its publish job: the options as accepted (checked, with
/// the flags the creator disabled for good turned on), its caption and, for a photo post, its
/// images: by URL (TikTok pulls them) or uploaded to tidepost (`photo_media_ids`, served to
/// TikTok from a signed URL made when the post is sent).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PostOptions {
    pub caption: String,
    #[serde(flatten)]
    pub options: TikTokOptions,
    /// Photo posts: the image URLs TikTok pulls, in order; empty at the place of a photo
    /// uploaded to tidepost.
    pub photo_urls: Vec<String>,
    /// Photo posts: beside `photo_urls`, place by place, the media id of a photo uploaded to
    /// tidepost (empty at the place of a URL); empty when every photo is a URL.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub photo_media_ids: Vec<String>,
}

impl PostOptions {
    /// A photo post's images in order: the URL TikTok pulls, or the id of an uploaded photo.
    pub fn photos(&self) -> Vec<PhotoSource<'_>> {
        self.photo_urls
            .iter()
            .enumerate()
            .map(
                |(i, url)| match self.photo_media_ids.get(i).filter(|id| !id.is_empty()) {
                    Some(id) => PhotoSource::Stored(id),
                    None => PhotoSource::Url(url),
                },
            )
            .collect()
    }

    /// The URLs among a photo post's images.
    pub fn photo_url_list(&self) -> Vec<&str> {
        self.photos()
            .into_iter()
            .filter_map(|p| match p {
                PhotoSource::Url(url) => Some(url),
                PhotoSource::Stored(_) => None,
            })
            .collect()
    }
}

/// Where one image of a photo post comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhotoSource<'a> {
    Url(&'a str),
    /// A media id of the post's workspace.
    Stored(&'a str),
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
    check_texts(media, mode, options)?;
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
        for url in options.photo_url_list() {
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
    /// What a target with `options` stores for its job (`photo_urls`: a photo post's image
    /// URLs, all pulled by TikTok).
    pub fn new(caption: &str, photo_urls: Vec<String>, options: TikTokOptions) -> Self {
        Self {
            caption: caption.to_string(),
            options,
            photo_urls,
            photo_media_ids: Vec::new(),
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
