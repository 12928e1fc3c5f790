//! tidepost-http
