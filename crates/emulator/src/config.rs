//! What the emulator is told at start: app credentials, where to send webhooks, lifetimes and caps.

use std::path::PathBuf;

use crate::{meta, threads, tiktok};

#[derive(Debug, Clone, Default)]
pub struct EmulatorConfig {
    /// Folder for received upload bytes. `None`: a temporary folder removed at exit.
    pub data_dir: Option<PathBuf>,
    /// The consent pages approve at once, picking the first fixture account (for tests).
    pub auto_approve: bool,
    pub tiktok: tiktok::Config,
    pub meta: meta::Config,
    pub threads: threads::Config,
}
