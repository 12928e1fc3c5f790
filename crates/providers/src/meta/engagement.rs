//! Engagement: media insights, comments (one page at a time, by cursor) and replies.

use reqwest::Method;
use secrecy::SecretString;
use serde::Deserialize;

use super::account::Listing;
use super::{GraphHost, MetaClient};
use crate::error::{Call, ProviderError};
use crate::ids;

/// One metric of `GET /{ig-media-id}/insights` (lifetime value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Insight {
    pub name: String,
    pub period: Option<String>,
    /// The metric's value; `None` when Meta has no data (it sends an empty set, not 0).
    pub value: Option<i64>,
    pub title: Option<String>,
}

#[derive(Deserialize)]
struct RawInsight {
    name: String,
    #[serde(default)]
    period: Option<String>,
    #[serde(default)]
    values: Vec<RawValue>,
    #[serde(default)]
    total_value: Option<RawValue>,
    #[serde(default)]
    title: Option<String>,
}

#[derive(Deserialize)]
struct RawValue {
    #[serde(default)]
    value: serde_json::Value,
}

/// A comment or reply.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Comment {
    #[serde(deserialize_with = "ids::id")]
    pub id: String,
    pub text: String,
    pub username: Option<String>,
    /// ISO 8601, e.g. `2024-05-01T12:00:00+0000`.
    pub timestamp: Option<String>,
    pub like_count: Option<u64>,
    /// Set on replies: the top-level comment.
    #[serde(deserialize_with = "ids::opt_id")]
    pub parent_id: Option<String>,
    /// The author: their Instagram-scoped id (the same id comment webhooks carry) and handle.
    pub from: Option<CommentAuthor>,
}

/// `from` of a comment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct CommentAuthor {
    #[serde(deserialize_with = "ids::id")]
    pub id: String,
    pub username: Option<String>,
}

/// One page of comments; pass `next_cursor` to get the next one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommentPage {
    pub comments: Vec<Comment>,
    /// `None` on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Deserialize)]
struct Created {
    #[serde(deserialize_with = "ids::id")]
    id: String,
}

impl MetaClient {
    /// `GET /{ig-media-id}/insights?metric=…`. Unsupported metrics for the media's kind are a
    /// Permanent error (code 100).
    pub async fn insights(
        &self,
        host: GraphHost,
        token: &SecretString,
        media_id: &str,
        metrics: &[&str],
    ) -> Result<Vec<Insight>, ProviderError> {
        let request = self
            .graph_request(Method::GET, host, &format!("{media_id}/insights"), token)
            .query(&[("metric", metrics.join(","))]);
        let listing: Listing<RawInsight> = self
            .graph(Call::idempotent("meta.insights"), request)
            .await?;
        Ok(listing
            .data
            .into_iter()
            .map(|raw| Insight {
                value: raw
                    .values
                    .first()
                    .or(raw.total_value.as_ref())
                    .and_then(|v| v.value.as_i64()),
                name: raw.name,
                period: raw.period,
                title: raw.title,
            })
            .collect())
    }

    /// `GET /{ig-media-id}/comments`: top-level comments, one page (`after` = the previous
    /// page's `next_cursor`).
    pub async fn comments(
        &self,
        host: GraphHost,
        token: &SecretString,
        media_id: &str,
        after: Option<&str>,
    ) -> Result<CommentPage, ProviderError> {
        let mut query = vec![(
            "fields",
            "id,text,username,timestamp,like_count,parent_id,from",
        )];
        if let Some(after) = after {
            query.push(("after", after));
        }
        let request = self
            .graph_request(Method::GET, host, &format!("{media_id}/comments"), token)
            .query(&query);
        let listing: Listing<Comment> = self
            .graph(Call::idempotent("meta.comments"), request)
            .await?;
        let next_cursor = listing
            .paging
            .filter(|p| p.next.is_some())
            .and_then(|p| p.cursors)
            .and_then(|c| c.after);
        Ok(CommentPage {
            comments: listing.data,
            next_cursor,
        })
    }

    /// `POST /{ig-media-id}/comments?message=…`: comments on a media as the account; returns
    /// the comment's id. Not idempotent (a lost answer may have posted the comment: look for it
    /// with [`comments`](Self::comments) before sending again).
    pub async fn comment(
        &self,
        host: GraphHost,
        token: &SecretString,
        media_id: &str,
        message: &str,
    ) -> Result<String, ProviderError> {
        let request = self
            .graph_request(Method::POST, host, &format!("{media_id}/comments"), token)
            .form(&[("message", message)]);
        let created: Created = self
            .graph(Call::non_idempotent("meta.comment"), request)
            .await?;
        Ok(created.id)
    }

    /// `POST /{ig-comment-id}/replies?message=…`: replies to a top-level comment; returns the
    /// reply's id. Not idempotent (a lost answer may have posted the reply).
    pub async fn reply(
        &self,
        host: GraphHost,
        token: &SecretString,
        comment_id: &str,
        message: &str,
    ) -> Result<String, ProviderError> {
        let request = self
            .graph_request(Method::POST, host, &format!("{comment_id}/replies"), token)
            .form(&[("message", message)]);
        let created: Created = self
            .graph(Call::non_idempotent("meta.reply"), request)
            .await?;
        Ok(created.id)
    }
}
