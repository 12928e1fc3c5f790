//! The composer (`/compose`): one post to several TikTok and Instagram accounts, now, at a time
//! in a chosen time zone, or at the next free slot — and the schedule (`/posts/scheduled`), the
//! posts still waiting for their time grouped by day in the viewer's zone.
//!
//! The page is a plain form that works without JavaScript: `POST /compose` builds the same
//! [`NewComposite`] the API takes, runs `compose::submit`, and on refusal renders the page again
//! with what the person typed and every problem beside the account it concerns. `compose.js`
//! adds what needs a script: uploading a new file into the media library with a real progress
//! bar (the resumable `tus_upload.js`), the browser's time zone, a preview per platform, and
//! live validation through `POST /api/v1/posts/validate` as the person edits, and the checks
//! a submit needs before it leaves the page (nothing picked, no media, no privacy chosen, a
//! file over the size limit), which keep what was typed and move focus to the problem.
//!
//! It is the only posting form: `/posts/new?account=…` (the old single-account form) and the
//! accounts' "New post" links open it with the account chosen (`?account=`). Each picked
//! account shows its platform's panel, one template per platform rendering that platform's
//! one options type: `compose_panel_tiktok.html` ([`TikTokOptions`], with the creator's
//! nickname and avatar, privacy from `privacy_level_options` with no default, "Allow …"
//! interaction boxes that start off and say why the creator's settings turned one off, the
//! commercial-content disclosure with TikTok's consent line, the AI-generated label and the
//! creator's maximum duration, per TikTok's Content Sharing guidelines) and
//! `compose_panel_instagram.html` ([`InstagramOptions`]: media type; a reel's cover and
//! whether it also shows in the feed).

use std::collections::{BTreeMap, HashMap, HashSet};

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Form, Router};
use serde::Deserialize;
use tidepost_app::compose::schedule::Repeated;
use tidepost_app::compose::{
    self, ComposeError, InstagramOptions, Issue, NewComposite, Schedule, TargetSpec, TikTokOptions,
};
use tidepost_app::instagram::options::{GraduationStrategy, MediaType, TrialParams, UserTag};
use tidepost_app::media::rules::bytes;
use tidepost_app::pipeline::PublishError;
use tidepost_app::pipeline::media::{Item, ItemKind};
use tidepost_app::threads::options::{
    MediaType as ThreadsMediaType, ReplyControl as ThreadsReplyControl, ThreadsOptions,
};
use tidepost_app::tiktok::Mode;
use tidepost_domain::{Platform, PostSummary, TargetState};
use tidepost_store::accounts::{self, Account};
use tidepost_store::posts::PostFilter;

use super::Chrome;
use crate::auth::Viewer;
use crate::error::PageError;
use crate::state::HttpState;
use crate::zone::{Zone, ZoneSource};

pub fn router() -> Router<HttpState> {
    Router::new()
        .route("/compose", get(page).post(submit))
        .route("/posts/scheduled", get(scheduled))
        .route("/posts/{id}/reschedule", axum::routing::post(reschedule))
}

/// How many library items the picker offers (the newest).
const LIBRARY_CHOICES: i64 = 40;

/// How a person reads one of TikTok's privacy levels.
fn privacy_label(level: &str) -> String {
    match level {
        "PUBLIC_TO_EVERYONE" => "Everyone".into(),
        "MUTUAL_FOLLOW_FRIENDS" => "Friends (followers you follow back)".into(),
        "FOLLOWER_OF_CREATOR" => "Followers".into(),
        "SELF_ONLY" => "Only me".into(),
        other => other.to_string(),
    }
}

/// A TikTok account's panel (`compose_panel_tiktok.html`): its options as chosen (the one
/// [`TikTokOptions`] the form reads) beside what its creator's `creator_info` allows.
struct TikTokPanel {
    options: TikTokOptions,
    /// The creator TikTok says the post goes to (empty when `creator_info` failed).
    nickname: String,
    username: String,
    avatar_url: String,
    /// (value, label); nothing is preselected unless the person chose it.
    privacy: Vec<(String, String)>,
    comment_disabled: bool,
    duet_disabled: bool,
    stitch_disabled: bool,
    max_duration: u32,
    /// "Disclose commercial content" is on (the brand boxes show).
    disclose: bool,
    /// Why the creator's settings could not be read (the account can still be picked; the
    /// check on submit names the problem).
    error: Option<String>,
}

impl TikTokPanel {
    fn inbox(&self) -> bool {
        self.options.mode == Some(Mode::Inbox)
    }

    fn chosen(&self, privacy: &str) -> bool {
        self.options.privacy_level.as_deref() == Some(privacy)
    }

    fn no_privacy(&self) -> bool {
        !self.privacy.iter().any(|(value, _)| self.chosen(value))
    }

    /// "Allow …" boxes start off; one the creator turned off stays off.
    fn allow_comment(&self) -> bool {
        !self.options.disable_comment && !self.comment_disabled
    }

    fn allow_duet(&self) -> bool {
        !self.options.disable_duet && !self.duet_disabled
    }

    fn allow_stitch(&self) -> bool {
        !self.options.disable_stitch && !self.stitch_disabled
    }

    fn title(&self) -> &str {
        self.options.title.as_deref().unwrap_or("")
    }

    fn description(&self) -> &str {
        self.options.description.as_deref().unwrap_or("")
    }

    /// The cover frame as its field shows it (empty: TikTok's first frame).
    fn cover_ms(&self) -> String {
        self.options
            .video_cover_timestamp_ms
            .map(|t| t.to_string())
            .unwrap_or_default()
    }

    /// A photo post's cover as its field shows it, counted from 1 (empty: the first photo).
    fn cover_photo(&self) -> String {
        match self.options.photo_cover_index {
            0 => String::new(),
            // Past what a field holds: left as typed would be, for the check to name.
            u32::MAX => "0".into(),
            n => (n + 1).to_string(),
        }
    }
}

/// Why a TikTok panel has no creator options, as its notice reads after "TikTok did not say
/// what this account may post right now: ". TikTok's rate limit or a 5xx passes: the notice
/// says when to try again (the wait the creator cache keeps).
fn panel_error(err: &PublishError) -> String {
    match err {
        PublishError::Provider(e) if e.is_retryable() => {
            let wait = e
                .retry_after
                .map_or(compose::DEFAULT_RETRY_AFTER_SECS, |w| w.as_secs().max(1));
            format!(
                "it is not answering ({}). Try again in {wait} seconds.",
                e.message.trim_end_matches('.')
            )
        }
        other @ (PublishError::Provider(_)
        | PublishError::Invalid { .. }
        | PublishError::NotFound(_)
        | PublishError::Quota { .. }
        | PublishError::Conflict(_)
        | PublishError::NeedsReauth(_)
        | PublishError::Unavailable(_)
        | PublishError::Store(_)
        | PublishError::Io(_)
        | PublishError::TooLarge { .. }) => other.to_string(),
    }
}

/// An Instagram account's panel (`compose_panel_instagram.html`): its [`InstagramOptions`].
struct InstagramPanel {
    options: InstagramOptions,
    /// The Facebook Page it is reached through.
    page_name: Option<String>,
}

impl InstagramPanel {
    fn is(&self, media_type: &str) -> bool {
        self.options.media_type.map(MediaType::as_str) == Some(media_type)
    }

    fn cover_url(&self) -> &str {
        self.options.cover_url.as_deref().unwrap_or("")
    }

    /// A reel is shown in the feed too unless the person said otherwise.
    fn share_to_feed(&self) -> bool {
        self.options.share_to_feed.unwrap_or(true)
    }

    /// Whether a part for `media_type` shows before the script runs: for that type, or while
    /// the type comes from the media.
    fn shows(&self, media_type: &str) -> bool {
        self.options.media_type.is_none() || self.is(media_type)
    }

    fn thumb_offset(&self) -> String {
        self.options
            .thumb_offset
            .map(|t| t.to_string())
            .unwrap_or_default()
    }

    fn audio_name(&self) -> &str {
        self.options.audio_name.as_deref().unwrap_or("")
    }

    fn trial_is(&self, strategy: &str) -> bool {
        self.options
            .trial_params
            .map(|t| t.graduation_strategy.as_str())
            .unwrap_or("")
            == strategy
    }

    fn alt_text(&self) -> &str {
        self.options.alt_text.as_deref().unwrap_or("")
    }

    fn collaborators(&self) -> String {
        self.options.collaborators.join(", ")
    }

    fn location_id(&self) -> &str {
        self.options.location_id.as_deref().unwrap_or("")
    }

    fn first_comment(&self) -> &str {
        self.options.first_comment.as_deref().unwrap_or("")
    }

    fn user_tags(&self) -> String {
        user_tags_text(&self.options.user_tags)
    }
}

/// A Threads account's panel (`compose_panel_threads.html`): its [`ThreadsOptions`].
struct ThreadsPanel {
    options: ThreadsOptions,
}

impl ThreadsPanel {
    fn is(&self, media_type: &str) -> bool {
        self.options.media_type.map(ThreadsMediaType::as_str) == Some(media_type)
    }

    /// Whether a part for `media_types` (space-separated) shows before the script runs: for
    /// one of them, or while the type comes from the media.
    fn shows(&self, media_types: &str) -> bool {
        match self.options.media_type {
            None => true,
            Some(t) => media_types.split(' ').any(|m| m == t.as_str()),
        }
    }

    fn reply_is(&self, value: &str) -> bool {
        self.options
            .reply_control
            .map(ThreadsReplyControl::as_str)
            .unwrap_or("")
            == value
    }

    fn replies(&self) -> [(&'static str, &'static str); 3] {
        ThreadsReplyControl::ALL.map(|r| (r.as_str(), r.label()))
    }

    fn link_attachment(&self) -> &str {
        self.options.link_attachment.as_deref().unwrap_or("")
    }

    fn alt_text(&self) -> &str {
        self.options.alt_text.as_deref().unwrap_or("")
    }
}

/// Tags as the "People tagged" field lists them: `[N: ]username[ x y]`, one per line, N
/// counted from 1 (what [`parse_user_tags`] reads back).
pub(super) fn user_tags_text(tags: &[UserTag]) -> String {
    tags.iter()
        .map(|t| {
            let mut line = String::new();
            if let Some(item) = t.item {
                line.push_str(&format!("{}: ", item + 1));
            }
            line.push_str(&t.username);
            if let (Some(x), Some(y)) = (t.x, t.y) {
                line.push_str(&format!(" {x} {y}"));
            }
            line
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The "People tagged" field: one tag a line, `[N: ]username[ x y]` with N the carousel item
/// counted from 1. What does not read as a number is kept as not-a-number, so the check
/// refuses it with the field's name instead of the form dropping it.
fn parse_user_tags(text: &str) -> Vec<UserTag> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(|line| {
            let (item, rest) = match line.split_once(':') {
                Some((n, rest)) if n.trim().chars().all(|c| c.is_ascii_digit()) => (
                    n.trim().parse::<usize>().ok().map(|n| n.saturating_sub(1)),
                    rest,
                ),
                _ => (None, line),
            };
            let mut words = rest.split_whitespace();
            let username = words.next().unwrap_or_default().to_string();
            let number = |w: Option<&str>| w.map(|w| w.parse::<f64>().unwrap_or(f64::NAN));
            let (x, y) = (number(words.next()), number(words.next()));
            UserTag {
                item,
                username,
                x,
                y,
            }
        })
        .collect()
}

/// One account the post can go to.
struct TargetOption {
    id: String,
    name: String,
    username: String,
    platform: Platform,
    platform_name: &'static str,
    initial: &'static str,
    avatar_url: Option<String>,
    health: &'static str,
    health_class: &'static str,
    /// Accounts that must be reconnected are shown but cannot be picked.
    usable: bool,
    checked: bool,
    caption: String,
    tiktok: Option<TikTokPanel>,
    instagram: Option<InstagramPanel>,
    threads: Option<ThreadsPanel>,
    issues: Vec<String>,
}

/// One library item the post can use.
struct MediaOption {
    id: String,
    name: String,
    /// `video` or `image`.
    kind: String,
    /// A video's probed length (0 when unknown): the frame picker's range.
    duration_ms: i64,
    /// The probed pixel size (0 when unknown): how the previews crop it.
    width: i64,
    height: i64,
    details: String,
    checked: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "compose.html")]
struct ComposePage {
    chrome: Chrome,
    targets: Vec<TargetOption>,
    media: Vec<MediaOption>,
    caption: String,
    media_url: String,
    media_url_kind: String,
    when: String,
    scheduled_at: String,
    time_zone: String,
    /// The time typed happens twice in its zone: the two, to choose from.
    repeated: Option<RepeatedChoice>,
    /// Problems of the post as a whole (media, time) and of no particular account.
    general: Vec<String>,
    max_upload: String,
    max_upload_bytes: u64,
    /// The draft being edited (empty: a new post) and its version.
    draft_id: String,
    draft_version: String,
    /// "Draft saved" after saving.
    saved: bool,
    /// The post being edited (empty: a new post or a draft) and its version.
    post_id: String,
    post_version: String,
    /// The post's targets already sending or sent: shown, not edited.
    sent: Vec<SentTarget>,
}

/// A target of the post being edited that has started or finished.
struct SentTarget {
    account: String,
    platform: &'static str,
    state: String,
}

/// A local time that happens twice in its zone (the hour repeated when the clocks go back),
/// as the composer asks which: each of the two with its offset.
struct RepeatedChoice {
    first: String,
    second: String,
    chosen: String,
}

impl RepeatedChoice {
    fn of(typed: &Typed) -> Option<Self> {
        if !matches!(typed.when.as_str(), "at" | "next") || typed.scheduled_at.is_empty() {
            return None;
        }
        let zone = Some(typed.time_zone.as_str()).filter(|z| !z.is_empty());
        match compose::schedule::parse(&typed.scheduled_at, zone) {
            Err(e) if e.repeated => {}
            Ok(_) | Err(_) => return None,
        }
        let one = |which| {
            compose::schedule::parse_choosing(&typed.scheduled_at, zone, Some(which))
                .map(|w| compose::schedule::show(w.at_ms, zone))
                .ok()
        };
        Some(Self {
            first: one(Repeated::First)?,
            second: one(Repeated::Second)?,
            chosen: typed.repeated_hour.clone(),
        })
    }
}

/// The form as typed: kept to render it again after a refusal (and read back from a draft,
/// `super::drafts::typed_of`).
#[derive(Debug, Default)]
pub(super) struct Typed {
    pub csrf: String,
    pub caption: String,
    pub targets: Vec<String>,
    pub media: Vec<String>,
    pub media_url: String,
    pub media_url_kind: String,
    pub when: String,
    pub scheduled_at: String,
    pub time_zone: String,
    /// Which of a local time that happens twice (`first`, `second`), once asked.
    pub repeated_hour: String,
    /// Per account: field name → value (`caption`, `mode`, `privacy`, `disable_comment`, …).
    pub per_account: HashMap<String, HashMap<String, String>>,
    /// The button pressed: `draft` ("Save draft") or publish.
    pub intent: String,
    /// The draft being edited, and the version the form was made from.
    pub draft_id: String,
    pub draft_version: String,
    /// The post being edited, and the version the form was made from.
    pub post_id: String,
    pub post_version: String,
}

impl Typed {
    /// Reads the form's pairs. Per-account fields are named `<field>:<account id>`.
    fn parse(pairs: Vec<(String, String)>) -> Self {
        let mut typed = Typed::default();
        for (name, value) in pairs {
            match name.as_str() {
                "csrf" => typed.csrf = value,
                "caption" => typed.caption = value,
                "targets" => typed.targets.push(value),
                "media" => typed.media.push(value),
                "media_url" => typed.media_url = value.trim().to_string(),
                "media_url_kind" => typed.media_url_kind = value,
                "when" => typed.when = value,
                "scheduled_at" => typed.scheduled_at = value.trim().to_string(),
                "time_zone" => typed.time_zone = value.trim().to_string(),
                "repeated_hour" => typed.repeated_hour = value.trim().to_string(),
                "intent" => typed.intent = value,
                "draft" => typed.draft_id = value.trim().to_string(),
                "draft_version" => typed.draft_version = value.trim().to_string(),
                "post" => typed.post_id = value.trim().to_string(),
                "post_version" => typed.post_version = value.trim().to_string(),
                other => {
                    if let Some((field, account)) = other.split_once(':') {
                        typed
                            .per_account
                            .entry(account.to_string())
                            .or_default()
                            .insert(field.to_string(), value);
                    }
                }
            }
        }
        typed
    }

    pub(super) fn field(&self, account: &str, field: &str) -> Option<&str> {
        self.per_account
            .get(account)
            .and_then(|m| m.get(field))
            .map(String::as_str)
    }

    fn flag(&self, account: &str, field: &str) -> bool {
        matches!(self.field(account, field), Some("on" | "true" | "1"))
    }

    /// A TikTok account's options as its panel sets them. The interaction boxes read "Allow
    /// …": one left unchecked (or disabled, or absent) turns the interaction off. The brand
    /// boxes count only while "Disclose commercial content" is on.
    pub(super) fn tiktok_options(&self, account: &str) -> TikTokOptions {
        let disclose = self.flag(account, "disclose");
        let text = |field: &str| {
            self.field(account, field)
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::to_string)
        };
        TikTokOptions {
            mode: Some(if self.field(account, "mode") == Some("inbox") {
                Mode::Inbox
            } else {
                Mode::Direct
            }),
            privacy_level: self
                .field(account, "privacy")
                .filter(|p| !p.is_empty())
                .map(str::to_string),
            disable_comment: !self.flag(account, "allow_comment"),
            disable_duet: !self.flag(account, "allow_duet"),
            disable_stitch: !self.flag(account, "allow_stitch"),
            brand_organic_toggle: disclose && self.flag(account, "brand_organic"),
            brand_content_toggle: disclose && self.flag(account, "brand_content"),
            is_aigc: self.flag(account, "is_aigc"),
            // A frame that is not a number of milliseconds is left for the check to name.
            video_cover_timestamp_ms: self
                .field(account, "cover_ms")
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(|t| t.parse().unwrap_or(u32::MAX)),
            title: text("title"),
            description: text("description"),
            auto_add_music: self.flag(account, "auto_music"),
            // Counted from 1 on the form; what is not such a number is left for the check to
            // name (an index past the photos).
            photo_cover_index: self
                .field(account, "cover_photo")
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(|t| match t.parse::<u32>() {
                    Ok(n) if n >= 1 => n - 1,
                    _ => u32::MAX,
                })
                .unwrap_or(0),
            ..TikTokOptions::default()
        }
    }

    /// A Threads account's options as its panel sets them: the link attachment is a text
    /// post's, the alt text an image's or a video's (as the panel shows them).
    pub(super) fn threads_options(&self, account: &str) -> ThreadsOptions {
        let media_type = self
            .field(account, "th_type")
            .and_then(ThreadsMediaType::parse);
        let text = |field: &str| {
            self.field(account, field)
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::to_string)
        };
        let text_post = matches!(media_type, None | Some(ThreadsMediaType::Text));
        let media_post = media_type != Some(ThreadsMediaType::Text);
        ThreadsOptions {
            media_type,
            reply_control: self
                .field(account, "th_reply")
                .and_then(ThreadsReplyControl::parse),
            link_attachment: text("th_link").filter(|_| text_post),
            alt_text: text("th_alt").filter(|_| media_post),
        }
    }

    /// An Instagram account's options as its panel sets them: the cover and "also in the
    /// feed" are a reel's only.
    pub(super) fn instagram_options(&self, account: &str) -> InstagramOptions {
        let media_type = match self.field(account, "ig_type") {
            Some("image") => Some(MediaType::Image),
            Some("reel") => Some(MediaType::Reel),
            Some("carousel") => Some(MediaType::Carousel),
            Some("story") => Some(MediaType::Story),
            _ => None,
        };
        let reel = media_type == Some(MediaType::Reel);
        let story = media_type == Some(MediaType::Story);
        let text = |field: &str| {
            self.field(account, field)
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::to_string)
        };
        // The reel's parts count for a reel only, the feed's for every type but a story, as
        // the panel shows them.
        let reel_text = |field: &str| text(field).filter(|_| reel);
        let feed_text = |field: &str| text(field).filter(|_| !story);
        InstagramOptions {
            media_type,
            cover_url: reel_text("ig_cover"),
            share_to_feed: reel.then(|| self.flag(account, "ig_share")),
            // A frame that is not a number of milliseconds is left for the check to name.
            thumb_offset: reel_text("ig_thumb").map(|t| t.parse().unwrap_or(u64::MAX)),
            audio_name: reel_text("ig_audio"),
            trial_params: reel_text("ig_trial").and_then(|t| {
                let graduation_strategy = match t.as_str() {
                    "MANUAL" => GraduationStrategy::Manual,
                    "SS_PERFORMANCE" => GraduationStrategy::SsPerformance,
                    _ => return None,
                };
                Some(TrialParams {
                    graduation_strategy,
                })
            }),
            alt_text: text("ig_alt")
                .filter(|_| matches!(media_type, None | Some(MediaType::Image))),
            collaborators: feed_text("ig_collaborators")
                .map(|t| {
                    t.split([',', ' ', '\n'])
                        .map(str::trim)
                        .filter(|c| !c.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default(),
            user_tags: feed_text("ig_tags")
                .map(|t| parse_user_tags(&t))
                .unwrap_or_default(),
            location_id: feed_text("ig_location"),
            first_comment: feed_text("ig_comment"),
        }
    }

    /// What the form alone refuses, beside the account it concerns: commercial content
    /// disclosed without saying whose (TikTok asks the creator to say).
    fn form_issues(&self, accounts: &[Account]) -> Vec<Issue> {
        self.targets
            .iter()
            .enumerate()
            .filter_map(|(index, id)| {
                let account = accounts.iter().find(|a| &a.id == id)?;
                let tiktok = account.platform == Platform::Tiktok
                    && self.field(id, "mode") != Some("inbox")
                    && self.flag(id, "disclose")
                    && !self.flag(id, "brand_organic")
                    && !self.flag(id, "brand_content");
                tiktok.then(|| Issue {
                    target: Some(index),
                    account_id: Some(id.clone()),
                    platform: Some(Platform::Tiktok),
                    field: format!("targets[{index}].tiktok.brand_organic_toggle"),
                    rule: "disclosure".into(),
                    message: "you need to indicate if your content promotes yourself, a third party, or both".into(),
                    next_slot_ms: None,
                provider: None,
                })
            })
            .collect()
    }

    /// The post the form describes; `Err` with the problems the form itself has (before the
    /// accounts' checks).
    fn composite(
        &self,
        accounts: &[Account],
        created_by: &str,
    ) -> Result<NewComposite, Vec<String>> {
        let mut problems = Vec::new();
        let schedule = match self.when.as_str() {
            "at" if self.scheduled_at.is_empty() => {
                problems.push("Choose the date and time to publish at.".to_string());
                Schedule::default()
            }
            "at" | "next" if !self.scheduled_at.is_empty() => {
                match compose::schedule::parse_choosing(
                    &self.scheduled_at,
                    Some(self.time_zone.as_str()).filter(|z| !z.is_empty()),
                    Repeated::parse(&self.repeated_hour),
                ) {
                    Ok(at) => Schedule {
                        at: Some(at),
                        next_free_slot: self.when == "next",
                    },
                    Err(e) => {
                        problems.push(crate::error::capitalize(&e.message));
                        Schedule::default()
                    }
                }
            }
            "next" => Schedule {
                at: None,
                next_free_slot: true,
            },
            _ => Schedule::default(),
        };
        let mut media: Vec<Item> = self
            .media
            .iter()
            .filter(|id| !id.is_empty())
            .map(|id| Item {
                media_id: Some(id.clone()),
                ..Item::default()
            })
            .collect();
        if !self.media_url.is_empty() {
            media.push(Item {
                url: Some(self.media_url.clone()),
                kind: match self.media_url_kind.as_str() {
                    "image" => Some(ItemKind::Image),
                    "video" => Some(ItemKind::Video),
                    _ => None,
                },
                ..Item::default()
            });
        }
        let targets = self
            .targets
            .iter()
            .map(|id| {
                let platform = accounts.iter().find(|a| &a.id == id).map(|a| a.platform);
                let caption = self
                    .field(id, "caption")
                    .map(str::trim)
                    .filter(|c| !c.is_empty())
                    .map(str::to_string);
                let mut spec = TargetSpec {
                    account_id: id.clone(),
                    caption,
                    ..TargetSpec::default()
                };
                match platform {
                    Some(Platform::Instagram) => spec.instagram = Some(self.instagram_options(id)),
                    Some(Platform::Tiktok) => spec.tiktok = Some(self.tiktok_options(id)),
                    Some(Platform::Threads) => spec.threads = Some(self.threads_options(id)),
                    // Not an account of this workspace: the composer says so.
                    None => {}
                }
                spec
            })
            .collect();
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(NewComposite {
            caption: self.caption.clone(),
            media,
            targets,
            schedule,
            idempotency_key: None,
            created_by: Some(created_by.to_string()),
        })
    }
}

/// Builds the page: the workspace's accounts (TikTok ones with their creator's options, read
/// concurrently), the newest library items, and what was typed.
async fn render(
    state: &HttpState,
    viewer: &Viewer,
    typed: &Typed,
    issues: &[Issue],
    mut general: Vec<String>,
) -> Result<ComposePage, PageError> {
    let ws = &viewer.workspace.id;
    let all: Vec<Account> = accounts::list(&state.app.db, ws)
        .await?
        .into_iter()
        .collect();
    let infos = futures::future::join_all(all.iter().map(|a| async move {
        if a.platform == Platform::Tiktok && !a.needs_reauth() {
            Some(compose::creator_info(&state.app, a).await)
        } else {
            None
        }
    }))
    .await;
    let mut by_account: HashMap<&str, Vec<String>> = HashMap::new();
    for issue in issues {
        let text = crate::error::capitalize(&issue.message);
        let text = match issue.next_slot_ms {
            Some(ms) => format!(
                "{text} (next free slot: {})",
                compose::schedule::show(
                    ms,
                    Some(typed.time_zone.as_str()).filter(|z| !z.is_empty())
                )
            ),
            None => text,
        };
        match issue.account_id.as_deref() {
            Some(id) if all.iter().any(|a| a.id == id) => {
                by_account.entry(id).or_default().push(text)
            }
            _ => general.push(text),
        }
    }
    let chosen: HashSet<&str> = typed.targets.iter().map(String::as_str).collect();
    let mut targets = Vec::new();
    for (account, info) in all.iter().zip(infos) {
        let usable = !account.needs_reauth();
        let tiktok = info.map(|result| {
            let options = typed.tiktok_options(&account.id);
            let disclose = typed.flag(&account.id, "disclose")
                || options.brand_organic_toggle
                || options.brand_content_toggle;
            match result {
                Ok(info) => TikTokPanel {
                    options,
                    nickname: info.nickname.clone(),
                    username: info.username.clone(),
                    avatar_url: info.avatar_url.clone(),
                    privacy: info
                        .privacy_level_options
                        .iter()
                        .map(|p| (p.as_str().to_string(), privacy_label(p.as_str())))
                        .collect(),
                    comment_disabled: info.comment_disabled,
                    duet_disabled: info.duet_disabled,
                    stitch_disabled: info.stitch_disabled,
                    max_duration: info.max_video_post_duration_sec,
                    disclose,
                    error: None,
                },
                Err(err) => TikTokPanel {
                    options,
                    nickname: String::new(),
                    username: String::new(),
                    avatar_url: String::new(),
                    privacy: Vec::new(),
                    comment_disabled: false,
                    duet_disabled: false,
                    stitch_disabled: false,
                    max_duration: 0,
                    disclose,
                    error: Some(panel_error(&err)),
                },
            }
        });
        let instagram = (account.platform == Platform::Instagram).then(|| InstagramPanel {
            options: typed.instagram_options(&account.id),
            page_name: tidepost_app::instagram::Details::of(account).page_name,
        });
        let threads = (account.platform == Platform::Threads).then(|| ThreadsPanel {
            options: typed.threads_options(&account.id),
        });
        targets.push(TargetOption {
            id: account.id.clone(),
            name: account.display_name.clone(),
            username: account.username.clone().unwrap_or_default(),
            platform: account.platform,
            platform_name: account.platform.display_name(),
            initial: match account.platform {
                Platform::Tiktok => "T",
                Platform::Instagram => "I",
                Platform::Threads => "@",
            },
            avatar_url: account.avatar_url.clone(),
            health: if usable {
                "Connected"
            } else {
                "Needs reconnecting"
            },
            health_class: if usable { "ok" } else { "bad" },
            usable,
            checked: usable && chosen.contains(account.id.as_str()),
            caption: typed
                .field(&account.id, "caption")
                .unwrap_or("")
                .to_string(),
            tiktok,
            instagram,
            threads,
            issues: by_account.remove(account.id.as_str()).unwrap_or_default(),
        });
    }
    let picked: HashSet<&str> = typed.media.iter().map(String::as_str).collect();
    let library =
        tidepost_store::media::list(&state.app.db, ws, None, None, LIBRARY_CHOICES).await?;
    let media = library
        .into_iter()
        .map(|m| {
            let mut details = vec![bytes(u64::try_from(m.size_bytes).unwrap_or(0))];
            if let (Some(w), Some(h)) = (m.width, m.height) {
                details.push(format!("{w}×{h}"));
            }
            if let Some(ms) = m.duration_ms {
                details.push(format!("{:.1} s", ms as f64 / 1000.0));
            }
            MediaOption {
                checked: picked.contains(m.id.as_str()),
                name: m.original_name.clone().unwrap_or_else(|| m.id.clone()),
                kind: m.kind.clone(),
                duration_ms: m.duration_ms.unwrap_or(0),
                width: m.width.unwrap_or(0),
                height: m.height.unwrap_or(0),
                details: details.join(" · "),
                id: m.id,
            }
        })
        .collect();
    Ok(ComposePage {
        chrome: Chrome::for_viewer(state, viewer, "Compose"),
        targets,
        media,
        caption: typed.caption.clone(),
        media_url: typed.media_url.clone(),
        media_url_kind: typed.media_url_kind.clone(),
        when: if typed.when.is_empty() {
            "now".into()
        } else {
            typed.when.clone()
        },
        scheduled_at: typed.scheduled_at.clone(),
        repeated: RepeatedChoice::of(typed),
        time_zone: if typed.time_zone.is_empty() {
            viewer.zone.name().to_string()
        } else {
            typed.time_zone.clone()
        },
        general,
        max_upload: bytes(state.app.config.publish.max_upload_bytes),
        max_upload_bytes: state.app.config.publish.max_upload_bytes,
        draft_id: typed.draft_id.clone(),
        draft_version: typed.draft_version.clone(),
        saved: false,
        sent: if typed.post_id.is_empty() {
            Vec::new()
        } else {
            sent_targets(state, ws, &typed.post_id, &all).await?
        },
        post_id: typed.post_id.clone(),
        post_version: typed.post_version.clone(),
    })
}

/// The targets of post `post_id` that have started or finished, named by account.
async fn sent_targets(
    state: &HttpState,
    workspace_id: &str,
    post_id: &str,
    accounts: &[Account],
) -> Result<Vec<SentTarget>, PageError> {
    let view = tidepost_app::pipeline::get(&state.app, workspace_id, post_id)
        .await
        .map_err(|_| PageError::not_found())?;
    let started = match compose::edit_form(&view) {
        Ok((_, _, started)) => started,
        Err(_) => Vec::new(),
    };
    Ok(started
        .into_iter()
        .map(|t| SentTarget {
            account: accounts.iter().find(|a| a.id == t.account_id).map_or_else(
                || "(disconnected account)".into(),
                |a| a.display_name.clone(),
            ),
            platform: t.platform.display_name(),
            state: t.state,
        })
        .collect())
}

#[derive(Deserialize)]
struct PageQuery {
    /// Preselects this account (links from an account's card).
    account: Option<String>,
    /// Preselects this library item (links from the media library).
    media: Option<String>,
    /// Opens this draft.
    draft: Option<String>,
    /// Opens this post to edit what it has not sent yet.
    post: Option<String>,
    /// Says the draft was just saved.
    saved: Option<String>,
}

async fn page(
    viewer: Viewer,
    State(state): State<HttpState>,
    Query(q): Query<PageQuery>,
) -> Result<Response, PageError> {
    if let Some(id) = q.post.as_deref().filter(|p| !p.is_empty()) {
        let view = tidepost_app::pipeline::get(&state.app, &viewer.workspace.id, id)
            .await
            .map_err(super::posts::page_error)?;
        let (body, version, _) = compose::edit_form(&view).map_err(|e| {
            PageError::new(
                axum::http::StatusCode::CONFLICT,
                "This post cannot be edited",
                crate::error::capitalize(&e.to_string()),
            )
            .with_action(format!("/posts/{id}"), "Back to the post")
        })?;
        let typed = Typed {
            post_id: view.post.id.clone(),
            post_version: version.to_string(),
            ..super::drafts::typed_of_body(&body)
        };
        return Ok(render(&state, &viewer, &typed, &[], Vec::new())
            .await?
            .into_response());
    }
    let typed = match q.draft.as_deref().filter(|d| !d.is_empty()) {
        Some(id) => {
            let draft = compose::drafts::get(&state.app, &viewer.workspace.id, id)
                .await
                .map_err(super::drafts::page_error)?;
            if let Some(post) = &draft.post_id {
                // Published since: the post is where it went on.
                return Ok(Redirect::to(&format!("/posts/{post}")).into_response());
            }
            super::drafts::typed_of(&draft)
        }
        None => Typed {
            targets: q.account.into_iter().collect(),
            media: q.media.into_iter().collect(),
            ..Typed::default()
        },
    };
    let mut page = render(&state, &viewer, &typed, &[], Vec::new()).await?;
    page.saved = q.saved.is_some() && !typed.draft_id.is_empty();
    Ok(page.into_response())
}

/// The composer again, as typed, with what was refused: 503 with `Retry-After` when only a
/// platform's passing trouble (its rate limit, a 5xx while the post was checked) stands in the
/// way, as the API answers (each such issue says when to try again); else 422.
async fn refused(
    state: &HttpState,
    viewer: &Viewer,
    typed: &Typed,
    issues: Vec<Issue>,
    general: Vec<String>,
) -> Result<Response, PageError> {
    let wait = Issue::only_provider_trouble(&issues);
    let page = render(state, viewer, typed, &issues, general).await?;
    Ok(match wait {
        Some(secs) => (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            [(axum::http::header::RETRY_AFTER, secs.to_string())],
            page,
        )
            .into_response(),
        None => (axum::http::StatusCode::UNPROCESSABLE_ENTITY, page).into_response(),
    })
}

async fn submit(
    viewer: Viewer,
    State(state): State<HttpState>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let mut typed = Typed::parse(pairs);
    viewer.check_csrf(&typed.csrf)?;
    let ws = &viewer.workspace.id;
    let accounts = accounts::list(&state.app.db, ws).await?;
    let new = match typed.composite(&accounts, &viewer.user.id) {
        Ok(new) => new,
        Err(problems) => return refused(&state, &viewer, &typed, Vec::new(), problems).await,
    };
    if !typed.post_id.is_empty() {
        return save_edit(&state, &viewer, &typed, new).await;
    }
    // A draft is saved as it is; publishing one saves what was typed first, so a refusal
    // loses nothing of it.
    let saved = if !typed.draft_id.is_empty() {
        let version = typed.draft_version.parse::<i64>().ok();
        match compose::drafts::replace(&state.app, ws, &typed.draft_id, &new, version).await {
            Ok(draft) => Some(draft),
            Err(ComposeError::Store(e)) => return Err(PageError::from(e)),
            Err(ComposeError::NotFound(_)) => return Err(PageError::not_found()),
            Err(other) => {
                let general = vec![crate::error::capitalize(&other.to_string())];
                return refused(&state, &viewer, &typed, Vec::new(), general).await;
            }
        }
    } else if typed.intent == "draft" {
        Some(
            compose::drafts::save(&state.app, ws, &new)
                .await
                .map_err(super::drafts::page_error)?,
        )
    } else {
        None
    };
    if typed.intent == "draft" {
        let id = saved.map(|d| d.id).unwrap_or_default();
        return Ok(Redirect::to(&format!("/compose?draft={id}&saved=1")).into_response());
    }
    if let Some(draft) = &saved {
        // The draft's new version counts from here: a refusal shows the form on it.
        typed.draft_version = draft.version.to_string();
    }
    let typed = &typed;
    let mut form_issues = typed.form_issues(&accounts);
    if !form_issues.is_empty() {
        // Every problem at once: the form's own and the accounts' checks.
        return match compose::validate(&state.app, ws, &new).await {
            Err(ComposeError::Invalid(issues)) => {
                form_issues.extend(issues);
                refused(&state, &viewer, typed, form_issues, Vec::new()).await
            }
            Err(ComposeError::Store(e)) => Err(PageError::from(e)),
            Ok(_)
            | Err(
                ComposeError::NotFound(_)
                | ComposeError::Conflict(_)
                | ComposeError::Unavailable(_)
                | ComposeError::Publish(_)
                | ComposeError::Stale(_)
                | ComposeError::Started(_),
            ) => refused(&state, &viewer, typed, form_issues, Vec::new()).await,
        };
    }
    let outcome = match &saved {
        Some(draft) => {
            let by = Some(viewer.user.id.clone());
            compose::drafts::publish(&state.app, ws, &draft.id, None, by).await
        }
        None => compose::submit(&state.app, ws, new).await,
    };
    match outcome {
        Ok(view) => Ok(Redirect::to(&format!("/posts/{}", view.post.id)).into_response()),
        Err(ComposeError::Invalid(issues)) => {
            refused(&state, &viewer, typed, issues, Vec::new()).await
        }
        Err(ComposeError::Store(e)) => Err(PageError::from(e)),
        Err(other) => {
            let general = vec![crate::error::capitalize(&other.to_string())];
            refused(&state, &viewer, typed, Vec::new(), general).await
        }
    }
}

/// The composer's edit mode saved: the form as the post from now on, through
/// `compose::update` (the checks of a new post; the targets already sent keep theirs). The
/// accounts ticked are the targets (added or changed), the targets not yet sent that were
/// unticked are removed.
async fn save_edit(
    state: &HttpState,
    viewer: &Viewer,
    typed: &Typed,
    new: NewComposite,
) -> Result<Response, PageError> {
    let ws = &viewer.workspace.id;
    let id = typed.post_id.clone();
    let view = tidepost_app::pipeline::get(&state.app, ws, &id)
        .await
        .map_err(super::posts::page_error)?;
    let mut targets: Vec<(String, Option<TargetSpec>)> = new
        .targets
        .iter()
        .map(|spec| (spec.account_id.clone(), Some(spec.clone())))
        .collect();
    for account in compose::open_accounts(&view) {
        if !new.targets.iter().any(|s| s.account_id == account) {
            targets.push((account, None));
        }
    }
    let change = compose::Update {
        caption: Some(new.caption.clone()),
        media: Some(new.media.clone()),
        schedule: Some(new.schedule.clone()),
        targets,
        version: typed.post_version.parse::<i64>().ok(),
        by: Some(viewer.user.id.clone()),
    };
    match compose::update(&state.app, ws, &id, change).await {
        Ok(_) => Ok(Redirect::to(&format!("/posts/{id}")).into_response()),
        Err(ComposeError::Invalid(issues)) => {
            refused(state, viewer, typed, issues, Vec::new()).await
        }
        Err(ComposeError::Store(e)) => Err(PageError::from(e)),
        Err(other) => {
            let general = vec![crate::error::capitalize(&other.to_string())];
            refused(state, viewer, typed, Vec::new(), general).await
        }
    }
}

/// A post waiting for its time, as the schedule lists it.
struct ScheduledRow {
    id: String,
    time: String,
    caption: String,
    accounts: String,
    summary: String,
    summary_class: &'static str,
}

struct Day {
    label: String,
    posts: Vec<ScheduledRow>,
}

#[derive(Template, WebTemplate)]
#[template(path = "posts_scheduled.html")]
struct ScheduledPage {
    chrome: Chrome,
    days: Vec<Day>,
    time_zone: String,
    /// The zone the viewer asked for did not exist (shown in UTC instead).
    zone_error: Option<String>,
    truncated: bool,
}

#[derive(Deserialize)]
struct ScheduledQuery {
    tz: Option<String>,
}

/// How many waiting posts the schedule shows.
const SCHEDULE_LIMIT: i64 = 500;

async fn scheduled(
    viewer: Viewer,
    State(state): State<HttpState>,
    Query(q): Query<ScheduledQuery>,
) -> Result<Response, PageError> {
    let ws = &viewer.workspace.id;
    // The viewer's own zone, unless the link asks for another (`?tz=`).
    let asked = q.tz.unwrap_or_default();
    let (shown, zone_error) = if asked.trim().is_empty() {
        (viewer.zone.clone(), None)
    } else {
        match Zone::named(&asked, ZoneSource::Chosen) {
            Some(zone) => (zone, None),
            None => (
                viewer.zone.clone(),
                Some(format!(
                    "{asked:?} is not a known time zone; times are shown in {}.",
                    viewer.zone.name()
                )),
            ),
        }
    };
    let zone = shown.tz().clone();
    let zone_name = shown.name().to_string();
    let filter = PostFilter {
        scheduled: Some(true),
        ..PostFilter::default()
    };
    let views = compose::list(&state.app, ws, &filter, SCHEDULE_LIMIT)
        .await
        .map_err(|e| list_refused(e, "The schedule could not be read"))?;
    let truncated = views.len() as i64 == SCHEDULE_LIMIT;
    let names: HashMap<String, String> = accounts::list(&state.app.db, ws)
        .await?
        .into_iter()
        .map(|a| (a.id, a.display_name))
        .collect();
    // Day (sortable key) → (its label in the viewer's zone, its posts with their times).
    let mut by_day: BTreeMap<String, (String, Vec<(i64, ScheduledRow)>)> = BTreeMap::new();
    for view in &views {
        let at = view.post.scheduled_at.unwrap_or(view.post.created_at);
        let Ok(ts) = jiff::Timestamp::from_millisecond(at) else {
            continue;
        };
        let local = ts.to_zoned_datetime(zone.clone());
        let states: Vec<TargetState> = view
            .targets
            .iter()
            .filter_map(|t| TargetState::parse(&t.state))
            .collect();
        let summary = PostSummary::of(&states);
        let row = ScheduledRow {
            id: view.post.id.clone(),
            time: local.strftime("%H:%M").to_string(),
            caption: if view.post.caption.is_empty() {
                "(no caption)".into()
            } else {
                view.post.caption.clone()
            },
            accounts: view
                .targets
                .iter()
                .map(|t| {
                    names
                        .get(&t.account_id)
                        .cloned()
                        .unwrap_or_else(|| "(disconnected account)".into())
                })
                .collect::<Vec<_>>()
                .join(", "),
            summary: summary.as_str().replace('_', " "),
            summary_class: summary.as_str(),
        };
        by_day
            .entry(local.strftime("%Y-%m-%d").to_string())
            .or_insert_with(|| (local.strftime("%A %-d %B %Y").to_string(), Vec::new()))
            .1
            .push((at, row));
    }
    let days = by_day
        .into_values()
        .map(|(label, mut posts)| {
            posts.sort_by_key(|(at, _)| *at);
            Day {
                label,
                posts: posts.into_iter().map(|(_, row)| row).collect(),
            }
        })
        .collect();
    Ok(ScheduledPage {
        chrome: Chrome::for_viewer(&state, &viewer, "Schedule"),
        days,
        time_zone: zone_name,
        zone_error,
        truncated,
    }
    .into_response())
}

#[derive(Deserialize)]
struct RescheduleForm {
    /// Missing is the same as wrong: `check_csrf` answers with the "form has expired" page.
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    scheduled_at: String,
    #[serde(default)]
    time_zone: String,
    /// "Publish now instead".
    #[serde(default)]
    now: Option<String>,
    /// The page to come back to (the calendar), a same-site path; the post's page otherwise.
    #[serde(default)]
    return_to: String,
}

/// Moves a scheduled post to another time (or to now) through `compose::update`: the whole
/// post is checked again at the new time, limits included.
async fn reschedule(
    viewer: Viewer,
    State(state): State<HttpState>,
    axum::extract::Path(id): axum::extract::Path<String>,
    Form(form): Form<RescheduleForm>,
) -> Result<Response, PageError> {
    viewer.check_csrf(&form.csrf)?;
    // Another workspace's post (or none) is a 404 before the form is read.
    if tidepost_store::posts::get(&state.app.db, &viewer.workspace.id, &id)
        .await?
        .is_none()
    {
        return Err(PageError::not_found());
    }
    let back = crate::auth::safe_next(form.return_to.trim())
        .filter(|to| to.starts_with("/calendar"))
        .map(str::to_string);
    let refused = |message: String| {
        let page = PageError::new(
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            "The post was not moved",
            message,
        );
        match &back {
            Some(to) => page.with_action(to.clone(), "Back to the calendar"),
            None => page.with_action(format!("/posts/{id}"), "Back to the post"),
        }
    };
    let schedule = if form.now.is_some() {
        Schedule::default()
    } else {
        let at = compose::schedule::parse(
            &form.scheduled_at,
            Some(form.time_zone.as_str()).filter(|z| !z.trim().is_empty()),
        )
        .map_err(|e| refused(crate::error::capitalize(&e.message)))?;
        Schedule {
            at: Some(at),
            next_free_slot: false,
        }
    };
    let change = compose::Update {
        schedule: Some(schedule),
        by: Some(viewer.user.id.clone()),
        ..compose::Update::default()
    };
    match compose::update(&state.app, &viewer.workspace.id, &id, change).await {
        Ok(_) => {
            Ok(Redirect::to(back.as_deref().unwrap_or(&format!("/posts/{id}"))).into_response())
        }
        Err(ComposeError::NotFound(_)) => Err(PageError::not_found()),
        Err(ComposeError::Store(e)) => Err(PageError::from(e)),
        Err(other) => Err(refused(refusal_words(&other))),
    }
}

/// A list of posts that could not be read (the schedule, the calendar), as a page.
pub(super) fn list_refused(err: ComposeError, title: &'static str) -> PageError {
    match err {
        ComposeError::Store(e) => PageError::from(e),
        other @ (ComposeError::Invalid(_)
        | ComposeError::NotFound(_)
        | ComposeError::Conflict(_)
        | ComposeError::Unavailable(_)
        | ComposeError::Publish(_)
        | ComposeError::Stale(_)
        | ComposeError::Started(_)) => PageError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            title,
            other.to_string(),
        ),
    }
}

/// A refused change to a post in words: each problem (a limit's names its next free slot, in
/// the zone the new time was given in).
pub(super) fn refusal_words(err: &ComposeError) -> String {
    match err {
        ComposeError::Invalid(issues) => issues
            .iter()
            .map(|issue| crate::error::capitalize(&issue.message))
            .collect::<Vec<_>>()
            .join(" "),
        ComposeError::Started(refused) => refused
            .iter()
            .map(|r| crate::error::capitalize(&r.reason))
            .collect::<Vec<_>>()
            .join(" "),
        other @ (ComposeError::NotFound(_)
        | ComposeError::Conflict(_)
        | ComposeError::Stale(_)
        | ComposeError::Unavailable(_)
        | ComposeError::Publish(_)
        | ComposeError::Store(_)) => crate::error::capitalize(&other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(pairs: &[(&str, &str)]) -> Typed {
        Typed::parse(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    /// The no-JS path reads every Instagram option the panel shows, as the script sends it,
    /// and only for the media types the panel shows it for; the panel renders them back.
    #[test]
    fn the_form_reads_every_instagram_option() {
        let form = typed(&[
            ("ig_type:a", "carousel"),
            ("ig_collaborators:a", "@ana.tide, bo_sea"),
            ("ig_tags:a", "2: ana.tide 0.5 0.25\n\n1: bo_sea 0.1 x"),
            ("ig_location:a", " 106078429431815 "),
            ("ig_comment:a", "First!"),
            ("ig_alt:a", "not for a carousel"),
            ("ig_thumb:a", "1200"),
        ]);
        let o = form.instagram_options("a");
        assert_eq!(o.collaborators, ["@ana.tide", "bo_sea"]);
        assert_eq!(o.user_tags.len(), 2);
        assert_eq!(o.user_tags[0].item, Some(1));
        assert_eq!(o.user_tags[0].username, "ana.tide");
        assert_eq!(
            (o.user_tags[0].x, o.user_tags[0].y),
            (Some(0.5), Some(0.25))
        );
        // A number that does not read stays, for the check to name the field.
        assert!(o.user_tags[1].y.is_some_and(f64::is_nan));
        assert_eq!(o.location_id.as_deref(), Some("106078429431815"));
        assert_eq!(o.first_comment.as_deref(), Some("First!"));
        assert_eq!(o.alt_text, None, "alt text is an image's");
        assert_eq!(o.thumb_offset, None, "a cover frame is a reel's");

        let reel = typed(&[
            ("ig_type:a", "reel"),
            ("ig_thumb:a", "1200"),
            ("ig_audio:a", "Tide sound"),
            ("ig_trial:a", "SS_PERFORMANCE"),
        ])
        .instagram_options("a");
        assert_eq!(reel.thumb_offset, Some(1200));
        assert_eq!(reel.audio_name.as_deref(), Some("Tide sound"));
        assert_eq!(
            reel.trial_params.map(|t| t.graduation_strategy),
            Some(GraduationStrategy::SsPerformance)
        );
        let panel = InstagramPanel {
            options: reel,
            page_name: None,
        };
        assert!(panel.trial_is("SS_PERFORMANCE") && !panel.trial_is(""));
        assert_eq!(panel.thumb_offset(), "1200");

        let story = typed(&[
            ("ig_type:a", "story"),
            ("ig_collaborators:a", "ana"),
            ("ig_comment:a", "hi"),
        ])
        .instagram_options("a");
        assert!(story.collaborators.is_empty() && story.first_comment.is_none());

        let image = typed(&[("ig_type:a", "image"), ("ig_alt:a", "A square")]);
        let panel = InstagramPanel {
            options: image.instagram_options("a"),
            page_name: None,
        };
        assert_eq!(panel.alt_text(), "A square");
        let tagged = InstagramPanel {
            options: form.instagram_options("a"),
            page_name: None,
        };
        assert_eq!(
            tagged.user_tags().lines().next(),
            Some("2: ana.tide 0.5 0.25")
        );
        assert_eq!(tagged.collaborators(), "@ana.tide, bo_sea");
    }
}
