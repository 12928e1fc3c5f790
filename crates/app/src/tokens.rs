//! Keeping provider tokens alive.
//!
//! - Tokens are stored as vault envelopes bound to `accounts/<id>/<column>`.
//! - [`with_token`] runs a provider call with a fresh access token: it refreshes first when the
//!   token is about to expire, and after a provider 401 that a refresh can fix it refreshes once
//!   and retries once.
//! - [`refresh`] holds the account's refresh lease (a row lease in the database) so that two
//!   instances never spend the same rotating refresh token; the new pair is written atomically
//!   and only while the lease is held. A refused refresh marks the account `needs_reauth` and
//!   records `account.needs_reauth`.
//! - [`refresh_due`] is the sweep that refreshes tokens well before they expire.

use std::future::Future;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use tidepost_domain::{Platform, now_ms};
use tidepost_providers::{ErrorKind, ProviderError};
use tidepost_store::accounts::{self, Account, AccountStatus, Refreshed};
use tidepost_store::{StoreError, events};
use tidepost_vault::{Aad, VaultError};

use crate::App;
use crate::providers::NotConfigured;

pub const ACCESS_TOKEN: &str = "access_token";
pub const REFRESH_TOKEN: &str = "refresh_token";

/// How long a refresh lease lasts: well beyond a provider call's timeout, so a lease never
/// runs out while its holder is still waiting for the provider's answer.
const REFRESH_LEASE_MS: i64 = 90_000;
/// A token closer than this to its expiry is refreshed before use.
const EXPIRY_MARGIN_MS: i64 = 60_000;

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("{0}")]
    Provider(ProviderError),
    #[error("the account must be connected again: {0}")]
    NeedsReauth(String),
    #[error("another instance is refreshing this account's token; try again shortly")]
    RefreshBusy,
    #[error(transparent)]
    NotConfigured(#[from] NotConfigured),
    #[error("stored token cannot be decrypted: {0}")]
    Vault(#[from] VaultError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl TokenError {
    /// Whether trying the same thing later may work.
    pub fn is_retryable(&self) -> bool {
        match self {
            TokenError::Provider(e) => matches!(
                e.kind,
                ErrorKind::Retryable | ErrorKind::RateLimited | ErrorKind::OutcomeUnknown
            ),
            TokenError::RefreshBusy | TokenError::Store(_) => true,
            TokenError::NeedsReauth(_) | TokenError::NotConfigured(_) | TokenError::Vault(_) => {
                false
            }
        }
    }
}

fn aad<'a>(account_id: &'a str, column: &'a str) -> Aad<'a> {
    Aad::new(accounts::TABLE, account_id, column)
}

/// Encrypts a token for `accounts/<account_id>/<column>`.
pub fn seal(app: &App, account_id: &str, column: &str, token: &SecretString) -> String {
    app.keyring
        .encrypt_str(token.expose_secret(), &aad(account_id, column))
}

/// Decrypts one of the account's tokens.
pub fn open(app: &App, account: &Account, column: &str) -> Result<SecretString, TokenError> {
    let envelope = match column {
        REFRESH_TOKEN => account.refresh_token.as_deref().ok_or_else(|| {
            TokenError::NeedsReauth("no refresh token is stored for this account".into())
        })?,
        _ => account.access_token.as_str(),
    };
    Ok(app
        .keyring
        .decrypt_str(envelope, &aad(&account.id, column))?)
}

/// The account with an access token usable now: refused when it must be connected again,
/// refreshed first when the token is about to expire. [`with_token`] starts with this; a caller
/// that records a durable intent before its call runs it *before* the intent, so that a refresh
/// (which may wait for another instance's) never sits between intent and call. `with_token`
/// with the returned account then calls at once, refreshing again only after a 401.
pub async fn ready(app: &App, account: &Account) -> Result<Account, TokenError> {
    if account.needs_reauth() {
        return Err(TokenError::NeedsReauth(
            account
                .status_reason
                .clone()
                .unwrap_or_else(|| "access was revoked".into()),
        ));
    }
    if account
        .access_expires_at
        .is_some_and(|at| at - EXPIRY_MARGIN_MS < now_ms())
    {
        return refresh_seen(app, account).await;
    }
    Ok(account.clone())
}

/// Runs `call` with a valid access token of `account` (see the module docs).
pub async fn with_token<T, F, Fut>(app: &App, account: &Account, call: F) -> Result<T, TokenError>
where
    F: Fn(SecretString) -> Fut,
    Fut: Future<Output = Result<T, ProviderError>>,
{
    let account = ready(app, account).await?;
    match call(open(app, &account, ACCESS_TOKEN)?).await {
        Ok(value) => Ok(value),
        Err(err) if err.kind == ErrorKind::Reauth && err.token_refresh_may_help() => {
            tracing::info!(account_id = %account.id, code = %err.code, "access token refused; refreshing once");
            let account = refresh_seen(app, &account).await?;
            match call(open(app, &account, ACCESS_TOKEN)?).await {
                Ok(value) => Ok(value),
                Err(err) if err.kind == ErrorKind::Reauth => {
                    mark_needs_reauth(app, &account, &err.message).await?;
                    Err(TokenError::NeedsReauth(err.message))
                }
                Err(err) => Err(TokenError::Provider(err)),
            }
        }
        Err(err) if err.kind == ErrorKind::Reauth => {
            mark_needs_reauth(app, &account, &err.message).await?;
            Err(TokenError::NeedsReauth(err.message))
        }
        Err(err) => Err(TokenError::Provider(err)),
    }
}

/// Refreshes the account's tokens now, under its refresh lease, and returns the updated account.
pub async fn refresh(
    app: &App,
    workspace_id: &str,
    account_id: &str,
) -> Result<Account, TokenError> {
    let current = accounts::get(&app.db, workspace_id, account_id)
        .await?
        .ok_or_else(|| TokenError::NeedsReauth("the account was disconnected".into()))?;
    refresh_seen(app, &current).await
}

/// Refreshes the tokens of `seen` (the account as the caller read it), under the account's
/// refresh lease. When another task or instance has refreshed them since `seen` was read, or
/// holds the lease now, nothing is spent: the caller gets the tokens that task stored. So any
/// number of callers that saw the same expiring token cause exactly one refresh.
pub async fn refresh_seen(app: &App, seen: &Account) -> Result<Account, TokenError> {
    let (workspace_id, account_id) = (seen.workspace_id.as_str(), seen.id.as_str());
    let holder = format!("{}:{}", app.instance_id, tidepost_domain::new_id());
    let load = || async {
        accounts::get(&app.db, workspace_id, account_id)
            .await?
            .ok_or_else(|| TokenError::NeedsReauth("the account was disconnected".into()))
    };
    if !accounts::try_lease_refresh(&app.db, account_id, &holder, now_ms(), REFRESH_LEASE_MS)
        .await?
    {
        return wait_for_other_refresh(seen, load).await;
    }
    // Another task may have refreshed between the caller's read and our lease: then its tokens
    // are the current ones, and `seen`'s refresh token is already spent.
    let current = load().await?;
    if current.access_token != seen.access_token {
        accounts::release_refresh(&app.db, account_id, &holder).await?;
        return Ok(current);
    }
    let result = spend_refresh_token(app, &current, &holder).await;
    if result.is_err() {
        accounts::release_refresh(&app.db, account_id, &holder).await?;
    }
    result?;
    load().await
}
/// Another task holds the lease: wait (bounded) until it has stored new tokens.
async fn wait_for_other_refresh<F, Fut>(before: &Account, load: F) -> Result<Account, TokenError>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<Account, TokenError>>,
{
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let now = load().await?;
        if now.needs_reauth() {
            return Err(TokenError::NeedsReauth(
                now.status_reason.unwrap_or_default(),
            ));
        }
        if now.access_token != before.access_token {
            return Ok(now);
        }
        if now.refresh_lease_by.is_none() {
            break;
        }
    }
    Err(TokenError::RefreshBusy)
}

/// Tokens a provider answered a refresh with.
pub struct NewTokens {
    pub access: SecretString,
    /// `None`: the provider has no refresh token (Instagram's long-lived tokens).
    pub refresh: Option<SecretString>,
    pub access_expires_in: Option<u64>,
    pub refresh_expires_in: Option<u64>,
}

async fn spend_refresh_token(app: &App, account: &Account, holder: &str) -> Result<(), TokenError> {
    let answer = crate::platforms::refresh(app, account).await?;
    let provider = crate::platforms::provider_name(account.platform);
    let tokens = match answer {
        Ok(tokens) => tokens,
        // Instagram refuses to refresh a token younger than 24 hours: it stays valid.
        Err(err)
            if err.kind == ErrorKind::Permanent
                && crate::platforms::refusal_keeps_token(account.platform) =>
        {
            tracing::info!(account_id = %account.id, code = %err.code, "refresh refused for now; the token stays valid");
            return Err(TokenError::Provider(err));
        }
        Err(err) if matches!(err.kind, ErrorKind::Reauth | ErrorKind::Permanent) => {
            tracing::warn!(account_id = %account.id, code = %err.code, "refresh refused; the account needs to be connected again");
            let reason = format!("{provider} refused to refresh access ({})", err.message);
            mark_needs_reauth(app, account, &reason).await?;
            return Err(TokenError::NeedsReauth(reason));
        }
        Err(err) => return Err(TokenError::Provider(err)),
    };
    let now = now_ms();
    let access = seal(app, &account.id, ACCESS_TOKEN, &tokens.access);
    let refresh = tokens
        .refresh
        .as_ref()
        .map(|r| seal(app, &account.id, REFRESH_TOKEN, r));
    let stored = Refreshed {
        access_token: &access,
        refresh_token: refresh.as_deref(),
        access_expires_at: tokens.access_expires_in.map(|s| now + secs_ms(s)),
        refresh_expires_at: tokens.refresh_expires_in.map(|s| now + secs_ms(s)),
    };
    if !accounts::store_refreshed(&app.db, &account.id, holder, &stored, now).await? {
        // Cannot happen while the lease outlives the provider call; say so loudly if it does.
        tracing::error!(account_id = %account.id, "refresh lease lost before the new tokens were stored");
        return Err(TokenError::RefreshBusy);
    }
    tracing::info!(account_id = %account.id, "tokens refreshed");
    Ok(())
}

pub(crate) fn secs_ms(secs: u64) -> i64 {
    i64::try_from(secs)
        .unwrap_or(i64::MAX / 2_000)
        .saturating_mul(1000)
}

/// Marks the account as needing a new connection and records `account.needs_reauth` once.
pub async fn mark_needs_reauth(
    app: &App,
    account: &Account,
    reason: &str,
) -> Result<(), StoreError> {
    let changed = accounts::set_status(
        &app.db,
        &account.workspace_id,
        &account.id,
        AccountStatus::NeedsReauth,
        Some(reason),
        now_ms(),
    )
    .await?;
    if changed {
        let external_ref =
            accounts::external_ref(&app.db, &account.workspace_id, &account.id).await?;
        events::record(
            &app.db,
            &account.workspace_id,
            "account.needs_reauth",
            Some(&account.id),
            &json!({"account_id": account.id, "platform": account.platform, "reason": reason, "external_ref": external_ref}),
        )
        .await?;
    }
    Ok(())
}

/// What one sweep did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SweepReport {
    pub refreshed: usize,
    pub needs_reauth: usize,
    pub failed: usize,
}

/// Refreshes every active token that expires within the configured window.
pub async fn refresh_due(app: &App) -> Result<SweepReport, StoreError> {
    let window_ms = secs_ms(app.config.token_refresh_window_secs);
    let mut due = accounts::due_for_refresh(&app.db, now_ms() + window_ms, 200).await?;
    // Platforms whose tokens live longer are renewed earlier (Instagram's 60-day tokens).
    for platform in Platform::ALL {
        let Some(window) = crate::platforms::refresh_window_ms(app, platform) else {
            continue;
        };
        for account in
            accounts::due_for_refresh_on(&app.db, platform, now_ms() + window, 200).await?
        {
            if !due.iter().any(|a| a.id == account.id) {
                due.push(account);
            }
        }
    }
    let mut report = SweepReport::default();
    for account in due {
        match refresh_seen(app, &account).await {
            Ok(_) => report.refreshed += 1,
            Err(TokenError::NeedsReauth(_)) => report.needs_reauth += 1,
            Err(err) => {
                tracing::warn!(account_id = %account.id, error = %err, "token refresh failed; will try again");
                report.failed += 1;
            }
        }
    }
    Ok(report)
}
