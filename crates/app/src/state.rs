//! The application handle every layer above shares: configuration and database.

use std::sync::Arc;

use tidepost_store::Db;

use crate::Config;

/// Cheap to clone; one per process.
#[derive(Clone)]
pub struct App(Arc<Inner>);

pub struct Inner {
    pub config: Config,
    pub db: Db,
}

impl std::ops::Deref for App {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl App {
    pub fn new(config: Config, db: Db) -> Self {
        Self(Arc::new(Inner { config, db }))
    }
}
