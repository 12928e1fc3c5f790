//! tidepost's background work: which job kinds exist, their handlers and retry policies, and
//! the recurring sweeps. `serve` (embedded workers), `worker` and `run-once` all build the same
//! registry from here.

use std::time::Duration;

use serde::Deserialize;
use tidepost_jobs::schedule::{self, Schedule};
use tidepost_jobs::{JobContext, JobError, Registry, RetryPolicy, handler_fn};

use crate::{App, tokens};

pub const REFRESH_SWEEP: &str = "tokens.refresh_due";
pub const PRUNE_SWEEP: &str = "housekeeping.prune";

#[derive(Debug, Deserialize)]
struct Empty {}

/// Every job kind tidepost runs, with its handler.
pub fn registry(app: &App) -> Registry {
    let sweep_policy = RetryPolicy::new(3, Duration::from_secs(5), Duration::from_secs(60));
    let refresh_app = app.clone();
    let prune_app = app.clone();
    let registry = crate::platforms::register(Registry::new(), app);
    let registry = crate::media::register(registry, app);
    let registry = crate::outbound::register(registry, app);
    let registry = crate::crm::register(registry, app);
    registry
        .register_with(
            REFRESH_SWEEP,
            sweep_policy,
            handler_fn(move |_ctx: JobContext, _: Empty| {
                let app = refresh_app.clone();
                async move {
                    let report = tokens::refresh_due(&app)
                        .await
                        .map_err(JobError::retryable)?;
                    if report.refreshed + report.needs_reauth + report.failed > 0 {
                        tracing::info!(?report, "token refresh sweep");
                    }
                    Ok(())
                }
            }),
        )
        .register_with(
            PRUNE_SWEEP,
            sweep_policy,
            handler_fn(move |_ctx: JobContext, _: Empty| {
                let app = prune_app.clone();
                async move { prune(&app).await.map_err(JobError::retryable) }
            }),
        )
}

/// Registers the recurring sweeps (idempotent; every instance may call it at start).
pub async fn ensure_schedules(app: &App) -> tidepost_jobs::Result<()> {
    let every = |name: &str, secs: u64| {
        Schedule::every(name, Duration::from_secs(secs), name, serde_json::json!({}))
    };
    schedule::ensure(&app.queue, &every(REFRESH_SWEEP, 300)).await?;
    schedule::ensure(&app.queue, &every(PRUNE_SWEEP, 3600)).await?;
    crate::media::sweep::ensure_schedule(app).await?;
    crate::outbound::ensure_schedules(app).await?;
    crate::crm::ensure_schedules(app).await?;
    Ok(())
}

/// Forgets expired sessions, OAuth states, old sign-in failures and expired Idempotency-Key
/// answers, and deletes finished jobs past their retention (`job_retention_days` for succeeded
/// and cancelled ones, `dead_job_retention_days` for dead ones; 0 keeps them).
pub async fn prune(app: &App) -> tidepost_jobs::Result<()> {
    let now = tidepost_domain::now_ms();
    tidepost_store::sessions::delete_expired(&app.db, now).await?;
    tidepost_store::oauth_states::prune(&app.db, now - 86_400_000).await?;
    tidepost_store::connect_links::prune(&app.db, now - 86_400_000).await?;
    tidepost_store::login_attempts::prune(&app.db, now - 86_400_000).await?;
    tidepost_store::idempotency::sweep(&app.db, now).await?;
    prune_jobs(app, now).await?;
    Ok(())
}

/// Deletes finished jobs past their retention. A retention of 0 days keeps those jobs: the
/// cutoff becomes the start of time, which no job finished before.
async fn prune_jobs(app: &App, now: i64) -> tidepost_jobs::Result<u64> {
    let cutoff = |days: u32| match days {
        0 => i64::MIN,
        d => now - i64::from(d) * 86_400_000,
    };
    let pruned = tidepost_jobs::admin::prune_finished(
        &app.db,
        cutoff(app.config.job_retention_days),
        cutoff(app.config.dead_job_retention_days),
    )
    .await?;
    if pruned > 0 {
        tracing::info!(pruned, "deleted finished jobs past their retention");
    }
    Ok(pruned)
}

#[cfg(test)]
mod tests {
    use tidepost_store::testing::{Backend, TestDb};

    use super::*;
    use crate::config::RawSettings;
    use crate::providers::Providers;

    fn app(db: &TestDb, extra: &[(&'static str, String)]) -> App {
        let mut flags: Vec<(&'static str, String)> =
            vec![("database_url", db.url.clone()), ("sandbox", "true".into())];
        flags.extend_from_slice(extra);
        let raw = RawSettings::gather(&flags, |_| None, None).unwrap();
        let config = crate::Config::from_raw(&raw).unwrap();
        let keyring = tidepost_vault::Keyring::parse(secrecy::ExposeSecret::expose_secret(
            &tidepost_vault::Keyring::generate_key_text(),
        ))
        .unwrap();
        let providers = Providers::from_config(&config, None);
        App::new(config, db.db.clone(), keyring, providers)
    }

    const DAY: i64 = 86_400_000;

    /// A job in `state` that finished `days_ago` days before `now` (unfinished when `None`),
    /// with one durable step, which must go with it.
    async fn job(db: &TestDb, id: &str, state: &str, now: i64, days_ago: Option<i64>) {
        sqlx::query(
            "INSERT INTO jobs (id, kind, payload, state, run_at, created_at, updated_at, finished_at) \
             VALUES ($1, 'test.kind', '{}', $2, $3, $3, $3, $4)",
        )
        .bind(id)
        .bind(state)
        .bind(now - 60 * DAY)
        .bind(days_ago.map(|d| now - d * DAY))
        .execute(db.db.pool())
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO job_steps (job_id, name, state, attempt, created_at, updated_at) \
             VALUES ($1, 'call', 'done', 1, $2, $2)",
        )
        .bind(id)
        .bind(now - 60 * DAY)
        .execute(db.db.pool())
        .await
        .unwrap();
    }

    async fn ids(db: &TestDb, table_column: &str) -> Vec<String> {
        let (table, column) = table_column.split_once('.').unwrap();
        let mut ids: Vec<String> =
            sqlx::query_scalar(&format!("SELECT {column} FROM {table} ORDER BY {column}"))
                .fetch_all(db.db.pool())
                .await
                .unwrap();
        ids.dedup();
        ids
    }

    async fn seed(db: &TestDb, now: i64) {
        job(db, "a-succeeded-old", "succeeded", now, Some(8)).await;
        job(db, "b-succeeded-new", "succeeded", now, Some(6)).await;
        job(db, "c-cancelled-old", "cancelled", now, Some(8)).await;
        job(db, "d-dead-8d", "dead", now, Some(8)).await;
        job(db, "e-dead-31d", "dead", now, Some(31)).await;
        job(db, "f-failed-old", "failed", now, Some(40)).await;
        job(db, "g-queued", "queued", now, None).await;
    }

    /// Succeeded and cancelled jobs go after `job_retention_days` (7 by default), dead ones
    /// after `dead_job_retention_days` (30), with their steps; failed (waiting for a retry) and
    /// queued jobs stay whatever their age.
    async fn prune_deletes_finished_jobs_past_retention(backend: Backend) {
        let db = TestDb::new(backend).await;
        let app = app(&db, &[]);
        assert_eq!(
            (
                app.config.job_retention_days,
                app.config.dead_job_retention_days
            ),
            (7, 30)
        );
        let now = tidepost_domain::now_ms();
        seed(&db, now).await;
        prune(&app).await.unwrap();
        let left = ["b-succeeded-new", "d-dead-8d", "f-failed-old", "g-queued"];
        assert_eq!(ids(&db, "jobs.id").await, left);
        assert_eq!(ids(&db, "job_steps.job_id").await, left, "steps go too");
        // Again: nothing more is due.
        prune(&app).await.unwrap();
        assert_eq!(ids(&db, "jobs.id").await, left);
    }

    /// 0 keeps jobs forever; the two retentions are independent.
    async fn prune_keeps_jobs_when_retention_is_zero(backend: Backend) {
        let db = TestDb::new(backend).await;
        let app = app(
            &db,
            &[
                ("job_retention_days", "0".into()),
                ("dead_job_retention_days", "5".into()),
            ],
        );
        let now = tidepost_domain::now_ms();
        seed(&db, now).await;
        prune(&app).await.unwrap();
        assert_eq!(
            ids(&db, "jobs.id").await,
            [
                "a-succeeded-old",
                "b-succeeded-new",
                "c-cancelled-old",
                "f-failed-old",
                "g-queued",
            ]
        );
    }

    #[test]
    fn retention_out_of_range_is_refused() {
        let raw = RawSettings::gather(
            &[
                ("sandbox", "true".into()),
                ("job_retention_days", "-1".into()),
            ],
            |_| None,
            None,
        )
        .unwrap();
        let err = crate::Config::from_raw(&raw).unwrap_err().to_string();
        assert!(err.contains("job_retention_days"), "{err}");
    }

    #[tokio::test]
    async fn prune_deletes_finished_jobs_past_retention_sqlite() {
        prune_deletes_finished_jobs_past_retention(Backend::Sqlite).await;
    }

    #[tokio::test]
    async fn prune_deletes_finished_jobs_past_retention_postgres() {
        prune_deletes_finished_jobs_past_retention(Backend::Postgres).await;
    }

    #[tokio::test]
    async fn prune_keeps_jobs_when_retention_is_zero_sqlite() {
        prune_keeps_jobs_when_retention_is_zero(Backend::Sqlite).await;
    }

    #[tokio::test]
    async fn prune_keeps_jobs_when_retention_is_zero_postgres() {
        prune_keeps_jobs_when_retention_is_zero(Backend::Postgres).await;
    }
}
