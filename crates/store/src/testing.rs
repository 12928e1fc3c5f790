//! Fresh databases for tests: a SQLite file in a temporary folder, or a PostgreSQL schema of its
//! own in the database named by `TIDEPOST_TEST_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`). PostgreSQL tests fail, never skip, when the
//! server cannot be reached: CI must prove both backends.

use std::time::{SystemTime, UNIX_EPOCH};

use rand::Rng;
use sqlx::Connection;

use crate::Db;

pub const DEFAULT_TEST_PG_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// Test schemas older than this are dropped by the next test run (left over by killed runs).
const STALE_AFTER_SECS: u64 = 3 * 3600;

/// Which backend a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A migrated, empty database that lives as long as this value (SQLite) or until the next
/// run's clean-up (PostgreSQL schemas are named with their creation time).
pub struct TestDb {
    pub db: Db,
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    pub async fn new(backend: Backend) -> TestDb {
        match backend {
            Backend::Sqlite => Self::sqlite().await,
            Backend::Postgres => Self::postgres().await,
        }
    }

    pub async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("temporary folder");
        let url = format!("sqlite://{}", dir.path().join("test.db").display());
        let db = Db::connect(&url).await.expect("open SQLite test database");
        db.migrate().await.expect("migrate SQLite test database");
        TestDb {
            db,
            url,
            _dir: Some(dir),
        }
    }

    pub async fn postgres() -> TestDb {
        let url = Self::postgres_schema_url().await;
        let db = Db::connect(&url)
            .await
            .expect("connect to the PostgreSQL test schema");
        db.migrate().await.expect("migrate PostgreSQL test schema");
        TestDb {
            db,
            url,
            _dir: None,
        }
    }

    /// Creates a fresh, empty schema and returns a URL whose connections use it.
    pub async fn postgres_schema_url() -> String {
        let base = std::env::var("TIDEPOST_TEST_DATABASE_URL")
            .unwrap_or_else(|_| DEFAULT_TEST_PG_URL.to_string());
        let mut admin = sqlx::PgConnection::connect(&base)
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "PostgreSQL tests need a server ({e}); start it with \
                 `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start` \
                 or set TIDEPOST_TEST_DATABASE_URL"
                )
            });
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock")
            .as_secs();
        drop_stale_schemas(&mut admin, now).await;
        let schema = format!("tp_test_{now}_{:08x}", rand::rng().random::<u32>());
        sqlx::query(&format!("CREATE SCHEMA {schema}"))
            .execute(&mut admin)
            .await
            .expect("create test schema");
        let _ = admin.close().await;
        let sep = if base.contains('?') { '&' } else { '?' };
        format!("{base}{sep}options=-c%20search_path%3D{schema}")
    }
}

async fn drop_stale_schemas(admin: &mut sqlx::PgConnection, now: u64) {
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT nspname::text FROM pg_namespace WHERE nspname LIKE 'tp\\_test\\_%'",
    )
    .fetch_all(&mut *admin)
    .await
    .unwrap_or_default();
    for name in names {
        let created = name
            .split('_')
            .nth(2)
            .and_then(|t| t.parse::<u64>().ok())
            .unwrap_or(now);
        if now.saturating_sub(created) > STALE_AFTER_SECS {
            let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"))
                .execute(&mut *admin)
                .await;
        }
    }
}

/// Declares one async test body that runs on both backends:
///
/// ```ignore
/// tidepost_store::both_backends!(creates_a_user, |db: Db| async move { … });
/// ```
///
/// expands to a module `creates_a_user` with tests `sqlite` and `postgres`.
#[macro_export]
macro_rules! both_backends {
    ($name:ident, $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test]
            async fn sqlite() {
                let test_db = $crate::testing::TestDb::sqlite().await;
                ($body)(test_db.db.clone()).await;
            }

            #[tokio::test]
            async fn postgres() {
                let test_db = $crate::testing::TestDb::postgres().await;
                ($body)(test_db.db.clone()).await;
            }
        }
    };
}
