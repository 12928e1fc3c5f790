//! Connecting a Threads profile through Threads' own OAuth (no PKCE): [`start`] returns the
//! authorize URL; [`finish`] takes the callback, exchanges the code for a short-lived token,
//! exchanges that for a long-lived (60-day) one, reads `/me`, stores the sealed token and
//! records `account.connected` (`account.reconnected` for a profile connected before).
//! Threads has no revoke call: disconnecting deletes the tokens, and the person removes the
//! app under Threads' settings (Website permissions).

use serde_json::json;
use tidepost_domain::{Platform, new_id, now_ms};
use tidepost_store::StoreError;
use tidepost_store::accounts::{self, Account, AccountStatus};

use crate::App;
use crate::connect::{
    Callback, CallbackSession, ConnectError, Initiator, STATE_TTL_MS, announce_connected,
    check_reconnect, claim_state, link_of, new_state,
};
use crate::tokens::{self, ACCESS_TOKEN, secs_ms};

const FLOW: &str = "threads";
/// Without these nothing can be published.
const REQUIRED: &[&str] = &["threads_basic", "threads_content_publish"];

/// What each scope lets tidepost do, for the connect page.
pub const SCOPE_REASONS: &[(&str, &str)] = &[
    (
        "threads_basic",
        "see the profile's name, username and picture",
    ),
    (
        "threads_content_publish",
        "publish text, image, video and carousel posts",
    ),
    ("threads_manage_replies", "set who may reply to a post"),
    ("threads_read_replies", "read replies for the timeline"),
    (
        "threads_manage_insights",
        "read views, likes and replies of posts",
    ),
];

/// Starts connecting a Threads profile; returns the URL to send the person to.
pub async fn start(app: &App, who: Initiator<'_>) -> Result<String, ConnectError> {
    let client = app.providers.threads()?;
    let state = new_state(app, &who, FLOW, None, STATE_TTL_MS).await?;
    Ok(client.authorize_url(&app.config.threads.redirect_uri, &state))
}

/// Completes a Threads connection from its callback.
pub async fn finish(
    app: &App,
    callback: &Callback,
    session: Option<CallbackSession<'_>>,
) -> Result<Account, ConnectError> {
    let claimed = claim_state(app, callback.state.as_deref(), &[FLOW], session).await?;
    if let Some(error) = callback.error.as_deref() {
        return Err(match error {
            "access_denied" => ConnectError::Denied {
                provider: "Threads",
            },
            other => ConnectError::ProviderError {
                provider: "Threads",
                message: callback
                    .error_description
                    .clone()
                    .unwrap_or_else(|| other.to_string()),
            },
        });
    }
    // A code pasted from an address bar may still carry Meta's `#_`.
    let code = callback
        .code
        .as_deref()
        .map(|c| c.trim_end_matches("#_"))
        .filter(|c| !c.is_empty())
        .ok_or(ConnectError::CodeMissing)?;
    let client = app.providers.threads()?;
    let provider_error = |e: tidepost_providers::ProviderError| ConnectError::ProviderError {
        provider: "Threads",
        message: e.message,
    };
    let short = client
        .exchange_code(code, &app.config.threads.redirect_uri)
        .await
        .map_err(provider_error)?;
    let long = client
        .exchange_long_lived(&short.access_token)
        .await
        .map_err(provider_error)?;
    let profile = client
        .me(&long.access_token)
        .await
        .map_err(provider_error)?;
    if profile.id != short.user_id {
        return Err(ConnectError::ProviderError {
            provider: "Threads",
            message: format!(
                "the token belongs to profile {} but the login named {}; start again",
                profile.id, short.user_id
            ),
        });
    }
    let username = profile.username.clone();
    let signed_in = username
        .as_deref()
        .map(|u| format!("@{u}"))
        .unwrap_or_else(|| profile.id.clone());
    let link = link_of(app, &claimed).await?;
    check_reconnect(
        app,
        link.as_ref(),
        Platform::Threads,
        &profile.id,
        &signed_in,
    )
    .await?;
    let now = now_ms();
    let existing = accounts::find(
        &app.db,
        &claimed.workspace_id,
        Platform::Threads,
        &profile.id,
    )
    .await?;
    let existed = existing.is_some();
    let id = existing.map(|a| a.id).unwrap_or_else(new_id);
    // Threads does not echo the granted permissions; those asked for are what the dialog
    // showed (a person can only allow or cancel).
    let scopes = tidepost_providers::threads::SCOPES.join(",");
    debug_assert!(REQUIRED.iter().all(|r| scopes.contains(r)));
    let account = Account {
        access_token: tokens::seal(app, &id, ACCESS_TOKEN, &long.access_token),
        refresh_token: None,
        id,
        workspace_id: claimed.workspace_id.clone(),
        platform: Platform::Threads,
        provider_user_id: profile.id.clone(),
        display_name: profile
            .name
            .clone()
            .filter(|n| !n.trim().is_empty())
            .or_else(|| username.clone())
            .unwrap_or_else(|| "Threads profile".into()),
        username,
        avatar_url: profile.threads_profile_picture_url.clone(),
        status: AccountStatus::Active.as_str().into(),
        status_reason: None,
        scopes,
        access_expires_at: Some(now + secs_ms(long.expires_in.unwrap_or(5_183_944))),
        refresh_expires_at: None,
        last_refreshed_at: Some(now),
        refresh_lease_until: None,
        refresh_lease_by: None,
        details: json!({"biography": profile.threads_biography}).to_string(),
        created_at: now,
        updated_at: now,
    };
    accounts::upsert(&app.db, &account).await?;
    let stored = accounts::find(
        &app.db,
        &claimed.workspace_id,
        Platform::Threads,
        &profile.id,
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
        json!({"account_id": stored.id, "platform": Platform::Threads, "display_name": stored.display_name}),
    )
    .await?;
    tracing::info!(account_id = %stored.id, workspace_id = %stored.workspace_id, "Threads profile connected");
    Ok(stored)
}
