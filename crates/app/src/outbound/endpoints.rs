//! Managing a workspace's webhook endpoints: create (the secret is returned once), change,
//! enable/disable, rotate the secret (the old one keeps signing during the overlap window),
//! delete. URLs pass the SSRF guard when saved; secrets are sealed with the keyring, bound to
//! `webhook_endpoints/<id>/secret` (and `previous_secret`).

use tidepost_domain::now_ms;
use tidepost_store::webhook_endpoints::{self, Endpoint, Retired, TABLE};
use tidepost_store::{StoreError, webhook_deliveries};
use tidepost_vault::{Aad, VaultError};

use super::{EVENT_TYPES, policy, signing};
use crate::App;
use crate::net_guard::{self, GuardError};

pub const SECRET: &str = "secret";
pub const PREVIOUS_SECRET: &str = "previous_secret";
const MAX_URL: usize = 2048;
const MAX_DESCRIPTION: usize = 200;

#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    /// Bad input: `field` names what to fix.
    #[error("{message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("url: {0}")]
    Url(#[from] GuardError),
    #[error("the secret was rotated at the same moment by someone else; try again")]
    Busy,
    #[error("a stored webhook secret cannot be decrypted: {0}")]
    Vault(#[from] VaultError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl EndpointError {
    fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        EndpointError::Invalid {
            field,
            message: message.into(),
        }
    }

    /// The input field the error is about, if any.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            EndpointError::Invalid { field, .. } => Some(field),
            EndpointError::Url(_) => Some("url"),
            EndpointError::Busy | EndpointError::Vault(_) | EndpointError::Store(_) => None,
        }
    }
}

/// What [`create`] and [`rotate_secret`] return: the endpoint and its new secret, which is
/// shown this once and never again.
#[derive(Debug, Clone)]
pub struct WithSecret {
    pub endpoint: Endpoint,
    pub secret: String,
}

/// A new endpoint as asked for.
#[derive(Debug, Clone, Default)]
pub struct NewEndpoint {
    pub url: String,
    pub description: String,
    /// Empty: every event type.
    pub event_types: Vec<String>,
    pub enabled: bool,
}

/// Changes to an endpoint; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct Changes {
    pub url: Option<String>,
    pub description: Option<String>,
    pub event_types: Option<Vec<String>>,
    pub enabled: Option<bool>,
}

fn aad<'a>(id: &'a str, column: &'a str) -> Aad<'a> {
    Aad::new(TABLE, id, column)
}

/// The keys to sign with at `now`: the current secret's, then every rotated-out one's whose
/// overlap window is still open, newest first (each rotation promises its old secret the whole
/// overlap, however often the secret is rotated meanwhile).
pub fn signing_keys(app: &App, endpoint: &Endpoint, now: i64) -> Result<Vec<Vec<u8>>, String> {
    let open = |envelope: &str, column: &str| -> Result<Vec<u8>, String> {
        let secret = app
            .keyring
            .decrypt_str(envelope, &aad(&endpoint.id, column))
            .map_err(|e| format!("the endpoint's secret cannot be decrypted: {e}"))?;
        signing::key_bytes(secrecy::ExposeSecret::expose_secret(&secret))
    };
    let mut keys = vec![open(&endpoint.secret, SECRET)?];
    for retired in endpoint.retired_secrets_at(now) {
        keys.push(open(&retired.secret, PREVIOUS_SECRET)?);
    }
    Ok(keys)
}

/// Checks the event types (known, no repeats) and joins them as stored.
pub fn event_types_text(types: &[String]) -> Result<String, EndpointError> {
    let mut seen: Vec<&str> = Vec::new();
    for t in types {
        let t = t.trim();
        if !EVENT_TYPES.iter().any(|(name, _)| *name == t) {
            return Err(EndpointError::invalid(
                "event_types",
                format!(
                    "unknown event type {t:?}; known types: {}",
                    super::event_type_names().join(", ")
                ),
            ));
        }
        if !seen.contains(&t) {
            seen.push(t);
        }
    }
    Ok(seen.join(" "))
}

fn check_description(text: &str) -> Result<String, EndpointError> {
    let text = text.trim();
    if text.chars().count() > MAX_DESCRIPTION {
        return Err(EndpointError::invalid(
            "description",
            format!("the description is longer than {MAX_DESCRIPTION} characters"),
        ));
    }
    if text.chars().any(char::is_control) {
        return Err(EndpointError::invalid(
            "description",
            "the description must be one line of text",
        ));
    }
    Ok(text.to_string())
}

/// Parses and checks a URL with the SSRF guard (resolving its host now).
pub async fn check_url(app: &App, text: &str) -> Result<String, EndpointError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(EndpointError::invalid(
            "url",
            "give the URL to send events to",
        ));
    }
    if text.len() > MAX_URL {
        return Err(EndpointError::invalid(
            "url",
            format!("the URL is longer than {MAX_URL} characters"),
        ));
    }
    let (url, _) = net_guard::check_url(text, policy(app)).await?;
    Ok(url.to_string())
}

pub async fn create(
    app: &App,
    workspace_id: &str,
    new: NewEndpoint,
) -> Result<WithSecret, EndpointError> {
    // The cheap checks first: the URL's needs a DNS answer.
    let description = check_description(&new.description)?;
    let event_types = event_types_text(&new.event_types)?;
    let url = check_url(app, &new.url).await?;
    let now = now_ms();
    let id = tidepost_domain::new_id();
    let secret = signing::new_secret();
    let endpoint = Endpoint {
        secret: app.keyring.encrypt_str(&secret, &aad(&id, SECRET)),
        id,
        workspace_id: workspace_id.to_string(),
        url,
        description,
        event_types,
        previous_secret: None,
        previous_secret_until: None,
        older_secrets: "[]".into(),
        disabled_at: (!new.enabled).then_some(now),
        disabled_reason: (!new.enabled).then(|| "created disabled".to_string()),
        failure_streak: 0,
        last_success_at: None,
        created_at: now,
        updated_at: now,
    };
    webhook_endpoints::insert(&app.db, &endpoint).await?;
    tracing::info!(endpoint_id = %endpoint.id, workspace_id, "webhook endpoint created");
    Ok(WithSecret { endpoint, secret })
}

/// Applies `changes`; `Ok(None)` when there is no such endpoint in the workspace.
pub async fn update(
    app: &App,
    workspace_id: &str,
    id: &str,
    changes: Changes,
) -> Result<Option<Endpoint>, EndpointError> {
    let Some(current) = webhook_endpoints::get(&app.db, workspace_id, id).await? else {
        return Ok(None);
    };
    let description = match &changes.description {
        Some(d) => check_description(d)?,
        None => current.description.clone(),
    };
    let event_types = match &changes.event_types {
        Some(types) => event_types_text(types)?,
        None => current.event_types.clone(),
    };
    let url = match &changes.url {
        Some(url) => check_url(app, url).await?,
        None => current.url.clone(),
    };
    let now = now_ms();
    webhook_endpoints::update(
        &app.db,
        workspace_id,
        id,
        &url,
        &description,
        &event_types,
        now,
    )
    .await?;
    match changes.enabled {
        Some(true) => {
            webhook_endpoints::enable(&app.db, workspace_id, id, now).await?;
        }
        Some(false) => {
            set_disabled(app, workspace_id, id, "disabled by a person").await?;
        }
        None => {}
    }
    Ok(webhook_endpoints::get(&app.db, workspace_id, id).await?)
}

/// Disables the endpoint and fails its pending deliveries; false when it was already disabled.
pub async fn set_disabled(
    app: &App,
    workspace_id: &str,
    id: &str,
    reason: &str,
) -> Result<bool, StoreError> {
    let now = now_ms();
    let disabled = webhook_endpoints::disable(&app.db, workspace_id, id, reason, now).await?;
    if disabled {
        webhook_deliveries::fail_pending(
            &app.db,
            workspace_id,
            id,
            &format!("not sent: the endpoint was disabled ({reason})"),
            now,
        )
        .await?;
    }
    Ok(disabled)
}

/// A new secret; the old one keeps signing (beside it) for `webhooks_secret_overlap_secs`,
/// and so does every secret rotated out earlier until its own overlap ends.
pub async fn rotate_secret(
    app: &App,
    workspace_id: &str,
    id: &str,
) -> Result<Option<WithSecret>, EndpointError> {
    let Some(current) = webhook_endpoints::get(&app.db, workspace_id, id).await? else {
        return Ok(None);
    };
    let now = now_ms();
    let secret = signing::new_secret();
    // The current secret moves to `previous_secret`: re-seal it for that column.
    let old = app.keyring.decrypt_str(&current.secret, &aad(id, SECRET))?;
    let previous = app.keyring.encrypt_str(
        secrecy::ExposeSecret::expose_secret(&old),
        &aad(id, PREVIOUS_SECRET),
    );
    let sealed = app.keyring.encrypt_str(&secret, &aad(id, SECRET));
    let overlap_ms = i64::try_from(app.config.outbound.secret_overlap_secs)
        .unwrap_or(86_400)
        .saturating_mul(1000);
    // The secrets rotated out before, still in their overlap (the former previous one first),
    // keep their envelopes (sealed as rotated-out secrets) and their own end.
    let older = webhook_endpoints::older_json(&current.retired_secrets_at(now));
    let rotated = webhook_endpoints::rotate_secret(
        &app.db,
        workspace_id,
        id,
        &current.secret,
        &sealed,
        &previous,
        now + overlap_ms,
        &older,
        now,
    )
    .await?;
    if !rotated {
        return Err(EndpointError::Busy);
    }
    tracing::info!(endpoint_id = %id, workspace_id, "webhook secret rotated");
    let endpoint = webhook_endpoints::get(&app.db, workspace_id, id)
        .await?
        .ok_or(EndpointError::Busy)?;
    Ok(Some(WithSecret { endpoint, secret }))
}

pub async fn delete(app: &App, workspace_id: &str, id: &str) -> Result<bool, StoreError> {
    let deleted = webhook_endpoints::delete(&app.db, workspace_id, id).await?;
    if deleted {
        tracing::info!(endpoint_id = %id, workspace_id, "webhook endpoint deleted");
    }
    Ok(deleted)
}

/// Re-encrypts every endpoint's secrets under the keyring's primary key (part of `tidepost
/// keys rotate`), counting into `report`. Each row is replaced only if it still holds what was
/// read (a secret rotated meanwhile is already under the new key).
pub async fn rotate_keys(
    app: &App,
    report: &mut crate::connect::RotationReport,
) -> Result<(), crate::connect::ConnectError> {
    for (id, secret, previous, older_json) in
        webhook_endpoints::all_secret_envelopes(&app.db).await?
    {
        let older: Vec<Retired> = serde_json::from_str(&older_json).unwrap_or_default();
        let needs = app.keyring.needs_rotation(&secret)
            || previous
                .as_deref()
                .is_some_and(|p| app.keyring.needs_rotation(p))
            || older.iter().any(|r| app.keyring.needs_rotation(&r.secret));
        if !needs {
            report.already_current += 1;
            continue;
        }
        let new_secret = app.keyring.reencrypt(&secret, &aad(&id, SECRET))?;
        let new_previous = match &previous {
            Some(p) => Some(app.keyring.reencrypt(p, &aad(&id, PREVIOUS_SECRET))?),
            None => None,
        };
        let mut new_older = Vec::with_capacity(older.len());
        for r in &older {
            new_older.push(Retired {
                secret: app
                    .keyring
                    .reencrypt(&r.secret, &aad(&id, PREVIOUS_SECRET))?,
                until: r.until,
            });
        }
        let new_older = webhook_endpoints::older_json(&new_older);
        if webhook_endpoints::replace_secret_envelopes(
            &app.db,
            &id,
            (&secret, previous.as_deref(), &older_json),
            (&new_secret, new_previous.as_deref(), &new_older),
        )
        .await?
        {
            report.reencrypted += 1;
        } else {
            report.skipped_changed += 1;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;
    use tidepost_store::{Db, both_backends};
    use tidepost_vault::Keyring;

    use super::*;
    use crate::config::{Config, RawSettings};
    use crate::providers::Providers;

    fn app(db: &Db, keys: &str) -> App {
        let raw = RawSettings::gather(&[("sandbox", "true".into())], |_| None, None).unwrap();
        let config = Config::from_raw(&raw).unwrap();
        let providers = Providers::from_config(&config, None);
        App::new(config, db.clone(), Keyring::parse(keys).unwrap(), providers)
    }

    both_backends!(key_rotation_reseals_webhook_secrets, |db: Db| async move {
        let old_key = Keyring::generate_key_text().expose_secret().to_string();
        let new_key = Keyring::generate_key_text().expose_secret().to_string();
        let before = app(&db, &old_key);
        let ws = tidepost_store::workspaces::create(&db, "w", "W")
            .await
            .unwrap()
            .id;
        let new = NewEndpoint {
            url: "http://127.0.0.1:9/hook".into(),
            enabled: true,
            ..Default::default()
        };
        let created = create(&before, &ws, new).await.unwrap();
        let rotated = rotate_secret(&before, &ws, &created.endpoint.id)
            .await
            .unwrap()
            .unwrap();
        let keys_then = signing_keys(&before, &rotated.endpoint, now_ms()).unwrap();
        assert_eq!(
            keys_then.len(),
            2,
            "the new secret and, during the overlap, the old"
        );
        assert_eq!(keys_then[0], signing::key_bytes(&rotated.secret).unwrap());
        assert_eq!(keys_then[1], signing::key_bytes(&created.secret).unwrap());

        let during = app(&db, &format!("{new_key},{old_key}"));
        let mut report = crate::connect::RotationReport::default();
        rotate_keys(&during, &mut report).await.unwrap();
        assert_eq!((report.reencrypted, report.already_current), (1, 0));
        let mut again = crate::connect::RotationReport::default();
        rotate_keys(&during, &mut again).await.unwrap();
        assert_eq!((again.reencrypted, again.already_current), (0, 1));

        // The old key can go: both secrets open with the new one alone.
        let after = app(&db, &new_key);
        let endpoint = webhook_endpoints::get(&db, &ws, &created.endpoint.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            signing_keys(&after, &endpoint, now_ms()).unwrap(),
            keys_then
        );
        assert!(signing_keys(&before, &endpoint, now_ms()).is_err());
    });

    #[tokio::test]
    async fn bad_input_is_named() {
        let test_db = tidepost_store::testing::TestDb::sqlite().await;
        let key = Keyring::generate_key_text().expose_secret().to_string();
        let app = app(&test_db.db, &key);
        let ws = tidepost_store::workspaces::create(&app.db, "w", "W")
            .await
            .unwrap()
            .id;
        let attempt = |url: &str, types: &[&str], description: &str| NewEndpoint {
            url: url.into(),
            description: description.into(),
            event_types: types.iter().map(|t| t.to_string()).collect(),
            enabled: true,
        };
        let err = create(&app, &ws, attempt("http://127.0.0.1:9/", &["nope"], ""))
            .await
            .unwrap_err();
        assert_eq!(err.field(), Some("event_types"));
        assert!(err.to_string().contains("post.published"), "{err}");
        let err = create(&app, &ws, attempt("", &[], "")).await.unwrap_err();
        assert_eq!(err.field(), Some("url"));
        let err = create(
            &app,
            &ws,
            attempt("http://127.0.0.1:9/", &[], &"x".repeat(201)),
        )
        .await
        .unwrap_err();
        assert_eq!(err.field(), Some("description"));
        let ok = create(
            &app,
            &ws,
            attempt(
                "http://127.0.0.1:9/",
                &["post.failed", "post.failed", "account.connected"],
                " CRM ",
            ),
        )
        .await
        .unwrap();
        assert_eq!(ok.endpoint.event_types, "post.failed account.connected");
        assert_eq!(ok.endpoint.description, "CRM");
        // The secret is stored sealed, never in clear.
        assert!(!ok.endpoint.secret.contains(&ok.secret[6..]));
    }
}
