//! Documentation generated from the code stays in step with it.

use std::path::Path;

use tidepost_app::config::{SETTINGS, reference_markdown};

#[test]
fn configuration_reference_is_current() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/configuration.md");
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        on_disk == reference_markdown(),
        "docs/configuration.md differs from the settings in the code: \
         run `tidepost config reference > docs/configuration.md` (or \
         `cargo run -- config reference > docs/configuration.md`) and commit it"
    );
    for setting in SETTINGS {
        assert!(on_disk.contains(&format!("| `{}` |", setting.name)));
    }
}

/// The code spans and code blocks of a Markdown text (where commands and variables are written).
fn code_of(markdown: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_block = false;
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            in_block = !in_block;
            continue;
        }
        if in_block {
            out.push(line.to_string());
            continue;
        }
        out.extend(line.split('`').skip(1).step_by(2).map(str::to_string));
    }
    out
}

/// `tidepost ARGS --help`: its text when the command exists.
fn help_of(args: &[&str]) -> Option<String> {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_tidepost"))
        .args(args)
        .arg("--help")
        .env_remove("TIDEPOST_CONFIG")
        .output()
        .expect("run the tidepost binary");
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Every `tidepost …` command line in docs/deploy.md names a real command (and subcommand) and
/// only flags that command takes, and every `TIDEPOST_…` variable it names is a setting (or
/// the binary's own `TIDEPOST_CONFIG`): the guide cannot drift from the code.
#[test]
fn the_deployment_guide_names_only_real_commands_flags_and_settings() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/deploy.md");
    let guide = std::fs::read_to_string(&path).expect("docs/deploy.md exists");
    let mut checked = Vec::new();
    let mut wrong = Vec::new();
    for code in code_of(&guide) {
        // Comments in shell, nginx and unit files are prose.
        let code = code.split(" #").next().unwrap_or_default();
        if code.trim_start().starts_with('#') {
            continue;
        }
        let mut rest = code;
        while let Some(at) = rest.find("tidepost ") {
            let before = rest[..at].chars().last();
            let tail = &rest[at + "tidepost ".len()..];
            rest = tail;
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '-' || c == '=') {
                continue;
            }
            let words: Vec<&str> = tail
                .split_whitespace()
                .take_while(|w| !w.starts_with('#') && !w.starts_with(">>") && *w != "|")
                .collect();
            let is_word = |w: &str| {
                w.chars().next().is_some_and(|c| c.is_ascii_lowercase())
                    && w.chars().all(|c| c.is_ascii_lowercase() || c == '-')
            };
            let Some(first) = words.first().filter(|w| is_word(w)) else {
                continue;
            };
            let mut command = vec![*first];
            let Some(mut help) = help_of(&command) else {
                wrong.push(format!("`tidepost {first}` is not a command ({code})"));
                continue;
            };
            if help.contains("\nCommands:") {
                match words.get(1).filter(|w| is_word(w)) {
                    Some(sub) => {
                        command.push(sub);
                        match help_of(&command) {
                            Some(text) => help = text,
                            None => {
                                wrong.push(format!(
                                    "`tidepost {first} {sub}` is not a command ({code})"
                                ));
                                continue;
                            }
                        }
                    }
                    None => {
                        wrong.push(format!("`tidepost {first}` needs a subcommand ({code})"));
                        continue;
                    }
                }
            }
            for flag in words.iter().filter(|w| w.starts_with("--")) {
                let flag = flag.split('=').next().unwrap();
                let flag = flag.trim_end_matches(['`', ',', ')', '.']);
                if !help.contains(flag) {
                    wrong.push(format!(
                        "`tidepost {}` takes no {flag} ({code})",
                        command.join(" ")
                    ));
                }
            }
            checked.push(command.join(" "));
        }
    }
    for expected in [
        "serve",
        "worker",
        "run-once",
        "migrate",
        "keys rotate",
        "keys generate",
    ] {
        assert!(
            checked.iter().any(|c| c == expected),
            "docs/deploy.md should show `tidepost {expected}`; it shows {checked:?}"
        );
    }
    let top_help = help_of(&[]).unwrap_or_default();
    let mut variables: Vec<&str> = guide
        .match_indices("TIDEPOST_")
        .map(|(at, _)| {
            let tail = &guide[at..];
            let end = tail
                .find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
                .unwrap_or(tail.len());
            &tail[..end]
        })
        .collect();
    variables.sort();
    variables.dedup();
    assert!(variables.len() >= 10, "{variables:?}");
    for variable in variables {
        let known = SETTINGS.iter().any(|s| s.env.contains(&variable))
            || top_help.contains(&format!("env: {variable}"));
        if !known {
            wrong.push(format!("{variable} is not a setting"));
        }
    }
    assert!(
        wrong.is_empty(),
        "docs/deploy.md drifted from the code:\n{}",
        wrong.join("\n")
    );
}
