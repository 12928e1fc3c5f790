//! Engagement on published media: insights (plausible numbers that grow with emulated time)
//! and comments (`GET|POST /{media-id}/comments`, `GET|POST /{comment-id}/replies`), plus the
//! comments and mentions the admin API injects from fake users (which fire webhooks).

use serde_json::{Map, Value, json};

use super::call::Call;
use super::errors::{self, GraphError, GraphResult};
use super::fields::{self, FieldSpec, paginate};
use super::publishing::Media;
use super::state::{Login, Meta, Store, Token, require_scope};
use super::time::iso;
use super::webhooks;

#[derive(Debug, Clone)]
pub struct Comment {
    pub id: String,
    pub media_id: String,
    /// The top-level comment a reply belongs to.
    pub parent_id: Option<String>,
    pub text: String,
    pub username: String,
    pub from_id: String,
    pub created_ms: i64,
}

// ---- insights ----

const FEED_METRICS: &[&str] = &[
    "reach",
    "likes",
    "comments",
    "saved",
    "shares",
    "total_interactions",
    "views",
    "profile_visits",
    "follows",
    "profile_activity",
];
const REELS_METRICS: &[&str] = &[
    "reach",
    "likes",
    "comments",
    "saved",
    "shares",
    "total_interactions",
    "views",
    "ig_reels_avg_watch_time",
    "ig_reels_video_view_total_time",
];
const STORY_METRICS: &[&str] = &[
    "reach",
    "replies",
    "navigation",
    "shares",
    "total_interactions",
    "views",
    "follows",
    "profile_visits",
    "profile_activity",
];

/// 0 at publication, ~0.63 after a day, approaching 1: how far engagement has grown.
fn growth(media: &Media, now_ms: i64) -> f64 {
    let hours = (now_ms - media.published_ms).max(0) as f64 / 3_600_000.0;
    1.0 - (-hours / 24.0).exp()
}

fn seed(media: &Media) -> u64 {
    media.id.bytes().fold(7u64, |acc, b| {
        acc.wrapping_mul(31).wrapping_add(u64::from(b))
    }) % 700
}

fn reach(media: &Media, now_ms: i64) -> u64 {
    ((300 + seed(media)) as f64 * growth(media, now_ms)).round() as u64
}

/// `like_count` (also the `likes` metric).
pub fn likes(media: &Media, now_ms: i64) -> u64 {
    reach(media, now_ms) / 8
}

fn metric_value(media: &Media, metric: &str, now_ms: i64, comments: u64) -> u64 {
    let reach = reach(media, now_ms);
    let views = reach * 3 / 2;
    let likes = likes(media, now_ms);
    let (saved, shares) = (reach / 40, reach / 50);
    let avg_watch_ms = 4_000 + seed(media) * 3;
    match metric {
        "reach" => reach,
        "views" => views,
        "likes" => likes,
        "comments" => comments,
        "saved" => saved,
        "shares" => shares,
        "total_interactions" => likes + comments + saved + shares,
        "profile_visits" => reach / 30,
        "profile_activity" => reach / 25,
        "follows" => reach / 200,
        "replies" => reach / 60,
        "navigation" => reach * 2,
        "ig_reels_avg_watch_time" => avg_watch_ms,
        "ig_reels_video_view_total_time" => views * avg_watch_ms,
        _ => 0,
    }
}

fn title(metric: &str) -> String {
    let mut title = metric.replace('_', " ");
    if let Some(first) = title.get_mut(0..1) {
        first.make_ascii_uppercase();
    }
    title
}

/// `GET /{ig-media-id}/insights?metric=…`.
pub fn insights(call: &Call, token: &Token, media_id: &str) -> GraphResult {
    require_scope(
        token,
        "instagram_manage_insights",
        "instagram_business_manage_insights",
    )?;
    let metrics: Vec<&str> = call
        .params
        .require("metric")?
        .split(',')
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .collect();
    let now = call.meta.now_ms();
    let (media, comments) = call.meta.store(|s| {
        let media = s.media.get(media_id).cloned();
        let comments = s
            .comments
            .values()
            .filter(|c| c.media_id == media_id)
            .count() as u64;
        (media, comments)
    });
    let media = media.ok_or_else(|| errors::unknown_object(media_id, "get"))?;
    if media.is_child {
        return Err(errors::invalid_param(
            "Insights are not available for carousel album children",
        ));
    }
    let allowed = match media.product {
        "REELS" => REELS_METRICS,
        "STORY" => STORY_METRICS,
        _ => FEED_METRICS,
    };
    let mut data = Vec::new();
    for (index, metric) in metrics.iter().enumerate() {
        if !allowed.contains(metric) {
            return Err(errors::invalid_param(format!(
                "metric[{index}] must be one of the following values: {}",
                allowed.join(", ")
            )));
        }
        data.push(json!({
            "name": metric,
            "period": "lifetime",
            "values": [{ "value": metric_value(&media, metric, now, comments) }],
            "title": title(metric),
            "description": format!("The {} of this media.", metric.replace('_', " ")),
            "id": format!("{media_id}/insights/{metric}/lifetime"),
        }));
    }
    Ok(json!({ "data": data }))
}

const ACCOUNT_METRICS: &[&str] = &[
    "reach",
    "follower_count",
    "views",
    "likes",
    "comments",
    "shares",
    "saves",
    "replies",
    "profile_views",
    "accounts_engaged",
    "total_interactions",
    "website_clicks",
];

/// A deterministic daily figure for an account metric.
fn daily(account: &str, metric: &str, day: i64) -> u64 {
    let seed = format!("{account}{metric}").bytes().fold(17u64, |acc, b| {
        acc.wrapping_mul(31).wrapping_add(u64::from(b))
    });
    let scale = match metric {
        "reach" | "views" => 400,
        "follower_count" | "website_clicks" | "replies" => 12,
        _ => 60,
    };
    (seed % scale) + (day.rem_euclid(7) as u64) * scale / 10
}

/// `GET /{ig-user-id}/insights?metric=…&period=day[&metric_type=total_value][&since&until]`.
pub fn account_insights(call: &Call, token: &Token, ig: &str) -> GraphResult {
    require_scope(
        token,
        "instagram_manage_insights",
        "instagram_business_manage_insights",
    )?;
    let metrics: Vec<&str> = call
        .params
        .require("metric")?
        .split(',')
        .map(str::trim)
        .collect();
    let period = call.params.get("period").unwrap_or("day");
    if !["day", "week", "days_28", "lifetime"].contains(&period) {
        return Err(errors::invalid_param(
            "period must be one of the following values: day, week, days_28, lifetime",
        ));
    }
    let seconds = |name: &str| -> GraphResult<Option<i64>> {
        call.params
            .get(name)
            .map(|v| {
                v.parse::<i64>().map_err(|_| {
                    errors::invalid_param(format!("Param {name} must be a unix timestamp"))
                })
            })
            .transpose()
    };
    let until = seconds("until")?.unwrap_or_else(|| call.meta.ctx.clock.now_secs());
    let since = seconds("since")?.unwrap_or(until - 2 * 86_400);
    if until.saturating_sub(since) > 30 * 86_400 || since > until {
        return Err(errors::invalid_param(
            "There cannot be more than 30 days (2592000 s) between since and until",
        ));
    }
    let total = call.params.get("metric_type") == Some("total_value");
    let days: Vec<i64> = (since.div_euclid(86_400)..until.div_euclid(86_400)).collect();
    let mut data = Vec::new();
    for (index, metric) in metrics.iter().enumerate() {
        if !ACCOUNT_METRICS.contains(metric) {
            return Err(errors::invalid_param(format!(
                "metric[{index}] must be one of the following values: {}",
                ACCOUNT_METRICS.join(", ")
            )));
        }
        let mut entry = json!({
            "name": metric,
            "period": period,
            "title": title(metric),
            "description": format!("The {} of this account.", metric.replace('_', " ")),
            "id": format!("{ig}/insights/{metric}/{period}"),
        });
        if total {
            let sum: u64 = days.iter().map(|d| daily(ig, metric, *d)).sum();
            entry["total_value"] = json!({ "value": sum });
        } else {
            let values: Vec<Value> = days
                .iter()
                .map(|d| json!({"value": daily(ig, metric, *d), "end_time": iso((d + 1) * 86_400 + 7 * 3600)}))
                .collect();
            entry["values"] = json!(values);
        }
        data.push(entry);
    }
    Ok(json!({ "data": data }))
}

// ---- comments ----

const COMMENT_FIELDS: &[&str] = &[
    "id",
    "text",
    "username",
    "timestamp",
    "like_count",
    "hidden",
    "from",
    "media",
    "parent_id",
    "replies",
    "user",
];
const COMMENT_DEFAULTS: &[&str] = &["timestamp", "text", "id"];

fn comment_json(s: &Store, comment: &Comment, specs: &[FieldSpec]) -> GraphResult {
    let mut full = Map::new();
    full.insert("id".into(), json!(comment.id));
    full.insert("text".into(), json!(comment.text));
    full.insert("username".into(), json!(comment.username));
    full.insert("timestamp".into(), json!(iso(comment.created_ms / 1000)));
    full.insert("like_count".into(), json!(0));
    full.insert("hidden".into(), json!(false));
    full.insert(
        "from".into(),
        json!({"id": comment.from_id, "username": comment.username}),
    );
    full.insert("media".into(), json!({"id": comment.media_id}));
    if let Some(parent) = &comment.parent_id {
        full.insert("parent_id".into(), json!(parent));
    }
    if comment.parent_id.is_none() && specs.iter().any(|f| f.name == "replies") {
        let sub = fields::sub_fields(specs, "replies", COMMENT_DEFAULTS);
        let replies = replies_of(s, &comment.id)
            .iter()
            .map(|r| comment_json(s, r, &sub))
            .collect::<GraphResult<Vec<Value>>>()?;
        full.insert("replies".into(), json!({ "data": replies }));
    }
    fields::select(&full, specs, COMMENT_FIELDS, "IGComment")
}

fn replies_of<'a>(s: &'a Store, comment_id: &str) -> Vec<&'a Comment> {
    s.comments
        .values()
        .filter(|c| c.parent_id.as_deref() == Some(comment_id))
        .collect()
}

fn require_comments(token: &Token) -> GraphResult<()> {
    require_scope(
        token,
        "instagram_manage_comments",
        "instagram_business_manage_comments",
    )
}

/// `GET /{ig-media-id}/comments`: top-level comments, oldest first, paged by cursors.
pub fn list_comments(call: &Call, token: &Token, media_id: &str) -> GraphResult {
    require_comments(token)?;
    let specs = call.fields(COMMENT_DEFAULTS);
    let items = call.meta.store(|s| {
        s.comments
            .values()
            .filter(|c| c.media_id == media_id && c.parent_id.is_none())
            .map(|c| comment_json(s, c, &specs).map(|v| (c.id.clone(), v)))
            .collect::<GraphResult<Vec<_>>>()
    })?;
    paginate(call, items)
}

/// `GET /{ig-comment-id}/replies`.
pub fn list_replies(call: &Call, token: &Token, comment_id: &str) -> GraphResult {
    require_comments(token)?;
    let specs = call.fields(COMMENT_DEFAULTS);
    let items = call.meta.store(|s| {
        replies_of(s, comment_id)
            .into_iter()
            .map(|c| comment_json(s, c, &specs).map(|v| (c.id.clone(), v)))
            .collect::<GraphResult<Vec<_>>>()
    })?;
    paginate(call, items)
}

/// `GET /{ig-comment-id}`.
pub fn comment(call: &Call, comment_id: &str) -> GraphResult {
    let specs = call.fields(COMMENT_DEFAULTS);
    call.meta.store(|s| {
        let comment = s
            .comments
            .get(comment_id)
            .ok_or_else(|| errors::unknown_object(comment_id, "get"))?;
        comment_json(s, comment, &specs)
    })
}

/// `POST /{ig-media-id}/comments?message=` (`reply_to` = None) or
/// `POST /{ig-comment-id}/replies?message=` (a reply to a reply joins the top-level comment).
pub fn add_comment(
    call: &Call,
    token: &Token,
    target: &str,
    reply_to: Option<&str>,
) -> GraphResult {
    require_comments(token)?;
    let message = call.params.require("message")?;
    if message.chars().count() > 2200 {
        return Err(errors::invalid_param("The comment is too long"));
    }
    let now = call.meta.now_ms();
    // The comment knobs (`refuse_comments`, `fail_comments`, `lose_comment_answers`), each
    // spent once per call.
    let (fail, lose) = if reply_to.is_none() {
        let mut knobs = (false, false);
        let mut refuse = false;
        call.meta.update_settings(|s| {
            if s.refuse_comments > 0 {
                s.refuse_comments -= 1;
                refuse = true;
            } else if s.fail_comments > 0 {
                s.fail_comments -= 1;
                knobs.0 = true;
            } else if s.lose_comment_answers > 0 {
                s.lose_comment_answers -= 1;
                knobs.1 = true;
            }
        });
        if refuse {
            return Err(errors::invalid_param(
                "Comments are turned off for this media",
            ));
        }
        knobs
    } else {
        (false, false)
    };
    if fail {
        return Err(GraphError::new(
            2,
            "An unexpected error has occurred. Please retry your request later.",
        )
        .transient(true));
    }
    let id = call.meta.store(|s| {
        let (media_id, parent) = match reply_to {
            None => (target.to_string(), None),
            Some(comment_id) => {
                let comment = s
                    .comments
                    .get(comment_id)
                    .ok_or_else(|| errors::unknown_object(comment_id, "post"))?;
                (
                    comment.media_id.clone(),
                    Some(
                        comment
                            .parent_id
                            .clone()
                            .unwrap_or_else(|| comment.id.clone()),
                    ),
                )
            }
        };
        let owner = s
            .media
            .get(&media_id)
            .map(|m| m.owner.clone())
            .ok_or_else(|| errors::unknown_object(target, "post"))?;
        let username = s
            .ig_account(&owner)
            .map(|a| a.username.clone())
            .unwrap_or_default();
        Ok::<_, GraphError>(insert_comment(
            s, &media_id, parent, message, &username, &owner, now,
        ))
    })?;
    if lose {
        return Err(GraphError::new(1, "An unknown error occurred")
            .status(axum::http::StatusCode::INTERNAL_SERVER_ERROR)
            .transient(true));
    }
    Ok(json!({ "id": id }))
}

fn insert_comment(
    s: &mut Store,
    media_id: &str,
    parent_id: Option<String>,
    text: &str,
    username: &str,
    from_id: &str,
    now_ms: i64,
) -> String {
    let id = s.next_id();
    let comment = Comment {
        id: id.clone(),
        media_id: media_id.to_string(),
        parent_id,
        text: text.to_string(),
        username: username.to_string(),
        from_id: from_id.to_string(),
        created_ms: now_ms,
    };
    s.comments.insert(id.clone(), comment);
    id
}

/// What the admin API injects.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Injection {
    /// The account's media to comment on (a `comments` webhook goes to its owner).
    pub media_id: Option<String>,
    /// Instead of `media_id`: the account mentioned in a comment on someone else's media
    /// (a `mentions` webhook goes to it).
    pub mention_of: Option<String>,
    pub text: String,
    #[serde(default = "default_username")]
    pub username: String,
    /// Makes the comment a reply to this comment.
    pub parent_id: Option<String>,
}

fn default_username() -> String {
    "emulated.fan".into()
}

/// Adds a comment from a fake user and fires the matching webhook; returns what happened.
pub fn inject(meta: &Meta, injection: Injection) -> Result<Value, String> {
    let now = meta.now_ms();
    let from_id = format!(
        "{}",
        6_000_000_000_000_000u64 + u64::from(rand::random::<u32>())
    );
    let username = injection.username.clone();
    let planned = meta.store(|s| -> Result<_, String> {
        if let Some(mentioned) = &injection.mention_of {
            if s.ig_account(mentioned).is_none() {
                return Err(format!("unknown Instagram account {mentioned}"));
            }
            let media_id = s.next_id();
            let comment_id = insert_comment(
                s,
                &media_id,
                None,
                &injection.text,
                &username,
                &from_id,
                now,
            );
            let value = json!({"comment_id": comment_id, "media_id": media_id});
            return Ok((
                mentioned.clone(),
                Login::Facebook,
                "mentions",
                comment_id,
                media_id,
                value,
            ));
        }
        let media_id = injection
            .media_id
            .clone()
            .ok_or("media_id or mention_of is required")?;
        let media = s
            .media
            .get(&media_id)
            .cloned()
            .ok_or_else(|| format!("unknown media {media_id}"))?;
        let parent = match &injection.parent_id {
            None => None,
            Some(p) => {
                let parent = s
                    .comments
                    .get(p)
                    .filter(|c| c.media_id == media_id)
                    .ok_or_else(|| format!("unknown comment {p}"))?;
                Some(
                    parent
                        .parent_id
                        .clone()
                        .unwrap_or_else(|| parent.id.clone()),
                )
            }
        };
        let comment_id = insert_comment(
            s,
            &media_id,
            parent.clone(),
            &injection.text,
            &username,
            &from_id,
            now,
        );
        let mut value = json!({
            "id": comment_id,
            "from": {"id": from_id, "username": username},
            "text": injection.text,
            "media": {"id": media_id, "media_product_type": media.product},
        });
        if let Some(parent) = parent {
            value["parent_id"] = json!(parent);
        }
        Ok((
            media.owner.clone(),
            media.login,
            "comments",
            comment_id,
            media_id,
            value,
        ))
    })?;
    let (account, login, field, comment_id, media_id, value) = planned;
    let sent = webhooks::deliver(meta, login, &account, field, value);
    Ok(
        json!({"comment_id": comment_id, "media_id": media_id, "field": field, "webhook_sent": sent}),
    )
}
