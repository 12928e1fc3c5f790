//! Property tests: round trip, tamper, wrong associated data, rotation.

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::entry;
use proptest::prelude::*;
use secrecy::ExposeSecret;
use tidepost_vault::{Aad, Keyring, VaultError, envelope_key_id};

fn ring(text: &str) -> Keyring {
    Keyring::parse(text).expect("valid keyring")
}

/// Decrypts and copies the plaintext out (test only).
fn open(k: &Keyring, envelope: &str, aad: &Aad<'_>) -> Vec<u8> {
    k.decrypt(envelope, aad).unwrap().expose_secret().to_vec()
}

fn plaintexts() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..300)
}

/// Arbitrary (table, row, column), including empty fields, separators and
/// non-ASCII text.
fn locations() -> impl Strategy<Value = (String, String, String)> {
    let field = || prop_oneof![".{0,12}", "[a-z:_.\\[\\]]{0,6}", Just(String::new())];
    (field(), field(), field())
}

fn aad(l: &(String, String, String)) -> Aad<'_> {
    Aad::new(&l.0, &l.1, &l.2)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn round_trip(plain in plaintexts(), loc in locations(), key in any::<u8>()) {
        let k = ring(&entry("k1", key));
        let env = k.encrypt(&plain, &aad(&loc));
        prop_assert_eq!(envelope_key_id(&env).unwrap(), "k1");
        let out = k.decrypt(&env, &aad(&loc)).unwrap();
        prop_assert_eq!(out.expose_secret(), &plain[..]);
    }

    #[test]
    fn round_trip_text(plain in ".{0,80}", loc in locations()) {
        let k = ring(&entry("k1", 1));
        let env = k.encrypt_str(&plain, &aad(&loc));
        let out = k.decrypt_str(&env, &aad(&loc)).unwrap();
        prop_assert_eq!(out.expose_secret(), plain.as_str());
    }

    #[test]
    fn any_single_bit_flip_of_the_payload_fails_with_decrypt(
        plain in plaintexts(),
        bit in any::<prop::sample::Index>(),
    ) {
        let k = ring(&entry("k1", 1));
        let loc = Aad::new("t", "r", "c");
        let env = k.encrypt(&plain, &loc);
        let (head, payload) = env.rsplit_once('.').unwrap();
        let mut bytes = URL_SAFE_NO_PAD.decode(payload).unwrap();
        let bit = bit.index(bytes.len() * 8);
        bytes[bit / 8] ^= 1 << (bit % 8);
        let tampered = format!("{head}.{}", URL_SAFE_NO_PAD.encode(&bytes));
        let err = k.decrypt(&tampered, &loc).unwrap_err();
        prop_assert!(matches!(err, VaultError::Decrypt { .. }), "{:?}", err);
    }

    #[test]
    fn any_single_character_change_of_the_envelope_is_rejected(
        plain in plaintexts(),
        at in any::<prop::sample::Index>(),
        replacement in proptest::char::range('!', '~'),
    ) {
        let k = ring(&format!("{},{}", entry("k1", 1), entry("k2", 2)));
        let loc = Aad::new("t", "r", "c");
        let env = k.encrypt(&plain, &loc);
        let at = at.index(env.len());
        prop_assume!(env.as_bytes()[at] != replacement as u8);
        let mut changed = env.clone().into_bytes();
        changed[at] = replacement as u8;
        let changed = String::from_utf8(changed).unwrap();
        prop_assert!(k.decrypt(&changed, &loc).is_err());
    }

    #[test]
    fn a_different_table_row_or_column_fails_with_decrypt(
        plain in plaintexts(),
        a in locations(),
        b in locations(),
    ) {
        prop_assume!(a != b);
        let k = ring(&entry("k1", 1));
        let env = k.encrypt(&plain, &aad(&a));
        let err = k.decrypt(&env, &aad(&b)).unwrap_err();
        prop_assert!(matches!(err, VaultError::Decrypt { .. }), "{:?}", err);
    }

    #[test]
    fn aad_encoding_is_injective(a in locations(), b in locations()) {
        prop_assert_eq!(a == b, aad(&a).to_bytes() == aad(&b).to_bytes());
    }

    #[test]
    fn encryptions_of_the_same_plaintext_differ(plain in plaintexts()) {
        let k = ring(&entry("k1", 1));
        let loc = Aad::new("t", "r", "c");
        let a = k.encrypt(&plain, &loc);
        let b = k.encrypt(&plain, &loc);
        prop_assert_ne!(&a, &b);
        prop_assert_eq!(open(&k, &a, &loc), plain.clone());
        prop_assert_eq!(open(&k, &b, &loc), plain.clone());
    }

    #[test]
    fn rotation_keeps_old_envelopes_readable_and_moves_them_to_the_primary(
        plain in plaintexts(),
        loc in locations(),
        old_key in any::<u8>(),
        new_key in any::<u8>(),
    ) {
        let old = ring(&entry("old", old_key));
        let stored = old.encrypt(&plain, &aad(&loc));

        let rotated = ring(&format!("{}\n{}", entry("new", new_key), entry("old", old_key)));
        prop_assert!(rotated.needs_rotation(&stored));
        prop_assert_eq!(open(&rotated, &stored, &aad(&loc)), plain.clone());

        let moved = rotated.reencrypt(&stored, &aad(&loc)).unwrap();
        prop_assert!(!rotated.needs_rotation(&moved));
        prop_assert_eq!(envelope_key_id(&moved).unwrap(), "new");

        let new_only = ring(&entry("new", new_key));
        prop_assert_eq!(open(&new_only, &moved, &aad(&loc)), plain.clone());
        let dropped = new_only.decrypt(&stored, &aad(&loc)).unwrap_err();
        prop_assert!(
            matches!(&dropped, VaultError::UnknownKey { key_id } if key_id == "old"),
            "{:?}", dropped
        );
    }

    #[test]
    fn arbitrary_text_never_decrypts_and_never_panics(text in ".{0,80}", tail in "[A-Za-z0-9_-]{0,80}") {
        let k = ring(&entry("k1", 1));
        let loc = Aad::new("t", "r", "c");
        prop_assert!(k.decrypt(&text, &loc).is_err());
        let envelope = format!("v1.k1.{tail}");
        prop_assert!(k.decrypt(&envelope, &loc).is_err());
    }

    #[test]
    fn arbitrary_keyring_text_never_panics_and_errors_never_quote_key_material(
        text in "[a-zA-Z0-9_:,#\\n -]{0,120}",
    ) {
        if let Err(err) = Keyring::parse(&text) {
            let msg = err.to_string();
            for entry in text.split([',', '\n']) {
                if let Some((_, material)) = entry.split_once(':') {
                    let material = material.split('#').next().unwrap().trim();
                    if material.len() >= 8 {
                        prop_assert!(!msg.contains(material), "{} in {}", material, msg);
                    }
                }
            }
        }
    }
}
