//! `GET /v2/user/info/` (only the requested fields, each gated by its scope) and
//! `POST /v2/post/publish/creator_info/query/` (with the documented 200-with-error cap codes).

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::App;
use super::auth::{JsonBody, Session};
use super::errors::{ApiError, respond};
use super::posting::direct_post_block;
use super::state::{Creator, Endpoint};

/// `(field, scope)` for every user info field.
const USER_FIELDS: &[(&str, &str)] = &[
    ("open_id", "user.info.basic"),
    ("union_id", "user.info.basic"),
    ("avatar_url", "user.info.basic"),
    ("avatar_url_100", "user.info.basic"),
    ("avatar_large_url", "user.info.basic"),
    ("display_name", "user.info.basic"),
    ("bio_description", "user.info.profile"),
    ("profile_deep_link", "user.info.profile"),
    ("is_verified", "user.info.profile"),
    ("username", "user.info.profile"),
    ("follower_count", "user.info.stats"),
    ("following_count", "user.info.stats"),
    ("likes_count", "user.info.stats"),
    ("video_count", "user.info.stats"),
];

pub(crate) async fn user_info(
    State(app): State<App>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    respond(user_info_inner(&app, &headers, query.as_deref().unwrap_or_default()).await)
}

async fn user_info_inner(app: &App, headers: &HeaderMap, query: &str) -> Result<Value, ApiError> {
    let session = app.authorize(headers, Endpoint::UserInfo).await?;
    let params: Vec<(String, String)> = serde_urlencoded::from_str(query).unwrap_or_default();
    let fields = params
        .iter()
        .find(|(k, _)| k == "fields")
        .map(|(_, v)| v.as_str())
        .unwrap_or_default();
    let fields: Vec<&str> = fields
        .split(',')
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .collect();
    if fields.is_empty() {
        return Err(ApiError::invalid_params(
            "The fields query parameter is required.",
        ));
    }
    let creator = session_creator(app, &session)?;
    let mut user = Map::new();
    for field in fields {
        let (_, scope) = USER_FIELDS
            .iter()
            .find(|(name, _)| *name == field)
            .ok_or_else(|| ApiError::invalid_params(format!("Unknown field: {field}.")))?;
        if !session.has_scope(scope) {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "scope_permission_missed",
                format!("The field {field} needs the {scope} scope."),
            ));
        }
        user.insert(field.to_string(), user_field(&creator, field));
    }
    Ok(json!({ "user": user }))
}

fn user_field(c: &Creator, field: &str) -> Value {
    match field {
        "open_id" => json!(c.open_id),
        "union_id" => json!(c.union_id),
        "avatar_url" => json!(c.avatar_url),
        "avatar_url_100" => json!(c.avatar_url.replace(".jpeg", "~100x100.jpeg")),
        "avatar_large_url" => json!(c.avatar_url.replace(".jpeg", "~1080x1080.jpeg")),
        "display_name" => json!(c.display_name),
        "bio_description" => json!(c.bio_description),
        "profile_deep_link" => json!(c.profile_deep_link()),
        "is_verified" => json!(c.is_verified),
        "username" => json!(c.username),
        "follower_count" => json!(c.follower_count),
        "following_count" => json!(c.following_count),
        "likes_count" => json!(c.likes_count),
        "video_count" => json!(c.video_count),
        _ => Value::Null,
    }
}

/// The creator behind a session (always a fixture; a token never outlives its creator).
pub(crate) fn session_creator(app: &App, session: &Session) -> Result<Creator, ApiError> {
    app.store()
        .creator(&session.open_id)
        .cloned()
        .ok_or_else(ApiError::token_invalid)
}

pub(crate) async fn creator_info(
    State(app): State<App>,
    headers: HeaderMap,
    body: Result<JsonBody<Value>, ApiError>,
) -> Response {
    let result = async {
        let session = app.authorize(&headers, Endpoint::CreatorInfo).await?;
        body?;
        let creator = session_creator(&app, &session)?;
        if let Some(error) = direct_post_block(&app, &creator) {
            return Err(error.with_http_200());
        }
        Ok(json!({
            "creator_avatar_url": creator.avatar_url,
            "creator_username": creator.username,
            "creator_nickname": creator.display_name,
            "privacy_level_options": creator.privacy_level_options(),
            "comment_disabled": creator.comment_disabled,
            "duet_disabled": creator.duet_disabled,
            "stitch_disabled": creator.stitch_disabled,
            "max_video_post_duration_sec": creator.max_video_post_duration_sec,
        }))
    }
    .await;
    respond(result)
}
