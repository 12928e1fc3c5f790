//! Keyring parsing, envelopes, errors and rotation.

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
use common::{entry, material};
use secrecy::ExposeSecret;
use tidepost_vault::{
    Aad, Keyring, KeyringError, MalformedReason, VaultError, envelope_key_id, is_valid_key_id,
};

const AAD: Aad<'static> = Aad::new("provider_accounts", "42", "access_token");

fn ring(text: &str) -> Keyring {
    Keyring::parse(text).expect("valid keyring")
}

fn parse_err(text: &str) -> String {
    Keyring::parse(text)
        .expect_err("keyring must be rejected")
        .to_string()
}

fn decrypt_err(keyring: &Keyring, envelope: &str, aad: &Aad<'_>) -> VaultError {
    keyring
        .decrypt(envelope, aad)
        .expect_err("decryption must fail")
}

// ---- keyring parsing -------------------------------------------------------

#[test]
fn single_entry_is_the_primary() {
    let k = ring(&entry("k1", 1));
    assert_eq!(k.primary_key_id(), "k1");
    assert_eq!(k.key_ids().collect::<Vec<_>>(), ["k1"]);
}

#[test]
fn first_entry_is_primary_and_order_is_kept_across_commas_and_newlines() {
    let text = format!(
        "{},{}\n{}",
        entry("new", 3),
        entry("mid", 2),
        entry("old", 1)
    );
    let k = ring(&text);
    assert_eq!(k.primary_key_id(), "new");
    assert_eq!(k.key_ids().collect::<Vec<_>>(), ["new", "mid", "old"]);
    assert!(k.contains_key("old"));
    assert!(!k.contains_key("gone"));
}

#[test]
fn key_file_syntax_allows_comments_blank_lines_and_whitespace() {
    let text = format!(
        "# tidepost keys, newest first\n\n  {}  # added at rotation, keep first\n\t{} ,\n# retired: none\n\n",
        entry("k2", 2),
        entry("k1", 1)
    );
    let k = ring(&text);
    assert_eq!(k.key_ids().collect::<Vec<_>>(), ["k2", "k1"]);
}

#[test]
fn key_material_may_be_padded_or_standard_base64() {
    // A key whose standard encoding uses `+` and `/`.
    let bytes: Vec<u8> = (0..32u8)
        .map(|i| i.wrapping_mul(37).wrapping_add(0xfb))
        .collect();
    let standard = STANDARD.encode(&bytes);
    assert!(standard.contains('+') || standard.contains('/'));
    let padded_url = URL_SAFE.encode(&bytes);
    let unpadded_url = URL_SAFE_NO_PAD.encode(&bytes);

    let envelope = ring(&format!("k:{unpadded_url}")).encrypt(b"x", &AAD);
    for text in [standard, padded_url] {
        let k = ring(&format!("k:{text}"));
        assert_eq!(k.decrypt(&envelope, &AAD).unwrap().expose_secret(), b"x");
    }
}

#[test]
fn error_empty() {
    let msg = "keyring is empty: expected at least one `<key-id>:<base64url-key>` entry, \
               newest (primary) first";
    assert_eq!(parse_err(""), msg);
    assert_eq!(parse_err(" , \n\n# only a comment\n,"), msg);
    assert!(matches!(Keyring::parse(""), Err(KeyringError::Empty)));
}

#[test]
fn error_malformed_entry() {
    let text = format!("{},{}", entry("k1", 1), material(2));
    assert_eq!(
        parse_err(&text),
        "keyring entry 2: expected `<key-id>:<base64url-key>`"
    );
}

#[test]
fn error_invalid_key_id() {
    let msg = "keyring entry 1: key id must be 1 to 32 characters from A-Z, a-z, 0-9, `_` and `-`";
    assert_eq!(parse_err(&format!(":{}", material(1))), msg);
    assert_eq!(parse_err(&entry("has.dot", 1)), msg);
    assert_eq!(parse_err(&entry("has space", 1)), msg);
    assert_eq!(parse_err(&entry("ключ", 1)), msg);
    assert_eq!(parse_err(&entry(&"a".repeat(33), 1)), msg);
    // 32 characters is the limit.
    ring(&entry(&"a".repeat(32), 1));
    // Pasted the wrong way round: the key material is not echoed as an "id".
    let backwards = format!("{}:k1", material(9));
    let err = parse_err(&backwards);
    assert_eq!(err, msg);
    assert!(!err.contains(&material(9)));
}

#[test]
fn error_bad_base64() {
    let text = format!("{}\nk2:not*base64!", entry("k1", 1));
    assert_eq!(
        parse_err(&text),
        "keyring entry 2 (`k2`): key is not valid base64url"
    );
    // Mixed alphabets are neither base64url nor standard base64.
    assert_eq!(
        parse_err("mixed:ab-_+/"),
        "keyring entry 1 (`mixed`): key is not valid base64url"
    );
}

#[test]
fn error_wrong_key_length() {
    let short = URL_SAFE_NO_PAD.encode([7u8; 16]);
    let err = parse_err(&format!("k1:{short}"));
    assert_eq!(
        err,
        "keyring entry 1 (`k1`): key must decode to 32 bytes for AES-256, got 16"
    );
    assert!(!err.contains(&short));
    let long = URL_SAFE_NO_PAD.encode([7u8; 33]);
    assert_eq!(
        parse_err(&format!("k1:{long}")),
        "keyring entry 1 (`k1`): key must decode to 32 bytes for AES-256, got 33"
    );
    assert_eq!(
        parse_err("k1:"),
        "keyring entry 1 (`k1`): key must decode to 32 bytes for AES-256, got 0"
    );
}

#[test]
fn error_duplicate_key_id() {
    let text = format!(
        "{}\n# comment\n{},{}",
        entry("a", 1),
        entry("b", 2),
        entry("a", 3)
    );
    assert_eq!(
        parse_err(&text),
        "keyring entry 3: duplicate key id `a` (already used by entry 1)"
    );
}

#[test]
fn from_file_reads_a_key_file_and_reports_io_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys");
    std::fs::write(
        &path,
        format!("# keys\n{}\n{}\n", entry("k2", 2), entry("k1", 1)),
    )
    .unwrap();
    let k = Keyring::from_file(&path).unwrap();
    assert_eq!(k.key_ids().collect::<Vec<_>>(), ["k2", "k1"]);

    let missing = dir.path().join("missing");
    let err = Keyring::from_file(&missing).unwrap_err();
    assert!(matches!(err, KeyringError::Io { .. }));
    assert!(
        err.to_string()
            .starts_with(&format!("cannot read key file {}: ", missing.display())),
        "{err}"
    );
}

#[test]
fn from_env_var_reports_a_missing_variable() {
    let err = Keyring::from_env_var("TIDEPOST_VAULT_TEST_SURELY_UNSET").unwrap_err();
    assert_eq!(
        err.to_string(),
        "TIDEPOST_VAULT_TEST_SURELY_UNSET is not set: it must hold the keyring \
         (`<key-id>:<base64url-key>` entries)"
    );
}

#[test]
fn debug_and_display_show_key_ids_only() {
    let text = format!("{},{}", entry("k2", 0xab), entry("k1", 0xcd));
    let k = ring(&text);
    let debug = format!("{k:?}");
    let pretty = format!("{k:#?}");
    let display = k.to_string();
    assert_eq!(debug, r#"Keyring { primary: "k2", key_ids: ["k2", "k1"] }"#);
    assert_eq!(display, "keyring [k2 (primary), k1]");
    for out in [&debug, &pretty, &display] {
        for byte in [0xabu8, 0xcd] {
            assert!(!out.contains(&material(byte)));
            assert!(
                !out.contains(&format!("{byte}")),
                "decimal key byte in {out}"
            );
            assert!(!out.contains(&format!("{byte:x}")), "hex key byte in {out}");
        }
    }
}

#[test]
fn generated_key_text_parses_and_has_a_time_based_unique_id() {
    let a = Keyring::generate_key_text();
    let b = Keyring::generate_key_text();
    let (id_a, key_a) = a.expose_secret().split_once(':').unwrap();
    let (id_b, key_b) = b.expose_secret().split_once(':').unwrap();
    assert_ne!(id_a, id_b);
    assert_ne!(key_a, key_b);
    for id in [id_a, id_b] {
        assert!(is_valid_key_id(id), "{id}");
        // k<YYYYMMDD>t<HHMM>-<6 hex>
        assert_eq!(id.len(), 21, "{id}");
        let b = id.as_bytes();
        assert_eq!(b[0], b'k');
        assert!(b[1..9].iter().all(u8::is_ascii_digit), "{id}");
        assert_eq!(b[9], b't');
        assert!(b[10..14].iter().all(u8::is_ascii_digit), "{id}");
        assert_eq!(b[14], b'-');
        assert!(b[15..].iter().all(|c| c.is_ascii_hexdigit()), "{id}");
        assert!(id.starts_with("k20"), "{id}");
    }
    assert_eq!(URL_SAFE_NO_PAD.decode(key_a).unwrap().len(), 32);
    let k = ring(&format!("{},{}", a.expose_secret(), b.expose_secret()));
    assert_eq!(k.primary_key_id(), id_a);
    // The generated secret's Debug is redacted.
    assert!(!format!("{a:?}").contains(key_a));
}

// ---- envelopes --------------------------------------------------------------

#[test]
fn envelope_format() {
    let k = ring(&format!("{},{}", entry("k2", 2), entry("k1", 1)));
    let env = k.encrypt(b"hello", &AAD);
    let parts: Vec<&str> = env.split('.').collect();
    assert_eq!(parts.len(), 3);
    assert_eq!(parts[0], "v1");
    assert_eq!(parts[1], "k2");
    let payload = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
    assert_eq!(payload.len(), 12 + 5 + 16);
    assert!(!env.contains("hello"));
    assert!(env.bytes().all(|b| b.is_ascii_graphic()));
    assert_eq!(envelope_key_id(&env).unwrap(), "k2");
}

#[test]
fn round_trip_bytes_text_and_empty() {
    let k = ring(&entry("k1", 1));
    let env = k.encrypt(&[0, 255, 1, 254], &AAD);
    assert_eq!(
        k.decrypt(&env, &AAD).unwrap().expose_secret(),
        &[0, 255, 1, 254]
    );

    let env = k.encrypt_str("EAAGm0PX4ZCpsBA-token", &AAD);
    assert_eq!(
        k.decrypt_str(&env, &AAD).unwrap().expose_secret(),
        "EAAGm0PX4ZCpsBA-token"
    );

    let env = k.encrypt(b"", &AAD);
    assert!(k.decrypt(&env, &AAD).unwrap().expose_secret().is_empty());
}

#[test]
fn same_plaintext_encrypts_differently_each_time() {
    let k = ring(&entry("k1", 1));
    let a = k.encrypt_str("same", &AAD);
    let b = k.encrypt_str("same", &AAD);
    assert_ne!(a, b);
    let nonce = |e: &str| {
        URL_SAFE_NO_PAD
            .decode(e.rsplit('.').next().unwrap())
            .unwrap()[..12]
            .to_vec()
    };
    assert_ne!(nonce(&a), nonce(&b));
}

#[test]
fn another_table_row_or_column_fails_with_a_clear_message() {
    let k = ring(&entry("k1", 1));
    let env = k.encrypt_str("token", &AAD);
    for other in [
        Aad::new("webhooks", "42", "access_token"),
        Aad::new("provider_accounts", "43", "access_token"),
        Aad::new("provider_accounts", "42", "refresh_token"),
    ] {
        let err = decrypt_err(&k, &env, &other);
        assert!(matches!(&err, VaultError::Decrypt { key_id } if key_id == "k1"));
        assert_eq!(
            err.to_string(),
            "stored secret failed authentication under key `k1`: wrong key material for \
             that id, tampered ciphertext, or a ciphertext that belongs to a different \
             table, row or column"
        );
    }
}

#[test]
fn aad_encoding_is_length_prefixed_and_unambiguous() {
    let a = Aad::new("a:b", "c", "d");
    let b = Aad::new("a", "b:c", "d");
    assert_ne!(a.to_bytes(), b.to_bytes());
    assert_eq!(
        Aad::new("t", "", "cc").to_bytes(),
        [
            &[0, 0, 0, 0, 0, 0, 0, 1][..],
            b"t",
            &[0, 0, 0, 0, 0, 0, 0, 0],
            &[0, 0, 0, 0, 0, 0, 0, 2],
            b"cc"
        ]
        .concat()
    );
    let k = ring(&entry("k1", 1));
    let env = k.encrypt(b"x", &a);
    assert!(matches!(
        decrypt_err(&k, &env, &b),
        VaultError::Decrypt { .. }
    ));
    assert_eq!(a.to_string(), "a:b[c].d");
}

#[test]
fn wrong_key_material_under_the_same_id_fails_with_decrypt() {
    let env = ring(&entry("k1", 1)).encrypt(b"x", &AAD);
    let err = decrypt_err(&ring(&entry("k1", 2)), &env, &AAD);
    assert!(matches!(err, VaultError::Decrypt { .. }));
}

#[test]
fn the_key_id_in_the_header_is_authenticated() {
    // Same key material under two ids: relabelling the envelope still fails.
    let k = ring(&format!("{},{}", entry("a", 1), entry("b", 1)));
    let env = k.encrypt(b"x", &AAD);
    let relabelled = env.replacen("v1.a.", "v1.b.", 1);
    assert!(matches!(
        decrypt_err(&k, &relabelled, &AAD),
        VaultError::Decrypt { key_id } if key_id == "b"
    ));
}

#[test]
fn tampered_payload_fails_with_decrypt() {
    let k = ring(&entry("k1", 1));
    let env = k.encrypt(b"secret value", &AAD);
    let (head, payload) = env.rsplit_once('.').unwrap();
    let mut bytes = URL_SAFE_NO_PAD.decode(payload).unwrap();
    for i in [0, 11, 12, bytes.len() - 17, bytes.len() - 1] {
        bytes[i] ^= 0x01;
        let tampered = format!("{head}.{}", URL_SAFE_NO_PAD.encode(&bytes));
        assert!(matches!(
            decrypt_err(&k, &tampered, &AAD),
            VaultError::Decrypt { .. }
        ));
        bytes[i] ^= 0x01;
    }
    // Truncated or extended payloads fail too.
    let truncated = format!(
        "{head}.{}",
        URL_SAFE_NO_PAD.encode(&bytes[..bytes.len() - 1])
    );
    assert!(matches!(
        decrypt_err(&k, &truncated, &AAD),
        VaultError::Decrypt { .. }
    ));
    let extended = format!(
        "{head}.{}",
        URL_SAFE_NO_PAD.encode([&bytes[..], &[0]].concat())
    );
    assert!(matches!(
        decrypt_err(&k, &extended, &AAD),
        VaultError::Decrypt { .. }
    ));
}

#[test]
fn unknown_key_names_the_key_and_says_to_add_it_back() {
    let old = ring(&entry("k2025", 1));
    let env = old.encrypt(b"x", &AAD);
    let new = ring(&entry("k2026", 2));
    let err = decrypt_err(&new, &env, &AAD);
    assert!(matches!(&err, VaultError::UnknownKey { key_id } if key_id == "k2025"));
    assert_eq!(
        err.to_string(),
        "stored secret is encrypted with key `k2025`, which is not in the keyring: add \
         that key back (after the primary key) to decrypt it, then run `tidepost keys rotate`"
    );
}

#[test]
fn malformed_envelopes_each_have_a_reason_and_never_echo_the_value() {
    let k = ring(&entry("k1", 1));
    let cases = [
        (
            "",
            MalformedReason::NotAnEnvelope,
            "expected `v1.<key-id>.<payload>`",
        ),
        (
            "ghp_plaintextTokenStoredByMistake",
            MalformedReason::NotAnEnvelope,
            "expected `v1.<key-id>.<payload>`",
        ),
        (
            "v1.k1.AAAA.AAAA",
            MalformedReason::NotAnEnvelope,
            "expected `v1.<key-id>.<payload>`",
        ),
        (
            "v2.k1.AAAA",
            MalformedReason::UnsupportedVersion,
            "unsupported envelope version (this build reads `v1`)",
        ),
        (
            "V1.k1.AAAA",
            MalformedReason::UnsupportedVersion,
            "unsupported envelope version (this build reads `v1`)",
        ),
        ("v1..AAAA", MalformedReason::InvalidKeyId, "invalid key id"),
        (
            "v1.k 1.AAAA",
            MalformedReason::InvalidKeyId,
            "invalid key id",
        ),
        (
            "v1.k1.not+base64/",
            MalformedReason::BadBase64,
            "payload is not valid base64url",
        ),
        (
            "v1.k1.AAAA====",
            MalformedReason::BadBase64,
            "payload is not valid base64url",
        ),
        (
            "v1.k1.",
            MalformedReason::TooShort,
            "payload is too short to hold a nonce and an authentication tag",
        ),
        (
            "v1.k1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            MalformedReason::TooShort,
            "payload is too short to hold a nonce and an authentication tag",
        ),
    ];
    for (envelope, reason, text) in cases {
        let err = decrypt_err(&k, envelope, &AAD);
        assert!(
            matches!(&err, VaultError::Malformed { reason: r } if *r == reason),
            "{envelope:?}: {err:?}"
        );
        assert_eq!(
            err.to_string(),
            format!("stored secret is not a valid vault envelope: {text}")
        );
        if !envelope.is_empty() {
            assert!(!err.to_string().contains(envelope));
        }
        assert!(k.needs_rotation(envelope), "{envelope:?}");
    }
}

#[test]
fn malformed_envelope_is_checked_before_the_key_lookup() {
    // A bad payload under an unknown key reports UnknownKey: the key is the
    // thing to fix first, and the payload cannot be judged without it.
    let k = ring(&entry("k1", 1));
    assert!(matches!(
        decrypt_err(&k, "v1.other.!!!", &AAD),
        VaultError::UnknownKey { .. }
    ));
}

#[test]
fn decrypt_str_rejects_non_utf8() {
    let k = ring(&entry("k1", 1));
    let env = k.encrypt(&[0xff, 0xfe], &AAD);
    let err = k.decrypt_str(&env, &AAD).unwrap_err();
    assert!(matches!(err, VaultError::NotUtf8));
    assert_eq!(err.to_string(), "decrypted secret is not valid UTF-8");
}

#[test]
fn decrypted_secrets_are_redacted_in_debug() {
    let k = ring(&entry("k1", 1));
    let env = k.encrypt_str("very-secret", &AAD);
    let s = k.decrypt_str(&env, &AAD).unwrap();
    let b = k.decrypt(&env, &AAD).unwrap();
    assert!(!format!("{s:?}{b:?}").contains("very-secret"));
}

// ---- rotation ---------------------------------------------------------------

#[test]
fn rotation_old_key_second_decrypts_and_reencrypt_moves_to_primary() {
    let old_ring = ring(&entry("k1", 1));
    let stored = old_ring.encrypt_str("refresh-token", &AAD);
    assert!(!old_ring.needs_rotation(&stored));

    // The operator puts a new key first.
    let rotated = ring(&format!("{}\n{}", entry("k2", 2), entry("k1", 1)));
    assert_eq!(rotated.primary_key_id(), "k2");
    assert_eq!(
        rotated.decrypt_str(&stored, &AAD).unwrap().expose_secret(),
        "refresh-token"
    );
    assert!(rotated.needs_rotation(&stored));

    let moved = rotated.reencrypt(&stored, &AAD).unwrap();
    assert_eq!(envelope_key_id(&moved).unwrap(), "k2");
    assert!(!rotated.needs_rotation(&moved));
    assert_eq!(
        rotated.decrypt_str(&moved, &AAD).unwrap().expose_secret(),
        "refresh-token"
    );

    // Once everything is rotated, the old key can go.
    let new_only = ring(&entry("k2", 2));
    assert_eq!(
        new_only.decrypt_str(&moved, &AAD).unwrap().expose_secret(),
        "refresh-token"
    );
    assert!(matches!(
        decrypt_err(&new_only, &stored, &AAD),
        VaultError::UnknownKey { key_id } if key_id == "k1"
    ));

    // New encryptions use the primary.
    assert!(rotated.encrypt(b"x", &AAD).starts_with("v1.k2."));
}

#[test]
fn reencrypt_is_bound_to_the_location_and_reports_errors() {
    let k = ring(&format!("{}\n{}", entry("k2", 2), entry("k1", 1)));
    let stored = ring(&entry("k1", 1)).encrypt(b"x", &AAD);
    let elsewhere = Aad::new("provider_accounts", "7", "access_token");
    assert!(matches!(
        k.reencrypt(&stored, &elsewhere),
        Err(VaultError::Decrypt { .. })
    ));
    assert!(matches!(
        k.reencrypt("garbage", &AAD),
        Err(VaultError::Malformed { .. })
    ));
    // Re-encrypting an envelope already under the primary is harmless.
    let current = k.encrypt(b"y", &AAD);
    let again = k.reencrypt(&current, &AAD).unwrap();
    assert_ne!(again, current);
    assert_eq!(k.decrypt(&again, &AAD).unwrap().expose_secret(), b"y");
}

#[test]
fn keyring_can_be_shared_across_threads() {
    fn assert_send_sync<T: Send + Sync + Clone + 'static>() {}
    assert_send_sync::<Keyring>();
}
