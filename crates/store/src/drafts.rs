//! Drafts: posts saved without being sent or scheduled. The body is the app's (JSON text here);
//! this module keeps the rows, their versions and the one-way step to a post: a draft is
//! published by [`mark_published_in`] in the transaction that stores its post, only at the
//! version that was checked, so an edit and a publish racing on one draft cannot both win.

use crate::{Db, Result};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Draft {
    pub id: String,
    pub workspace_id: String,
    /// The post as saved, as the app wrote it.
    pub body: String,
    pub created_by: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    /// 1 when saved, one more with every change.
    pub version: i64,
    /// The post it became, once published.
    pub post_id: Option<String>,
    pub published_at: Option<i64>,
}

const COLUMNS: &str =
    "id, workspace_id, body, created_by, created_at, updated_at, version, post_id, published_at";

pub async fn insert(db: &Db, draft: &Draft) -> Result<()> {
    sqlx::query(
        "INSERT INTO drafts (id, workspace_id, body, created_by, created_at, updated_at, version) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&draft.id)
    .bind(&draft.workspace_id)
    .bind(&draft.body)
    .bind(&draft.created_by)
    .bind(draft.created_at)
    .bind(draft.updated_at)
    .bind(draft.version)
    .execute(db.pool())
    .await?;
    Ok(())
}

pub async fn get(db: &Db, workspace_id: &str, id: &str) -> Result<Option<Draft>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM drafts WHERE workspace_id = $1 AND id = $2"
    ))
    .bind(workspace_id)
    .bind(id)
    .fetch_optional(db.pool())
    .await?)
}

/// The workspace's drafts not yet published, newest first; `after`: the last id of the
/// previous page (ids are UUIDv7, so they sort by creation).
pub async fn list_open(
    db: &Db,
    workspace_id: &str,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<Draft>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM drafts WHERE workspace_id = $1 AND post_id IS NULL \
         AND ($2 = '' OR id < $2) ORDER BY id DESC LIMIT $3"
    ))
    .bind(workspace_id)
    .bind(after.unwrap_or(""))
    .bind(limit)
    .fetch_all(db.pool())
    .await?)
}

/// Replaces the body of an unpublished draft and moves it to the next version; with
/// `version`, only when the draft is still at it (the one the change was made from). `None`
/// when the draft changed meanwhile, was published or is gone (read it again to say which).
pub async fn replace(
    db: &Db,
    workspace_id: &str,
    id: &str,
    version: Option<i64>,
    body: &str,
    now: i64,
) -> Result<Option<Draft>> {
    let at_version = if version.is_some() {
        "AND version = $5"
    } else {
        ""
    };
    let query = format!(
        "UPDATE drafts SET body = $1, updated_at = $2, version = version + 1 \
         WHERE workspace_id = $3 AND id = $4 AND post_id IS NULL {at_version} \
         RETURNING {COLUMNS}"
    );
    let mut update = sqlx::query_as(&query)
        .bind(body)
        .bind(now)
        .bind(workspace_id)
        .bind(id);
    if let Some(version) = version {
        update = update.bind(version);
    }
    Ok(update.fetch_optional(db.pool()).await?)
}

/// Deletes a draft; whether there was one.
pub async fn delete(db: &Db, workspace_id: &str, id: &str) -> Result<bool> {
    let done = sqlx::query("DELETE FROM drafts WHERE workspace_id = $1 AND id = $2")
        .bind(workspace_id)
        .bind(id)
        .execute(db.pool())
        .await?;
    Ok(done.rows_affected() > 0)
}

/// Records, inside the transaction that stores the post, that the draft at `version` became
/// `post_id`; false when it changed or was published meanwhile (the caller rolls back).
pub async fn mark_published_in(
    conn: &mut sqlx::AnyConnection,
    workspace_id: &str,
    id: &str,
    version: i64,
    post_id: &str,
    now: i64,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE drafts SET post_id = $1, published_at = $2 \
         WHERE workspace_id = $3 AND id = $4 AND version = $5 AND post_id IS NULL",
    )
    .bind(post_id)
    .bind(now)
    .bind(workspace_id)
    .bind(id)
    .bind(version)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}
