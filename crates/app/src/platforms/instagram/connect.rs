//! Connecting Instagram professional accounts, by either login:
//!
//! - **Facebook Login**: [`start`] → Meta's dialog → [`finish`] exchanges the code, makes the
//!   token long-lived (~60 days), checks the granted permissions and lists the person's Pages
//!   with their linked Instagram account. The result is a [`Choice`]: every Page beside its
//!   Instagram account, the ones that cannot be connected with the reason and the fix. The
//!   pending choice (with the token) is sealed into a single-use state row of its own (flow
//!   `instagram_choice`, 30 minutes, same workspace and person); [`choose`] consumes it and
//!   connects only the chosen pairs.
//! - **Instagram Login**: [`start`] → Instagram's dialog → [`finish`] exchanges the code,
//!   makes the token long-lived, reads `/me` and refuses personal accounts.
//!
//! The OAuth states are those of [`crate::connect`] (32 random bytes, only the hash stored,
//! single use, 10 minutes, bound to the session that started the flow).

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tidepost_domain::{new_id, now_ms};
use tidepost_providers::ProviderError;
use tidepost_store::StoreError;
use tidepost_store::accounts::{self, Account, AccountStatus};
use tidepost_store::connect_links::ConnectLink;

use super::{Details, Login, PLATFORM};
use crate::App;
use crate::connect::{
    Callback, CallbackSession, ConnectError, Initiator, STATE_TTL_MS, announce_connected,
    check_reconnect, claim_state, link_of, new_state, peek_state, state_secret,
};
use crate::tokens::{self, ACCESS_TOKEN, secs_ms};

/// Facebook Login scopes: list Pages, read and publish on their Instagram account, plus
/// comments and insights for the CRM sync.
pub const FACEBOOK_SCOPES: &[&str] = &[
    "instagram_basic",
    "instagram_content_publish",
    "pages_show_list",
    "pages_read_engagement",
    "business_management",
    "instagram_manage_comments",
    "instagram_manage_insights",
];
/// Without these nothing can be published.
const FACEBOOK_REQUIRED: &[&str] = &[
    "instagram_basic",
    "instagram_content_publish",
    "pages_show_list",
    "pages_read_engagement",
];
/// Instagram Login scopes.
pub const INSTAGRAM_SCOPES: &[&str] = &[
    "instagram_business_basic",
    "instagram_business_content_publish",
    "instagram_business_manage_comments",
    "instagram_business_manage_insights",
];
const INSTAGRAM_REQUIRED: &[&str] = &[
    "instagram_business_basic",
    "instagram_business_content_publish",
];
/// What each scope lets tidepost do, for the connect page.
pub const SCOPE_REASONS: &[(&str, &str)] = &[
    (
        "instagram_basic",
        "see the Instagram account's profile and media",
    ),
    (
        "instagram_content_publish",
        "publish images, reels, carousels and stories",
    ),
    (
        "pages_show_list",
        "list your Facebook Pages, to find their Instagram account",
    ),
    (
        "pages_read_engagement",
        "read the Page, which Meta requires for publishing",
    ),
    (
        "business_management",
        "reach Pages owned through a Business Manager",
    ),
    (
        "instagram_manage_comments",
        "read comments and mentions for the timeline",
    ),
    ("instagram_manage_insights", "read post and account metrics"),
];

const FLOW_FACEBOOK: &str = "instagram_facebook";
const FLOW_INSTAGRAM: &str = "instagram_login";
const FLOW_CHOICE: &str = "instagram_choice";
/// How long a person has to pick Pages on the chooser.
pub const CHOICE_TTL_MS: i64 = 30 * 60 * 1000;

/// Starts connecting through `login`; returns the URL to send the person to.
pub async fn start(app: &App, who: Initiator<'_>, login: Login) -> Result<String, ConnectError> {
    let client = app.providers.meta()?;
    let redirect = &app.config.meta.redirect_uri;
    Ok(match login {
        Login::Facebook => {
            let state = new_state(app, &who, FLOW_FACEBOOK, None, STATE_TTL_MS).await?;
            client.authorize_url(redirect, FACEBOOK_SCOPES, &state)
        }
        Login::Instagram => {
            let state = new_state(app, &who, FLOW_INSTAGRAM, None, STATE_TTL_MS).await?;
            client.authorize_url_instagram(redirect, INSTAGRAM_SCOPES, &state)
        }
    })
}

/// One Page beside its Instagram account, as the chooser shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pair {
    pub page_id: String,
    pub page_name: String,
    pub page_picture_url: Option<String>,
    pub instagram: Option<InstagramSide>,
    /// Why this pair cannot be connected, with how to fix it; `None` when it can.
    pub problem: Option<String>,
}

impl Pair {
    pub fn choosable(&self) -> bool {
        self.problem.is_none() && self.instagram.is_some()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstagramSide {
    /// The professional account id (a string, always).
    pub id: String,
    pub username: String,
    pub name: Option<String>,
    pub profile_picture_url: Option<String>,
    pub followers_count: Option<u64>,
}

/// A pending Facebook Login choice.
#[derive(Debug, Clone)]
pub struct Choice {
    /// The single-use secret naming the pending choice (goes into the chooser's form).
    pub token: SecretString,
    pub facebook_user_name: String,
    pub pairs: Vec<Pair>,
    pub expires_at: i64,
}

impl Choice {
    /// The choice token as the chooser's form carries it.
    pub fn form_value(&self) -> &str {
        self.token.expose_secret()
    }
}

/// What the callback led to.
#[derive(Debug)]
pub enum Finished {
    /// Facebook Login: the person picks the Page + Instagram pairs to connect.
    Choose(Choice),
    /// Instagram Login: the account is connected.
    Connected(Box<Account>),
}

/// The sealed pending choice.
#[derive(Serialize, Deserialize)]
struct Pending {
    token: String,
    expires_in: Option<u64>,
    scopes: Vec<String>,
    facebook_user_id: String,
    facebook_user_name: String,
    pairs: Vec<Pair>,
}

fn provider_error(login: Login) -> impl Fn(ProviderError) -> ConnectError {
    move |e| ConnectError::ProviderError {
        provider: login.provider_name(),
        message: e.message,
    }
}

/// Completes the dialog's callback (either login; the state says which).
pub async fn finish(
    app: &App,
    callback: &Callback,
    session: Option<CallbackSession<'_>>,
) -> Result<Finished, ConnectError> {
    let claimed = claim_state(
        app,
        callback.state.as_deref(),
        &[FLOW_FACEBOOK, FLOW_INSTAGRAM],
        session,
    )
    .await?;
    let login = if claimed.flow == FLOW_INSTAGRAM {
        Login::Instagram
    } else {
        Login::Facebook
    };
    if let Some(error) = callback.error.as_deref() {
        return Err(match error {
            "access_denied" => ConnectError::Denied {
                provider: login.provider_name(),
            },
            other => ConnectError::ProviderError {
                provider: login.provider_name(),
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
    let who = Initiator {
        workspace_id: &claimed.workspace_id,
        user_id: claimed.user_id.as_deref(),
        connect_link: claimed.connect_link_id.as_deref(),
    };
    match login {
        Login::Facebook => facebook(app, &who, code).await.map(Finished::Choose),
        Login::Instagram => instagram(app, &who, link_of(app, &claimed).await?.as_ref(), code)
            .await
            .map(|a| Finished::Connected(Box::new(a))),
    }
}

async fn facebook(app: &App, who: &Initiator<'_>, code: &str) -> Result<Choice, ConnectError> {
    let client = app.providers.meta()?;
    let err = provider_error(Login::Facebook);
    let redirect = &app.config.meta.redirect_uri;
    let short = client.exchange_code(code, redirect).await.map_err(&err)?;
    let long = client
        .exchange_long_lived(&short.access_token)
        .await
        .map_err(&err)?;
    let token = &long.access_token;
    let granted: Vec<String> = client
        .permissions(token)
        .await
        .map_err(&err)?
        .into_iter()
        .filter(|p| p.status == "granted")
        .map(|p| p.permission)
        .collect();
    let missing: Vec<&str> = FACEBOOK_REQUIRED
        .iter()
        .copied()
        .filter(|s| !granted.iter().any(|g| g == s))
        .collect();
    if !missing.is_empty() {
        return Err(ConnectError::ScopeMissing {
            provider: "Facebook",
            missing: missing.join(" and "),
        });
    }
    let user = client.me(token).await.map_err(&err)?;
    let pages = client.pages(token).await.map_err(&err)?;
    if pages.is_empty() {
        return Err(ConnectError::NoPages);
    }
    let mut pairs = Vec::with_capacity(pages.len());
    for page in pages {
        let (instagram, problem) = match &page.instagram_business_account {
            None => (
                None,
                Some(format!(
                    "No Instagram professional account is linked to {}. Link one in the Page's settings (Linked accounts → Instagram; a personal Instagram account must first be switched to Business or Creator in the Instagram app), then connect again.",
                    page.name
                )),
            ),
            Some(ig) => match client.ig_user(token, &ig.id).await {
                Ok(user) => (
                    Some(InstagramSide {
                        id: user.id,
                        username: user.username,
                        name: user.name.filter(|n| !n.is_empty()),
                        profile_picture_url: user.profile_picture_url,
                        followers_count: user.followers_count,
                    }),
                    None,
                ),
                Err(e) => (
                    None,
                    Some(format!(
                        "The Instagram account linked to {} cannot be read ({}). Check that it is a Business or Creator account and that you allowed it in the Facebook dialog, then connect again.",
                        page.name, e.message
                    )),
                ),
            },
        };
        pairs.push(Pair {
            page_id: page.id,
            page_name: page.name,
            page_picture_url: page.picture_url,
            instagram,
            problem,
        });
    }
    let pending = Pending {
        token: token.expose_secret().to_string(),
        expires_in: long.expires_in,
        scopes: granted,
        facebook_user_id: user.id,
        facebook_user_name: user.name.clone(),
        pairs: pairs.clone(),
    };
    // Plain strings and numbers: serializing cannot fail.
    let sealed = serde_json::to_string(&pending).unwrap_or_default();
    let choice = new_state(app, who, FLOW_CHOICE, Some(&sealed), CHOICE_TTL_MS).await?;
    Ok(Choice {
        token: SecretString::from(choice),
        facebook_user_name: user.name,
        pairs,
        expires_at: now_ms() + CHOICE_TTL_MS,
    })
}

/// The pending choice again, unspent: the chooser shown anew when it was sent with nothing
/// ticked, so that the person picks without logging in to Facebook again.
pub async fn pending_choice(
    app: &App,
    choice: &str,
    session: Option<CallbackSession<'_>>,
) -> Result<Choice, ConnectError> {
    let live = peek_state(app, choice, &[FLOW_CHOICE], session).await?;
    let sealed = state_secret(app, &live)?.ok_or(ConnectError::StateUnknown)?;
    let pending: Pending =
        serde_json::from_str(sealed.expose_secret()).map_err(|_| ConnectError::StateUnknown)?;
    Ok(Choice {
        token: SecretString::from(choice.to_string()),
        facebook_user_name: pending.facebook_user_name,
        pairs: pending.pairs,
        expires_at: live.expires_at,
    })
}

/// Connects the chosen Pages' Instagram accounts from a pending choice (single use).
pub async fn choose(
    app: &App,
    choice: &str,
    page_ids: &[String],
    session: Option<CallbackSession<'_>>,
) -> Result<Vec<Account>, ConnectError> {
    if page_ids.is_empty() {
        return Err(ConnectError::NothingChosen);
    }
    let claimed = claim_state(app, Some(choice), &[FLOW_CHOICE], session).await?;
    let link = link_of(app, &claimed).await?;
    let sealed = state_secret(app, &claimed)?.ok_or(ConnectError::StateUnknown)?;
    let pending: Pending =
        serde_json::from_str(sealed.expose_secret()).map_err(|_| ConnectError::StateUnknown)?;
    let mut chosen = Vec::new();
    for id in page_ids {
        let pair = pending
            .pairs
            .iter()
            .find(|p| &p.page_id == id)
            .ok_or_else(|| {
                ConnectError::NotChoosable(
                    "that Page was not among the ones Facebook listed: start connecting again"
                        .into(),
                )
            })?;
        if let Some(problem) = &pair.problem {
            return Err(ConnectError::NotChoosable(problem.clone()));
        }
        if !chosen.iter().any(|p: &&Pair| p.page_id == pair.page_id) {
            chosen.push(pair);
        }
    }
    let token = SecretString::from(pending.token.clone());
    let mut connected = Vec::new();
    for pair in chosen {
        let Some(ig) = &pair.instagram else { continue };
        let details = Details {
            login: Some(Login::Facebook),
            page_id: Some(pair.page_id.clone()),
            page_name: Some(pair.page_name.clone()),
            page_picture_url: pair.page_picture_url.clone(),
            facebook_user_id: Some(pending.facebook_user_id.clone()),
            facebook_user_name: Some(pending.facebook_user_name.clone()),
            app_scoped_id: None,
            account_type: None,
        };
        let account = store_account(
            app,
            &claimed.workspace_id,
            ig,
            Grant {
                token: &token,
                expires_in: pending.expires_in,
                scopes: &pending.scopes,
            },
            &details,
            link.as_ref(),
        )
        .await?;
        connected.push(account);
    }
    Ok(connected)
}

async fn instagram(
    app: &App,
    who: &Initiator<'_>,
    link: Option<&ConnectLink>,
    code: &str,
) -> Result<Account, ConnectError> {
    let client = app.providers.meta()?;
    let err = provider_error(Login::Instagram);
    let redirect = &app.config.meta.redirect_uri;
    let short = client
        .exchange_code_instagram(code, redirect)
        .await
        .map_err(&err)?;
    let missing: Vec<&str> = INSTAGRAM_REQUIRED
        .iter()
        .copied()
        .filter(|s| !short.permissions.iter().any(|g| g == s))
        .collect();
    if !missing.is_empty() {
        return Err(ConnectError::ScopeMissing {
            provider: "Instagram",
            missing: missing.join(" and "),
        });
    }
    let long = client
        .exchange_long_lived_instagram(&short.access_token)
        .await
        .map_err(&err)?;
    let me = client
        .me_instagram(&long.access_token)
        .await
        .map_err(&err)?;
    let kind = me
        .account_type
        .clone()
        .unwrap_or_default()
        .to_ascii_uppercase();
    if !matches!(kind.as_str(), "BUSINESS" | "MEDIA_CREATOR" | "CREATOR") {
        return Err(ConnectError::PersonalAccount {
            username: me.username,
        });
    }
    let side = InstagramSide {
        id: if me.id.is_empty() {
            short.user_id.clone()
        } else {
            me.id.clone()
        },
        username: me.username.clone(),
        name: me.name.clone().filter(|n| !n.is_empty()),
        profile_picture_url: me.profile_picture_url.clone(),
        followers_count: me.followers_count,
    };
    let details = Details {
        login: Some(Login::Instagram),
        app_scoped_id: me.app_scoped_id.clone(),
        account_type: me.account_type.clone(),
        ..Details::default()
    };
    store_account(
        app,
        who.workspace_id,
        &side,
        Grant {
            token: &long.access_token,
            expires_in: long.expires_in,
            scopes: &short.permissions,
        },
        &details,
        link,
    )
    .await
}

/// What Meta granted: the long-lived token, its lifetime and the permissions.
struct Grant<'a> {
    token: &'a SecretString,
    expires_in: Option<u64>,
    scopes: &'a [String],
}

async fn store_account(
    app: &App,
    workspace_id: &str,
    ig: &InstagramSide,
    grant: Grant<'_>,
    details: &Details,
    link: Option<&ConnectLink>,
) -> Result<Account, ConnectError> {
    let Grant {
        token,
        expires_in,
        scopes,
    } = grant;
    check_reconnect(app, link, PLATFORM, &ig.id, &format!("@{}", ig.username)).await?;
    let now = now_ms();
    let existing = accounts::find(&app.db, workspace_id, PLATFORM, &ig.id).await?;
    let existed = existing.is_some();
    let id = existing.map(|a| a.id).unwrap_or_else(new_id);
    let account = Account {
        access_token: tokens::seal(app, &id, ACCESS_TOKEN, token),
        refresh_token: None,
        id,
        workspace_id: workspace_id.to_string(),
        platform: PLATFORM,
        provider_user_id: ig.id.clone(),
        display_name: ig
            .name
            .clone()
            .unwrap_or_else(|| format!("@{}", ig.username)),
        username: Some(ig.username.clone()).filter(|u| !u.is_empty()),
        avatar_url: ig.profile_picture_url.clone(),
        status: AccountStatus::Active.as_str().into(),
        status_reason: None,
        scopes: scopes.join(","),
        access_expires_at: expires_in.map(|secs| now + secs_ms(secs)),
        refresh_expires_at: None,
        last_refreshed_at: Some(now),
        refresh_lease_until: None,
        refresh_lease_by: None,
        details: serde_json::to_string(details).unwrap_or_else(|_| "{}".into()),
        created_at: now,
        updated_at: now,
    };
    accounts::upsert(&app.db, &account).await?;
    let stored = accounts::find(&app.db, workspace_id, PLATFORM, &ig.id)
        .await?
        .ok_or(StoreError::Conflict {
            what: "the account vanished while connecting; it",
        })?;
    let login = details.login();
    announce_connected(
        app,
        &stored,
        existed,
        link,
        json!({
            "account_id": stored.id,
            "platform": PLATFORM,
            "display_name": stored.display_name,
            "username": stored.username,
            "instagram_user_id": stored.provider_user_id,
            "login": login.as_str(),
            "page_id": details.page_id,
        }),
    )
    .await?;
    tracing::info!(account_id = %stored.id, workspace_id = %workspace_id, login = login.as_str(), "Instagram account connected");
    Ok(stored)
}

/// On disconnect, a Facebook Login account takes tidepost's permissions back at Meta
/// (`DELETE /me/permissions`), best effort like TikTok's revoke: a failure is logged and the
/// tokens are deleted anyway. Skipped for Instagram Login (nothing to revoke there) and while
/// another Instagram account of the workspace was connected through the same Facebook user,
/// whose token the revoke would break too.
pub async fn revoke_at_meta(app: &App, account: &Account) {
    let details = Details::of(account);
    if details.login() != Login::Facebook {
        return;
    }
    if let Some(user) = details.facebook_user_id.as_deref() {
        match accounts::list(&app.db, &account.workspace_id).await {
            Ok(all) => {
                let shared = all.iter().any(|other| {
                    other.id != account.id
                        && other.platform == PLATFORM
                        && Details::of(other).facebook_user_id.as_deref() == Some(user)
                });
                if shared {
                    tracing::info!(account_id = %account.id, "another account uses the same Facebook login; not revoking at Meta");
                    return;
                }
            }
            Err(err) => {
                tracing::warn!(account_id = %account.id, error = %err, "cannot tell whether the Facebook login is shared; not revoking at Meta");
                return;
            }
        }
    }
    let Ok(client) = app.providers.meta() else {
        return;
    };
    let Ok(token) = tokens::open(app, account, ACCESS_TOKEN) else {
        return;
    };
    if let Err(err) = client.revoke_permissions(&token).await {
        tracing::warn!(account_id = %account.id, code = %err.code, "revoking at Meta failed; deleting the tokens anyway");
    }
}
