//! The social platforms tidepost publishes to.
//!
//! `Platform` is what rows, jobs, API models and templates carry. It is decoded from its text
//! column (`sqlx::Decode`, feature `sqlx`, used by the store's row types) and from requests
//! ([`std::str::FromStr`], serde): an unknown value is an error naming it, never a default.
//! Matches on it in the application crates have no wildcard arm (clippy's
//! `wildcard_enum_match_arm` is denied there), so a new variant makes the compiler list every
//! place that must learn about it: `docs/architecture.md`, "Adding a platform".

use serde::{Deserialize, Serialize};

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    Tiktok,
    Instagram,
    Threads,
}

impl Platform {
    /// Every platform, in the order the UI lists them.
    pub const ALL: [Platform; 3] = [Platform::Tiktok, Platform::Instagram, Platform::Threads];

    /// The value stored in `platform` columns and used in the API and URLs.
    pub fn as_str(self) -> &'static str {
        match self {
            Platform::Tiktok => "tiktok",
            Platform::Instagram => "instagram",
            Platform::Threads => "threads",
        }
    }

    /// The name a person knows it by.
    pub fn display_name(self) -> &'static str {
        match self {
            Platform::Tiktok => "TikTok",
            Platform::Instagram => "Instagram",
            Platform::Threads => "Threads",
        }
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A platform name tidepost does not know.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown platform {:?}: expected one of {}", .0, expected())]
pub struct UnknownPlatform(pub String);

fn expected() -> String {
    Platform::ALL
        .iter()
        .map(|p| format!("{:?}", p.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

impl std::str::FromStr for Platform {
    type Err = UnknownPlatform;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Platform::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| UnknownPlatform(s.to_string()))
    }
}

/// A `platform` text column: decoded from its text, an unknown value an error naming it (the
/// row's read fails with "error occurred while decoding column platform: unknown platform
/// …"), never another platform.
#[cfg(feature = "sqlx")]
impl<DB: sqlx::Database> sqlx::Type<DB> for Platform
where
    String: sqlx::Type<DB>,
{
    fn type_info() -> DB::TypeInfo {
        <String as sqlx::Type<DB>>::type_info()
    }

    fn compatible(ty: &DB::TypeInfo) -> bool {
        <String as sqlx::Type<DB>>::compatible(ty)
    }
}

#[cfg(feature = "sqlx")]
impl<'r, DB: sqlx::Database> sqlx::Decode<'r, DB> for Platform
where
    String: sqlx::Decode<'r, DB>,
{
    fn decode(value: DB::ValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
        let text = <String as sqlx::Decode<'r, DB>>::decode(value)?;
        Ok(text.parse::<Platform>()?)
    }
}

impl TryFrom<String> for Platform {
    type Error = UnknownPlatform;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Platform> for String {
    fn from(p: Platform) -> Self {
        p.as_str().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_ones_are_named() {
        for p in Platform::ALL {
            assert_eq!(p.as_str().parse::<Platform>(), Ok(p));
            assert_eq!(Platform::try_from(p.as_str().to_string()), Ok(p));
            assert_eq!(serde_json::to_value(p).unwrap(), p.as_str());
        }
        let err = "youtube".parse::<Platform>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown platform \"youtube\": expected one of \"tiktok\", \"instagram\", \"threads\""
        );
        assert!("TikTok".parse::<Platform>().is_err());
        assert!(serde_json::from_value::<Platform>(serde_json::json!("")).is_err());
    }
}
