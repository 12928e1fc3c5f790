//! Configuration: every setting tidepost reads is declared once in [`SETTINGS`], with its
//! command-line flag, environment variables, default and documentation. Values come from flags,
//! then the environment, then an optional `tidepost.toml`, then the default. The same table
//! drives `tidepost config check` (secrets masked) and the generated configuration reference,
//! so documentation and code cannot drift apart.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};
use url::Url;

/// One setting as the operator sees it.
#[derive(Debug, Clone, Copy)]
pub struct Setting {
    /// Its name, also its key in `tidepost.toml`.
    pub name: &'static str,
    /// The command-line flag that sets it, if any (for `serve` and the commands that share it).
    pub flag: Option<&'static str>,
    /// Environment variables that set it, strongest first.
    pub env: &'static [&'static str],
    /// The value when nothing sets it.
    pub default: Option<&'static str>,
    /// Masked in `config check` and never logged.
    pub secret: bool,
    pub doc: &'static str,
}

macro_rules! setting {
    ($name:literal, flag: $flag:expr, env: [$($env:literal),*], default: $default:expr, secret: $secret:literal, $doc:literal) => {
        Setting { name: $name, flag: $flag, env: &[$($env),*], default: $default, secret: $secret, doc: $doc }
    };
}

/// Every setting tidepost reads.
pub const SETTINGS: &[Setting] = &[
    setting!("listen", flag: Some("--listen"), env: ["TIDEPOST_LISTEN"], default: Some("127.0.0.1:8080"), secret: false,
        "Address the HTTP server binds (`HOST:PORT`)."),
    setting!("database_url", flag: Some("--database"), env: ["TIDEPOST_DATABASE_URL", "DATABASE_URL"],
        default: Some("sqlite://tidepost.db"), secret: false,
        "`sqlite://PATH` (created if missing) or `postgres://USER@HOST/DB`. A password in the URL is masked in output."),
    setting!("database_max_connections", flag: None, env: ["TIDEPOST_DATABASE_MAX_CONNECTIONS"], default: None, secret: false,
        "Most database connections one process opens at once. Default: 8 on SQLite, 16 on PostgreSQL. On PostgreSQL every `serve` and `worker` holds up to this many, so keep their sum under the server's `max_connections` (100 unless changed); give each at least `worker_concurrency` + 4."),
    setting!("public_url", flag: None, env: ["TIDEPOST_PUBLIC_URL"], default: None, secret: false,
        "The URL people and providers reach tidepost at (`https://…` outside sandbox mode). Defaults to `http://` + listen."),
    setting!("sandbox", flag: Some("--sandbox"), env: ["TIDEPOST_SANDBOX"], default: Some("false"), secret: false,
        "Run the provider emulator in-process and point TikTok and Instagram at it. Nothing leaves the machine."),
    setting!("allow_http", flag: None, env: ["TIDEPOST_ALLOW_HTTP"], default: Some("false"), secret: false,
        "Allow a plain `http://` public URL outside sandbox mode (local development only: cookies and tokens travel unencrypted)."),
    setting!("tls_cert", flag: Some("--tls-cert"), env: ["TIDEPOST_TLS_CERT"], default: None, secret: false,
        "PEM certificate chain: tidepost terminates HTTPS itself. Needs `tls_key`."),
    setting!("tls_key", flag: Some("--tls-key"), env: ["TIDEPOST_TLS_KEY"], default: None, secret: false,
        "PEM private key for `tls_cert`."),
    setting!("trusted_proxies", flag: None, env: ["TIDEPOST_TRUSTED_PROXIES"], default: None, secret: false,
        "Reverse proxies allowed to name the client in `X-Forwarded-For`: CIDRs separated by commas (`127.0.0.1/32, 10.0.0.0/8`). The client is the right-most address in the header that is not a trusted proxy, and only when the connection comes from one; otherwise the connection's address. Empty: the header is ignored."),
    setting!("secure_cookies", flag: None, env: ["TIDEPOST_SECURE_COOKIES"], default: None, secret: false,
        "Force the `Secure` cookie attribute on or off. Default: on when served over HTTPS or the public URL is https."),
    setting!("keys", flag: None, env: ["TIDEPOST_KEYS"], default: None, secret: true,
        "Encryption keyring for secrets at rest: comma-separated `ID:KEY` entries, newest first (`tidepost keys generate`)."),
    setting!("key_file", flag: None, env: ["TIDEPOST_KEY_FILE"], default: None, secret: false,
        "A file holding the keyring, one `ID:KEY` entry a line, newest first. Used when `keys` is not set."),
    setting!("data_dir", flag: None, env: ["TIDEPOST_DATA_DIR"], default: Some("data"), secret: false,
        "Folder for media files and, in sandbox mode, the generated key file."),
    setting!("workers", flag: None, env: ["TIDEPOST_WORKERS"], default: Some("true"), secret: false,
        "Run background workers inside `serve` (`--no-workers` turns them off)."),
    setting!("worker_concurrency", flag: None, env: ["TIDEPOST_WORKER_CONCURRENCY"], default: Some("4"), secret: false,
        "How many jobs one process runs at once."),
    setting!("job_retention_days", flag: None, env: ["TIDEPOST_JOB_RETENTION_DAYS"], default: Some("7"), secret: false,
        "Succeeded and cancelled jobs (with their steps) are deleted by the hourly `housekeeping.prune` sweep this many days after they finished; 0 keeps them forever."),
    setting!("dead_job_retention_days", flag: None, env: ["TIDEPOST_DEAD_JOB_RETENTION_DAYS"], default: Some("30"), secret: false,
        "Dead jobs (out of attempts) are kept this many days after they died, so their errors can be read and the job retried (a retried job is no longer dead); 0 keeps them forever. Jobs waiting for a retry are never deleted."),
    setting!("log_format", flag: None, env: ["TIDEPOST_LOG_FORMAT"], default: Some("text"), secret: false,
        "`text` (for a terminal) or `json` (one object a line)."),
    setting!("log_level", flag: None, env: ["TIDEPOST_LOG", "RUST_LOG"], default: Some("info"), secret: false,
        "A tracing filter, e.g. `info` or `tidepost=debug,sqlx=warn`."),
    setting!("tiktok_client_key", flag: None, env: ["TIDEPOST_TIKTOK_CLIENT_KEY", "TIKTOK_CLIENT_KEY"], default: None, secret: false,
        "TikTok app client key (developer portal). In sandbox mode the emulator's key is used when unset."),
    setting!("tiktok_client_secret", flag: None, env: ["TIDEPOST_TIKTOK_CLIENT_SECRET", "TIKTOK_CLIENT_SECRET"], default: None, secret: true,
        "TikTok app client secret; also verifies TikTok webhook signatures."),
    setting!("tiktok_redirect_uri", flag: None, env: ["TIDEPOST_TIKTOK_REDIRECT_URI", "TIKTOK_REDIRECT_URI"], default: None, secret: false,
        "OAuth redirect URI registered with TikTok. Default: the public URL + `/oauth/tiktok/callback`."),
    setting!("tiktok_auth_base_url", flag: None, env: ["TIDEPOST_TIKTOK_AUTH_BASE_URL"], default: Some("https://www.tiktok.com"), secret: false,
        "Where TikTok's consent page lives (sandbox mode points it at the emulator)."),
    setting!("tiktok_api_base_url", flag: None, env: ["TIDEPOST_TIKTOK_API_BASE_URL"], default: Some("https://open.tiktokapis.com"), secret: false,
        "TikTok's API host (sandbox mode points it at the emulator)."),
    // Instagram (Meta): Facebook Login and Instagram Login.
    setting!("facebook_app_id", flag: None, env: ["TIDEPOST_FACEBOOK_APP_ID", "FACEBOOK_APP_ID"], default: None, secret: false,
        "Facebook App ID (Facebook Login for Instagram professional accounts linked to a Page). In sandbox mode the emulator's app is used when unset."),
    setting!("facebook_app_secret", flag: None, env: ["TIDEPOST_FACEBOOK_APP_SECRET", "FACEBOOK_APP_SECRET"], default: None, secret: true,
        "Facebook App secret; also the default key of Instagram webhook signatures."),
    setting!("instagram_app_id", flag: None, env: ["TIDEPOST_INSTAGRAM_APP_ID", "INSTAGRAM_APP_ID"], default: None, secret: false,
        "Instagram App ID (Instagram Login, no Facebook Page needed). Default: the Facebook app."),
    setting!("instagram_app_secret", flag: None, env: ["TIDEPOST_INSTAGRAM_APP_SECRET", "INSTAGRAM_APP_SECRET"], default: None, secret: true,
        "Instagram App secret (Instagram Login). Default: the Facebook app secret."),
    setting!("instagram_redirect_uri", flag: None, env: ["TIDEPOST_INSTAGRAM_REDIRECT_URI", "INSTAGRAM_REDIRECT_URI"], default: None, secret: false,
        "OAuth redirect URI registered with Meta for both logins. Default: the public URL + `/oauth/instagram/callback`."),
    setting!("instagram_webhook_secret", flag: None, env: ["TIDEPOST_INSTAGRAM_WEBHOOK_SECRET", "INSTAGRAM_WEBHOOK_SECRET"], default: None, secret: true,
        "Key of `X-Hub-Signature-256` on Instagram webhooks. Default: the Facebook app secret (the Instagram app secret is also accepted)."),
    setting!("instagram_verify_token", flag: None, env: ["TIDEPOST_INSTAGRAM_VERIFY_TOKEN", "INSTAGRAM_VERIFY_TOKEN"], default: None, secret: true,
        "The verify token entered in Meta's dashboard for the webhook handshake (`hub.verify_token`). Without it the handshake is refused."),
    setting!("facebook_www_base_url", flag: None, env: ["TIDEPOST_FACEBOOK_WWW_BASE_URL"], default: Some("https://www.facebook.com"), secret: false,
        "Where the Facebook Login dialog lives (sandbox mode points it at the emulator)."),
    setting!("facebook_graph_base_url", flag: None, env: ["TIDEPOST_FACEBOOK_GRAPH_BASE_URL"], default: Some("https://graph.facebook.com"), secret: false,
        "The Graph API host for Facebook Login tokens."),
    setting!("instagram_www_base_url", flag: None, env: ["TIDEPOST_INSTAGRAM_WWW_BASE_URL"], default: Some("https://www.instagram.com"), secret: false,
        "Where the Instagram Login dialog lives."),
    setting!("instagram_api_base_url", flag: None, env: ["TIDEPOST_INSTAGRAM_API_BASE_URL"], default: Some("https://api.instagram.com"), secret: false,
        "Instagram Login's code exchange host."),
    setting!("instagram_graph_base_url", flag: None, env: ["TIDEPOST_INSTAGRAM_GRAPH_BASE_URL"], default: Some("https://graph.instagram.com"), secret: false,
        "The Graph API host for Instagram Login tokens."),
    setting!("meta_graph_version", flag: None, env: ["TIDEPOST_META_GRAPH_VERSION"], default: Some("v22.0"), secret: false,
        "The Graph API version tidepost pins (`vXX.X`)."),
    setting!("instagram_refresh_window_secs", flag: None, env: ["TIDEPOST_INSTAGRAM_REFRESH_WINDOW_SECS"], default: Some("864000"), secret: false,
        "Instagram long-lived tokens (60 days) expiring within this many seconds are extended by the background sweep (default 10 days)."),
    // Threads: its own app id and secret (the Meta app's "Access the Threads API" use case).
    setting!("threads_app_id", flag: None, env: ["TIDEPOST_THREADS_APP_ID", "THREADS_APP_ID"], default: None, secret: false,
        "Threads App ID (App settings > Basic > Threads App ID; not the Facebook App ID). In sandbox mode the emulator's app is used when unset."),
    setting!("threads_app_secret", flag: None, env: ["TIDEPOST_THREADS_APP_SECRET", "THREADS_APP_SECRET"], default: None, secret: true,
        "Threads App secret (not the Facebook App secret)."),
    setting!("threads_redirect_uri", flag: None, env: ["TIDEPOST_THREADS_REDIRECT_URI", "THREADS_REDIRECT_URI"], default: None, secret: false,
        "OAuth redirect URI registered in the Threads use case's settings. Default: the public URL + `/oauth/threads/callback`."),
    setting!("threads_www_base_url", flag: None, env: ["TIDEPOST_THREADS_WWW_BASE_URL"], default: Some("https://threads.net"), secret: false,
        "Where the Threads authorize dialog lives (sandbox mode points it at the emulator)."),
    setting!("threads_graph_base_url", flag: None, env: ["TIDEPOST_THREADS_GRAPH_BASE_URL"], default: Some("https://graph.threads.net"), secret: false,
        "The Threads API host (tokens and data)."),
    setting!("threads_refresh_window_secs", flag: None, env: ["TIDEPOST_THREADS_REFRESH_WINDOW_SECS"], default: Some("604800"), secret: false,
        "Threads long-lived tokens (60 days) expiring within this many seconds are refreshed by the background sweep (default 7 days; Threads refreshes a token only once it is 24 hours old)."),
    setting!("media_url_ttl_secs", flag: None, env: ["TIDEPOST_MEDIA_URL_TTL_SECS"], default: Some("86400"), secret: false,
        "How long the signed URLs tidepost gives Meta to fetch uploaded media stay valid, in seconds."),
    setting!("token_refresh_window_secs", flag: None, env: ["TIDEPOST_TOKEN_REFRESH_WINDOW_SECS"], default: Some("3600"), secret: false,
        "Access tokens expiring within this many seconds are refreshed by the background sweep."),
    // Publishing (TikTok limits default to the documented values).
    setting!("tiktok_posting_requests_per_minute", flag: None, env: ["TIDEPOST_TIKTOK_POSTING_REQUESTS_PER_MINUTE"], default: Some("6"), secret: false,
        "Requests per minute per account on TikTok's posting endpoints, shared by every instance; excess requests wait."),
    setting!("tiktok_direct_post_daily_cap", flag: None, env: ["TIDEPOST_TIKTOK_DIRECT_POST_DAILY_CAP"], default: Some("15"), secret: false,
        "Direct posts per TikTok creator per rolling 24 hours."),
    setting!("tiktok_pending_inbox_cap", flag: None, env: ["TIDEPOST_TIKTOK_PENDING_INBOX_CAP"], default: Some("5"), secret: false,
        "Inbox uploads per TikTok creator per rolling 24 hours still waiting for the creator."),
    setting!("tiktok_unaudited", flag: None, env: ["TIDEPOST_TIKTOK_UNAUDITED"], default: Some("false"), secret: false,
        "The TikTok app is not audited yet: direct posts only as SELF_ONLY, to at most `tiktok_unaudited_user_cap` creators per 24 hours."),
    setting!("tiktok_unaudited_user_cap", flag: None, env: ["TIDEPOST_TIKTOK_UNAUDITED_USER_CAP"], default: Some("5"), secret: false,
        "Distinct creators an unaudited TikTok app may direct-post for per rolling 24 hours."),
    setting!("tiktok_webhook_tolerance_secs", flag: None, env: ["TIDEPOST_TIKTOK_WEBHOOK_TOLERANCE_SECS"], default: Some("300"), secret: false,
        "How far a TikTok webhook's signature timestamp may be from now, in seconds."),
    setting!("max_upload_bytes", flag: None, env: ["TIDEPOST_MAX_UPLOAD_BYTES"], default: Some("4294967296"), secret: false,
        "Largest media upload accepted, in bytes."),
    setting!("session_hours", flag: None, env: ["TIDEPOST_SESSION_HOURS"], default: Some("168"), secret: false,
        "How long a sign-in lasts, in hours."),
    // The media library.
    setting!("media_dir", flag: None, env: ["TIDEPOST_MEDIA_DIR"], default: None, secret: false,
        "Folder for stored media files, each named by the SHA-256 of its bytes, and unfinished resumable uploads, when `storage` is local (S3 keeps both in the bucket). Default: `media` in the data folder."),
    setting!("storage", flag: None, env: ["TIDEPOST_STORAGE"], default: Some("local"), secret: false,
        "Where media files live: `local` (the folder `media_dir`) or `s3` (an S3-compatible bucket: AWS S3, R2, MinIO, Garage, Ceph; see the `s3_*` settings). With `s3`, every `serve` and `worker` reads and writes the bucket and needs no shared disk."),
    setting!("s3_bucket", flag: None, env: ["TIDEPOST_S3_BUCKET"], default: None, secret: false,
        "The bucket media goes to (required with `storage = s3`). It must exist; `tidepost storage check` tries every permission tidepost needs."),
    setting!("s3_prefix", flag: None, env: ["TIDEPOST_S3_PREFIX"], default: Some("media"), secret: false,
        "Key prefix of media objects in the bucket (objects are `PREFIX/SHA256`); empty for the bucket's root."),
    setting!("s3_region", flag: None, env: ["TIDEPOST_S3_REGION", "AWS_REGION", "AWS_DEFAULT_REGION"], default: Some("us-east-1"), secret: false,
        "The bucket's region (`auto` for R2)."),
    setting!("s3_endpoint", flag: None, env: ["TIDEPOST_S3_ENDPOINT", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"], default: None, secret: false,
        "Endpoint URL of a store other than AWS (`http://127.0.0.1:9000` for MinIO, `https://ACCOUNT.r2.cloudflarestorage.com`). Default: AWS's endpoint of the region."),
    setting!("s3_path_style", flag: None, env: ["TIDEPOST_S3_PATH_STYLE"], default: Some("false"), secret: false,
        "Address the bucket in the path (`ENDPOINT/BUCKET/KEY`) rather than as a subdomain: MinIO, Garage and Ceph usually need `true`."),
    setting!("s3_access_key_id", flag: None, env: ["TIDEPOST_S3_ACCESS_KEY_ID", "AWS_ACCESS_KEY_ID"], default: None, secret: true,
        "Access key id for the bucket. Unset: the role of the EC2 instance tidepost runs on (instance metadata)."),
    setting!("s3_secret_access_key", flag: None, env: ["TIDEPOST_S3_SECRET_ACCESS_KEY", "AWS_SECRET_ACCESS_KEY"], default: None, secret: true,
        "Secret of `s3_access_key_id`."),
    setting!("s3_session_token", flag: None, env: ["TIDEPOST_S3_SESSION_TOKEN", "AWS_SESSION_TOKEN"], default: None, secret: true,
        "Session token of temporary credentials (with `s3_access_key_id`)."),
    setting!("media_retention_days", flag: None, env: ["TIDEPOST_MEDIA_RETENTION_DAYS"], default: Some("30"), secret: false,
        "Media no post has used for this many days is deleted by the hourly sweep (never while a post that has not finished uses it); 0 keeps media forever."),
    setting!("upload_expiry_hours", flag: None, env: ["TIDEPOST_UPLOAD_EXPIRY_HOURS"], default: Some("24"), secret: false,
        "Resumable uploads not finished this many hours after they were created are deleted with their bytes."),
    setting!("ffprobe_path", flag: None, env: ["TIDEPOST_FFPROBE_PATH"], default: Some("ffprobe"), secret: false,
        "The ffprobe program (Debian's `ffmpeg` package) that reads the container, codecs, duration and picture size of uploaded videos."),
    setting!("probe_timeout_secs", flag: None, env: ["TIDEPOST_PROBE_TIMEOUT_SECS"], default: Some("30"), secret: false,
        "How long ffprobe may take on one file, in seconds."),
    // Outbound webhooks (Standard Webhooks).
    setting!("webhooks_allow_private", flag: None, env: ["TIDEPOST_WEBHOOKS_ALLOW_PRIVATE"], default: None, secret: false,
        "Let webhook endpoints, and media URLs given for TikTok or Meta to download, be loopback, private, link-local or other non-public addresses (the SSRF guard refuses them otherwise). Default: on in sandbox mode, off otherwise."),
    setting!("webhooks_timeout_secs", flag: None, env: ["TIDEPOST_WEBHOOKS_TIMEOUT_SECS"], default: Some("15"), secret: false,
        "How long a webhook receiver has to answer 2xx before the attempt counts as failed, in seconds."),
    setting!("webhooks_secret_overlap_secs", flag: None, env: ["TIDEPOST_WEBHOOKS_SECRET_OVERLAP_SECS"], default: Some("86400"), secret: false,
        "After a webhook secret is rotated, how long the old secret keeps signing beside the new one (both signatures are sent), in seconds."),
    setting!("webhooks_disable_after_failures", flag: None, env: ["TIDEPOST_WEBHOOKS_DISABLE_AFTER_FAILURES"], default: Some("5"), secret: false,
        "A webhook endpoint is disabled when this many deliveries in a row failed after every retry (about 27.5 hours of retries each)."),
    setting!("webhooks_dispatch_interval_ms", flag: None, env: ["TIDEPOST_WEBHOOKS_DISPATCH_INTERVAL_MS"], default: Some("1000"), secret: false,
        "How often new events are turned into webhook deliveries, in milliseconds."),
    // Mail (invites).
    setting!("smtp_url", flag: None, env: ["TIDEPOST_SMTP_URL"], default: None, secret: true,
        "The SMTP server invites are sent through: `smtps://USER:PASSWORD@HOST:465` (TLS), `smtp://USER:PASSWORD@HOST:587?tls=required` (STARTTLS) or `smtp://HOST:25` (plain, a local relay only). Unset: no mail is sent; the invite link is shown to copy."),
    setting!("smtp_from", flag: None, env: ["TIDEPOST_SMTP_FROM"], default: None, secret: false,
        "The sender of invite mails (`tidepost <noreply@example.com>`). Needed with `smtp_url`."),
];

/// Looks a setting up by name.
pub fn setting(name: &str) -> Option<&'static Setting> {
    SETTINGS.iter().find(|s| s.name == name)
}

/// Where a value came from, for `config check`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Flag(&'static str),
    Env(&'static str),
    File(PathBuf),
    Default,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Flag(flag) => write!(f, "flag {flag}"),
            Origin::Env(var) => write!(f, "environment {var}"),
            Origin::File(path) => write!(f, "file {}", path.display()),
            Origin::Default => f.write_str("default"),
        }
    }
}

/// A configuration problem, in one line that names the setting.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("invalid {setting} (from {origin}): {message}")]
    Invalid {
        setting: &'static str,
        origin: String,
        message: String,
    },
    #[error("{setting} is required: {message}")]
    Missing {
        setting: &'static str,
        message: String,
    },
    #[error("cannot read the configuration file {path}: {message}")]
    File { path: String, message: String },
    #[error("unknown setting {key:?} in {path}")]
    UnknownKey { key: String, path: String },
}

/// The raw text of each setting and where it came from, before parsing.
#[derive(Debug, Default, Clone)]
pub struct RawSettings {
    values: BTreeMap<&'static str, (String, Origin)>,
}

impl RawSettings {
    /// Gathers values: `flags` (setting name → value, from the command line), then the
    /// environment, then `file` (a TOML table of setting names), then defaults.
    pub fn gather(
        flags: &[(&'static str, String)],
        env: impl Fn(&str) -> Option<String>,
        file: Option<&Path>,
    ) -> Result<Self, ConfigError> {
        let file_values = match file {
            Some(path) => read_file(path)?,
            None => BTreeMap::new(),
        };
        let mut values = BTreeMap::new();
        for s in SETTINGS {
            let from_flag = flags
                .iter()
                .find(|(name, _)| *name == s.name)
                .map(|(_, v)| (v.clone(), flag_origin(s)));
            let from_env = || {
                s.env.iter().find_map(|var| {
                    env(var)
                        .filter(|v| !v.is_empty())
                        .map(|v| (v, Origin::Env(var)))
                })
            };
            let from_file = || {
                file_values.get(s.name).map(|v| {
                    (
                        v.clone(),
                        Origin::File(file.unwrap_or(Path::new("")).into()),
                    )
                })
            };
            let from_default = || s.default.map(|d| (d.to_string(), Origin::Default));
            if let Some(found) = from_flag
                .or_else(from_env)
                .or_else(from_file)
                .or_else(from_default)
            {
                values.insert(s.name, found);
            }
        }
        Ok(Self { values })
    }

    pub fn get(&self, name: &str) -> Option<&(String, Origin)> {
        self.values.get(name)
    }

    /// Each setting with its value as `config check` shows it (secrets masked) and its origin.
    pub fn describe(&self) -> Vec<(&'static str, String, String)> {
        SETTINGS
            .iter()
            .map(|s| match self.values.get(s.name) {
                Some((value, origin)) => (s.name, display_value(s, value), origin.to_string()),
                None => (s.name, "(not set)".to_string(), "-".to_string()),
            })
            .collect()
    }

    fn parse<T>(
        &self,
        name: &'static str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<Option<T>, ConfigError> {
        match self.values.get(name) {
            None => Ok(None),
            Some((text, origin)) => {
                parse(text.trim())
                    .map(Some)
                    .map_err(|message| ConfigError::Invalid {
                        setting: name,
                        origin: origin.to_string(),
                        message,
                    })
            }
        }
    }

    fn bool(&self, name: &'static str) -> Result<Option<bool>, ConfigError> {
        self.parse(name, |v| match v.to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => Ok(true),
            "0" | "false" | "no" | "off" => Ok(false),
            _ => Err(format!("expected true or false, got {v:?}")),
        })
    }
}

fn absolute_http_url(v: &str) -> Result<Url, String> {
    let url = Url::parse(v).map_err(|e| format!("not a URL ({e})"))?;
    match url.scheme() {
        "http" | "https" if url.host().is_some() => Ok(url),
        _ => Err("expected an absolute http:// or https:// URL".into()),
    }
}

fn flag_origin(s: &Setting) -> Origin {
    Origin::Flag(s.flag.unwrap_or("(flag)"))
}

fn display_value(s: &Setting, value: &str) -> String {
    if s.secret {
        "********".to_string()
    } else if s.name == "database_url" {
        mask_url_password(value)
    } else {
        value.to_string()
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:****@host/db`.
pub fn mask_url_password(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("****"));
            parsed.to_string()
        }
        _ => url.to_string(),
    }
}

fn read_file(path: &Path) -> Result<BTreeMap<String, String>, ConfigError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::File {
        path: shown.clone(),
        message: e.to_string(),
    })?;
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| ConfigError::File {
            path: shown.clone(),
            message: e.message().to_string(),
        })?;
    let mut values = BTreeMap::new();
    for (key, value) in table {
        if setting(&key).is_none() {
            return Err(ConfigError::UnknownKey { key, path: shown });
        }
        let text = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            toml::Value::Float(f) => f.to_string(),
            other @ (toml::Value::Datetime(_) | toml::Value::Array(_) | toml::Value::Table(_)) => {
                return Err(ConfigError::File {
                    path: shown,
                    message: format!(
                        "{key} must be a string, number or boolean, not {}",
                        other.type_str()
                    ),
                });
            }
        };
        values.insert(key, text);
    }
    Ok(values)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tls {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Where the encryption keyring comes from.
#[derive(Debug, Clone)]
pub enum KeySource {
    Inline(SecretString),
    File(PathBuf),
    /// Neither set: sandbox mode makes a key file in the data folder; elsewhere this is an error
    /// for commands that need keys.
    Unset,
}

/// The parsed configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub database_url: String,
    /// `database_max_connections`; `None`: the backend's default.
    pub database_max_connections: Option<u32>,
    pub public_url: Url,
    pub sandbox: bool,
    pub allow_http: bool,
    pub tls: Option<Tls>,
    pub secure_cookies: bool,
    /// Who may name the client in `X-Forwarded-For` (`trusted_proxies`).
    pub trusted_proxies: crate::proxies::TrustedProxies,
    pub keys: KeySource,
    pub data_dir: PathBuf,
    pub workers: bool,
    pub worker_concurrency: usize,
    /// Days succeeded and cancelled jobs are kept (0: forever).
    pub job_retention_days: u32,
    /// Days dead jobs are kept (0: forever).
    pub dead_job_retention_days: u32,
    pub log_format: LogFormat,
    pub log_level: String,
    pub session_hours: u32,
    pub tiktok: TikTokSettings,
    pub meta: MetaSettings,
    pub threads: ThreadsSettings,
    pub token_refresh_window_secs: u64,
    pub publish: PublishSettings,
    pub media: crate::media::MediaSettings,
    pub outbound: crate::outbound::OutboundSettings,
    /// Where invites are mailed from (`smtp_url`, `smtp_from`); `None`: no mail is sent.
    pub mail: Option<crate::mail::MailSettings>,
}

/// Publishing limits (see the `tiktok_*` and `max_upload_bytes` settings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishSettings {
    pub tiktok_posting_requests_per_minute: u32,
    pub tiktok_direct_post_daily_cap: u32,
    pub tiktok_pending_inbox_cap: u32,
    pub tiktok_unaudited: bool,
    pub tiktok_unaudited_user_cap: u32,
    pub tiktok_webhook_tolerance_secs: u64,
    pub max_upload_bytes: u64,
}

impl PublishSettings {
    fn from_raw(raw: &RawSettings) -> Result<Self, ConfigError> {
        let count = |name: &'static str, default: u32| -> Result<u32, ConfigError> {
            Ok(raw
                .parse(name, |v| match v.parse::<u32>() {
                    Ok(n) if (1..=100_000).contains(&n) => Ok(n),
                    _ => Err(format!(
                        "expected a whole number from 1 to 100000, got {v:?}"
                    )),
                })?
                .unwrap_or(default))
        };
        Ok(Self {
            tiktok_posting_requests_per_minute: count("tiktok_posting_requests_per_minute", 6)?,
            tiktok_direct_post_daily_cap: count("tiktok_direct_post_daily_cap", 15)?,
            tiktok_pending_inbox_cap: count("tiktok_pending_inbox_cap", 5)?,
            tiktok_unaudited: raw.bool("tiktok_unaudited")?.unwrap_or(false),
            tiktok_unaudited_user_cap: count("tiktok_unaudited_user_cap", 5)?,
            tiktok_webhook_tolerance_secs: u64::from(count("tiktok_webhook_tolerance_secs", 300)?),
            max_upload_bytes: raw
                .parse("max_upload_bytes", |v| match v.parse::<u64>() {
                    Ok(n) if n >= 1024 => Ok(n),
                    _ => Err(format!(
                        "expected a number of bytes of at least 1024, got {v:?}"
                    )),
                })?
                .unwrap_or(4 * 1024 * 1024 * 1024),
        })
    }
}

/// The TikTok app tidepost acts as.
#[derive(Debug, Clone)]
pub struct TikTokSettings {
    pub client_key: Option<String>,
    pub client_secret: Option<SecretString>,
    pub redirect_uri: String,
    pub auth_base_url: String,
    pub api_base_url: String,
}

/// The Meta apps tidepost acts as (Facebook Login and Instagram Login) and their hosts.
#[derive(Debug, Clone)]
pub struct MetaSettings {
    pub facebook_app_id: Option<String>,
    pub facebook_app_secret: Option<SecretString>,
    pub instagram_app_id: Option<String>,
    pub instagram_app_secret: Option<SecretString>,
    pub redirect_uri: String,
    pub webhook_secret: Option<SecretString>,
    pub verify_token: Option<SecretString>,
    pub facebook_www_base_url: String,
    pub facebook_graph_base_url: String,
    pub instagram_www_base_url: String,
    pub instagram_api_base_url: String,
    pub instagram_graph_base_url: String,
    pub graph_version: String,
    pub refresh_window_secs: u64,
    pub media_url_ttl_secs: u64,
}

impl MetaSettings {
    fn from_raw(raw: &RawSettings, public_url: &Url) -> Result<Self, ConfigError> {
        let text = |name: &'static str| raw.get(name).map(|(v, _)| v.trim().to_string());
        let secret = |name: &'static str| text(name).map(SecretString::from);
        let url = |name: &'static str| -> Result<String, ConfigError> {
            Ok(raw
                .parse(name, |v| {
                    absolute_http_url(v).map(|u| u.as_str().trim_end_matches('/').to_string())
                })?
                .unwrap_or_default())
        };
        let redirect_uri = raw
            .parse("instagram_redirect_uri", |v| {
                absolute_http_url(v).map(|u| u.to_string())
            })?
            .unwrap_or_else(|| {
                format!(
                    "{}/oauth/instagram/callback",
                    public_url.as_str().trim_end_matches('/')
                )
            });
        let secs = |name: &'static str, default: u64, min: u64, max: u64| {
            Ok::<u64, ConfigError>(
                raw.parse(name, |v| match v.parse::<u64>() {
                    Ok(n) if (min..=max).contains(&n) => Ok(n),
                    _ => Err(format!("expected seconds from {min} to {max}, got {v:?}")),
                })?
                .unwrap_or(default),
            )
        };
        Ok(Self {
            facebook_app_id: text("facebook_app_id"),
            facebook_app_secret: secret("facebook_app_secret"),
            instagram_app_id: text("instagram_app_id"),
            instagram_app_secret: secret("instagram_app_secret"),
            redirect_uri,
            webhook_secret: secret("instagram_webhook_secret"),
            verify_token: secret("instagram_verify_token"),
            facebook_www_base_url: url("facebook_www_base_url")?,
            facebook_graph_base_url: url("facebook_graph_base_url")?,
            instagram_www_base_url: url("instagram_www_base_url")?,
            instagram_api_base_url: url("instagram_api_base_url")?,
            instagram_graph_base_url: url("instagram_graph_base_url")?,
            graph_version: raw
                .parse("meta_graph_version", |v| {
                    let ok = v.strip_prefix('v').is_some_and(|n| {
                        n.split('.').count() == 2
                            && n.split('.')
                                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
                    });
                    if ok {
                        Ok(v.to_string())
                    } else {
                        Err(format!("expected a version such as v22.0, got {v:?}"))
                    }
                })?
                .unwrap_or_else(|| "v22.0".into()),
            refresh_window_secs: secs("instagram_refresh_window_secs", 864_000, 3600, 50 * 86_400)?,
            media_url_ttl_secs: secs("media_url_ttl_secs", 86_400, 60, 7 * 86_400)?,
        })
    }
}

/// The Threads app tidepost acts as and its hosts.
#[derive(Debug, Clone)]
pub struct ThreadsSettings {
    pub app_id: Option<String>,
    pub app_secret: Option<SecretString>,
    pub redirect_uri: String,
    pub www_base_url: String,
    pub graph_base_url: String,
    pub refresh_window_secs: u64,
}

impl ThreadsSettings {
    fn from_raw(raw: &RawSettings, public_url: &Url) -> Result<Self, ConfigError> {
        let text = |name: &'static str| raw.get(name).map(|(v, _)| v.trim().to_string());
        let url = |name: &'static str| -> Result<String, ConfigError> {
            Ok(raw
                .parse(name, |v| {
                    absolute_http_url(v).map(|u| u.as_str().trim_end_matches('/').to_string())
                })?
                .unwrap_or_default())
        };
        let redirect_uri = raw
            .parse("threads_redirect_uri", |v| {
                absolute_http_url(v).map(|u| u.to_string())
            })?
            .unwrap_or_else(|| {
                format!(
                    "{}/oauth/threads/callback",
                    public_url.as_str().trim_end_matches('/')
                )
            });
        let refresh_window_secs = raw
            .parse("threads_refresh_window_secs", |v| match v.parse::<u64>() {
                // Within 59 days of expiry at most: a token is refreshed only once it is a day old.
                Ok(n) if (3600..=59 * 86_400).contains(&n) => Ok(n),
                _ => Err(format!(
                    "expected seconds from 3600 to {}, got {v:?}",
                    59 * 86_400
                )),
            })?
            .unwrap_or(604_800);
        Ok(Self {
            app_id: text("threads_app_id"),
            app_secret: text("threads_app_secret").map(SecretString::from),
            redirect_uri,
            www_base_url: url("threads_www_base_url")?,
            graph_base_url: url("threads_graph_base_url")?,
            refresh_window_secs,
        })
    }
}

impl Config {
    pub fn from_raw(raw: &RawSettings) -> Result<Self, ConfigError> {
        let listen: SocketAddr = raw
            .parse("listen", |v| {
                v.parse()
                    .map_err(|_| format!("expected HOST:PORT such as 127.0.0.1:8080, got {v:?}"))
            })?
            .ok_or(ConfigError::Missing {
                setting: "listen",
                message: "give an address such as 127.0.0.1:8080".into(),
            })?;
        let database_url = raw
            .parse("database_url", |v| {
                if v.starts_with("sqlite:")
                    || v.starts_with("postgres://")
                    || v.starts_with("postgresql://")
                {
                    Ok(v.to_string())
                } else {
                    Err("expected sqlite://PATH or postgres://USER@HOST/DB".into())
                }
            })?
            .ok_or(ConfigError::Missing {
                setting: "database_url",
                message: "give sqlite://PATH or postgres://…".into(),
            })?;
        let database_max_connections =
            raw.parse("database_max_connections", |v| match v.parse::<u32>() {
                Ok(n) if (2..=1000).contains(&n) => Ok(n),
                _ => Err(format!("expected a whole number from 2 to 1000, got {v:?}")),
            })?;
        let tls_cert = raw.parse("tls_cert", |v| Ok(PathBuf::from(v)))?;
        let tls_key = raw.parse("tls_key", |v| Ok(PathBuf::from(v)))?;
        let tls = match (tls_cert, tls_key) {
            (Some(cert), Some(key)) => Some(Tls { cert, key }),
            (None, None) => None,
            (Some(_), None) => {
                return Err(ConfigError::Missing {
                    setting: "tls_key",
                    message: "tls_cert is set, give its key too".into(),
                });
            }
            (None, Some(_)) => {
                return Err(ConfigError::Missing {
                    setting: "tls_cert",
                    message: "tls_key is set, give its certificate too".into(),
                });
            }
        };
        let public_url = match raw.parse("public_url", |v| {
            let url = Url::parse(v).map_err(|e| format!("not a URL ({e})"))?;
            match url.scheme() {
                "http" | "https" if url.host().is_some() => Ok(url),
                _ => Err("expected an absolute http:// or https:// URL".into()),
            }
        })? {
            Some(url) => url,
            None => {
                let scheme = if tls.is_some() { "https" } else { "http" };
                Url::parse(&format!("{scheme}://{listen}/"))
                    .expect("a socket address makes a valid URL")
            }
        };
        let https = public_url.scheme() == "https" || tls.is_some();
        let secure_cookies = raw.bool("secure_cookies")?.unwrap_or(https);
        let keys = match (
            raw.get("keys"),
            raw.parse("key_file", |v| Ok(PathBuf::from(v)))?,
        ) {
            (Some((text, _)), _) => KeySource::Inline(SecretString::from(text.clone())),
            (None, Some(path)) => KeySource::File(path),
            (None, None) => KeySource::Unset,
        };
        let log_format = raw
            .parse("log_format", |v| match v {
                "text" => Ok(LogFormat::Text),
                "json" => Ok(LogFormat::Json),
                _ => Err(format!("expected text or json, got {v:?}")),
            })?
            .unwrap_or(LogFormat::Text);
        let worker_concurrency = raw
            .parse("worker_concurrency", |v| match v.parse::<usize>() {
                Ok(n) if (1..=256).contains(&n) => Ok(n),
                _ => Err(format!("expected a whole number from 1 to 256, got {v:?}")),
            })?
            .unwrap_or(4);
        let days = |name: &'static str, default: u32| -> Result<u32, ConfigError> {
            Ok(raw
                .parse(name, |v| match v.parse::<u32>() {
                    Ok(n) if n <= 36_500 => Ok(n),
                    _ => Err(format!("expected days from 0 to 36500, got {v:?}")),
                })?
                .unwrap_or(default))
        };
        let job_retention_days = days("job_retention_days", 7)?;
        let dead_job_retention_days = days("dead_job_retention_days", 30)?;
        let session_hours = raw
            .parse("session_hours", |v| match v.parse::<u32>() {
                Ok(n) if (1..=24 * 365).contains(&n) => Ok(n),
                _ => Err(format!("expected hours from 1 to 8760, got {v:?}")),
            })?
            .unwrap_or(168);
        let redirect_uri = raw
            .parse("tiktok_redirect_uri", |v| {
                absolute_http_url(v).map(|u| u.to_string())
            })?
            .unwrap_or_else(|| {
                format!(
                    "{}/oauth/tiktok/callback",
                    public_url.as_str().trim_end_matches('/')
                )
            });
        let tiktok = TikTokSettings {
            client_key: raw
                .get("tiktok_client_key")
                .map(|(v, _)| v.trim().to_string()),
            client_secret: raw
                .get("tiktok_client_secret")
                .map(|(v, _)| SecretString::from(v.trim().to_string())),
            redirect_uri,
            auth_base_url: raw
                .parse("tiktok_auth_base_url", |v| {
                    absolute_http_url(v).map(|u| u.to_string())
                })?
                .unwrap_or_default(),
            api_base_url: raw
                .parse("tiktok_api_base_url", |v| {
                    absolute_http_url(v).map(|u| u.to_string())
                })?
                .unwrap_or_default(),
        };
        let token_refresh_window_secs = raw
            .parse("token_refresh_window_secs", |v| match v.parse::<u64>() {
                Ok(n) if (60..=30 * 86_400).contains(&n) => Ok(n),
                _ => Err(format!("expected seconds from 60 to 2592000, got {v:?}")),
            })?
            .unwrap_or(3600);
        let meta = MetaSettings::from_raw(raw, &public_url)?;
        let mail = crate::mail::MailSettings::from_raw(raw)?;
        let threads = ThreadsSettings::from_raw(raw, &public_url)?;
        Ok(Self {
            mail,
            outbound: crate::outbound::OutboundSettings::from_raw(
                raw,
                raw.bool("sandbox")?.unwrap_or(false),
            )?,
            publish: PublishSettings::from_raw(raw)?,
            media: crate::media::MediaSettings::from_raw(raw)?,
            tiktok,
            meta,
            threads,
            token_refresh_window_secs,
            listen,
            database_url,
            database_max_connections,
            public_url,
            sandbox: raw.bool("sandbox")?.unwrap_or(false),
            allow_http: raw.bool("allow_http")?.unwrap_or(false),
            tls,
            secure_cookies,
            trusted_proxies: raw
                .parse("trusted_proxies", crate::proxies::TrustedProxies::parse)?
                .unwrap_or_default(),
            keys,
            data_dir: raw
                .parse("data_dir", |v| Ok(PathBuf::from(v)))?
                .unwrap_or_else(|| PathBuf::from("data")),
            workers: raw.bool("workers")?.unwrap_or(true),
            worker_concurrency,
            job_retention_days,
            dead_job_retention_days,
            log_format,
            log_level: raw
                .get("log_level")
                .map(|(v, _)| v.clone())
                .unwrap_or_else(|| "info".into()),
            session_hours,
        })
    }

    /// Whether responses are served over HTTPS (here or at a proxy in front).
    pub fn https(&self) -> bool {
        self.tls.is_some() || self.public_url.scheme() == "https"
    }

    /// The checks `serve` makes before it starts: outside sandbox mode, tidepost is reached over
    /// HTTPS (its own TLS or a proxy's), unless plain HTTP is explicitly allowed.
    pub fn check_for_serve(&self) -> Result<(), ConfigError> {
        if !self.sandbox && !self.allow_http && !self.https() {
            return Err(ConfigError::Invalid {
                setting: "public_url",
                origin: "its value or default".into(),
                message: format!(
                    "{} is not https: set TIDEPOST_PUBLIC_URL=https://… behind a proxy, pass --tls-cert and --tls-key, \
                     or run with --sandbox to try tidepost locally",
                    self.public_url
                ),
            });
        }
        self.check_redirect_uris()
    }

    /// OAuth redirect URIs must be https outside sandbox mode (unless plain HTTP is allowed).
    fn check_redirect_uris(&self) -> Result<(), ConfigError> {
        let uris = [
            ("tiktok_redirect_uri", &self.tiktok.redirect_uri, "TikTok"),
            ("instagram_redirect_uri", &self.meta.redirect_uri, "Meta"),
            (
                "threads_redirect_uri",
                &self.threads.redirect_uri,
                "Threads",
            ),
        ];
        for (setting, redirect, provider) in uris {
            if !self.sandbox && !self.allow_http && !redirect.starts_with("https://") {
                return Err(ConfigError::Invalid {
                    setting,
                    origin: "its value or default".into(),
                    message: format!(
                        "{redirect} is not https: {provider} only redirects to https URLs"
                    ),
                });
            }
        }
        Ok(())
    }

    /// An absolute URL under the public URL (`path` starts with `/`).
    pub fn url(&self, path: &str) -> String {
        let base = self.public_url.as_str().trim_end_matches('/');
        format!("{base}{path}")
    }

    /// The keyring text, if configured inline.
    pub fn inline_keys(&self) -> Option<&str> {
        match &self.keys {
            KeySource::Inline(secret) => Some(secret.expose_secret()),
            KeySource::File(_) | KeySource::Unset => None,
        }
    }
}

/// The configuration reference in Markdown, generated from [`SETTINGS`].
pub fn reference_markdown() -> String {
    let mut out = String::from(
        "# Configuration reference\n\n\
         Generated from the code (`tidepost config reference`); do not edit by hand.\n\n\
         Each setting is read from its flag, then its environment variables, then `tidepost.toml` \
         (or the file named by `--config` / `TIDEPOST_CONFIG`), then its default.\n\n\
         | setting | flag | environment | default | meaning |\n|---|---|---|---|---|\n",
    );
    for s in SETTINGS {
        let env = s
            .env
            .iter()
            .map(|e| format!("`{e}`"))
            .collect::<Vec<_>>()
            .join(", ");
        let secret = if s.secret {
            " Secret: never printed."
        } else {
            ""
        };
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {}{} |\n",
            s.name,
            s.flag
                .map(|f| format!("`{f}`"))
                .unwrap_or_else(|| "-".into()),
            env,
            s.default
                .map(|d| format!("`{d}`"))
                .unwrap_or_else(|| "-".into()),
            s.doc,
            secret
        ));
    }
    out.push_str(EMULATOR_SECTION);
    out
}

/// How to point a `serve` without `--sandbox` at `tidepost emulator` run on its own.
const EMULATOR_SECTION: &str = "
## Pointing `serve` at a separately run emulator

`--sandbox` runs the provider emulator inside `serve` and points every provider setting at it.
To run it on its own instead (`tidepost emulator --listen 127.0.0.1:9000`) and point a `serve`
without `--sandbox` at it, each base URL must name the emulator's **prefix for that host**, not
its bare root (the bare root answers only an index; `GET /` on the emulator lists the values):

| setting | real host | value (emulator at `http://127.0.0.1:9000`) |
|---|---|---|
| `TIDEPOST_TIKTOK_AUTH_BASE_URL` | `https://www.tiktok.com` | `http://127.0.0.1:9000/tiktok/www` |
| `TIDEPOST_TIKTOK_API_BASE_URL` | `https://open.tiktokapis.com` | `http://127.0.0.1:9000/tiktok/open` |
| `TIDEPOST_FACEBOOK_WWW_BASE_URL` | `https://www.facebook.com` | `http://127.0.0.1:9000/meta/www` |
| `TIDEPOST_FACEBOOK_GRAPH_BASE_URL` | `https://graph.facebook.com` | `http://127.0.0.1:9000/meta/graph` |
| `TIDEPOST_INSTAGRAM_WWW_BASE_URL` | `https://www.instagram.com` | `http://127.0.0.1:9000/meta/instagram` |
| `TIDEPOST_INSTAGRAM_API_BASE_URL` | `https://api.instagram.com` | `http://127.0.0.1:9000/meta/ig-api` |
| `TIDEPOST_INSTAGRAM_GRAPH_BASE_URL` | `https://graph.instagram.com` | `http://127.0.0.1:9000/meta/ig-graph` |
| `TIDEPOST_THREADS_WWW_BASE_URL` | `https://threads.net` | `http://127.0.0.1:9000/threads/www` |
| `TIDEPOST_THREADS_GRAPH_BASE_URL` | `https://graph.threads.net` | `http://127.0.0.1:9000/threads/graph` |

The upload hosts need no setting: their URLs come in the providers' answers. The emulator's app
credentials go in `TIDEPOST_TIKTOK_CLIENT_KEY` / `_SECRET`, `TIDEPOST_FACEBOOK_APP_ID` /
`_SECRET`, `TIDEPOST_INSTAGRAM_APP_ID` / `_SECRET`, `TIDEPOST_INSTAGRAM_VERIFY_TOKEN` and
`TIDEPOST_THREADS_APP_ID` / `_SECRET`.
`tidepost emulator` prints every one of these lines, with its real address, when it starts,
ready to paste into the environment of `serve`. For webhooks, tell the emulator where tidepost
receives them: `PUT /_emulator/tiktok/settings` and `PUT /_emulator/meta/settings` with
`{\"webhook_url\": \"https://…/webhooks/tiktok\"}` (`…/webhooks/instagram`).
";

#[cfg(test)]
mod tests {
    use super::*;

    fn load(flags: &[(&'static str, String)], env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let env: BTreeMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let raw = RawSettings::gather(flags, |k| env.get(k).cloned(), None)?;
        Config::from_raw(&raw)
    }

    #[test]
    fn defaults() {
        let c = load(&[], &[]).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.database_url, "sqlite://tidepost.db");
        assert_eq!(c.public_url.as_str(), "http://127.0.0.1:8080/");
        assert!(!c.sandbox && c.workers && !c.secure_cookies);
    }

    #[test]
    fn flags_beat_environment_beat_defaults() {
        let c = load(
            &[("database_url", "sqlite://flag.db".into())],
            &[("DATABASE_URL", "sqlite://env.db")],
        )
        .unwrap();
        assert_eq!(c.database_url, "sqlite://flag.db");
        let c = load(
            &[],
            &[
                ("DATABASE_URL", "sqlite://env.db"),
                ("TIDEPOST_DATABASE_URL", "sqlite://tp.db"),
            ],
        )
        .unwrap();
        assert_eq!(c.database_url, "sqlite://tp.db");
    }

    #[test]
    fn errors_name_the_setting_and_origin() {
        let err = load(&[], &[("TIDEPOST_LISTEN", "nowhere")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid listen (from environment TIDEPOST_LISTEN): expected HOST:PORT such as 127.0.0.1:8080, got \"nowhere\""
        );
        let err = load(&[("sandbox", "maybe".into())], &[]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid sandbox (from flag --sandbox): expected true or false, got \"maybe\""
        );
        let err = load(&[], &[("DATABASE_URL", "mysql://x")]).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("invalid database_url (from environment DATABASE_URL)")
        );
        let err = load(&[("tls_cert", "c.pem".into())], &[]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "tls_key is required: tls_cert is set, give its key too"
        );
    }

    #[test]
    fn the_pool_size_is_the_backends_default_or_a_sane_number() {
        assert_eq!(load(&[], &[]).unwrap().database_max_connections, None);
        let env = [("TIDEPOST_DATABASE_MAX_CONNECTIONS", "12")];
        assert_eq!(load(&[], &env).unwrap().database_max_connections, Some(12));
        for bad in ["1", "0", "-3", "many", "5000"] {
            let env = [("TIDEPOST_DATABASE_MAX_CONNECTIONS", bad)];
            let err = load(&[], &env).unwrap_err().to_string();
            assert_eq!(
                err,
                format!(
                    "invalid database_max_connections (from environment \
                     TIDEPOST_DATABASE_MAX_CONNECTIONS): expected a whole number from 2 to \
                     1000, got {bad:?}"
                )
            );
        }
    }

    #[test]
    fn serve_refuses_plain_http_outside_sandbox() {
        let c = load(&[], &[]).unwrap();
        let err = c.check_for_serve().unwrap_err().to_string();
        assert!(err.contains("is not https"), "{err}");
        assert!(
            load(&[("sandbox", "true".into())], &[])
                .unwrap()
                .check_for_serve()
                .is_ok()
        );
        let https = load(&[], &[("TIDEPOST_PUBLIC_URL", "https://posts.example.com")]).unwrap();
        assert!(https.check_for_serve().is_ok());
        assert!(https.secure_cookies);
    }

    #[test]
    fn instagram_settings() {
        let c = load(&[], &[("TIDEPOST_PUBLIC_URL", "https://posts.example.com")]).unwrap();
        assert_eq!(
            c.meta.redirect_uri,
            "https://posts.example.com/oauth/instagram/callback"
        );
        assert_eq!(c.meta.graph_version, "v22.0");
        let c = load(
            &[],
            &[
                ("TIDEPOST_PUBLIC_URL", "https://posts.example.com"),
                ("INSTAGRAM_REDIRECT_URI", "http://posts.example.com/cb"),
                ("FACEBOOK_APP_ID", "123"),
            ],
        )
        .unwrap();
        assert_eq!(c.meta.facebook_app_id.as_deref(), Some("123"));
        let err = c.check_for_serve().unwrap_err().to_string();
        assert!(err.contains("instagram_redirect_uri"), "{err}");
        let err = load(&[], &[("TIDEPOST_META_GRAPH_VERSION", "22")]).unwrap_err();
        assert!(err.to_string().contains("meta_graph_version"), "{err}");
        let env = [
            ("FACEBOOK_APP_SECRET", "fb-secret-value"),
            ("INSTAGRAM_VERIFY_TOKEN", "vt-value"),
        ];
        let raw = RawSettings::gather(
            &[],
            |k| {
                env.iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            },
            None,
        )
        .unwrap();
        let shown = format!("{:?}", raw.describe());
        assert!(
            !shown.contains("fb-secret-value") && !shown.contains("vt-value"),
            "{shown}"
        );
    }

    #[test]
    fn secrets_and_passwords_are_masked() {
        let env = [
            ("TIDEPOST_KEYS", "k1:c2VjcmV0"),
            ("DATABASE_URL", "postgres://tp:hunter2@db/tp"),
        ];
        let raw = RawSettings::gather(
            &[],
            |k| {
                env.iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            },
            None,
        )
        .unwrap();
        let shown = format!("{:?}", raw.describe());
        assert!(
            !shown.contains("c2VjcmV0") && !shown.contains("hunter2"),
            "{shown}"
        );
        assert!(shown.contains("postgres://tp:****@db/tp"));
    }

    #[test]
    fn file_values_and_unknown_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tidepost.toml");
        std::fs::write(&path, "listen = \"0.0.0.0:9000\"\nworker_concurrency = 8\n").unwrap();
        let raw = RawSettings::gather(&[], |_| None, Some(&path)).unwrap();
        let c = Config::from_raw(&raw).unwrap();
        assert_eq!((c.listen.port(), c.worker_concurrency), (9000, 8));
        std::fs::write(&path, "lisen = \"x\"\n").unwrap();
        let err = RawSettings::gather(&[], |_| None, Some(&path))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("unknown setting \"lisen\" in "), "{err}");
    }
}
