//! Drafts in the UI: the composer's "Save draft" (any unfinished post, nothing checked),
//! `/drafts` (the drafts not yet published, each opened again in the composer with
//! `/compose?draft=…`, or deleted), and what the composer needs to show a draft again: the form
//! as it was typed, read back from the draft ([`typed_of`]).

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;
use tidepost_app::compose::drafts::{self, Draft, DraftBody};
use tidepost_app::compose::{self, ComposeError};
use tidepost_app::instagram::options::{GraduationStrategy, MediaType};
use tidepost_app::pipeline::media::ItemKind;
use tidepost_app::tiktok::Mode;
use tidepost_store::accounts;

use super::Chrome;
use super::compose::Typed;
use crate::auth::Viewer;
use crate::error::PageError;
use crate::state::HttpState;

pub fn router() -> Router<HttpState> {
    Router::new()
        .route("/drafts", get(list))
        .route("/drafts/{id}/delete", post(delete))
}

/// A draft's refusal on a page.
pub(super) fn page_error(err: ComposeError) -> PageError {
    match err {
        ComposeError::Store(e) => PageError::from(e),
        ComposeError::NotFound(_) => PageError::not_found(),
        other @ (ComposeError::Invalid(_)
        | ComposeError::Conflict(_)
        | ComposeError::Unavailable(_)
        | ComposeError::Publish(_)
        | ComposeError::Stale(_)
        | ComposeError::Started(_)) => PageError::new(
            axum::http::StatusCode::CONFLICT,
            "The draft could not be changed",
            crate::error::capitalize(&other.to_string()),
        ),
    }
}

/// The composer's form as it was when the draft was saved: the inverse of the form's reading
/// (`Typed::composite`), field by field.
pub(super) fn typed_of(draft: &Draft) -> Typed {
    Typed {
        draft_id: draft.id.clone(),
        draft_version: draft.version.to_string(),
        ..typed_of_body(&draft.body)
    }
}

/// The composer's form for a post as a draft holds it (a draft's body, or the part of a post
/// still to send, `compose::editable`).
pub(super) fn typed_of_body(body: &DraftBody) -> Typed {
    let mut typed = Typed {
        caption: body.caption.clone(),
        targets: body.targets.iter().map(|t| t.account_id.clone()).collect(),
        media: body
            .media
            .iter()
            .filter_map(|i| i.media_id.clone())
            .collect(),
        when: match (body.scheduled_at, body.next_free_slot) {
            (_, true) => "next".into(),
            (Some(_), false) => "at".into(),
            (None, false) => "now".into(),
        },
        scheduled_at: body
            .scheduled_at
            .map(|ms| compose::schedule::local_input(ms, body.time_zone.as_deref()))
            .unwrap_or_default(),
        time_zone: body.time_zone.clone().unwrap_or_default(),
        ..Typed::default()
    };
    if let Some(item) = body.media.iter().find(|i| i.url.is_some()) {
        typed.media_url = item.url.clone().unwrap_or_default();
        typed.media_url_kind = match item.kind {
            Some(ItemKind::Image) => "image".into(),
            Some(ItemKind::Video) | None => "video".into(),
        };
    }
    for target in &body.targets {
        let mut fields: Vec<(&str, String)> = Vec::new();
        let on = |set: bool| set.then(|| "on".to_string());
        if let Some(caption) = &target.caption {
            fields.push(("caption", caption.clone()));
        }
        if let Some(t) = &target.tiktok {
            let mode = match t.mode {
                Some(Mode::Inbox) => "inbox",
                Some(Mode::Direct) | None => "direct",
            };
            fields.push(("mode", mode.into()));
            fields.extend(t.privacy_level.clone().map(|p| ("privacy", p)));
            fields.extend(on(!t.disable_comment).map(|v| ("allow_comment", v)));
            fields.extend(on(!t.disable_duet).map(|v| ("allow_duet", v)));
            fields.extend(on(!t.disable_stitch).map(|v| ("allow_stitch", v)));
            let disclosed = t.brand_organic_toggle || t.brand_content_toggle;
            fields.extend(on(disclosed).map(|v| ("disclose", v)));
            fields.extend(on(t.brand_organic_toggle).map(|v| ("brand_organic", v)));
            fields.extend(on(t.brand_content_toggle).map(|v| ("brand_content", v)));
            fields.extend(on(t.is_aigc).map(|v| ("is_aigc", v)));
            fields.extend(
                t.video_cover_timestamp_ms
                    .map(|ms| ("cover_ms", ms.to_string())),
            );
            fields.extend(t.title.clone().map(|v| ("title", v)));
            fields.extend(t.description.clone().map(|v| ("description", v)));
            fields.extend(on(t.auto_add_music).map(|v| ("auto_music", v)));
            if t.photo_cover_index > 0 {
                fields.push(("cover_photo", (t.photo_cover_index + 1).to_string()));
            }
        }
        if let Some(ig) = &target.instagram {
            let kind = match ig.media_type {
                Some(MediaType::Image) => Some("image"),
                Some(MediaType::Reel) => Some("reel"),
                Some(MediaType::Carousel) => Some("carousel"),
                Some(MediaType::Story) => Some("story"),
                None => None,
            };
            fields.extend(kind.map(|k| ("ig_type", k.to_string())));
            fields.extend(ig.cover_url.clone().map(|v| ("ig_cover", v)));
            fields.extend(on(ig.share_to_feed == Some(true)).map(|v| ("ig_share", v)));
            fields.extend(ig.thumb_offset.map(|v| ("ig_thumb", v.to_string())));
            fields.extend(ig.audio_name.clone().map(|v| ("ig_audio", v)));
            fields.extend(ig.trial_params.as_ref().map(|t| {
                let strategy = match t.graduation_strategy {
                    GraduationStrategy::Manual => "MANUAL",
                    GraduationStrategy::SsPerformance => "SS_PERFORMANCE",
                };
                ("ig_trial", strategy.to_string())
            }));
            fields.extend(ig.alt_text.clone().map(|v| ("ig_alt", v)));
            if !ig.collaborators.is_empty() {
                fields.push(("ig_collaborators", ig.collaborators.join(", ")));
            }
            if !ig.user_tags.is_empty() {
                fields.push(("ig_tags", super::compose::user_tags_text(&ig.user_tags)));
            }
            fields.extend(ig.location_id.clone().map(|v| ("ig_location", v)));
            fields.extend(ig.first_comment.clone().map(|v| ("ig_comment", v)));
        }
        let map = typed
            .per_account
            .entry(target.account_id.clone())
            .or_default();
        for (name, value) in fields {
            map.insert(name.to_string(), value);
        }
    }
    typed
}

/// One draft as `/drafts` lists it.
struct Row {
    id: String,
    caption: String,
    accounts: String,
    when: String,
    updated: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "drafts.html")]
struct DraftsPage {
    chrome: Chrome,
    rows: Vec<Row>,
    truncated: bool,
}

/// How many drafts the page lists (the newest).
const LIST_LIMIT: i64 = 200;

async fn list(viewer: Viewer, State(state): State<HttpState>) -> Result<Response, PageError> {
    let ws = &viewer.workspace.id;
    let found = drafts::list(&state.app, ws, None, LIST_LIMIT)
        .await
        .map_err(page_error)?;
    let names: std::collections::HashMap<String, String> = accounts::list(&state.app.db, ws)
        .await?
        .into_iter()
        .map(|a| (a.id, a.display_name))
        .collect();
    let truncated = found.len() as i64 == LIST_LIMIT;
    let rows = found
        .iter()
        .map(|d| {
            let body = &d.body;
            let accounts: Vec<String> = body
                .targets
                .iter()
                .map(|t| {
                    names
                        .get(&t.account_id)
                        .cloned()
                        .unwrap_or_else(|| "(an account no longer connected)".into())
                })
                .collect();
            Row {
                id: d.id.clone(),
                caption: if body.caption.trim().is_empty() {
                    "(no caption yet)".into()
                } else {
                    body.caption.chars().take(140).collect()
                },
                accounts: if accounts.is_empty() {
                    "No account chosen yet".into()
                } else {
                    accounts.join(", ")
                },
                when: match (body.scheduled_at, body.next_free_slot) {
                    (Some(ms), false) => compose::schedule::spoken(ms, body.time_zone.as_deref()),
                    (_, true) => "At the next free slot".into(),
                    (None, false) => "When published".into(),
                },
                updated: compose::schedule::spoken(d.updated_at, body.time_zone.as_deref()),
            }
        })
        .collect();
    Ok(DraftsPage {
        chrome: Chrome::for_viewer(&state, &viewer, "Drafts"),
        rows,
        truncated,
    }
    .into_response())
}

#[derive(Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

async fn delete(
    viewer: Viewer,
    State(state): State<HttpState>,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, PageError> {
    viewer.check_csrf(&form.csrf)?;
    drafts::delete(&state.app, &viewer.workspace.id, &id)
        .await
        .map_err(page_error)?;
    Ok(Redirect::to("/drafts").into_response())
}

#[cfg(test)]
mod tests {
    use tidepost_app::compose::drafts::DraftBody;
    use tidepost_app::compose::{InstagramOptions, TargetSpec, TikTokOptions};
    use tidepost_app::instagram::options::{TrialParams, UserTag};

    use super::*;

    fn draft(targets: Vec<TargetSpec>) -> Draft {
        Draft {
            id: "d".into(),
            body: DraftBody {
                caption: "c".into(),
                targets,
                scheduled_at: Some(1_900_000_000_000),
                time_zone: Some("Asia/Tokyo".into()),
                ..DraftBody::default()
            },
            created_by: None,
            created_at: 0,
            updated_at: 0,
            version: 3,
            post_id: None,
            published_at: None,
        }
    }

    /// Every option a draft holds comes back from the form it opens as: what the composer
    /// would send again is what was saved.
    #[test]
    fn a_drafts_options_read_back_from_its_form() {
        let tiktok = TikTokOptions {
            mode: Some(Mode::Direct),
            privacy_level: Some("MUTUAL_FOLLOW_FRIENDS".into()),
            disable_comment: false,
            disable_duet: true,
            disable_stitch: true,
            brand_organic_toggle: true,
            brand_content_toggle: true,
            is_aigc: true,
            video_cover_timestamp_ms: Some(1500),
            title: Some("t".into()),
            description: Some("d".into()),
            auto_add_music: true,
            photo_cover_index: 2,
            ..TikTokOptions::default()
        };
        let reel = InstagramOptions {
            media_type: Some(MediaType::Reel),
            cover_url: Some("https://cdn.example.com/c.jpg".into()),
            share_to_feed: Some(true),
            collaborators: vec!["ana".into(), "bo".into()],
            user_tags: vec![UserTag {
                item: None,
                username: "cy".into(),
                x: Some(0.25),
                y: Some(0.5),
            }],
            location_id: Some("110843418940484".into()),
            alt_text: None,
            thumb_offset: Some(2500),
            audio_name: Some("tide".into()),
            trial_params: Some(TrialParams {
                graduation_strategy: GraduationStrategy::SsPerformance,
            }),
            first_comment: Some("first".into()),
        };
        let image = InstagramOptions {
            media_type: Some(MediaType::Image),
            alt_text: Some("a bay".into()),
            ..InstagramOptions::default()
        };
        let targets = vec![
            TargetSpec {
                account_id: "t".into(),
                caption: Some("own".into()),
                tiktok: Some(tiktok.clone()),
                instagram: None,
                threads: None,
            },
            TargetSpec {
                account_id: "r".into(),
                instagram: Some(reel.clone()),
                ..TargetSpec::default()
            },
            TargetSpec {
                account_id: "i".into(),
                instagram: Some(image.clone()),
                ..TargetSpec::default()
            },
        ];
        let typed = typed_of(&draft(targets));
        assert_eq!(typed.tiktok_options("t"), tiktok);
        assert_eq!(typed.instagram_options("r"), reel);
        assert_eq!(typed.instagram_options("i"), image);
        assert_eq!(typed.field("t", "caption"), Some("own"));
        assert_eq!(typed.targets, ["t", "r", "i"]);
        assert_eq!(typed.when, "at");
        assert_eq!(typed.time_zone, "Asia/Tokyo");
        // 1_900_000_000_000 ms is 2030-03-17T17:46:40Z: 02:46 the next day in Tokyo.
        assert_eq!(typed.scheduled_at, "2030-03-18T02:46");
        assert_eq!(typed.draft_version, "3");
    }
}
