//! Resumable (tus) uploads: the durable offset of each upload in progress, and the lease that
//! lets one request at a time append to its file.
//!
//! `received` only moves after the bytes up to it are synced to disk, so after a crash or a
//! dropped connection the client's `HEAD` learns an offset whose bytes are really there. A
//! writer claims the upload with [`claim`] (the offset it starts from must be the durable one,
//! and no other writer may hold an unexpired lease), moves the offset with [`advance`], and
//! lets go with [`release`], [`complete`] or [`fail`]; every one of these names the lease's
//! token, so a writer whose lease ran out and was taken over cannot move the offset any more.
//!
//! On S3 storage the bytes are in the bucket, not a file: an S3 multipart upload
//! (`multipart_id`) holds whole parts ([`parts`], recorded with [`advance_part`] once S3 has
//! them), and the bytes past the last part are one object, the tail ([`advance_tail`]). Either
//! moves `received` in the same statement as the part or tail it stands for, fenced by the
//! lease, so any instance can take the upload over from the database alone.

use serde::Serialize;

use crate::{Db, Result};

/// Receiving bytes.
pub const RECEIVING: &str = "receiving";
/// Every byte arrived and became a media item (`media_id`).
pub const COMPLETE: &str = "complete";
/// Every byte arrived but the file was refused (`error` says why).
pub const FAILED: &str = "failed";

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Upload {
    pub id: String,
    pub workspace_id: String,
    /// The declared size (`Upload-Length`).
    pub length: i64,
    /// The durable offset (`Upload-Offset`).
    pub received: i64,
    pub file_name: Option<String>,
    pub content_type: Option<String>,
    /// The raw `Upload-Metadata` header, echoed back on `HEAD`.
    pub metadata: String,
    pub state: String,
    pub media_id: Option<String>,
    pub error: Option<String>,
    #[serde(skip)]
    pub lock_token: Option<String>,
    #[serde(skip)]
    pub locked_until: Option<i64>,
    pub created_by: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    /// After this (ms) an unfinished upload and its bytes are deleted by the sweep.
    pub expires_at: i64,
    /// On S3 storage: the multipart upload the parts go to, until it is completed.
    #[serde(skip)]
    pub multipart_id: Option<String>,
    /// On S3 storage: the name of the object holding the bytes past the last part.
    #[serde(skip)]
    pub tail: Option<String>,
}

/// A part of an upload's S3 multipart upload: its number (from 1, contiguous), S3's ETag and
/// its size.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Part {
    pub number: i64,
    pub etag: String,
    pub size: i64,
}

const COLUMNS: &str = "id, workspace_id, length, received, file_name, content_type, metadata, state, media_id, \
     error, lock_token, locked_until, created_by, created_at, updated_at, expires_at, multipart_id, tail";

pub async fn insert(db: &Db, u: &Upload) -> Result<()> {
    sqlx::query(&format!(
        "INSERT INTO uploads ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)"
    ))
    .bind(&u.id)
    .bind(&u.workspace_id)
    .bind(u.length)
    .bind(u.received)
    .bind(&u.file_name)
    .bind(&u.content_type)
    .bind(&u.metadata)
    .bind(&u.state)
    .bind(&u.media_id)
    .bind(&u.error)
    .bind(&u.lock_token)
    .bind(u.locked_until)
    .bind(&u.created_by)
    .bind(u.created_at)
    .bind(u.updated_at)
    .bind(u.expires_at)
    .bind(&u.multipart_id)
    .bind(&u.tail)
    .execute(db.pool())
    .await?;
    Ok(())
}

pub async fn get(db: &Db, workspace_id: &str, id: &str) -> Result<Option<Upload>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM uploads WHERE workspace_id = $1 AND id = $2"
    ))
    .bind(workspace_id)
    .bind(id)
    .fetch_optional(db.pool())
    .await?)
}

/// Why a claim was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    NotFound,
    /// The client's offset is not the durable one.
    OffsetMismatch {
        received: i64,
    },
    /// Another request is appending right now.
    Busy,
    /// The upload is complete or failed.
    Finished {
        state: String,
    },
}

/// Takes the append lease for `lease_ms` if the upload is receiving and has not expired, its
/// durable offset is `offset`, and nobody holds an unexpired lease. An expired upload is not
/// found (the sweep is about to delete it and its bytes).
pub async fn claim(
    db: &Db,
    workspace_id: &str,
    id: &str,
    offset: i64,
    token: &str,
    now: i64,
    lease_ms: i64,
) -> Result<Result<Upload, Refused>> {
    let claimed = sqlx::query(
        "UPDATE uploads SET lock_token = $4, locked_until = $5, updated_at = $6 \
         WHERE workspace_id = $1 AND id = $2 AND received = $3 AND state = 'receiving' \
         AND expires_at >= $6 AND (lock_token IS NULL OR locked_until < $6)",
    )
    .bind(workspace_id)
    .bind(id)
    .bind(offset)
    .bind(token)
    .bind(now + lease_ms)
    .bind(now)
    .execute(db.pool())
    .await?
    .rows_affected();
    let Some(upload) = get(db, workspace_id, id).await? else {
        return Ok(Err(Refused::NotFound));
    };
    if claimed == 0 && upload.state == RECEIVING && upload.expires_at < now {
        return Ok(Err(Refused::NotFound));
    }
    if claimed == 1 {
        return Ok(Ok(upload));
    }
    Ok(Err(if upload.state != RECEIVING {
        Refused::Finished {
            state: upload.state,
        }
    } else if upload.received != offset {
        Refused::OffsetMismatch {
            received: upload.received,
        }
    } else {
        Refused::Busy
    }))
}

/// Moves the durable offset (the bytes up to it are synced) and extends the lease. False when
/// the lease is no longer this writer's.
pub async fn advance(
    db: &Db,
    workspace_id: &str,
    id: &str,
    token: &str,
    received: i64,
    now: i64,
    lease_ms: i64,
) -> Result<bool> {
    Ok(sqlx::query(
        "UPDATE uploads SET received = $4, updated_at = $5, locked_until = $6 \
         WHERE workspace_id = $1 AND id = $2 AND lock_token = $3 AND state = 'receiving'",
    )
    .bind(workspace_id)
    .bind(id)
    .bind(token)
    .bind(received)
    .bind(now)
    .bind(now + lease_ms)
    .execute(db.pool())
    .await?
    .rows_affected()
        == 1)
}

/// Lets go of the lease.
pub async fn release(db: &Db, workspace_id: &str, id: &str, token: &str) -> Result<()> {
    sqlx::query(
        "UPDATE uploads SET lock_token = NULL, locked_until = NULL \
         WHERE workspace_id = $1 AND id = $2 AND lock_token = $3",
    )
    .bind(workspace_id)
    .bind(id)
    .bind(token)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// Marks the upload complete with the media it became, and lets go of the lease.
pub async fn complete(
    db: &Db,
    workspace_id: &str,
    id: &str,
    token: &str,
    media_id: &str,
    now: i64,
) -> Result<bool> {
    Ok(sqlx::query(
        "UPDATE uploads SET state = 'complete', media_id = $4, updated_at = $5, lock_token = NULL, locked_until = NULL \
         WHERE workspace_id = $1 AND id = $2 AND lock_token = $3",
    )
    .bind(workspace_id)
    .bind(id)
    .bind(token)
    .bind(media_id)
    .bind(now)
    .execute(db.pool())
    .await?
    .rows_affected()
        == 1)
}

/// Marks the upload failed (every byte arrived but the file was refused), with the reason.
pub async fn fail(
    db: &Db,
    workspace_id: &str,
    id: &str,
    token: &str,
    error: &str,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "UPDATE uploads SET state = 'failed', error = $4, updated_at = $5, lock_token = NULL, locked_until = NULL \
         WHERE workspace_id = $1 AND id = $2 AND lock_token = $3",
    )
    .bind(workspace_id)
    .bind(id)
    .bind(token)
    .bind(error)
    .bind(now)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// Deletes the upload's row and its parts (tus termination). Returns whether there was one.
pub async fn delete(db: &Db, workspace_id: &str, id: &str) -> Result<bool> {
    let mut tx = db.begin_write().await?;
    sqlx::query("DELETE FROM upload_parts WHERE workspace_id = $1 AND upload_id = $2")
        .bind(workspace_id)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    let deleted = sqlx::query("DELETE FROM uploads WHERE workspace_id = $1 AND id = $2")
        .bind(workspace_id)
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected()
        > 0;
    tx.commit().await?;
    Ok(deleted)
}

/// The parts of the upload's multipart upload, by number.
pub async fn parts(db: &Db, workspace_id: &str, id: &str) -> Result<Vec<Part>> {
    Ok(sqlx::query_as(
        "SELECT number, etag, size FROM upload_parts WHERE workspace_id = $1 AND upload_id = $2 \
         ORDER BY number",
    )
    .bind(workspace_id)
    .bind(id)
    .fetch_all(db.pool())
    .await?)
}

/// Records `part` (S3 has it) and moves the durable offset to `received`, the end of the
/// part: the tail, whose bytes the part took in, is no longer named. Extends the lease. False
/// (nothing recorded) when the lease is no longer this writer's.
#[expect(clippy::too_many_arguments, reason = "one fenced write of a part")]
pub async fn advance_part(
    db: &Db,
    workspace_id: &str,
    id: &str,
    token: &str,
    part: &Part,
    received: i64,
    now: i64,
    lease_ms: i64,
) -> Result<bool> {
    let mut tx = db.begin_write().await?;
    let moved = sqlx::query(
        "UPDATE uploads SET received = $4, tail = NULL, updated_at = $5, locked_until = $6 \
         WHERE workspace_id = $1 AND id = $2 AND lock_token = $3 AND state = 'receiving'",
    )
    .bind(workspace_id)
    .bind(id)
    .bind(token)
    .bind(received)
    .bind(now)
    .bind(now + lease_ms)
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    if !moved {
        return Ok(false);
    }
    sqlx::query(
        "INSERT INTO upload_parts (upload_id, workspace_id, number, etag, size) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(id)
    .bind(workspace_id)
    .bind(part.number)
    .bind(&part.etag)
    .bind(part.size)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(true)
}

/// Names `tail` as the object holding the bytes past the last part and moves the durable
/// offset to `received`. Extends the lease. False when the lease is no longer this writer's.
#[expect(clippy::too_many_arguments, reason = "one fenced write of the tail")]
pub async fn advance_tail(
    db: &Db,
    workspace_id: &str,
    id: &str,
    token: &str,
    tail: &str,
    received: i64,
    now: i64,
    lease_ms: i64,
) -> Result<bool> {
    Ok(sqlx::query(
        "UPDATE uploads SET received = $4, tail = $5, updated_at = $6, locked_until = $7 \
         WHERE workspace_id = $1 AND id = $2 AND lock_token = $3 AND state = 'receiving'",
    )
    .bind(workspace_id)
    .bind(id)
    .bind(token)
    .bind(received)
    .bind(tail)
    .bind(now)
    .bind(now + lease_ms)
    .execute(db.pool())
    .await?
    .rows_affected()
        == 1)
}

/// The multipart upload was completed into one object: forget its id (the parts stay listed
/// until the upload's row goes). False when the lease is no longer this writer's.
pub async fn assembled(db: &Db, workspace_id: &str, id: &str, token: &str) -> Result<bool> {
    Ok(sqlx::query(
        "UPDATE uploads SET multipart_id = NULL \
         WHERE workspace_id = $1 AND id = $2 AND lock_token = $3 AND state = 'receiving'",
    )
    .bind(workspace_id)
    .bind(id)
    .bind(token)
    .execute(db.pool())
    .await?
    .rows_affected()
        == 1)
}

/// Of `ids`, the ones that name an upload of any workspace (the sweep of stray objects keeps
/// those).
pub async fn existing(db: &Db, ids: &[String]) -> Result<Vec<String>> {
    let mut found = Vec::new();
    for id in ids {
        let hit: Option<String> = sqlx::query_scalar("SELECT id FROM uploads WHERE id = $1")
            .bind(id)
            .fetch_optional(db.pool())
            .await?;
        found.extend(hit);
    }
    Ok(found)
}

/// Uploads of every workspace that expired before `now` and that no writer holds: the sweep
/// deletes their rows and files.
pub async fn expired(db: &Db, now: i64, limit: i64) -> Result<Vec<Upload>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM uploads WHERE expires_at < $1 AND (lock_token IS NULL OR locked_until < $1) \
         ORDER BY expires_at LIMIT $2"
    ))
    .bind(now)
    .bind(limit)
    .fetch_all(db.pool())
    .await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{both_backends, workspaces};

    fn upload(ws: &str, now: i64) -> Upload {
        Upload {
            id: tidepost_domain::new_id(),
            workspace_id: ws.into(),
            length: 100,
            received: 0,
            file_name: Some("a.mp4".into()),
            content_type: Some("video/mp4".into()),
            metadata: "filename YS5tcDQ=".into(),
            state: RECEIVING.into(),
            media_id: None,
            error: None,
            lock_token: None,
            locked_until: None,
            created_by: None,
            created_at: now,
            updated_at: now,
            expires_at: now + 1000,
            multipart_id: None,
            tail: None,
        }
    }

    both_backends!(offsets_and_leases, |db: Db| async move {
        let a = workspaces::create(&db, "a", "A").await.unwrap().id;
        let b = workspaces::create(&db, "b", "B").await.unwrap().id;
        let u = upload(&a, 0);
        insert(&db, &u).await.unwrap();
        // Another workspace does not see it.
        assert!(get(&db, &b, &u.id).await.unwrap().is_none());
        assert_eq!(
            claim(&db, &b, &u.id, 0, "t0", 10, 100)
                .await
                .unwrap()
                .unwrap_err(),
            Refused::NotFound
        );
        // A wrong offset is refused with the durable one.
        assert_eq!(
            claim(&db, &a, &u.id, 5, "t1", 10, 100)
                .await
                .unwrap()
                .unwrap_err(),
            Refused::OffsetMismatch { received: 0 }
        );
        claim(&db, &a, &u.id, 0, "t1", 10, 100)
            .await
            .unwrap()
            .unwrap();
        // A second writer waits while the lease runs.
        assert_eq!(
            claim(&db, &a, &u.id, 0, "t2", 20, 100)
                .await
                .unwrap()
                .unwrap_err(),
            Refused::Busy
        );
        assert!(advance(&db, &a, &u.id, "t1", 40, 30, 100).await.unwrap());
        assert!(!advance(&db, &a, &u.id, "t2", 50, 30, 100).await.unwrap());
        // The lease ran out: another writer takes over; the first can no longer write.
        claim(&db, &a, &u.id, 40, "t2", 200, 100)
            .await
            .unwrap()
            .unwrap();
        assert!(!advance(&db, &a, &u.id, "t1", 60, 210, 100).await.unwrap());
        assert!(advance(&db, &a, &u.id, "t2", 100, 210, 100).await.unwrap());
        assert!(complete(&db, &a, &u.id, "t2", "m1", 220).await.unwrap());
        let done = get(&db, &a, &u.id).await.unwrap().unwrap();
        assert_eq!((done.state.as_str(), done.received), (COMPLETE, 100));
        assert_eq!(done.media_id.as_deref(), Some("m1"));
        assert_eq!(
            claim(&db, &a, &u.id, 100, "t3", 300, 100)
                .await
                .unwrap()
                .unwrap_err(),
            Refused::Finished {
                state: COMPLETE.into()
            }
        );
        let later = upload(&a, 5000);
        insert(&db, &later).await.unwrap();
        let gone = expired(&db, 2000, 10).await.unwrap();
        assert_eq!(gone.iter().map(|u| &u.id).collect::<Vec<_>>(), [&u.id]);
        assert!(!delete(&db, &b, &u.id).await.unwrap());
        assert!(delete(&db, &a, &u.id).await.unwrap());
        // A held lease keeps an expired upload from the sweep.
        claim(&db, &a, &later.id, 0, "t4", 5000, 10_000)
            .await
            .unwrap()
            .unwrap();
        assert!(expired(&db, 7000, 10).await.unwrap().is_empty());
        release(&db, &a, &later.id, "t4").await.unwrap();
        assert_eq!(expired(&db, 7000, 10).await.unwrap().len(), 1);
        // An expired upload can no longer be appended to.
        assert_eq!(
            claim(&db, &a, &later.id, 0, "t5", 7000, 100)
                .await
                .unwrap()
                .unwrap_err(),
            Refused::NotFound
        );
    });

    both_backends!(parts_and_tails, |db: Db| async move {
        let a = workspaces::create(&db, "a", "A").await.unwrap().id;
        let b = workspaces::create(&db, "b", "B").await.unwrap().id;
        let mut u = upload(&a, 0);
        u.multipart_id = Some("mp-1".into());
        insert(&db, &u).await.unwrap();
        claim(&db, &a, &u.id, 0, "t1", 10, 100)
            .await
            .unwrap()
            .unwrap();
        assert!(
            advance_tail(&db, &a, &u.id, "t1", "tail-x", 30, 20, 100)
                .await
                .unwrap()
        );
        let got = get(&db, &a, &u.id).await.unwrap().unwrap();
        assert_eq!((got.received, got.tail.as_deref()), (30, Some("tail-x")));
        assert_eq!(got.multipart_id.as_deref(), Some("mp-1"));
        let part = Part {
            number: 1,
            etag: "\"e1\"".into(),
            size: 60,
        };
        // Another writer's token records nothing.
        assert!(
            !advance_part(&db, &a, &u.id, "t2", &part, 60, 30, 100)
                .await
                .unwrap()
        );
        assert!(parts(&db, &a, &u.id).await.unwrap().is_empty());
        assert!(
            advance_part(&db, &a, &u.id, "t1", &part, 60, 30, 100)
                .await
                .unwrap()
        );
        let got = get(&db, &a, &u.id).await.unwrap().unwrap();
        assert_eq!(
            (got.received, got.tail),
            (60, None),
            "the part took the tail in"
        );
        assert_eq!(parts(&db, &a, &u.id).await.unwrap(), vec![part]);
        assert!(parts(&db, &b, &u.id).await.unwrap().is_empty(), "scoped");
        assert!(assembled(&db, &a, &u.id, "t1").await.unwrap());
        assert!(
            get(&db, &a, &u.id)
                .await
                .unwrap()
                .unwrap()
                .multipart_id
                .is_none()
        );
        assert_eq!(
            existing(&db, &[u.id.clone(), "nope".into()]).await.unwrap(),
            vec![u.id.clone()]
        );
        assert!(delete(&db, &a, &u.id).await.unwrap());
        assert!(parts(&db, &a, &u.id).await.unwrap().is_empty());
    });
}
