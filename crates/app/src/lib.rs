#![deny(clippy::wildcard_enum_match_arm)]
//! tidepost's application services: the configuration, access (users, sessions, API keys), and
//! the services the HTTP and CLI layers call. Knows nothing of HTTP.
//!
//! Publishing is one pipeline ([`pipeline`], entered through [`compose`]) with one adapter per
//! platform behind [`platforms`]; `docs/architecture.md` is the map.

pub mod access;
pub mod compose;
pub mod config;
pub mod connect;
pub mod connect_links;
pub mod crm;
pub mod keys;
pub mod mail;
pub mod media;
pub mod members;
pub mod net_guard;
pub mod outbound;
pub mod pipeline;
pub mod platforms;
pub mod providers;
pub mod proxies;
mod state;
pub mod tokens;
pub mod usage;
pub mod widget;
pub mod work;

pub use config::Config;
pub use platforms::{instagram, threads, tiktok};
pub use state::App;
