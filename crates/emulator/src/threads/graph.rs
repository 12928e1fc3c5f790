//! Every request to `graph.threads.net`: parameters read as Meta reads them (query, form or
//! JSON), the fault knobs, the token, then the node or edge asked for.

use axum::Json;
use axum::extract::{Request, State};
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::oauth;
use super::state::{Container, Post, Threads, Token, USERNAME};
use crate::meta::call::{Incoming, Params, access_token, apply_latency};
use crate::meta::errors::{self, GraphError, GraphResult, Host};

/// Threads' text limit: 500, every non-ASCII character counted as its UTF-8 bytes.
pub const TEXT_LIMIT: usize = 500;
pub const LINK_LIMIT: usize = 5;
pub const CAROUSEL_ITEMS: (usize, usize) = (2, 20);

pub async fn handle(State(threads): State<Threads>, req: Request) -> Response {
    let faults = threads.faults();
    apply_latency(&faults).await;
    let incoming = match Incoming::read(req).await {
        Ok(incoming) => incoming,
        Err(err) => return err.render(Host::Facebook),
    };
    let result = if faults.roll_server_error() {
        Err(errors::server_error())
    } else if faults.roll_rate_limit() {
        Err(errors::rate_limited(true))
    } else {
        dispatch(&threads, &incoming)
    };
    match result {
        Ok(Answer::Json(value)) => Json(value).into_response(),
        Ok(Answer::Lost) => errors::server_error().render(Host::Facebook),
        Err(err) => err.render(Host::Facebook),
    }
}

enum Answer {
    Json(Value),
    /// The write happened; the answer is a 500 as if it were lost.
    Lost,
}

fn dispatch(threads: &Threads, incoming: &Incoming) -> GraphResult<Answer> {
    let rest = incoming.path.strip_prefix("/threads/graph").unwrap_or("");
    let mut segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    let versioned = segments.first().is_some_and(|s| *s == "v1.0");
    if versioned {
        segments.remove(0);
    }
    let params = &incoming.params;
    let token = access_token(&incoming.headers, params);
    let json = |r: GraphResult| r.map(Answer::Json);
    let get = incoming.method == Method::GET;
    let post = incoming.method == Method::POST;
    match segments.as_slice() {
        ["oauth", "access_token"] if get || post => json(oauth::access_token(threads, params)),
        ["access_token"] if get || post => json(oauth::exchange(threads, params, token.as_deref())),
        ["refresh_access_token"] if get => json(oauth::refresh(threads, params, token.as_deref())),
        ["debug_token"] if get => json(debug_token(threads, params)),
        [id] => {
            let token = auth(threads, token.as_deref())?;
            match *id {
                "me" if get => json(me(params, &token)),
                user if user == token.user_id && get => json(me(params, &token)),
                other if get => json(node(threads, params, other)),
                _ => Err(errors::unsupported_method(incoming.method.as_str())),
            }
        }
        [user, edge] => {
            let token = auth(threads, token.as_deref())?;
            let own = *user == "me" || *user == token.user_id;
            match (*edge, own) {
                ("threads", true) if post => json(create(threads, params, &token)),
                ("threads", true) if get => json(list(threads, &token)),
                ("threads_publish", true) if post => publish(threads, params, &token),
                ("threads_publishing_limit", true) if get => json(limit(threads, params, &token)),
                ("insights", _) if get => json(insights(threads, params, user)),
                (_, _) => Err(GraphError::new(
                    100,
                    format!(
                        "Unsupported {} request. Object with ID '{user}' does not exist, cannot be loaded due to missing permissions, or does not support this operation.",
                        incoming.method.as_str().to_ascii_lowercase()
                    ),
                )
                .subcode(33)),
            }
        }
        _ => Err(errors::unknown_path()),
    }
}

/// The token, valid now, or Threads' 190.
pub fn valid_token(threads: &Threads, value: &str) -> GraphResult<Token> {
    let now = threads.now_ms();
    let revoke_all = threads.faults().revoke_all_tokens;
    let token = threads
        .store(|s| s.tokens.get(value).cloned())
        .ok_or_else(errors::invalid_token)?;
    if token.revoked || revoke_all {
        return Err(errors::token_revoked(&threads.config.app_id));
    }
    if now >= token.expires_ms {
        return Err(errors::token_expired(token.expires_ms, now));
    }
    Ok(token)
}

fn auth(threads: &Threads, token: Option<&str>) -> GraphResult<Token> {
    let value = token.ok_or_else(errors::token_required)?;
    if value.starts_with("TH|") {
        return Err(GraphError::new(
            190,
            "An app access token cannot be used for this request.",
        ));
    }
    valid_token(threads, value)
}

fn has_scope(token: &Token, scope: &str) -> GraphResult<()> {
    if token.scopes.iter().any(|s| s == scope) {
        Ok(())
    } else {
        Err(errors::permission_missing(10, scope))
    }
}

fn requested(params: &Params, defaults: &[&str]) -> Vec<String> {
    match params.get("fields") {
        Some(f) => f.split(',').map(|s| s.trim().to_string()).collect(),
        None => defaults.iter().map(|s| s.to_string()).collect(),
    }
}

fn pick(all: &Value, fields: &[String]) -> Value {
    let mut out = serde_json::Map::new();
    out.insert("id".into(), all["id"].clone());
    for f in fields {
        if let Some(v) = all.get(f.as_str()).filter(|v| !v.is_null()) {
            out.insert(f.clone(), v.clone());
        }
    }
    Value::Object(out)
}

fn me(params: &Params, token: &Token) -> GraphResult {
    let all = json!({
        "id": token.user_id,
        "username": USERNAME,
        "name": super::state::NAME,
        "threads_profile_picture_url": "https://scontent.cdninstagram.com/threads_tester.jpg",
        "threads_biography": "Testing tidepost against an emulated Threads.",
        "is_verified": false,
    });
    Ok(pick(&all, &requested(params, &["id"])))
}

fn debug_token(threads: &Threads, params: &Params) -> GraphResult {
    let input = params.require("input_token")?;
    let token = threads.store(|s| s.tokens.get(input).cloned());
    Ok(match token {
        Some(t) => json!({"data": {
            "type": "USER",
            "application": threads.config.app_name,
            "expires_at": t.expires_ms / 1000,
            "issued_at": t.issued_ms / 1000,
            "is_valid": !t.revoked && threads.now_ms() < t.expires_ms,
            "scopes": t.scopes,
            "user_id": t.user_id,
        }}),
        None => json!({"data": {"is_valid": false}}),
    })
}

/// Text length as Threads counts it: ASCII characters 1, others their UTF-8 bytes.
pub fn weighted_len(text: &str) -> usize {
    text.chars().map(char::len_utf8).sum()
}

fn links(text: &str) -> Vec<String> {
    text.split_whitespace()
        .filter(|w| w.starts_with("http://") || w.starts_with("https://"))
        .map(|w| w.trim_end_matches(['.', ',', ')', '!', '?']).to_string())
        .collect()
}

fn invalid(message: impl Into<String>) -> GraphError {
    errors::invalid_param(message)
}

/// Where a media URL asks to fail: `…#fail=REASON`.
fn injected_failure(url: &str) -> Option<String> {
    url.split_once("#fail=").map(|(_, r)| r.to_string())
}

fn create(threads: &Threads, params: &Params, token: &Token) -> GraphResult {
    has_scope(token, "threads_content_publish")?;
    let media_type = params.require("media_type")?.to_string();
    let now = threads.now_ms();
    let settings = threads.settings();
    let faults = threads.faults();
    let is_item = params.flag("is_carousel_item")?.unwrap_or(false);
    if let Some(control) = params.get("reply_control")
        && ![
            "everyone",
            "accounts_you_follow",
            "mentioned_only",
            "parent_post_author_only",
            "followers_only",
        ]
        .contains(&control)
    {
        return Err(invalid(format!(
            "Param reply_control must be one of everyone, accounts_you_follow, mentioned_only, parent_post_author_only, followers_only (got {control:?})"
        )));
    }
    let text = params.get("text").unwrap_or("");
    if weighted_len(text) > TEXT_LIMIT {
        return Err(invalid("Param text must be at most 500 characters long.")
            .user("Text too long", "text must be at most 500 characters"));
    }
    let mut all_links = links(text);
    if let Some(link) = params.get("link_attachment") {
        if media_type != "TEXT" {
            return Err(invalid("Param link_attachment is only for TEXT posts"));
        }
        all_links.push(link.to_string());
    }
    all_links.sort();
    all_links.dedup();
    if all_links.len() > LINK_LIMIT {
        return Err(invalid(format!(
            "THREADS_API__LINK_LIMIT_EXCEEDED: a post has at most {LINK_LIMIT} links (this one has {})",
            all_links.len()
        )));
    }
    if let Some(alt) = params.get("alt_text")
        && alt.chars().count() > 1000
    {
        return Err(invalid(
            "Param alt_text must be at most 1000 characters long.",
        ));
    }
    let mut children = Vec::new();
    let (ready_ms, error_message) = match media_type.as_str() {
        "TEXT" => {
            if is_item {
                return Err(invalid("A carousel item must be an IMAGE or a VIDEO"));
            }
            if text.is_empty() {
                return Err(errors::missing_param("text"));
            }
            (now, None)
        }
        "IMAGE" => {
            let url = params.require("image_url")?;
            check_url(url)?;
            (now, injected_failure(url))
        }
        "VIDEO" => {
            let url = params.require("video_url")?;
            check_url(url)?;
            (
                now + i64::try_from(settings.video_processing_ms).unwrap_or(0),
                injected_failure(url),
            )
        }
        "CAROUSEL" => {
            if is_item {
                return Err(invalid("A carousel cannot be a carousel item"));
            }
            let list = params.require("children")?;
            children = list
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect();
            let (lo, hi) = CAROUSEL_ITEMS;
            if !(lo..=hi).contains(&children.len()) {
                return Err(invalid(format!(
                    "A carousel has {lo} to {hi} children (got {})",
                    children.len()
                )));
            }
            threads.store(|s| {
                for child in &children {
                    let c = s
                        .containers
                        .get(child)
                        .ok_or_else(|| invalid(format!("Child {child} does not exist")))?;
                    if c.user_id != token.user_id || !c.is_carousel_item {
                        return Err(invalid(format!(
                            "Child {child} is not a carousel item of this user"
                        )));
                    }
                    if c.status(now) != "FINISHED" {
                        return Err(invalid(format!(
                            "Child {child} is not FINISHED (it is {})",
                            c.status(now)
                        )));
                    }
                }
                Ok(())
            })?;
            (now, None)
        }
        other => {
            return Err(invalid(format!(
                "Param media_type must be one of TEXT, IMAGE, VIDEO, CAROUSEL (got {other:?})"
            )));
        }
    };
    let error_message = error_message.or_else(|| {
        (faults.fail_processing && media_type != "TEXT").then(|| {
            if media_type == "VIDEO" {
                "FAILED_PROCESSING_VIDEO".to_string()
            } else {
                "UNKNOWN".to_string()
            }
        })
    });
    let mut stored = std::collections::HashMap::new();
    for name in [
        "media_type",
        "text",
        "image_url",
        "video_url",
        "reply_control",
        "link_attachment",
        "alt_text",
        "children",
        "topic_tag",
    ] {
        if let Some(v) = params.get(name) {
            stored.insert(name.to_string(), v.to_string());
        }
    }
    let id = threads.store(|s| {
        let id = s.new_id();
        s.containers.insert(
            id.clone(),
            Container {
                id: id.clone(),
                user_id: token.user_id.clone(),
                media_type: media_type.clone(),
                params: stored,
                children: children.clone(),
                is_carousel_item: is_item,
                created_ms: now,
                ready_ms,
                error_message,
                published_id: None,
            },
        );
        id
    });
    Ok(json!({ "id": id }))
}

fn check_url(url: &str) -> GraphResult<()> {
    match url::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => Ok(()),
        _ => Err(
            GraphError::new(1, "The media could not be fetched from this URI")
                .subcode(2207052)
                .user(
                    "Media download has failed",
                    format!("The media could not be fetched from this URI: {url}"),
                ),
        ),
    }
}

fn read_type(request: &str) -> &'static str {
    match request {
        "TEXT" => "TEXT_POST",
        "CAROUSEL" => "CAROUSEL_ALBUM",
        "VIDEO" => "VIDEO",
        _ => "IMAGE",
    }
}

fn media_not_found(id: &str) -> GraphError {
    GraphError::new(24, "The requested resource does not exist")
        .subcode(4279009)
        .transient(false)
        .user(
            "Media Not Found",
            format!("The media with id {id} cannot be found."),
        )
}

fn publish(threads: &Threads, params: &Params, token: &Token) -> GraphResult<Answer> {
    has_scope(token, "threads_content_publish")?;
    let creation_id = params.require("creation_id")?.to_string();
    let now = threads.now_ms();
    let settings = threads.settings();
    let container = threads
        .store(|s| s.containers.get(&creation_id).cloned())
        .filter(|c| c.user_id == token.user_id)
        .ok_or_else(|| media_not_found(&creation_id))?;
    match container.status(now) {
        "IN_PROGRESS" => return Err(media_not_found(&creation_id)),
        "ERROR" => {
            return Err(GraphError::new(
                24,
                format!(
                    "The container failed processing ({}) and cannot be published",
                    container.error_message.as_deref().unwrap_or("UNKNOWN")
                ),
            ));
        }
        "EXPIRED" => {
            return Err(GraphError::new(
                24,
                "The container expired (not published within 24 hours)",
            ));
        }
        "PUBLISHED" => {
            return Err(invalid("This container was already published"));
        }
        _ => {}
    }
    if container.is_carousel_item {
        return Err(invalid("A carousel item cannot be published on its own"));
    }
    if settings.media_not_found > 0 {
        threads.update_settings(|s| s.media_not_found -= 1);
        return Err(media_not_found(&creation_id));
    }
    let used = threads.store(|s| s.published_in_window(&token.user_id, now));
    if used >= settings.publishing_limit as usize {
        return Err(GraphError::new(
            9,
            format!(
                "(#9) The user has reached the limit of {} posts published through the API in 24 hours",
                settings.publishing_limit
            ),
        )
        .user(
            "Publishing limit reached",
            format!("You can publish {} posts in 24 hours.", settings.publishing_limit),
        ));
    }
    let post = threads.store(|s| {
        let id = s.new_id();
        let shortcode = format!("C{}", &id[id.len() - 10..]);
        let post = Post {
            id: id.clone(),
            container_id: creation_id.clone(),
            user_id: token.user_id.clone(),
            media_type: read_type(&container.media_type).into(),
            text: container.params.get("text").cloned(),
            permalink: format!("https://www.threads.com/@{USERNAME}/post/{shortcode}"),
            shortcode,
            published_ms: now,
            reply_control: container.params.get("reply_control").cloned(),
            link_attachment: container.params.get("link_attachment").cloned(),
            children: container.children.clone(),
        };
        s.posts.push(post.clone());
        if let Some(c) = s.containers.get_mut(&creation_id) {
            c.published_id = Some(id);
        }
        post
    });
    if settings.lose_publish_answers > 0 {
        threads.update_settings(|s| s.lose_publish_answers -= 1);
        return Ok(Answer::Lost);
    }
    Ok(Answer::Json(json!({ "id": post.id })))
}

fn node(threads: &Threads, params: &Params, id: &str) -> GraphResult {
    let now = threads.now_ms();
    let (container, post) = threads.store(|s| {
        (
            s.containers.get(id).cloned(),
            s.posts.iter().find(|p| p.id == id).cloned(),
        )
    });
    if let Some(c) = container {
        let status = c.status(now);
        let mut all = json!({"id": c.id, "status": status});
        if status == "ERROR" {
            all["error_message"] = json!(c.error_message);
        }
        return Ok(pick(&all, &requested(params, &["id"])));
    }
    if let Some(p) = post {
        let all = json!({
            "id": p.id,
            "media_product_type": "THREADS",
            "media_type": p.media_type,
            "permalink": p.permalink,
            "shortcode": p.shortcode,
            "text": p.text,
            "username": USERNAME,
            "owner": {"id": p.user_id},
            "timestamp": crate::meta::time::iso(p.published_ms / 1000),
            "is_quote_post": false,
            "reply_audience": p.reply_control.as_deref().map(str::to_ascii_uppercase),
            "link_attachment_url": p.link_attachment,
            "children": (!p.children.is_empty()).then(|| json!({"data": p.children.iter().map(|c| json!({"id": c})).collect::<Vec<_>>()})),
        });
        return Ok(pick(&all, &requested(params, &["id"])));
    }
    Err(GraphError::new(
        100,
        format!("Unsupported get request. Object with ID '{id}' does not exist, cannot be loaded due to missing permissions, or does not support this operation."),
    )
    .subcode(33))
}

fn list(threads: &Threads, token: &Token) -> GraphResult {
    let posts: Vec<Value> = threads.store(|s| {
        s.posts
            .iter()
            .rev()
            .filter(|p| p.user_id == token.user_id)
            .take(100)
            .map(|p| json!({"id": p.id, "permalink": p.permalink, "media_type": p.media_type, "text": p.text}))
            .collect()
    });
    Ok(json!({"data": posts, "paging": {"cursors": {"before": "", "after": ""}}}))
}

fn limit(threads: &Threads, params: &Params, token: &Token) -> GraphResult {
    let now = threads.now_ms();
    let used = threads.store(|s| s.published_in_window(&token.user_id, now));
    let total = threads.settings().publishing_limit;
    let all = json!({
        "quota_usage": used,
        "config": {"quota_total": total, "quota_duration": 86_400},
        "reply_quota_usage": 0,
        "reply_config": {"quota_total": 1000, "quota_duration": 86_400},
        "delete_quota_usage": 0,
        "delete_config": {"quota_total": 100, "quota_duration": 86_400},
    });
    let fields = requested(params, &["quota_usage", "config"]);
    let mut entry = serde_json::Map::new();
    for f in fields {
        if let Some(v) = all.get(f.as_str()) {
            entry.insert(f, v.clone());
        }
    }
    Ok(json!({"data": [entry]}))
}

fn insights(threads: &Threads, params: &Params, id: &str) -> GraphResult {
    let now = threads.now_ms();
    let post = threads
        .store(|s| s.posts.iter().find(|p| p.id == id).cloned())
        .ok_or_else(|| {
            GraphError::new(100, format!("Object with ID '{id}' does not exist")).subcode(33)
        })?;
    // Grows with the post's age, so samples taken over time differ.
    let minutes = (now - post.published_ms).max(0) / 60_000;
    let views = 10 + minutes * 3;
    let metrics = params
        .get("metric")
        .unwrap_or("views,likes,replies,reposts,quotes");
    let data: Vec<Value> = metrics
        .split(',')
        .map(str::trim)
        .map(|name| {
            let value = match name {
                "views" => views,
                "likes" => views / 10,
                "replies" => views / 40,
                "reposts" => views / 80,
                "quotes" => views / 200,
                _ => 0,
            };
            json!({"name": name, "period": "lifetime", "values": [{"value": value}],
                   "title": name, "description": "", "id": format!("{id}/insights/{name}/lifetime")})
        })
        .collect();
    Ok(json!({ "data": data }))
}
