//! The application handle every layer above shares: configuration, database, keyring, the
//! provider clients and the job queue.

use std::sync::Arc;

use tidepost_jobs::Queue;
use tidepost_providers::tiktok::TikTokClient;
use tidepost_store::Db;
use tidepost_vault::Keyring;

use crate::Config;
use crate::providers::{NotConfigured, Providers};

/// Cheap to clone; one per process.
#[derive(Clone)]
pub struct App(Arc<Inner>);

pub struct Inner {
    pub config: Config,
    pub db: Db,
    pub keyring: Keyring,
    pub providers: Providers,
    pub queue: Queue,
    /// Identifies this process in leases (refresh locks).
    pub instance_id: String,
    /// The outbound webhook dispatcher's in-process state (its listener, its send permits).
    pub outbound: crate::outbound::Live,
    /// What follows a stored inbound webhook (its application job), made once per job kind.
    pub(crate) ingest: crate::pipeline::inbound::IngestFollowUps,
    /// Video frames rendered for the frame picker: ffmpeg's permits and the frame cache.
    pub frames: crate::media::frame::Frames,
}

impl std::ops::Deref for App {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl App {
    pub fn new(config: Config, db: Db, keyring: Keyring, providers: Providers) -> Self {
        let queue = Queue::new(db.clone());
        let instance_id = format!(
            "{}-{}",
            std::process::id(),
            &tidepost_domain::new_id()[24..]
        );
        Self(Arc::new(Inner {
            config,
            db,
            keyring,
            providers,
            queue,
            instance_id,
            outbound: crate::outbound::Live::default(),
            ingest: Default::default(),
            frames: Default::default(),
        }))
    }

    /// A handle that does not keep the app alive (for background tasks that should end with it).
    pub fn downgrade(&self) -> std::sync::Weak<Inner> {
        Arc::downgrade(&self.0)
    }

    /// The app behind [`App::downgrade`]'s handle, while it lives.
    pub fn upgrade(weak: &std::sync::Weak<Inner>) -> Option<Self> {
        weak.upgrade().map(Self)
    }

    pub fn tiktok(&self) -> Result<&TikTokClient, NotConfigured> {
        self.providers.tiktok()
    }
}
