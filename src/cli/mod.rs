//! Command-line interface. Every command exits 0 on success, 2 on a configuration or usage
//! error and 1 on any other failure, printing one line that says why.

mod ops;
mod serve;
mod storage;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use tidepost_app::Config;
use tidepost_app::config::{ConfigError, RawSettings};

#[derive(Parser)]
#[command(
    name = "tidepost",
    version,
    about = "Self-hosted social publishing gateway for TikTok and Instagram"
)]
pub struct Cli {
    /// Configuration file (TOML). Default: tidepost.toml when it exists.
    #[arg(long, global = true, env = "TIDEPOST_CONFIG", value_name = "PATH")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP server (UI, API, OAuth callbacks, webhooks) with background workers.
    Serve(ServeArgs),
    /// Apply database migrations and exit.
    Migrate(DbArgs),
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage API keys.
    #[command(subcommand)]
    Apikey(ApiKeyCommand),
    /// Manage the encryption keys for secrets at rest.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Inspect the configuration.
    #[command(subcommand, name = "config")]
    ConfigCmd(ConfigCommand),
    /// Run background workers only (scale-out beside `serve --no-workers` on PostgreSQL).
    Worker(DbArgs),
    /// Run the jobs that are due, then exit (for cron or a serverless function).
    RunOnce {
        /// Only jobs of this kind (repeat for several).
        #[arg(long = "kind", value_name = "KIND")]
        kinds: Vec<String>,
        /// Run at most this many jobs.
        #[arg(long, default_value_t = 1000)]
        max: usize,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Check or fill the media storage.
    #[command(subcommand)]
    Storage(StorageCommand),
    /// Run the TikTok + Meta API emulator alone.
    Emulator(EmulatorArgs),
}

#[derive(Subcommand)]
enum StorageCommand {
    /// Check that the media storage answers and allows list, write, read and delete; one line,
    /// non-zero exit naming what is missing.
    Check,
    /// Copy the local media folder into the S3 bucket (`storage = s3`), verifying each file's
    /// SHA-256; run it again to resume.
    Migrate {
        /// The local media folder. Default: `media_dir`.
        #[arg(long, value_name = "PATH")]
        from: Option<PathBuf>,
    },
}

#[derive(Args, Clone, Default)]
pub struct DbArgs {
    /// Database URL: sqlite://PATH or postgres://USER@HOST/DB.
    #[arg(long, value_name = "URL")]
    database: Option<String>,
}

#[derive(Args, Clone, Default)]
pub struct ServeArgs {
    /// Address to listen on (HOST:PORT).
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    #[command(flatten)]
    db: DbArgs,
    /// Start the provider emulator in-process and point TikTok and Instagram at it.
    #[arg(long)]
    sandbox: bool,
    /// PEM certificate chain to serve HTTPS directly.
    #[arg(long, value_name = "PATH")]
    tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, value_name = "PATH")]
    tls_key: Option<PathBuf>,
    /// Do not run background workers in this process.
    #[arg(long)]
    no_workers: bool,
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a user as owner of a workspace (created if it does not exist).
    Create {
        #[arg(long)]
        email: String,
        #[arg(long)]
        workspace: String,
        /// Read the password from standard input instead of prompting.
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Invite someone to a workspace with a role: prints the one-time invite link (mailed too
    /// when SMTP is configured).
    Invite {
        #[arg(long)]
        workspace: String,
        #[arg(long)]
        email: String,
        /// owner, admin, editor or viewer.
        #[arg(long)]
        role: String,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Lift the sign-in lock of a user's account (after too many failed sign-ins) and the
    /// slowdown of every address that tried it.
    Unlock {
        #[arg(long)]
        email: String,
        #[command(flatten)]
        db: DbArgs,
    },
}

#[derive(Subcommand)]
enum ApiKeyCommand {
    /// Create an API key and print it once.
    Create {
        #[arg(long)]
        workspace: String,
        #[arg(long)]
        name: String,
        /// Scopes: api (default), worker. Repeat the flag for several.
        #[arg(long = "scope", value_name = "SCOPE")]
        scopes: Vec<String>,
        #[command(flatten)]
        db: DbArgs,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Print a new random key entry (ID:KEY) to put first in TIDEPOST_KEYS or the key file.
    Generate,
    /// Re-encrypt every stored secret under the newest (first) key.
    Rotate(DbArgs),
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Print the effective configuration, secrets masked, with where each value came from.
    Check(ServeArgs),
    /// Print the configuration reference (Markdown) generated from the code.
    Reference,
}

#[derive(Args)]
struct EmulatorArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8090")]
    listen: String,
    /// Approve every consent page at once (for scripts).
    #[arg(long)]
    auto_approve: bool,
}

/// A failure and the exit code it deserves.
pub enum Failure {
    Usage(String),
    Runtime(String),
}

impl From<ConfigError> for Failure {
    fn from(err: ConfigError) -> Self {
        Failure::Usage(err.to_string())
    }
}

impl From<anyhow::Error> for Failure {
    fn from(err: anyhow::Error) -> Self {
        Failure::Runtime(format!("{err:#}"))
    }
}

impl From<tidepost_store::StoreError> for Failure {
    fn from(err: tidepost_store::StoreError) -> Self {
        Failure::Runtime(err.to_string())
    }
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tidepost: error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(message)) => {
            eprintln!("tidepost: error: {message}");
            ExitCode::from(2)
        }
        Err(Failure::Runtime(message)) => {
            eprintln!("tidepost: error: {message}");
            ExitCode::from(1)
        }
    }
}

async fn run(cli: Cli) -> Result<(), Failure> {
    let file = cli.config.clone();
    match cli.command {
        Command::Serve(args) => serve::serve(load(&args.flags(), file.as_deref())?).await,
        Command::Worker(db) => serve::worker(load(&db.flags(), file.as_deref())?).await,
        Command::RunOnce { kinds, max, db } => {
            serve::run_once(load(&db.flags(), file.as_deref())?, kinds, max).await
        }
        Command::Migrate(db) => ops::migrate(load(&db.flags(), file.as_deref())?).await,
        Command::User(UserCommand::Create {
            email,
            workspace,
            password_stdin,
            db,
        }) => {
            ops::user_create(
                load(&db.flags(), file.as_deref())?,
                &email,
                &workspace,
                password_stdin,
            )
            .await
        }
        Command::User(UserCommand::Invite {
            workspace,
            email,
            role,
            db,
        }) => {
            ops::user_invite(
                load(&db.flags(), file.as_deref())?,
                &workspace,
                &email,
                &role,
            )
            .await
        }
        Command::User(UserCommand::Unlock { email, db }) => {
            ops::user_unlock(load(&db.flags(), file.as_deref())?, &email).await
        }
        Command::Apikey(ApiKeyCommand::Create {
            workspace,
            name,
            scopes,
            db,
        }) => {
            ops::apikey_create(
                load(&db.flags(), file.as_deref())?,
                &workspace,
                &name,
                &scopes,
            )
            .await
        }
        Command::Keys(KeysCommand::Generate) => ops::keys_generate(),
        Command::Keys(KeysCommand::Rotate(db)) => {
            ops::keys_rotate(load(&db.flags(), file.as_deref())?).await
        }
        Command::ConfigCmd(ConfigCommand::Check(args)) => {
            ops::config_check(&gather(&args.flags(), file.as_deref())?)
        }
        Command::ConfigCmd(ConfigCommand::Reference) => {
            print!("{}", tidepost_app::config::reference_markdown());
            Ok(())
        }
        Command::Storage(StorageCommand::Check) => {
            storage::check(load(&[], file.as_deref())?).await
        }
        Command::Storage(StorageCommand::Migrate { from }) => {
            let raw = gather(&[], file.as_deref())?;
            storage::migrate(&raw, Config::from_raw(&raw)?, from).await
        }
        Command::Emulator(args) => serve::emulator(&args.listen, args.auto_approve).await,
    }
}

impl DbArgs {
    fn flags(&self) -> Vec<(&'static str, String)> {
        self.database
            .iter()
            .map(|d| ("database_url", d.clone()))
            .collect()
    }
}

impl ServeArgs {
    fn flags(&self) -> Vec<(&'static str, String)> {
        let mut flags = self.db.flags();
        if let Some(listen) = &self.listen {
            flags.push(("listen", listen.clone()));
        }
        if self.sandbox {
            flags.push(("sandbox", "true".into()));
        }
        if let Some(cert) = &self.tls_cert {
            flags.push(("tls_cert", cert.display().to_string()));
        }
        if let Some(key) = &self.tls_key {
            flags.push(("tls_key", key.display().to_string()));
        }
        if self.no_workers {
            flags.push(("workers", "false".into()));
        }
        flags
    }
}

/// Gathers raw settings: flags, environment, the configuration file (the named one, or
/// `tidepost.toml` when present).
fn gather(
    flags: &[(&'static str, String)],
    file: Option<&std::path::Path>,
) -> Result<RawSettings, ConfigError> {
    let default_file = std::path::Path::new("tidepost.toml");
    let file = file.or_else(|| default_file.exists().then_some(default_file));
    RawSettings::gather(flags, |name| std::env::var(name).ok(), file)
}

fn load(
    flags: &[(&'static str, String)],
    file: Option<&std::path::Path>,
) -> Result<Config, ConfigError> {
    Config::from_raw(&gather(flags, file)?)
}
