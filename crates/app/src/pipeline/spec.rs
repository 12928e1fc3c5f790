//! What a post asks of each account it goes to: [`TargetSpec`] (the account, its caption, its
//! platform's options), and [`TargetInput`], one target as its platform's adapter checks it.

use serde::{Deserialize, Serialize};
use tidepost_domain::Platform;

use super::media::{Item, ItemKind};
use crate::platforms::instagram::options::InstagramOptions;
use crate::platforms::threads::options::ThreadsOptions;
use crate::platforms::tiktok::TikTokOptions;

/// One account of a composite post and its overrides.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = PostTargetSpec)]
#[serde(default, deny_unknown_fields)]
pub struct TargetSpec {
    pub account_id: String,
    /// This target's caption instead of the post's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub caption: Option<String>,
    /// TikTok accounts only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tiktok: Option<TikTokOptions>,
    /// Instagram accounts only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instagram: Option<InstagramOptions>,
    /// Threads accounts only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threads: Option<ThreadsOptions>,
}

impl TargetSpec {
    /// The platforms whose options this target gives.
    pub fn option_platforms(&self) -> Vec<Platform> {
        Platform::ALL
            .into_iter()
            .filter(|p| match p {
                Platform::Tiktok => self.tiktok.is_some(),
                Platform::Instagram => self.instagram.is_some(),
                Platform::Threads => self.threads.is_some(),
            })
            .collect()
    }
}

/// One target of a composite post as its platform's adapter checks it
/// (`crate::platforms::prepare_target`).
#[derive(Debug, Clone, Copy)]
pub struct TargetInput<'a> {
    /// The target's caption (its own, or the post's).
    pub caption: &'a str,
    /// The post's media set, and the kind of each item when known.
    pub media: &'a [Item],
    pub kinds: &'a [Option<ItemKind>],
    pub spec: &'a TargetSpec,
}
