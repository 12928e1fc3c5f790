//! The schemas of the posts API in the OpenAPI document.

#![allow(dead_code)]

use tidepost_app::compose::TargetSpec;
use tidepost_app::instagram::options::{
    MediaType as InstagramMediaType, TrialParams as InstagramTrialParams,
    UserTag as InstagramUserTag,
};
use tidepost_app::pipeline::media::Item;
use tidepost_app::tiktok::TikTokOptions;

/// The body of `POST /api/v1/posts` and `POST /api/v1/posts/validate` (or the same fields as
/// multipart text parts, with `file` parts). Give `targets` for one post to several accounts,
/// or the single-account fields: `account_id` with the TikTok options at the top level, or
/// `account_id` with an `instagram` object.
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[schema(as = CreatePost)]
pub(crate) struct CreatePostDoc {
    /// The caption every target uses unless it has its own.
    caption: Option<String>,
    /// The shared media of a post to several accounts.
    media: Option<Vec<Item>>,
    /// One per account, each with its platform's options.
    targets: Option<Vec<TargetSpec>>,
    /// RFC 3339 with an offset, or a local date and time with `time_zone`.
    scheduled_at: Option<String>,
    /// An IANA zone name, such as `Europe/Paris`.
    time_zone: Option<String>,
    /// `exact` (the default) refuses a time that would break a posting limit;
    /// `next_free_slot` takes the next time the limits allow.
    schedule: Option<ScheduleDoc>,
    /// Single-account shape: the account.
    account_id: Option<String>,
    /// Single-account TikTok shape: a video TikTok downloads.
    media_url: Option<String>,
    /// Single-account TikTok shape: stored media (`POST /api/v1/media`).
    media_id: Option<String>,
    /// Single-account TikTok shape: a photo post's images, which TikTok downloads.
    photo_urls: Option<Vec<String>>,
    /// Single-account TikTok shape: the TikTok options, at the top level.
    #[serde(flatten)]
    tiktok: TikTokOptions,
    /// Single-account Instagram shape: the post.
    instagram: Option<InstagramBodyDoc>,
    /// Same as the `Idempotency-Key` header.
    idempotency_key: Option<String>,
    /// Save it as a draft instead (`201` with the draft): nothing is checked or sent until
    /// `POST /api/v1/drafts/{id}/publish`.
    draft: Option<bool>,
}

/// How a scheduled time meets the posting limits.
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = PostSchedule)]
pub(crate) enum ScheduleDoc {
    Exact,
    NextFreeSlot,
}

/// The `instagram` object of the single-account shape.
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[schema(as = InstagramPost)]
pub(crate) struct InstagramBodyDoc {
    media_type: InstagramMediaType,
    /// Its own caption instead of the top-level one.
    caption: Option<String>,
    /// The media (alias `children`): 2 to 10 for a carousel, one otherwise.
    items: Option<Vec<Item>>,
    /// One media by URL instead of `items`.
    media_url: Option<String>,
    /// One stored media instead of `items`.
    media_id: Option<String>,
    /// Reels: a JPEG shown as the cover in the Reels tab.
    cover_url: Option<String>,
    /// Reels: also show the reel in the feed.
    share_to_feed: Option<bool>,
    /// Up to 3 usernames invited as collaborators (not on stories).
    collaborators: Option<Vec<String>>,
    /// People tagged: on an image at `x`/`y`; on a reel by name; on a carousel per `item`.
    user_tags: Option<Vec<InstagramUserTag>>,
    /// The id of a Facebook Page with a location (digits; not on stories).
    location_id: Option<String>,
    /// Image posts: the text a screen reader says (up to 1000 characters).
    alt_text: Option<String>,
    /// Reels: the frame used as the cover, in milliseconds from the start.
    thumb_offset: Option<u64>,
    /// Reels: the name of the reel's original audio.
    audio_name: Option<String>,
    /// Reels: publish as a trial reel, shown to non-followers first.
    trial_params: Option<InstagramTrialParams>,
    /// A comment posted under the media right after it is published (not on stories).
    first_comment: Option<String>,
}

/// One target of a post as the API shows it.
#[derive(utoipa::ToSchema)]
#[schema(as = PostTarget)]
#[allow(dead_code)]
pub(crate) struct TargetDoc {
    id: String,
    account_id: String,
    platform: tidepost_domain::Platform,
    /// TikTok: `direct` or `inbox`; Instagram: the media type.
    mode: String,
    /// `queued`, `scheduled`, `uploading`, `processing`, `published`, `failed` or `cancelled`.
    state: String,
    /// From 0 to 1.
    progress: f64,
    /// When its job is due (RFC 3339), for a scheduled target.
    scheduled_at: Option<String>,
    bytes_total: i64,
    bytes_sent: i64,
    publish_id: Option<String>,
    post_ids: Vec<String>,
    post_url: Option<String>,
    /// The last failure.
    error: Option<TargetErrorDoc>,
    /// Instagram: the first comment, when the post has one.
    first_comment: Option<FirstCommentDoc>,
    updated_at: String,
    finished_at: Option<String>,
}

/// An Instagram target's first comment, posted by tidepost right after the media is
/// published; a failed comment leaves the post published.
#[derive(utoipa::ToSchema)]
#[schema(as = PostTargetFirstComment)]
#[allow(dead_code)]
pub(crate) struct FirstCommentDoc {
    /// `pending`, `posted` or `failed`.
    state: String,
    /// The comment's id at Instagram, once posted.
    comment_id: Option<String>,
    /// The last error (while pending, the one being retried).
    error: Option<String>,
    /// Calls made so far.
    attempts: i64,
}

/// Why a target failed.
#[derive(utoipa::ToSchema)]
#[schema(as = PostTargetError)]
pub(crate) struct TargetErrorDoc {
    code: String,
    message: Option<String>,
    /// Whether trying again may succeed.
    retryable: bool,
}

/// A post as the API shows it.
#[derive(utoipa::ToSchema)]
#[schema(as = Post)]
#[allow(dead_code)]
pub(crate) struct PostDoc {
    id: String,
    /// `video` when the post's media hold a video, else `photo`; what each platform makes of
    /// it (a reel, a carousel, a direct post…) is its target's `mode`.
    kind: String,
    caption: String,
    /// `pending`, `in_progress`, `published`, `partly_failed`, `failed` or `cancelled`.
    summary: String,
    created_at: String,
    /// RFC 3339 in UTC.
    scheduled_at: Option<String>,
    /// The zone the schedule was given in.
    time_zone: Option<String>,
    /// The schedule in that zone.
    scheduled_at_local: Option<String>,
    /// 1 when made, one more with every edit; also the response's `ETag` (`If-Match` on
    /// `PATCH`).
    version: i64,
    targets: Vec<TargetDoc>,
    /// Only in the answer of `PATCH`: the targets the change touched that had already started
    /// (sending) or finished (sent, failed), each with its reason; they keep what they had.
    /// Empty when every target changed.
    refused: Option<Vec<tidepost_app::compose::Refusal>>,
}

/// A page of a post's history, newest first.
#[derive(utoipa::ToSchema)]
#[schema(as = PostHistory)]
#[allow(dead_code)]
pub(crate) struct PostHistoryDoc {
    data: Vec<PostHistoryEntryDoc>,
    next_cursor: Option<String>,
}

/// One change of a post.
#[derive(utoipa::ToSchema)]
#[schema(as = PostHistoryEntry)]
#[allow(dead_code)]
pub(crate) struct PostHistoryEntryDoc {
    id: String,
    /// RFC 3339 in UTC.
    at: String,
    /// `user:<id>` or `api_key:<id>`; null: tidepost itself.
    actor: Option<String>,
    action: tidepost_app::compose::history::Action,
    changes: Vec<tidepost_app::compose::history::Change>,
}

#[derive(utoipa::ToSchema)]
#[schema(as = PostList)]
#[allow(dead_code)]
pub(crate) struct PostListDoc {
    data: Vec<PostDoc>,
    next_cursor: Option<String>,
}

/// The body of `PATCH /api/v1/posts/{id}`.
#[derive(utoipa::ToSchema)]
#[schema(as = UpdatePost)]
#[allow(dead_code)]
pub(crate) struct UpdatePostDoc {
    /// The new shared caption (targets with their own keep it).
    caption: Option<String>,
    /// The new media set, shared by every target.
    media: Option<Vec<Item>>,
    /// The new time; `null` for now.
    scheduled_at: Option<String>,
    time_zone: Option<String>,
    schedule: Option<ScheduleDoc>,
    /// By account id: an object adds the account, or replaces its target's caption and
    /// options; `null` removes its target. Accounts left out are unchanged.
    #[schema(schema_with = target_changes)]
    targets: Option<std::collections::HashMap<String, Option<TargetChangeDoc>>>,
}

/// `targets` of `PATCH /api/v1/posts/{id}`: an object whose values are a target's change or
/// `null` (utoipa's derive cannot say "or null" of a map's values).
fn target_changes() -> utoipa::openapi::Object {
    use utoipa::PartialSchema;
    use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, OneOfBuilder, Type};
    use utoipa::openapi::{RefOr, Schema};
    let value = OneOfBuilder::new()
        .item(TargetChangeDoc::schema())
        .item(ObjectBuilder::new().schema_type(Type::Null))
        .build();
    ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::SchemaType::from_iter([
            Type::Object,
            Type::Null,
        ]))
        .description(Some(
            "By account id: an object adds the account, or replaces its target's caption and \
             options; `null` removes its target. Accounts left out are unchanged.",
        ))
        .additional_properties(Some(AdditionalProperties::RefOr(RefOr::T(Schema::OneOf(
            value,
        )))))
        .build()
}

/// A target in `PATCH /api/v1/posts/{id}`: what it holds from now on.
#[derive(utoipa::ToSchema)]
#[schema(as = PostTargetChange)]
#[allow(dead_code)]
pub(crate) struct TargetChangeDoc {
    /// This target's caption instead of the post's.
    caption: Option<String>,
    /// TikTok accounts only.
    tiktok: Option<TikTokOptions>,
    /// Instagram accounts only.
    instagram: Option<tidepost_app::compose::InstagramOptions>,
    /// Threads accounts only.
    threads: Option<tidepost_app::platforms::threads::options::ThreadsOptions>,
}

/// A draft: a post saved without being sent or scheduled.
#[derive(utoipa::ToSchema)]
#[schema(as = Draft)]
pub(crate) struct DraftDoc {
    id: String,
    /// 1 when saved, one more with every change; also the response's `ETag`.
    version: i64,
    caption: String,
    media: Vec<Item>,
    targets: Vec<TargetSpec>,
    /// The time it is to be published at (RFC 3339); null: when it is published.
    scheduled_at: Option<String>,
    time_zone: Option<String>,
    schedule: ScheduleDoc,
    created_by: Option<String>,
    created_at: String,
    updated_at: String,
    /// The post it became, once published.
    post_id: Option<String>,
    published_at: Option<String>,
    /// What stops it from being published now, as a refused post lists it (left out of lists).
    #[schema(value_type = Option<Vec<Object>>)]
    issues: Option<Vec<serde_json::Value>>,
}

/// A page of drafts.
#[derive(utoipa::ToSchema)]
#[schema(as = DraftList)]
pub(crate) struct DraftListDoc {
    data: Vec<DraftDoc>,
    /// Pass as `after` for the next page; null on the last one.
    next_cursor: Option<String>,
}

/// The body of `POST /api/v1/drafts/{id}/publish`, all optional: without `scheduled_at` the
/// draft's own time counts (none: now).
#[derive(utoipa::ToSchema)]
#[schema(as = PublishDraft)]
pub(crate) struct PublishDraftDoc {
    /// RFC 3339 with an offset, a local date and time with `time_zone`, or null for now.
    scheduled_at: Option<String>,
    time_zone: Option<String>,
    schedule: Option<ScheduleDoc>,
}
