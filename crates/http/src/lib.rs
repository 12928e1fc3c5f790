#![deny(clippy::wildcard_enum_match_arm)]
//! tidepost's HTTP surface: the web UI (`ui`), the REST API under `/api/v1` (`api`), and the
//! operational routes (`ops`: health, readiness, metrics). [`Server`] binds its own listener
//! (port 0 in tests), optionally terminates TLS, and serves until told to stop.

pub mod api;
mod assets;
pub mod auth;
mod bodies;
pub mod client_addr;
pub mod connect_links;
pub mod error;
pub mod instagram;
pub mod oauth;
mod ops;
pub mod roles;
mod server;
mod state;
pub mod ui;
pub mod webhooks;
pub mod widget;
pub mod zone;

pub use server::{DEFAULT_BODY_LIMIT, Server, router};
pub use state::{HttpState, SetupToken};
