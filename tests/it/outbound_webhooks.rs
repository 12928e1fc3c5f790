//! Outbound webhooks end to end: a real server with its workers, a receiver on loopback
//! capturing every request, and the deliveries verified by an independent implementation of
//! Standard Webhooks — the `standardwebhooks` Python package, installed into a virtualenv under
//! `target/` on first use (the test fails, never skips, when it cannot be installed or run).
//!
//! Events are recorded in the event log the way the services record them
//! (`tidepost_store::events::record`); the dispatcher and the delivery jobs do the rest.
//! Retries are not waited for: the test checks each retry's scheduled time, then moves the
//! retry job's `run_at` to now.

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use tidepost_store::{Db, events};

use crate::support::*;

// ---------------------------------------------------------------------------------------------
// The receiver.

#[derive(Debug, Clone)]
pub(crate) struct Captured {
    pub(crate) headers: BTreeMap<String, String>,
    pub(crate) body: String,
}

#[derive(Default)]
struct ReceiverState {
    got: Vec<Captured>,
    /// Answers for the next requests; then `default`.
    script: VecDeque<u16>,
    default: u16,
}

#[derive(Clone)]
pub(crate) struct Receiver {
    pub(crate) url: String,
    state: Arc<Mutex<ReceiverState>>,
}

impl Receiver {
    pub(crate) async fn start(default: u16) -> Receiver {
        let state = Arc::new(Mutex::new(ReceiverState {
            default,
            ..Default::default()
        }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let shared = state.clone();
        let app =
            axum::Router::new().fallback(move |headers: axum::http::HeaderMap, body: String| {
                let shared = shared.clone();
                async move {
                    let mut state = shared.lock().unwrap();
                    state.got.push(Captured {
                        headers: headers
                            .iter()
                            .map(|(k, v)| {
                                (k.as_str().to_string(), v.to_str().unwrap_or("").to_string())
                            })
                            .collect(),
                        body,
                    });
                    let status = state.script.pop_front().unwrap_or(state.default);
                    let text = if status < 300 {
                        "thanks"
                    } else {
                        "down for maintenance"
                    };
                    (axum::http::StatusCode::from_u16(status).unwrap(), text)
                }
            });
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Receiver { url, state }
    }

    fn set_default(&self, status: u16) {
        self.state.lock().unwrap().default = status;
    }

    pub(crate) fn got(&self) -> Vec<Captured> {
        self.state.lock().unwrap().got.clone()
    }

    pub(crate) async fn wait_for(&self, n: usize, what: &str) -> Vec<Captured> {
        for _ in 0..300 {
            let got = self.got();
            if got.len() >= n {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "{what}: the receiver got {} requests, expected {n}",
            self.got().len()
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The independent verifier.

/// The virtualenv's python with `standardwebhooks` installed (installed on first use).
fn verifier_python() -> PathBuf {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON
        .get_or_init(|| {
            let target = std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
            let venv = target.join("venv-standardwebhooks");
            let python = venv.join("bin/python");
            let works = |python: &PathBuf| {
                std::process::Command::new(python)
                    .args(["-c", "import standardwebhooks"])
                    .status()
                    .is_ok_and(|s| s.success())
            };
            if !works(&python) {
                let made = std::process::Command::new("python3")
                    .args(["-m", "venv"])
                    .arg(&venv)
                    .status()
                    .expect("python3 is needed to verify webhooks with the standardwebhooks package");
                assert!(made.success(), "python3 -m venv {} failed", venv.display());
                let installed = std::process::Command::new(venv.join("bin/pip"))
                    .args(["install", "--quiet", "standardwebhooks"])
                    .status()
                    .expect("run pip");
                assert!(
                    installed.success(),
                    "pip install standardwebhooks failed: the deliveries cannot be verified independently"
                );
            }
            assert!(works(&python), "standardwebhooks does not import in {}", venv.display());
            python
        })
        .clone()
}

const VERIFY: &str = r#"
import json, sys
from standardwebhooks.webhooks import Webhook
out = []
for case in json.load(sys.stdin):
    try:
        Webhook(case["secret"]).verify(case["body"], case["headers"])
        out.append("ok")
    except Exception as e:
        out.append(type(e).__name__ + ": " + str(e))
print(json.dumps(out))
"#;

/// Verifies each captured request with the given secret, by the reference library: "ok" or the
/// library's error.
async fn verify(cases: &[(&str, &Captured)]) -> Vec<String> {
    let python = verifier_python();
    let input: Vec<Value> = cases
        .iter()
        .map(|(secret, c)| json!({"secret": secret, "headers": c.headers, "body": c.body}))
        .collect();
    let mut child = tokio::process::Command::new(python)
        .args(["-c", VERIFY])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run the verifier");
    {
        use tokio::io::AsyncWriteExt;
        let mut stdin = child.stdin.take().unwrap();
        stdin
            .write_all(serde_json::to_string(&input).unwrap().as_bytes())
            .await
            .unwrap();
    }
    let output = child.wait_with_output().await.unwrap();
    assert!(
        output.status.success(),
        "the verifier failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("the verifier prints a JSON list")
}

// ---------------------------------------------------------------------------------------------
// Helpers.

async fn spawn(backend: Backend, env: Vec<(&'static str, String)>) -> TestApp {
    spawn_app_with(
        backend,
        Options {
            workers: true,
            env,
            ..Default::default()
        },
    )
    .await
}

async fn create_endpoint(app: &TestApp, key: &str, body: Value) -> Value {
    let response = bare_client()
        .post(app.url("/api/v1/webhook-endpoints"))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{text}");
    serde_json::from_str(&text).unwrap()
}

async fn get_json(app: &TestApp, key: &str, path: &str) -> Value {
    let response = app.api_get(key, path).await;
    let status = response.status();
    let text = response.text().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{path}: {text}");
    serde_json::from_str(&text).unwrap()
}

async fn record(db: &Db, workspace_id: &str, kind: &str, data: Value) -> events::Event {
    events::record(db, workspace_id, kind, None, &data)
        .await
        .unwrap()
}

/// Waits until `check` holds for the delivery (fetched through the API).
async fn wait_delivery(
    app: &TestApp,
    key: &str,
    id: &str,
    what: &str,
    check: impl Fn(&Value) -> bool,
) -> Value {
    let mut last = Value::Null;
    for _ in 0..300 {
        last = get_json(app, key, &format!("/api/v1/webhook-deliveries/{id}")).await;
        if check(&last) {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what}: the delivery never got there: {last:#}");
}

fn ms(rfc3339: &Value) -> i64 {
    let text = rfc3339.as_str().expect("a timestamp");
    let at: jiff::Timestamp = text.parse().expect("RFC 3339");
    at.as_millisecond()
}

// ---------------------------------------------------------------------------------------------
// Tests.

both_backends!(deliveries_verify_with_the_reference_library);

async fn deliveries_verify_with_the_reference_library(backend: Backend) {
    verifier_python();
    let app = spawn(backend, vec![]).await;
    let browser = app.signed_in("hooks").await;
    let ws = browser.workspace.id.clone();
    let key = app.api_key(&ws, "crm", &[]).await;
    let receiver = Receiver::start(200).await;
    let all = create_endpoint(
        &app,
        &key,
        json!({"url": receiver.url, "description": "CRM"}),
    )
    .await;
    let secret = all["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_"), "{all}");
    assert_eq!(all["enabled"], true);
    // A second endpoint that only wants failures gets nothing below.
    let failures = Receiver::start(200).await;
    let only_failed = create_endpoint(
        &app,
        &key,
        json!({"url": failures.url, "event_types": ["post.failed"]}),
    )
    .await;
    // The secret is shown once: never in a read.
    let shown = get_json(
        &app,
        &key,
        &format!("/api/v1/webhook-endpoints/{}", all["id"].as_str().unwrap()),
    )
    .await;
    assert!(shown.get("secret").is_none() && !shown.to_string().contains(&secret));

    let connected = record(
        &app.db,
        &ws,
        "account.connected",
        json!({"account_id": "acc-1", "platform": "tiktok", "display_name": "Ada"}),
    )
    .await;
    record(&app.db, &ws, "internal.detail", json!({"not": "public"})).await;
    let published = record(
        &app.db,
        &ws,
        "post.published",
        json!({"post_id": "post-1", "platform": "instagram"}),
    )
    .await;

    let got = receiver.wait_for(2, "two public events").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        receiver.got().len(),
        2,
        "each event once, the internal one never"
    );
    assert!(
        failures.got().is_empty(),
        "the post.failed endpoint got {:?}",
        failures.got()
    );
    let by_id: BTreeMap<String, &Captured> = got
        .iter()
        .map(|c| (c.headers["webhook-id"].clone(), c))
        .collect();
    let first = by_id[&connected.id];
    let body: Value = serde_json::from_str(&first.body).unwrap();
    assert_eq!(body["type"], "account.connected");
    assert_eq!(body["data"]["display_name"], "Ada");
    // RFC 3339 to the second.
    assert!(
        (ms(&body["timestamp"]) - connected.created_at).abs() <= 1000,
        "{body}"
    );
    assert_eq!(first.headers["content-type"], "application/json");
    assert!(first.headers["webhook-signature"].starts_with("v1,"));
    assert_eq!(
        serde_json::from_str::<Value>(&by_id[&published.id].body).unwrap()["type"],
        "post.published"
    );

    // The reference library accepts every delivery with the secret, and refuses a wrong secret
    // and a changed body (so this check can fail).
    let wrong = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let mut tampered = first.clone();
    tampered.body = tampered.body.replace("Ada", "Eve");
    let results = verify(&[
        (&secret, &got[0]),
        (&secret, &got[1]),
        (wrong, &got[0]),
        (&secret, &tampered),
    ])
    .await;
    assert_eq!(results[0], "ok", "{results:?}");
    assert_eq!(results[1], "ok", "{results:?}");
    assert!(
        results[2].contains("WebhookVerificationError"),
        "{results:?}"
    );
    assert!(
        results[3].contains("WebhookVerificationError"),
        "{results:?}"
    );

    // The delivery log, in the API.
    let endpoint_id = all["id"].as_str().unwrap();
    let list = get_json(
        &app,
        &key,
        &format!("/api/v1/webhook-endpoints/{endpoint_id}/deliveries"),
    )
    .await;
    let data = list["data"].as_array().unwrap();
    assert_eq!(data.len(), 2, "{list:#}");
    let delivery_id = data[0]["id"].as_str().unwrap().to_string();
    let detail = wait_delivery(&app, &key, &delivery_id, "delivered", |d| {
        d["state"] == "succeeded"
    })
    .await;
    let attempt = &detail["attempts"][0];
    assert_eq!(attempt["status_code"], 200, "{detail:#}");
    assert_eq!(attempt["response_excerpt"], "thanks");
    assert_eq!(attempt["cause"], "auto");
    assert!(attempt["latency_ms"].as_i64().unwrap() >= 0);
    let page = get_json(
        &app,
        &key,
        &format!("/api/v1/webhook-endpoints/{endpoint_id}/deliveries?limit=1"),
    )
    .await;
    let cursor = page["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_string();
    let next = get_json(
        &app,
        &key,
        &format!("/api/v1/webhook-endpoints/{endpoint_id}/deliveries?limit=1&after={cursor}"),
    )
    .await;
    assert_ne!(next["data"][0]["id"], page["data"][0]["id"]);
    let empty = get_json(
        &app,
        &key,
        &format!(
            "/api/v1/webhook-endpoints/{}/deliveries",
            only_failed["id"].as_str().unwrap()
        ),
    )
    .await;
    assert_eq!(empty["data"].as_array().unwrap().len(), 0);

    // A manual re-send: one more attempt, same webhook-id, still verifies.
    let resent = bare_client()
        .post(app.url(&format!("/api/v1/webhook-deliveries/{delivery_id}/resend")))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(resent.status(), StatusCode::ACCEPTED);
    let again = receiver.wait_for(3, "the re-send").await;
    let detail = wait_delivery(&app, &key, &delivery_id, "re-sent", |d| {
        d["attempts"].as_array().is_some_and(|a| a.len() == 2)
    })
    .await;
    assert_eq!(detail["attempts"][1]["cause"], "manual");
    assert_eq!(
        again[2].headers["webhook-id"],
        detail["event_id"].as_str().unwrap()
    );
    assert_eq!(verify(&[(&secret, &again[2])]).await, ["ok"]);

    // The UI: the endpoint, its delivery log, a delivery with its attempts.
    let html = app
        .page_text(
            &browser.client,
            &format!("/settings/webhooks/{endpoint_id}"),
        )
        .await;
    assert!(
        html.contains(&receiver.url) && html.contains("account.connected"),
        "{html}"
    );
    assert!(!html.contains(&secret), "the secret is not shown again");
    let html = app
        .page_text(
            &browser.client,
            &format!("/settings/webhooks/deliveries/{delivery_id}"),
        )
        .await;
    assert!(
        html.contains("re-send") && html.contains("thanks"),
        "{html}"
    );
}

both_backends!(retries_on_schedule_then_disables_the_endpoint);

async fn retries_on_schedule_then_disables_the_endpoint(backend: Backend) {
    verifier_python();
    let app = spawn(
        backend,
        vec![("TIDEPOST_WEBHOOKS_DISABLE_AFTER_FAILURES", "1".into())],
    )
    .await;
    let browser = app.signed_in("flaky").await;
    let ws = browser.workspace.id.clone();
    let key = app.api_key(&ws, "crm", &[]).await;
    let down = Receiver::start(500).await;
    let endpoint = create_endpoint(
        &app,
        &key,
        json!({"url": down.url, "event_types": ["post.failed"]}),
    )
    .await;
    let endpoint_id = endpoint["id"].as_str().unwrap().to_string();
    let secret = endpoint["secret"].as_str().unwrap().to_string();
    // Another endpoint hears about the disabling.
    let watcher = Receiver::start(204).await;
    create_endpoint(
        &app,
        &key,
        json!({"url": watcher.url, "event_types": ["endpoint.disabled"]}),
    )
    .await;

    let event = record(
        &app.db,
        &ws,
        "post.failed",
        json!({"post_id": "p1", "error": {"code": "x"}}),
    )
    .await;
    down.wait_for(1, "the first attempt").await;
    let list = get_json(
        &app,
        &key,
        &format!("/api/v1/webhook-endpoints/{endpoint_id}/deliveries"),
    )
    .await;
    let delivery_id = list["data"][0]["id"].as_str().unwrap().to_string();

    let waits = [5u64, 300, 1800, 7200, 18_000, 36_000, 36_000];
    for (n, wait) in waits.iter().enumerate() {
        let attempts_made = n + 1;
        let d = wait_delivery(&app, &key, &delivery_id, "a failed attempt", |d| {
            d["attempts"]
                .as_array()
                .is_some_and(|a| a.len() == attempts_made)
                && d["state"] == "pending"
                && !d["next_attempt_at"].is_null()
        })
        .await;
        let last = &d["attempts"][n];
        assert_eq!(last["status_code"], 500, "{d:#}");
        assert_eq!(last["response_excerpt"], "down for maintenance");
        let scheduled = ms(&d["next_attempt_at"]) - ms(&last["started_at"]);
        let expected = i64::try_from(*wait).unwrap() * 1000;
        assert!(
            // Both times are RFC 3339 to the second.
            (expected - 1000..expected + 3000).contains(&scheduled),
            "after attempt {attempts_made} the next is due in {scheduled} ms, expected {expected}"
        );
        // Instead of waiting: the retry is due now (once the worker has filed it).
        let mut moved = 0;
        for _ in 0..100 {
            moved = sqlx::query(
                "UPDATE jobs SET run_at = $1 WHERE kind = 'webhooks.deliver' AND state = 'failed' AND payload LIKE $2",
            )
            .bind(tidepost_domain::now_ms())
            .bind(format!("%{delivery_id}%"))
            .execute(app.db.pool())
            .await
            .unwrap()
            .rows_affected();
            if moved > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(moved, 1, "one retry job is waiting");
        down.wait_for(attempts_made + 1, "the retry").await;
    }
    let d = wait_delivery(&app, &key, &delivery_id, "failed for good", |d| {
        d["state"] == "failed"
    })
    .await;
    assert_eq!(d["attempts"].as_array().unwrap().len(), 8);
    assert!(d["next_attempt_at"].is_null());

    // Every attempt carried the same webhook-id and a valid signature.
    let got = down.got();
    assert_eq!(got.len(), 8);
    assert!(got.iter().all(|c| c.headers["webhook-id"] == event.id));
    let cases: Vec<(&str, &Captured)> = got.iter().map(|c| (secret.as_str(), c)).collect();
    assert!(verify(&cases).await.iter().all(|r| r == "ok"));

    // One final failure disables the endpoint here (the setting says 1): the API, the event,
    // the other endpoint and the UI all say so.
    let shown = get_json(
        &app,
        &key,
        &format!("/api/v1/webhook-endpoints/{endpoint_id}"),
    )
    .await;
    assert_eq!(shown["enabled"], false, "{shown:#}");
    assert!(
        shown["disabled_reason"]
            .as_str()
            .unwrap()
            .contains("failed after every retry")
    );
    let told = watcher.wait_for(1, "endpoint.disabled").await;
    let body: Value = serde_json::from_str(&told[0].body).unwrap();
    assert_eq!(body["type"], "endpoint.disabled");
    assert_eq!(body["data"]["endpoint_id"], endpoint_id.as_str());
    let html = app.page_text(&browser.client, "/settings/webhooks").await;
    assert!(
        html.contains("disabled-endpoint") && html.contains(&down.url),
        "{html}"
    );

    // A disabled endpoint gets no new deliveries and cannot re-send.
    record(&app.db, &ws, "post.failed", json!({"post_id": "p2"})).await;
    let resend = bare_client()
        .post(app.url(&format!("/api/v1/webhook-deliveries/{delivery_id}/resend")))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    problem(resend, StatusCode::CONFLICT, "conflict").await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(down.got().len(), 8);

    // Enabled again (the receiver is fixed), a re-send gets the old delivery through.
    down.set_default(200);
    let enabled = bare_client()
        .patch(app.url(&format!("/api/v1/webhook-endpoints/{endpoint_id}")))
        .bearer_auth(&key)
        .json(&json!({"enabled": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(enabled.status(), StatusCode::OK);
    let enabled: Value = enabled.json().await.unwrap();
    assert_eq!(
        (
            enabled["enabled"].clone(),
            enabled["failure_streak"].clone()
        ),
        (json!(true), json!(0))
    );
    let resend = bare_client()
        .post(app.url(&format!("/api/v1/webhook-deliveries/{delivery_id}/resend")))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(resend.status(), StatusCode::ACCEPTED);
    wait_delivery(&app, &key, &delivery_id, "delivered by the re-send", |d| {
        d["state"] == "succeeded"
    })
    .await;
}

both_backends!(rotation_signs_with_both_secrets_during_the_overlap);

async fn rotation_signs_with_both_secrets_during_the_overlap(backend: Backend) {
    verifier_python();
    let app = spawn(backend, vec![]).await;
    let browser = app.signed_in("rotating").await;
    let ws = browser.workspace.id.clone();
    let key = app.api_key(&ws, "crm", &[]).await;
    let receiver = Receiver::start(200).await;
    let created = create_endpoint(&app, &key, json!({"url": receiver.url})).await;
    let id = created["id"].as_str().unwrap().to_string();
    let old = created["secret"].as_str().unwrap().to_string();

    let rotated = bare_client()
        .post(app.url(&format!("/api/v1/webhook-endpoints/{id}/rotate-secret")))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(rotated.status(), StatusCode::OK);
    let rotated: Value = rotated.json().await.unwrap();
    let new = rotated["secret"].as_str().unwrap().to_string();
    assert_ne!(new, old);
    let until = ms(&rotated["previous_secret_expires_at"]);
    let overlap = until - tidepost_domain::now_ms();
    assert!(
        (86_300_000..=86_401_000).contains(&overlap),
        "24 h overlap, got {overlap} ms"
    );

    record(
        &app.db,
        &ws,
        "account.needs_reauth",
        json!({"account_id": "a1"}),
    )
    .await;
    let got = receiver.wait_for(1, "a delivery during the overlap").await;
    let signatures: Vec<&str> = got[0].headers["webhook-signature"].split(' ').collect();
    assert_eq!(signatures.len(), 2, "{signatures:?}");
    let stranger = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    // Each secret verifies it on its own (a receiver on either side of the switch accepts it).
    let results = verify(&[(&new, &got[0]), (&old, &got[0]), (stranger, &got[0])]).await;
    assert_eq!(&results[..2], ["ok", "ok"], "{results:?}");
    assert!(
        results[2].contains("WebhookVerificationError"),
        "{results:?}"
    );
    // And each signature is the one of its secret, newest first.
    let only = |i: usize| {
        let mut c = got[0].clone();
        c.headers
            .insert("webhook-signature".into(), signatures[i].to_string());
        c
    };
    let (first, second) = (only(0), only(1));
    let results = verify(&[(&new, &first), (&old, &second), (&old, &first)]).await;
    assert_eq!(&results[..2], ["ok", "ok"], "{results:?}");
    assert!(
        results[2].contains("WebhookVerificationError"),
        "{results:?}"
    );

    // Once the overlap is over, only the new secret signs.
    sqlx::query("UPDATE webhook_endpoints SET previous_secret_until = $1 WHERE id = $2")
        .bind(tidepost_domain::now_ms() - 1)
        .bind(&id)
        .execute(app.db.pool())
        .await
        .unwrap();
    record(
        &app.db,
        &ws,
        "account.disconnected",
        json!({"account_id": "a1"}),
    )
    .await;
    let got = receiver.wait_for(2, "a delivery after the overlap").await;
    assert_eq!(got[1].headers["webhook-signature"].split(' ').count(), 1);
    let results = verify(&[(&new, &got[1]), (&old, &got[1])]).await;
    assert_eq!(results[0], "ok");
    assert!(
        results[1].contains("WebhookVerificationError"),
        "{results:?}"
    );

    // The UI shows a rotated secret once, on the page the form's 303 leads to.
    let rotated = browser
        .client
        .post(app.url(&format!("/settings/webhooks/{id}/rotate")))
        .form(&[("csrf", browser.csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(rotated.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&rotated), format!("/settings/webhooks/{id}"));
    let html = app.page_text(&browser.client, &location(&rotated)).await;
    let shown = html
        .split("id=\"new-secret\">")
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .expect("the new secret on the page")
        .to_string();
    assert!(shown.starts_with("whsec_") && shown != new);
    let again = browser
        .client
        .get(app.url(&format!("/settings/webhooks/{id}")))
        .send()
        .await
        .unwrap();
    assert!(!again.text().await.unwrap().contains(&shown));
}

both_backends!(rotating_twice_signs_with_every_secret_until_its_overlap_ends);

/// A second rotation within the overlap promised for the first keeps the first's old secret:
/// every rotated-out secret signs until its own overlap ends (Standard Webhooks allows several
/// space-separated signatures), checked by the reference verifier.
async fn rotating_twice_signs_with_every_secret_until_its_overlap_ends(backend: Backend) {
    verifier_python();
    let app = spawn(backend, vec![]).await;
    let browser = app.signed_in("rotating-twice").await;
    let ws = browser.workspace.id.clone();
    let key = app.api_key(&ws, "crm", &[]).await;
    let receiver = Receiver::start(200).await;
    let created = create_endpoint(&app, &key, json!({"url": receiver.url})).await;
    let id = created["id"].as_str().unwrap().to_string();
    let first = created["secret"].as_str().unwrap().to_string();
    let rotate = || async {
        let answer = bare_client()
            .post(app.url(&format!("/api/v1/webhook-endpoints/{id}/rotate-secret")))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), StatusCode::OK);
        answer.json::<Value>().await.unwrap()
    };
    let once = rotate().await;
    let second = once["secret"].as_str().unwrap().to_string();
    let twice = rotate().await;
    let third = twice["secret"].as_str().unwrap().to_string();
    // The first rotation's promise stands: its old secret signs until its own overlap ends.
    let promised = ms(&once["previous_secret_expires_at"]);
    assert_eq!(
        twice["older_secrets_expire_at"]
            .as_array()
            .unwrap()
            .iter()
            .map(ms)
            .collect::<Vec<_>>(),
        [promised],
        "{twice:#}"
    );
    assert!(ms(&twice["previous_secret_expires_at"]) >= promised);

    record(
        &app.db,
        &ws,
        "account.needs_reauth",
        json!({"account_id": "a1"}),
    )
    .await;
    let got = receiver
        .wait_for(1, "a delivery during both overlaps")
        .await;
    assert_eq!(got[0].headers["webhook-signature"].split(' ').count(), 3);
    let stranger = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let results = verify(&[
        (&third, &got[0]),
        (&second, &got[0]),
        (&first, &got[0]),
        (stranger, &got[0]),
    ])
    .await;
    assert_eq!(&results[..3], ["ok", "ok", "ok"], "{results:?}");
    assert!(
        results[3].contains("WebhookVerificationError"),
        "{results:?}"
    );

    // The first secret's overlap ends: the other two still sign.
    let older: String =
        sqlx::query_scalar("SELECT older_secrets FROM webhook_endpoints WHERE id = $1")
            .bind(&id)
            .fetch_one(app.db.pool())
            .await
            .unwrap();
    let mut older: Vec<Value> = serde_json::from_str(&older).unwrap();
    assert_eq!(older.len(), 1);
    older[0]["until"] = json!(tidepost_domain::now_ms() - 1);
    sqlx::query("UPDATE webhook_endpoints SET older_secrets = $1 WHERE id = $2")
        .bind(serde_json::to_string(&older).unwrap())
        .bind(&id)
        .execute(app.db.pool())
        .await
        .unwrap();
    record(
        &app.db,
        &ws,
        "account.disconnected",
        json!({"account_id": "a1"}),
    )
    .await;
    let got = receiver
        .wait_for(2, "a delivery after the first overlap")
        .await;
    assert_eq!(got[1].headers["webhook-signature"].split(' ').count(), 2);
    let results = verify(&[(&third, &got[1]), (&second, &got[1]), (&first, &got[1])]).await;
    assert_eq!(&results[..2], ["ok", "ok"], "{results:?}");
    assert!(
        results[2].contains("WebhookVerificationError"),
        "{results:?}"
    );

    // A third rotation after the first overlap ended does not bring the first secret back.
    let thrice = rotate().await;
    let fourth = thrice["secret"].as_str().unwrap().to_string();
    record(
        &app.db,
        &ws,
        "account.connected",
        json!({"account_id": "a1"}),
    )
    .await;
    let got = receiver
        .wait_for(3, "a delivery after a third rotation")
        .await;
    assert_eq!(got[2].headers["webhook-signature"].split(' ').count(), 3);
    let results = verify(&[
        (&fourth, &got[2]),
        (&third, &got[2]),
        (&second, &got[2]),
        (&first, &got[2]),
    ])
    .await;
    assert_eq!(&results[..3], ["ok", "ok", "ok"], "{results:?}");
    assert!(
        results[3].contains("WebhookVerificationError"),
        "{results:?}"
    );
}

#[tokio::test]
async fn the_ssrf_guard_refuses_private_targets() {
    let app = spawn(
        Backend::Sqlite,
        vec![("TIDEPOST_WEBHOOKS_ALLOW_PRIVATE", "false".into())],
    )
    .await;
    let browser = app.signed_in("guarded").await;
    let ws = browser.workspace.id.clone();
    let key = app.api_key(&ws, "crm", &[]).await;
    let receiver = Receiver::start(200).await;
    for url in [
        receiver.url.clone(),
        "http://127.0.0.1:8080/hook".into(),
        "http://10.1.2.3/hook".into(),
        "http://[::1]:8080/hook".into(),
        "http://[::ffff:127.0.0.1]/hook".into(),
        "http://localhost:8080/hook".into(),
        "http://169.254.169.254/latest/meta-data/".into(),
        "http://192.168.1.10/".into(),
        "http://100.64.0.1/".into(),
    ] {
        let response = bare_client()
            .post(app.url("/api/v1/webhook-endpoints"))
            .bearer_auth(&key)
            .json(&json!({"url": url}))
            .send()
            .await
            .unwrap();
        let problem = problem(
            response,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-request",
        )
        .await;
        assert_eq!(problem["field"], "url", "{url}: {problem}");
        let detail = problem["detail"].as_str().unwrap();
        assert!(detail.contains("refused"), "{url}: {detail}");
    }
    for (url, needle) in [
        ("ftp://example.com/hook", "only http:// and https://"),
        ("file:///etc/passwd", "only http:// and https://"),
        ("https://user:pw@example.com/", "user name or password"),
        ("not a url", "not a valid URL"),
    ] {
        let response = bare_client()
            .post(app.url("/api/v1/webhook-endpoints"))
            .bearer_auth(&key)
            .json(&json!({"url": url}))
            .send()
            .await
            .unwrap();
        let problem = problem(
            response,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-request",
        )
        .await;
        assert!(
            problem["detail"].as_str().unwrap().contains(needle),
            "{url}: {problem}"
        );
    }
    // Unknown event types are named.
    let response = bare_client()
        .post(app.url("/api/v1/webhook-endpoints"))
        .bearer_auth(&key)
        .json(&json!({"url": "https://example.com/", "event_types": ["post.exploded"]}))
        .send()
        .await
        .unwrap();
    let p = problem(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid-request",
    )
    .await;
    assert_eq!(p["field"], "event_types");

    // The UI form says why, and keeps what was typed.
    let page = browser
        .client
        .post(app.url("/settings/webhooks"))
        .form(&[
            ("csrf", browser.csrf.as_str()),
            ("url", "http://localhost:9/hook"),
            ("description", "local"),
            ("event_types", "post.published"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("That URL cannot be used") && html.contains("loopback"),
        "{html}"
    );
    assert!(html.contains("value=\"http://localhost:9/hook\""));

    // At delivery time too: an endpoint whose address turned private (written directly, as if
    // its DNS had changed since it was saved) is refused and nothing reaches the receiver.
    let now = tidepost_domain::now_ms();
    tidepost_store::webhook_endpoints::insert(
        &app.db,
        &tidepost_store::webhook_endpoints::Endpoint {
            id: tidepost_domain::new_id(),
            workspace_id: ws.clone(),
            url: receiver.url.clone(),
            description: String::new(),
            event_types: String::new(),
            secret: "sealed elsewhere".into(),
            previous_secret: None,
            previous_secret_until: None,
            older_secrets: "[]".into(),
            disabled_at: None,
            disabled_reason: None,
            failure_streak: 0,
            last_success_at: None,
            created_at: now - 1,
            updated_at: now,
        },
    )
    .await
    .unwrap();
    record(&app.db, &ws, "post.published", json!({"post_id": "p"})).await;
    let list = {
        let mut found = Value::Null;
        for _ in 0..100 {
            let endpoints = get_json(&app, &key, "/api/v1/webhook-endpoints").await;
            let id = endpoints["data"][0]["id"].as_str().unwrap().to_string();
            found = get_json(
                &app,
                &key,
                &format!("/api/v1/webhook-endpoints/{id}/deliveries"),
            )
            .await;
            // An attempt is counted together with its outcome: never one without the other.
            let delivery = &found["data"][0];
            let counted = delivery["attempt_count"].as_i64().unwrap_or(0) >= 1;
            let outcome = delivery["last_error"].is_string() || delivery["last_status"].is_number();
            assert_eq!(counted, outcome, "{delivery:#}");
            if counted {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        found
    };
    let error = list["data"][0]["last_error"].as_str().unwrap_or_default();
    assert!(
        error.starts_with("refused:") && error.contains("loopback"),
        "{list:#}"
    );
    assert!(receiver.got().is_empty());
}
