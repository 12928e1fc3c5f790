//! tidepost's store: one repository API over SQLite (the default, one instance) and PostgreSQL
//! (many instances on one database).
//!
//! Queries go through `sqlx::Any` and are written once, with `$1`-style parameters that both
//! backends accept; the few statements whose SQL differs by dialect branch on [`Dialect`].
//! Timestamps are `BIGINT` milliseconds since the epoch and ids are UUIDv7 text, so every
//! column maps to the same Rust type on both backends. Migrations live in one folder per
//! dialect with aligned names (`migrations/sqlite/0001_…` beside `migrations/postgres/0001_…`).
//!
//! Every table that holds tenant data has a `workspace_id`, and every repository function that
//! reads or writes tenant data takes the workspace id and filters by it.

pub mod accounts;
pub mod allowed_origins;
pub mod api_keys;
pub mod connect_links;
pub mod crm;
mod db;
pub mod drafts;
mod error;
pub mod events;
pub mod idempotency;
pub mod inbound_events;
pub mod instagram;
pub mod invites;
pub mod limits;
pub mod login_attempts;
pub mod media;
pub mod multi_row;
pub mod oauth_states;
pub mod post_comments;
pub mod post_history;
pub mod posts;
pub mod sessions;
#[cfg(feature = "testing")]
pub mod testing;
pub mod threads;
pub mod uploads;
pub mod users;
pub mod webhook_deliveries;
pub mod webhook_endpoints;
pub mod workspaces;

pub use db::{Db, Dialect, SchemaState};
pub use error::StoreError;

pub type Result<T, E = StoreError> = std::result::Result<T, E>;
