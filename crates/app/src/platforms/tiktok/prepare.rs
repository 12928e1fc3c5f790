//! Checking a TikTok target before anything is stored or sent.

use tidepost_store::accounts::Account;
use tidepost_store::posts::{Post, Target};

use super::creator_cache::creator_info;
use super::options::PhotoSource;
use super::{Mode, PostOptions, TikTokOptions, check_options};
use crate::App;
use crate::pipeline::media::{Item, ItemKind};
use crate::pipeline::spec::TargetInput;
use crate::pipeline::{Prepared, PublishError, guard_media_urls, invalid};

/// Where the media comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaSource {
    /// A stored media file (see [`crate::pipeline::media::store`]): FILE_UPLOAD.
    Stored(String),
    /// PULL_FROM_URL: TikTok downloads the video.
    VideoUrl(String),
    /// A photo post: TikTok pulls the images (URLs in the options).
    Photos,
}

impl MediaSource {
    /// The media items of a post with this source (`photos`: a photo post's images).
    pub fn items(&self, photos: &[PhotoSource<'_>]) -> Vec<Item> {
        let video = |url: Option<String>, media_id: Option<String>| Item {
            url,
            media_id,
            kind: Some(ItemKind::Video),
            ..Item::default()
        };
        match self {
            MediaSource::Stored(id) => vec![video(None, Some(id.clone()))],
            MediaSource::VideoUrl(url) => vec![video(Some(url.clone()), None)],
            MediaSource::Photos => photos
                .iter()
                .map(|photo| {
                    let (url, media_id) = match photo {
                        PhotoSource::Url(url) => (Some(url.to_string()), None),
                        PhotoSource::Stored(id) => (None, Some(id.to_string())),
                    };
                    Item {
                        url,
                        media_id,
                        kind: Some(ItemKind::Image),
                        ..Item::default()
                    }
                })
                .collect(),
        }
    }
}

/// A post to one TikTok account in the single-account shape (the API's `account_id` with the
/// TikTok fields); `compose` takes it as the one-target composite it is.
#[derive(Debug, Clone)]
pub struct NewPost {
    pub account_id: String,
    pub mode: Mode,
    pub options: PostOptions,
    pub media: MediaSource,
    pub idempotency_key: Option<String>,
    pub created_by: Option<String>,
}

/// Checks a TikTok target without storing anything: the media (stored media must be a video),
/// the creator's current options for a direct post (`creator_info`, kept a minute per account
/// by [`creator_cache`](super::creator_cache)), and the
/// options against them and the app's rules ([`check_options`]). The quotas are the caller's.
pub async fn prepare(
    app: &App,
    workspace_id: &str,
    account: Account,
    mode: Mode,
    media: &MediaSource,
    mut options: PostOptions,
) -> Result<Prepared, PublishError> {
    let (kind, media_id, media_url, source, bytes_total) = match media {
        MediaSource::Stored(id) => {
            let media = tidepost_store::media::get(&app.db, workspace_id, id)
                .await?
                .ok_or(PublishError::NotFound("media"))?;
            if media.kind != "video" {
                return Err(invalid(
                    "media",
                    "the stored media is not a video: a photo post gives its images as photos (kind image)",
                ));
            }
            check_cover(options.options.video_cover_timestamp_ms, media.duration_ms)?;
            (
                "video",
                Some(media.id.clone()),
                None,
                "file_upload",
                media.size_bytes,
            )
        }
        MediaSource::VideoUrl(url) => ("video", None, Some(url.clone()), "pull_from_url", 0),
        MediaSource::Photos => {
            if options.options.video_cover_timestamp_ms.is_some() {
                return Err(invalid(
                    "video_cover_timestamp_ms",
                    "a cover frame is a video's: a photo post's cover is one of its photos (photo_cover_index)",
                ));
            }
            ("photo", None, None, "pull_from_url", 0)
        }
    };
    // Before anything is asked of TikTok: a refused URL costs no call.
    if let Some(url) = &media_url {
        guard_media_urls(app, "media_url", &[url]).await?;
    }
    // More than 35 photos is refused below without looking at them.
    if *media == MediaSource::Photos && options.photo_urls.len() <= 35 {
        let urls = options.photo_url_list();
        guard_media_urls(app, "photo_urls", &urls).await?;
        // Uploaded photos: images of this workspace.
        for photo in options.photos() {
            if let PhotoSource::Stored(id) = photo {
                let media = tidepost_store::media::get(&app.db, workspace_id, id)
                    .await?
                    .ok_or(PublishError::NotFound("media"))?;
                if media.kind != "image" {
                    return Err(invalid(
                        "media",
                        "TikTok posts one video or 1 to 35 images, not a mix or several videos",
                    ));
                }
            }
        }
    }
    let creator = if mode == Mode::Direct {
        Some(creator_info(app, &account).await?)
    } else {
        None
    };
    check_options(app, mode, media, &mut options, creator.as_ref())?;
    Ok(Prepared {
        account,
        kind: kind.into(),
        mode: mode.as_str().into(),
        source: source.into(),
        bytes_total,
        media_id,
        media_url,
        caption: options.caption.clone(),
        options: serde_json::to_string(&options).unwrap_or_else(|_| "{}".into()),
    })
}

/// A video's cover frame (`video_cover_timestamp_ms`) must lie within its probed length.
fn check_cover(cover_ms: Option<u32>, length_ms: Option<i64>) -> Result<(), PublishError> {
    if let (Some(cover), Some(length)) = (cover_ms, length_ms)
        && i64::from(cover) >= length
    {
        return Err(invalid(
            "video_cover_timestamp_ms",
            format!("the cover frame at {cover} ms is past the video's end (it lasts {length} ms)"),
        ));
    }
    Ok(())
}

/// The shared media as TikTok takes it: one video (stored, or a URL TikTok pulls), or images
/// (a photo post) by URL or uploaded to tidepost: their URLs and media ids place by place
/// (see [`PostOptions::photo_media_ids`]).
#[allow(clippy::type_complexity)]
fn media_of(
    media: &[Item],
    kinds: &[Option<ItemKind>],
) -> Result<(MediaSource, Vec<String>, Vec<String>), String> {
    match (media, kinds) {
        ([item], [Some(ItemKind::Video)]) => match (&item.media_id, &item.url) {
            (Some(id), None) => Ok((MediaSource::Stored(id.clone()), Vec::new(), Vec::new())),
            (None, Some(url)) => Ok((MediaSource::VideoUrl(url.clone()), Vec::new(), Vec::new())),
            _ => Err("give the video either as a url or as a media_id".into()),
        },
        _ if !kinds.is_empty() && kinds.iter().all(|k| *k == Some(ItemKind::Image)) => {
            let mut urls = Vec::new();
            let mut ids = Vec::new();
            for item in media {
                match (&item.url, &item.media_id) {
                    (Some(url), None) => {
                        urls.push(url.clone());
                        ids.push(String::new());
                    }
                    (None, Some(id)) => {
                        urls.push(String::new());
                        ids.push(id.clone());
                    }
                    _ => return Err("give each photo either as a url or as a media_id".into()),
                }
            }
            if ids.iter().all(String::is_empty) {
                ids.clear();
            }
            Ok((MediaSource::Photos, urls, ids))
        }
        _ if kinds.iter().any(Option::is_none) => {
            Err("say whether each media is an image or a video (\"kind\")".into())
        }
        _ => Err("TikTok posts one video or 1 to 35 images, not a mix or several videos".into()),
    }
}

/// Checks one target of a composite post: its media as TikTok takes it, then [`prepare`].
pub async fn prepare_target(
    app: &App,
    workspace_id: &str,
    account: Account,
    input: &TargetInput<'_>,
) -> Result<Prepared, PublishError> {
    let (media, photo_urls, photo_media_ids) =
        media_of(input.media, input.kinds).map_err(|message| invalid("media", message))?;
    let o = input.spec.tiktok.clone().unwrap_or_default();
    let mode = o.mode.unwrap_or(Mode::Direct);
    let options = PostOptions {
        photo_media_ids,
        ..PostOptions::new(input.caption, photo_urls, o)
    };
    prepare(app, workspace_id, account, mode, &media, options).await
}

/// A single-account TikTok post stored before posts were composites, read back as its
/// caption, media and target (to change it like any other post); `None` when unreadable.
pub fn single_as_spec(
    post: &Post,
    target: &Target,
) -> Option<(String, Vec<Item>, crate::pipeline::spec::TargetSpec)> {
    let o: PostOptions = serde_json::from_str(&post.options).ok()?;
    let source = match (&post.media_id, &post.media_url) {
        (Some(id), _) => MediaSource::Stored(id.clone()),
        (None, Some(url)) if post.kind == "video" => MediaSource::VideoUrl(url.clone()),
        _ => MediaSource::Photos,
    };
    let media = source.items(&o.photos());
    let mode = if target.mode == Mode::Inbox.as_str() {
        Mode::Inbox
    } else {
        Mode::Direct
    };
    let spec = crate::pipeline::spec::TargetSpec {
        account_id: target.account_id.clone(),
        tiktok: Some(TikTokOptions {
            mode: Some(mode),
            ..o.options.clone()
        }),
        ..Default::default()
    };
    Some((o.caption, media, spec))
}

/// The media rules a TikTok target's media must meet: a video's, or each photo's.
pub fn media_target(prepared: &Prepared) -> Option<crate::media::rules::Target> {
    use crate::media::rules::Target;
    match prepared.kind.as_str() {
        "video" => Some(Target::TikTokVideo),
        "photo" => Some(Target::TikTokPhoto),
        _ => None,
    }
}
