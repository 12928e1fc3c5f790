//! tidepost-app
