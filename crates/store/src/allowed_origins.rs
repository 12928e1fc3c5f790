//! The origins (scheme, host and port) a workspace's host application runs on: where a connect
//! link may send a creator back to, and who may frame tidepost's embeddable pages. The app
//! layer validates and normalizes them; this keeps the list in the order given.

use crate::{Db, Result};

pub async fn list(db: &Db, workspace_id: &str) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar(
        "SELECT origin FROM allowed_origins WHERE workspace_id = $1 ORDER BY position, origin",
    )
    .bind(workspace_id)
    .fetch_all(db.pool())
    .await?)
}

/// Replaces the workspace's list with `origins` (already normalized, without duplicates).
pub async fn replace(db: &Db, workspace_id: &str, origins: &[String]) -> Result<()> {
    let mut tx = db.begin_write().await?;
    sqlx::query("DELETE FROM allowed_origins WHERE workspace_id = $1")
        .bind(workspace_id)
        .execute(&mut *tx)
        .await?;
    for (position, origin) in origins.iter().enumerate() {
        sqlx::query(
            "INSERT INTO allowed_origins (workspace_id, origin, position) VALUES ($1, $2, $3)",
        )
        .bind(workspace_id)
        .bind(origin)
        .bind(position as i64)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}
