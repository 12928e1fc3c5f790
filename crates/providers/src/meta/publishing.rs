//! Content publishing on either Graph host: create a container (children first for a
//! carousel), wait until it is `FINISHED`, publish it, read the media. Plus the account's
//! publishing limit.
//!
//! Creating a container is safe to repeat (an unpublished container just expires after 24 h);
//! `media_publish` is not: a lost answer is [`crate::ErrorKind::OutcomeUnknown`].

use reqwest::Method;
use secrecy::SecretString;
use serde::Deserialize;

use super::{GraphHost, MetaClient, PLATFORM};
use crate::error::{Call, ErrorKind, ProviderError};
use crate::ids;

/// Where a carousel item's or story's media comes from (a public URL Meta fetches).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaSource {
    /// A JPEG.
    Image(String),
    Video(String),
}

/// A media container to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Container {
    /// A feed image post.
    Image {
        image_url: String,
        caption: Option<String>,
    },
    /// A reel (every single video is a reel).
    Reel {
        video_url: String,
        caption: Option<String>,
        /// A cover image for the Reels tab.
        cover_url: Option<String>,
        /// Also show the reel in the feed.
        share_to_feed: Option<bool>,
    },
    /// One item of a carousel (no caption).
    CarouselItem(MediaSource),
    /// A carousel of 2–10 FINISHED item containers.
    Carousel {
        children: Vec<String>,
        caption: Option<String>,
    },
    Story(MediaSource),
}

impl Container {
    /// The form parameters of `POST /{ig-user-id}/media`.
    fn params(&self) -> Vec<(&'static str, String)> {
        let mut params = Vec::new();
        let caption = |c: &Option<String>, params: &mut Vec<(&'static str, String)>| {
            if let Some(c) = c {
                params.push(("caption", c.clone()));
            }
        };
        match self {
            Container::Image {
                image_url,
                caption: c,
            } => {
                params.push(("image_url", image_url.clone()));
                caption(c, &mut params);
            }
            Container::Reel {
                video_url,
                caption: c,
                cover_url,
                share_to_feed,
            } => {
                params.push(("media_type", "REELS".into()));
                params.push(("video_url", video_url.clone()));
                caption(c, &mut params);
                if let Some(cover) = cover_url {
                    params.push(("cover_url", cover.clone()));
                }
                if let Some(share) = share_to_feed {
                    params.push(("share_to_feed", share.to_string()));
                }
            }
            Container::CarouselItem(source) => {
                params.push(("is_carousel_item", "true".into()));
                match source {
                    MediaSource::Image(url) => params.push(("image_url", url.clone())),
                    MediaSource::Video(url) => {
                        params.push(("media_type", "VIDEO".into()));
                        params.push(("video_url", url.clone()));
                    }
                }
            }
            Container::Carousel {
                children,
                caption: c,
            } => {
                params.push(("media_type", "CAROUSEL".into()));
                params.push(("children", children.join(",")));
                caption(c, &mut params);
            }
            Container::Story(source) => {
                params.push(("media_type", "STORIES".into()));
                match source {
                    MediaSource::Image(url) => params.push(("image_url", url.clone())),
                    MediaSource::Video(url) => params.push(("video_url", url.clone())),
                }
            }
        }
        params
    }
}

/// A person tagged on a container's media: at `x`/`y` on an image, by name only on a video.
#[derive(Debug, Clone, PartialEq)]
pub struct UserTag {
    pub username: String,
    pub x: Option<f64>,
    pub y: Option<f64>,
}

/// The optional container parameters beside the media (each sent only when set; which media
/// type takes which is the caller's to check, and Meta refuses the rest).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContainerOptions {
    /// `collaborators`: usernames, sent as a JSON array.
    pub collaborators: Vec<String>,
    /// `user_tags`: sent as a JSON array of `{username, x, y}`.
    pub user_tags: Vec<UserTag>,
    /// `location_id`: a Facebook Page with a location.
    pub location_id: Option<String>,
    /// `alt_text` (images).
    pub alt_text: Option<String>,
    /// `thumb_offset` (videos): the cover frame, in milliseconds.
    pub thumb_offset: Option<u64>,
    /// `audio_name` (reels).
    pub audio_name: Option<String>,
    /// `trial_params` (reels): `{"graduation_strategy": "MANUAL" | "SS_PERFORMANCE"}`.
    pub trial_graduation: Option<String>,
}

impl ContainerOptions {
    fn params(&self) -> Vec<(&'static str, String)> {
        let mut params = Vec::new();
        if !self.collaborators.is_empty() {
            params.push((
                "collaborators",
                serde_json::Value::from(self.collaborators.clone()).to_string(),
            ));
        }
        if !self.user_tags.is_empty() {
            let tags: Vec<serde_json::Value> = self
                .user_tags
                .iter()
                .map(|t| {
                    let mut tag = serde_json::json!({ "username": t.username });
                    if let (Some(x), Some(y)) = (t.x, t.y) {
                        tag["x"] = x.into();
                        tag["y"] = y.into();
                    }
                    tag
                })
                .collect();
            params.push(("user_tags", serde_json::Value::from(tags).to_string()));
        }
        if let Some(location) = &self.location_id {
            params.push(("location_id", location.clone()));
        }
        if let Some(alt) = &self.alt_text {
            params.push(("alt_text", alt.clone()));
        }
        if let Some(offset) = self.thumb_offset {
            params.push(("thumb_offset", offset.to_string()));
        }
        if let Some(audio) = &self.audio_name {
            params.push(("audio_name", audio.clone()));
        }
        if let Some(strategy) = &self.trial_graduation {
            params.push((
                "trial_params",
                serde_json::json!({ "graduation_strategy": strategy }).to_string(),
            ));
        }
        params
    }
}

/// A container's `status_code`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize)]
#[serde(from = "String")]
pub enum ContainerState {
    InProgress,
    Finished,
    Error,
    Expired,
    Published,
    Unknown(String),
}

impl From<String> for ContainerState {
    fn from(value: String) -> Self {
        match value.as_str() {
            "IN_PROGRESS" => ContainerState::InProgress,
            "FINISHED" => ContainerState::Finished,
            "ERROR" => ContainerState::Error,
            "EXPIRED" => ContainerState::Expired,
            "PUBLISHED" => ContainerState::Published,
            _ => ContainerState::Unknown(value),
        }
    }
}

/// `GET /{container-id}?fields=id,status_code,status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerStatus {
    pub id: String,
    pub status_code: ContainerState,
    /// Free text; on `ERROR` often carries a `2207xxx` subcode.
    pub status_text: Option<String>,
}

impl ContainerStatus {
    /// The `2207xxx` subcode in the status text, if any.
    pub fn error_subcode(&self) -> Option<i64> {
        let text = self.status_text.as_deref()?;
        text.as_bytes()
            .windows(7)
            .enumerate()
            .filter(|(_, w)| w.starts_with(b"2207") && w.iter().all(u8::is_ascii_digit))
            .find(|(i, _)| {
                let before = i.checked_sub(1).and_then(|b| text.as_bytes().get(b));
                let after = text.as_bytes().get(i + 7);
                !before.is_some_and(u8::is_ascii_digit) && !after.is_some_and(u8::is_ascii_digit)
            })
            .and_then(|(_, w)| std::str::from_utf8(w).ok()?.parse().ok())
    }

    /// For `ERROR` / `EXPIRED`, why, as an error of the right kind (a media fetch or server
    /// error is worth a new container; a format problem is not).
    pub fn failure(&self) -> Option<ProviderError> {
        let (kind, message) = match self.status_code {
            ContainerState::Expired => (
                ErrorKind::Permanent,
                "The media container expired (not published within 24 hours); create a new one.".to_string(),
            ),
            ContainerState::Error => match self.error_subcode() {
                Some(2207003 | 2207052) => (
                    ErrorKind::Retryable,
                    "Meta could not fetch the media from its URL; check it is public and reachable, then create a new container.".into(),
                ),
                Some(2207001 | 2207008 | 2207053) => (
                    ErrorKind::Retryable,
                    "Instagram failed to process the media; create a new container.".into(),
                ),
                _ => (
                    ErrorKind::Permanent,
                    format!(
                        "Instagram could not process the media: {}",
                        self.status_text.as_deref().unwrap_or("no reason given")
                    ),
                ),
            },
            _ => return None,
        };
        let mut error = ProviderError::new(PLATFORM, kind, "container_error", message);
        error.subcode = self.error_subcode();
        Some(error)
    }
}

/// `GET /{ig-user-id}/content_publishing_limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublishingLimit {
    /// Posts published in the current window.
    pub quota_usage: u32,
    pub quota_total: Option<u32>,
    /// The window, in seconds (86400).
    pub window_secs: Option<u64>,
}

impl PublishingLimit {
    /// Posts left in the window, when the total is known.
    pub fn remaining(&self) -> Option<u32> {
        self.quota_total.map(|t| t.saturating_sub(self.quota_usage))
    }
}

/// A published media object.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct MediaInfo {
    #[serde(deserialize_with = "ids::id")]
    pub id: String,
    pub permalink: Option<String>,
    /// `IMAGE`, `VIDEO`, `CAROUSEL_ALBUM`.
    pub media_type: Option<String>,
    /// `FEED`, `REELS`, `STORY`, `AD`.
    pub media_product_type: Option<String>,
    /// ISO 8601, e.g. `2024-05-01T12:00:00+0000`.
    pub timestamp: Option<String>,
    pub caption: Option<String>,
    pub shortcode: Option<String>,
    pub media_url: Option<String>,
    pub thumbnail_url: Option<String>,
    pub like_count: Option<u64>,
    pub comments_count: Option<u64>,
}

#[derive(Deserialize)]
struct Created {
    #[serde(deserialize_with = "ids::id")]
    id: String,
}

#[derive(Deserialize)]
struct RawStatus {
    #[serde(deserialize_with = "ids::id")]
    id: String,
    status_code: ContainerState,
    #[serde(default)]
    status: Option<String>,
}

#[derive(Deserialize)]
struct RawLimit {
    #[serde(default)]
    quota_usage: u32,
    #[serde(default, alias = "rate_limit_settings")]
    config: Option<RawLimitConfig>,
}

#[derive(Deserialize)]
struct RawLimitConfig {
    quota_total: Option<u32>,
    quota_duration: Option<u64>,
}

const MEDIA_FIELDS: &str = "id,permalink,media_type,media_product_type,timestamp,caption,shortcode,media_url,thumbnail_url,like_count,comments_count";

impl MetaClient {
    /// `POST /{ig-user-id}/media`: creates a container and returns its id. Meta fetches the
    /// media URL itself (images during this call, videos afterwards).
    pub async fn create_container(
        &self,
        host: GraphHost,
        token: &SecretString,
        ig_user_id: &str,
        container: &Container,
    ) -> Result<String, ProviderError> {
        self.create_container_with(
            host,
            token,
            ig_user_id,
            container,
            &ContainerOptions::default(),
        )
        .await
    }

    /// [`create_container`](Self::create_container) with the optional parameters (tags,
    /// collaborators, location, alt text, cover frame, audio name, trial reel).
    pub async fn create_container_with(
        &self,
        host: GraphHost,
        token: &SecretString,
        ig_user_id: &str,
        container: &Container,
        options: &ContainerOptions,
    ) -> Result<String, ProviderError> {
        let mut params = container.params();
        params.extend(options.params());
        let request = self
            .graph_request(Method::POST, host, &format!("{ig_user_id}/media"), token)
            .form(&params);
        let created: Created = self
            .graph(Call::idempotent("meta.create_container"), request)
            .await?;
        Ok(created.id)
    }

    /// `GET /{container-id}?fields=id,status_code,status`. Meta suggests polling about once a
    /// minute, for at most five minutes.
    pub async fn container_status(
        &self,
        host: GraphHost,
        token: &SecretString,
        container_id: &str,
    ) -> Result<ContainerStatus, ProviderError> {
        let request = self
            .graph_request(Method::GET, host, container_id, token)
            .query(&[("fields", "id,status_code,status")]);
        let raw: RawStatus = self
            .graph(Call::idempotent("meta.container_status"), request)
            .await?;
        Ok(ContainerStatus {
            id: raw.id,
            status_code: raw.status_code,
            status_text: raw.status.filter(|s| !s.is_empty()),
        })
    }

    /// `POST /{ig-user-id}/media_publish?creation_id=…`: publishes a FINISHED container and
    /// returns the media id. Not idempotent: a timeout or a 5xx is
    /// [`ErrorKind::OutcomeUnknown`] (check the container's status for `PUBLISHED`).
    pub async fn publish(
        &self,
        host: GraphHost,
        token: &SecretString,
        ig_user_id: &str,
        creation_id: &str,
    ) -> Result<String, ProviderError> {
        let request = self
            .graph_request(
                Method::POST,
                host,
                &format!("{ig_user_id}/media_publish"),
                token,
            )
            .form(&[("creation_id", creation_id)]);
        let created: Created = self
            .graph(Call::non_idempotent("meta.publish"), request)
            .await?;
        Ok(created.id)
    }

    /// `GET /{ig-user-id}/content_publishing_limit?fields=config,quota_usage`.
    pub async fn publishing_limit(
        &self,
        host: GraphHost,
        token: &SecretString,
        ig_user_id: &str,
    ) -> Result<PublishingLimit, ProviderError> {
        let request = self
            .graph_request(
                Method::GET,
                host,
                &format!("{ig_user_id}/content_publishing_limit"),
                token,
            )
            .query(&[("fields", "config,quota_usage")]);
        let listing: super::account::Listing<RawLimit> = self
            .graph(Call::idempotent("meta.publishing_limit"), request)
            .await?;
        let raw = listing.data.into_iter().next().unwrap_or(RawLimit {
            quota_usage: 0,
            config: None,
        });
        Ok(PublishingLimit {
            quota_usage: raw.quota_usage,
            quota_total: raw.config.as_ref().and_then(|c| c.quota_total),
            window_secs: raw.config.as_ref().and_then(|c| c.quota_duration),
        })
    }

    /// `GET /{ig-media-id}` with the usual fields.
    pub async fn media(
        &self,
        host: GraphHost,
        token: &SecretString,
        media_id: &str,
    ) -> Result<MediaInfo, ProviderError> {
        let request = self
            .graph_request(Method::GET, host, media_id, token)
            .query(&[("fields", MEDIA_FIELDS)]);
        self.graph(Call::idempotent("meta.media"), request).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: &str, text: &str) -> ContainerStatus {
        ContainerStatus {
            id: "1".into(),
            status_code: ContainerState::from(code.to_string()),
            status_text: Some(text.into()),
        }
    }

    #[test]
    fn error_subcodes_are_found_in_loose_text() {
        assert_eq!(
            status("ERROR", "Error: 2207026").error_subcode(),
            Some(2207026)
        );
        assert_eq!(
            status("ERROR", "Error: 2207003 Media download failed").error_subcode(),
            Some(2207003)
        );
        assert_eq!(status("ERROR", "Error: 122207003").error_subcode(), None);
        assert_eq!(
            status("ERROR", "Error: Media could not be fetched.").error_subcode(),
            None
        );
        assert_eq!(
            status("ERROR", "Error: 2207003 ").failure().unwrap().kind,
            ErrorKind::Retryable
        );
        assert_eq!(
            status("ERROR", "Error: 2207026").failure().unwrap().kind,
            ErrorKind::Permanent
        );
        assert_eq!(
            status("EXPIRED", "").failure().unwrap().kind,
            ErrorKind::Permanent
        );
        assert!(status("FINISHED", "").failure().is_none());
        assert_eq!(
            status("SOMETHING", "").status_code,
            ContainerState::Unknown("SOMETHING".into())
        );
    }

    #[test]
    fn option_params() {
        let options = ContainerOptions {
            collaborators: vec!["a.b".into(), "c_d".into()],
            user_tags: vec![
                UserTag {
                    username: "x".into(),
                    x: Some(0.5),
                    y: Some(0.25),
                },
                UserTag {
                    username: "y".into(),
                    x: None,
                    y: None,
                },
            ],
            location_id: Some("1".into()),
            thumb_offset: Some(1500),
            trial_graduation: Some("MANUAL".into()),
            ..ContainerOptions::default()
        };
        let params = options.params();
        assert_eq!(params[0], ("collaborators", r#"["a.b","c_d"]"#.into()));
        assert_eq!(
            params[1],
            (
                "user_tags",
                r#"[{"username":"x","x":0.5,"y":0.25},{"username":"y"}]"#.into()
            )
        );
        assert!(params.contains(&("thumb_offset", "1500".into())));
        assert!(params.contains(&("trial_params", r#"{"graduation_strategy":"MANUAL"}"#.into())));
        assert!(ContainerOptions::default().params().is_empty());
    }

    #[test]
    fn container_params() {
        let carousel = Container::Carousel {
            children: vec!["1".into(), "2".into()],
            caption: Some("c".into()),
        };
        assert_eq!(
            carousel.params(),
            [
                ("media_type", "CAROUSEL".to_string()),
                ("children", "1,2".into()),
                ("caption", "c".into())
            ]
        );
        let item = Container::CarouselItem(MediaSource::Video("v".into()));
        assert!(item.params().contains(&("media_type", "VIDEO".into())));
        assert!(item.params().contains(&("is_carousel_item", "true".into())));
    }
}
