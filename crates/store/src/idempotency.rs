//! `Idempotency-Key` records: the first answer to a POST, per (workspace, key), so that a client
//! retrying after a lost response gets that answer again instead of creating a second object.
//!
//! A record is claimed (`running`) before the request runs, which is what turns a concurrent
//! duplicate into a 409 instead of a second execution; the claim carries a lease so that a
//! request whose process died does not block its key until expiry. Once the answer is known it
//! is stored (`done`) with the request's fingerprint, which a replay must match. Records expire
//! after [`TTL_MS`] and are swept by the housekeeping job.

use crate::{Db, Result};

/// How long a key is remembered.
pub const TTL_MS: i64 = 24 * 3_600_000;

/// A stored answer.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Stored {
    /// Hex SHA-256 of the request (method, path, body) that produced it.
    pub fingerprint: String,
    pub status: i64,
    /// JSON array of `[name, value]` pairs: the headers worth replaying.
    pub headers: String,
    pub body: Vec<u8>,
}

/// A record as read back: state, fingerprint, status, headers, body.
type Row = (
    String,
    Option<String>,
    Option<i64>,
    Option<String>,
    Option<Vec<u8>>,
);

/// What [`claim`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The key is ours: run the request, then [`finish`] or [`release`].
    Claimed,
    /// Another request with this key is running.
    Running,
    /// The key already has an answer.
    Done(Stored),
}

/// Claims `key` for a request starting at `now`, holding it for `lease_ms` at most. A key
/// whose record expired, or whose running claim outlived its lease (its process died), is
/// claimed afresh.
pub async fn claim(
    db: &Db,
    workspace_id: &str,
    key: &str,
    now: i64,
    lease_ms: i64,
) -> Result<Claim> {
    let inserted = sqlx::query(
        "INSERT INTO idempotency_keys (workspace_id, idem_key, state, locked_until, created_at, expires_at) \
         VALUES ($1, $2, 'running', $3, $4, $5) ON CONFLICT (workspace_id, idem_key) DO NOTHING",
    )
    .bind(workspace_id)
    .bind(key)
    .bind(now + lease_ms)
    .bind(now)
    .bind(now + TTL_MS)
    .execute(db.pool())
    .await?
    .rows_affected();
    if inserted == 1 {
        return Ok(Claim::Claimed);
    }
    // Taking over a stale record is one conditional UPDATE, so of two requests racing for it
    // exactly one wins.
    let taken = sqlx::query(
        "UPDATE idempotency_keys SET state = 'running', fingerprint = NULL, status = NULL, headers = NULL, \
         body = NULL, locked_until = $3, created_at = $4, expires_at = $5 \
         WHERE workspace_id = $1 AND idem_key = $2 \
         AND (expires_at <= $4 OR (state = 'running' AND locked_until <= $4))",
    )
    .bind(workspace_id)
    .bind(key)
    .bind(now + lease_ms)
    .bind(now)
    .bind(now + TTL_MS)
    .execute(db.pool())
    .await?
    .rows_affected();
    if taken == 1 {
        return Ok(Claim::Claimed);
    }
    let stored: Option<Row> = sqlx::query_as(
        "SELECT state, fingerprint, status, headers, body FROM idempotency_keys \
             WHERE workspace_id = $1 AND idem_key = $2",
    )
    .bind(workspace_id)
    .bind(key)
    .fetch_optional(db.pool())
    .await?;
    Ok(match stored {
        Some((state, Some(fingerprint), Some(status), headers, body)) if state == "done" => {
            Claim::Done(Stored {
                fingerprint,
                status,
                headers: headers.unwrap_or_else(|| "[]".into()),
                body: body.unwrap_or_default(),
            })
        }
        // Swept between our statements: nobody holds it, but treat it as busy for this once
        // rather than loop; the client's retry claims it.
        _ => Claim::Running,
    })
}

/// Stores the answer of the request that holds the claim.
pub async fn finish(db: &Db, workspace_id: &str, key: &str, answer: &Stored) -> Result<bool> {
    Ok(sqlx::query(
        "UPDATE idempotency_keys SET state = 'done', fingerprint = $3, status = $4, headers = $5, body = $6 \
         WHERE workspace_id = $1 AND idem_key = $2 AND state = 'running'",
    )
    .bind(workspace_id)
    .bind(key)
    .bind(&answer.fingerprint)
    .bind(answer.status)
    .bind(&answer.headers)
    .bind(&answer.body)
    .execute(db.pool())
    .await?
    .rows_affected()
        == 1)
}

/// Gives a claim up without an answer (the request failed in a way worth retrying), so the
/// next request with the key runs.
pub async fn release(db: &Db, workspace_id: &str, key: &str) -> Result<()> {
    sqlx::query(
        "DELETE FROM idempotency_keys WHERE workspace_id = $1 AND idem_key = $2 AND state = 'running'",
    )
    .bind(workspace_id)
    .bind(key)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// Forgets every record that expired by `now`; returns how many.
pub async fn sweep(db: &Db, now: i64) -> Result<u64> {
    Ok(
        sqlx::query("DELETE FROM idempotency_keys WHERE expires_at <= $1")
            .bind(now)
            .execute(db.pool())
            .await?
            .rows_affected(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::both_backends;

    async fn workspace(db: &Db, slug: &str) -> String {
        crate::workspaces::create(db, slug, slug).await.unwrap().id
    }

    fn answer(fingerprint: &str) -> Stored {
        Stored {
            fingerprint: fingerprint.into(),
            status: 201,
            headers: r#"[["content-type","application/json"]]"#.into(),
            body: br#"{"id":"x"}"#.to_vec(),
        }
    }

    both_backends!(claim_finish_replay, |db: Db| async move {
        let ws = workspace(&db, "idem-a").await;
        let other = workspace(&db, "idem-b").await;
        let now = 1_000_000;
        assert_eq!(
            claim(&db, &ws, "k1", now, 60_000).await.unwrap(),
            Claim::Claimed
        );
        // A duplicate while the first runs.
        assert_eq!(
            claim(&db, &ws, "k1", now + 1, 60_000).await.unwrap(),
            Claim::Running
        );
        // Keys are per workspace.
        assert_eq!(
            claim(&db, &other, "k1", now, 60_000).await.unwrap(),
            Claim::Claimed
        );
        assert!(finish(&db, &ws, "k1", &answer("f1")).await.unwrap());
        assert_eq!(
            claim(&db, &ws, "k1", now + 2, 60_000).await.unwrap(),
            Claim::Done(answer("f1"))
        );
        // A stored answer cannot be overwritten by a late finisher.
        assert!(!finish(&db, &ws, "k1", &answer("f2")).await.unwrap());
    });

    both_backends!(release_lease_and_expiry, |db: Db| async move {
        let ws = workspace(&db, "idem-c").await;
        let now = 5_000_000;
        assert_eq!(
            claim(&db, &ws, "k", now, 1_000).await.unwrap(),
            Claim::Claimed
        );
        release(&db, &ws, "k").await.unwrap();
        assert_eq!(
            claim(&db, &ws, "k", now, 1_000).await.unwrap(),
            Claim::Claimed
        );
        // The claim outlives its lease: its process died; the next request takes the key.
        assert_eq!(
            claim(&db, &ws, "k", now + 999, 1_000).await.unwrap(),
            Claim::Running
        );
        assert_eq!(
            claim(&db, &ws, "k", now + 1_000, 1_000).await.unwrap(),
            Claim::Claimed
        );
        assert!(finish(&db, &ws, "k", &answer("f")).await.unwrap());
        // Release never drops a stored answer.
        release(&db, &ws, "k").await.unwrap();
        assert!(matches!(
            claim(&db, &ws, "k", now + 2_000, 1_000).await.unwrap(),
            Claim::Done(_)
        ));
        // After 24 hours the key is new again, and the sweep forgets it.
        let later = now + 1_000 + TTL_MS;
        assert_eq!(sweep(&db, later - 1).await.unwrap(), 0);
        assert_eq!(
            claim(&db, &ws, "k", later, 1_000).await.unwrap(),
            Claim::Claimed
        );
        assert!(finish(&db, &ws, "k", &answer("g")).await.unwrap());
        assert_eq!(sweep(&db, later + TTL_MS).await.unwrap(), 1);
        assert_eq!(
            claim(&db, &ws, "k", later + TTL_MS, 1_000).await.unwrap(),
            Claim::Claimed
        );
    });
}
