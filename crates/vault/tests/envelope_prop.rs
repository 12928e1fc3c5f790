//! The envelope parser under attack: what a stolen-then-edited database could hand to
//! [`Keyring::decrypt`]. `properties.rs` covers round trips, bit flips and rotation; this file
//! covers the parser's edges — every truncation and extension of a real envelope, payloads of
//! every length around the nonce + tag minimum, base64 variants (padding, the standard alphabet,
//! trailing bits), lookalike headers — and that no error message repeats what it was given.
//!
//! cargo-fuzz needs a nightly toolchain the build machines cannot fetch, so these are proptest
//! properties with a fixed case budget (`CASES`), run by `cargo test`.

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
use common::entry;
use proptest::prelude::*;
use secrecy::ExposeSecret;
use tidepost_vault::{Aad, Keyring, MalformedReason, VaultError, envelope_key_id};

const CASES: u32 = 256;
/// Nonce (12) + tag (16): the shortest payload that can be an envelope.
const MIN_PAYLOAD: usize = 28;

fn keyring() -> Keyring {
    Keyring::parse(&format!("{},{}", entry("k1", 1), entry("k0", 2))).unwrap()
}

fn loc() -> Aad<'static> {
    Aad::new("provider_accounts", "0190-row", "access_token")
}

/// Every answer to a hostile envelope: an error, never a panic, and an error whose text repeats
/// neither the envelope's payload nor (when it decrypted under `decrypt_str`) anything else.
fn refused(k: &Keyring, envelope: &str) -> VaultError {
    let _ = k.needs_rotation(envelope);
    let _ = envelope_key_id(envelope);
    let err = match k.decrypt(envelope, &loc()) {
        Ok(plain) => panic!(
            "{envelope:?} decrypted to {} bytes",
            plain.expose_secret().len()
        ),
        Err(err) => err,
    };
    assert!(k.decrypt_str(envelope, &loc()).is_err());
    assert!(k.reencrypt(envelope, &loc()).is_err());
    let message = err.to_string();
    if let Some((_, payload)) = envelope.rsplit_once('.')
        && payload.len() >= 8
    {
        assert!(
            !message.contains(payload),
            "the error quotes the payload: {message}"
        );
    }
    err
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn every_truncation_of_a_real_envelope_is_refused(plain in prop::collection::vec(any::<u8>(), 0..64)) {
        let k = keyring();
        let envelope = k.encrypt(&plain, &loc());
        for cut in 0..envelope.len() {
            refused(&k, &envelope[..cut]);
        }
    }

    #[test]
    fn any_extension_of_a_real_envelope_is_refused(
        plain in prop::collection::vec(any::<u8>(), 0..64),
        tail in "[A-Za-z0-9_=.+/ -]{1,8}",
    ) {
        let k = keyring();
        let envelope = k.encrypt(&plain, &loc());
        refused(&k, &format!("{envelope}{tail}"));
        refused(&k, &format!("{tail}{envelope}"));
    }

    #[test]
    fn random_payloads_of_every_length_never_decrypt(payload in prop::collection::vec(any::<u8>(), 0..(MIN_PAYLOAD * 3))) {
        let k = keyring();
        let envelope = format!("v1.k1.{}", URL_SAFE_NO_PAD.encode(&payload));
        let err = refused(&k, &envelope);
        if payload.len() < MIN_PAYLOAD {
            prop_assert!(
                matches!(err, VaultError::Malformed { reason: MalformedReason::TooShort }),
                "{:?}", err
            );
        } else {
            prop_assert!(matches!(err, VaultError::Decrypt { ref key_id } if key_id == "k1"), "{:?}", err);
        }
    }

    #[test]
    fn other_base64_spellings_of_a_real_payload_are_refused(plain in prop::collection::vec(any::<u8>(), 0..64)) {
        // Only one spelling of a payload is accepted (base64url without padding); a padded or
        // standard-alphabet copy is not a second valid form of the same secret.
        let k = keyring();
        let envelope = k.encrypt(&plain, &loc());
        let (head, payload) = envelope.rsplit_once('.').unwrap();
        let bytes = URL_SAFE_NO_PAD.decode(payload).unwrap();
        for other in [URL_SAFE.encode(&bytes), STANDARD.encode(&bytes)] {
            if other != payload {
                refused(&k, &format!("{head}.{other}"));
            }
        }
    }

    #[test]
    fn lookalike_headers_are_refused(
        version in prop::sample::select(vec!["v1", "V1", "v2", "v0", "", "v1 ", " v1"]),
        key_id in prop_oneof![
            prop::sample::select(vec!["k1", "K1", "k1 ", "", "k2"]).prop_map(String::from),
            "[A-Za-z0-9_-]{33,40}",
            ".{0,6}",
        ],
        plain in prop::collection::vec(any::<u8>(), 0..32),
    ) {
        prop_assume!(!(version == "v1" && (key_id == "k1" || key_id == "k0")));
        let k = keyring();
        let envelope = k.encrypt(&plain, &loc());
        let payload = envelope.rsplit_once('.').unwrap().1;
        refused(&k, &format!("{version}.{key_id}.{payload}"));
    }

    #[test]
    fn an_envelope_relabelled_with_the_other_key_id_is_refused(plain in prop::collection::vec(any::<u8>(), 0..64)) {
        // The key id is authenticated: naming the other key of the ring does not decrypt (and
        // does not reveal which key really sealed it).
        let k = keyring();
        let envelope = k.encrypt(&plain, &loc());
        let relabelled = envelope.replacen("v1.k1.", "v1.k0.", 1);
        let err = refused(&k, &relabelled);
        prop_assert!(matches!(err, VaultError::Decrypt { ref key_id } if key_id == "k0"), "{:?}", err);
    }

    #[test]
    fn arbitrary_text_never_panics_anywhere(text in "\\PC{0,120}") {
        let k = keyring();
        refused(&k, &text);
        refused(&k, &format!("v1.k1.{text}"));
    }

    #[test]
    fn a_payload_swapped_between_rows_is_refused(
        a in prop::collection::vec(any::<u8>(), 0..64),
        row in "[0-9a-f-]{1,36}",
    ) {
        prop_assume!(row != "0190-row");
        let k = keyring();
        let elsewhere = k.encrypt(&a, &Aad::new("provider_accounts", &row, "access_token"));
        let err = refused(&k, &elsewhere);
        prop_assert!(matches!(err, VaultError::Decrypt { .. }), "{:?}", err);
    }
}

#[test]
fn the_shortest_payload_is_refused_by_authentication_not_by_length() {
    let k = keyring();
    let zeros = format!("v1.k1.{}", URL_SAFE_NO_PAD.encode([0u8; MIN_PAYLOAD]));
    assert!(matches!(refused(&k, &zeros), VaultError::Decrypt { .. }));
    let short = format!("v1.k1.{}", URL_SAFE_NO_PAD.encode([0u8; MIN_PAYLOAD - 1]));
    assert!(matches!(
        refused(&k, &short),
        VaultError::Malformed {
            reason: MalformedReason::TooShort
        }
    ));
}

#[test]
fn an_empty_plaintext_round_trips_and_its_envelope_is_exactly_nonce_and_tag() {
    let k = keyring();
    let envelope = k.encrypt(b"", &loc());
    let payload = URL_SAFE_NO_PAD
        .decode(envelope.rsplit_once('.').unwrap().1)
        .unwrap();
    assert_eq!(payload.len(), MIN_PAYLOAD);
    assert!(
        k.decrypt(&envelope, &loc())
            .unwrap()
            .expose_secret()
            .is_empty()
    );
}
