//! Widget links: a signed, expiring URL a host application puts in an iframe to show one
//! account's card (health, token lifetime, the day's limits, recent posts) to its own users,
//! with no tidepost login. The URL is `/widget/{account_id}/{token}`, where `token` is a vault
//! envelope (AES-256-GCM, authenticated, bound to the account id) of `{workspace}:{account}:
//! {expires}:{theme}[:{return_url}]`: it cannot be forged, altered or moved to another account
//! without the keyring, and stops working at `expires` (unix seconds).
//!
//! The widget's only write is **Reconnect**, offered when the link was minted with a
//! `return_url` (on one of the workspace's allowed origins): a POST to
//! `/widget/{account_id}/{token}/reconnect` carrying a form token bound to the widget token
//! ([`reconnect_token`]) makes a connect link that re-authorizes the account and sends the
//! creator back to `return_url` ([`reconnect`]).

use tidepost_domain::now_ms;
use tidepost_store::StoreError;
use tidepost_store::accounts::{self, Account};
use tidepost_vault::Aad;

use crate::App;
use crate::access::{secrets_equal, sha256_hex};
use crate::connect_links::{self, LinkError, NewLink};

/// The shortest and the longest a widget link lasts; by default an hour.
pub const MIN_EXPIRES_IN_SECS: i64 = 60;
pub const MAX_EXPIRES_IN_SECS: i64 = 7 * 24 * 3600;
pub const DEFAULT_EXPIRES_IN_SECS: i64 = 3600;

/// Why a widget link was refused.
#[derive(Debug, thiserror::Error)]
pub enum WidgetError {
    #[error("this widget link is not valid")]
    Invalid,
    #[error("this widget link expired")]
    Expired,
    #[error("the account is no longer connected")]
    Gone,
    #[error("this widget cannot reconnect the account (it was made without a return_url)")]
    NoReturnUrl,
    #[error("this Reconnect was not sent from the widget's own page")]
    BadFormToken,
    #[error("{0}")]
    Link(LinkError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn aad(account_id: &str) -> Aad<'_> {
    Aad::new("accounts", account_id, "widget_link")
}

/// `light` or `dark`.
pub fn theme_of(text: Option<&str>) -> Option<&'static str> {
    match text.unwrap_or("light") {
        "light" => Some("light"),
        "dark" => Some("dark"),
        _ => None,
    }
}

/// The widget URL of `account` until `expires` (unix seconds), in `theme`; with a
/// `return_url` (checked by the caller: [`connect_links::check_return_url`]) its card offers
/// Reconnect.
pub fn url_until(
    app: &App,
    account: &Account,
    expires: i64,
    theme: &str,
    return_url: Option<&str>,
) -> String {
    let mut payload = format!("{}:{}:{expires}:{theme}", account.workspace_id, account.id);
    if let Some(url) = return_url {
        payload.push(':');
        payload.push_str(url);
    }
    let token = app.keyring.encrypt_str(&payload, &aad(&account.id));
    app.config.url(&format!("/widget/{}/{token}", account.id))
}

/// A widget link opened: the account to show, the theme and where Reconnect returns to.
#[derive(Debug, Clone)]
pub struct Opened {
    pub account: Account,
    pub theme: &'static str,
    pub return_url: Option<String>,
}

/// Checks a widget URL's parts: the account to show, the theme and the return URL.
pub async fn open(app: &App, account_id: &str, token: &str) -> Result<Opened, WidgetError> {
    let payload = app
        .keyring
        .decrypt_str(token, &aad(account_id))
        .map_err(|_| WidgetError::Invalid)?;
    let payload = secrecy::ExposeSecret::expose_secret(&payload).to_string();
    // The return URL holds colons of its own: it is the rest.
    let mut parts = payload.splitn(5, ':');
    let (Some(workspace_id), Some(id), Some(expires), Some(theme)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(WidgetError::Invalid);
    };
    let return_url = parts.next().map(str::to_string);
    if id != account_id {
        return Err(WidgetError::Invalid);
    }
    let expires: i64 = expires.parse().map_err(|_| WidgetError::Invalid)?;
    if expires <= now_ms() / 1000 {
        return Err(WidgetError::Expired);
    }
    let theme = theme_of(Some(theme)).ok_or(WidgetError::Invalid)?;
    let account = accounts::get(&app.db, workspace_id, account_id)
        .await?
        .ok_or(WidgetError::Gone)?;
    Ok(Opened {
        account,
        theme,
        return_url,
    })
}

fn reconnect_aad(account_id: &str) -> Aad<'_> {
    Aad::new("accounts", account_id, "widget_reconnect")
}

/// The form token of the widget's Reconnect button: an envelope of the widget token's hash,
/// so a POST is accepted only with a token read from this widget's own page (a page elsewhere
/// that knows the widget URL still cannot make one without the keyring).
pub fn reconnect_token(app: &App, account_id: &str, widget_token: &str) -> String {
    app.keyring.encrypt_str(
        &format!("reconnect:{}", sha256_hex(widget_token)),
        &reconnect_aad(account_id),
    )
}

fn check_reconnect_token(app: &App, account_id: &str, widget_token: &str, sent: &str) -> bool {
    app.keyring
        .decrypt_str(sent, &reconnect_aad(account_id))
        .map(|payload| {
            secrets_equal(
                secrecy::ExposeSecret::expose_secret(&payload),
                &format!("reconnect:{}", sha256_hex(widget_token)),
            )
        })
        .unwrap_or(false)
}

/// The widget's Reconnect: checks the widget link and its form token, then makes a connect
/// link re-authorizing the account that returns to the widget's `return_url` (checked again
/// against the workspace's allowed origins as they are now). Answers the link's URL.
/// `foreign_origin`: when the browser says the form came from another site (the
/// `<tidepost-account>` component on a host's page), that page's `Origin` (empty when none
/// was sent), which must be one of the workspace's allowed origins.
pub async fn reconnect(
    app: &App,
    account_id: &str,
    widget_token: &str,
    form_token: &str,
    foreign_origin: Option<&str>,
) -> Result<String, WidgetError> {
    let opened = open(app, account_id, widget_token).await?;
    if !check_reconnect_token(app, account_id, widget_token, form_token) {
        return Err(WidgetError::BadFormToken);
    }
    if let Some(origin) = foreign_origin {
        let allowed = connect_links::origins(app, &opened.account.workspace_id).await?;
        if !allowed.iter().any(|o| o == origin) {
            return Err(WidgetError::BadFormToken);
        }
    }
    let return_url = opened.return_url.ok_or(WidgetError::NoReturnUrl)?;
    let created = connect_links::create(
        app,
        &opened.account.workspace_id,
        NewLink {
            return_url: Some(return_url),
            reconnect_account_id: Some(opened.account.id.clone()),
            ..NewLink::default()
        },
    )
    .await
    .map_err(|e| match e {
        LinkError::Store(e) => WidgetError::Store(e),
        other => WidgetError::Link(other),
    })?;
    tracing::info!(
        account_id,
        link_id = %created.link.id,
        "widget reconnect started a connect link"
    );
    Ok(created.url)
}
