//! Embedding tidepost in a host application: the workspace's **allowed origins** and **connect
//! links**.
//!
//! A host (a creator CRM) asks for a link ([`create`]) naming the platforms offered, its own id
//! for the creator (`external_ref`), where to send the creator back (`return_url`, whose origin
//! must be one of the workspace's allowed origins) and, to re-authorize an account, which one.
//! The link opens a hosted page that needs no tidepost login ([`open`]); choosing a platform
//! spends the link ([`start`], single use, atomic) and starts that platform's own consent flow
//! with an OAuth state that carries the link, so the existing callbacks finish into it
//! (`connect::announce_connected` stamps `external_ref` and records the link's status). The
//! creator ends on `return_url` with `account_id`, `external_ref`, `status` and, when it did not
//! work, `error` ([`return_url`]). Only the SHA-256 of a link's token is stored.

use tidepost_domain::{Platform, new_id, now_ms};
use tidepost_store::connect_links::{self, ConnectLink, Refusal};
use tidepost_store::{StoreError, accounts, allowed_origins, workspaces};

use crate::App;
use crate::access::{random_token, sha256_hex};
use crate::connect::{ConnectError, Initiator};
use crate::platforms::{self, ConnectChoice};

/// A link lasts this long unless the host says otherwise.
pub const DEFAULT_EXPIRES_IN_SECS: i64 = 3600;
/// The shortest and the longest a link may last.
pub const MIN_EXPIRES_IN_SECS: i64 = 60;
pub const MAX_EXPIRES_IN_SECS: i64 = 7 * 24 * 3600;
/// The longest `external_ref` (characters).
pub const MAX_EXTERNAL_REF: usize = 255;
/// The longest `return_url` (characters).
pub const MAX_RETURN_URL: usize = 2048;
/// The most origins a workspace keeps.
pub const MAX_ORIGINS: usize = 50;

/// A request refused: the field (as the request named it), a stable rule and a message a
/// person can act on.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("{field}: {message}")]
    Invalid {
        field: String,
        rule: &'static str,
        message: String,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn invalid(field: impl Into<String>, rule: &'static str, message: impl Into<String>) -> LinkError {
    LinkError::Invalid {
        field: field.into(),
        rule,
        message: message.into(),
    }
}

/// Whether `host` is this machine (plain http is allowed for it).
fn is_local(host: &url::Host<&str>) -> bool {
    match host {
        url::Host::Domain(d) => *d == "localhost" || d.ends_with(".localhost"),
        url::Host::Ipv4(ip) => ip.is_loopback(),
        url::Host::Ipv6(ip) => ip.is_loopback(),
    }
}

/// An origin as the workspace stores it (`https://app.example.com`, `http://localhost:3000`):
/// scheme, host and port only, lower-cased, default port left out. `https` is required except
/// for localhost, or anywhere in sandbox mode. The error says which rule it broke.
pub fn normalize_origin(text: &str, sandbox: bool) -> Result<String, (&'static str, String)> {
    let text = text.trim();
    let url = url::Url::parse(text).map_err(|_| {
        (
            "not_an_origin",
            format!("{text:?} is not an origin: write it as https://host or https://host:port"),
        )
    })?;
    let host = url.host().ok_or_else(|| {
        (
            "not_an_origin",
            format!("{text:?} has no host: write it as https://host or https://host:port"),
        )
    })?;
    match url.scheme() {
        "https" => {}
        "http" if sandbox || is_local(&host) => {}
        "http" => {
            return Err((
                "https_required",
                format!(
                    "{text:?} uses http: only https origins are allowed (http only for localhost)"
                ),
            ));
        }
        other => {
            return Err((
                "scheme",
                format!("{text:?} uses {other}: an origin is https://host[:port]"),
            ));
        }
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err((
            "credentials",
            format!("{text:?} holds a user name or password: an origin has none"),
        ));
    }
    let bare = text.trim_end_matches('/');
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() || bare.ends_with('/')
    {
        return Err((
            "path",
            format!(
                "{text:?} has a path, query or fragment: an origin is only scheme, host and port ({})",
                url.origin().ascii_serialization()
            ),
        ));
    }
    Ok(url.origin().ascii_serialization())
}

/// The workspace's allowed origins, in the order given.
pub async fn origins(app: &App, workspace_id: &str) -> Result<Vec<String>, StoreError> {
    allowed_origins::list(&app.db, workspace_id).await
}

/// Replaces the workspace's allowed origins, each checked and normalized (duplicates dropped).
/// `field` names the list in refusals (`origins[2]`).
pub async fn set_origins(
    app: &App,
    workspace_id: &str,
    field: &str,
    texts: &[String],
) -> Result<Vec<String>, LinkError> {
    if texts.len() > MAX_ORIGINS {
        return Err(invalid(
            field,
            "too_many",
            format!("at most {MAX_ORIGINS} origins"),
        ));
    }
    let mut origins: Vec<String> = Vec::new();
    for (i, text) in texts.iter().enumerate() {
        let origin = normalize_origin(text, app.config.sandbox)
            .map_err(|(rule, message)| invalid(format!("{field}[{i}]"), rule, message))?;
        if !origins.contains(&origin) {
            origins.push(origin);
        }
    }
    allowed_origins::replace(&app.db, workspace_id, &origins).await?;
    Ok(origins)
}

/// What a host asks for.
#[derive(Debug, Clone, Default)]
pub struct NewLink {
    /// `tiktok`, `instagram`; none: every platform (or the reconnected account's).
    pub platforms: Option<Vec<String>>,
    pub external_ref: Option<String>,
    pub return_url: Option<String>,
    pub expires_in: Option<i64>,
    pub reconnect_account_id: Option<String>,
}

/// A link just made: the stored link and its URL (which holds the only copy of its token).
#[derive(Debug, Clone)]
pub struct Created {
    pub link: ConnectLink,
    pub url: String,
}

/// Checks `external_ref`: 1 to 255 characters, no control characters.
pub fn check_external_ref(field: &str, text: &str) -> Result<(), LinkError> {
    if text.is_empty() {
        return Err(invalid(
            field,
            "empty",
            "must not be empty (leave it out instead)",
        ));
    }
    if text.chars().count() > MAX_EXTERNAL_REF {
        return Err(invalid(
            field,
            "too_long",
            format!("at most {MAX_EXTERNAL_REF} characters"),
        ));
    }
    if text.chars().any(char::is_control) {
        return Err(invalid(
            field,
            "control_characters",
            "must not hold control characters (line breaks, tabs, …)",
        ));
    }
    Ok(())
}

/// Checks `return_url` against the workspace's allowed origins; returns it parsed. The
/// refusal names the field `return_url`.
pub async fn check_return_url(
    app: &App,
    workspace_id: &str,
    text: &str,
) -> Result<url::Url, LinkError> {
    const FIELD: &str = "return_url";
    if text.chars().count() > MAX_RETURN_URL {
        return Err(invalid(
            FIELD,
            "too_long",
            format!("at most {MAX_RETURN_URL} characters"),
        ));
    }
    let url = url::Url::parse(text)
        .map_err(|_| invalid(FIELD, "not_a_url", "must be an absolute http(s) URL"))?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err(invalid(
            FIELD,
            "scheme",
            format!(
                "a {}: URL cannot be returned to: use an https URL of your application",
                url.scheme()
            ),
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid(
            FIELD,
            "credentials",
            "must not hold a user name or password",
        ));
    }
    let origin = url.origin().ascii_serialization();
    let allowed = allowed_origins::list(&app.db, workspace_id).await?;
    if !allowed.contains(&origin) {
        let message = if allowed.is_empty() {
            format!(
                "its origin {origin} is not allowed: this workspace has no allowed origins yet; add yours under Settings → Allowed origins or with PUT /api/v1/allowed-origins"
            )
        } else {
            format!(
                "its origin {origin} is not among the workspace's allowed origins ({})",
                allowed.join(", ")
            )
        };
        return Err(invalid(FIELD, "origin_not_allowed", message));
    }
    Ok(url)
}

/// Makes a connect link after checking every field.
pub async fn create(app: &App, workspace_id: &str, new: NewLink) -> Result<Created, LinkError> {
    let return_url = new
        .return_url
        .as_deref()
        .ok_or_else(|| invalid("return_url", "required", "is required"))?;
    let return_url = check_return_url(app, workspace_id, return_url).await?;
    if let Some(reference) = &new.external_ref {
        check_external_ref("external_ref", reference)?;
    }
    let expires_in = new.expires_in.unwrap_or(DEFAULT_EXPIRES_IN_SECS);
    if !(MIN_EXPIRES_IN_SECS..=MAX_EXPIRES_IN_SECS).contains(&expires_in) {
        return Err(invalid(
            "expires_in",
            "out_of_range",
            format!(
                "must be {MIN_EXPIRES_IN_SECS} to {MAX_EXPIRES_IN_SECS} seconds (7 days); {expires_in} is not"
            ),
        ));
    }
    let mut platforms: Vec<Platform> = Vec::new();
    if let Some(names) = &new.platforms {
        if names.is_empty() {
            return Err(invalid(
                "platforms",
                "empty",
                "name at least one platform (tiktok, instagram), or leave it out for all",
            ));
        }
        for (i, name) in names.iter().enumerate() {
            let platform: Platform = name.parse().map_err(|_| {
                invalid(
                    format!("platforms[{i}]"),
                    "unknown_platform",
                    format!("{name:?} is not a platform: use tiktok or instagram"),
                )
            })?;
            if !platforms.contains(&platform) {
                platforms.push(platform);
            }
        }
    }
    let mut external_ref = new.external_ref.clone();
    if let Some(id) = &new.reconnect_account_id {
        let account = accounts::get_referenced(&app.db, workspace_id, id)
            .await?
            .ok_or_else(|| {
                invalid(
                    "reconnect_account_id",
                    "not_found",
                    "no such account in this workspace",
                )
            })?;
        let platform = account.account.platform;
        if new.platforms.is_some() && platforms != [platform] {
            return Err(invalid(
                "platforms",
                "reconnect_platform",
                format!(
                    "the account to reconnect is on {}: leave platforms out or name only {}",
                    platform.display_name(),
                    platform.as_str()
                ),
            ));
        }
        platforms = vec![platform];
        if external_ref.is_none() {
            external_ref = account.external_ref;
        }
    } else if new.platforms.is_none() {
        platforms = Platform::ALL.to_vec();
    }
    let token = random_token();
    let now = now_ms();
    let link = ConnectLink {
        id: new_id(),
        workspace_id: workspace_id.to_string(),
        platforms: platforms
            .iter()
            .map(|p| p.as_str())
            .collect::<Vec<_>>()
            .join(" "),
        external_ref,
        return_url: return_url.to_string(),
        reconnect_account_id: new.reconnect_account_id.clone(),
        created_at: now,
        expires_at: now + expires_in * 1000,
        used_at: None,
        finished_at: None,
        status: None,
        error: None,
        account_id: None,
    };
    connect_links::insert(&app.db, &link, &sha256_hex(&token)).await?;
    tracing::info!(link_id = %link.id, workspace_id, "connect link created");
    Ok(Created {
        url: link_url(app, &token),
        link,
    })
}

/// The hosted page's address for a link's token.
pub fn link_url(app: &App, token: &str) -> String {
    app.config.url(&format!("/connect/link/{token}"))
}

/// Why a link cannot be used, in words for the creator.
#[derive(Debug, thiserror::Error)]
pub enum Unusable {
    #[error("this connect link is not valid")]
    Unknown,
    #[error("this connect link was already used")]
    Used,
    #[error("this connect link has expired")]
    Expired,
    #[error("that choice is not offered by this link")]
    NotOffered,
    #[error("{0} cannot be connected on this tidepost instance right now (it is not configured)")]
    NotConfigured(&'static str),
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<Refusal> for Unusable {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::Unknown => Unusable::Unknown,
            Refusal::AlreadyUsed => Unusable::Used,
            Refusal::Expired => Unusable::Expired,
        }
    }
}

/// What the hosted page shows.
#[derive(Debug, Clone)]
pub struct Opened {
    pub link: ConnectLink,
    pub workspace_name: String,
    /// The account being connected again: its name as the creator knows it.
    pub reconnect: Option<String>,
    /// The ways offered, each with whether this instance can do it.
    pub choices: Vec<(ConnectChoice, bool)>,
}

/// The live link named by `token`, for its page (not spent).
pub async fn open(app: &App, token: &str) -> Result<Opened, Unusable> {
    let link = connect_links::peek(&app.db, &sha256_hex(token), now_ms()).await??;
    let workspace_name = workspaces::by_id(&app.db, &link.workspace_id)
        .await?
        .map(|w| w.name)
        .ok_or(Unusable::Unknown)?;
    let reconnect = match &link.reconnect_account_id {
        Some(id) => accounts::get(&app.db, &link.workspace_id, id)
            .await?
            .map(|a| {
                a.username
                    .map(|u| format!("@{u}"))
                    .unwrap_or(a.display_name)
            }),
        None => None,
    };
    let choices = offered(&link)
        .map(|c| (*c, platforms::connect_configured(app, c.platform)))
        .collect();
    Ok(Opened {
        link,
        workspace_name,
        reconnect,
        choices,
    })
}

fn offered(link: &ConnectLink) -> impl Iterator<Item = &'static ConnectChoice> + '_ {
    link.platform_names()
        .filter_map(|name| name.parse::<Platform>().ok())
        .flat_map(platforms::connect_choices)
}

/// Spends the link (single use) and starts the chosen consent flow: the provider's URL.
pub async fn start(app: &App, token: &str, choice: &str) -> Result<String, Unusable> {
    let hash = sha256_hex(token);
    let live = connect_links::peek(&app.db, &hash, now_ms()).await??;
    let chosen = *offered(&live)
        .find(|c| c.value == choice)
        .ok_or(Unusable::NotOffered)?;
    if !platforms::connect_configured(app, chosen.platform) {
        return Err(Unusable::NotConfigured(chosen.platform.display_name()));
    }
    let link = connect_links::consume(&app.db, &hash, now_ms()).await??;
    let who = Initiator {
        workspace_id: &link.workspace_id,
        user_id: None,
        connect_link: Some(&link.id),
    };
    Ok(platforms::start_connect(app, &chosen, who).await?)
}

/// The link an OAuth state (or an Instagram Page choice) was started from, if any: its
/// callback finishes into the link.
pub async fn of_state(app: &App, state: Option<&str>) -> Result<Option<ConnectLink>, StoreError> {
    let Some(state) = state.filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    match tidepost_store::oauth_states::connect_link_of(&app.db, &sha256_hex(state)).await? {
        Some((workspace_id, id)) => connect_links::get(&app.db, &workspace_id, &id).await,
        None => Ok(None),
    }
}

/// Ends the link's flow with a refusal (`declined` when the creator said no at the platform,
/// else `error`), unless it ended already; returns the link as it now stands.
pub async fn record_failure(
    app: &App,
    link: &ConnectLink,
    err: &ConnectError,
) -> Result<ConnectLink, StoreError> {
    let status = if matches!(err, ConnectError::Denied { .. }) {
        "declined"
    } else {
        "error"
    };
    connect_links::finish(
        &app.db,
        &link.workspace_id,
        &link.id,
        status,
        Some(err.code()),
        None,
        now_ms(),
    )
    .await?;
    Ok(connect_links::get(&app.db, &link.workspace_id, &link.id)
        .await?
        .unwrap_or_else(|| link.clone()))
}

/// The link as it now stands (after its callback).
pub async fn reload(app: &App, link: &ConnectLink) -> Result<ConnectLink, StoreError> {
    Ok(connect_links::get(&app.db, &link.workspace_id, &link.id)
        .await?
        .unwrap_or_else(|| link.clone()))
}

/// Where the creator goes at the end: `return_url` with `status` (`connected`, `reconnected`,
/// `declined`, `error`), `account_id`, `external_ref` and `error` as far as known.
pub fn return_url(link: &ConnectLink) -> String {
    let Ok(mut url) = url::Url::parse(&link.return_url) else {
        return link.return_url.clone();
    };
    {
        let mut query = url.query_pairs_mut();
        query.append_pair("status", link.status.as_deref().unwrap_or("error"));
        if let Some(account) = &link.account_id {
            query.append_pair("account_id", account);
        }
        if let Some(reference) = &link.external_ref {
            query.append_pair("external_ref", reference);
        }
        match (&link.error, &link.status) {
            (Some(error), _) => {
                query.append_pair("error", error);
            }
            (None, None) => {
                query.append_pair("error", "internal");
            }
            (None, Some(_)) => {}
        }
    }
    url.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_scheme_host_and_port() {
        let ok = |text: &str| normalize_origin(text, false).unwrap();
        let rule = |text: &str, sandbox: bool| normalize_origin(text, sandbox).unwrap_err().0;
        assert_eq!(ok("https://CRM.Example.com"), "https://crm.example.com");
        assert_eq!(
            ok("https://crm.example.com:443/"),
            "https://crm.example.com"
        );
        assert_eq!(
            ok("https://crm.example.com:8443"),
            "https://crm.example.com:8443"
        );
        assert_eq!(ok("http://localhost:3000"), "http://localhost:3000");
        assert_eq!(ok("http://app.localhost"), "http://app.localhost");
        assert_eq!(ok("http://127.0.0.1:8080"), "http://127.0.0.1:8080");
        assert_eq!(ok("http://[::1]:8080"), "http://[::1]:8080");
        // Plain http elsewhere only in sandbox mode.
        assert_eq!(rule("http://crm.example.com", false), "https_required");
        assert_eq!(
            normalize_origin("http://crm.example.com", true).unwrap(),
            "http://crm.example.com"
        );
        for (text, expected) in [
            ("https://crm.example.com/app", "path"),
            ("https://crm.example.com//", "path"),
            ("https://crm.example.com?x=1", "path"),
            ("https://crm.example.com#top", "path"),
            ("https://me@crm.example.com", "credentials"),
            ("https://me:pw@crm.example.com", "credentials"),
            ("javascript:alert(1)", "not_an_origin"),
            ("ftp://crm.example.com", "scheme"),
            ("crm.example.com", "not_an_origin"),
            ("", "not_an_origin"),
        ] {
            assert_eq!(rule(text, true), expected, "{text}");
        }
    }

    #[test]
    fn external_refs() {
        assert!(check_external_ref("f", "crm-42").is_ok());
        assert!(check_external_ref("f", &"é".repeat(255)).is_ok());
        for (text, expected) in [
            ("", "empty"),
            (&*"x".repeat(256), "too_long"),
            ("a\tb", "control_characters"),
            ("a\u{7f}b", "control_characters"),
        ] {
            match check_external_ref("f", text) {
                Err(LinkError::Invalid { rule, .. }) => assert_eq!(rule, expected, "{text:?}"),
                other => panic!("{text:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn the_way_back_carries_the_outcome() {
        let link = ConnectLink {
            id: "l".into(),
            workspace_id: "w".into(),
            platforms: "tiktok".into(),
            external_ref: Some("crm 42&x".into()),
            return_url: "https://crm.example.com/back?tab=a".into(),
            reconnect_account_id: None,
            created_at: 0,
            expires_at: 1,
            used_at: Some(0),
            finished_at: Some(0),
            status: Some("connected".into()),
            error: None,
            account_id: Some("acc".into()),
        };
        assert_eq!(
            return_url(&link),
            "https://crm.example.com/back?tab=a&status=connected&account_id=acc&external_ref=crm+42%26x"
        );
        let unfinished = ConnectLink {
            status: None,
            account_id: None,
            external_ref: None,
            ..link
        };
        assert_eq!(
            return_url(&unfinished),
            "https://crm.example.com/back?tab=a&status=error&error=internal"
        );
    }
}
