//! The inbound Instagram webhook.
//!
//! - [`handshake`]: `GET /webhooks/instagram?hub.mode=subscribe&hub.verify_token=…&hub.challenge=…`
//!   answers the challenge only when the verify token matches (constant time).
//! - [`receive`]: verifies `X-Hub-Signature-256` over the raw body (constant time; the
//!   configured webhook secret or the Facebook app secret, or the Instagram app secret for
//!   Instagram Login deliveries), stores the raw event under a unique dedupe key (the SHA-256 of
//!   the body) and enqueues `instagram.webhook`, all before the sender gets its 200.
//! - [`apply`]: records each comment and mention as a CRM contact and interaction (with
//!   `interaction.created`) in the workspace of every connected account the entry is about,
//!   once per comment id (see [`crate::crm`]). Applying twice changes nothing more.

use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tidepost_jobs::JobError;
use tidepost_providers::meta::{MetaChange, parse_meta_webhook, verify_meta_signature};
use tidepost_store::inbound_events::{self, InboundEvent};
use tidepost_store::{StoreError, accounts};

use crate::App;
use crate::pipeline::inbound::EventRef;

pub const WEBHOOK_JOB: &str = "instagram.webhook";

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("Instagram webhooks are not configured: {0}")]
    NotConfigured(String),
    #[error("missing X-Hub-Signature-256 header")]
    MissingSignature,
    #[error("the X-Hub-Signature-256 header is not a valid signature of this body")]
    BadSignature,
    #[error("the body is not an Instagram webhook: {0}")]
    Malformed(String),
    /// Storing the event or enqueuing its job failed (they commit together).
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl WebhookError {
    /// A short label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            WebhookError::NotConfigured(_) => "not_configured",
            WebhookError::MissingSignature => "missing_signature",
            WebhookError::BadSignature => "bad_signature",
            WebhookError::Malformed(_) => "malformed",
            WebhookError::Store(_) => "internal",
        }
    }
}

/// The handshake's answer: the challenge to echo, or why not.
#[derive(Debug, PartialEq, Eq)]
pub enum Handshake {
    Accept(String),
    /// No verify token is configured: nothing can be verified.
    NotConfigured,
    Refuse,
}

/// Checks Meta's verification request.
pub fn handshake(
    app: &App,
    mode: Option<&str>,
    verify_token: Option<&str>,
    challenge: Option<&str>,
) -> Handshake {
    let Some(expected) = app.providers.meta_verify_token() else {
        return Handshake::NotConfigured;
    };
    let given = verify_token.unwrap_or("");
    let matches: bool = given
        .as_bytes()
        .ct_eq(expected.expose_secret().as_bytes())
        .into();
    match (mode, challenge) {
        (Some("subscribe"), Some(challenge)) if matches && is_plain(challenge) => {
            Handshake::Accept(challenge.to_string())
        }
        _ => Handshake::Refuse,
    }
}

/// Challenges are numbers or letters; anything else is not echoed.
fn is_plain(challenge: &str) -> bool {
    !challenge.is_empty()
        && challenge.len() <= 256
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

/// What [`receive`] did with a delivery.
#[derive(Debug, Clone)]
pub struct Receipt {
    pub event_id: String,
    /// The same body was received before (applied once).
    pub duplicate: bool,
}

fn verified(secrets: &[SecretString], header: &str, body: &[u8]) -> bool {
    secrets
        .iter()
        .any(|secret| verify_meta_signature(header, body, secret).is_ok())
}

/// Verifies, stores and enqueues one delivery.
pub async fn receive(
    app: &App,
    signature: Option<&str>,
    body: &[u8],
) -> Result<Receipt, WebhookError> {
    let secrets = app.providers.meta_webhook_secrets();
    if secrets.is_empty() {
        return Err(WebhookError::NotConfigured(
            "set TIDEPOST_FACEBOOK_APP_SECRET or TIDEPOST_INSTAGRAM_WEBHOOK_SECRET".into(),
        ));
    }
    let header = signature.ok_or(WebhookError::MissingSignature)?;
    if !verified(secrets, header, body) {
        return Err(WebhookError::BadSignature);
    }
    let parsed = parse_meta_webhook(body).map_err(|e| WebhookError::Malformed(e.to_string()))?;
    let text = String::from_utf8(body.to_vec())
        .map_err(|_| WebhookError::Malformed("the body is not UTF-8".into()))?;
    let fields: Vec<String> = parsed
        .entries
        .iter()
        .flat_map(|e| e.changes.iter().map(change_field))
        .collect();
    let event = InboundEvent {
        id: tidepost_domain::new_id(),
        provider: "instagram".into(),
        dedupe_key: format!("instagram:{}", hex::encode(Sha256::digest(body))),
        event_type: if fields.is_empty() {
            parsed.object.clone()
        } else {
            fields.join(",")
        },
        body: text,
        signature_ts: None,
        received_at: tidepost_domain::now_ms(),
        applied_at: None,
        apply_result: None,
    };
    // The event and its `instagram.webhook` job commit together, grouped with concurrent
    // deliveries of either provider (the payload is the same `{event_id}` reference).
    let (stored, inserted) =
        crate::pipeline::inbound::store_and_enqueue(app, &event, WEBHOOK_JOB).await?;
    Ok(Receipt {
        event_id: stored.id,
        duplicate: !inserted,
    })
}

fn change_field(change: &MetaChange) -> String {
    match change {
        MetaChange::Comment { .. } => "comments".into(),
        MetaChange::Mention { .. } => "mentions".into(),
        MetaChange::Other { field, .. } => field.clone(),
    }
}

/// Applies a stored event (the `instagram.webhook` job).
pub async fn apply(app: &App, r: &EventRef) -> Result<(), JobError> {
    let Some(event) = inbound_events::get(&app.db, &r.event_id).await? else {
        return Ok(());
    };
    if event.applied_at.is_some() {
        return Ok(());
    }
    let now = tidepost_domain::now_ms();
    let parsed = match parse_meta_webhook(event.body.as_bytes()) {
        Ok(parsed) => parsed,
        Err(e) => {
            inbound_events::mark_applied(&app.db, &event.id, &format!("unreadable: {e}"), now)
                .await?;
            return Ok(());
        }
    };
    let mut recorded = 0usize;
    let mut unknown = 0usize;
    // The interactions and the applied mark commit together: exactly once, even when two
    // runs race or one dies mid-way.
    let mut tx = app.db.begin_write().await?;
    for entry in &parsed.entries {
        let owners =
            accounts::by_provider_identity(&app.db, super::PLATFORM, &entry.account_id).await?;
        if owners.is_empty() {
            unknown += entry.changes.len();
            continue;
        }
        for change in &entry.changes {
            if matches!(change, MetaChange::Other { .. }) {
                continue;
            }
            for account in &owners {
                // The contact and the interaction, once per comment id however often Meta
                // delivers it; `interaction.created` only for a new one.
                if crate::crm::record_webhook_change_in(&mut tx, account, change, entry.time)
                    .await?
                    .is_some()
                {
                    recorded += 1;
                }
            }
        }
    }
    let applied = inbound_events::mark_applied_in(
        &mut tx,
        &event.id,
        &format!("{recorded} interactions recorded, {unknown} changes for accounts not connected"),
        now,
    )
    .await?;
    if applied {
        tx.commit().await.map_err(StoreError::from)?;
    } else {
        tx.rollback().await.map_err(StoreError::from)?;
    }
    Ok(())
}
