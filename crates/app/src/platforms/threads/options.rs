//! A Threads target's options ([`ThreadsOptions`], what a person or a client chooses) and the
//! post as accepted ([`ThreadsPost`], what the publish job reads). Typed once: the API's
//! schema, the composer's form and the stored post all use these.

use serde::{Deserialize, Serialize};

use crate::pipeline::media::Item;

/// What is published: inferred from the media when not given (none → text, one image →
/// image, one video → video, several → carousel).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = ThreadsMediaType)]
pub enum MediaType {
    #[default]
    Text,
    Image,
    Video,
    Carousel,
}

impl MediaType {
    pub fn as_str(self) -> &'static str {
        match self {
            MediaType::Text => "text",
            MediaType::Image => "image",
            MediaType::Video => "video",
            MediaType::Carousel => "carousel",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "text" => Some(MediaType::Text),
            "image" => Some(MediaType::Image),
            "video" => Some(MediaType::Video),
            "carousel" => Some(MediaType::Carousel),
            _ => None,
        }
    }
}

/// Who may reply to the post (`reply_control`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = ThreadsReplyControl)]
pub enum ReplyControl {
    Everyone,
    AccountsYouFollow,
    MentionedOnly,
}

impl ReplyControl {
    pub const ALL: [ReplyControl; 3] = [
        ReplyControl::Everyone,
        ReplyControl::AccountsYouFollow,
        ReplyControl::MentionedOnly,
    ];

    pub fn as_str(self) -> &'static str {
        self.provider().as_str()
    }

    pub fn label(self) -> &'static str {
        match self {
            ReplyControl::Everyone => "Everyone",
            ReplyControl::AccountsYouFollow => "Profiles you follow",
            ReplyControl::MentionedOnly => "Profiles you mention",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == text)
    }

    pub fn provider(self) -> tidepost_providers::threads::ReplyControl {
        use tidepost_providers::threads::ReplyControl as P;
        match self {
            ReplyControl::Everyone => P::Everyone,
            ReplyControl::AccountsYouFollow => P::AccountsYouFollow,
            ReplyControl::MentionedOnly => P::MentionedOnly,
        }
    }
}

/// A Threads target's options, as a person or a client chooses them (`targets[].threads`).
/// Which media type takes which, and the limits, are checked by [`prepare`](super::prepare).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
#[schema(as = ThreadsOptions)]
pub struct ThreadsOptions {
    /// Inferred from the media when absent: none → text, one image → image, one video →
    /// video, several → carousel.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub media_type: Option<MediaType>,
    /// Who may reply (Threads' default: everyone).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply_control: Option<ReplyControl>,
    /// Text posts only: a link shown as a preview card (counts toward the 5 links a post may
    /// have).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link_attachment: Option<String>,
    /// Image and video posts (and each carousel item): the text a screen reader says (up to
    /// 1000 characters).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alt_text: Option<String>,
}

/// A Threads post as accepted (stored as the target's options).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThreadsPost {
    pub media_type: MediaType,
    #[serde(default)]
    pub text: String,
    #[serde(default)]
    pub items: Vec<Item>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_control: Option<ReplyControl>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link_attachment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alt_text: Option<String>,
}

impl ThreadsPost {
    /// The post of a target: its media type, text and media, and the options chosen (empty
    /// texts are no choice).
    pub fn from_options(
        media_type: MediaType,
        text: String,
        items: Vec<Item>,
        o: ThreadsOptions,
    ) -> Self {
        let clean = |t: Option<String>| t.map(|t| t.trim().to_string()).filter(|t| !t.is_empty());
        ThreadsPost {
            media_type,
            text,
            items,
            reply_control: o.reply_control,
            link_attachment: clean(o.link_attachment),
            alt_text: clean(o.alt_text),
        }
    }

    /// The options this post was made with (its media type given).
    pub fn options(&self) -> ThreadsOptions {
        ThreadsOptions {
            media_type: Some(self.media_type),
            reply_control: self.reply_control,
            link_attachment: self.link_attachment.clone(),
            alt_text: self.alt_text.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_round_trip_and_refuse_unknown_values() {
        let o: ThreadsOptions = serde_json::from_value(serde_json::json!({
            "reply_control": "mentioned_only",
            "link_attachment": " https://example.com/a ",
        }))
        .unwrap();
        assert_eq!(o.reply_control, Some(ReplyControl::MentionedOnly));
        let post = ThreadsPost::from_options(MediaType::Text, "hi".into(), vec![], o);
        assert_eq!(
            post.link_attachment.as_deref(),
            Some("https://example.com/a")
        );
        let back: ThreadsPost =
            serde_json::from_str(&serde_json::to_string(&post).unwrap()).unwrap();
        assert_eq!(back, post);
        assert_eq!(back.options().media_type, Some(MediaType::Text));
        assert!(
            serde_json::from_value::<ThreadsOptions>(
                serde_json::json!({"reply_control": "friends"})
            )
            .is_err()
        );
        assert!(
            serde_json::from_value::<ThreadsOptions>(serde_json::json!({"topic": "x"})).is_err()
        );
        for r in ReplyControl::ALL {
            assert_eq!(ReplyControl::parse(r.as_str()), Some(r));
        }
    }
}
