//! The connection pool, the dialect it speaks, and migrations.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::{MigrateError, Migrator};
use sqlx::{AnyPool, Executor};

use crate::{Result, StoreError};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("migrations/postgres");

/// Which SQL dialect the pool speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    pub fn name(self) -> &'static str {
        match self {
            Dialect::Sqlite => "SQLite",
            Dialect::Postgres => "PostgreSQL",
        }
    }

    /// How many connections one process opens at most unless told otherwise: SQLite has one
    /// writer at a time, so more would only wait; PostgreSQL's default server limit of 100 fits
    /// six processes of 16.
    pub fn default_max_connections(self) -> u32 {
        match self {
            Dialect::Sqlite => 8,
            Dialect::Postgres => 16,
        }
    }

    fn migrator(self) -> &'static Migrator {
        match self {
            Dialect::Sqlite => &SQLITE_MIGRATIONS,
            Dialect::Postgres => &POSTGRES_MIGRATIONS,
        }
    }
}

/// Where the schema stands compared with what this binary knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SchemaState {
    Current,
    /// Some migrations this binary knows are not applied yet.
    Behind {
        applied: i64,
        known: i64,
    },
    /// The database has migrations this binary does not know (a newer tidepost ran on it).
    Newer {
        found: i64,
        known: i64,
    },
}

/// A handle on the database. Cheap to clone; clones share the pool and the [`Db::shared`]
/// state.
#[derive(Clone, Debug)]
pub struct Db {
    pool: AnyPool,
    dialect: Dialect,
    shared: Arc<Shared>,
}

/// State that belongs to one database handle and all its clones (a group commit's waiting
/// writes, for one), one value per type, made on first use.
#[derive(Default)]
struct Shared(Mutex<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>);

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Shared")
    }
}

impl Db {
    /// Connects to `url`: `sqlite://PATH` (the file is created if missing) or
    /// `postgres://…` / `postgresql://…`, with the default pool size of its backend.
    pub async fn connect(url: &str) -> Result<Self> {
        Self::connect_with(url, None).await
    }

    /// [`Db::connect`] with at most `max_connections` open at once (default:
    /// [`Dialect::default_max_connections`]). On PostgreSQL every process holds up to this
    /// many of the server's `max_connections`, so N servers and M workers need
    /// (N + M) × this below it.
    pub async fn connect_with(url: &str, max_connections: Option<u32>) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let (dialect, url) = normalize_url(url)?;
        let options =
            AnyConnectOptions::from_str(&url).map_err(|e| StoreError::InvalidUrl(e.to_string()))?;
        let pool_options = match dialect {
            Dialect::Sqlite => {
                AnyPoolOptions::new().after_connect(|conn, _meta| {
                    Box::pin(async move {
                        // temp_store=MEMORY: a multi-row insert that may skip
                        // conflicting rows keeps a statement journal, which SQLite would
                        // otherwise write to a new temporary file (created, then deleted)
                        // for every such statement: that file churn was the largest cost
                        // of a grouped webhook commit.
                        //
                        // wal_autocheckpoint=0: the WAL is copied back into the database
                        // by a background task (see `checkpoint_in_background`), not by
                        // whichever commit crosses the threshold; that commit (and every
                        // write queued behind it) used to wait for the copy and its fsync.
                        conn.execute(
                            "PRAGMA journal_mode=WAL; PRAGMA busy_timeout=10000; \
                             PRAGMA foreign_keys=ON; PRAGMA synchronous=NORMAL; \
                             PRAGMA temp_store=MEMORY; PRAGMA wal_autocheckpoint=0;",
                        )
                        .await?;
                        Ok(())
                    })
                })
            }
            Dialect::Postgres => AnyPoolOptions::new(),
        };
        let pool = pool_options
            .max_connections(max_connections.unwrap_or(dialect.default_max_connections()))
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options)
            .await
            .map_err(|e| StoreError::Unreachable {
                backend: dialect.name(),
                reason: describe(&e),
            })?;
        let db = Self {
            pool,
            dialect,
            shared: Arc::default(),
        };
        if dialect == Dialect::Sqlite {
            checkpoint_in_background(db.pool.clone(), Arc::downgrade(&db.shared));
        }
        Ok(db)
    }

    /// The one `T` of this database handle and its clones, made with `T::default()` on first
    /// use: a home for per-database state such as a group commit's queue, so that it is
    /// neither a process-wide global nor shared between two databases of one process.
    pub fn shared<T: Default + Send + Sync + 'static>(&self) -> Arc<T> {
        let mut map = self.shared.0.lock().unwrap_or_else(|p| p.into_inner());
        let entry = map
            .entry(TypeId::of::<T>())
            .or_insert_with(|| Arc::new(T::default()));
        Arc::clone(entry)
            .downcast::<T>()
            .expect("the entry of a type holds that type")
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Starts a transaction that will write. On SQLite it takes the write lock at once
    /// (`BEGIN IMMEDIATE`), so two writers queue on `busy_timeout` instead of failing when a
    /// read lock is upgraded.
    pub async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>> {
        let tx = match self.dialect {
            Dialect::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Dialect::Postgres => self.pool.begin().await?,
        };
        Ok(tx)
    }

    /// Applies every migration this binary knows. Refuses a database that has newer ones.
    pub async fn migrate(&self) -> Result<()> {
        if let SchemaState::Newer { found, known } = self.schema_state().await? {
            return Err(StoreError::NewerSchema { found, known });
        }
        self.dialect
            .migrator()
            .run(&self.pool)
            .await
            .map_err(|e| match e {
                MigrateError::VersionMissing(found) => StoreError::NewerSchema {
                    found,
                    known: self.known_version(),
                },
                other => StoreError::Migrate(other.to_string()),
            })
    }

    /// The newest migration version this binary knows.
    pub fn known_version(&self) -> i64 {
        self.dialect
            .migrator()
            .iter()
            .map(|m| m.version)
            .max()
            .unwrap_or(0)
    }

    /// Compares the applied migrations with the ones this binary knows.
    pub async fn schema_state(&self) -> Result<SchemaState> {
        let known = self.known_version();
        let table_exists: bool = match self.dialect {
            Dialect::Sqlite => {
                sqlx::query_scalar::<_, i64>(
                    "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
                )
                .fetch_one(&self.pool)
                .await?
                    > 0
            }
            Dialect::Postgres => {
                sqlx::query_scalar::<_, i64>(
                    "SELECT COUNT(*) FROM information_schema.tables \
                     WHERE table_schema = current_schema() AND table_name = '_sqlx_migrations'",
                )
                .fetch_one(&self.pool)
                .await?
                    > 0
            }
        };
        if !table_exists {
            return Ok(SchemaState::Behind { applied: 0, known });
        }
        let versions: Vec<i64> = sqlx::query_scalar(
            "SELECT version FROM _sqlx_migrations WHERE success = TRUE ORDER BY version",
        )
        .fetch_all(&self.pool)
        .await?;
        let applied = versions.last().copied().unwrap_or(0);
        if let Some(found) = versions.iter().copied().find(|v| *v > known) {
            return Ok(SchemaState::Newer { found, known });
        }
        let all_known_applied = self
            .dialect
            .migrator()
            .iter()
            .all(|m| versions.contains(&m.version));
        Ok(if all_known_applied {
            SchemaState::Current
        } else {
            SchemaState::Behind { applied, known }
        })
    }

    /// Fails with [`StoreError::NotMigrated`] or [`StoreError::NewerSchema`] unless the schema is current.
    pub async fn ensure_current(&self) -> Result<()> {
        match self.schema_state().await? {
            SchemaState::Current => Ok(()),
            SchemaState::Behind { .. } => Err(StoreError::NotMigrated),
            SchemaState::Newer { found, known } => Err(StoreError::NewerSchema { found, known }),
        }
    }

    /// A trivial round trip, for readiness checks.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Checks the scheme and, for SQLite, asks for the file to be created when missing.
fn normalize_url(url: &str) -> Result<(Dialect, String)> {
    let scheme = url.split_once(':').map(|(s, _)| s).unwrap_or("");
    match scheme {
        "sqlite" => {
            let mut url = url.to_string();
            if !url.contains("mode=") {
                url.push(if url.contains('?') { '&' } else { '?' });
                url.push_str("mode=rwc");
            }
            if let Some(path) = sqlite_path(&url)
                && let Some(parent) = std::path::Path::new(&path).parent()
                && !parent.as_os_str().is_empty()
            {
                std::fs::create_dir_all(parent).map_err(|e| StoreError::Unreachable {
                    backend: "SQLite",
                    reason: format!("cannot create the folder {}: {e}", parent.display()),
                })?;
            }
            Ok((Dialect::Sqlite, url))
        }
        "postgres" | "postgresql" => Ok((Dialect::Postgres, url.to_string())),
        "" => Err(StoreError::InvalidUrl(
            "expected sqlite://PATH or postgres://…".into(),
        )),
        other => Err(StoreError::UnsupportedScheme {
            scheme: other.to_string(),
        }),
    }
}

fn sqlite_path(url: &str) -> Option<String> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next()?;
    (!path.is_empty() && path != ":memory:").then(|| path.to_string())
}

/// Turns a connection error into a short reason without the URL (which may hold a password).
fn describe(err: &sqlx::Error) -> String {
    match err {
        sqlx::Error::Io(io) => io.to_string(),
        sqlx::Error::PoolTimedOut => "timed out connecting".to_string(),
        sqlx::Error::Database(db) => db.message().to_string(),
        other => other.to_string(),
    }
}

/// How often the WAL of a SQLite database is copied back into it.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);

/// Copies a SQLite database's WAL back into the database every [`CHECKPOINT_EVERY`]
/// (`PASSIVE`: it never waits for, nor blocks, a writer, and the WAL restarts from its
/// beginning once everything in it is copied), until every handle of the database is dropped
/// or its pool closed. Connections are opened with `wal_autocheckpoint=0`, so no commit pays
/// for a checkpoint. SQLite also checkpoints when its last connection closes.
fn checkpoint_in_background(pool: AnyPool, alive: std::sync::Weak<Shared>) {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(CHECKPOINT_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            if alive.strong_count() == 0 || pool.is_closed() {
                return;
            }
            if let Err(err) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                .execute(&pool)
                .await
            {
                if pool.is_closed() {
                    return;
                }
                tracing::warn!("a SQLite checkpoint failed (tried again shortly): {err}");
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn shared_state_is_one_per_database_and_its_clones() {
        #[derive(Default)]
        struct Counter(std::sync::atomic::AtomicUsize);
        let dir = std::env::temp_dir().join(format!("tidepost-shared-{}", std::process::id()));
        let a = Db::connect(&format!("sqlite://{}/a.db", dir.display()))
            .await
            .unwrap();
        let b = Db::connect(&format!("sqlite://{}/b.db", dir.display()))
            .await
            .unwrap();
        a.shared::<Counter>()
            .0
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let seen = |db: &Db| {
            db.shared::<Counter>()
                .0
                .load(std::sync::atomic::Ordering::SeqCst)
        };
        assert_eq!((seen(&a.clone()), seen(&b)), (1, 0));
        a.close().await;
        b.close().await;
        let _ = std::fs::remove_dir_all(dir);
    }

    // The pool opens no more connections than it was given, and its backend's default when
    // given none: a connection past the limit waits for one to be returned.
    #[tokio::test]
    async fn the_pool_size_is_the_one_given() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/p.db", dir.path().display());
        let default = Db::connect(&url).await.unwrap();
        assert_eq!(default.pool().options().get_max_connections(), 8);
        default.close().await;

        let db = Db::connect_with(&url, Some(2)).await.unwrap();
        let first = db.pool().acquire().await.unwrap();
        let second = db.pool().acquire().await.unwrap();
        let third = tokio::time::timeout(Duration::from_millis(300), db.pool().acquire()).await;
        assert!(
            third.is_err(),
            "a third connection was opened past the limit of 2"
        );
        drop(first);
        let third = tokio::time::timeout(Duration::from_secs(5), db.pool().acquire()).await;
        assert!(third.is_ok(), "a returned connection was not handed on");
        drop((second, third));
        db.close().await;
    }

    // Every SQLite connection is set up for the server's write pattern: WAL, and temporary
    // data (statement journals of grouped inserts) in memory, not in new files.
    #[tokio::test]
    async fn sqlite_connections_are_tuned() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::connect(&format!("sqlite://{}/t.db", dir.path().display()))
            .await
            .unwrap();
        let mut conn = db.pool().acquire().await.unwrap();
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        let temp_store: i64 = sqlx::query_scalar("PRAGMA temp_store")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        assert_eq!((mode.as_str(), temp_store), ("wal", 2), "2 is MEMORY");
        drop(conn);

        // No commit checkpoints; the background task does, so the WAL is reused from its
        // start instead of growing with every write (11 rounds would make it 11 times larger).
        sqlx::query("CREATE TABLE t (v TEXT)")
            .execute(db.pool())
            .await
            .unwrap();
        let wal = dir.path().join("t.db-wal");
        let filler = "x".repeat(4000);
        let write_round = || async {
            for _ in 0..50 {
                sqlx::query("INSERT INTO t (v) VALUES ($1)")
                    .bind(&filler)
                    .execute(db.pool())
                    .await
                    .unwrap();
            }
        };
        write_round().await;
        tokio::time::sleep(CHECKPOINT_EVERY * 2).await;
        let size = std::fs::metadata(&wal).unwrap().len();
        for _ in 0..10 {
            tokio::time::sleep(CHECKPOINT_EVERY * 2).await;
            write_round().await;
        }
        let grown = std::fs::metadata(&wal).unwrap().len();
        assert!(
            grown <= size * 2,
            "the WAL grew from {size} to {grown} bytes: nothing copies it back"
        );
        db.close().await;
    }

    #[test]
    fn schemes() {
        assert_eq!(
            normalize_url("sqlite://a.db").unwrap(),
            (Dialect::Sqlite, "sqlite://a.db?mode=rwc".into())
        );
        assert_eq!(
            normalize_url("postgres://x@h/db").unwrap().0,
            Dialect::Postgres
        );
        assert!(matches!(
            normalize_url("mysql://h/db"),
            Err(StoreError::UnsupportedScheme { .. })
        ));
        assert!(matches!(
            normalize_url("nonsense"),
            Err(StoreError::InvalidUrl(_))
        ));
    }
}
