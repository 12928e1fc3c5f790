//! The media library: files stored once per workspace by SHA-256, probed for what they are,
//! and checked against each provider's rules.
//!
//! - [`probe`]: what a file is, from its bytes (images by their headers, videos with ffprobe).
//! - [`rules`]: the providers' media rules over probed metadata, every violation at once.

pub mod probe;
pub mod rules;

pub use probe::{MediaInfo, MediaKind, ProbeError, Prober};
