//! The application handle every layer above shares: configuration, database and keyring.

use std::sync::Arc;

use tidepost_store::Db;
use tidepost_vault::Keyring;

use crate::Config;

/// Cheap to clone; one per process.
#[derive(Clone)]
pub struct App(Arc<Inner>);

pub struct Inner {
    pub config: Config,
    pub db: Db,
    pub keyring: Keyring,
}

impl std::ops::Deref for App {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl App {
    pub fn new(config: Config, db: Db, keyring: Keyring) -> Self {
        Self(Arc::new(Inner {
            config,
            db,
            keyring,
        }))
    }
}
