//! Comments on a post between members: rows only; the app checks the text and who wrote it.

use crate::{Db, Result};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Comment {
    pub id: String,
    pub workspace_id: String,
    pub post_id: String,
    /// Who wrote it, as posts record their author: a user id, or `api_key:<id>`.
    pub author: String,
    pub body: String,
    pub created_at: i64,
}

const COLUMNS: &str = "id, workspace_id, post_id, author, body, created_at";

/// Adds `comment` to its post, only when the post is in the comment's workspace: `false` when
/// it is not (another workspace's post, or none).
pub async fn insert(db: &Db, comment: &Comment) -> Result<bool> {
    let done = sqlx::query(
        "INSERT INTO post_comments (id, workspace_id, post_id, author, body, created_at) \
         SELECT $1, $2, $3, $4, $5, $6 WHERE EXISTS \
         (SELECT 1 FROM posts WHERE workspace_id = $2 AND id = $3)",
    )
    .bind(&comment.id)
    .bind(&comment.workspace_id)
    .bind(&comment.post_id)
    .bind(&comment.author)
    .bind(&comment.body)
    .bind(comment.created_at)
    .execute(db.pool())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// A post's comments, newest first; `after`: the last id of the previous page (ids are
/// UUIDv7, so they sort by creation).
pub async fn list(
    db: &Db,
    workspace_id: &str,
    post_id: &str,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<Comment>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM post_comments WHERE workspace_id = $1 AND post_id = $2 \
         AND ($3 = '' OR id < $3) ORDER BY id DESC LIMIT $4"
    ))
    .bind(workspace_id)
    .bind(post_id)
    .bind(after.unwrap_or(""))
    .bind(limit)
    .fetch_all(db.pool())
    .await?)
}
