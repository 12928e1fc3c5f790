//! Workspaces: the tenants. Everything a customer owns hangs off one.

use serde::Serialize;
use tidepost_domain::{new_id, now_ms};

use crate::error::conflict_as;
use crate::{Db, Result};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Workspace {
    pub id: String,
    pub slug: String,
    pub name: String,
    pub created_at: i64,
}

pub async fn create(db: &Db, slug: &str, name: &str) -> Result<Workspace> {
    let ws = Workspace {
        id: new_id(),
        slug: slug.to_string(),
        name: name.to_string(),
        created_at: now_ms(),
    };
    sqlx::query("INSERT INTO workspaces (id, slug, name, created_at) VALUES ($1, $2, $3, $4)")
        .bind(&ws.id)
        .bind(&ws.slug)
        .bind(&ws.name)
        .bind(ws.created_at)
        .execute(db.pool())
        .await
        .map_err(conflict_as("a workspace with this slug"))?;
    Ok(ws)
}

pub async fn by_slug(db: &Db, slug: &str) -> Result<Option<Workspace>> {
    Ok(
        sqlx::query_as("SELECT id, slug, name, created_at FROM workspaces WHERE slug = $1")
            .bind(slug)
            .fetch_optional(db.pool())
            .await?,
    )
}

pub async fn by_id(db: &Db, id: &str) -> Result<Option<Workspace>> {
    Ok(
        sqlx::query_as("SELECT id, slug, name, created_at FROM workspaces WHERE id = $1")
            .bind(id)
            .fetch_optional(db.pool())
            .await?,
    )
}

/// The workspace with this slug, created if it does not exist yet.
pub async fn get_or_create(db: &Db, slug: &str, name: &str) -> Result<Workspace> {
    if let Some(ws) = by_slug(db, slug).await? {
        return Ok(ws);
    }
    match create(db, slug, name).await {
        Ok(ws) => Ok(ws),
        // Another process created it between our read and our insert.
        Err(e) if e.is_unique_violation() => by_slug(db, slug).await?.ok_or(e),
        Err(e) => Err(e),
    }
}

pub async fn list_all(db: &Db) -> Result<Vec<Workspace>> {
    Ok(
        sqlx::query_as("SELECT id, slug, name, created_at FROM workspaces ORDER BY slug")
            .fetch_all(db.pool())
            .await?,
    )
}
