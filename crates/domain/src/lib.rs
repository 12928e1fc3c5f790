//! tidepost's domain: plain types and rules with no I/O.

pub mod ids;
pub mod platform;
pub mod publish;
pub mod roles;
pub mod time;

pub use ids::new_id;
pub use platform::Platform;
pub use publish::{PostSummary, TargetState};
pub use roles::{Permission, Role};
pub use time::now_ms;
