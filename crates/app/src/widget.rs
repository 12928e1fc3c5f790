//! Widget links: a signed, expiring URL a host application puts in an iframe to show one
//! account's card (health, token lifetime, the day's limits, recent posts) to its own users,
//! with no tidepost login. The URL is `/widget/{account_id}/{token}`, where `token` is a vault
//! envelope (AES-256-GCM, authenticated, bound to the account id) of `{workspace}:{account}:
//! {expires}:{theme}`: it cannot be forged, altered or moved to another account without the
//! keyring, and stops working at `expires` (unix seconds).

use tidepost_domain::now_ms;
use tidepost_store::StoreError;
use tidepost_store::accounts::{self, Account};
use tidepost_vault::Aad;

use crate::App;

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

/// The widget URL of `account` until `expires` (unix seconds), in `theme`.
pub fn url_until(app: &App, account: &Account, expires: i64, theme: &str) -> String {
    let payload = format!("{}:{}:{expires}:{theme}", account.workspace_id, account.id);
    let token = app.keyring.encrypt_str(&payload, &aad(&account.id));
    app.config.url(&format!("/widget/{}/{token}", account.id))
}

/// Checks a widget URL's parts: the account to show and the theme.
pub async fn open(
    app: &App,
    account_id: &str,
    token: &str,
) -> Result<(Account, &'static str), WidgetError> {
    let payload = app
        .keyring
        .decrypt_str(token, &aad(account_id))
        .map_err(|_| WidgetError::Invalid)?;
    let payload = secrecy::ExposeSecret::expose_secret(&payload).to_string();
    let mut parts = payload.splitn(4, ':');
    let (Some(workspace_id), Some(id), Some(expires), Some(theme)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(WidgetError::Invalid);
    };
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
    Ok((account, theme))
}
