//! Connecting a TikTok account: Login Kit with PKCE on the shared OAuth states of
//! [`crate::connect`]. [`start`] returns TikTok's authorize URL; [`finish`] takes the
//! callback's parameters, exchanges the code, fetches the profile, stores the encrypted tokens
//! and records `account.connected` (`account.reconnected` for an account connected before). [`revoke`] is disconnect's call to TikTok.

use serde_json::json;
use tidepost_domain::{Platform, new_id, now_ms};
use tidepost_providers::tiktok::{code_challenge, pkce_verifier};
use tidepost_store::StoreError;
use tidepost_store::accounts::{self, Account, AccountStatus};

use crate::App;
use crate::connect::{
    Callback, CallbackSession, ConnectError, Initiator, STATE_TTL_MS, announce_connected,
    check_reconnect, claim_state, link_of, new_state, state_secret,
};
use crate::tokens::{self, ACCESS_TOKEN, REFRESH_TOKEN, secs_ms};

/// The scopes tidepost asks TikTok for: the profile, direct posts and inbox uploads.
pub const SCOPES: &[&str] = &[
    "user.info.basic",
    "user.info.profile",
    "video.publish",
    "video.upload",
    "video.list",
];
/// What each scope lets tidepost do, for the connect page.
pub const SCOPE_REASONS: &[(&str, &str)] = &[
    ("user.info.basic", "see the account's name and avatar"),
    ("user.info.profile", "see the account's username"),
    (
        "video.publish",
        "publish videos and photos directly to the account",
    ),
    (
        "video.upload",
        "send videos to the account's inbox as drafts",
    ),
    (
        "video.list",
        "read the views, likes and shares of its posts",
    ),
];
/// Starts connecting a TikTok account; returns the URL to send the person to.
pub async fn start(app: &App, who: Initiator<'_>) -> Result<String, ConnectError> {
    let client = app.tiktok()?;
    let verifier = pkce_verifier();
    let state = new_state(app, &who, "tiktok", Some(&verifier), STATE_TTL_MS).await?;
    let challenge = code_challenge(&verifier);
    Ok(client.authorize_url(
        &app.config.tiktok.redirect_uri,
        SCOPES,
        &state,
        Some(&challenge),
    ))
}

/// Completes a TikTok connection from its callback.
pub async fn finish(
    app: &App,
    callback: &Callback,
    session: Option<CallbackSession<'_>>,
) -> Result<Account, ConnectError> {
    let claimed = claim_state(app, callback.state.as_deref(), &["tiktok"], session).await?;
    if let Some(error) = callback.error.as_deref() {
        return Err(match error {
            "access_denied" => ConnectError::Denied { provider: "TikTok" },
            other => ConnectError::ProviderError {
                provider: "TikTok",
                message: callback
                    .error_description
                    .clone()
                    .unwrap_or_else(|| other.to_string()),
            },
        });
    }
    let code = callback
        .code
        .as_deref()
        .filter(|c| !c.is_empty())
        .ok_or(ConnectError::CodeMissing)?;
    let verifier = state_secret(app, &claimed)?;
    let client = app.tiktok()?;
    let provider_error = |e: tidepost_providers::ProviderError| ConnectError::ProviderError {
        provider: "TikTok",
        message: e.message,
    };
    let tokens = client
        .exchange_code(
            code,
            &app.config.tiktok.redirect_uri,
            verifier.as_ref().map(secrecy::ExposeSecret::expose_secret),
        )
        .await
        .map_err(provider_error)?;
    let missing: Vec<&str> = ["video.publish", "video.upload"]
        .into_iter()
        .filter(|s| !tokens.has_scope(s))
        .collect();
    if missing.len() == 2 {
        return Err(ConnectError::ScopeMissing {
            provider: "TikTok",
            missing: missing.join(" and "),
        });
    }
    let fields = tidepost_providers::tiktok::UserFields::for_scopes(&tokens.scopes);
    let profile = client
        .user_info(&tokens.access_token, fields)
        .await
        .map_err(provider_error)?;
    let link = link_of(app, &claimed).await?;
    let signed_in = profile
        .username
        .as_deref()
        .map(|u| format!("@{u}"))
        .unwrap_or_else(|| profile.display_name.clone());
    check_reconnect(
        app,
        link.as_ref(),
        Platform::Tiktok,
        &tokens.open_id,
        &signed_in,
    )
    .await?;
    let now = now_ms();
    let existing = accounts::find(
        &app.db,
        &claimed.workspace_id,
        Platform::Tiktok,
        &tokens.open_id,
    )
    .await?;
    let existed = existing.is_some();
    let id = existing.map(|a| a.id).unwrap_or_else(new_id);
    let account = Account {
        access_token: tokens::seal(app, &id, ACCESS_TOKEN, &tokens.access_token),
        refresh_token: Some(tokens::seal(app, &id, REFRESH_TOKEN, &tokens.refresh_token)),
        id,
        workspace_id: claimed.workspace_id.clone(),
        platform: Platform::Tiktok,
        provider_user_id: tokens.open_id.clone(),
        display_name: if profile.display_name.is_empty() {
            "TikTok creator".into()
        } else {
            profile.display_name.clone()
        },
        username: profile.username.clone(),
        avatar_url: profile.avatar_url.clone(),
        status: AccountStatus::Active.as_str().into(),
        status_reason: None,
        scopes: tokens.scopes.join(","),
        access_expires_at: Some(now + secs_ms(tokens.expires_in)),
        refresh_expires_at: Some(now + secs_ms(tokens.refresh_expires_in)),
        last_refreshed_at: Some(now),
        refresh_lease_until: None,
        refresh_lease_by: None,
        details: json!({"union_id": profile.union_id}).to_string(),
        created_at: now,
        updated_at: now,
    };
    accounts::upsert(&app.db, &account).await?;
    let stored = accounts::find(
        &app.db,
        &claimed.workspace_id,
        Platform::Tiktok,
        &tokens.open_id,
    )
    .await?
    .ok_or(StoreError::Conflict {
        what: "the account vanished while connecting; it",
    })?;
    announce_connected(
        app,
        &stored,
        existed,
        link.as_ref(),
        json!({"account_id": stored.id, "platform": Platform::Tiktok, "display_name": stored.display_name}),
    )
    .await?;
    tracing::info!(account_id = %stored.id, workspace_id = %stored.workspace_id, "TikTok account connected");
    Ok(stored)
}

/// Revokes the account's access at TikTok (best effort: a token that is already invalid needs
/// no revoking).
pub async fn revoke(app: &App, account: &Account) {
    if let Ok(client) = app.tiktok()
        && let Ok(token) = tokens::open(app, account, ACCESS_TOKEN)
        && let Err(err) = client.revoke(&token).await
    {
        tracing::warn!(account_id = %account.id, code = %err.code, "revoking at TikTok failed; deleting the tokens anyway");
    }
}
