//! The TikTok app as the emulator sees it: credentials, lifetimes, caps, delays and the
//! webhook callback. Everything but the credentials can also be changed at run time through
//! `PUT /_emulator/tiktok/settings` with a partial JSON object of these fields.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub client_key: String,
    pub client_secret: String,
    /// Where webhooks are posted; `None` sends none.
    pub webhook_url: Option<String>,
    pub access_token_ttl_secs: u64,
    pub refresh_token_ttl_secs: u64,
    /// How long an authorization code may be redeemed.
    pub code_ttl_secs: u64,
    /// Redirect URIs the app registered. Empty: any absolute http(s) URI without query or
    /// fragment is accepted.
    pub registered_redirect_uris: Vec<String>,
    /// URL-prefix properties (`https://host/path/`) or domain properties (`example.com`, which
    /// also covers subdomains) that PULL_FROM_URL media must live under.
    pub verified_url_prefixes: Vec<String>,
    /// The client has not passed TikTok's audit: direct posts only to private accounts, forced
    /// to `SELF_ONLY`, and at most `unaudited_user_cap` distinct creators per 24 h.
    pub unaudited: bool,
    /// Direct posts per creator per rolling 24 h.
    pub direct_post_daily_cap: u32,
    /// Pending inbox shares (not yet posted by the creator) per creator per rolling 24 h.
    pub pending_inbox_cap: u32,
    /// Distinct creators an unaudited client may direct-post for per rolling 24 h.
    pub unaudited_user_cap: u32,
    /// Time between the last byte received and the final status.
    pub processing_delay_ms: u64,
    /// Time between `PUBLISH_COMPLETE` and the public post id (public posts only).
    pub moderation_delay_ms: u64,
    pub upload_url_ttl_secs: u64,
    /// Answer OAuth errors with HTTP 200, as TikTok was seen doing, instead of 4xx.
    pub oauth_errors_http_200: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            client_key: "sandbox-tiktok-client-key".into(),
            client_secret: "sandbox-tiktok-client-secret".into(),
            webhook_url: None,
            access_token_ttl_secs: 86_400,
            refresh_token_ttl_secs: 31_536_000,
            code_ttl_secs: 300,
            registered_redirect_uris: Vec::new(),
            verified_url_prefixes: vec!["https://media.tidepost.example/".into()],
            unaudited: false,
            direct_post_daily_cap: 15,
            pending_inbox_cap: 5,
            unaudited_user_cap: 5,
            processing_delay_ms: 1_000,
            moderation_delay_ms: 2_000,
            upload_url_ttl_secs: 3_600,
            oauth_errors_http_200: false,
        }
    }
}

impl Config {
    /// Applies a partial JSON object of settings; unknown fields and wrong types are refused.
    pub fn patched(&self, patch: serde_json::Value) -> Result<Config, String> {
        let serde_json::Value::Object(patch) = patch else {
            return Err("settings must be a JSON object".into());
        };
        let mut current = serde_json::to_value(self).map_err(|e| e.to_string())?;
        if let Some(fields) = current.as_object_mut() {
            for (key, value) in patch {
                if !fields.contains_key(&key) {
                    return Err(format!("unknown setting {key:?}"));
                }
                fields.insert(key, value);
            }
        }
        serde_json::from_value(current).map_err(|e| e.to_string())
    }

    /// Whether `url` lies under one of the verified URL-prefix or domain properties.
    pub fn url_is_verified(&self, url: &str) -> bool {
        self.verified_url_prefixes
            .iter()
            .any(|property| property_covers(property, url))
    }
}

fn property_covers(property: &str, url: &str) -> bool {
    if property.contains("://") {
        return url.starts_with(property);
    }
    let Some(host) = url::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
    else {
        return false;
    };
    let domain = property.trim_matches('.').to_ascii_lowercase();
    host == domain || host.ends_with(&format!(".{domain}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_and_domains() {
        let config = Config {
            verified_url_prefixes: vec![
                "https://example.com/videos/user/".into(),
                "static.example.org".into(),
            ],
            ..Config::default()
        };
        assert!(config.url_is_verified("https://example.com/videos/user/123/x.mp4"));
        assert!(!config.url_is_verified("https://example.com/videos/2023/user/x.mp4"));
        assert!(config.url_is_verified("https://video.static.example.org/a.mp4"));
        assert!(!config.url_is_verified("https://example.org/a.mp4"));
    }

    #[test]
    fn patch_refuses_unknown_fields() {
        let config = Config::default();
        assert!(config.patched(serde_json::json!({"nope": 1})).is_err());
        let patched = config
            .patched(serde_json::json!({"unaudited": true, "webhook_url": "http://x/"}))
            .unwrap();
        assert!(patched.unaudited);
        assert_eq!(patched.webhook_url.as_deref(), Some("http://x/"));
    }
}
