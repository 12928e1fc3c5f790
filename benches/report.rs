//! The one table of every benchmark's headline figures.
//!
//! Each bench records its figures with `common::record` (one JSON line each in
//! `target/bench-results.jsonl`); this prints the latest value of every figure, its target
//! and whether it is met, grouped by bench. `scripts/bench-report` runs every bench and then
//! this; `cargo bench --bench report` alone prints what the last runs recorded.

mod common;

use std::collections::BTreeMap;

/// One recorded figure.
struct Figure {
    value: f64,
    unit: String,
    target: String,
    at: u64,
}

fn main() {
    // `scripts/bench-report` runs every bench, this one included, before asking for the table.
    if std::env::var("TIDEPOST_BENCH_REPORT").is_ok_and(|v| v == "later") {
        return;
    }
    let path = common::results_path();
    let Ok(text) = std::fs::read_to_string(&path) else {
        println!(
            "no bench results yet at {}: run `scripts/bench-report` (or `cargo bench`)",
            path.display()
        );
        return;
    };
    // (bench, metric) -> the latest figure; a line that does not parse is reported and skipped.
    let mut latest: BTreeMap<(String, String), Figure> = BTreeMap::new();
    for (n, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        match parse(line) {
            Some((bench, metric, figure)) => {
                let key = (bench, metric);
                if latest.get(&key).is_none_or(|old| old.at <= figure.at) {
                    latest.insert(key, figure);
                }
            }
            None => eprintln!("{}:{}: unreadable line skipped", path.display(), n + 1),
        }
    }
    let order = [
        "tiktok_upload",
        "webhook_ingest",
        "jobs",
        "outbound_delivery",
        "fanout",
        "startup",
    ];
    let rank = |bench: &str| {
        order
            .iter()
            .position(|b| *b == bench)
            .unwrap_or(order.len())
    };
    let mut rows: Vec<_> = latest.into_iter().collect();
    rows.sort_by(|((a, _), _), ((b, _), _)| rank(a).cmp(&rank(b)).then(a.cmp(b)));

    let metric_width = rows
        .iter()
        .map(|((_, m), _)| m.chars().count())
        .max()
        .unwrap_or(6);
    println!(
        "{:<18} {:<metric_width$} {:>12} {:<9} {:<12} met",
        "bench", "figure", "value", "unit", "target"
    );
    let mut missed = 0;
    for ((bench, metric), figure) in &rows {
        let met = match common::meets(figure.value, &figure.target) {
            Some(true) => "yes",
            Some(false) => {
                missed += 1;
                "NO"
            }
            None => "",
        };
        println!(
            "{bench:<18} {metric:<metric_width$} {:>12} {:<9} {:<12} {met}",
            format_value(figure.value),
            figure.unit,
            figure.target
        );
    }
    let benches: Vec<&str> = order
        .iter()
        .copied()
        .filter(|b| !rows.iter().any(|((bench, _), _)| bench == b))
        .collect();
    if !benches.is_empty() {
        println!("no figures recorded yet from: {}", benches.join(", "));
    }
    println!(
        "{} figures, {missed} below target (from {})",
        rows.len(),
        path.display()
    );
}

fn format_value(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{value:.0}")
    } else {
        format!("{value:.2}")
    }
}

/// Reads one line written by `common::record`: a flat JSON object of strings and numbers.
fn parse(line: &str) -> Option<(String, String, Figure)> {
    let fields = flat_json(line)?;
    let get = |k: &str| fields.get(k).cloned();
    Some((
        get("bench")?,
        get("metric")?,
        Figure {
            value: get("value")?.parse().ok()?,
            unit: get("unit").unwrap_or_default(),
            target: get("target").unwrap_or_default(),
            at: get("at").and_then(|a| a.parse().ok()).unwrap_or(0),
        },
    ))
}

/// A flat JSON object (`{"k":"v","n":1.5}`) as text values; `None` when it is not one.
fn flat_json(line: &str) -> Option<BTreeMap<String, String>> {
    let mut chars = line
        .trim()
        .strip_prefix('{')?
        .strip_suffix('}')?
        .chars()
        .peekable();
    let mut out = BTreeMap::new();
    loop {
        skip_ws(&mut chars);
        if chars.peek().is_none() {
            return Some(out);
        }
        let key = string(&mut chars)?;
        skip_ws(&mut chars);
        (chars.next()? == ':').then_some(())?;
        skip_ws(&mut chars);
        let value = if chars.peek() == Some(&'"') {
            string(&mut chars)?
        } else {
            let mut raw = String::new();
            while let Some(&c) = chars.peek() {
                if c == ',' || c.is_whitespace() {
                    break;
                }
                raw.push(c);
                chars.next();
            }
            raw
        };
        out.insert(key, value);
        skip_ws(&mut chars);
        match chars.next() {
            Some(',') => {}
            None => return Some(out),
            Some(_) => return None,
        }
    }
}

fn skip_ws(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    while chars.peek().is_some_and(|c| c.is_whitespace()) {
        chars.next();
    }
}

fn string(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Option<String> {
    (chars.next()? == '"').then_some(())?;
    let mut out = String::new();
    loop {
        match chars.next()? {
            '"' => return Some(out),
            '\\' => match chars.next()? {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'u' => {
                    let code: String = (0..4).map(|_| chars.next()).collect::<Option<_>>()?;
                    out.push(char::from_u32(u32::from_str_radix(&code, 16).ok()?)?);
                }
                other => out.push(other),
            },
            c => out.push(c),
        }
    }
}
