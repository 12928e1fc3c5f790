//! tidepost's application services: the configuration, access (users, sessions, API keys), and
//! the services the HTTP and CLI layers call. Knows nothing of HTTP.

pub mod access;
pub mod compose;
pub mod config;
pub mod connect;
pub mod crm;
pub mod instagram;
pub mod keys;
pub mod media;
pub mod net_guard;
pub mod outbound;
pub mod providers;
pub mod proxies;
pub mod publish;
mod state;
pub mod tokens;
pub mod usage;
pub mod work;

pub use config::Config;
pub use state::App;
