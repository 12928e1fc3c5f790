//! tidepost's application services: the configuration, access (users, sessions, API keys), and
//! the services the HTTP and CLI layers call. Knows nothing of HTTP.

pub mod access;
pub mod config;
pub mod keys;
mod state;

pub use config::Config;
pub use state::App;
