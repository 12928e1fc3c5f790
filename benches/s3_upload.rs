//! Storing a 1 GiB upload on S3-compatible storage, beside `curl` PUTting the same bytes to the
//! same server in the same run, and beside the local folder; with tidepost's peak memory.
//!
//! The server is moto in server mode (`tidepost_app::media::s3_server`, the one the tests use),
//! in its own process, so the resident memory read from `/proc/self/status` is this process's.
//!
//! - tidepost's time is `Storage::put` of a 1 GiB video (a real clip padded with pseudo-random
//!   bytes, produced as it is read: never whole in memory): streamed into an S3 multipart
//!   upload while hashed for its content address, then completed and moved to that address.
//! - curl's time is one SigV4-signed PUT (`--aws-sigv4`) of the same bytes, written to a file
//!   beforehand, to another key of the same server: no hashing, no multipart, no move.
//! - The local folder's time is the same `put` into `LocalDisk` (what `TIDEPOST_STORAGE=local`
//!   does), printed beside for scale.
//! - Each round stores other bytes (other padding) and deletes what it stored, so moto, which
//!   keeps objects in memory, holds one at a time. Rounds alternate which side goes first; the
//!   figures are medians.
//!
//! `cargo bench --bench s3_upload` (`TIDEPOST_BENCH_ROUNDS`, default 3, at most 7). Targets from
//! the S3 issue: the 1 GiB upload's ≤ 64 MiB peak RSS holds on S3; the throughput is reported
//! as a ratio to curl to the same server (no target was set; ≥ 0.5× is what "streaming, bounded
//! memory" should still give against a single plain PUT).

mod common;

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{mb_per_s, median, mib, reset_peak, status_kib};
use tidepost_app::media::LocalDisk;
use tidepost_app::media::s3_server::{ACCESS_KEY_ID, S3Server, SECRET_ACCESS_KEY};
use tidepost_app::media::storage::Storage;
use tidepost_app::media::testing::video_reader;

const SIZE: u64 = 1 << 30;
const TARGET_PEAK_MIB: f64 = 64.0;
const TARGET_RATIO: f64 = 0.5;

/// Stores `SIZE` bytes labelled `label` in `storage`; returns the time and the address.
async fn put(storage: &dyn Storage, label: &str) -> (Duration, String) {
    let started = Instant::now();
    let stored = storage
        .put(Box::pin(video_reader(SIZE, label)), u64::MAX)
        .await
        .expect("put 1 GiB");
    let time = started.elapsed();
    assert_eq!(stored.size, SIZE);
    (time, stored.sha256)
}

/// Writes the bytes of `label` to `path` (for curl).
async fn write_file(path: &Path, label: &str) {
    let mut reader = video_reader(SIZE, label);
    let mut file = tokio::fs::File::create(path)
        .await
        .expect("a file for curl");
    tokio::io::copy(&mut reader, &mut file)
        .await
        .expect("write the file");
    file.sync_all().await.expect("sync");
}

/// curl's signed request to `url` (`-T file` for a PUT, `-X DELETE` otherwise); the status.
fn curl(args: &[&str], url: &str) -> String {
    let out = Command::new("curl")
        .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}"])
        .args(["--aws-sigv4", "aws:amz:us-east-1:s3"])
        .args(["--user", &format!("{ACCESS_KEY_ID}:{SECRET_ACCESS_KEY}")])
        .args(args)
        .arg(url)
        .output()
        .expect("curl runs");
    assert!(
        out.status.success(),
        "curl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn main() {
    let rounds: usize = std::env::var("TIDEPOST_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
        .clamp(1, 7);
    let root = tempfile::tempdir().expect("temporary folder");
    let server = S3Server::start();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let s3 = server.storage("bench").await;
        let curl_bucket = server.bucket().await;
        let local = LocalDisk::new(root.path().join("media"));
        let file = root.path().join("curl.bin");
        println!(
            "{SIZE} bytes ({} MiB) to {}, {rounds} rounds",
            SIZE >> 20,
            s3.describe()
        );
        let setup_peak = status_kib("VmHWM:");
        let mut peak = setup_peak;
        let (mut tidepost, mut curl_rates, mut local_rates) = (Vec::new(), Vec::new(), Vec::new());
        for round in 0..rounds {
            let label = format!("s3-bench-{round}");
            write_file(&file, &label).await;
            let curl_first = round % 2 == 0;
            for curl_side in [curl_first, !curl_first] {
                if curl_side {
                    let url = format!("{}/{curl_bucket}/curl-{round}", server.endpoint);
                    let started = Instant::now();
                    let status = curl(&["-T", file.to_str().expect("a path")], &url);
                    let time = started.elapsed();
                    assert_eq!(status, "200", "curl's PUT");
                    curl_rates.push(mb_per_s(SIZE, time));
                    println!(
                        "round {}: curl PUT      {:>7.2} s {:>8.1} MB/s",
                        round + 1,
                        time.as_secs_f64(),
                        mb_per_s(SIZE, time)
                    );
                    let deleted = curl(&["-X", "DELETE"], &url);
                    assert_eq!(deleted, "204", "curl's DELETE");
                } else {
                    peak = peak.max(status_kib("VmHWM:"));
                    let reset = reset_peak();
                    let before = status_kib("VmRSS:");
                    let (time, sha) = put(&s3, &label).await;
                    let hwm = status_kib("VmHWM:");
                    peak = peak.max(hwm);
                    tidepost.push(mb_per_s(SIZE, time));
                    println!(
                        "round {}: tidepost S3   {:>7.2} s {:>8.1} MB/s  (RSS {:.1} MiB before, peak {:.1} MiB during{})",
                        round + 1,
                        time.as_secs_f64(),
                        mb_per_s(SIZE, time),
                        mib(before),
                        mib(hwm),
                        if reset { "" } else { "; the peak could not be reset" }
                    );
                    assert!(s3.delete(&sha).await.expect("delete"), "stored");
                }
            }
            let (time, sha) = put(&local, &label).await;
            local_rates.push(mb_per_s(SIZE, time));
            println!(
                "round {}: tidepost local{:>7.2} s {:>8.1} MB/s",
                round + 1,
                time.as_secs_f64(),
                mb_per_s(SIZE, time)
            );
            local.delete(&sha).await.expect("delete");
        }
        let (t, c, l) = (median(tidepost), median(curl_rates), median(local_rates));
        let ratio = t / c;
        let peak = mib(peak);
        let verdict = |ok: bool| if ok { "PASS" } else { "FAIL" };
        println!("tidepost S3 put (hashed, multipart) median {t:>8.1} MB/s");
        println!("curl PUT to the same server         median {c:>8.1} MB/s");
        println!("tidepost local folder put           median {l:>8.1} MB/s");
        println!(
            "S3 throughput ratio tidepost/curl ×{ratio:.2}  [target ≥ ×{TARGET_RATIO}] {}",
            verdict(ratio >= TARGET_RATIO)
        );
        println!(
            "tidepost peak RSS {peak:.1} MiB (after setup {:.1} MiB)  [target ≤ {TARGET_PEAK_MIB} MiB] {}",
            mib(setup_peak),
            verdict(peak <= TARGET_PEAK_MIB)
        );
        common::record(
            "s3_upload",
            "S3 upload throughput / curl PUT (medians)",
            (ratio * 100.0).round() / 100.0,
            "×",
            &format!(">= {TARGET_RATIO}"),
        );
        common::record(
            "s3_upload",
            "peak RSS during a 1 GiB upload to S3",
            (peak * 10.0).round() / 10.0,
            "MiB",
            &format!("<= {TARGET_PEAK_MIB}"),
        );
        let _ = std::io::stdout().flush();
    });
    drop(runtime);
    drop(server);
}
