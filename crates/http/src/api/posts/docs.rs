//! The schemas of the posts API in the OpenAPI document.

#![allow(dead_code)]

/// One media of a post (schema of the API document).
#[derive(utoipa::ToSchema)]
#[schema(as = PostMediaItem)]
#[allow(dead_code)]
pub(crate) struct MediaItemDoc {
    /// A public URL the platform downloads.
    url: Option<String>,
    /// An uploaded media's id (`POST /api/v1/media`).
    media_id: Option<String>,
    /// `image` or `video`; inferred from the upload or the URL's extension when absent.
    kind: Option<String>,
}

/// One account of a post and its overrides.
#[derive(utoipa::ToSchema)]
#[schema(as = PostTargetSpec)]
#[allow(dead_code)]
pub(crate) struct TargetSpecDoc {
    account_id: String,
    /// This target's caption instead of the post's.
    caption: Option<String>,
    /// TikTok accounts: `mode` (`direct` or `inbox`), `privacy_level` (required for direct),
    /// `disable_comment`, `disable_duet`, `disable_stitch`, `brand_content_toggle`,
    /// `brand_organic_toggle`, `is_aigc`, `video_cover_timestamp_ms`, `duration_sec`,
    /// `photo_cover_index`.
    #[schema(value_type = Option<Object>)]
    tiktok: Option<()>,
    /// Instagram accounts: `media_type` (`image`, `reel`, `carousel`, `story`; inferred from
    /// the media when absent), `cover_url`, `share_to_feed`.
    #[schema(value_type = Option<Object>)]
    instagram: Option<()>,
}

/// The body of `POST /api/v1/posts` (or the same fields as multipart text parts, with `file`
/// parts). Give `targets` for one post to several accounts, or the single-account fields
/// (`account_id` with the TikTok fields or an `instagram` object).
#[derive(utoipa::ToSchema)]
#[schema(as = CreatePost)]
#[allow(dead_code)]
pub(crate) struct CreatePostDoc {
    caption: Option<String>,
    media: Option<Vec<MediaItemDoc>>,
    targets: Option<Vec<TargetSpecDoc>>,
    /// RFC 3339 with an offset, or a local date and time with `time_zone`.
    scheduled_at: Option<String>,
    /// An IANA zone name, such as `Europe/Paris`.
    time_zone: Option<String>,
    /// `next_free_slot` takes the next time the posting limits allow instead of a refusal;
    /// `exact` (the default) refuses.
    schedule: Option<String>,
    /// Single-account shape.
    account_id: Option<String>,
    mode: Option<String>,
    privacy_level: Option<String>,
    media_url: Option<String>,
    media_id: Option<String>,
    photo_urls: Option<Vec<String>>,
    #[schema(value_type = Option<Object>)]
    instagram: Option<()>,
    /// Same as the `Idempotency-Key` header.
    idempotency_key: Option<String>,
}

/// One target of a post as the API shows it.
#[derive(utoipa::ToSchema)]
#[schema(as = PostTarget)]
#[allow(dead_code)]
pub(crate) struct TargetDoc {
    id: String,
    account_id: String,
    /// `tiktok` or `instagram`.
    platform: String,
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
    /// `{code, message, retryable}` of the last failure.
    #[schema(value_type = Option<Object>)]
    error: Option<()>,
    updated_at: String,
    finished_at: Option<String>,
}

/// A post as the API shows it.
#[derive(utoipa::ToSchema)]
#[schema(as = Post)]
#[allow(dead_code)]
pub(crate) struct PostDoc {
    id: String,
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
    targets: Vec<TargetDoc>,
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
    caption: Option<String>,
    /// The new time; `null` for now.
    scheduled_at: Option<String>,
    time_zone: Option<String>,
    /// `next_free_slot` or `exact`.
    schedule: Option<String>,
}
