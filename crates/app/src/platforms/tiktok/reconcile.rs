//! TikTok posts whose outcome is unknown: the publish request left tidepost, its answer was
//! lost (a worker died in between), and no publish id was stored. tidepost never sends such a
//! post again on its own; the target fails with `init_outcome_unknown` and this module settles
//! it, or lets a person settle it:
//!
//! - [`RECONCILE_JOB`] (`tiktok.reconcile`), enqueued with the failure, looks for the post on
//!   the creator's public profile (`POST /v2/video/list/`) for [`WINDOW_MS`], backing off. It
//!   marks the target published only when exactly one video created since the request matches
//!   the caption and no other post of this account could be that video. Two candidates, none,
//!   or one another target may own: nothing is guessed, the target stays unknown and its message
//!   says why. What the list cannot show is said at once: private posts (only me, friends,
//!   followers) and inbox drafts are not listed, a post without a caption cannot be recognised,
//!   and an account that did not grant `video.list` cannot be looked at. A file upload whose
//!   request was lost never sent a byte (its upload URL was only ever in the lost answer), so
//!   TikTok cannot publish it from that request: the message says so.
//! - [`mark_published`]: a person saw it on TikTok ("It is on TikTok — mark published").
//! - [`send_again`]: a person checked that it is not on TikTok and confirms sending it again
//!   ("It is not on TikTok — send again"), the only way to risk a second post.
//!   [`super::retry`] refuses these targets.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;
use tidepost_domain::publish::TargetState;
use tidepost_jobs::{JobContext, JobError, NewJob};
use tidepost_providers::tiktok::ListedVideo;
use tidepost_store::accounts::{self, Account};
use tidepost_store::posts::{self, Post, Target};
use tidepost_store::{StoreError, events};

use super::{Mode, PostOptions};
use crate::App;
use crate::pipeline::{PostView, PublishError, changed_meanwhile, get, republish, target_of_post};
use crate::tokens::{self, TokenError};

pub const RECONCILE_JOB: &str = "tiktok.reconcile";
/// The error code of a target whose publish request may or may not have reached TikTok.
pub const UNKNOWN_CODE: &str = "init_outcome_unknown";
/// How long the job keeps looking: processing and moderation take minutes.
pub const WINDOW_MS: i64 = 30 * 60_000;
/// Attempts of the job; its own waits spread them over the window.
pub const MAX_ATTEMPTS: u32 = 30;
/// The first look, once TikTok had time to process and moderate.
const FIRST_LOOK_MS: i64 = 20_000;
/// Clocks differ: a video stamped this much before the request still counts as after it.
const SKEW_MS: i64 = 60_000;
/// Pages of 20 looked at per run (newest first; older pages predate the request anyway).
const MAX_PAGES: usize = 10;
/// Other posts of the account with this caption, sent this long before the request, may own a
/// video that appeared after it.
const SIBLING_LOOKBACK_MS: i64 = 24 * 3_600_000;

/// What the reconcile job works on.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReconcileRef {
    pub workspace_id: String,
    pub target_id: String,
    /// The init generation whose answer was lost; a retried target has another and is left alone.
    pub generation: i64,
    /// When the request was about to leave (ms, tidepost's clock).
    pub sent_at: i64,
}

/// The beginning every explanation shares.
const LOST: &str = "TikTok may have received this post: the answer to the publish request was lost. tidepost does not send it again on its own, so that it cannot appear twice.";
const CHOOSE: &str =
    "Then choose \"It is on TikTok — mark published\" or \"It is not on TikTok — send again\".";

/// Why the target is unknown, and what happens next, in plain words.
pub fn explanation(target: &Target, options: &PostOptions, account: Option<&Account>) -> String {
    match cannot_look(target, options, account) {
        Some(reason) => format!("{LOST} {reason} {CHOOSE}"),
        None => format!(
            "{LOST} tidepost is looking for it among the creator's public videos for {} minutes and marks it published if it finds exactly one match. {CHOOSE}",
            WINDOW_MS / 60_000
        ),
    }
}

/// Why the video list cannot settle this target, if it cannot.
fn cannot_look(
    target: &Target,
    options: &PostOptions,
    account: Option<&Account>,
) -> Option<String> {
    if target.source == "file_upload" {
        return Some("No part of the video was uploaded for that request (the upload address was in the lost answer), so TikTok cannot have published it from there; check the creator's TikTok profile if in doubt.".into());
    }
    if target.mode == Mode::Inbox.as_str() {
        return Some("It was sent as a draft to the creator's TikTok inbox, and drafts are not visible to apps: ask the creator whether the draft arrived.".into());
    }
    if options.options.privacy_level.as_deref() != Some("PUBLIC_TO_EVERYONE") {
        return Some("It is not a public post, and TikTok shows apps only public videos, so tidepost cannot check for you: look at the creator's TikTok profile.".into());
    }
    if options.caption.trim().is_empty() {
        return Some("It has no caption, so tidepost cannot recognise it among the creator's videos: look at the creator's TikTok profile.".into());
    }
    match account {
        None => Some("The account was disconnected, so tidepost cannot look: check the creator's TikTok profile.".into()),
        Some(a) if !has_scope(a, "video.list") => Some("The creator did not allow tidepost to read their video list (video.list), so it cannot check for you: look at the creator's TikTok profile, or connect the account again granting that permission.".into()),
        Some(_) => None,
    }
}

fn has_scope(account: &Account, scope: &str) -> bool {
    account.scopes.split([',', ' ']).any(|s| s.trim() == scope)
}

/// The reconcile job of a target that just became unknown (enqueued by the publish job).
pub fn job(target: &Target, sent_at: i64, now: i64) -> NewJob {
    NewJob::new(
        RECONCILE_JOB,
        &ReconcileRef {
            workspace_id: target.workspace_id.clone(),
            target_id: target.id.clone(),
            generation: target.init_generation,
            sent_at,
        },
    )
    .workspace(&target.workspace_id)
    .idempotency_key(format!(
        "{RECONCILE_JOB}:{}:{}",
        target.id, target.init_generation
    ))
    .run_at(now + FIRST_LOOK_MS)
}

/// Whether a target is failed with an unknown outcome.
pub fn is_unknown(target: &Target) -> bool {
    target.state == TargetState::Failed.as_str()
        && target.error_code.as_deref() == Some(UNKNOWN_CODE)
}

fn backoff(attempt: i64) -> Duration {
    let doublings = u32::try_from((attempt - 1).clamp(0, 5)).unwrap_or(5);
    Duration::from_secs(15u64 << doublings).min(Duration::from_secs(300))
}

fn options_of(target: &Target, post: &Post) -> PostOptions {
    serde_json::from_str(target.options_or(post)).unwrap_or_default()
}

fn same_caption(a: &str, b: &str) -> bool {
    let norm = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    norm(a) == norm(b)
}

/// What one look found.
#[derive(Debug, PartialEq, Eq)]
pub enum Finding {
    /// Exactly one video, and no other post of the account can be it.
    One(String),
    /// Nothing yet.
    None,
    /// Several videos could be this post; the message says why.
    Ambiguous(String),
}

/// Another target of the account with the same caption: its known video ids, or none yet.
#[derive(Debug, Clone)]
pub struct Sibling {
    pub post_ids: Vec<String>,
    /// It may have become a video whose id tidepost does not know (yet).
    pub may_own_unknown_video: bool,
}

/// The decision, from the listed videos newest first: candidates are videos created since
/// `sent_at` (less the clock skew) whose title or description is the caption, less those another
/// target is known to own. One candidate is the post unless another target of this caption may
/// own a video tidepost does not know yet.
pub fn decide(
    videos: &[ListedVideo],
    caption: &str,
    sent_at: i64,
    siblings: &[Sibling],
) -> Finding {
    let since = sent_at - SKEW_MS;
    let mut ids: Vec<&str> = videos
        .iter()
        .filter(|v| v.create_time.is_some_and(|t| t * 1000 >= since))
        .filter(|v| {
            [&v.title, &v.video_description]
                .into_iter()
                .flatten()
                .any(|t| same_caption(t, caption))
        })
        .map(|v| v.id.as_str())
        .filter(|id| !siblings.iter().any(|s| s.post_ids.iter().any(|p| p == id)))
        .collect();
    ids.sort_unstable();
    ids.dedup();
    match ids.as_slice() {
        [] => Finding::None,
        [one] if !siblings.iter().any(|s| s.may_own_unknown_video) => Finding::One(one.to_string()),
        [_] => Finding::Ambiguous("A video with this caption appeared on the creator's profile since it was sent, but another post of this account with the same caption may be that video, so tidepost does not guess: check the creator's TikTok profile.".into()),
        many => Finding::Ambiguous(format!(
            "{} videos with this caption appeared on the creator's profile since it was sent, so tidepost cannot tell which one is this post: check the creator's TikTok profile.",
            many.len()
        )),
    }
}

/// state, provider_post_ids, error_code, the target's options, the post's options and caption.
type SiblingRow = (
    String,
    String,
    Option<String>,
    Option<String>,
    String,
    String,
);

/// Other targets of the account with the same caption, sent since a day before `sent_at`.
async fn siblings(
    app: &App,
    target: &Target,
    caption: &str,
    sent_at: i64,
) -> Result<Vec<Sibling>, StoreError> {
    let rows: Vec<SiblingRow> =
        sqlx::query_as(
            "SELECT t.state, t.provider_post_ids, t.error_code, t.options, p.options, p.caption \
             FROM post_targets t JOIN posts p ON p.id = t.post_id AND p.workspace_id = t.workspace_id \
             WHERE t.workspace_id = $1 AND t.account_id = $2 AND t.id <> $3 AND t.created_at >= $4",
        )
        .bind(&target.workspace_id)
        .bind(&target.account_id)
        .bind(&target.id)
        .bind(sent_at - SIBLING_LOOKBACK_MS)
        .fetch_all(app.db.pool())
        .await
        .map_err(StoreError::from)?;
    Ok(rows
        .into_iter()
        .filter_map(|(state, ids, code, own, post_options, post_caption)| {
            let options: PostOptions =
                serde_json::from_str(own.as_deref().unwrap_or(&post_options)).unwrap_or_default();
            let theirs = if options.caption.is_empty() {
                post_caption
            } else {
                options.caption
            };
            if !same_caption(&theirs, caption) {
                return None;
            }
            let post_ids: Vec<String> = serde_json::from_str(&ids).unwrap_or_default();
            let may_own_unknown_video = post_ids.is_empty()
                && match state.as_str() {
                    "processing" | "uploading" | "published" => true,
                    "failed" => code.as_deref() == Some(UNKNOWN_CODE),
                    _ => false,
                };
            Some(Sibling {
                post_ids,
                may_own_unknown_video,
            })
        })
        .collect())
}

/// Rewrites the explanation of a target that is still the same unknown one.
async fn explain(app: &App, r: &ReconcileRef, message: &str) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE post_targets SET error_message = $1, updated_at = $2 \
         WHERE workspace_id = $3 AND id = $4 AND state = 'failed' AND error_code = $5 AND init_generation = $6",
    )
    .bind(message)
    .bind(tidepost_domain::now_ms())
    .bind(&r.workspace_id)
    .bind(&r.target_id)
    .bind(UNKNOWN_CODE)
    .bind(r.generation)
    .execute(app.db.pool())
    .await?;
    Ok(())
}

/// Moves an unknown target of `generation` to published (with `video_id` when known) and
/// records `post.published`, in one transaction; false when it is no longer that unknown target.
async fn resolve_published(
    app: &App,
    target: &Target,
    generation: i64,
    video_id: Option<&str>,
    how: &str,
) -> Result<bool, StoreError> {
    let now = tidepost_domain::now_ms();
    let ids: Vec<String> = video_id.map(str::to_string).into_iter().collect();
    let ids_json = serde_json::to_string(&ids).unwrap_or_else(|_| "[]".into());
    let mut tx = app.db.begin_write().await?;
    let done = sqlx::query(
        "UPDATE post_targets SET state = 'published', provider_post_ids = $1, error_code = NULL, \
         error_message = NULL, error_retryable = 0, finished_at = $2, updated_at = $2 \
         WHERE workspace_id = $3 AND id = $4 AND state = 'failed' AND error_code = $5 AND init_generation = $6",
    )
    .bind(&ids_json)
    .bind(now)
    .bind(&target.workspace_id)
    .bind(&target.id)
    .bind(UNKNOWN_CODE)
    .bind(generation)
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() != 1 {
        return Ok(false);
    }
    events::record_in(
        &mut tx,
        &target.workspace_id,
        "post.published",
        Some(&target.post_id),
        &json!({
            "post_id": target.post_id,
            "target_id": target.id,
            "account_id": target.account_id,
            "platform": target.platform,
            "mode": target.mode,
            "publish_id": target.publish_id,
            "state": TargetState::Published.as_str(),
            "attempt": generation,
            "post_ids": ids,
            "post_url": ids.first().map(|id| super::post_url(id)),
            "error": null,
            "resolved": how,
        }),
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(true)
}

/// One run of `tiktok.reconcile`.
pub async fn run(app: &App, ctx: &JobContext, r: &ReconcileRef) -> Result<(), JobError> {
    let Some(target) = posts::target(&app.db, &r.workspace_id, &r.target_id).await? else {
        return Ok(());
    };
    if target.init_generation != r.generation {
        return Ok(());
    }
    if !is_unknown(&target) {
        return match TargetState::parse(&target.state) {
            // The publish job has not failed the target yet.
            Some(state) if !state.is_final() => Err(JobError::wait(
                "the publish job is still settling this target",
                backoff(ctx.attempt()),
            )),
            _ => Ok(()),
        };
    }
    let Some(post) = posts::get(&app.db, &r.workspace_id, &target.post_id).await? else {
        return Ok(());
    };
    let options = options_of(&target, &post);
    let account = accounts::get(&app.db, &r.workspace_id, &target.account_id).await?;
    if let Some(reason) = cannot_look(&target, &options, account.as_ref()) {
        explain(app, r, &format!("{LOST} {reason} {CHOOSE}")).await?;
        return Ok(());
    }
    let Some(account) = account else {
        return Ok(());
    };
    let now = ctx.clock().now_ms();
    let last_try = now >= r.sent_at + WINDOW_MS || ctx.attempt() >= i64::from(MAX_ATTEMPTS);
    let videos = match recent_videos(app, &account, r.sent_at).await {
        Ok(videos) => videos,
        Err(TokenError::NeedsReauth(_)) => {
            explain(app, r, &format!("{LOST} The TikTok account must be connected again, so tidepost cannot look: check the creator's TikTok profile. {CHOOSE}")).await?;
            return Ok(());
        }
        Err(err) if last_try => {
            explain(app, r, &format!("{LOST} tidepost could not read the creator's videos ({err}): check the creator's TikTok profile. {CHOOSE}")).await?;
            return Ok(());
        }
        Err(err) => {
            let wait = match &err {
                TokenError::Provider(e) => e.retry_after,
                TokenError::NeedsReauth(_)
                | TokenError::RefreshBusy
                | TokenError::NotConfigured(_)
                | TokenError::Vault(_)
                | TokenError::Store(_) => None,
            };
            return Err(JobError::retryable(err.to_string())
                .retry_after(wait.unwrap_or_else(|| backoff(ctx.attempt()))));
        }
    };
    let siblings = siblings(app, &target, &options.caption, r.sent_at).await?;
    match decide(&videos, &options.caption, r.sent_at, &siblings) {
        Finding::One(video_id) => {
            if resolve_published(app, &target, r.generation, Some(&video_id), "reconciled").await? {
                tracing::info!(target_id = %target.id, %video_id, "unknown init outcome reconciled: the post is on TikTok");
            }
            Ok(())
        }
        Finding::Ambiguous(reason) => {
            explain(app, r, &format!("{LOST} {reason} {CHOOSE}")).await?;
            Ok(())
        }
        Finding::None if last_try => {
            explain(app, r, &format!("{LOST} tidepost looked among the creator's public videos for {} minutes and did not find it, so it was probably not posted; moderation can take longer, though: check the creator's TikTok profile. {CHOOSE}", WINDOW_MS / 60_000)).await?;
            Ok(())
        }
        Finding::None => Err(JobError::wait(
            "not among the creator's public videos yet; looking again",
            backoff(ctx.attempt()),
        )),
    }
}

/// The creator's public videos created since `sent_at` (less the clock skew), newest first.
async fn recent_videos(
    app: &App,
    account: &Account,
    sent_at: i64,
) -> Result<Vec<ListedVideo>, TokenError> {
    let client = app.tiktok()?.clone();
    let mut videos = Vec::new();
    let mut cursor = None;
    for _ in 0..MAX_PAGES {
        let client = &client;
        let page = tokens::with_token(app, account, |token| async move {
            client
                .list_videos(
                    &token,
                    cursor,
                    tidepost_providers::tiktok::video_list::MAX_COUNT,
                )
                .await
        })
        .await?;
        let older = page
            .videos
            .iter()
            .any(|v| v.create_time.is_some_and(|t| t * 1000 < sent_at - SKEW_MS));
        videos.extend(page.videos);
        if older || !page.has_more || page.cursor.is_none() || page.cursor == cursor {
            break;
        }
        cursor = page.cursor;
    }
    Ok(videos)
}

/// The unknown target `target_id` of the post, or why it cannot be settled by hand.
async fn unknown_target(
    app: &App,
    workspace_id: &str,
    post_id: &str,
    target_id: &str,
) -> Result<Target, PublishError> {
    let target = target_of_post(app, workspace_id, post_id, target_id).await?;
    if !is_unknown(&target) {
        return Err(PublishError::Conflict(format!(
            "this target is {} and its outcome is known: only a post whose outcome is unknown can be marked published or sent again this way",
            target.state
        )));
    }
    Ok(target)
}

/// The video id in `given`: the digits of an id, or of a `…/video/<id>` link.
fn video_id_of(given: &str) -> Result<String, PublishError> {
    let given = given.trim();
    let id = given
        .split_once("/video/")
        .map_or(given, |(_, rest)| rest)
        .split(['?', '/', '#'])
        .next()
        .unwrap_or_default();
    if !id.is_empty() && id.len() <= 32 && id.chars().all(|c| c.is_ascii_digit()) {
        Ok(id.to_string())
    } else {
        Err(PublishError::Invalid {
            field: "video",
            message: "give the TikTok video's link (…/video/<digits>) or its numeric id, or leave it empty".into(),
        })
    }
}

/// "It is on TikTok — mark published": a person saw the post on TikTok. `video` (a link or id)
/// is recorded when given.
pub async fn mark_published(
    app: &App,
    workspace_id: &str,
    post_id: &str,
    target_id: &str,
    video: Option<&str>,
) -> Result<PostView, PublishError> {
    let video_id = video
        .filter(|v| !v.trim().is_empty())
        .map(video_id_of)
        .transpose()?;
    let target = unknown_target(app, workspace_id, post_id, target_id).await?;
    if !resolve_published(
        app,
        &target,
        target.init_generation,
        video_id.as_deref(),
        "marked_by_user",
    )
    .await?
    {
        return Err(changed_meanwhile());
    }
    get(app, workspace_id, post_id).await
}

/// "It is not on TikTok — send again": with `confirmed`, a new publish of the target, the only
/// way tidepost risks a second post.
pub async fn send_again(
    app: &App,
    workspace_id: &str,
    post_id: &str,
    target_id: &str,
    confirmed: bool,
) -> Result<PostView, PublishError> {
    let target = unknown_target(app, workspace_id, post_id, target_id).await?;
    if !confirmed {
        return Err(PublishError::Invalid {
            field: "confirm",
            message: "confirm that the post is not on TikTok: sending it again posts it twice if TikTok did receive it".into(),
        });
    }
    let now = tidepost_domain::now_ms();
    let moved = sqlx::query(
        "UPDATE post_targets SET state = 'queued', error_code = NULL, error_message = NULL, error_retryable = 0, \
         finished_at = NULL, updated_at = $1 \
         WHERE workspace_id = $2 AND id = $3 AND state = 'failed' AND error_code = $4 AND init_generation = $5",
    )
    .bind(now)
    .bind(workspace_id)
    .bind(target_id)
    .bind(UNKNOWN_CODE)
    .bind(target.init_generation)
    .execute(app.db.pool())
    .await
    .map_err(StoreError::from)?;
    if moved.rows_affected() != 1 {
        return Err(changed_meanwhile());
    }
    tracing::info!(target_id = %target_id, "unknown outcome: sent again at the user's request");
    republish(
        app,
        workspace_id,
        post_id,
        target_id,
        target.init_generation,
        now,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn video(id: &str, title: &str, secs: i64) -> ListedVideo {
        ListedVideo {
            id: id.into(),
            title: Some(title.into()),
            video_description: Some(title.into()),
            create_time: Some(secs),
        }
    }

    const SENT: i64 = 1_000_000_000;

    #[test]
    fn one_match_after_the_request_is_the_post() {
        let videos = [
            video("3", "other", SENT / 1000 + 50),
            video("2", "hello  #tide", SENT / 1000 + 30),
            video("1", "hello #tide", SENT / 1000 - 3600),
        ];
        assert_eq!(
            decide(&videos, "hello #tide", SENT, &[]),
            Finding::One("2".into())
        );
    }

    #[test]
    fn none_two_or_a_possible_owner_is_never_guessed() {
        let before = [video("1", "hello", SENT / 1000 - 3600)];
        assert_eq!(decide(&before, "hello", SENT, &[]), Finding::None);
        let two = [
            video("2", "hello", SENT / 1000 + 30),
            video("3", "hello", SENT / 1000 + 40),
        ];
        assert!(
            matches!(decide(&two, "hello", SENT, &[]), Finding::Ambiguous(m) if m.starts_with("2 videos"))
        );
        // A video another target is known to own is not a candidate.
        let owned = Sibling {
            post_ids: vec!["3".into()],
            may_own_unknown_video: false,
        };
        assert_eq!(
            decide(&two, "hello", SENT, &[owned]),
            Finding::One("2".into())
        );
        // A sibling that may own a video tidepost does not know: no guess.
        let unknown = Sibling {
            post_ids: vec![],
            may_own_unknown_video: true,
        };
        assert!(matches!(
            decide(&two[..1], "hello", SENT, &[unknown]),
            Finding::Ambiguous(_)
        ));
    }

    #[test]
    fn video_links_and_ids() {
        assert_eq!(
            video_id_of("7312345678901234567").unwrap(),
            "7312345678901234567"
        );
        assert_eq!(
            video_id_of("https://www.tiktok.com/@someone/video/7312345678901234567?lang=en")
                .unwrap(),
            "7312345678901234567"
        );
        assert!(video_id_of("https://www.tiktok.com/@someone").is_err());
        assert!(video_id_of("12a").is_err());
    }
}
