//! What every benchmark shares: recording its headline figures for the one report.
//!
//! A bench calls [`record`] once per headline figure; each call appends one JSON line to
//! `target/bench-results.jsonl` (next to the bench binary, so `CARGO_TARGET_DIR` is honoured).
//! `cargo bench --bench report` (or `scripts/bench-report`, which runs every bench first)
//! prints the latest value of each figure in one table, with its target and whether it is met.
//!
//! Std only, so that any bench (in the root package or a crate's `benches/`, which includes it
//! with `#[path = "../../../benches/common/mod.rs"] mod common;`) can use it without new
//! dependencies. Appending is a single `write` of a whole line in append mode, so benches run
//! one after another never interleave.

#![allow(dead_code)]

use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

/// The results file's name inside the target folder.
pub const RESULTS_FILE: &str = "bench-results.jsonl";

/// Appends one figure to the results file. `bench` names the benchmark (`"webhook_ingest"`),
/// `metric` the figure (`"SQLite events/s"`), `unit` how to read `value`, and `target` the
/// goal as `">= 10000"`, `"<= 64"`, or `""` when the figure has none. A failure to write is
/// reported on stderr and otherwise ignored: the bench's own output stays the primary record.
pub fn record(bench: &str, metric: &str, value: f64, unit: &str, target: &str) {
    let at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let value = if value.is_finite() { value } else { -1.0 };
    let line = format!(
        "{{\"bench\":{},\"metric\":{},\"value\":{value},\"unit\":{},\"target\":{},\"at\":{at}}}\n",
        json_string(bench),
        json_string(metric),
        json_string(unit),
        json_string(target),
    );
    let path = results_path();
    let written = path
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| OpenOptions::new().create(true).append(true).open(&path))
        .and_then(|mut file| file.write_all(line.as_bytes()));
    if let Err(err) = written {
        eprintln!(
            "could not record {bench}/{metric} in {}: {err}",
            path.display()
        );
    }
}

/// `target/bench-results.jsonl`: `CARGO_TARGET_DIR` when set, else the folder above the
/// profile folder the running bench binary lives in (`target/release/deps/<bench>`).
pub fn results_path() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(dir).join(RESULTS_FILE);
    }
    let from_exe = std::env::current_exe().ok().and_then(|exe| {
        exe.ancestors()
            .find(|dir| dir.file_name().is_some_and(|name| name == "deps"))
            .and_then(|deps| deps.parent()?.parent().map(PathBuf::from))
    });
    from_exe
        .unwrap_or_else(|| PathBuf::from("target"))
        .join(RESULTS_FILE)
}

/// Whether `value` meets `target` (`">= x"`, `"<= x"`, `"> x"`, `"< x"`); `None` when the
/// figure has no target or the target is not of that form.
pub fn meets(value: f64, target: &str) -> Option<bool> {
    let target = target.trim();
    let (op, rest) = ["<=", ">=", "<", ">"]
        .into_iter()
        .find_map(|op| target.strip_prefix(op).map(|rest| (op, rest)))?;
    let bound: f64 = rest.trim().parse().ok()?;
    Some(match op {
        "<=" => value <= bound,
        ">=" => value >= bound,
        "<" => value < bound,
        _ => value > bound,
    })
}

fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A field of this process's `/proc/self/status` (`"VmHWM:"`, `"VmRSS:"`), in KiB; 0 when it
/// cannot be read.
pub fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Resets VmHWM to the current RSS (Linux `clear_refs` 5); `false` when not allowed.
pub fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

pub fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

pub fn mb_per_s(bytes: u64, time: std::time::Duration) -> f64 {
    bytes as f64 / time.as_secs_f64() / 1e6
}

/// The median of `xs` (not empty).
pub fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}
