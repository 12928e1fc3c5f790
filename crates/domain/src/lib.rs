//! tidepost-domain
