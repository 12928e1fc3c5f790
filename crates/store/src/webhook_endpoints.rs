//! Outbound webhook endpoints: where a workspace wants its events sent (Standard Webhooks).
//!
//! The signing secret is stored only as a vault envelope (the app seals it, bound to
//! `webhook_endpoints/<id>/secret`); this module never sees it in clear. After a rotation the
//! old envelope stays in `previous_secret` until `previous_secret_until`, so receivers that have
//! not switched yet keep verifying; a secret rotated out before that one moves to
//! `older_secrets` (a JSON list of `{"secret", "until"}`) and keeps signing until its own
//! overlap ends, however often the secret is rotated meanwhile. An endpoint is enabled while `disabled_at` is null;
//! `failure_streak` counts its deliveries in a row that failed for good, and drives the
//! automatic disabling (see the app's `outbound` module).

use serde::Serialize;

use crate::{Db, Result};

/// The table, also the first part of the secrets' associated data.
pub const TABLE: &str = "webhook_endpoints";

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Endpoint {
    pub id: String,
    pub workspace_id: String,
    pub url: String,
    pub description: String,
    /// Space-separated event types; empty for every type.
    pub event_types: String,
    #[serde(skip)]
    pub secret: String,
    #[serde(skip)]
    pub previous_secret: Option<String>,
    pub previous_secret_until: Option<i64>,
    /// JSON list of [`Retired`] secrets rotated out before `previous_secret`.
    #[serde(skip)]
    pub older_secrets: String,
    pub disabled_at: Option<i64>,
    pub disabled_reason: Option<String>,
    pub failure_streak: i64,
    pub last_success_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Endpoint {
    pub fn enabled(&self) -> bool {
        self.disabled_at.is_none()
    }

    /// The event types it asked for (empty: all).
    pub fn types(&self) -> Vec<&str> {
        self.event_types.split_whitespace().collect()
    }

    /// Whether an event of `event_type` goes to this endpoint.
    pub fn accepts(&self, event_type: &str) -> bool {
        self.event_types.trim().is_empty() || self.types().contains(&event_type)
    }

    /// The previous secret's envelope while its overlap window is open at `now`.
    pub fn previous_secret_at(&self, now: i64) -> Option<&str> {
        match (&self.previous_secret, self.previous_secret_until) {
            (Some(envelope), Some(until)) if now < until => Some(envelope),
            _ => None,
        }
    }

    /// Every rotated-out secret whose overlap is still open at `now`, newest first: the
    /// previous secret, then the older ones.
    pub fn retired_secrets_at(&self, now: i64) -> Vec<Retired> {
        let previous = match (&self.previous_secret, self.previous_secret_until) {
            (Some(secret), Some(until)) => Some(Retired {
                secret: secret.clone(),
                until,
            }),
            _ => None,
        };
        previous
            .into_iter()
            .chain(self.older())
            .filter(|r| now < r.until)
            .collect()
    }

    /// The secrets rotated out before the previous one (expired ones included).
    pub fn older(&self) -> Vec<Retired> {
        serde_json::from_str(&self.older_secrets).unwrap_or_default()
    }
}

/// A rotated-out secret's envelope and the end of its overlap (ms).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Retired {
    pub secret: String,
    pub until: i64,
}

/// `retired` as stored in `older_secrets`.
pub fn older_json(retired: &[Retired]) -> String {
    serde_json::to_string(retired).unwrap_or_else(|_| "[]".into())
}

macro_rules! select {
    ($rest:literal) => {
        concat!(
            "SELECT id, workspace_id, url, description, event_types, secret, previous_secret, \
             previous_secret_until, older_secrets, disabled_at, disabled_reason, failure_streak, last_success_at, \
             created_at, updated_at FROM webhook_endpoints ",
            $rest
        )
    };
}

pub async fn insert(db: &Db, endpoint: &Endpoint) -> Result<()> {
    sqlx::query(
        "INSERT INTO webhook_endpoints (id, workspace_id, url, description, event_types, secret, \
         previous_secret, previous_secret_until, disabled_at, disabled_reason, failure_streak, \
         last_success_at, created_at, updated_at, older_secrets) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
    )
    .bind(&endpoint.id)
    .bind(&endpoint.workspace_id)
    .bind(&endpoint.url)
    .bind(&endpoint.description)
    .bind(&endpoint.event_types)
    .bind(&endpoint.secret)
    .bind(&endpoint.previous_secret)
    .bind(endpoint.previous_secret_until)
    .bind(endpoint.disabled_at)
    .bind(&endpoint.disabled_reason)
    .bind(endpoint.failure_streak)
    .bind(endpoint.last_success_at)
    .bind(endpoint.created_at)
    .bind(endpoint.updated_at)
    .bind(&endpoint.older_secrets)
    .execute(db.pool())
    .await?;
    Ok(())
}

pub async fn get(db: &Db, workspace_id: &str, id: &str) -> Result<Option<Endpoint>> {
    Ok(
        sqlx::query_as(select!("WHERE workspace_id = $1 AND id = $2"))
            .bind(workspace_id)
            .bind(id)
            .fetch_optional(db.pool())
            .await?,
    )
}

/// The workspace's endpoints, newest first, `limit` of them after the cursor `after` (an id
/// from the previous page).
pub async fn list(
    db: &Db,
    workspace_id: &str,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<Endpoint>> {
    Ok(sqlx::query_as(select!(
        "WHERE workspace_id = $1 AND ($2 IS NULL OR id < $2) ORDER BY id DESC LIMIT $3"
    ))
    .bind(workspace_id)
    .bind(after)
    .bind(limit)
    .fetch_all(db.pool())
    .await?)
}

/// Changes what an endpoint receives and where; false when there is no such endpoint.
pub async fn update(
    db: &Db,
    workspace_id: &str,
    id: &str,
    url: &str,
    description: &str,
    event_types: &str,
    now: i64,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE webhook_endpoints SET url = $3, description = $4, event_types = $5, updated_at = $6 \
         WHERE workspace_id = $1 AND id = $2",
    )
    .bind(workspace_id)
    .bind(id)
    .bind(url)
    .bind(description)
    .bind(event_types)
    .bind(now)
    .execute(db.pool())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Enables the endpoint (and forgets its failure streak); false when it was not disabled.
pub async fn enable(db: &Db, workspace_id: &str, id: &str, now: i64) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE webhook_endpoints SET disabled_at = NULL, disabled_reason = NULL, failure_streak = 0, \
         updated_at = $3 WHERE workspace_id = $1 AND id = $2 AND disabled_at IS NOT NULL",
    )
    .bind(workspace_id)
    .bind(id)
    .bind(now)
    .execute(db.pool())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Disables the endpoint with `reason`; false when it was already disabled (or is not there),
/// so that of two callers only one records the disabling.
pub async fn disable(
    db: &Db,
    workspace_id: &str,
    id: &str,
    reason: &str,
    now: i64,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE webhook_endpoints SET disabled_at = $3, disabled_reason = $4, updated_at = $3 \
         WHERE workspace_id = $1 AND id = $2 AND disabled_at IS NULL",
    )
    .bind(workspace_id)
    .bind(id)
    .bind(now)
    .bind(reason)
    .execute(db.pool())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Replaces the secret with `new_secret` and keeps the current one, re-sealed for its new
/// column as `previous`, until `previous_until`; `older` (JSON of [`Retired`]) is the list of
/// the secrets rotated out before whose overlap has not ended (the former previous secret
/// among them). Only if the stored secret is still `current` (of two rotations at once one
/// wins, the other is told to retry); false otherwise.
#[allow(clippy::too_many_arguments)]
pub async fn rotate_secret(
    db: &Db,
    workspace_id: &str,
    id: &str,
    current: &str,
    new_secret: &str,
    previous: &str,
    previous_until: i64,
    older: &str,
    now: i64,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE webhook_endpoints SET secret = $4, previous_secret = $5, \
         previous_secret_until = $6, updated_at = $7, older_secrets = $8 \
         WHERE workspace_id = $1 AND id = $2 AND secret = $3",
    )
    .bind(workspace_id)
    .bind(id)
    .bind(current)
    .bind(new_secret)
    .bind(previous)
    .bind(previous_until)
    .bind(now)
    .bind(older)
    .execute(db.pool())
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn delete(db: &Db, workspace_id: &str, id: &str) -> Result<bool> {
    let done = sqlx::query("DELETE FROM webhook_endpoints WHERE workspace_id = $1 AND id = $2")
        .bind(workspace_id)
        .bind(id)
        .execute(db.pool())
        .await?;
    Ok(done.rows_affected() == 1)
}

/// A delivery got through: the failure streak ends.
pub async fn record_success(db: &Db, workspace_id: &str, id: &str, now: i64) -> Result<()> {
    let mut conn = db.pool().acquire().await?;
    record_success_in(&mut conn, workspace_id, id, now).await
}

/// [`record_success`] on a connection (in the transaction that records the attempt).
pub async fn record_success_in(
    conn: &mut sqlx::AnyConnection,
    workspace_id: &str,
    id: &str,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "UPDATE webhook_endpoints SET failure_streak = 0, last_success_at = $3 \
         WHERE workspace_id = $1 AND id = $2",
    )
    .bind(workspace_id)
    .bind(id)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// A delivery failed for good: the streak grows by one. Returns the new streak (`None` when
/// the endpoint is gone).
pub async fn record_final_failure(
    db: &Db,
    workspace_id: &str,
    id: &str,
    now: i64,
) -> Result<Option<i64>> {
    Ok(sqlx::query_scalar(
        "UPDATE webhook_endpoints SET failure_streak = failure_streak + 1, updated_at = $3 \
         WHERE workspace_id = $1 AND id = $2 RETURNING failure_streak",
    )
    .bind(workspace_id)
    .bind(id)
    .bind(now)
    .fetch_optional(db.pool())
    .await?)
}

/// One endpoint's secret envelopes: id, secret, previous secret, older secrets (JSON).
pub type SecretEnvelopes = (String, String, Option<String>, String);

/// Every endpoint's secret envelopes, for key rotation.
pub async fn all_secret_envelopes(db: &Db) -> Result<Vec<SecretEnvelopes>> {
    Ok(sqlx::query_as(
        "SELECT id, secret, previous_secret, older_secrets FROM webhook_endpoints ORDER BY id",
    )
    .fetch_all(db.pool())
    .await?)
}

/// Replaces an endpoint's envelopes (re-encrypted under a newer key: secret, previous secret,
/// older secrets as JSON) only if they are still the ones read; false when a rotation of the
/// secret changed them meanwhile.
pub async fn replace_secret_envelopes(
    db: &Db,
    id: &str,
    old: (&str, Option<&str>, &str),
    new: (&str, Option<&str>, &str),
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE webhook_endpoints SET secret = $4, previous_secret = $5, older_secrets = $7 \
         WHERE id = $1 AND secret = $2 AND ((previous_secret IS NULL AND $3 IS NULL) OR previous_secret = $3) \
         AND older_secrets = $6",
    )
    .bind(id)
    .bind(old.0)
    .bind(old.1)
    .bind(new.0)
    .bind(new.1)
    .bind(old.2)
    .bind(new.2)
    .execute(db.pool())
    .await?;
    Ok(done.rows_affected() == 1)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::both_backends;

    pub(crate) fn endpoint(workspace_id: &str, url: &str, types: &str, now: i64) -> Endpoint {
        Endpoint {
            id: tidepost_domain::new_id(),
            workspace_id: workspace_id.into(),
            url: url.into(),
            description: "crm".into(),
            event_types: types.into(),
            secret: "envelope-1".into(),
            previous_secret: None,
            previous_secret_until: None,
            older_secrets: "[]".into(),
            disabled_at: None,
            disabled_reason: None,
            failure_streak: 0,
            last_success_at: None,
            created_at: now,
            updated_at: now,
        }
    }

    #[test]
    fn filters() {
        let all = endpoint("w", "https://a.example", "", 1);
        assert!(all.accepts("post.published"));
        let some = endpoint("w", "https://a.example", "post.published post.failed", 1);
        assert!(some.accepts("post.failed") && !some.accepts("account.connected"));
        let mut rotated = some.clone();
        rotated.previous_secret = Some("old".into());
        rotated.previous_secret_until = Some(100);
        assert_eq!(rotated.previous_secret_at(99), Some("old"));
        assert_eq!(rotated.previous_secret_at(100), None);
    }

    both_backends!(endpoints_round_trip, |db: Db| async move {
        let a = crate::workspaces::create(&db, "a", "A").await.unwrap().id;
        let b = crate::workspaces::create(&db, "b", "B").await.unwrap().id;
        let first = endpoint(&a, "https://one.example/hook", "", 1_000);
        insert(&db, &first).await.unwrap();
        let second = endpoint(&a, "https://two.example/hook", "post.published", 2_000);
        insert(&db, &second).await.unwrap();
        insert(&db, &endpoint(&b, "https://b.example", "", 3_000))
            .await
            .unwrap();

        // Scoped by workspace, newest first, paginated by id.
        let page = list(&db, &a, None, 1).await.unwrap();
        assert_eq!(page.len(), 1);
        assert_eq!(page[0].id, second.id);
        let next = list(&db, &a, Some(&page[0].id), 10).await.unwrap();
        assert_eq!(next.len(), 1);
        assert_eq!(next[0].id, first.id);
        assert!(get(&db, &b, &first.id).await.unwrap().is_none());
        assert!(!delete(&db, &b, &first.id).await.unwrap());

        assert!(
            update(
                &db,
                &a,
                &first.id,
                "https://uno.example",
                "x",
                "post.failed",
                5
            )
            .await
            .unwrap()
        );
        let got = get(&db, &a, &first.id).await.unwrap().unwrap();
        assert_eq!(
            (got.url.as_str(), got.event_types.as_str()),
            ("https://uno.example", "post.failed")
        );

        // Rotation keeps the old envelope, and refuses a stale one.
        assert!(
            rotate_secret(
                &db,
                &a,
                &first.id,
                "envelope-1",
                "envelope-2",
                "envelope-1",
                9_000,
                "[]",
                10
            )
            .await
            .unwrap()
        );
        assert!(
            !rotate_secret(
                &db,
                &a,
                &first.id,
                "envelope-1",
                "envelope-3",
                "envelope-1",
                9_000,
                "[]",
                11
            )
            .await
            .unwrap()
        );
        let got = get(&db, &a, &first.id).await.unwrap().unwrap();
        assert_eq!(got.secret, "envelope-2");
        assert_eq!(got.previous_secret.as_deref(), Some("envelope-1"));
        assert_eq!(got.previous_secret_until, Some(9_000));
        assert_eq!(
            got.retired_secrets_at(10),
            [Retired {
                secret: "envelope-1".into(),
                until: 9_000
            }]
        );
        assert!(got.retired_secrets_at(9_000).is_empty());

        // Streaks, disabling once, enabling.
        assert_eq!(
            record_final_failure(&db, &a, &first.id, 20).await.unwrap(),
            Some(1)
        );
        assert_eq!(
            record_final_failure(&db, &a, &first.id, 21).await.unwrap(),
            Some(2)
        );
        assert_eq!(
            record_final_failure(&db, &b, &first.id, 21).await.unwrap(),
            None
        );
        assert!(disable(&db, &a, &first.id, "failing", 30).await.unwrap());
        assert!(!disable(&db, &a, &first.id, "failing", 31).await.unwrap());
        assert!(!get(&db, &a, &first.id).await.unwrap().unwrap().enabled());
        assert!(enable(&db, &a, &first.id, 40).await.unwrap());
        let got = get(&db, &a, &first.id).await.unwrap().unwrap();
        assert!(got.enabled() && got.failure_streak == 0);
        record_final_failure(&db, &a, &first.id, 41).await.unwrap();
        record_success(&db, &a, &first.id, 42).await.unwrap();
        let got = get(&db, &a, &first.id).await.unwrap().unwrap();
        assert_eq!((got.failure_streak, got.last_success_at), (0, Some(42)));

        // Key rotation replaces only what it read.
        assert!(
            replace_secret_envelopes(
                &db,
                &first.id,
                ("envelope-2", Some("envelope-1"), "[]"),
                ("k2-envelope-2", Some("k2-envelope-1"), "[]")
            )
            .await
            .unwrap()
        );
        assert!(
            !replace_secret_envelopes(
                &db,
                &first.id,
                ("envelope-2", None, "[]"),
                ("x", None, "[]")
            )
            .await
            .unwrap()
        );
        assert!(
            replace_secret_envelopes(
                &db,
                &second.id,
                ("envelope-1", None, "[]"),
                ("k2", None, "[]")
            )
            .await
            .unwrap()
        );
        assert_eq!(all_secret_envelopes(&db).await.unwrap().len(), 3);

        assert!(delete(&db, &a, &first.id).await.unwrap());
        assert!(get(&db, &a, &first.id).await.unwrap().is_none());
    });
}
