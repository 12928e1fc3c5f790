//! Start time and idle memory of `tidepost serve` on SQLite, beside the cost of starting the
//! same binary for `--version` (process creation and loading, the floor of any start).
//!
//! `cargo bench --bench startup` prints, for plain `serve` and for `serve --sandbox` (which
//! also starts the emulator): the median time from spawn to a `200` on `/healthz`, its ratio to
//! the `--version` baseline, and the resident memory after a few idle seconds (VmRSS, and the
//! peak VmHWM). Targets from the issue: under 1 s to start, under 30 MiB idle.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_tidepost");
const RUNS: usize = 5;

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn version_start() -> Duration {
    let started = Instant::now();
    let status = Command::new(BIN)
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .expect("run tidepost --version");
    assert!(status.success());
    started.elapsed()
}

fn healthz(addr: &str) -> bool {
    let Ok(mut stream) = TcpStream::connect(addr) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.starts_with("HTTP/1.1 200")
}

fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

struct Run {
    start: Duration,
    rss_kib: u64,
    hwm_kib: u64,
}

fn serve_once(sandbox: bool, idle: Duration) -> Run {
    let dir = tempfile::tempdir().expect("temporary folder");
    let key = Command::new(BIN)
        .args(["keys", "generate"])
        .stderr(Stdio::null())
        .output()
        .expect("keys generate");
    let key = String::from_utf8(key.stdout)
        .expect("utf-8")
        .trim()
        .to_string();
    let mut command = Command::new(BIN);
    command
        .current_dir(dir.path())
        .args(["serve", "--listen", "127.0.0.1:0", "--no-workers"])
        .env("TIDEPOST_KEYS", key)
        .env("TIDEPOST_ALLOW_HTTP", "true")
        .env("TIDEPOST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if sandbox {
        command.arg("--sandbox");
    }
    let started = Instant::now();
    let mut child = command.spawn().expect("spawn tidepost serve");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let addr = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|line| {
            line.strip_prefix("tidepost is listening on http://")
                .map(|rest| rest.split(' ').next().unwrap_or("").to_string())
        })
        .expect("the listening line");
    while !healthz(&addr) {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "serve did not become healthy"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    let start = started.elapsed();
    // Keep draining stdout so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    std::thread::sleep(idle);
    let run = Run {
        start,
        rss_kib: status_kib(child.id(), "VmRSS:"),
        hwm_kib: status_kib(child.id(), "VmHWM:"),
    };
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    run
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else to parse.
    let baseline = median((0..RUNS).map(|_| version_start()).collect());
    println!(
        "tidepost --version (baseline): {:>8.1} ms",
        baseline.as_secs_f64() * 1e3
    );
    for (name, sandbox) in [("serve", false), ("serve --sandbox", true)] {
        let runs: Vec<Run> = (0..RUNS)
            .map(|_| serve_once(sandbox, Duration::from_secs(3)))
            .collect();
        let start = median(runs.iter().map(|r| r.start).collect());
        let rss = runs.iter().map(|r| r.rss_kib).max().unwrap_or(0);
        let hwm = runs.iter().map(|r| r.hwm_kib).max().unwrap_or(0);
        println!(
            "{name:<16} start {:>7.1} ms (×{:.1} the baseline), idle RSS {:>5.1} MiB, peak {:>5.1} MiB  [target: < 1000 ms, < 30 MiB]",
            start.as_secs_f64() * 1e3,
            start.as_secs_f64() / baseline.as_secs_f64(),
            rss as f64 / 1024.0,
            hwm as f64 / 1024.0
        );
        let ms = (start.as_secs_f64() * 1e4).round() / 10.0;
        common::record(
            "startup",
            &format!("{name}: start time"),
            ms,
            "ms",
            "< 1000",
        );
        let mib = (rss as f64 / 1024.0 * 10.0).round() / 10.0;
        common::record("startup", &format!("{name}: idle RSS"), mib, "MiB", "< 30");
    }
}
