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
use tidepost_store::login_attempts::{self, Admission, Policy};
use tidepost_store::users::{self, Role, User};
use tidepost_store::workspaces::{self, Workspace};
use tidepost_store::{Db, StoreError, sessions};
use tidepost_vault::{Aad, Keyring};

/// Attempts one (account, client address) pair gets without delay within [`LOGIN_WINDOW_MS`].
pub const PAIR_FREE_ATTEMPTS: i64 = 5;
/// The wait after the pair's first attempt past the free ones; it doubles with each further
/// attempt, up to [`PAIR_MAX_DELAY_MS`].
pub const PAIR_FIRST_DELAY_MS: i64 = 30_000;
pub const PAIR_MAX_DELAY_MS: i64 = 15 * 60 * 1000;
/// Attempts an account gets from every address together (known devices aside) before it is
/// locked for [`ACCOUNT_LOCK_MS`].
pub const ACCOUNT_MAX_ATTEMPTS: i64 = 20;
pub const ACCOUNT_LOCK_MS: i64 = 15 * 60 * 1000;
/// A subject's count starts again after this long without an attempt.
pub const LOGIN_WINDOW_MS: i64 = 15 * 60 * 1000;
/// How long a browser stays a known device after signing in.
pub const KNOWN_DEVICE_MS: i64 = 180 * 24 * 3_600_000;

/// The scopes an API key can carry.
pub const SCOPES: &[&str] = &["api", "worker"];

#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error("wrong email or password")]
    WrongCredentials,
    #[error(
        "too many sign-in attempts for this account from here; try again in {}",
        wait_text(.retry_after_secs)
    )]
    TooManyAttempts { retry_after_secs: i64 },
    #[error(
        "this account is locked after too many failed sign-ins; try again in {}, sign in from a browser you signed in with before, or ask an administrator to run `tidepost user unlock`",
        wait_text(.retry_after_secs)
    )]
    AccountLocked { retry_after_secs: i64 },
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
    #[error("an API key cannot do more than the member who makes it: you are {}, and asked for {}", .yours.with_article(), .asked.with_article())]
    KeyAboveCreator { asked: Role, yours: Role },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A wait as a person reads it: "1 second", "45 seconds", "3 minutes" (rounded up).
fn wait_text(secs: &i64) -> String {
    let secs = (*secs).max(1);
    if secs < 60 {
        let s = if secs == 1 { "" } else { "s" };
        format!("{secs} second{s}")
    } else {
        let mins = (secs + 59) / 60;
        let s = if mins == 1 { "" } else { "s" };
        format!("{mins} minute{s}")
    }
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

/// Argon2 spends tens of milliseconds of CPU by design. On the async workers it would hold up
/// every other request on that worker meanwhile — among them one with a transaction open that
/// the others queue behind (twenty setup posts at once ran the pool out of connections) — so
/// requests hash and verify on tokio's blocking pool.
async fn hash_off_the_workers(password: &str) -> String {
    let password = password.to_string();
    tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .expect("argon2 with default parameters does not panic")
}

/// [`verify_password`] on the blocking pool, against `hash` or, for an unknown email, the decoy
/// hash (so that both take as long).
async fn verify_off_the_workers(password: &str, hash: Option<&str>) -> bool {
    let password = password.to_string();
    let hash = hash.map(str::to_string);
    tokio::task::spawn_blocking(move || {
        verify_password(&password, hash.as_deref().unwrap_or_else(|| decoy_hash()))
    })
    .await
    .unwrap_or(false)
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
    let user = users::create(db, &email, &hash_off_the_workers(password).await).await?;
    users::add_membership(db, &ws.id, &user.id, Role::Owner).await?;
    Ok((user, ws))
}

/// The first-run setup: creates the first user as owner of the workspace, only if no user exists
/// yet (checked and done in one transaction, see `users::create_first`); `Ok(None)` when a
/// user already exists, however it was made.
pub async fn create_first_user(
    db: &Db,
    email: &str,
    password: &str,
    workspace: &str,
) -> Result<Option<(User, Workspace)>, AccessError> {
    let email = validate_email(email)?;
    let slug = validate_workspace_slug(workspace)?;
    if password.chars().count() < 10 {
        return Err(AccessError::WeakPassword);
    }
    let hash = hash_off_the_workers(password).await;
    Ok(users::create_first(db, &email, &hash, &slug).await?)
}

/// A signed-in browser session, as the cookie and the forms need it.
#[derive(Debug, Clone)]
pub struct NewSession {
    /// The cookie value (only its hash is stored).
    pub token: String,
    pub csrf_token: String,
    /// A fresh known-device cookie value for this browser ([`is_known_device`]).
    pub device: String,
    pub workspace: Workspace,
    pub user: User,
    pub expires_at: i64,
}

/// What a sign-in form sent, with where it came from.
#[derive(Debug, Clone, Copy)]
pub struct SignIn<'a> {
    pub email: &'a str,
    pub password: &'a str,
    /// The client's address, for the per-(account, address) throttle.
    pub client: &'a str,
    /// The known-device cookies the browser sent, one per account it signed in to
    /// ([`NewSession::device`]); any of them may be this account's.
    pub devices: &'a [String],
    pub session_hours: u32,
}

/// How long the (account, address) pair waits after its `attempt`-th attempt.
fn pair_delay(attempt: i64) -> i64 {
    if attempt < PAIR_FREE_ATTEMPTS {
        return 0;
    }
    let doublings = u32::try_from(attempt - PAIR_FREE_ATTEMPTS)
        .unwrap_or(u32::MAX)
        .min(16);
    (PAIR_FIRST_DELAY_MS << doublings).min(PAIR_MAX_DELAY_MS)
}

/// How long the account is locked after its `attempt`-th attempt.
fn account_delay(attempt: i64) -> i64 {
    if attempt < ACCOUNT_MAX_ATTEMPTS {
        0
    } else {
        ACCOUNT_LOCK_MS
    }
}

const PAIR_POLICY: Policy = Policy {
    window_ms: LOGIN_WINDOW_MS,
    delay_after: pair_delay,
};

const ACCOUNT_POLICY: Policy = Policy {
    window_ms: LOGIN_WINDOW_MS,
    delay_after: account_delay,
};

/// The throttle subjects of a sign-in: the (account, address) pair and the account.
fn subjects(email: &str, client: &str) -> (String, String) {
    (
        format!("pair\n{email}\n{client}"),
        format!("account\n{email}"),
    )
}

/// Whole seconds (rounded up) from the moment of answering until `until`. Measured now, not at
/// the request's start: a refused request may have started before the one whose attempt set
/// the wait, and would otherwise name a second more than the wait.
fn retry_after_secs(until: i64) -> i64 {
    ((until - now_ms() + 999) / 1000).max(1)
}

/// Where a known-device cookie is sealed: bound to its user.
fn device_aad(user_id: &str) -> Aad<'_> {
    Aad::new("known_devices", user_id, "cookie")
}

/// A known-device cookie value for `user_id`, issued at `now`: the issue time sealed with the
/// keyring (AES-256-GCM, so it cannot be forged or moved to another user).
pub fn known_device_token(keyring: &Keyring, user_id: &str, now: i64) -> String {
    keyring.encrypt(now.to_string().as_bytes(), &device_aad(user_id))
}

/// True when `token` is a known-device cookie of `user_id` issued less than
/// [`KNOWN_DEVICE_MS`] before `now`.
pub fn is_known_device(keyring: &Keyring, user_id: &str, token: &str, now: i64) -> bool {
    use tidepost_vault::secrecy::ExposeSecret;
    keyring
        .decrypt_str(token, &device_aad(user_id))
        .ok()
        .and_then(|issued| issued.expose_secret().parse::<i64>().ok())
        .is_some_and(|issued| issued <= now && now - issued < KNOWN_DEVICE_MS)
}

/// Checks the password and opens a session in the user's first workspace.
///
/// The throttle (shared by every instance through the database) is asked before the password
/// is checked, and each question takes an attempt at once, so concurrent guesses cannot slip
/// past it:
/// - the (account, client address) pair gets [`PAIR_FREE_ATTEMPTS`], then waits
///   [`PAIR_FIRST_DELAY_MS`], doubling up to [`PAIR_MAX_DELAY_MS`] ([`AccessError::TooManyAttempts`]);
/// - the account gets [`ACCOUNT_MAX_ATTEMPTS`] from all addresses together, then is locked for
///   [`ACCOUNT_LOCK_MS`] ([`AccessError::AccountLocked`]) — except for a browser holding a
///   known-device cookie of the user, which only the pair throttle slows down; its correct
///   password lifts the lock.
///
/// A successful sign-in clears its pair and its account. Unknown emails are counted the same
/// way, so the answers do not tell which emails exist.
pub async fn sign_in(
    db: &Db,
    keyring: &Keyring,
    request: SignIn<'_>,
) -> Result<NewSession, AccessError> {
    let now = now_ms();
    let email = request.email.trim().to_lowercase();
    let (pair, account) = subjects(&email, request.client);
    let user = users::by_email(db, &email).await?;
    let known_device = user.as_ref().is_some_and(|user| {
        request
            .devices
            .iter()
            .any(|token| is_known_device(keyring, &user.id, token, now))
    });
    if let Admission::Refused { until } =
        login_attempts::admit(db, &email, &pair, now, PAIR_POLICY).await?
    {
        return Err(AccessError::TooManyAttempts {
            retry_after_secs: retry_after_secs(until),
        });
    }
    if !known_device
        && let Admission::Refused { until } =
            login_attempts::admit(db, &email, &account, now, ACCOUNT_POLICY).await?
    {
        return Err(AccessError::AccountLocked {
            retry_after_secs: retry_after_secs(until),
        });
    }
    let verified = match &user {
        Some(user) => verify_off_the_workers(request.password, Some(&user.password_hash)).await,
        None => {
            verify_off_the_workers(request.password, None).await;
            false
        }
    };
    let (Some(user), true) = (user, verified) else {
        return Err(AccessError::WrongCredentials);
    };
    login_attempts::clear(db, &[&pair, &account]).await?;
    let workspace = users::workspaces_of(db, &user.id)
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| {
            AccessError::UnknownWorkspace("(none: this user belongs to no workspace)".into())
        })?;
    Ok(open_session(db, keyring, user, workspace, request.session_hours).await?)
}

/// Opens a browser session for `user` in `workspace` (after a sign-in, or when someone who
/// just set their password by accepting an invite joins).
pub async fn open_session(
    db: &Db,
    keyring: &Keyring,
    user: User,
    workspace: Workspace,
    session_hours: u32,
) -> Result<NewSession, StoreError> {
    let now = now_ms();
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
        device: known_device_token(keyring, &user.id, now),
        workspace,
        user,
        expires_at: session.expires_at,
    })
}

/// Lifts every sign-in limit on the account with this email (its lock and the slowdown of each
/// address); returns how many of them were in force.
pub async fn unlock(db: &Db, email: &str) -> Result<u64, AccessError> {
    let email = validate_email(email)?;
    Ok(login_attempts::unlock(db, &email, now_ms()).await?)
}

/// The live session behind a cookie value, with its user, workspace and the user's role there.
/// `None` when the session is unknown or expired, or its user is no longer a member of its
/// workspace.
pub async fn session_from_cookie(
    db: &Db,
    token: &str,
) -> Result<Option<(sessions::Session, User, Workspace, Role)>, AccessError> {
    let Some(session) = sessions::find_live(db, &sha256_hex(token), now_ms()).await? else {
        return Ok(None);
    };
    let (Some(user), Some(ws), Some(role)) = (
        users::by_id(db, &session.user_id).await?,
        workspaces::by_id(db, &session.workspace_id).await?,
        users::role_of(db, &session.workspace_id, &session.user_id).await?,
    ) else {
        return Ok(None);
    };
    Ok(Some((session, user, ws, role)))
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

/// Who a new API key acts as: its role, and the member making it (with their role now), whose
/// role caps the key's for as long as the key lives ([`authenticate_api_key`]).
#[derive(Debug, Clone, Copy)]
pub struct KeyGrant<'a> {
    pub role: Role,
    /// `None`: made by the operator (the command line), not tied to a member.
    pub created_by: Option<(&'a str, Role)>,
}

/// API keys look like `tp_` + 43 base64url characters; the first 12 characters are kept as a
/// visible prefix. Made by the operator, with the admin role (what a key could do before roles).
pub async fn create_api_key(
    db: &Db,
    workspace_id: &str,
    name: &str,
    scopes: &[&str],
) -> Result<CreatedKey, AccessError> {
    let grant = KeyGrant {
        role: Role::Admin,
        created_by: None,
    };
    create_api_key_as(db, workspace_id, name, scopes, grant).await
}

/// An API key with the role `grant` gives it: never above its creator's role.
pub async fn create_api_key_as(
    db: &Db,
    workspace_id: &str,
    name: &str,
    scopes: &[&str],
    grant: KeyGrant<'_>,
) -> Result<CreatedKey, AccessError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 80 {
        return Err(AccessError::InvalidKeyName);
    }
    if let Some((_, creator)) = grant.created_by
        && grant.role > creator
    {
        return Err(AccessError::KeyAboveCreator {
            asked: grant.role,
            yours: creator,
        });
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
        role: grant.role,
        created_by: grant.created_by.map(|(id, _)| id.to_string()),
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
    #[error("the member who made this API key is no longer in its workspace")]
    CreatorGone,
}

/// Resolves a bearer token to its live API key and the role it acts with now: its own, capped
/// by its creator's role today (a demoted member's keys are demoted with them).
pub async fn authenticate_api_key(
    db: &Db,
    secret: &str,
) -> Result<Result<(ApiKey, Role), KeyRefusal>, AccessError> {
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
    let role = match &key.created_by {
        None => key.role,
        Some(user_id) => match users::role_of(db, &key.workspace_id, user_id).await? {
            Some(creator) => key.role.capped_by(creator),
            None => return Ok(Err(KeyRefusal::CreatorGone)),
        },
    };
    api_keys::touch(db, &key.id, now_ms()).await?;
    Ok(Ok((key, role)))
}

/// A new user (not stored yet): the email checked, the password long enough and hashed.
pub async fn new_user(email: &str, password: &str) -> Result<User, AccessError> {
    let email = validate_email(email)?;
    if password.chars().count() < 10 {
        return Err(AccessError::WeakPassword);
    }
    Ok(User {
        id: new_id(),
        email,
        password_hash: hash_off_the_workers(password).await,
        created_at: now_ms(),
        time_zone: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tidepost_store::both_backends;
    use tidepost_vault::secrecy::ExposeSecret;

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

    fn form<'a>(email: &'a str, password: &'a str, client: &'a str) -> SignIn<'a> {
        SignIn {
            email,
            password,
            client,
            devices: &[],
            session_hours: 1,
        }
    }

    #[test]
    fn pair_delays_grow_and_stop_at_the_cap() {
        let delays: Vec<i64> = (1..=12).map(pair_delay).collect();
        assert_eq!(
            delays,
            vec![
                0, 0, 0, 0, 30_000, 60_000, 120_000, 240_000, 480_000, 900_000, 900_000, 900_000
            ]
        );
        assert_eq!(pair_delay(i64::MAX), PAIR_MAX_DELAY_MS);
        assert_eq!(account_delay(ACCOUNT_MAX_ATTEMPTS - 1), 0);
        assert_eq!(account_delay(ACCOUNT_MAX_ATTEMPTS), ACCOUNT_LOCK_MS);
        assert_eq!(wait_text(&1), "1 second");
        assert_eq!(wait_text(&30), "30 seconds");
        assert_eq!(wait_text(&61), "2 minutes");
        assert_eq!(wait_text(&900), "15 minutes");
    }

    #[test]
    fn known_device_tokens_are_bound_to_their_user_and_expire() {
        let keyring = Keyring::parse(Keyring::generate_key_text().expose_secret()).unwrap();
        let now = 1_700_000_000_000;
        let token = known_device_token(&keyring, "user-a", now);
        assert!(is_known_device(&keyring, "user-a", &token, now + 1));
        assert!(!is_known_device(&keyring, "user-b", &token, now + 1));
        assert!(!is_known_device(
            &keyring,
            "user-a",
            &token,
            now + KNOWN_DEVICE_MS
        ));
        assert!(!is_known_device(&keyring, "user-a", "v1.x.forged", now));
        let other = Keyring::parse(Keyring::generate_key_text().expose_secret()).unwrap();
        assert!(!is_known_device(&other, "user-a", &token, now + 1));
    }

    both_backends!(sign_in_and_limits, |db: Db| async move {
        let keyring = Keyring::parse(Keyring::generate_key_text().expose_secret()).unwrap();
        assert!(matches!(
            create_user(&db, "a@b.co", "short", "w").await,
            Err(AccessError::WeakPassword)
        ));
        let (user, ws) = create_user(&db, "ada@example.com", "correct horse battery", "acme")
            .await
            .unwrap();
        let session = sign_in(
            &db,
            &keyring,
            form("ADA@example.com", "correct horse battery", "1.2.3.4"),
        )
        .await
        .unwrap();
        assert_eq!(
            (session.user.id.as_str(), session.workspace.id.as_str()),
            (user.id.as_str(), ws.id.as_str())
        );
        assert!(is_known_device(
            &keyring,
            &user.id,
            &session.device,
            now_ms()
        ));
        let (_, found_user, found_ws, role) = session_from_cookie(&db, &session.token)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (found_user.id, found_ws.id, role),
            (user.id.clone(), ws.id.clone(), Role::Owner)
        );
        sign_out(&db, &session.token).await.unwrap();
        assert!(
            session_from_cookie(&db, &session.token)
                .await
                .unwrap()
                .is_none()
        );

        for _ in 0..PAIR_FREE_ATTEMPTS {
            assert!(matches!(
                sign_in(&db, &keyring, form("ada@example.com", "nope", "5.6.7.8")).await,
                Err(AccessError::WrongCredentials)
            ));
        }
        // This address now waits, even with the right password…
        let err = sign_in(
            &db,
            &keyring,
            form("ada@example.com", "correct horse battery", "5.6.7.8"),
        )
        .await
        .unwrap_err();
        assert!(
            matches!(err, AccessError::TooManyAttempts { retry_after_secs } if (29..=30).contains(&retry_after_secs)),
            "{err}"
        );
        // …but the owner elsewhere does not, and signing in clears the account's count.
        sign_in(
            &db,
            &keyring,
            form("ada@example.com", "correct horse battery", "1.2.3.4"),
        )
        .await
        .unwrap();
        // Unknown emails are refused the same way.
        assert!(matches!(
            sign_in(&db, &keyring, form("nobody@example.com", "x", "9.9.9.9")).await,
            Err(AccessError::WrongCredentials)
        ));
        // An unlock lifts the slowdown of the address.
        assert_eq!(unlock(&db, "Ada@Example.com").await.unwrap(), 1);
        sign_in(
            &db,
            &keyring,
            form("ada@example.com", "correct horse battery", "5.6.7.8"),
        )
        .await
        .unwrap();
        assert!(matches!(
            unlock(&db, "not an email").await,
            Err(AccessError::InvalidEmail(_))
        ));
    });

    both_backends!(
        an_account_lock_lets_a_known_device_through,
        |db: Db| async move {
            let keyring = Keyring::parse(Keyring::generate_key_text().expose_secret()).unwrap();
            let (user, _) = create_user(&db, "ada@example.com", "correct horse battery", "acme")
                .await
                .unwrap();
            let device = sign_in(
                &db,
                &keyring,
                form("ada@example.com", "correct horse battery", "10.0.0.1"),
            )
            .await
            .unwrap()
            .device;
            // Guesses from many addresses, each under its own pair limit, lock the account.
            for i in 0..ACCOUNT_MAX_ATTEMPTS {
                let client = format!("192.0.2.{i}");
                assert!(matches!(
                    sign_in(&db, &keyring, form("ada@example.com", "guess", &client)).await,
                    Err(AccessError::WrongCredentials)
                ));
            }
            let err = sign_in(
                &db,
                &keyring,
                form("ada@example.com", "correct horse battery", "10.0.0.1"),
            )
            .await
            .unwrap_err();
            assert!(
                matches!(err, AccessError::AccountLocked { retry_after_secs } if retry_after_secs > 800),
                "{err}"
            );
            // A device cookie of another user, or a forged one, does not help.
            let (other, _) = create_user(&db, "bob@example.com", "correct horse battery", "b")
                .await
                .unwrap();
            let foreign = known_device_token(&keyring, &other.id, now_ms());
            for tokens in [vec![foreign.clone()], vec!["forged".to_string()]] {
                let mut attempt = form("ada@example.com", "correct horse battery", "10.0.0.1");
                attempt.devices = &tokens;
                assert!(matches!(
                    sign_in(&db, &keyring, attempt).await,
                    Err(AccessError::AccountLocked { .. })
                ));
            }
            // The owner's known browser with a wrong password is refused but not locked out…
            // (Among the cookies of the other accounts this browser signed in to.)
            let devices = vec![foreign.clone(), device.clone()];
            let mut known = form("ada@example.com", "wrong", "10.0.0.2");
            known.devices = &devices;
            assert!(matches!(
                sign_in(&db, &keyring, known).await,
                Err(AccessError::WrongCredentials)
            ));
            // …and with the right one it signs in and lifts the lock for everyone.
            known.password = "correct horse battery";
            let session = sign_in(&db, &keyring, known).await.unwrap();
            assert_eq!(session.user.id, user.id);
            sign_in(
                &db,
                &keyring,
                form("ada@example.com", "correct horse battery", "10.0.0.3"),
            )
            .await
            .unwrap();
        }
    );

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
        let (key, role) = authenticate_api_key(&db, &created.secret)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (key.workspace_id.as_str(), role),
            (ws.id.as_str(), Role::Admin)
        );
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
