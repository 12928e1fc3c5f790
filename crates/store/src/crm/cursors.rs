//! Where an incremental pull stopped, per account and stream (`scope`, e.g.
//! `comments:{media id}`), so the next pull asks only for what is new.

use crate::{Db, Result};

pub async fn get(
    db: &Db,
    workspace_id: &str,
    account_id: &str,
    scope: &str,
) -> Result<Option<String>> {
    Ok(sqlx::query_scalar(
        "SELECT cursor FROM crm_cursors WHERE workspace_id = $1 AND account_id = $2 AND scope = $3",
    )
    .bind(workspace_id)
    .bind(account_id)
    .bind(scope)
    .fetch_optional(db.pool())
    .await?)
}

pub async fn set(
    db: &Db,
    workspace_id: &str,
    account_id: &str,
    scope: &str,
    cursor: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO crm_cursors (account_id, scope, workspace_id, cursor, updated_at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (account_id, scope) DO UPDATE SET cursor = excluded.cursor, updated_at = excluded.updated_at",
    )
    .bind(account_id)
    .bind(scope)
    .bind(workspace_id)
    .bind(cursor)
    .bind(tidepost_domain::now_ms())
    .execute(db.pool())
    .await?;
    Ok(())
}
