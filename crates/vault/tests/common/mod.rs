#![allow(dead_code)]

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The key material text for 32 bytes of `byte`.
pub fn material(byte: u8) -> String {
    URL_SAFE_NO_PAD.encode([byte; 32])
}

/// A keyring entry `id:<32 bytes of byte>`.
pub fn entry(id: &str, byte: u8) -> String {
    format!("{id}:{}", material(byte))
}
