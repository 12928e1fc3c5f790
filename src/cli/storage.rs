//! `tidepost storage check` and `tidepost storage migrate`.

use std::path::PathBuf;

use tidepost_app::Config;
use tidepost_app::config::RawSettings;
use tidepost_app::media::{S3Settings, S3Storage};

use super::Failure;

/// Tries every permission the configured storage needs (list, write, read, delete); one line
/// either way, non-zero exit naming what is missing.
pub async fn check(config: Config) -> Result<(), Failure> {
    let storage = &config.media.storage;
    match storage.check().await {
        Ok(()) => {
            println!(
                "{}: reachable; list, write, read and delete allowed.",
                storage.describe()
            );
            Ok(())
        }
        Err(reason) => Err(Failure::Runtime(reason)),
    }
}

/// Copies the local media folder (`from`, default `media_dir`) into the configured bucket,
/// verifying hashes; resumable.
pub async fn migrate(
    raw: &RawSettings,
    config: Config,
    from: Option<PathBuf>,
) -> Result<(), Failure> {
    let storage = raw
        .get("storage")
        .map(|(v, _)| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    if storage != "s3" {
        return Err(Failure::Usage(
            "storage migrate copies the local media folder into the bucket: set storage to s3 (TIDEPOST_STORAGE=s3) and the s3_* settings".into(),
        ));
    }
    let to = S3Storage::new(S3Settings::from_raw(raw)?).map_err(Failure::Usage)?;
    let from = from.unwrap_or_else(|| config.media.dir.clone());
    to.check().await.map_err(Failure::Runtime)?;
    let report = tidepost_app::media::s3::migrate(&from, &to, |name, what| {
        println!("{name}: {what}");
    })
    .await
    .map_err(|e| Failure::Runtime(format!("cannot read {}: {e}", from.display())))?;
    println!(
        "{} copied, {} already in {}, {} failed.",
        report.copied,
        report.present,
        to.settings().describe(),
        report.failed.len()
    );
    if report.failed.is_empty() {
        Ok(())
    } else {
        Err(Failure::Runtime(format!(
            "{} file(s) were not copied (see above); run `tidepost storage migrate` again once fixed",
            report.failed.len()
        )))
    }
}
