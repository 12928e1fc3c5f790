//! End-to-end tests of tidepost: a real server on a free port over SQLite and PostgreSQL, the
//! built binary as a subprocess, and headless Chromium for the UI. One module per feature;
//! `support` holds what they share.

mod support;

mod account_health;
mod api;
mod api_lists;
mod bad_bodies;
mod browser;
mod browser_compose;
mod browser_instagram;
mod browser_instagram_options;
mod browser_pages;
mod browser_tiktok;
mod cli;
mod client_addr;
mod compose;
mod connect_links;
mod contract;
mod crm;
mod docs;
mod entry_pipeline;
mod error_pages;
mod event_sequences;
mod faults;
mod faults_pg_restart;
mod instagram_options;
mod jobs;
mod media;
mod nul_text;
mod one_time_secrets;
mod openapi;
mod ops;
mod outbound_webhooks;
mod post_redirect_get;
mod processes;
mod provider_trouble;
mod scale_out;
mod security;
mod sessions;
mod setup;
mod sign_in_throttle;
mod ssrf;
mod target_errors;
mod tenancy;
mod unknown_outcome;
mod validate_matches_posts;
