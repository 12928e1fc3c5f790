use thiserror::Error;

/// What can go wrong in the store, in words an operator can act on. The database URL never
/// appears here (it may carry a password).
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("unsupported database URL scheme {scheme:?}: use sqlite://PATH or postgres://…")]
    UnsupportedScheme { scheme: String },
    #[error("invalid database URL: {0}")]
    InvalidUrl(String),
    #[error("cannot reach the database ({backend}): {reason}")]
    Unreachable {
        backend: &'static str,
        reason: String,
    },
    #[error(
        "the database has migration {found} which this tidepost binary does not know (it knows up to {known}); \
         upgrade tidepost or point it at another database"
    )]
    NewerSchema { found: i64, known: i64 },
    #[error("the database schema is not up to date: run `tidepost migrate`")]
    NotMigrated,
    #[error("migration failed: {0}")]
    Migrate(String),
    #[error("{what} already exists")]
    Conflict { what: &'static str },
    #[error("database error: {0}")]
    Sqlx(#[from] sqlx::Error),
}

impl StoreError {
    /// True when the error is a unique-constraint violation (two rows with the same key).
    pub fn is_unique_violation(&self) -> bool {
        match self {
            StoreError::Conflict { .. } => true,
            StoreError::Sqlx(sqlx::Error::Database(db)) => db.is_unique_violation(),
            _ => false,
        }
    }
}

impl StoreError {
    /// True when the database refused a text value it cannot store — PostgreSQL takes no NUL
    /// character in text (SQLSTATE 22021) — so the request is at fault, not the server.
    pub fn is_invalid_text(&self) -> bool {
        match self {
            StoreError::Sqlx(sqlx::Error::Database(db)) => {
                matches!(db.code().as_deref(), Some("22021" | "22P05"))
            }
            _ => false,
        }
    }
}

impl StoreError {
    /// True when the database could not be reached or went away under the request (stopped,
    /// restarting, a connection cut, no free connection in time): nothing is wrong with the
    /// request, and it may succeed when tried again shortly.
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Unreachable { .. } => true,
            StoreError::Sqlx(err) => match err {
                sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::Io(_)
                | sqlx::Error::Tls(_)
                | sqlx::Error::WorkerCrashed => true,
                // PostgreSQL: connection exceptions (08xxx) and operator intervention (57P01
                // admin shutdown, 57P02 crash shutdown, 57P03 starting up or shutting down).
                sqlx::Error::Database(db) => db
                    .code()
                    .is_some_and(|code| code.starts_with("08") || code.starts_with("57P0")),
                _ => false,
            },
            _ => false,
        }
    }
}

/// Maps a unique violation to [`StoreError::Conflict`] naming `what`.
pub(crate) fn conflict_as(what: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |err| match &err {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict { what },
        _ => StoreError::Sqlx(err),
    }
}
