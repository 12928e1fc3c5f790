//! The API's contract, checked from outside: schemathesis (from PyPI) generates requests from
//! `/api/v1/openapi.json` of a live server — an API key with both scopes, a connected TikTok
//! account through the emulator, jobs, a second API key — and checks every answer: never a
//! server error, and every answer's status, media type and body as the document says.
//!
//! schemathesis lives in a virtualenv under the target directory (`.ci/run` installs it there;
//! this test installs it when it is missing). Without Python or the package index the test
//! fails with the reason: it never skips.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;

use crate::support::*;

/// The package index specifier (schemathesis 4 is the CLI this test speaks).
const SCHEMATHESIS: &str = "schemathesis>=4,<5";
/// Test cases per operation and phase: enough to reach every documented branch, small enough
/// for a few minutes on 2 cores.
const MAX_EXAMPLES: &str = "50";

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))
}

/// The `st` command, installed into `target/schemathesis/venv` first if needed.
fn schemathesis() -> PathBuf {
    let venv = target_dir().join("schemathesis").join("venv");
    let st = venv.join("bin").join("st");
    if st.exists() {
        return st;
    }
    let run = |command: &mut Command, what: &str| {
        let output = command
            .output()
            .unwrap_or_else(|e| panic!("{what}: cannot run it: {e}"));
        assert!(
            output.status.success(),
            "{what} failed ({}):\n{}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    };
    run(
        Command::new("python3").args(["-m", "venv"]).arg(&venv),
        "python3 -m venv (install python3 and python3-venv)",
    );
    run(
        Command::new(venv.join("bin").join("pip")).args(["install", "--quiet", SCHEMATHESIS]),
        "pip install schemathesis",
    );
    assert!(st.exists(), "schemathesis installed no `st` command");
    st
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_error_and_no_contract_breach() {
    let st = tokio::task::spawn_blocking(schemathesis).await.unwrap();
    let app = spawn_app_with(
        Backend::Sqlite,
        Options {
            emulator: true,
            ..Options::default()
        },
    )
    .await;
    let owner = app.signed_in("contract").await;
    let key = app
        .api_key(&owner.workspace.id, "schemathesis", &["api", "worker"])
        .await;

    // Data for the generated requests to find: a connected account, another key, jobs.
    connect_tiktok_via_api(&app, &key, "tidepost.sandbox").await;
    let made = bare_client()
        .post(app.url("/api/v1/api-keys"))
        .bearer_auth(&key)
        .json(&json!({"name": "fixture"}))
        .send()
        .await
        .unwrap();
    assert_eq!(made.status(), reqwest::StatusCode::CREATED);
    for n in 0..3 {
        tidepost_jobs::Queue::new(app.db.clone())
            .enqueue(
                tidepost_jobs::NewJob::new("housekeeping.prune", &json!({}))
                    .workspace(&owner.workspace.id)
                    .idempotency_key(format!("contract-{n}")),
            )
            .await
            .unwrap();
    }

    let report = target_dir().join("schemathesis").join("report");
    // tus's PATCH body is raw bytes under its own media type: send it as octet-stream.
    let hooks = target_dir().join("schemathesis").join("tidepost_hooks.py");
    std::fs::write(
        &hooks,
        "import schemathesis\n\
         schemathesis.serializer.alias(\"application/offset+octet-stream\", \"application/octet-stream\")\n",
    )
    .unwrap();
    let seed = std::env::var("TIDEPOST_CONTRACT_SEED").unwrap_or_else(|_| "20261125".into());
    let output = tokio::process::Command::new(&st)
        .arg("run")
        .arg(app.url("/api/v1/openapi.json"))
        .args(["--url", &app.base])
        .args(["--header", &format!("Authorization: Bearer {key}")])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
        ])
        .args(["--phases", "examples,coverage,fuzzing"])
        .args(["--max-examples", MAX_EXAMPLES])
        .args(["--seed", &seed])
        .args(["--workers", "2"])
        .args(["--request-timeout", "20"])
        // Revoking its own key would leave schemathesis testing 401s for the rest of the run
        // (it learns key ids from the list answer).
        .args(["--exclude-operation-id", "api_keys_revoke"])
        .arg("--no-color")
        .args(["--report", "junit"])
        .arg("--report-dir")
        .arg(&report)
        .env("SCHEMATHESIS_HOOKS", &hooks)
        // Its example database (`.schemathesis/`) stays out of the source tree.
        .current_dir(target_dir().join("schemathesis"))
        .output()
        .await
        .expect("run schemathesis");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "schemathesis found problems (seed {seed}; JUnit report in {}):\n{stdout}\n{stderr}",
        report.display()
    );
    // The run tested the API, not just fetched the document.
    assert!(
        stdout.contains("Tested:") && !stdout.contains("Tested: 0"),
        "{stdout}"
    );
    eprintln!(
        "{}",
        stdout
            .lines()
            .skip_while(|l| !l.contains("SUMMARY"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}
