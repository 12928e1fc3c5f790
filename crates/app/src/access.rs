//! Who may do what: users with argon2id passwords, browser sessions with CSRF tokens, per-
//! workspace API keys, and a sign-in limit against password guessing shared by every instance
//! (its counters live in the database).

use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tidepost_domain::{new_id, now_ms};
use tidepost_store::api_keys::{self, ApiKey};
use tidepost_store::users::{self, Role, User};
use tidepost_store::workspaces::{self, Workspace};
use tidepost_store::{Db, StoreError, login_attempts, sessions};

/// Failed sign-ins allowed per email (and per client address) within [`LOGIN_WINDOW_MS`].
pub const LOGIN_MAX_FAILURES: i64 = 5;
pub const LOGIN_WINDOW_MS: i64 = 15 * 60 * 1000;

/// The scopes an API key can carry.
pub const SCOPES: &[&str] = &["api", "worker"];

#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error("wrong email or password")]
    WrongCredentials,
    #[error("too many failed sign-ins; try again in {retry_after_secs} seconds")]
    TooManyAttempts { retry_after_secs: i64 },
    #[error("the password must be at least 10 characters long")]
    WeakPassword,
    #[error("{0:?} is not a valid email address")]
    InvalidEmail(String),
    #[error(
        "{0:?} is not a valid workspace name: use 1 to 40 lower-case letters, digits and dashes"
    )]
    InvalidWorkspace(String),
    #[error("unknown workspace {0:?}")]
    UnknownWorkspace(String),
    #[error("unknown scope {0:?}: use {scopes}", scopes = SCOPES.join(", "))]
    UnknownScope(String),
    #[error("an API key name must be 1 to 80 characters")]
    InvalidKeyName,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// 32 random bytes, base64url without padding: session tokens, CSRF tokens, OAuth state.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// SHA-256 in hex: how session tokens and API keys are stored.
pub fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// Compares two secrets in constant time.
pub fn secrets_equal(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// An argon2id hash (PHC string) with a fresh random salt.
pub fn hash_password(password: &str) -> String {
    Argon2::default()
        .hash_password(password.as_bytes())
        .expect("argon2 with default parameters")
        .to_string()
}

pub fn verify_password(password: &str, hash: &str) -> bool {
    Argon2::default()
        .verify_password(password.as_bytes(), hash)
        .is_ok()
}

/// A hash to verify against when the email is unknown, so that both paths take as long.
fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password("decoy password that matches nothing"))
}

pub fn validate_email(email: &str) -> Result<String, AccessError> {
    let email = email.trim().to_lowercase();
    let ok = email.len() <= 254
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        })
        && !email.chars().any(|c| c.is_whitespace());
    if ok {
        Ok(email)
    } else {
        Err(AccessError::InvalidEmail(email))
    }
}

pub fn validate_workspace_slug(slug: &str) -> Result<String, AccessError> {
    let slug = slug.trim().to_lowercase();
    let ok = (1..=40).contains(&slug.len())
        && slug
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !slug.starts_with('-');
    if ok {
        Ok(slug)
    } else {
        Err(AccessError::InvalidWorkspace(slug))
    }
}

/// Creates a user (or adds an existing one) as owner of the workspace, created if needed.
pub async fn create_user(
    db: &Db,
    email: &str,
    password: &str,
    workspace: &str,
) -> Result<(User, Workspace), AccessError> {
    let email = validate_email(email)?;
    let slug = validate_workspace_slug(workspace)?;
    if password.chars().count() < 10 {
        return Err(AccessError::WeakPassword);
    }
    let ws = workspaces::get_or_create(db, &slug, &slug).await?;
    let user = users::create(db, &email, &hash_password(password)).await?;
    users::add_membership(db, &ws.id, &user.id, Role::Owner).await?;
    Ok((user, ws))
}

/// A signed-in browser session, as the cookie and the forms need it.
#[derive(Debug, Clone)]
pub struct NewSession {
    /// The cookie value (only its hash is stored).
    pub token: String,
    pub csrf_token: String,
    pub workspace: Workspace,
    pub user: User,
    pub expires_at: i64,
}

/// Checks the password (with the shared failure limit) and opens a session in the user's first
/// workspace. `client` identifies the caller (its address) for the per-client limit.
pub async fn sign_in(
    db: &Db,
    email: &str,
    password: &str,
    client: &str,
    session_hours: u32,
) -> Result<NewSession, AccessError> {
    let now = now_ms();
    let email = email.trim().to_lowercase();
    let subjects = [format!("email:{email}"), format!("client:{client}")];
    for (i, subject) in subjects.iter().enumerate() {
        // A shared address (an office, a proxy) gets more room than a single account.
        let limit = if i == 0 {
            LOGIN_MAX_FAILURES
        } else {
            LOGIN_MAX_FAILURES * 4
        };
        let (failures, oldest) =
            login_attempts::failures_since(db, subject, now - LOGIN_WINDOW_MS).await?;
        if failures >= limit {
            let retry_at = oldest.unwrap_or(now) + LOGIN_WINDOW_MS;
            return Err(AccessError::TooManyAttempts {
                retry_after_secs: ((retry_at - now) / 1000).max(1),
            });
        }
    }
    let user = users::by_email(db, &email).await?;
    let verified = match &user {
        Some(user) => verify_password(password, &user.password_hash),
        None => {
            verify_password(password, decoy_hash());
            false
        }
    };
    let (Some(user), true) = (user, verified) else {
        for subject in &subjects {
            login_attempts::record_failure(db, subject, now).await?;
        }
        return Err(AccessError::WrongCredentials);
    };
    login_attempts::clear(db, &subjects[0]).await?;
    let workspace = users::workspaces_of(db, &user.id)
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| {
            AccessError::UnknownWorkspace("(none: this user belongs to no workspace)".into())
        })?;
    let token = random_token();
    let session = sessions::Session {
        token_hash: sha256_hex(&token),
        workspace_id: workspace.id.clone(),
        user_id: user.id.clone(),
        csrf_token: random_token(),
        created_at: now,
        expires_at: now + i64::from(session_hours) * 3_600_000,
    };
    sessions::create(db, &session).await?;
    Ok(NewSession {
        token,
        csrf_token: session.csrf_token,
        workspace,
        user,
        expires_at: session.expires_at,
    })
}

/// The live session behind a cookie value, with its user and workspace.
pub async fn session_from_cookie(
    db: &Db,
    token: &str,
) -> Result<Option<(sessions::Session, User, Workspace)>, AccessError> {
    let Some(session) = sessions::find_live(db, &sha256_hex(token), now_ms()).await? else {
        return Ok(None);
    };
    let (Some(user), Some(ws)) = (
        users::by_id(db, &session.user_id).await?,
        workspaces::by_id(db, &session.workspace_id).await?,
    ) else {
        return Ok(None);
    };
    Ok(Some((session, user, ws)))
}

pub async fn sign_out(db: &Db, token: &str) -> Result<(), AccessError> {
    sessions::delete(db, &sha256_hex(token)).await?;
    Ok(())
}

/// A freshly created API key: `secret` is shown once and never stored.
#[derive(Debug)]
pub struct CreatedKey {
    pub key: ApiKey,
    pub secret: String,
}

/// API keys look like `tp_` + 43 base64url characters; the first 12 characters are kept as a
/// visible prefix.
pub async fn create_api_key(
    db: &Db,
    workspace_id: &str,
    name: &str,
    scopes: &[&str],
) -> Result<CreatedKey, AccessError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 80 {
        return Err(AccessError::InvalidKeyName);
    }
    for scope in scopes {
        if !SCOPES.contains(scope) {
            return Err(AccessError::UnknownScope(scope.to_string()));
        }
    }
    let mut scopes: Vec<&str> = scopes.to_vec();
    if scopes.is_empty() {
        scopes.push("api");
    }
    scopes.sort_unstable();
    scopes.dedup();
    let secret = format!("tp_{}", random_token());
    let key = ApiKey {
        id: new_id(),
        workspace_id: workspace_id.to_string(),
        name: name.to_string(),
        prefix: secret[..12].to_string(),
        key_hash: sha256_hex(&secret),
        scopes: scopes.join(" "),
        created_at: now_ms(),
        last_used_at: None,
        revoked_at: None,
    };
    api_keys::insert(db, &key).await?;
    Ok(CreatedKey { key, secret })
}

/// Why a bearer token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyRefusal {
    #[error("the API key is malformed: expected `tp_` followed by 43 characters")]
    Malformed,
    #[error("the API key is not known")]
    Unknown,
    #[error("the API key was revoked")]
    Revoked,
}

/// Resolves a bearer token to its live API key.
pub async fn authenticate_api_key(
    db: &Db,
    secret: &str,
) -> Result<Result<ApiKey, KeyRefusal>, AccessError> {
    let well_formed = secret.len() == 46
        && secret.starts_with("tp_")
        && secret[3..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !well_formed {
        return Ok(Err(KeyRefusal::Malformed));
    }
    let Some(key) = api_keys::find_by_hash(db, &sha256_hex(secret)).await? else {
        return Ok(Err(KeyRefusal::Unknown));
    };
    if key.revoked_at.is_some() {
        return Ok(Err(KeyRefusal::Revoked));
    }
    api_keys::touch(db, &key.id, now_ms()).await?;
    Ok(Ok(key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tidepost_store::both_backends;

    #[test]
    fn passwords_round_trip() {
        let hash = hash_password("correct horse battery");
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", &hash));
        assert!(!verify_password("wrong", &hash));
        assert!(!verify_password("x", "not a hash"));
    }

    #[test]
    fn input_validation() {
        assert_eq!(
            validate_email(" Ada@Example.COM ").unwrap(),
            "ada@example.com"
        );
        for bad in ["", "ada", "ada@", "@x.y", "a b@c.d", "a@nodot"] {
            assert!(validate_email(bad).is_err(), "{bad}");
        }
        assert_eq!(validate_workspace_slug("Acme-1").unwrap(), "acme-1");
        for bad in ["", "-x", "a b", "ünï", &"x".repeat(41)] {
            assert!(validate_workspace_slug(bad).is_err(), "{bad}");
        }
    }

    both_backends!(sign_in_and_limits, |db: Db| async move {
        assert!(matches!(
            create_user(&db, "a@b.co", "short", "w").await,
            Err(AccessError::WeakPassword)
        ));
        let (user, ws) = create_user(&db, "ada@example.com", "correct horse battery", "acme")
            .await
            .unwrap();
        let session = sign_in(
            &db,
            "ADA@example.com",
            "correct horse battery",
            "1.2.3.4",
            1,
        )
        .await
        .unwrap();
        assert_eq!(
            (session.user.id.as_str(), session.workspace.id.as_str()),
            (user.id.as_str(), ws.id.as_str())
        );
        let (_, found_user, found_ws) = session_from_cookie(&db, &session.token)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (found_user.id, found_ws.id),
            (user.id.clone(), ws.id.clone())
        );
        sign_out(&db, &session.token).await.unwrap();
        assert!(
            session_from_cookie(&db, &session.token)
                .await
                .unwrap()
                .is_none()
        );

        for _ in 0..LOGIN_MAX_FAILURES {
            assert!(matches!(
                sign_in(&db, "ada@example.com", "nope", "5.6.7.8", 1).await,
                Err(AccessError::WrongCredentials)
            ));
        }
        let err = sign_in(
            &db,
            "ada@example.com",
            "correct horse battery",
            "5.6.7.8",
            1,
        )
        .await
        .unwrap_err();
        assert!(
            matches!(err, AccessError::TooManyAttempts { retry_after_secs } if retry_after_secs > 800),
            "{err}"
        );
        // Unknown emails are refused the same way.
        assert!(matches!(
            sign_in(&db, "nobody@example.com", "x", "9.9.9.9", 1).await,
            Err(AccessError::WrongCredentials)
        ));
    });

    both_backends!(api_keys, |db: Db| async move {
        let (_, ws) = create_user(&db, "ada@example.com", "correct horse battery", "acme")
            .await
            .unwrap();
        assert!(matches!(
            create_api_key(&db, &ws.id, "ci", &["root"]).await,
            Err(AccessError::UnknownScope(_))
        ));
        assert!(matches!(
            create_api_key(&db, &ws.id, " ", &[]).await,
            Err(AccessError::InvalidKeyName)
        ));
        let created = create_api_key(&db, &ws.id, "ci", &["worker", "api"])
            .await
            .unwrap();
        assert_eq!(created.secret.len(), 46);
        assert_eq!(created.key.scopes, "api worker");
        let key = authenticate_api_key(&db, &created.secret)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(key.workspace_id, ws.id);
        assert_eq!(
            authenticate_api_key(&db, "tp_short")
                .await
                .unwrap()
                .unwrap_err(),
            KeyRefusal::Malformed
        );
        let unknown = format!("tp_{}", random_token());
        assert_eq!(
            authenticate_api_key(&db, &unknown)
                .await
                .unwrap()
                .unwrap_err(),
            KeyRefusal::Unknown
        );
        tidepost_store::api_keys::revoke(&db, &ws.id, &key.id, now_ms())
            .await
            .unwrap();
        assert_eq!(
            authenticate_api_key(&db, &created.secret)
                .await
                .unwrap()
                .unwrap_err(),
            KeyRefusal::Revoked
        );
    });
}
