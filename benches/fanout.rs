//! 1,000 posts scheduled for the same instant across 100 emulated accounts (98 TikTok creators
//! and the emulator's 2 Instagram professional accounts — the Meta emulator has no way to add
//! more), 10 per account, through `compose::submit` and the real job engine (a worker pool on
//! a SQLite database), against the provider emulator in-process with short processing delays.
//!
//! What it checks and prints:
//! - every post published, and no limit broken on the emulator's records: no request TikTok
//!   answered with a rate limit (`/_emulator/tiktok/rate-limited`), at most the daily caps of
//!   publishes per creator, at most the publishing limit of media per Instagram account;
//! - the time from the scheduled instant to the last target published, against the minimum
//!   the rate limits alone impose: TikTok's posting endpoints allow 6 inits per creator per
//!   minute, so a creator's 7th to 10th posts cannot start before the scheduled instant + 60 s,
//!   and the last one then needs the emulator's processing delay. The ratio's target is ≤ 1.1.
//!
//! The daily caps (15 direct posts per creator, 100 Instagram posts per account) allow 10 posts
//! per account per day, so the emulator's quotas are left at their defaults.
//!
//! `cargo bench --bench fanout` (`TIDEPOST_BENCH_ACCOUNTS`, default 100, and
//! `TIDEPOST_BENCH_POSTS_PER_ACCOUNT`, default 10, to try other sizes).

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tidepost_app::compose::{self, NewComposite, Schedule, TargetSpec, TikTokOptions, When};
use tidepost_app::config::RawSettings;
use tidepost_app::pipeline::media::{Item, ItemKind};
use tidepost_app::providers::Providers;
use tidepost_app::{App, Config, tokens};
use tidepost_emulator::{Emulator, EmulatorConfig};
use tidepost_jobs::{WorkerConfig, WorkerPool};
use tidepost_store::Db;
use tidepost_store::accounts::{self, Account};
use tidepost_vault::Keyring;
use tidepost_vault::secrecy::{ExposeSecret, SecretString};
use tokio_util::sync::CancellationToken;

const TARGET_RATIO: f64 = 1.1;
/// TikTok's posting endpoints: inits per creator per minute.
const TIKTOK_INITS_PER_MINUTE: usize = 6;
const TIKTOK_PROCESSING_MS: u64 = 200;
const META_PROCESSING_MS: u64 = 200;
const IG_USERS: [&str; 2] = ["17841405822304914", "17841405822304915"];

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn admin(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    body: Option<Value>,
) -> Value {
    let mut request = http.request(method, &url);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let answer = request.send().await.expect("emulator admin");
    let status = answer.status();
    let text = answer.text().await.unwrap_or_default();
    assert!(status.is_success(), "{url}: {status} {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

fn account_row(
    app: &App,
    ws: &str,
    platform: &str,
    user_id: &str,
    name: &str,
    token: &str,
    details: Value,
) -> Account {
    let id = tidepost_domain::new_id();
    let now = tidepost_domain::now_ms();
    let access = SecretString::from(token.to_string());
    Account {
        id: id.clone(),
        workspace_id: ws.into(),
        platform: platform.parse().expect("a platform name"),
        provider_user_id: user_id.into(),
        display_name: name.into(),
        username: None,
        avatar_url: None,
        status: "active".into(),
        status_reason: None,
        scopes: String::new(),
        access_token: tokens::seal(app, &id, tokens::ACCESS_TOKEN, &access),
        refresh_token: None,
        access_expires_at: Some(now + 30 * 86_400_000),
        refresh_expires_at: None,
        last_refreshed_at: None,
        refresh_lease_until: None,
        refresh_lease_by: None,
        details: details.to_string(),
        created_at: now,
        updated_at: now,
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let accounts_n = env_usize("TIDEPOST_BENCH_ACCOUNTS", 100).max(IG_USERS.len() + 1);
    let per_account = env_usize("TIDEPOST_BENCH_POSTS_PER_ACCOUNT", 10);
    let tiktok_n = accounts_n - IG_USERS.len();
    let root = tempfile::tempdir().expect("temporary folder");

    // The video both platforms download: served here, under a prefix TikTok has verified.
    let video = tidepost_app::media::testing::video(256 * 1024, "fanout");
    // A minimal HTTP/1.1 file server (one fixed answer per connection), so the bench needs no
    // web framework of its own.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let files = format!("http://{}", listener.local_addr().expect("its address"));
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                continue;
            };
            let video = video.clone();
            tokio::spawn(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: video/mp4\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    video.len()
                );
                let _ = socket.write_all(head.as_bytes()).await;
                let _ = socket.write_all(&video).await;
                let _ = socket.shutdown().await;
            });
        }
    });

    let mut emu_config = EmulatorConfig {
        auto_approve: true,
        ..Default::default()
    };
    emu_config.tiktok.processing_delay_ms = TIKTOK_PROCESSING_MS;
    emu_config.tiktok.moderation_delay_ms = 0;
    emu_config.tiktok.verified_url_prefixes = vec![format!("{files}/files/")];
    emu_config.meta.video_processing_ms = META_PROCESSING_MS;
    let direct_cap = emu_config.tiktok.direct_post_daily_cap as usize;
    let ig_limit = emu_config.meta.publishing_limit as usize;
    let emu = Emulator::start("127.0.0.1:0".parse().expect("address"), emu_config)
        .await
        .expect("start the emulator");
    let emu_url = emu.base_url();
    let http = reqwest::Client::new();

    let database_url = format!("sqlite://{}", root.path().join("tidepost.db").display());
    let flags: Vec<(&'static str, String)> = vec![
        ("database_url", database_url.clone()),
        ("data_dir", root.path().join("data").display().to_string()),
        ("sandbox", "true".into()),
    ];
    let raw = RawSettings::gather(&flags, |_| None, None).expect("settings");
    let config = Config::from_raw(&raw).expect("config");
    let db = Db::connect(&database_url).await.expect("open SQLite");
    db.migrate().await.expect("migrate");
    let keyring = Keyring::parse(Keyring::generate_key_text().expose_secret()).expect("keyring");
    let providers = Providers::from_config(&config, Some(&emu_url));
    let app = App::new(config, db, keyring, providers);
    let ws = tidepost_store::workspaces::create(&app.db, "bench", "Bench")
        .await
        .expect("workspace")
        .id;

    // The accounts: new TikTok creators with minted tokens, and the Instagram fixtures.
    let mut targets: Vec<(Account, TargetSpec)> = Vec::new();
    for i in 0..tiktok_n {
        let username = format!("fan{i:03}");
        admin(
            &http,
            reqwest::Method::POST,
            format!("{emu_url}/_emulator/tiktok/creators"),
            Some(json!({"username": username})),
        )
        .await;
        let minted = admin(
            &http,
            reqwest::Method::POST,
            format!("{emu_url}/_emulator/tiktok/token"),
            Some(json!({"creator": username})),
        )
        .await;
        let account = account_row(
            &app,
            &ws,
            "tiktok",
            minted["open_id"].as_str().expect("open_id"),
            &username,
            minted["access_token"].as_str().expect("token"),
            json!({}),
        );
        accounts::upsert(&app.db, &account)
            .await
            .expect("store the account");
        let spec = TargetSpec {
            account_id: account.id.clone(),
            tiktok: Some(TikTokOptions {
                privacy_level: Some("SELF_ONLY".into()),
                ..TikTokOptions::default()
            }),
            ..TargetSpec::default()
        };
        targets.push((account, spec));
    }
    for ig in IG_USERS {
        let minted = admin(
            &http,
            reqwest::Method::POST,
            format!("{emu_url}/_emulator/meta/token"),
            Some(json!({"ig_user_id": ig})),
        )
        .await;
        let account = account_row(
            &app,
            &ws,
            "instagram",
            ig,
            &format!("ig {ig}"),
            minted["access_token"].as_str().expect("token"),
            json!({"login": "facebook", "page_id": minted["page_id"]}),
        );
        accounts::upsert(&app.db, &account)
            .await
            .expect("store the account");
        let spec = TargetSpec {
            account_id: account.id.clone(),
            ..TargetSpec::default()
        };
        targets.push((account, spec));
    }

    // 1,000 posts, all for one instant far enough ahead for the submissions to finish.
    let total = targets.len() * per_account;
    let due = tidepost_domain::now_ms() + 40_000 + total as i64 * 15;
    let media = vec![Item {
        url: Some(format!("{files}/files/clip.mp4")),
        kind: Some(ItemKind::Video),
        ..Item::default()
    }];
    let submitting = Instant::now();
    let mut target_ids = Vec::with_capacity(total);
    for round in 0..per_account {
        for (_, spec) in &targets {
            let view = compose::submit(
                &app,
                &ws,
                NewComposite {
                    caption: format!("fan-out {round}"),
                    media: media.clone(),
                    targets: vec![spec.clone()],
                    schedule: Schedule {
                        at: Some(When {
                            at_ms: due,
                            time_zone: None,
                        }),
                        next_free_slot: false,
                    },
                    ..NewComposite::default()
                },
            )
            .await
            .unwrap_or_else(|e| panic!("post {round} to {}: {e}", spec.account_id));
            target_ids.extend(view.targets.into_iter().map(|t| t.id));
        }
    }
    let submit_secs = submitting.elapsed().as_secs_f64();
    let ahead = due - tidepost_domain::now_ms();
    assert!(ahead > 0, "the submissions took past the scheduled time");
    println!(
        "fanout: {total} posts to {} accounts ({tiktok_n} TikTok, {} Instagram) submitted in {submit_secs:.1} s ({:.1} ms each), due in {:.1} s",
        targets.len(),
        IG_USERS.len(),
        submit_secs * 1000.0 / total as f64,
        ahead as f64 / 1000.0
    );

    let shutdown = CancellationToken::new();
    let pool = WorkerPool::new(
        app.queue.clone(),
        tidepost_app::work::registry(&app),
        WorkerConfig {
            name: "fanout".into(),
            concurrency: 16,
            poll_interval: Duration::from_millis(50),
            ..WorkerConfig::default()
        },
    );
    let workers = pool.spawn(shutdown.clone());

    // Wait for every target to finish; the last one's finish is the total time.
    let deadline = Instant::now() + Duration::from_secs(600) + Duration::from_millis(ahead as u64);
    let (published, failed, last_finish) = loop {
        let rows: Vec<(String, Option<i64>)> =
            sqlx::query_as("SELECT state, finished_at FROM post_targets WHERE workspace_id = $1")
                .bind(&ws)
                .fetch_all(app.db.pool())
                .await
                .expect("read the targets");
        let published = rows.iter().filter(|(s, _)| s == "published").count();
        let failed = rows
            .iter()
            .filter(|(s, _)| s == "failed" || s == "cancelled")
            .count();
        if published + failed == total {
            let last = rows.iter().filter_map(|(_, f)| *f).max().unwrap_or(due);
            break (published, failed, last);
        }
        assert!(
            Instant::now() < deadline,
            "not finished: {published} published, {failed} failed of {total}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    shutdown.cancel();
    let _ = workers.await;
    if failed > 0 {
        let errors: Vec<(String, Option<String>)> = sqlx::query_as(
            "SELECT account_id, error_message FROM post_targets WHERE state = 'failed' LIMIT 5",
        )
        .fetch_all(app.db.pool())
        .await
        .expect("read the failures");
        panic!("{failed} targets failed, for example {errors:?}");
    }
    assert_eq!(published, total);

    // Early targets: none may start before its time.
    let early: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM post_targets WHERE init_at IS NOT NULL AND init_at < $1",
    )
    .bind(due)
    .fetch_one(app.db.pool())
    .await
    .expect("count early starts");
    assert_eq!(early, 0, "targets started before their time");

    // The emulator's records: no rate limit hit, no cap exceeded.
    let limited = admin(
        &http,
        reqwest::Method::GET,
        format!("{emu_url}/_emulator/tiktok/rate-limited"),
        None,
    )
    .await;
    let limited_n = limited["rate_limited"].as_array().map_or(0, Vec::len);
    assert_eq!(limited_n, 0, "TikTok rate-limited tidepost: {limited}");
    let publishes = admin(
        &http,
        reqwest::Method::GET,
        format!("{emu_url}/_emulator/tiktok/publishes"),
        None,
    )
    .await;
    let mut per_creator: HashMap<String, usize> = HashMap::new();
    for p in publishes["publishes"].as_array().expect("publishes") {
        let who = p["open_id"].as_str().unwrap_or("?").to_string();
        *per_creator.entry(who).or_default() += 1;
    }
    let tiktok_sent: usize = per_creator.values().sum();
    let most = per_creator.values().copied().max().unwrap_or(0);
    assert_eq!(
        tiktok_sent,
        tiktok_n * per_account,
        "TikTok publishes: {per_creator:?}"
    );
    assert!(
        most <= direct_cap,
        "a creator got {most} direct posts, over {direct_cap}"
    );
    let ig_media = admin(
        &http,
        reqwest::Method::GET,
        format!("{emu_url}/_emulator/meta/media"),
        None,
    )
    .await;
    let mut per_ig: HashMap<String, usize> = HashMap::new();
    for m in ig_media["media"].as_array().expect("media") {
        if m["is_carousel_child"] == json!(true) {
            continue;
        }
        let owner = m["owner_id"].as_str().unwrap_or("?").to_string();
        *per_ig.entry(owner).or_default() += 1;
    }
    let ig_sent: usize = per_ig.values().sum();
    assert_eq!(
        ig_sent,
        IG_USERS.len() * per_account,
        "Instagram media: {per_ig:?}"
    );
    assert!(
        per_ig.values().all(|n| *n <= ig_limit),
        "Instagram limit broken: {per_ig:?}"
    );

    let took = (last_finish - due) as f64 / 1000.0;
    let minutes = per_account
        .div_ceil(TIKTOK_INITS_PER_MINUTE)
        .saturating_sub(1);
    let minimum = minutes as f64 * 60.0 + TIKTOK_PROCESSING_MS as f64 / 1000.0;
    let ratio = took / minimum;
    println!(
        "fanout: all {total} published, none early; TikTok {tiktok_sent} publishes (at most {most} per creator, cap {direct_cap}), no rate-limited request; Instagram {ig_sent} media (at most {} per account, limit {ig_limit})",
        per_ig.values().copied().max().unwrap_or(0)
    );
    println!(
        "fanout: scheduled instant → last published {took:.1} s; minimum the rate limits impose {minimum:.1} s ({per_account} posts per creator at {TIKTOK_INITS_PER_MINUTE} inits per minute, then {TIKTOK_PROCESSING_MS} ms processing); ratio {ratio:.3} (target ≤ {TARGET_RATIO}) {}",
        if ratio <= TARGET_RATIO { "OK" } else { "OVER" }
    );
    common::record(
        "fanout",
        "time to publish / rate-limit minimum",
        ratio,
        "×",
        &format!("<= {TARGET_RATIO}"),
    );
}
