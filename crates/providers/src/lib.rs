//! tidepost-providers
