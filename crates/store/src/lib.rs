//! tidepost-store
