//! Stored media files: content-addressed by SHA-256, one row per workspace and content, with
//! what probing found (`info`, JSON) and when a post last took the file (`last_used_at`, for
//! the clean-up sweep).
//!
//! A post refers to media by `posts.media_id` or by id inside its options JSON (carousel items,
//! several files); [`usage`] finds both. Media ids are UUIDv7 strings, so a substring match on
//! the JSON is exact: an id cannot appear inside another value by accident.

use serde::Serialize;

use crate::{Db, Result};

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Media {
    pub id: String,
    pub workspace_id: String,
    pub sha256: String,
    pub size_bytes: i64,
    pub content_type: String,
    /// `video` or `image`.
    pub kind: String,
    /// Where the storage keeps the bytes (`media/<sha256>` for the local disk).
    pub storage_path: String,
    pub original_name: Option<String>,
    pub created_at: i64,
    /// The probed metadata as JSON (`tidepost_app::media::MediaInfo`); `None` when the file
    /// could not be probed (see `probe_error`).
    pub info: Option<String>,
    pub probe_error: Option<String>,
    pub container: Option<String>,
    pub width: Option<i64>,
    pub height: Option<i64>,
    pub duration_ms: Option<i64>,
    /// When the media was last stored again or taken by a post (ms); `created_at` before.
    pub last_used_at: Option<i64>,
}

const SELECT: &str = "SELECT id, workspace_id, sha256, size_bytes, content_type, kind, storage_path, \
     original_name, created_at, info, probe_error, container, width, height, duration_ms, last_used_at FROM media ";

/// Inserts `m`, or returns the workspace's existing row for the same content. Storing the same
/// content again counts as a use (the sweep keeps it) and fills in probed metadata the first
/// row lacked.
pub async fn insert_or_get(db: &Db, m: &Media) -> Result<Media> {
    let inserted = sqlx::query(
        "INSERT INTO media (id, workspace_id, sha256, size_bytes, content_type, kind, storage_path, original_name, \
         created_at, info, probe_error, container, width, height, duration_ms, last_used_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) \
         ON CONFLICT (workspace_id, sha256) DO NOTHING",
    )
    .bind(&m.id)
    .bind(&m.workspace_id)
    .bind(&m.sha256)
    .bind(m.size_bytes)
    .bind(&m.content_type)
    .bind(&m.kind)
    .bind(&m.storage_path)
    .bind(&m.original_name)
    .bind(m.created_at)
    .bind(&m.info)
    .bind(&m.probe_error)
    .bind(&m.container)
    .bind(m.width)
    .bind(m.height)
    .bind(m.duration_ms)
    .bind(m.last_used_at.unwrap_or(m.created_at))
    .execute(db.pool())
    .await?
    .rows_affected();
    if inserted == 0 {
        sqlx::query(
            "UPDATE media SET last_used_at = $3, \
             info = COALESCE(info, $4), probe_error = CASE WHEN info IS NULL THEN $5 ELSE probe_error END, \
             container = COALESCE(container, $6), width = COALESCE(width, $7), height = COALESCE(height, $8), \
             duration_ms = COALESCE(duration_ms, $9), kind = CASE WHEN info IS NULL AND $4 IS NOT NULL THEN $10 ELSE kind END, \
             content_type = CASE WHEN info IS NULL AND $4 IS NOT NULL THEN $11 ELSE content_type END \
             WHERE workspace_id = $1 AND sha256 = $2",
        )
        .bind(&m.workspace_id)
        .bind(&m.sha256)
        .bind(m.created_at)
        .bind(&m.info)
        .bind(&m.probe_error)
        .bind(&m.container)
        .bind(m.width)
        .bind(m.height)
        .bind(m.duration_ms)
        .bind(&m.kind)
        .bind(&m.content_type)
        .execute(db.pool())
        .await?;
    }
    Ok(
        sqlx::query_as(&format!("{SELECT} WHERE workspace_id = $1 AND sha256 = $2"))
            .bind(&m.workspace_id)
            .bind(&m.sha256)
            .fetch_one(db.pool())
            .await?,
    )
}

pub async fn get(db: &Db, workspace_id: &str, id: &str) -> Result<Option<Media>> {
    Ok(
        sqlx::query_as(&format!("{SELECT} WHERE workspace_id = $1 AND id = $2"))
            .bind(workspace_id)
            .bind(id)
            .fetch_optional(db.pool())
            .await?,
    )
}

/// One page of the workspace's media, newest first: those older than `before` (an id from
/// the previous page), of `kind` when given.
pub async fn list(
    db: &Db,
    workspace_id: &str,
    kind: Option<&str>,
    before: Option<&str>,
    limit: i64,
) -> Result<Vec<Media>> {
    Ok(sqlx::query_as(&format!(
        "{SELECT} WHERE workspace_id = $1 AND ($2 IS NULL OR kind = $2) AND ($3 IS NULL OR id < $3) \
         ORDER BY id DESC LIMIT $4"
    ))
    .bind(workspace_id)
    .bind(kind)
    .bind(before)
    .bind(limit)
    .fetch_all(db.pool())
    .await?)
}

/// Which posts of the workspace use a media.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    /// Posts that use it.
    pub posts: i64,
    /// Those with a target still on its way (queued, scheduled, uploading, processing).
    pub pending_post_ids: Vec<String>,
    /// The latest `updated_at` of a post that uses it (ms).
    pub last_post_at: Option<i64>,
}

/// States of a target that has not finished yet (see `tidepost_domain::publish::TargetState`).
const PENDING_STATES: &str = "'queued', 'scheduled', 'uploading', 'processing'";

pub async fn usage(db: &Db, workspace_id: &str, id: &str) -> Result<Usage> {
    let rows: Vec<(String, i64, i64)> = sqlx::query_as(&format!(
        "SELECT p.id, p.updated_at, \
           (SELECT COUNT(*) FROM post_targets t WHERE t.post_id = p.id AND t.state IN ({PENDING_STATES})) \
         FROM posts p WHERE p.workspace_id = $1 AND (p.media_id = $2 OR p.options LIKE $3) ORDER BY p.id"
    ))
    .bind(workspace_id)
    .bind(id)
    .bind(format!("%{id}%"))
    .fetch_all(db.pool())
    .await?;
    Ok(Usage {
        posts: rows.len() as i64,
        pending_post_ids: rows
            .iter()
            .filter(|r| r.2 > 0)
            .map(|r| r.0.clone())
            .collect(),
        last_post_at: rows.iter().map(|r| r.1).max(),
    })
}

/// Records that a post took the media now (keeps it from the sweep).
pub async fn touch(db: &Db, workspace_id: &str, id: &str, now: i64) -> Result<()> {
    sqlx::query("UPDATE media SET last_used_at = $3 WHERE workspace_id = $1 AND id = $2")
        .bind(workspace_id)
        .bind(id)
        .bind(now)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// Deletes the row, first detaching it from the workspace's finished posts that name it as
/// their media (they keep their record; their media shows as deleted). Returns whether a row
/// went. The caller checks [`usage`] for pending posts first, and deletes the file once no row
/// of any workspace holds its content ([`holders`]).
pub async fn delete(db: &Db, workspace_id: &str, id: &str) -> Result<bool> {
    let mut tx = db.begin_write().await?;
    sqlx::query("UPDATE posts SET media_id = NULL WHERE workspace_id = $1 AND media_id = $2")
        .bind(workspace_id)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    let gone = sqlx::query("DELETE FROM media WHERE workspace_id = $1 AND id = $2")
        .bind(workspace_id)
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    tx.commit().await?;
    Ok(gone > 0)
}

/// How many rows, in every workspace, hold this content: the file may go at zero.
pub async fn holders(db: &Db, sha256: &str) -> Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT COUNT(*) FROM media WHERE sha256 = $1")
            .bind(sha256)
            .fetch_one(db.pool())
            .await?,
    )
}

/// Media of every workspace last used before `cutoff` (ms), oldest first: candidates for the
/// clean-up sweep, which checks each one's [`usage`] before deleting it.
pub async fn idle_since(db: &Db, cutoff: i64, limit: i64) -> Result<Vec<Media>> {
    Ok(sqlx::query_as(&format!(
        "{SELECT} WHERE COALESCE(last_used_at, created_at) < $1 ORDER BY COALESCE(last_used_at, created_at), id LIMIT $2"
    ))
    .bind(cutoff)
    .bind(limit)
    .fetch_all(db.pool())
    .await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TestDb;
    use crate::{both_backends, workspaces};

    fn media(ws: &str, sha: &str, kind: &str, at: i64) -> Media {
        Media {
            id: tidepost_domain::new_id(),
            workspace_id: ws.into(),
            sha256: sha.into(),
            size_bytes: 10,
            content_type: "video/mp4".into(),
            kind: kind.into(),
            storage_path: format!("media/{sha}"),
            original_name: Some("a.mp4".into()),
            created_at: at,
            info: None,
            probe_error: Some("not probed".into()),
            container: None,
            width: None,
            height: None,
            duration_ms: None,
            last_used_at: None,
        }
    }

    async fn workspace(db: &Db, slug: &str) -> String {
        workspaces::create(db, slug, slug).await.unwrap().id
    }

    both_backends!(dedupes_lists_and_deletes, |db: Db| async move {
        let a = workspace(&db, "a").await;
        let b = workspace(&db, "b").await;
        let first = insert_or_get(&db, &media(&a, "s1", "video", 1000))
            .await
            .unwrap();
        // Same content again: the same row, now used later, and probed metadata filled in.
        let mut again = media(&a, "s1", "video", 5000);
        again.info = Some("{}".into());
        again.width = Some(1080);
        let second = insert_or_get(&db, &again).await.unwrap();
        assert_eq!(second.id, first.id);
        assert_eq!(second.last_used_at, Some(5000));
        assert_eq!(second.info.as_deref(), Some("{}"));
        assert_eq!(second.width, Some(1080));
        // The same content in another workspace is another row.
        let other = insert_or_get(&db, &media(&b, "s1", "video", 1000))
            .await
            .unwrap();
        assert_ne!(other.id, first.id);
        assert_eq!(holders(&db, "s1").await.unwrap(), 2);
        let image = insert_or_get(&db, &media(&a, "s2", "image", 2000))
            .await
            .unwrap();
        let page = list(&db, &a, None, None, 10).await.unwrap();
        assert_eq!(
            page.iter().map(|m| &m.id).collect::<Vec<_>>(),
            [&image.id, &first.id]
        );
        let next = list(&db, &a, None, Some(&image.id), 10).await.unwrap();
        assert_eq!(next.len(), 1);
        assert_eq!(
            list(&db, &a, Some("image"), None, 10).await.unwrap().len(),
            1
        );
        // Tenancy: b cannot see or delete a's media.
        assert!(get(&db, &b, &first.id).await.unwrap().is_none());
        assert!(!delete(&db, &b, &first.id).await.unwrap());
        let idle = idle_since(&db, 3000, 10).await.unwrap();
        assert_eq!(
            idle.iter().map(|m| &m.id).collect::<Vec<_>>(),
            [&other.id, &image.id]
        );
        assert!(delete(&db, &a, &first.id).await.unwrap());
        assert_eq!(holders(&db, "s1").await.unwrap(), 1);
    });

    #[tokio::test]
    async fn usage_counts_posts_by_column_and_options() {
        for backend in [
            crate::testing::Backend::Sqlite,
            crate::testing::Backend::Postgres,
        ] {
            let t = TestDb::new(backend).await;
            let db = t.db.clone();
            let a = workspace(&db, "a").await;
            let m = insert_or_get(&db, &media(&a, "s1", "video", 1000))
                .await
                .unwrap();
            assert_eq!(usage(&db, &a, &m.id).await.unwrap(), Usage::default());
            for (post, media_id, options, state, at) in [
                ("p1", Some(m.id.clone()), "{}".to_string(), "published", 10),
                (
                    "p2",
                    None,
                    format!(r#"{{"items":[{{"media_id":"{}"}}]}}"#, m.id),
                    "queued",
                    20,
                ),
                ("p3", None, "{}".to_string(), "queued", 30),
            ] {
                sqlx::query(
                    "INSERT INTO posts (id, workspace_id, caption, kind, media_id, options, created_at, updated_at) \
                     VALUES ($1, $2, '', 'video', $3, $4, $5, $5)",
                )
                .bind(post)
                .bind(&a)
                .bind(media_id)
                .bind(options)
                .bind(at)
                .execute(db.pool())
                .await
                .unwrap();
                sqlx::query(
                    "INSERT INTO post_targets (id, workspace_id, post_id, account_id, platform, mode, source, state, \
                     bytes_total, bytes_sent, chunk_size, chunks_total, chunks_acked, init_generation, provider_post_ids, \
                     error_retryable, created_at, updated_at) \
                     VALUES ($1, $2, $3, 'acc', 'tiktok', 'direct', 'file', $4, 0, 0, 0, 0, 0, 0, '[]', 0, 0, 0)",
                )
                .bind(format!("t-{post}"))
                .bind(&a)
                .bind(post)
                .bind(state)
                .execute(db.pool())
                .await
                .unwrap();
            }
            let u = usage(&db, &a, &m.id).await.unwrap();
            assert_eq!(u.posts, 2, "{backend:?}");
            assert_eq!(u.pending_post_ids, ["p2"], "{backend:?}");
            assert_eq!(u.last_post_at, Some(20), "{backend:?}");
            // Deleting detaches the finished post that names it.
            assert!(delete(&db, &a, &m.id).await.unwrap());
            let left: Option<String> =
                sqlx::query_scalar("SELECT media_id FROM posts WHERE id = 'p1'")
                    .fetch_one(db.pool())
                    .await
                    .unwrap();
            assert_eq!(left, None);
        }
    }
}
