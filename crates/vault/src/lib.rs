//! tidepost-vault: AES-256-GCM encryption of every secret tidepost stores
//! (provider OAuth tokens, webhook secrets), with a keyring and key rotation.
//!
//! ```
//! use secrecy::ExposeSecret;
//! use tidepost_vault::{Aad, Keyring, VaultError};
//!
//! let entry = Keyring::generate_key_text();
//! let keyring = Keyring::parse(entry.expose_secret())?;
//!
//! let aad = Aad::new("provider_accounts", "42", "access_token");
//! let stored = keyring.encrypt_str("ya29.secret-token", &aad);
//! assert!(stored.starts_with("v1."));
//! assert_eq!(keyring.decrypt_str(&stored, &aad)?.expose_secret(), "ya29.secret-token");
//!
//! // The same envelope copied to another row does not decrypt.
//! let other = Aad::new("provider_accounts", "43", "access_token");
//! assert!(matches!(keyring.decrypt(&stored, &other), Err(VaultError::Decrypt { .. })));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Envelope
//! `v1.<key-id>.<base64url-no-pad(nonce[12] ‖ ciphertext ‖ tag[16])>`. The
//! associated data authenticated with the ciphertext is the length-prefixed
//! sequence `"tidepost-vault"`, `"v1"`, key id, table, row, column (each as
//! an 8-byte big-endian length then the bytes).
//!
//! # Keyring text
//! `<key-id>:<base64url 32-byte key>` entries separated by commas or
//! newlines, `#` comments and blank lines allowed; the **first entry is the
//! primary** (newest) key, which encrypts; all entries decrypt.

mod aad;
mod error;
mod keyring;

pub use aad::Aad;
pub use error::{KeyringError, MalformedReason, VaultError};
pub use keyring::{
    ENVELOPE_VERSION, KEY_LEN, KEYS_ENV_VAR, Keyring, MAX_KEY_ID_LEN, NONCE_LEN, TAG_LEN,
    envelope_key_id, is_valid_key_id,
};
/// Re-exported so callers name the same `secrecy` version.
pub use secrecy;
