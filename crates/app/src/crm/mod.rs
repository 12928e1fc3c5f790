//! The CRM services: creators for newly connected accounts, contacts and interactions from
//! Instagram comment webhooks and pulls, replies to Instagram comments, and the metrics and
//! comments sync jobs ([`sync`]).
//!
//! Every interaction is recorded through [`tidepost_store::crm::interactions::record_in`],
//! which is idempotent per provider id: a duplicate webhook, a pull after a webhook, or two
//! workers racing record it once, and only a newly recorded one yields `interaction.created`.

pub mod sync;

use serde_json::{Value, json};
use sqlx::AnyConnection;
use tidepost_domain::Platform;
use tidepost_providers::ProviderError;
use tidepost_providers::meta::MetaChange;
use tidepost_store::accounts::{self, Account};
use tidepost_store::crm::contacts::Sighting;
use tidepost_store::crm::interactions::{self, Interaction, Observed};
use tidepost_store::crm::{creators, metrics};
use tidepost_store::{StoreError, events};

use crate::App;
use crate::tokens::{self, TokenError};

pub use sync::{ensure_schedules, register};

/// The longest reply Instagram takes.
pub const REPLY_MAX_CHARS: usize = 2200;

/// Gives a newly connected account a creator named after it, unless it has one (a reconnect
/// keeps its creator).
pub async fn creator_for_new_account(app: &App, account: &Account) -> Result<(), StoreError> {
    creators::ensure_for_account(&app.db, &account.workspace_id, &account.id).await?;
    Ok(())
}

/// The JSON of an interaction, as the API and the `interaction.created` event show it.
pub fn interaction_json(i: &Interaction) -> Value {
    json!({
        "id": i.id,
        "platform": i.platform,
        "kind": i.kind,
        "direction": i.direction,
        "provider_id": i.provider_id,
        "parent_provider_id": i.parent_provider_id,
        "contact_id": i.contact_id,
        "creator_id": i.creator_id,
        "account_id": i.account_id,
        "target_id": i.target_id,
        "provider_media_id": i.provider_media_id,
        "text": i.text,
        "occurred_at": tidepost_domain::time::rfc3339(i.occurred_at),
    })
}

/// Records `interaction.created` for a newly recorded interaction, in the same transaction
/// (the payload follows the outbound webhooks' convention, see [`crate::outbound`]).
pub async fn announce_in(conn: &mut AnyConnection, i: &Interaction) -> Result<(), StoreError> {
    let post_id = match &i.target_id {
        Some(target) => metrics::post_of_target_in(conn, &i.workspace_id, target).await?,
        None => None,
    };
    events::record_in(
        conn,
        &i.workspace_id,
        "interaction.created",
        i.account_id.as_deref(),
        &json!({
            "interaction_id": i.id,
            "kind": i.kind,
            "direction": i.direction,
            "account_id": i.account_id,
            "platform": i.platform,
            "contact_id": i.contact_id,
            "creator_id": i.creator_id,
            "post_id": post_id,
            "target_id": i.target_id,
            "provider_id": i.provider_id,
            "provider_media_id": i.provider_media_id,
            "text": i.text,
            "time": tidepost_domain::time::rfc3339(i.occurred_at),
        }),
    )
    .await?;
    Ok(())
}

/// Records one change of an Instagram webhook for `account` in the caller's transaction (the
/// one that marks the delivery applied). Returns the interaction when it is new; `None` for a
/// change already recorded or one that is no interaction.
pub async fn record_webhook_change_in(
    conn: &mut AnyConnection,
    account: &Account,
    change: &MetaChange,
    sent_at_secs: i64,
) -> Result<Option<Interaction>, StoreError> {
    let at = if sent_at_secs > 0 {
        sent_at_secs.saturating_mul(1000)
    } else {
        tidepost_domain::now_ms()
    };
    let observed = match change {
        MetaChange::Comment {
            comment_id,
            text,
            from_id,
            from_username,
            media_id,
            parent_id,
            ..
        } => {
            let own = from_id.as_deref() == Some(account.provider_user_id.as_str());
            Observed {
                platform: Platform::Instagram,
                kind: if parent_id.is_some() {
                    "reply"
                } else {
                    "comment"
                },
                direction: if own { "outbound" } else { "inbound" },
                provider_id: comment_id,
                parent_provider_id: parent_id.as_deref(),
                author: from_id.as_deref().filter(|_| !own).map(|id| Sighting {
                    platform: Platform::Instagram,
                    platform_user_id: id,
                    handle: from_username.as_deref(),
                    name: None,
                    at,
                }),
                account_id: &account.id,
                provider_media_id: media_id.as_deref(),
                text,
                occurred_at: at,
            }
        }
        MetaChange::Mention {
            media_id,
            comment_id,
        } => Observed {
            platform: Platform::Instagram,
            kind: "mention",
            direction: "inbound",
            // A caption mention has no comment: the media is the mention.
            provider_id: comment_id.as_deref().unwrap_or(media_id),
            parent_provider_id: None,
            author: None,
            account_id: &account.id,
            provider_media_id: Some(media_id),
            text: "",
            occurred_at: at,
        },
        MetaChange::Other { .. } => return Ok(None),
    };
    let recorded = interactions::record_in(conn, &account.workspace_id, &observed).await?;
    if let Some(i) = &recorded {
        announce_in(conn, i).await?;
    }
    Ok(recorded)
}

#[derive(Debug, thiserror::Error)]
pub enum CrmError {
    #[error("no such {0} in this workspace")]
    NotFound(&'static str),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Unsupported(String),
    #[error("the account must be connected again: {0}")]
    NeedsReauth(String),
    #[error("{0}")]
    Provider(ProviderError),
    #[error("{0}")]
    Busy(String),
    #[error(transparent)]
    NotConfigured(#[from] crate::providers::NotConfigured),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<TokenError> for CrmError {
    fn from(err: TokenError) -> Self {
        match err {
            TokenError::Provider(e) => CrmError::Provider(e),
            TokenError::NeedsReauth(reason) => CrmError::NeedsReauth(reason),
            TokenError::RefreshBusy => CrmError::Busy(err.to_string()),
            TokenError::NotConfigured(e) => CrmError::NotConfigured(e),
            TokenError::Store(e) => CrmError::Store(e),
            TokenError::Vault(e) => {
                CrmError::Busy(format!("the account's token cannot be read: {e}"))
            }
        }
    }
}

/// Replies, as the account, to an Instagram comment of the inbox (through the Graph API
/// replies endpoint) and records the reply as an outbound interaction under it.
pub async fn reply(
    app: &App,
    workspace_id: &str,
    interaction_id: &str,
    text: &str,
) -> Result<Interaction, CrmError> {
    let original = interactions::get(&app.db, workspace_id, interaction_id)
        .await?
        .ok_or(CrmError::NotFound("interaction"))?;
    let text = text.trim();
    if text.is_empty() {
        return Err(CrmError::Invalid("text must not be empty".into()));
    }
    if text.chars().count() > REPLY_MAX_CHARS {
        return Err(CrmError::Invalid(format!(
            "text must be at most {REPLY_MAX_CHARS} characters (Instagram's limit)"
        )));
    }
    if !crate::platforms::can_answer(original.platform, &original.kind) {
        return Err(CrmError::Unsupported(format!(
            "only Instagram comments can be answered from tidepost; this is a {} {}",
            original.platform.display_name(),
            original.kind
        )));
    }
    let account_id = original
        .account_id
        .as_deref()
        .ok_or(CrmError::NotFound("account"))?;
    let account = accounts::get(&app.db, workspace_id, account_id)
        .await?
        .ok_or_else(|| {
            CrmError::Unsupported(
                "the account this comment was made on is no longer connected".into(),
            )
        })?;
    // Instagram threads replies under the top-level comment.
    let thread = original
        .parent_provider_id
        .clone()
        .unwrap_or_else(|| original.provider_id.clone());
    let client = app.providers.meta()?.clone();
    let host = crate::instagram::host_of(&account);
    let reply_id = tokens::with_token(app, &account, |token| {
        let client = client.clone();
        let thread = thread.clone();
        async move { client.reply(host, &token, &thread, text).await }
    })
    .await?;
    let now = tidepost_domain::now_ms();
    let observed = Observed {
        platform: Platform::Instagram,
        kind: "reply",
        direction: "outbound",
        provider_id: &reply_id,
        parent_provider_id: Some(&thread),
        author: None,
        account_id: &account.id,
        provider_media_id: original.provider_media_id.as_deref(),
        text,
        occurred_at: now,
    };
    let mut tx = app.db.begin_write().await?;
    let recorded = interactions::record_in(&mut tx, workspace_id, &observed).await?;
    if let Some(i) = &recorded {
        announce_in(&mut tx, i).await?;
    }
    tx.commit().await.map_err(StoreError::from)?;
    match recorded {
        Some(i) => Ok(i),
        // A webhook about our own reply got there first.
        None => interactions::by_provider_id(&app.db, workspace_id, Platform::Instagram, &reply_id)
            .await?
            .ok_or(CrmError::NotFound("interaction")),
    }
}
