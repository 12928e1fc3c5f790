//! A post's history: who changed what and when. Each change is recorded in the transaction
//! that makes it (creation in `store`, edits and moves in `update`); cancellations right after
//! the targets are cancelled (`pipeline::cancel`). What changed is structured ([`Change`]:
//! the field, the target's account when it concerns one target, before, after).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tidepost_store::StoreError;
use tidepost_store::post_history::{self as repo};

use crate::App;

/// The most entries one page lists.
pub const MAX_PAGE: i64 = 200;

/// What a change is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Created,
    Edited,
    /// Only the time changed.
    Moved,
    Cancelled,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Created => "created",
            Action::Edited => "edited",
            Action::Moved => "moved",
            Action::Cancelled => "cancelled",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        [
            Action::Created,
            Action::Edited,
            Action::Moved,
            Action::Cancelled,
        ]
        .into_iter()
        .find(|a| a.as_str() == text)
    }
}

/// One field that changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = PostHistoryChange)]
pub struct Change {
    /// `caption`, `media`, `scheduled_at`, `target` (added or removed), `options` (a
    /// target's caption and platform options), `state` (a cancellation), `post` (creation).
    pub field: String,
    /// The account of the target the change concerns; none for the post as a whole.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    #[schema(value_type = Object)]
    pub before: Value,
    #[schema(value_type = Object)]
    pub after: Value,
}

impl Change {
    pub fn post(field: &str, before: Value, after: Value) -> Self {
        Change {
            field: field.into(),
            account_id: None,
            before,
            after,
        }
    }

    pub fn target(field: &str, account_id: &str, before: Value, after: Value) -> Self {
        Change {
            field: field.into(),
            account_id: Some(account_id.to_string()),
            before,
            after,
        }
    }
}

/// Who made a change, as recorded: `user:<id>` or `api_key:<id>`. `by` is how posts record
/// their author (`created_by`: a user's id, or `api_key:<id>`).
pub fn actor(by: Option<&str>) -> Option<String> {
    by.map(|by| {
        if by.starts_with("api_key:") || by.starts_with("user:") {
            by.to_string()
        } else {
            format!("user:{by}")
        }
    })
}

/// An entry of a post's history.
#[derive(Debug, Clone)]
pub struct Entry {
    pub id: String,
    pub post_id: String,
    pub at: i64,
    pub actor: Option<String>,
    pub action: Action,
    pub changes: Vec<Change>,
}

pub(crate) fn row(
    workspace_id: &str,
    post_id: &str,
    by: Option<&str>,
    action: Action,
    changes: &[Change],
    now: i64,
) -> repo::Entry {
    repo::Entry {
        id: tidepost_domain::new_id(),
        workspace_id: workspace_id.to_string(),
        post_id: post_id.to_string(),
        at: now,
        actor: actor(by),
        action: action.as_str().into(),
        changes: serde_json::to_string(changes).unwrap_or_else(|_| "[]".into()),
    }
}

/// Records a change in the transaction `conn` that makes it.
pub(crate) async fn record_in(
    conn: &mut sqlx::AnyConnection,
    workspace_id: &str,
    post_id: &str,
    by: Option<&str>,
    action: Action,
    changes: &[Change],
    now: i64,
) -> Result<(), StoreError> {
    repo::insert_in(conn, &row(workspace_id, post_id, by, action, changes, now)).await
}

/// A page of the post's history, newest first (`after`: the last id of the previous page).
/// The caller checks the post is the workspace's.
pub async fn list(
    app: &App,
    workspace_id: &str,
    post_id: &str,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<Entry>, StoreError> {
    Ok(repo::list(
        &app.db,
        workspace_id,
        post_id,
        after,
        limit.clamp(1, MAX_PAGE + 1),
    )
    .await?
    .into_iter()
    .map(|row| Entry {
        // Rows this version cannot read (written by a newer one) read as edits with no detail
        // rather than hiding the row.
        action: Action::parse(&row.action).unwrap_or(Action::Edited),
        changes: serde_json::from_str(&row.changes).unwrap_or_default(),
        id: row.id,
        post_id: row.post_id,
        at: row.at,
        actor: row.actor,
    })
    .collect())
}
