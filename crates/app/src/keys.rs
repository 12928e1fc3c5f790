//! Loading the keyring that encrypts secrets at rest, from the configuration.

use std::path::PathBuf;

use secrecy::ExposeSecret;
use tidepost_vault::Keyring;

use crate::config::{Config, ConfigError, KeySource};

/// Where sandbox mode keeps the key it generates on first start.
pub fn sandbox_key_file(config: &Config) -> PathBuf {
    config.data_dir.join("sandbox.keys")
}

/// The configured keyring. In sandbox mode with no keys configured, a key file is generated
/// in the data folder on first start (and reused afterwards) so a fresh machine needs no setup.
pub fn load_keyring(config: &Config) -> Result<Keyring, ConfigError> {
    let invalid = |setting: &'static str, origin: String| {
        move |e: tidepost_vault::KeyringError| ConfigError::Invalid {
            setting,
            origin,
            message: e.to_string(),
        }
    };
    match &config.keys {
        KeySource::Inline(text) => Keyring::parse(text.expose_secret()).map_err(invalid("keys", "TIDEPOST_KEYS".into())),
        KeySource::File(path) => Keyring::from_file(path).map_err(invalid("key_file", path.display().to_string())),
        KeySource::Unset if config.sandbox => {
            let path = sandbox_key_file(config);
            if !path.exists() {
                write_new_key_file(&path).map_err(|message| ConfigError::Invalid {
                    setting: "data_dir",
                    origin: config.data_dir.display().to_string(),
                    message,
                })?;
            }
            Keyring::from_file(&path).map_err(invalid("key_file", path.display().to_string()))
        }
        KeySource::Unset => Err(ConfigError::Missing {
            setting: "keys",
            message: "set TIDEPOST_KEYS or TIDEPOST_KEY_FILE to a keyring (make one with `tidepost keys generate`)".into(),
        }),
    }
}

fn write_new_key_file(path: &std::path::Path) -> Result<(), String> {
    use std::io::Write;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    let entry = Keyring::generate_key_text();
    writeln!(
        file,
        "# tidepost sandbox keyring, generated on first start. Newest key first."
    )
    .and_then(|_| writeln!(file, "{}", entry.expose_secret()))
    .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RawSettings;

    fn config(env: &[(&str, String)]) -> Config {
        let raw = RawSettings::gather(
            &[],
            |k| env.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone()),
            None,
        )
        .unwrap();
        Config::from_raw(&raw).unwrap()
    }

    #[test]
    fn sandbox_generates_and_reuses_a_key_file() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data").display().to_string();
        let c = config(&[
            ("TIDEPOST_SANDBOX", "true".into()),
            ("TIDEPOST_DATA_DIR", data),
        ]);
        let first = load_keyring(&c).unwrap();
        let second = load_keyring(&c).unwrap();
        assert_eq!(first.primary_key_id(), second.primary_key_id());
    }

    #[test]
    fn missing_and_bad_keys_are_clear() {
        let err = load_keyring(&config(&[])).unwrap_err().to_string();
        assert!(
            err.starts_with("keys is required: set TIDEPOST_KEYS"),
            "{err}"
        );
        let err = load_keyring(&config(&[("TIDEPOST_KEYS", "k1:short".into())]))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("invalid keys (from TIDEPOST_KEYS): keyring entry 1"),
            "{err}"
        );
        assert!(!err.contains("short"), "{err}");
    }
}
