//! tidepost-vault
