//! `tidepost serve` and `tidepost emulator`.

use std::net::SocketAddr;

use tidepost_app::config::LogFormat;
use tidepost_app::{App, Config};
use tidepost_emulator::{Emulator, EmulatorConfig};
use tidepost_http::{Server, SetupToken};
use tidepost_store::{Db, users};
use tokio_util::sync::CancellationToken;

use super::Failure;

pub async fn serve(config: Config) -> Result<(), Failure> {
    config.check_for_serve()?;
    init_tracing(config.log_format, &config.log_level);
    let db = Db::connect(&config.database_url).await?;
    db.migrate().await?;
    let setup = first_run_setup(&db, &config).await?;
    let sandbox = config.sandbox;
    let keyring = tidepost_app::keys::load_keyring(&config)?;
    let app = App::new(config, db.clone(), keyring);
    let server = Server::build(app.clone(), setup.clone()).map_err(Failure::from)?;
    let emulator = if sandbox {
        Some(start_sandbox_emulator().await?)
    } else {
        None
    };
    announce(&app, &server, &setup, emulator.as_ref());

    let shutdown = CancellationToken::new();
    tokio::spawn(stop_on_signal(shutdown.clone()));
    server
        .run_until_stopped(shutdown)
        .await
        .map_err(Failure::from)?;
    if let Some(emulator) = emulator {
        emulator.stop().await;
    }
    db.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// While no user exists, a one-time link lets the first person create an account.
async fn first_run_setup(db: &Db, _config: &Config) -> Result<SetupToken, Failure> {
    if users::count(db).await? > 0 {
        return Ok(SetupToken::new(None));
    }
    Ok(SetupToken::new(Some(tidepost_app::access::random_token())))
}

async fn start_sandbox_emulator() -> Result<Emulator, Failure> {
    let listen: SocketAddr = "127.0.0.1:0".parse().expect("valid address");
    let emulator = Emulator::start(listen, EmulatorConfig::default())
        .await
        .map_err(Failure::from)?;
    Ok(emulator)
}

fn announce(app: &App, server: &Server, setup: &SetupToken, emulator: Option<&Emulator>) {
    let scheme = if app.config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let local = format!("{scheme}://{}", server.addr());
    tracing::info!(address = %local, database = app.db.dialect().name(), sandbox = app.config.sandbox, "tidepost listening");
    println!(
        "tidepost is listening on {local} (public URL {})",
        app.config.public_url
    );
    if let Some(emulator) = emulator {
        println!(
            "Sandbox: TikTok and Instagram are emulated at {} — nothing leaves this machine.",
            emulator.base_url()
        );
    }
    if let Some(token) = setup.peek() {
        println!();
        println!("No account exists yet. Open this one-time link to create the first one:");
        println!("  {}", app.config.url(&format!("/setup?token={token}")));
        println!("(or run `tidepost user create --email you@example.com --workspace default`)");
    } else {
        println!("Sign in at {}", app.config.url("/login"));
    }
}

/// Resolves on Ctrl-C or SIGTERM, then cancels `shutdown`.
async fn stop_on_signal(shutdown: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
    tracing::info!("shutting down");
    shutdown.cancel();
}

pub fn init_tracing(format: LogFormat, level: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_new(level).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

pub async fn emulator(listen: &str, auto_approve: bool) -> Result<(), Failure> {
    init_tracing(LogFormat::Text, "info");
    let listen: SocketAddr = listen
        .parse()
        .map_err(|_| Failure::Usage(format!("invalid --listen {listen:?}: expected HOST:PORT")))?;
    let config = EmulatorConfig {
        auto_approve,
        ..EmulatorConfig::default()
    };
    let emulator = Emulator::start(listen, config)
        .await
        .map_err(Failure::from)?;
    println!("tidepost emulator listening on {}", emulator.base_url());
    let shutdown = CancellationToken::new();
    stop_on_signal(shutdown.clone()).await;
    emulator.stop().await;
    Ok(())
}
