//! Refreshing a TikTok account's tokens (the caller holds the account's refresh lease):
//! TikTok rotates the refresh token with every refresh, so one instance spends it at a time.

use tidepost_providers::ProviderError;
use tidepost_store::accounts::Account;

use crate::App;
use crate::tokens::{NewTokens, REFRESH_TOKEN, TokenError, open};

/// Spends the account's refresh token; the provider's answer.
pub(crate) async fn refresh(
    app: &App,
    account: &Account,
) -> Result<Result<NewTokens, ProviderError>, TokenError> {
    let refresh_token = open(app, account, REFRESH_TOKEN)?;
    Ok(app
        .tiktok()?
        .refresh(&refresh_token)
        .await
        .map(|t| NewTokens {
            access: t.access_token,
            refresh: Some(t.refresh_token),
            access_expires_in: Some(t.expires_in),
            refresh_expires_in: Some(t.refresh_expires_in),
        }))
}
