//! Operations commands: migrate, users, API keys, encryption keys, configuration.

use std::io::{BufRead, IsTerminal};

use tidepost_app::Config;
use tidepost_app::access;
use tidepost_app::config::RawSettings;
use tidepost_store::{Db, workspaces};

use super::Failure;

async fn connect(config: &Config) -> Result<Db, Failure> {
    Ok(Db::connect_with(&config.database_url, config.database_max_connections).await?)
}

pub async fn migrate(config: Config) -> Result<(), Failure> {
    let db = connect(&config).await?;
    db.migrate().await?;
    println!(
        "{} schema is up to date (migration {}).",
        db.dialect().name(),
        db.known_version()
    );
    Ok(())
}

/// The password from standard input (first line) or an interactive prompt.
fn read_password(from_stdin: bool) -> Result<String, Failure> {
    let password = if from_stdin || !std::io::stdin().is_terminal() {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| Failure::Runtime(format!("cannot read the password: {e}")))?;
        line.trim_end_matches(['\r', '\n']).to_string()
    } else {
        let first = rpassword::prompt_password("Password: ")
            .map_err(|e| Failure::Runtime(format!("cannot read the password: {e}")))?;
        let again = rpassword::prompt_password("Again: ")
            .map_err(|e| Failure::Runtime(format!("cannot read the password: {e}")))?;
        if first != again {
            return Err(Failure::Usage("the two passwords differ".into()));
        }
        first
    };
    Ok(password)
}

pub async fn user_create(
    config: Config,
    email: &str,
    workspace: &str,
    password_stdin: bool,
) -> Result<(), Failure> {
    let password = read_password(password_stdin)?;
    let db = connect(&config).await?;
    db.migrate().await?;
    match access::create_user(&db, email, &password, workspace).await {
        Ok((user, ws)) => {
            println!("Created {} as owner of workspace {}.", user.email, ws.slug);
            Ok(())
        }
        Err(access::AccessError::Store(e)) if e.is_unique_violation() => {
            Err(Failure::Usage(format!(
                "a user with the email {} already exists",
                email.trim().to_lowercase()
            )))
        }
        Err(access::AccessError::Store(e)) => Err(e.into()),
        Err(other) => Err(Failure::Usage(other.to_string())),
    }
}

/// `tidepost user invite --workspace W --email E --role R`: prints the invite link once (on
/// standard output, alone, so a script can take it), what became of the mail on standard error.
pub async fn user_invite(
    config: Config,
    workspace: &str,
    email: &str,
    role: &str,
) -> Result<(), Failure> {
    use tidepost_app::members::{self, Actor, MemberError};
    let role = role
        .parse::<tidepost_domain::Role>()
        .map_err(|e| Failure::Usage(e.to_string()))?;
    let db = connect(&config).await?;
    db.migrate().await?;
    let ws = workspaces::by_slug(&db, workspace)
        .await?
        .ok_or_else(|| Failure::Usage(format!("unknown workspace {workspace:?}")))?;
    match members::invite(&db, &config, &ws, Actor::Operator, email, role).await {
        Ok(made) => {
            let mail = match made.mail {
                tidepost_app::mail::Delivery::Sent => format!("mailed to {}", made.invite.email),
                tidepost_app::mail::Delivery::NotConfigured => {
                    "not mailed: no SMTP server is configured (smtp_url)".to_string()
                }
                tidepost_app::mail::Delivery::Failed(why) => format!("not mailed: {why}"),
            };
            eprintln!(
                "Invited {} to {} as {} ({mail}). The link works once, for 7 days, and is shown only now:",
                made.invite.email, ws.slug, made.invite.role
            );
            println!("{}", made.link);
            Ok(())
        }
        Err(MemberError::Store(e)) => Err(e.into()),
        Err(other) => Err(Failure::Usage(other.to_string())),
    }
}

/// `tidepost user unlock --email E`: lifts the account's sign-in lock and the slowdown of every
/// address that tried it.
pub async fn user_unlock(config: Config, email: &str) -> Result<(), Failure> {
    let db = connect(&config).await?;
    db.migrate().await?;
    let email = access::validate_email(email).map_err(|e| Failure::Usage(e.to_string()))?;
    if tidepost_store::users::by_email(&db, &email)
        .await?
        .is_none()
    {
        return Err(Failure::Usage(format!("no user has the email {email}")));
    }
    match access::unlock(&db, &email).await {
        Ok(0) => {
            println!("{email} had no sign-in limit in force; its attempt counts are cleared.");
            Ok(())
        }
        Ok(n) => {
            let s = if n == 1 { "" } else { "s" };
            println!("Unlocked {email}: lifted {n} sign-in limit{s}.");
            Ok(())
        }
        Err(access::AccessError::Store(e)) => Err(e.into()),
        Err(other) => Err(Failure::Usage(other.to_string())),
    }
}

pub async fn apikey_create(
    config: Config,
    workspace: &str,
    name: &str,
    scopes: &[String],
) -> Result<(), Failure> {
    let db = connect(&config).await?;
    db.migrate().await?;
    let ws = workspaces::by_slug(&db, workspace)
        .await?
        .ok_or_else(|| Failure::Usage(format!("unknown workspace {workspace:?}")))?;
    let scopes: Vec<&str> = scopes.iter().map(String::as_str).collect();
    match access::create_api_key(&db, &ws.id, name, &scopes).await {
        Ok(created) => {
            eprintln!(
                "API key {:?} for workspace {} (scopes: {}). It is shown only once:",
                created.key.name, ws.slug, created.key.scopes
            );
            println!("{}", created.secret);
            Ok(())
        }
        Err(access::AccessError::Store(e)) => Err(e.into()),
        Err(other) => Err(Failure::Usage(other.to_string())),
    }
}

pub fn keys_generate() -> Result<(), Failure> {
    use tidepost_vault::secrecy::ExposeSecret;
    println!(
        "{}",
        tidepost_vault::Keyring::generate_key_text().expose_secret()
    );
    eprintln!(
        "Put this entry first in TIDEPOST_KEYS (or the key file), keep the old ones after it, then run `tidepost keys rotate`."
    );
    Ok(())
}

/// Re-encrypts every stored secret under the primary key. Servers keep running meanwhile, but
/// must already know the new keyring (restart them with it first).
pub async fn keys_rotate(config: Config) -> Result<(), Failure> {
    let db = connect(&config).await?;
    db.ensure_current().await?;
    let keyring = tidepost_app::keys::load_keyring(&config)?;
    let providers = tidepost_app::providers::Providers::from_config(&config, None);
    let app = tidepost_app::App::new(config, db, keyring, providers);
    let report = tidepost_app::connect::rotate_secrets(&app)
        .await
        .map_err(|e| Failure::Runtime(e.to_string()))?;
    println!(
        "Re-encrypted {} secrets under key {} ({} already current, {} changed meanwhile and were left as they are).",
        report.reencrypted,
        app.keyring.primary_key_id(),
        report.already_current,
        report.skipped_changed
    );
    Ok(())
}

pub fn config_check(raw: &RawSettings) -> Result<(), Failure> {
    let rows = raw.describe();
    let width = rows
        .iter()
        .map(|(name, _, _)| name.len())
        .max()
        .unwrap_or(0);
    for (name, value, origin) in &rows {
        println!("{name:width$}  {value}  ({origin})");
    }
    let config = Config::from_raw(raw)?;
    match config.check_for_serve() {
        Ok(()) => println!("\nThe configuration is valid for `tidepost serve`."),
        Err(e) => {
            println!("\nValid for operations commands, but `tidepost serve` would refuse it: {e}")
        }
    }
    Ok(())
}
