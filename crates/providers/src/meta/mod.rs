//! A typed client of Meta's Facebook Login, Instagram Login and Graph APIs (in progress).

pub mod usage;

pub use usage::Usage;
