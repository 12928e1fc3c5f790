//! Error types. No message ever contains key material or secret plaintext:
//! keyring errors name entries by position (and by id once the id is known to
//! be well formed), vault errors name only the key id of an envelope.

use std::path::PathBuf;

/// Why a keyring (from `TIDEPOST_KEYS` or a key file) was rejected.
///
/// Entries are numbered from 1 in keyring order (blank lines and comments are
/// not counted), so entry 1 is always the primary key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyringError {
    /// The text held no entries at all.
    #[error(
        "keyring is empty: expected at least one `<key-id>:<base64url-key>` entry, \
         newest (primary) first"
    )]
    Empty,

    /// An entry without a `:` separating the id from the key.
    #[error("keyring entry {position}: expected `<key-id>:<base64url-key>`")]
    MalformedEntry {
        /// 1-based entry number.
        position: usize,
    },

    /// The id part is empty, too long or uses other characters. The id is not
    /// repeated, in case the entry was pasted the wrong way round.
    #[error(
        "keyring entry {position}: key id must be 1 to 32 characters from \
         A-Z, a-z, 0-9, `_` and `-`"
    )]
    InvalidKeyId {
        /// 1-based entry number.
        position: usize,
    },

    /// The key part is not base64url (nor standard base64).
    #[error("keyring entry {position} (`{key_id}`): key is not valid base64url")]
    BadBase64 {
        /// 1-based entry number.
        position: usize,
        /// The entry's (well-formed) key id.
        key_id: String,
    },

    /// The key decodes to something other than 32 bytes.
    #[error(
        "keyring entry {position} (`{key_id}`): key must decode to 32 bytes \
         for AES-256, got {len}"
    )]
    WrongKeyLength {
        /// 1-based entry number.
        position: usize,
        /// The entry's (well-formed) key id.
        key_id: String,
        /// The decoded length in bytes.
        len: usize,
    },

    /// Two entries share an id, so an envelope's key would be ambiguous.
    #[error(
        "keyring entry {position}: duplicate key id `{key_id}` \
         (already used by entry {first_position})"
    )]
    DuplicateKeyId {
        /// 1-based entry number of the second occurrence.
        position: usize,
        /// The repeated id.
        key_id: String,
        /// 1-based entry number of the first occurrence.
        first_position: usize,
    },

    /// The environment variable is not set.
    #[error("{var} is not set: it must hold the keyring (`<key-id>:<base64url-key>` entries)")]
    EnvMissing {
        /// The variable's name.
        var: String,
    },

    /// The environment variable holds bytes that are not UTF-8.
    #[error("{var} is not valid UTF-8")]
    EnvNotUnicode {
        /// The variable's name.
        var: String,
    },

    /// The key file could not be read.
    #[error("cannot read key file {}: {source}", path.display())]
    Io {
        /// The key file's path.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

/// Why a stored secret could not be decrypted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VaultError {
    /// The stored text is not a vault envelope this version understands.
    #[error("stored secret is not a valid vault envelope: {reason}")]
    Malformed {
        /// What is wrong, without repeating the stored text.
        reason: MalformedReason,
    },

    /// The envelope names a key that is not in the keyring.
    #[error(
        "stored secret is encrypted with key `{key_id}`, which is not in the keyring: \
         add that key back (after the primary key) to decrypt it, then run \
         `tidepost keys rotate`"
    )]
    UnknownKey {
        /// The id named by the envelope.
        key_id: String,
    },

    /// Authentication failed: the key with this id is not the one that
    /// encrypted the secret, the envelope was altered, or the envelope was
    /// copied from another table, row or column.
    #[error(
        "stored secret failed authentication under key `{key_id}`: wrong key material \
         for that id, tampered ciphertext, or a ciphertext that belongs to a different \
         table, row or column"
    )]
    Decrypt {
        /// The id named by the envelope.
        key_id: String,
    },

    /// The secret decrypted but is not UTF-8 (only from the `_str` methods).
    #[error("decrypted secret is not valid UTF-8")]
    NotUtf8,
}

/// The specific way an envelope is malformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MalformedReason {
    /// Not three `.`-separated parts.
    #[error("expected `v1.<key-id>.<payload>`")]
    NotAnEnvelope,
    /// The first part is not `v1`.
    #[error("unsupported envelope version (this build reads `v1`)")]
    UnsupportedVersion,
    /// The key id part breaks the id rules.
    #[error("invalid key id")]
    InvalidKeyId,
    /// The payload is not base64url without padding.
    #[error("payload is not valid base64url")]
    BadBase64,
    /// The payload is shorter than a nonce plus a tag.
    #[error("payload is too short to hold a nonce and an authentication tag")]
    TooShort,
}
