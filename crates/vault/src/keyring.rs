//! The keyring and the envelope format.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use aes_gcm::aead::{AeadInOut, Generate, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use base64::Engine as _;
use base64::alphabet;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, URL_SAFE_NO_PAD};
use secrecy::{SecretBox, SecretString};
use zeroize::Zeroizing;

use crate::aad::{Aad, push_field};
use crate::error::{KeyringError, MalformedReason, VaultError};

/// Environment variable that holds the keyring text.
pub const KEYS_ENV_VAR: &str = "TIDEPOST_KEYS";

/// Envelope version prefix written by this build.
pub const ENVELOPE_VERSION: &str = "v1";

/// AES-256 key length in bytes.
pub const KEY_LEN: usize = 32;
/// AES-GCM nonce length in bytes (96 bits).
pub const NONCE_LEN: usize = 12;
/// AES-GCM tag length in bytes.
pub const TAG_LEN: usize = 16;
/// Longest key id.
pub const MAX_KEY_ID_LEN: usize = 32;

/// Domain separation for the associated data, so a vault ciphertext can never
/// be mistaken for another protocol's under the same key.
const AAD_DOMAIN: &[u8] = b"tidepost-vault";

/// Key material decoding: base64url (the documented form), padding optional.
const KEY_URL_SAFE: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);
/// Also accepted for key material: standard base64, as printed by
/// `openssl rand -base64 32`.
const KEY_STANDARD: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// One named AES-256-GCM key. The expanded key schedule is wiped on drop
/// (`aes-gcm`'s `zeroize` feature); the raw key bytes are never kept.
#[derive(Clone)]
struct VaultKey {
    id: String,
    cipher: Aes256Gcm,
}

/// The set of keys tidepost encrypts and decrypts secrets with.
///
/// Parsed from text of `<key-id>:<base64url key>` entries separated by commas
/// or newlines. **The first entry is the primary key**: every new encryption
/// uses it; every listed key can decrypt. To rotate, put a freshly generated
/// key ([`Keyring::generate_key_text`]) first, keep the old keys after it,
/// and run `tidepost keys rotate`, which re-encrypts each stored secret with
/// [`Keyring::reencrypt`]; once [`Keyring::needs_rotation`] is false for
/// every secret the old keys can be removed. Every running server must have
/// loaded the new keyring before `keys rotate` runs, or it will report
/// [`VaultError::UnknownKey`] for secrets already moved to the new key.
///
/// `Debug` and `Display` show key ids only.
#[derive(Clone)]
pub struct Keyring {
    /// Never empty; `keys[0]` is the primary key.
    keys: Vec<VaultKey>,
}

impl Keyring {
    /// Parses keyring text.
    ///
    /// Entries are `<key-id>:<key>` where the id is 1 to 32 characters from
    /// `[A-Za-z0-9_-]` and the key is 32 bytes in base64url without padding
    /// (padding and standard base64 are accepted too). Entries are separated
    /// by commas and/or newlines; surrounding whitespace and blank lines are
    /// ignored, and `#` starts a comment that runs to the end of the line.
    ///
    /// # Errors
    /// A [`KeyringError`] naming the offending entry by position (1-based,
    /// counting entries only), never quoting key material.
    pub fn parse(text: &str) -> Result<Self, KeyringError> {
        let mut keys: Vec<VaultKey> = Vec::new();
        let mut first_seen: HashMap<&str, usize> = HashMap::new();
        let mut position = 0;
        for line in text.lines() {
            let line = line.split_once('#').map_or(line, |(before, _)| before);
            for entry in line.split(',') {
                let entry = entry.trim();
                if entry.is_empty() {
                    continue;
                }
                position += 1;
                let (id, material) = entry
                    .split_once(':')
                    .ok_or(KeyringError::MalformedEntry { position })?;
                let (id, material) = (id.trim(), material.trim());
                if !is_valid_key_id(id) {
                    return Err(KeyringError::InvalidKeyId { position });
                }
                if let Some(&first_position) = first_seen.get(id) {
                    return Err(KeyringError::DuplicateKeyId {
                        position,
                        key_id: id.to_owned(),
                        first_position,
                    });
                }
                let cipher = decode_key(material).map_err(|e| match e {
                    KeyDecodeError::Base64 => KeyringError::BadBase64 {
                        position,
                        key_id: id.to_owned(),
                    },
                    KeyDecodeError::Length(len) => KeyringError::WrongKeyLength {
                        position,
                        key_id: id.to_owned(),
                        len,
                    },
                })?;
                first_seen.insert(id, position);
                keys.push(VaultKey {
                    id: id.to_owned(),
                    cipher,
                });
            }
        }
        if keys.is_empty() {
            return Err(KeyringError::Empty);
        }
        Ok(Self { keys })
    }

    /// Reads and parses a key file (same syntax as [`Keyring::parse`]).
    ///
    /// # Errors
    /// [`KeyringError::Io`] if the file cannot be read as UTF-8 text, or any
    /// parse error.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, KeyringError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map(Zeroizing::new)
            .map_err(|source| KeyringError::Io {
                path: path.to_owned(),
                source,
            })?;
        Self::parse(&text)
    }

    /// Reads and parses the [`KEYS_ENV_VAR`] (`TIDEPOST_KEYS`) environment
    /// variable.
    ///
    /// # Errors
    /// [`KeyringError::EnvMissing`] / [`KeyringError::EnvNotUnicode`], or any
    /// parse error.
    pub fn from_env() -> Result<Self, KeyringError> {
        Self::from_env_var(KEYS_ENV_VAR)
    }

    /// Reads and parses the keyring from environment variable `var`.
    ///
    /// # Errors
    /// As [`Keyring::from_env`].
    pub fn from_env_var(var: &str) -> Result<Self, KeyringError> {
        let text = match std::env::var(var) {
            Ok(text) => Zeroizing::new(text),
            Err(std::env::VarError::NotPresent) => {
                return Err(KeyringError::EnvMissing {
                    var: var.to_owned(),
                });
            }
            Err(std::env::VarError::NotUnicode(_)) => {
                return Err(KeyringError::EnvNotUnicode {
                    var: var.to_owned(),
                });
            }
        };
        Self::parse(&text)
    }

    /// A new keyring entry: `k<YYYYMMDD>t<HHMM>-<6 hex>:<base64url key>`,
    /// e.g. `k20261125t0036-3fa9c1:…`, with 32 bytes from the OS random
    /// generator and an id from the current UTC time plus a random suffix.
    ///
    /// # Panics
    /// If the operating system's random generator fails.
    #[must_use]
    pub fn generate_key_text() -> SecretString {
        let key = Zeroizing::new(<[u8; KEY_LEN]>::generate());
        let suffix = <[u8; 3]>::generate();
        let id = format!(
            "k{}-{:02x}{:02x}{:02x}",
            jiff::Timestamp::now().strftime("%Y%m%dt%H%M"),
            suffix[0],
            suffix[1],
            suffix[2]
        );
        debug_assert!(is_valid_key_id(&id));
        // Exact capacity, so the text is never reallocated (leaving a copy
        // behind) on its way into the secret box.
        let mut text = String::with_capacity(id.len() + 1 + base64_len(KEY_LEN));
        text.push_str(&id);
        text.push(':');
        URL_SAFE_NO_PAD.encode_string(key.as_slice(), &mut text);
        SecretString::from(text)
    }

    /// The id of the primary key, the one new envelopes are encrypted with.
    #[must_use]
    pub fn primary_key_id(&self) -> &str {
        &self.keys[0].id
    }

    /// All key ids, primary first.
    pub fn key_ids(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        self.keys.iter().map(|k| k.id.as_str())
    }

    /// Whether a key with this id is in the keyring.
    #[must_use]
    pub fn contains_key(&self, key_id: &str) -> bool {
        self.key(key_id).is_some()
    }

    /// Encrypts `plaintext` for the location `aad` under the primary key.
    ///
    /// Returns the envelope `v1.<key-id>.<base64url(nonce ‖ ciphertext ‖ tag)>`
    /// (ASCII, no padding, safe for a TEXT column). The 96-bit nonce is fresh
    /// from the OS random generator on every call, so encrypting the same
    /// plaintext twice gives different envelopes.
    ///
    /// # Panics
    /// If the operating system's random generator fails, or the plaintext
    /// exceeds AES-GCM's limit of 64 GiB.
    #[must_use]
    pub fn encrypt(&self, plaintext: &[u8], aad: &Aad<'_>) -> String {
        let key = &self.keys[0];
        let nonce = Nonce::generate();
        let associated = associated_data(&key.id, aad);

        let mut payload = Vec::with_capacity(NONCE_LEN + plaintext.len() + TAG_LEN);
        payload.extend_from_slice(&nonce);
        payload.extend_from_slice(plaintext);
        let tag = key
            .cipher
            .encrypt_inout_detached(&nonce, &associated, payload[NONCE_LEN..].as_mut().into())
            .expect("plaintext and associated data are within AES-GCM limits");
        payload.extend_from_slice(&tag);

        let mut envelope = String::with_capacity(
            ENVELOPE_VERSION.len() + 1 + key.id.len() + 1 + base64_len(payload.len()),
        );
        envelope.push_str(ENVELOPE_VERSION);
        envelope.push('.');
        envelope.push_str(&key.id);
        envelope.push('.');
        URL_SAFE_NO_PAD.encode_string(&payload, &mut envelope);
        envelope
    }

    /// [`Keyring::encrypt`] for a text secret.
    ///
    /// # Panics
    /// As [`Keyring::encrypt`].
    #[must_use]
    pub fn encrypt_str(&self, plaintext: &str, aad: &Aad<'_>) -> String {
        self.encrypt(plaintext.as_bytes(), aad)
    }

    /// Decrypts an envelope stored at the location `aad`, with whichever key
    /// of the keyring its header names.
    ///
    /// # Errors
    /// - [`VaultError::Malformed`]: not a `v1` envelope, bad base64, too short;
    /// - [`VaultError::UnknownKey`]: its key is not in the keyring;
    /// - [`VaultError::Decrypt`]: authentication failed (wrong key material,
    ///   tampered envelope, or an envelope from another table/row/column).
    pub fn decrypt(&self, envelope: &str, aad: &Aad<'_>) -> Result<SecretBox<[u8]>, VaultError> {
        let header = parse_envelope(envelope)?;
        let key = self
            .key(header.key_id)
            .ok_or_else(|| VaultError::UnknownKey {
                key_id: header.key_id.to_owned(),
            })?;

        let mut payload = decode_payload(header.payload)?;
        let tag_start = payload.len() - TAG_LEN;
        let (nonce_and_text, tag) = payload.split_at_mut(tag_start);
        let (nonce, text) = nonce_and_text.split_at_mut(NONCE_LEN);
        let nonce = Nonce::try_from(&*nonce).expect("split at the nonce length");
        let tag = Tag::try_from(&*tag).expect("split at the tag length");

        // The tag is verified before anything is decrypted, so on failure
        // `text` still holds ciphertext.
        key.cipher
            .decrypt_inout_detached(&nonce, &associated_data(&key.id, aad), text.into(), &tag)
            .map_err(|_| VaultError::Decrypt {
                key_id: key.id.clone(),
            })?;
        // Copy to an exact-size box; `payload` is wiped when dropped.
        Ok(SecretBox::new(Box::<[u8]>::from(&*text)))
    }

    /// [`Keyring::decrypt`] for a text secret.
    ///
    /// # Errors
    /// As [`Keyring::decrypt`], plus [`VaultError::NotUtf8`].
    pub fn decrypt_str(&self, envelope: &str, aad: &Aad<'_>) -> Result<SecretString, VaultError> {
        use secrecy::ExposeSecret as _;
        let bytes = self.decrypt(envelope, aad)?;
        let text = std::str::from_utf8(bytes.expose_secret()).map_err(|_| VaultError::NotUtf8)?;
        Ok(SecretString::from(Box::<str>::from(text)))
    }

    /// Whether an envelope should be re-encrypted by `keys rotate`: true
    /// unless it is a well-formed `v1` envelope under the primary key. Only
    /// the structure is checked, nothing is decrypted. (A malformed value
    /// reports true so that rotation surfaces it as an error from
    /// [`Keyring::reencrypt`] rather than skipping it silently.)
    #[must_use]
    pub fn needs_rotation(&self, envelope: &str) -> bool {
        match parse_envelope(envelope) {
            Ok(header) => {
                header.key_id != self.primary_key_id() || decode_payload(header.payload).is_err()
            }
            Err(_) => true,
        }
    }

    /// Decrypts an envelope with whichever key it names and encrypts the
    /// plaintext again under the primary key, for the same location. The
    /// plaintext never leaves the vault.
    ///
    /// # Errors
    /// As [`Keyring::decrypt`]; the stored value should then be left as is.
    ///
    /// # Panics
    /// As [`Keyring::encrypt`].
    pub fn reencrypt(&self, envelope: &str, aad: &Aad<'_>) -> Result<String, VaultError> {
        use secrecy::ExposeSecret as _;
        let plaintext = self.decrypt(envelope, aad)?;
        Ok(self.encrypt(plaintext.expose_secret(), aad))
    }

    fn key(&self, key_id: &str) -> Option<&VaultKey> {
        self.keys.iter().find(|k| k.id == key_id)
    }
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("primary", &self.primary_key_id())
            .field("key_ids", &self.key_ids().collect::<Vec<_>>())
            .finish()
    }
}

impl fmt::Display for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("keyring [")?;
        for (i, id) in self.key_ids().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(id)?;
            if i == 0 {
                f.write_str(" (primary)")?;
            }
        }
        f.write_str("]")
    }
}

/// The id of the key an envelope was encrypted with, read from its header
/// (nothing is decrypted). Useful to count secrets per key.
///
/// # Errors
/// [`VaultError::Malformed`] if the header is not `v1.<valid key id>.…`.
pub fn envelope_key_id(envelope: &str) -> Result<&str, VaultError> {
    parse_envelope(envelope).map(|h| h.key_id)
}

/// Whether `id` is 1 to 32 characters from `[A-Za-z0-9_-]`.
#[must_use]
pub fn is_valid_key_id(id: &str) -> bool {
    (1..=MAX_KEY_ID_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

struct EnvelopeHeader<'a> {
    key_id: &'a str,
    payload: &'a str,
}

fn parse_envelope(envelope: &str) -> Result<EnvelopeHeader<'_>, VaultError> {
    let mut parts = envelope.split('.');
    let (Some(version), Some(key_id), Some(payload), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed(MalformedReason::NotAnEnvelope));
    };
    if version != ENVELOPE_VERSION {
        return Err(malformed(MalformedReason::UnsupportedVersion));
    }
    if !is_valid_key_id(key_id) {
        return Err(malformed(MalformedReason::InvalidKeyId));
    }
    Ok(EnvelopeHeader { key_id, payload })
}

/// Decodes an envelope payload, which must hold at least a nonce and a tag.
/// Wiped on drop, since it is decrypted in place.
fn decode_payload(payload: &str) -> Result<Zeroizing<Vec<u8>>, VaultError> {
    let bytes = Zeroizing::new(
        URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| malformed(MalformedReason::BadBase64))?,
    );
    if bytes.len() < NONCE_LEN + TAG_LEN {
        return Err(malformed(MalformedReason::TooShort));
    }
    Ok(bytes)
}

fn malformed(reason: MalformedReason) -> VaultError {
    VaultError::Malformed { reason }
}

/// The bytes authenticated with each ciphertext: a domain tag, the envelope
/// version and key id (so the header cannot be altered), then the location.
/// Every field is length-prefixed, so the encoding is unambiguous.
fn associated_data(key_id: &str, aad: &Aad<'_>) -> Vec<u8> {
    let mut out = Vec::with_capacity(
        5 * 8
            + AAD_DOMAIN.len()
            + ENVELOPE_VERSION.len()
            + key_id.len()
            + aad.table.len()
            + aad.row.len()
            + aad.column.len(),
    );
    push_field(&mut out, AAD_DOMAIN);
    push_field(&mut out, ENVELOPE_VERSION.as_bytes());
    push_field(&mut out, key_id.as_bytes());
    aad.encode_into(&mut out);
    out
}

enum KeyDecodeError {
    Base64,
    Length(usize),
}

fn decode_key(material: &str) -> Result<Aes256Gcm, KeyDecodeError> {
    // Decoded output is never longer than the input; decode into a buffer we
    // wipe ourselves so no copy of the key outlives this function.
    let mut buf = Zeroizing::new(vec![0u8; material.len()]);
    let len = KEY_URL_SAFE
        .decode_slice(material, &mut buf[..])
        .or_else(|_| KEY_STANDARD.decode_slice(material, &mut buf[..]))
        .map_err(|_| KeyDecodeError::Base64)?;
    if len != KEY_LEN {
        return Err(KeyDecodeError::Length(len));
    }
    Aes256Gcm::new_from_slice(&buf[..KEY_LEN]).map_err(|_| KeyDecodeError::Length(len))
}

/// Length of unpadded base64 for `n` bytes.
const fn base64_len(n: usize) -> usize {
    (n * 4).div_ceil(3)
}
