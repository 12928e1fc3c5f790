//! An S3-compatible server for tests (the `testing` feature): moto's server mode (PyPI
//! `moto[server]`), one process per test, on a free loopback port, stopped when dropped.
//!
//! moto is found in a virtualenv under the target directory (`target/moto/venv`, where
//! `.ci/run` installs it), and installed there on first use when missing; a test that needs it
//! fails, never skips, when it cannot be had.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::s3::{S3Settings, S3Storage};

/// The package specifier installed (moto 5's server speaks S3's multipart, ranged GETs,
/// server-side copy and SigV4).
pub const MOTO: &str = "moto[server]>=5,<6";
/// The access key every test bucket is opened with (moto accepts any).
pub const ACCESS_KEY_ID: &str = "tidepost-test";
pub const SECRET_ACCESS_KEY: &str = "tidepost-test-secret";

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"))
}

/// The `moto_server` program, installed into `target/moto/venv` first if needed.
pub fn moto_server() -> PathBuf {
    // Tests start servers in parallel: one installs, the others wait for it.
    static INSTALL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = INSTALL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let venv = target_dir().join("moto").join("venv");
    let program = venv.join("bin").join("moto_server");
    if program.exists() {
        return program;
    }
    let run = |cmd: &mut Command, what: &str| {
        let out = cmd
            .output()
            .unwrap_or_else(|e| panic!("{what} could not run: {e}"));
        assert!(
            out.status.success(),
            "{what} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(
        Command::new("python3").args(["-m", "venv"]).arg(&venv),
        "python3 -m venv (install python3 and python3-venv)",
    );
    run(
        Command::new(venv.join("bin").join("pip")).args(["install", "--quiet", MOTO]),
        "pip install moto[server]",
    );
    assert!(program.exists(), "moto installed no `moto_server` command");
    program
}

/// A running moto server.
pub struct S3Server {
    child: Child,
    /// The buckets made, made again by [`Self::restart`].
    buckets: std::sync::Mutex<Vec<String>>,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.stop();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// Runs `moto_server` on `port` and waits until it listens.
fn spawn(port: u16) -> Child {
    let program = moto_server();
    let mut child = Command::new(&program)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{} could not start: {e}", program.display()));
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if started.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("moto_server did not listen on port {port} within 30 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

impl S3Server {
    /// Starts a server and waits until it answers.
    pub fn start() -> Self {
        // reqwest is built without a default rustls provider (the bucket is made with it).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let port = free_port();
        Self {
            child: spawn(port),
            buckets: Default::default(),
            endpoint: format!("http://127.0.0.1:{port}"),
        }
    }

    /// Stops the server (an outage, for fault tests); [`Self::restart`] starts it again on the
    /// same port, empty.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the server again on the same port, with the buckets made before (empty: moto
    /// keeps objects in memory).
    pub async fn restart(&mut self) {
        self.stop();
        let port: u16 = self
            .endpoint
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("a port");
        self.child = spawn(port);
        let buckets = self.buckets.lock().expect("bucket list").clone();
        for name in buckets {
            self.create(&name).await;
        }
    }

    async fn create(&self, name: &str) {
        let answer = reqwest::Client::new()
            .put(format!("{}/{name}", self.endpoint))
            .send()
            .await
            .expect("moto answers");
        assert!(
            answer.status().is_success(),
            "moto created no bucket: {}",
            answer.status()
        );
    }

    /// Creates a bucket with a fresh name; returns its name.
    pub async fn bucket(&self) -> String {
        let name = format!("tidepost-{}", &tidepost_domain::new_id()[24..]);
        self.create(&name).await;
        self.buckets.lock().expect("bucket list").push(name.clone());
        name
    }

    /// The settings (`TIDEPOST_…`, value) of a fresh bucket on this server.
    pub async fn env(&self) -> Vec<(&'static str, String)> {
        let bucket = self.bucket().await;
        self.env_of(&bucket)
    }

    /// The settings (`TIDEPOST_…`, value) of `bucket` on this server (another instance on the
    /// same bucket).
    pub fn env_of(&self, bucket: &str) -> Vec<(&'static str, String)> {
        let bucket = bucket.to_string();
        vec![
            ("TIDEPOST_STORAGE", "s3".into()),
            ("TIDEPOST_S3_BUCKET", bucket),
            ("TIDEPOST_S3_ENDPOINT", self.endpoint.clone()),
            ("TIDEPOST_S3_PATH_STYLE", "true".into()),
            ("TIDEPOST_S3_ACCESS_KEY_ID", ACCESS_KEY_ID.into()),
            ("TIDEPOST_S3_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY.into()),
        ]
    }

    /// Asks the server directly (S3's REST API, unsigned: moto takes it) and returns the text
    /// of every `<tag>` in its answer.
    async fn list(&self, bucket: &str, query: &str, tag: &str) -> Vec<String> {
        let answer = reqwest::Client::new()
            .get(format!("{}/{bucket}?{query}", self.endpoint))
            .send()
            .await
            .expect("moto answers");
        assert!(answer.status().is_success(), "{}", answer.status());
        let text = answer.text().await.expect("a listing");
        let open = format!("<{tag}>");
        let close = format!("</{tag}>");
        text.split(&open)
            .skip(1)
            .filter_map(|rest| rest.split(&close).next())
            .map(str::to_string)
            .collect()
    }

    /// The keys of every object in `bucket` (S3's ListObjectsV2).
    pub async fn objects(&self, bucket: &str) -> Vec<String> {
        self.list(bucket, "list-type=2", "Key").await
    }

    /// The ids of the multipart uploads in progress in `bucket` (S3's ListMultipartUploads):
    /// what an abandoned upload would leave, paid for until aborted.
    pub async fn multipart_uploads(&self, bucket: &str) -> Vec<String> {
        self.list(bucket, "uploads", "UploadId").await
    }

    /// A storage on a fresh bucket of this server, under `prefix`.
    pub async fn storage(&self, prefix: &str) -> S3Storage {
        S3Storage::new(S3Settings {
            bucket: self.bucket().await,
            prefix: prefix.into(),
            region: "us-east-1".into(),
            endpoint: Some(self.endpoint.clone()),
            path_style: true,
            access_key_id: Some(ACCESS_KEY_ID.into()),
            secret_access_key: Some(SECRET_ACCESS_KEY.to_string().into()),
            session_token: None,
        })
        .expect("a test storage")
    }
}
