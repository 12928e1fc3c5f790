//! `tidepost serve`, `tidepost worker`, `tidepost run-once` and `tidepost emulator`.

use std::net::SocketAddr;
use std::time::Duration;

use tidepost_app::config::LogFormat;
use tidepost_app::providers::Providers;
use tidepost_app::{App, Config, work};
use tidepost_emulator::{Emulator, EmulatorConfig};
use tidepost_http::{Server, SetupToken};
use tidepost_jobs::{WorkerConfig, WorkerPool};
use tidepost_store::{Db, users};
use tokio_util::sync::CancellationToken;

use super::Failure;

/// Connects, migrates and builds the application handle shared by every long-running role.
async fn build_app(config: Config, emulator: Option<&Emulator>) -> Result<App, Failure> {
    let db = Db::connect_with(&config.database_url, config.database_max_connections).await?;
    db.migrate().await?;
    let keyring = tidepost_app::keys::load_keyring(&config)?;
    let providers = Providers::from_config(&config, emulator.map(|e| e.base_url()).as_deref());
    Ok(App::new(config, db, keyring, providers))
}

/// A bucket that does not exist, refused credentials or an endpoint that is no S3: refuse to
/// start, in one line naming the setting and what the storage answered (before logging starts,
/// so that line is all an operator sees).
async fn check_storage(config: &Config) -> Result<(), Failure> {
    config
        .media
        .storage
        .check()
        .await
        .map_err(|reason| Failure::Usage(format!("media storage: {reason}")))
}

/// Starts the embedded worker pool, which also fires the recurring sweeps.
async fn start_workers(
    app: &App,
    shutdown: &CancellationToken,
) -> Result<tokio::task::JoinHandle<tidepost_jobs::ShutdownReport>, Failure> {
    work::ensure_schedules(app)
        .await
        .map_err(|e| Failure::Runtime(e.to_string()))?;
    let config = WorkerConfig {
        name: format!("worker@{}", app.instance_id),
        concurrency: app.config.worker_concurrency,
        ..WorkerConfig::default()
    };
    let pool = WorkerPool::new(app.queue.clone(), work::registry(app), config);
    Ok(pool.spawn(shutdown.clone()))
}

pub async fn serve(mut config: Config) -> Result<(), Failure> {
    config.check_for_serve()?;
    check_storage(&config).await?;
    init_tracing(config.log_format, &config.log_level);
    pick_free_port(&mut config)?;
    let emulator = if config.sandbox {
        Some(start_sandbox_emulator().await?)
    } else {
        None
    };
    let app = build_app(config, emulator.as_ref()).await?;
    let setup = first_run_setup(&app.db).await?;
    let server = Server::build(app.clone(), setup.clone()).map_err(Failure::from)?;
    if let Some(emulator) = &emulator {
        point_emulator_webhooks_at(emulator, &app).await;
    }
    announce(&app, &server, &setup, emulator.as_ref());

    let shutdown = CancellationToken::new();
    tokio::spawn(stop_on_signal(shutdown.clone()));
    let workers = if app.config.workers {
        Some(start_workers(&app, &shutdown).await?)
    } else {
        None
    };
    server
        .run_until_stopped(shutdown)
        .await
        .map_err(Failure::from)?;
    if let Some(workers) = workers {
        let report = workers
            .await
            .map_err(|e| Failure::Runtime(format!("worker pool crashed: {e}")))?;
        tracing::info!(?report, "workers stopped");
    }
    if let Some(emulator) = emulator {
        emulator.stop().await;
    }
    app.db.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// `tidepost worker`: background work only, for scale-out beside `serve --no-workers`.
pub async fn worker(config: Config) -> Result<(), Failure> {
    check_storage(&config).await?;
    init_tracing(config.log_format, &config.log_level);
    let app = build_app(config, None).await?;
    let shutdown = CancellationToken::new();
    tokio::spawn(stop_on_signal(shutdown.clone()));
    println!(
        "tidepost worker running ({} jobs at once); stop with Ctrl-C or SIGTERM.",
        app.config.worker_concurrency
    );
    let report = start_workers(&app, &shutdown)
        .await?
        .await
        .map_err(|e| Failure::Runtime(format!("worker pool crashed: {e}")))?;
    tracing::info!(?report, "workers stopped");
    app.db.close().await;
    Ok(())
}

/// `tidepost run-once`: runs what is due and exits; for cron or a serverless function.
/// Exits 0 when every job it ran succeeded, 1 when some failed (they are retried later).
pub async fn run_once(config: Config, kinds: Vec<String>, max: usize) -> Result<(), Failure> {
    check_storage(&config).await?;
    init_tracing(config.log_format, &config.log_level);
    let app = build_app(config, None).await?;
    let registry = work::registry(&app);
    if let Some(unknown) = kinds.iter().find(|k| !registry.kinds().contains(k)) {
        return Err(Failure::Usage(format!(
            "unknown job kind {unknown:?}; known kinds: {}",
            registry.kinds().join(", ")
        )));
    }
    work::ensure_schedules(&app)
        .await
        .map_err(|e| Failure::Runtime(e.to_string()))?;
    let filter = (!kinds.is_empty()).then_some(kinds.as_slice());
    let report = tidepost_jobs::drain_due(&app.queue, &registry, filter, max)
        .await
        .map_err(|e| Failure::Runtime(e.to_string()))?;
    println!("{}", serde_json::to_string(&report).unwrap_or_default());
    app.db.close().await;
    if report.all_ok() {
        Ok(())
    } else {
        Err(Failure::Runtime(format!(
            "{} of {} jobs failed; they will be retried",
            report.failed(),
            report.claimed
        )))
    }
}

/// `--listen HOST:0` asks for any free port: pick it before anything is built from the
/// configuration, so that the public URL derived from the listen address (the setup link, OAuth
/// redirect and webhook URLs) names the real port rather than 0.
fn pick_free_port(config: &mut Config) -> Result<(), Failure> {
    if config.listen.port() != 0 {
        return Ok(());
    }
    let port = std::net::TcpListener::bind(config.listen)
        .and_then(|probe| probe.local_addr())
        .map_err(|e| Failure::Runtime(format!("cannot listen on {}: {e}", config.listen)))?
        .port();
    config.listen.set_port(port);
    if config.public_url.port() == Some(0) {
        // The OAuth redirect URIs derived from the public URL name port 0 too.
        let old_base = config.public_url.as_str().trim_end_matches('/').to_string();
        let _ = config.public_url.set_port(Some(port));
        let new_base = config.public_url.as_str().trim_end_matches('/').to_string();
        for uri in [
            &mut config.tiktok.redirect_uri,
            &mut config.meta.redirect_uri,
        ] {
            if let Some(path) = uri.strip_prefix(&old_base) {
                *uri = format!("{new_base}{path}");
            }
        }
    }
    Ok(())
}

/// While no user exists, a one-time link lets the first person create an account.
async fn first_run_setup(db: &Db) -> Result<SetupToken, Failure> {
    if users::count(db).await? > 0 {
        return Ok(SetupToken::new(None));
    }
    Ok(SetupToken::new(Some(tidepost_app::access::random_token())))
}

async fn start_sandbox_emulator() -> Result<Emulator, Failure> {
    let listen: SocketAddr = "127.0.0.1:0".parse().expect("valid address");
    Emulator::start(listen, EmulatorConfig::default())
        .await
        .map_err(Failure::from)
}

/// Tells the emulator where tidepost receives provider webhooks (known only once bound), and
/// that its TikTok app verified tidepost's `/media/` URLs (photos uploaded to tidepost are sent
/// to TikTok from there), beside the emulator's own example prefix.
async fn point_emulator_webhooks_at(emulator: &Emulator, app: &App) {
    let http = tidepost_providers::http_client();
    let mut prefixes = tidepost_emulator::tiktok::Config::default().verified_url_prefixes;
    prefixes.push(app.config.url("/media/"));
    let settings = [
        (
            "tiktok",
            serde_json::json!({
                "webhook_url": app.config.url("/webhooks/tiktok"),
                "verified_url_prefixes": prefixes,
            }),
        ),
        (
            "meta",
            serde_json::json!({"webhook_url": app.config.url("/webhooks/instagram")}),
        ),
    ];
    for (provider, body) in settings {
        let url = format!("{}/_emulator/{provider}/settings", emulator.base_url());
        let sent = http
            .put(&url)
            .json(&body)
            .timeout(Duration::from_secs(5))
            .send()
            .await;
        if let Err(err) = sent.and_then(|r| r.error_for_status()) {
            tracing::warn!(%provider, error = %err, "could not configure the emulator's webhooks");
        }
    }
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
    // What a `serve` without --sandbox needs to talk to it, ready to paste into its environment.
    println!(
        "# point a tidepost serve (without --sandbox) at this emulator with these settings:\n{}# and tell the emulator where tidepost receives webhooks: see {}/",
        tidepost_emulator::settings_text(&emulator.base_url(), &emulator.ctx().config),
        emulator.base_url()
    );
    let shutdown = CancellationToken::new();
    stop_on_signal(shutdown.clone()).await;
    emulator.stop().await;
    Ok(())
}
