//! End-to-end tests of tidepost: a real server on a free port over SQLite and PostgreSQL, the
//! built binary as a subprocess, and headless Chromium for the UI. One module per feature;
//! `support` holds what they share.

mod support;

mod api;
mod api_lists;
mod browser;
mod browser_compose;
mod browser_instagram;
mod browser_instagram_options;
mod browser_pages;
mod browser_tiktok;
mod cli;
mod client_addr;
mod compose;
mod contract;
mod crm;
mod docs;
mod entry_pipeline;
mod faults;
mod faults_pg_restart;
mod instagram_options;
mod jobs;
mod media;
mod openapi;
mod ops;
mod outbound_webhooks;
mod processes;
mod scale_out;
mod security;
mod sessions;
mod setup;
mod ssrf;
mod tenancy;
mod unknown_outcome;
mod validate_matches_posts;
