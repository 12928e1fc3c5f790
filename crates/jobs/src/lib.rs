//! tidepost-jobs
