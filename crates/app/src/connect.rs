//! Connecting provider accounts with OAuth 2.0: the machinery every platform's connect flow
//! shares (`platforms::<name>::connect` holds each flow).
//!
//! [`new_state`] makes a state of 32 random bytes (only its SHA-256 is stored, with the
//! workspace, the person, the encrypted PKCE verifier and a 10-minute expiry) for the
//! provider's authorize URL; [`claim_state`] consumes it from the callback (single use) and
//! checks it belongs to the caller's session. [`disconnect`] revokes at the provider and deletes
//! the account. Every refusal is a [`ConnectError`] whose message a person can act on, and
//! leaves nothing half-stored.

use serde_json::json;
use tidepost_domain::{Platform, now_ms};
use tidepost_store::accounts::{self, Account};
use tidepost_store::connect_links::{self, ConnectLink};
use tidepost_store::oauth_states::{self, OAuthState, Refusal};
use tidepost_store::{StoreError, events};
use tidepost_vault::{Aad, VaultError};

use crate::App;
use crate::access::{random_token, sha256_hex};
use crate::providers::NotConfigured;
use crate::tokens::{ACCESS_TOKEN, REFRESH_TOKEN};

/// How long a person has to approve at the provider.
pub const STATE_TTL_MS: i64 = 10 * 60 * 1000;

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("the answer from the provider has no state: start connecting again from tidepost")]
    StateMissing,
    #[error("this sign-in link is not known: start connecting again from tidepost")]
    StateUnknown,
    #[error("this sign-in link was already used: start connecting again from tidepost")]
    StateReused,
    #[error("this sign-in link expired (they last 10 minutes): start connecting again")]
    StateExpired,
    #[error(
        "this sign-in link was started in another session or workspace: start connecting again from this one"
    )]
    StateFromAnotherSession,
    #[error("you declined access on {provider}, so nothing was connected")]
    Denied { provider: &'static str },
    #[error("{provider} answered with an error: {message}")]
    ProviderError {
        provider: &'static str,
        message: String,
    },
    #[error("the answer from the provider has no authorization code: start connecting again")]
    CodeMissing,
    #[error(
        "{provider} did not grant {missing}, which tidepost needs to publish: connect again and allow it"
    )]
    ScopeMissing {
        provider: &'static str,
        missing: String,
    },
    #[error(
        "@{username} is a personal Instagram account, and Instagram only lets apps publish for professional accounts. In the Instagram app, open Settings → Account type and tools → Switch to professional account (Business or Creator), then connect again"
    )]
    PersonalAccount { username: String },
    #[error(
        "Facebook shows no Page for this login, and Instagram publishing through Facebook goes through a Page: create a Page (or ask for a role on one), link the Instagram professional account to it in the Page's settings (Linked accounts → Instagram), then connect again — or connect with Instagram Login instead"
    )]
    NoPages,
    #[error(
        "none of your Facebook Pages has an Instagram professional account linked: link one in the Page's settings (Linked accounts → Instagram), then connect again — or connect with Instagram Login instead"
    )]
    NoInstagramAccount,
    #[error("choose at least one Page and Instagram account to connect")]
    NothingChosen,
    #[error("{0}")]
    NotChoosable(String),
    #[error(
        "you signed in to {provider} as {signed_in}, but this link connects {expected} again, so nothing was changed: sign out of {provider} and sign in as {expected}"
    )]
    WrongAccount {
        provider: &'static str,
        expected: String,
        signed_in: String,
    },
    #[error(transparent)]
    NotConfigured(#[from] NotConfigured),
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ConnectError {
    /// A short stable code for the host application (the `error` a connect link returns).
    pub fn code(&self) -> &'static str {
        match self {
            ConnectError::StateMissing | ConnectError::StateUnknown => "link_invalid",
            ConnectError::StateReused => "link_used",
            ConnectError::StateExpired => "link_expired",
            ConnectError::StateFromAnotherSession => "link_invalid",
            ConnectError::Denied { .. } => "access_denied",
            ConnectError::ProviderError { .. } => "provider_error",
            ConnectError::CodeMissing => "code_missing",
            ConnectError::ScopeMissing { .. } => "scope_missing",
            ConnectError::PersonalAccount { .. } => "personal_account",
            ConnectError::NoPages => "no_pages",
            ConnectError::NoInstagramAccount => "no_instagram_account",
            ConnectError::NothingChosen => "nothing_chosen",
            ConnectError::NotChoosable(_) => "not_choosable",
            ConnectError::WrongAccount { .. } => "wrong_account",
            ConnectError::NotConfigured(_) => "not_configured",
            ConnectError::Vault(_) | ConnectError::Store(_) => "internal",
        }
    }

    /// Refusals caused by the request (shown as 400), as opposed to our own failures.
    pub fn is_refusal(&self) -> bool {
        !matches!(
            self,
            ConnectError::Vault(_) | ConnectError::Store(_) | ConnectError::NotConfigured(_)
        )
    }
}

/// Who starts a connection: the workspace, and the signed-in person when it is the UI.
#[derive(Debug, Clone)]
pub struct Initiator<'a> {
    pub workspace_id: &'a str,
    pub user_id: Option<&'a str>,
    /// The connect link the creator came through (no one signed in then): the callbacks
    /// finish into it ([`crate::connect_links`]).
    pub connect_link: Option<&'a str>,
}

fn verifier_aad(state_hash: &str) -> Aad<'_> {
    Aad::new("oauth_states", state_hash, "pkce_verifier")
}

/// Stores a new single-use state for `flow` (only its SHA-256 is kept, with the workspace, the
/// person and an expiry) and returns the state to send. `secret` (a PKCE verifier, a pending
/// choice) is sealed into the row, bound to the state's hash.
pub(crate) async fn new_state(
    app: &App,
    who: &Initiator<'_>,
    flow: &str,
    secret: Option<&str>,
    ttl_ms: i64,
) -> Result<String, ConnectError> {
    let state = random_token();
    let state_hash = sha256_hex(&state);
    let now = now_ms();
    oauth_states::insert(
        &app.db,
        &OAuthState {
            pkce_verifier: secret
                .map(|secret| app.keyring.encrypt_str(secret, &verifier_aad(&state_hash))),
            state_hash,
            workspace_id: who.workspace_id.to_string(),
            user_id: who.user_id.map(str::to_string),
            flow: flow.into(),
            return_to: None,
            connect_link_id: who.connect_link.map(str::to_string),
            created_at: now,
            expires_at: now + ttl_ms,
            used_at: None,
        },
    )
    .await?;
    Ok(state)
}

/// The secret sealed into a claimed state, if any.
pub(crate) fn state_secret(
    app: &App,
    claimed: &OAuthState,
) -> Result<Option<secrecy::SecretString>, ConnectError> {
    match &claimed.pkce_verifier {
        Some(envelope) => Ok(Some(
            app.keyring
                .decrypt_str(envelope, &verifier_aad(&claimed.state_hash))?,
        )),
        None => Ok(None),
    }
}

/// The query parameters of an OAuth callback.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct Callback {
    pub code: Option<String>,
    pub state: Option<String>,
    pub scopes: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
}

/// The session the callback arrived in, if any. When the flow was started from the UI, the
/// callback must come back in the same person's session and workspace.
#[derive(Debug, Clone, Copy)]
pub struct CallbackSession<'a> {
    pub workspace_id: &'a str,
    pub user_id: &'a str,
}

/// Consumes the state (single use) and checks it belongs to one of `flows` and to this session.
pub(crate) async fn claim_state(
    app: &App,
    state: Option<&str>,
    flows: &[&str],
    session: Option<CallbackSession<'_>>,
) -> Result<OAuthState, ConnectError> {
    let state = state
        .filter(|s| !s.is_empty())
        .ok_or(ConnectError::StateMissing)?;
    let claimed = oauth_states::consume(&app.db, &sha256_hex(state), now_ms())
        .await?
        .map_err(|refusal| match refusal {
            Refusal::Unknown => ConnectError::StateUnknown,
            Refusal::AlreadyUsed => ConnectError::StateReused,
            Refusal::Expired => ConnectError::StateExpired,
        })?;
    belongs(&claimed, flows, session)?;
    Ok(claimed)
}

/// The live state named `state`, left unused: for showing a pending step again (a chooser
/// submitted with nothing ticked) without spending it.
pub(crate) async fn peek_state(
    app: &App,
    state: &str,
    flows: &[&str],
    session: Option<CallbackSession<'_>>,
) -> Result<OAuthState, ConnectError> {
    if state.is_empty() {
        return Err(ConnectError::StateMissing);
    }
    let live = oauth_states::peek(&app.db, &sha256_hex(state), now_ms())
        .await?
        .ok_or(ConnectError::StateUnknown)?;
    belongs(&live, flows, session)?;
    Ok(live)
}

/// A state is for one of `flows`, and for the session that started it when one did.
fn belongs(
    state: &OAuthState,
    flows: &[&str],
    session: Option<CallbackSession<'_>>,
) -> Result<(), ConnectError> {
    if !flows.contains(&state.flow.as_str()) {
        return Err(ConnectError::StateUnknown);
    }
    if let Some(owner) = state.user_id.as_deref() {
        let same =
            session.is_some_and(|s| s.user_id == owner && s.workspace_id == state.workspace_id);
        if !same {
            return Err(ConnectError::StateFromAnotherSession);
        }
    }
    Ok(())
}

/// The connect link a claimed state was started from, if any.
pub(crate) async fn link_of(
    app: &App,
    claimed: &OAuthState,
) -> Result<Option<ConnectLink>, ConnectError> {
    match &claimed.connect_link_id {
        Some(id) => Ok(connect_links::get(&app.db, &claimed.workspace_id, id).await?),
        None => Ok(None),
    }
}

/// Before an account is stored: a link that connects one account again accepts only that
/// account's platform identity back (a creator signed in as someone else is refused, and
/// nothing is stored). An account disconnected meanwhile is connected anew.
pub(crate) async fn check_reconnect(
    app: &App,
    link: Option<&ConnectLink>,
    platform: Platform,
    provider_user_id: &str,
    signed_in: &str,
) -> Result<(), ConnectError> {
    let Some((link, id)) = link.and_then(|l| l.reconnect_account_id.as_deref().map(|id| (l, id)))
    else {
        return Ok(());
    };
    match accounts::get(&app.db, &link.workspace_id, id).await? {
        Some(a) if a.platform == platform && a.provider_user_id == provider_user_id => Ok(()),
        Some(a) => Err(ConnectError::WrongAccount {
            provider: platform.display_name(),
            expected: a
                .username
                .as_deref()
                .map(|u| format!("@{u}"))
                .unwrap_or(a.display_name),
            signed_in: signed_in.to_string(),
        }),
        None => Ok(()),
    }
}

/// After an account is stored: gives it a creator, stamps the link's `external_ref` on both,
/// records `account.connected` (a new account) or `account.reconnected` (one connected before)
/// with `payload` plus `external_ref`, and ends the link's flow with that status.
pub(crate) async fn announce_connected(
    app: &App,
    stored: &Account,
    existed: bool,
    link: Option<&ConnectLink>,
    mut payload: serde_json::Value,
) -> Result<(), ConnectError> {
    crate::crm::creator_for_new_account(app, stored).await?;
    if let Some(reference) = link.and_then(|l| l.external_ref.as_deref()) {
        accounts::set_external_ref(&app.db, &stored.workspace_id, &stored.id, reference).await?;
    }
    let external_ref = accounts::external_ref(&app.db, &stored.workspace_id, &stored.id).await?;
    payload["external_ref"] = json!(external_ref);
    let kind = if existed {
        "account.reconnected"
    } else {
        "account.connected"
    };
    events::record(
        &app.db,
        &stored.workspace_id,
        kind,
        Some(&stored.id),
        &payload,
    )
    .await?;
    if let Some(link) = link {
        let status = if existed { "reconnected" } else { "connected" };
        connect_links::finish(
            &app.db,
            &link.workspace_id,
            &link.id,
            status,
            None,
            Some(&stored.id),
            now_ms(),
        )
        .await?;
    }
    Ok(())
}

/// Disconnects: revokes access at the provider (best effort: a token that is already invalid
/// needs no revoking) and deletes the account with its tokens.
pub async fn disconnect(
    app: &App,
    workspace_id: &str,
    account_id: &str,
) -> Result<bool, ConnectError> {
    let Some(account) = accounts::get(&app.db, workspace_id, account_id).await? else {
        return Ok(false);
    };
    crate::platforms::revoke(app, &account).await;
    let external_ref = accounts::external_ref(&app.db, workspace_id, account_id).await?;
    let deleted = accounts::delete(&app.db, workspace_id, account_id).await?;
    if deleted {
        events::record(
            &app.db,
            workspace_id,
            "account.disconnected",
            Some(account_id),
            &json!({"account_id": account_id, "platform": account.platform, "external_ref": external_ref}),
        )
        .await?;
    }
    Ok(deleted)
}

/// What `keys rotate` did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RotationReport {
    pub reencrypted: usize,
    pub already_current: usize,
    /// Rows that changed while being rotated (a refresh); they are already under the new key.
    pub skipped_changed: usize,
}

/// Re-encrypts every stored secret under the keyring's primary key. Safe while servers run:
/// each row is replaced only if it still holds what was read.
pub async fn rotate_secrets(app: &App) -> Result<RotationReport, ConnectError> {
    let mut report = RotationReport::default();
    for (id, access, refresh) in accounts::all_token_envelopes(&app.db).await? {
        let needs = app.keyring.needs_rotation(&access)
            || refresh
                .as_deref()
                .is_some_and(|r| app.keyring.needs_rotation(r));
        if !needs {
            report.already_current += 1;
            continue;
        }
        let new_access = app
            .keyring
            .reencrypt(&access, &Aad::new(accounts::TABLE, &id, ACCESS_TOKEN))?;
        let new_refresh = match &refresh {
            Some(r) => Some(
                app.keyring
                    .reencrypt(r, &Aad::new(accounts::TABLE, &id, REFRESH_TOKEN))?,
            ),
            None => None,
        };
        let replaced = accounts::replace_token_envelopes(
            &app.db,
            &id,
            (&access, refresh.as_deref()),
            (&new_access, new_refresh.as_deref()),
        )
        .await?;
        if replaced {
            report.reencrypted += 1;
        } else {
            report.skipped_changed += 1;
        }
    }
    crate::outbound::endpoints::rotate_keys(app, &mut report).await?;
    Ok(report)
}
