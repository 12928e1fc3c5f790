//! A 1 GiB TikTok FILE_UPLOAD from tidepost to the provider emulator, beside `curl` PUTting
//! the same chunks to the same emulator in the same run, and tidepost's peak memory.
//!
//! The emulator runs as a separate process (`tidepost emulator`), so the resident memory read
//! from `/proc/self/status` is this process's alone: an `App` on a temporary SQLite database
//! and data folder, which stores a 1 GiB video (a real clip padded with pseudo-random bytes;
//! streamed, never in memory), submits a direct post of it and runs the `tiktok.publish` job
//! (quota, rate limit, init, then every chunk streamed from the stored file and acknowledged in
//! the database).
//!
//! - tidepost's time is the whole `tiktok.publish` job: init, every chunk PUT, every
//!   acknowledgement recorded. curl's time is only its chunk PUTs (its init is not timed), so
//!   the ratio is, if anything, unfair to tidepost.
//! - curl gets its own FILE_UPLOAD init with the same chunk plan, then one `curl` process PUTs
//!   the chunks in order (`--next` per chunk: one connection, no process start per chunk),
//!   each streamed from a chunk file cut beforehand (`-T`; `--data-binary @file` would read
//!   every file into memory while parsing its arguments). Every answer must be 206, the last
//!   201.
//! - Both uploads are checked on the emulator: every byte received, SHA-256 equal to the file.
//! - Rounds alternate which side goes first, after a `sync`; the figures are medians.
//!
//! `cargo bench --bench tiktok_upload` (`TIDEPOST_BENCH_ROUNDS`, default 3, at most 7: the
//! emulator caps direct posts at 15 per creator and day). Targets from the issue: ≥ 0.9× curl's
//! throughput, ≤ 64 MiB peak RSS.

mod common;

use common::{mb_per_s, median, mib, reset_peak, status_kib};

use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tidepost_app::config::RawSettings;
use tidepost_app::providers::Providers;
use tidepost_app::tiktok::{self as publish, MediaSource, Mode, NewPost, PostOptions};
use tidepost_app::{App, Config, tokens};
use tidepost_jobs::{Registry, drain_due};
use tidepost_providers::tiktok::{
    ChunkPlan, InitVideo, PostInfo, PostMode, PrivacyLevel, TikTokClient, VideoSource,
};
use tidepost_store::accounts::{self, Account};
use tidepost_store::media::Media;
use tidepost_store::{Db, posts};
use tidepost_vault::Keyring;
use tidepost_vault::secrecy::{ExposeSecret, SecretString};

const BIN: &str = env!("CARGO_BIN_EXE_tidepost");
const SIZE: u64 = 1 << 30;
const TARGET_RATIO: f64 = 0.9;
const TARGET_PEAK_MIB: f64 = 64.0;
const PRIVACY: &str = "SELF_ONLY";

/// Flushes dirty pages so that neither side pays for the other's writes.
fn sync() {
    let _ = Command::new("sync").status();
}

/// The emulator in its own process, its temporary files under `tmp`.
struct EmulatorProcess {
    child: Child,
    base_url: String,
}

impl EmulatorProcess {
    fn start(tmp: &Path) -> Self {
        let mut child = Command::new(BIN)
            .args(["emulator", "--listen", "127.0.0.1:0"])
            .env("TMPDIR", tmp)
            .env("TIDEPOST_LOG", "warn")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn tidepost emulator");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let base_url = lines
            .by_ref()
            .map_while(Result::ok)
            .find_map(|line| {
                line.strip_prefix("tidepost emulator listening on ")
                    .map(|rest| rest.trim().trim_end_matches('/').to_string())
            })
            .expect("the emulator's listening line");
        // Keep draining stdout so the emulator never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Self { child, base_url }
    }
}

impl Drop for EmulatorProcess {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

struct Bench {
    app: App,
    registry: Registry,
    http: reqwest::Client,
    emu: String,
    media: Media,
    plan: ChunkPlan,
    chunk_files: Vec<PathBuf>,
}

impl Bench {
    async fn admin(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self.http.request(method, format!("{}{path}", self.emu));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("emulator admin call");
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        assert!(status.is_success(), "{path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    async fn mint_token(&self) -> Value {
        self.admin(
            reqwest::Method::POST,
            "/_emulator/tiktok/token",
            Some(json!({})),
        )
        .await
    }

    /// A TikTok account connected in workspace `ws` with a freshly minted token (a rate-limit
    /// window of its own).
    async fn connect(&self, ws: &str) -> Account {
        let minted = self.mint_token().await;
        let id = tidepost_domain::new_id();
        let now = tidepost_domain::now_ms();
        let secret = |field: &str| {
            SecretString::from(minted[field].as_str().expect("minted token").to_string())
        };
        let account = Account {
            id: id.clone(),
            workspace_id: ws.to_string(),
            platform: tidepost_domain::Platform::Tiktok,
            provider_user_id: minted["open_id"].as_str().expect("open_id").into(),
            display_name: "Tidepost Sandbox".into(),
            username: None,
            avatar_url: None,
            status: "active".into(),
            status_reason: None,
            scopes: "user.info.basic,video.publish,video.upload".into(),
            access_token: tokens::seal(
                &self.app,
                &id,
                tokens::ACCESS_TOKEN,
                &secret("access_token"),
            ),
            refresh_token: Some(tokens::seal(
                &self.app,
                &id,
                tokens::REFRESH_TOKEN,
                &secret("refresh_token"),
            )),
            access_expires_at: Some(now + 86_400_000),
            refresh_expires_at: Some(now + 365 * 86_400_000),
            last_refreshed_at: None,
            refresh_lease_until: None,
            refresh_lease_by: None,
            details: "{}".into(),
            created_at: now,
            updated_at: now,
        };
        accounts::upsert(&self.app.db, &account)
            .await
            .expect("store the account");
        account
    }

    /// Checks the emulator received every byte of `publish_id`, with the file's SHA-256.
    async fn check_received(&self, publish_id: &str) {
        let publishes = self
            .admin(reqwest::Method::GET, "/_emulator/tiktok/publishes", None)
            .await;
        let publish = publishes["publishes"]
            .as_array()
            .and_then(|all| all.iter().find(|p| p["publish_id"] == publish_id))
            .unwrap_or_else(|| panic!("publish {publish_id} is not on the emulator"));
        assert_eq!(publish["bytes_received"], json!(SIZE), "{publish}");
        assert_eq!(publish["sha256"], json!(self.media.sha256), "{publish}");
    }

    /// Submits a direct post of the file and runs its `tiktok.publish` job; returns the job's
    /// time.
    async fn tidepost_upload(&self, round: usize) -> Duration {
        // A workspace per round: one creator is one account per workspace, and each round
        // wants a fresh token. The media row points at the same stored file.
        let ws = tidepost_store::workspaces::create(
            &self.app.db,
            &format!("bench-{round}"),
            &format!("Bench {round}"),
        )
        .await
        .expect("workspace")
        .id;
        let media = tidepost_store::media::insert_or_get(
            &self.app.db,
            &Media {
                id: tidepost_domain::new_id(),
                workspace_id: ws.clone(),
                ..self.media.clone()
            },
        )
        .await
        .expect("media row");
        let account = self.connect(&ws).await;
        let view = tidepost_app::compose::submit(
            &self.app,
            &ws,
            NewPost {
                account_id: account.id.clone(),
                mode: Mode::Direct,
                options: PostOptions {
                    caption: "benchmark #tidepost".into(),
                    options: tidepost_app::tiktok::TikTokOptions {
                        privacy_level: Some(PRIVACY.into()),
                        ..Default::default()
                    },
                    ..Default::default()
                },
                media: MediaSource::Stored(media.id),
                idempotency_key: None,
                created_by: None,
            }
            .into(),
        )
        .await
        .expect("submit the post");
        let target_id = view.targets[0].id.clone();
        let kinds = [publish::PUBLISH_JOB.to_string()];
        let started = Instant::now();
        let report = drain_due(&self.app.queue, &self.registry, Some(&kinds), 1)
            .await
            .expect("run the publish job");
        let elapsed = started.elapsed();
        let target = posts::target(&self.app.db, &ws, &target_id)
            .await
            .expect("read the target")
            .expect("the target");
        assert_eq!(report.claimed, 1, "{report:?}");
        assert_eq!(
            (target.chunks_acked, target.bytes_sent),
            (target.chunks_total, SIZE as i64),
            "the upload did not finish: {target:?}"
        );
        assert_eq!(target.chunks_total as u64, self.plan.total_chunk_count());
        self.check_received(target.publish_id.as_deref().expect("publish id"))
            .await;
        elapsed
    }

    /// Inits a FILE_UPLOAD with the same plan, then one curl PUTs every chunk file; returns the
    /// time of the PUTs.
    async fn curl_upload(&self) -> Duration {
        let minted = self.mint_token().await;
        let token = SecretString::from(minted["access_token"].as_str().expect("token").to_string());
        let client: &TikTokClient = self.app.tiktok().expect("TikTok client");
        let init = InitVideo {
            mode: PostMode::Direct(PostInfo {
                title: Some("benchmark #curl".into()),
                privacy_level: PrivacyLevel::from(PRIVACY.to_string()),
                disable_comment: false,
                disable_duet: false,
                disable_stitch: false,
                video_cover_timestamp_ms: None,
                brand_content_toggle: false,
                brand_organic_toggle: false,
                is_aigc: false,
            }),
            source: VideoSource::FileUpload(self.plan),
        };
        let init = client.init_video(&token, &init).await.expect("curl's init");
        let url = init.upload_url.expect("an upload URL");
        // `-T` streams each file; `--request-target` keeps curl from appending the file name to
        // a URL whose path ends in `/`.
        let url = reqwest::Url::parse(url.expose_secret()).expect("upload URL");
        let target = format!("{}?{}", url.path(), url.query().unwrap_or_default());
        let origin = format!("{}/upload", url.origin().ascii_serialization());
        let mut args: Vec<String> = Vec::new();
        for (chunk, file) in self.plan.chunks().zip(&self.chunk_files) {
            if !args.is_empty() {
                args.push("--next".into());
            }
            args.extend([
                "-sS".into(),
                "-o".into(),
                "/dev/null".into(),
                "-w".into(),
                "%{http_code}\\n".into(),
                "-H".into(),
                format!("Content-Range: {}", chunk.content_range()),
                "-H".into(),
                "Content-Type: video/mp4".into(),
                "-H".into(),
                "Expect:".into(),
                "-T".into(),
                file.display().to_string(),
                "--request-target".into(),
                target.clone(),
                origin.clone(),
            ]);
        }
        let started = Instant::now();
        let output = Command::new("curl")
            .args(&args)
            .stderr(Stdio::inherit())
            .output()
            .expect("run curl");
        let elapsed = started.elapsed();
        assert!(output.status.success(), "curl failed: {:?}", output.status);
        let codes: Vec<String> = String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(str::to_string)
            .collect();
        let mut expected = vec!["206".to_string(); self.chunk_files.len()];
        *expected.last_mut().expect("chunks") = "201".into();
        assert_eq!(codes, expected, "curl's answers");
        self.check_received(&init.publish_id).await;
        elapsed
    }
}

/// Cuts the stored file into the plan's chunks for curl (not timed).
fn cut_chunks(file: &Path, plan: &ChunkPlan, dir: &Path) -> Vec<PathBuf> {
    std::fs::create_dir_all(dir).expect("chunk folder");
    let mut source = std::fs::File::open(file).expect("open the media file");
    plan.chunks()
        .map(|chunk| {
            let path = dir.join(format!("chunk-{:04}", chunk.index));
            source
                .seek(SeekFrom::Start(chunk.offset))
                .expect("seek the media file");
            let mut out = std::fs::File::create(&path).expect("create a chunk file");
            let copied = std::io::copy(&mut std::io::Read::take(&mut source, chunk.len), &mut out)
                .expect("copy a chunk");
            assert_eq!(copied, chunk.len);
            out.flush().expect("flush a chunk file");
            path
        })
        .collect()
}

async fn setup(root: &Path, emu: &str) -> Bench {
    let data = root.join("data");
    std::fs::create_dir_all(&data).expect("data folder");
    let database_url = format!("sqlite://{}", root.join("tidepost.db").display());
    let flags: Vec<(&'static str, String)> = vec![
        ("database_url", database_url.clone()),
        ("data_dir", data.display().to_string()),
        ("sandbox", "true".into()),
    ];
    let raw = RawSettings::gather(&flags, |_| None, None).expect("settings");
    let config = Config::from_raw(&raw).expect("config");
    let db = Db::connect(&database_url).await.expect("open SQLite");
    db.migrate().await.expect("migrate");
    let keyring = Keyring::parse(Keyring::generate_key_text().expose_secret()).expect("keyring");
    let providers = Providers::from_config(&config, Some(emu));
    let app = App::new(config, db, keyring, providers);
    let ws = tidepost_store::workspaces::create(&app.db, "bench", "Bench")
        .await
        .expect("workspace")
        .id;
    let media = tidepost_app::pipeline::media::store(
        &app,
        &ws,
        // A real video (a short clip, then padding that does not compress), produced as it
        // is read.
        tidepost_app::media::testing::video_reader(SIZE, "bench"),
        "video/mp4",
        Some("bench.mp4"),
    )
    .await
    .expect("store the video");
    let plan = ChunkPlan::for_size(SIZE).expect("chunk plan");
    let chunk_files = cut_chunks(
        &tidepost_app::pipeline::media::path_of(&app, &media),
        &plan,
        &root.join("chunks"),
    );
    let registry = publish::register(Registry::new(), &app);
    Bench {
        app,
        registry,
        http: reqwest::Client::new(),
        emu: emu.to_string(),
        media,
        plan,
        chunk_files,
    }
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else to parse.
    let rounds: usize = std::env::var("TIDEPOST_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
        .clamp(1, 7);
    let root = tempfile::tempdir().expect("temporary folder");
    let emu_tmp = root.path().join("emulator");
    std::fs::create_dir_all(&emu_tmp).expect("emulator folder");
    let emulator = EmulatorProcess::start(&emu_tmp);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let bench = setup(root.path(), &emulator.base_url).await;
        println!(
            "{} bytes ({} MiB) in {} chunks of {} bytes (last {}), {rounds} rounds",
            SIZE,
            SIZE >> 20,
            bench.plan.total_chunk_count(),
            bench.plan.chunk_size(),
            bench.plan.chunk(bench.plan.total_chunk_count() - 1).map_or(0, |c| c.len),
        );
        let setup_peak = status_kib("VmHWM:");
        let mut process_peak = setup_peak;
        let mut upload_peak = 0;
        let mut upload_growth = 0;
        let mut tidepost = Vec::new();
        let mut curl = Vec::new();
        for round in 0..rounds {
            let curl_first = round % 2 == 0;
            for side in [curl_first, !curl_first] {
                sync();
                if side {
                    let time = bench.curl_upload().await;
                    curl.push(mb_per_s(SIZE, time));
                    println!(
                        "round {}: curl     {:>7.2} s {:>8.1} MB/s",
                        round + 1,
                        time.as_secs_f64(),
                        mb_per_s(SIZE, time)
                    );
                } else {
                    process_peak = process_peak.max(status_kib("VmHWM:"));
                    let reset = reset_peak();
                    let rss_before = status_kib("VmRSS:");
                    let time = bench.tidepost_upload(round).await;
                    let hwm = status_kib("VmHWM:");
                    process_peak = process_peak.max(hwm);
                    if reset {
                        upload_peak = upload_peak.max(hwm);
                        upload_growth = upload_growth.max(hwm.saturating_sub(rss_before));
                    }
                    tidepost.push(mb_per_s(SIZE, time));
                    println!(
                        "round {}: tidepost {:>7.2} s {:>8.1} MB/s  (RSS {:.1} MiB before, peak {:.1} MiB during)",
                        round + 1,
                        time.as_secs_f64(),
                        mb_per_s(SIZE, time),
                        mib(rss_before),
                        mib(hwm)
                    );
                }
            }
        }
        let (t, c) = (median(tidepost), median(curl));
        let ratio = t / c;
        let peak = mib(process_peak);
        let verdict = |ok: bool| if ok { "PASS" } else { "FAIL" };
        println!("tidepost (whole publish job) median {t:>8.1} MB/s");
        println!("curl (chunk PUTs only)       median {c:>8.1} MB/s");
        println!(
            "throughput ratio tidepost/curl ×{ratio:.2}  [target ≥ ×{TARGET_RATIO}] {}",
            verdict(ratio >= TARGET_RATIO)
        );
        println!(
            "tidepost peak RSS {peak:.1} MiB (after setup {:.1} MiB; upload phase peak {:.1} MiB, growth {:.1} MiB)  [target ≤ {TARGET_PEAK_MIB} MiB] {}",
            mib(setup_peak),
            mib(upload_peak),
            mib(upload_growth),
            verdict(peak <= TARGET_PEAK_MIB)
        );
        common::record(
            "tiktok_upload",
            "upload throughput / curl (medians)",
            (ratio * 100.0).round() / 100.0,
            "×",
            &format!(">= {TARGET_RATIO}"),
        );
        common::record(
            "tiktok_upload",
            "peak RSS during a 1 GiB upload",
            (peak * 10.0).round() / 10.0,
            "MiB",
            &format!("<= {TARGET_PEAK_MIB}"),
        );
    });
    drop(runtime);
    drop(emulator);
}
