//! A stored target's preview as the post page shows it: the model `assets/preview.js` draws
//! (the composer draws the same model from its form as it is edited). The media (library
//! items through `/api/v1/media/{id}/content`, a video's cover frame through its frame route
//! or a reel's cover image, a TikTok photo post opening on its cover photo),
//! the caption the target was sent with, the disclosure labels, collaborators, the people
//! tagged where they sit, and the link to the post on the platform once it is known.

use serde::Serialize;
use tidepost_app::instagram::options::{InstagramPost, MediaType, UserTag};
use tidepost_app::pipeline::media::ItemKind;
use tidepost_app::tiktok::options::{PhotoSource, PostOptions};
use tidepost_domain::Platform;
use tidepost_store::media as repo;
use tidepost_store::posts::{Post, Target};

use crate::error::PageError;
use crate::state::HttpState;

#[derive(Serialize)]
struct Model<'a> {
    platform: &'static str,
    target: &'a str,
    name: &'a str,
    /// Instagram: image, carousel, reel or story; TikTok: video or photo.
    kind: &'a str,
    caption: String,
    media: Vec<Item>,
    cover_ms: u64,
    /// A reel's own cover image.
    #[serde(skip_serializing_if = "Option::is_none")]
    cover_url: Option<String>,
    /// The item shown first (a TikTok photo post's cover).
    start: u32,
    labels: Vec<&'static str>,
    collaborators: Vec<String>,
    tags: Vec<UserTag>,
    link: Option<Link>,
}

#[derive(Serialize)]
struct Item {
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    width: i64,
    height: i64,
    duration_ms: i64,
}

#[derive(Serialize)]
struct Link {
    href: String,
    text: &'static str,
}

/// One media of the post: a library item of the workspace (as stored), or a URL.
async fn item(
    state: &HttpState,
    workspace_id: &str,
    media_id: Option<&str>,
    url: Option<&str>,
    kind: &'static str,
) -> Result<Item, PageError> {
    if let Some(id) = media_id
        && let Some(m) = repo::get(&state.app.db, workspace_id, id).await?
    {
        return Ok(Item {
            kind: if m.kind == "video" { "video" } else { "image" },
            id: Some(m.id),
            url: None,
            name: m.original_name,
            width: m.width.unwrap_or(0),
            height: m.height.unwrap_or(0),
            duration_ms: m.duration_ms.unwrap_or(0),
        });
    }
    Ok(Item {
        kind,
        id: None,
        url: url.map(str::to_string),
        name: url.map(str::to_string),
        width: 0,
        height: 0,
        duration_ms: 0,
    })
}

/// The preview model of `target` as JSON (for the page's `data-preview`), its permalink
/// (`link`) given once the platform has one.
pub(super) async fn of(
    state: &HttpState,
    post: &Post,
    target: &Target,
    name: &str,
    link: Option<String>,
) -> Result<String, PageError> {
    let ws = &target.workspace_id;
    let options = target.options_or(post);
    let model = match target.platform {
        Platform::Instagram => {
            let ig: InstagramPost = serde_json::from_str(options).unwrap_or_default();
            let mut media = Vec::new();
            for i in &ig.items {
                let kind = match (i.kind, ig.media_type) {
                    (Some(ItemKind::Video), _) | (None, MediaType::Reel) => "video",
                    _ => "image",
                };
                media.push(item(state, ws, i.media_id.as_deref(), i.url.as_deref(), kind).await?);
            }
            Model {
                platform: "instagram",
                target: &target.id,
                name,
                kind: ig.media_type.as_str(),
                caption: ig.caption,
                media,
                cover_ms: ig.thumb_offset.unwrap_or(0),
                cover_url: ig.cover_url.filter(|u| !u.trim().is_empty()),
                start: 0,
                labels: Vec::new(),
                collaborators: ig.collaborators,
                tags: ig.user_tags,
                link: link.map(|href| Link {
                    href,
                    text: "View on Instagram",
                }),
            }
        }
        Platform::Tiktok => {
            let tt: PostOptions = serde_json::from_str(options).unwrap_or_default();
            let photos = tt.photos();
            let mut media = Vec::new();
            if photos.is_empty() {
                media.push(
                    item(
                        state,
                        ws,
                        post.media_id.as_deref(),
                        post.media_url.as_deref(),
                        "video",
                    )
                    .await?,
                );
            }
            for p in photos {
                media.push(match p {
                    PhotoSource::Stored(id) => item(state, ws, Some(id), None, "image").await?,
                    PhotoSource::Url(url) => item(state, ws, None, Some(url), "image").await?,
                });
            }
            let o = &tt.options;
            let mut labels = Vec::new();
            if o.brand_organic_toggle {
                labels.push("Promotional content");
            }
            if o.brand_content_toggle {
                labels.push("Paid partnership");
            }
            if o.is_aigc {
                labels.push("AI-generated");
            }
            Model {
                platform: "tiktok",
                target: &target.id,
                name,
                kind: if post.kind == "photo" {
                    "photo"
                } else {
                    "video"
                },
                caption: tt.caption,
                media,
                cover_ms: o.video_cover_timestamp_ms.map(u64::from).unwrap_or(0),
                cover_url: None,
                start: o.photo_cover_index,
                labels,
                collaborators: Vec::new(),
                tags: Vec::new(),
                link: link.map(|href| Link {
                    href,
                    text: "View on TikTok",
                }),
            }
        }
        Platform::Threads => {
            let th: tidepost_app::threads::options::ThreadsPost =
                serde_json::from_str(options).unwrap_or_default();
            let mut media = Vec::new();
            for i in &th.items {
                let kind = match i.kind {
                    Some(ItemKind::Video) => "video",
                    _ => "image",
                };
                media.push(item(state, ws, i.media_id.as_deref(), i.url.as_deref(), kind).await?);
            }
            Model {
                platform: "threads",
                target: &target.id,
                name,
                kind: th.media_type.as_str(),
                caption: th.text,
                media,
                cover_ms: 0,
                cover_url: None,
                start: 0,
                labels: Vec::new(),
                collaborators: Vec::new(),
                tags: Vec::new(),
                link: link.map(|href| Link {
                    href,
                    text: "View on Threads",
                }),
            }
        }
    };
    serde_json::to_string(&model).map_err(PageError::internal)
}
