//! Property tests of every parser here that reads what the network sends: the webhook signature
//! headers (TikTok's `TikTok-Signature`, Meta's `X-Hub-Signature-256`), the webhook bodies, Meta's
//! usage headers, and the chunk plan whose `Content-Range` headers the upload endpoint reads.
//!
//! Properties: a parser never panics on any input; what a writer produces reads back the same
//! (round trip); any change to a signed body, a signature or a timestamp is refused.
//!
//! Why proptest and not cargo-fuzz: cargo-fuzz needs a nightly toolchain, which the build machines
//! cannot fetch. proptest runs on stable inside `cargo test`, with a fixed case budget per property
//! (`CASES`) so that CI stays short; a failure prints a minimal input, which then becomes a named
//! regression test below.

use proptest::prelude::*;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use secrecy::SecretString;
use serde_json::{Value, json};
use tidepost_providers::SignatureError;
use tidepost_providers::meta::{
    MetaChange, Usage, parse_meta_webhook, usage::BACK_OFF_PERCENT, verify_meta_signature,
};
use tidepost_providers::tiktok::{
    ChunkPlan, TikTokEvent, WebhookTimestamp, parse_tiktok_webhook, upload::MAX_VIDEO_SIZE,
    verify_tiktok_signature,
};

/// Cases per property: enough to find shallow parser bugs on every run, small enough for CI.
const CASES: u32 = 256;

fn hmac_hex(secret: &[u8], parts: &[&[u8]]) -> String {
    use hmac::{Hmac, KeyInit, Mac};
    let mut mac = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(secret).unwrap();
    for part in parts {
        mac.update(part);
    }
    hex::encode(mac.finalize().into_bytes())
}

/// What TikTok sends: `t=<unix>,s=<hex HMAC(secret, "t.body")>`.
fn tiktok_header(secret: &str, t: i64, body: &[u8]) -> String {
    let s = hmac_hex(secret.as_bytes(), &[t.to_string().as_bytes(), b".", body]);
    format!("t={t},s={s}")
}

/// What Meta sends: `sha256=<hex HMAC(app secret, body)>`.
fn meta_header(secret: &str, body: &[u8]) -> String {
    format!("sha256={}", hmac_hex(secret.as_bytes(), &[body]))
}

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..max)
}

/// Secrets as operators paste them, including empty and non-ASCII ones.
fn secrets() -> impl Strategy<Value = String> {
    prop_oneof![".{0,40}", "[A-Za-z0-9]{32}", Just(String::new())]
}

/// Arbitrary JSON values, a few levels deep, with keys the parsers look for mixed in so that
/// the typed paths (not only the "unknown" ones) see wrong shapes.
fn json_values() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        "[a-z_]{0,8}",
        Just("event".to_string()),
        Just("content".to_string()),
        Just("publish_id".to_string()),
        Just("post_id".to_string()),
        Just("reason".to_string()),
        Just("object".to_string()),
        Just("entry".to_string()),
        Just("changes".to_string()),
        Just("field".to_string()),
        Just("value".to_string()),
        Just("id".to_string()),
        Just("media_id".to_string()),
        Just("from".to_string()),
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,16}".prop_map(Value::from),
        Just(Value::from("comments")),
        Just(Value::from("mentions")),
        Just(Value::from("post.publish.failed")),
        Just(Value::from("post.publish.publicly_available")),
        Just(Value::from("authorization.removed")),
    ];
    leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key.clone(), inner), 0..6)
                .prop_map(|pairs| Value::Object(pairs.into_iter().collect())),
        ]
    })
}

/// Nesting far past serde_json's recursion limit (128): must be an error, not a stack overflow.
fn deeply_nested(depth: usize) -> Vec<u8> {
    let mut body = Vec::with_capacity(depth * 2);
    body.extend(std::iter::repeat_n(b'[', depth));
    body.extend(std::iter::repeat_n(b']', depth));
    body
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    // ---- TikTok-Signature ----

    #[test]
    fn tiktok_signature_header_of_any_text_never_panics(
        header in ".{0,160}",
        body in bytes(64),
        now in any::<i64>(),
        tolerance in any::<u64>(),
    ) {
        let _ = verify_tiktok_signature(&header, &body, &SecretString::from("k"), now, tolerance);
    }

    #[test]
    fn tiktok_signature_header_of_its_own_alphabet_never_panics(
        header in "[ts=,0-9a-f -]{0,120}",
        now in any::<i64>(),
    ) {
        let _ = verify_tiktok_signature(&header, b"{}", &SecretString::from("k"), now, 300);
    }

    #[test]
    fn tiktok_signatures_round_trip_in_any_order_and_spacing(
        secret in secrets(),
        t in any::<i64>(),
        body in bytes(512),
        swap in any::<bool>(),
        spaces in "[ ]{0,3}",
    ) {
        let header = tiktok_header(&secret, t, &body);
        let (tp, sp) = header.split_once(',').unwrap();
        let header = if swap { format!("{sp},{spaces}{tp}") } else { format!("{tp},{spaces}{sp}") };
        prop_assert_eq!(
            verify_tiktok_signature(&header, &body, &SecretString::from(secret), t, 0),
            Ok(WebhookTimestamp(t))
        );
    }

    #[test]
    fn tiktok_any_changed_body_is_a_mismatch(
        body in bytes(256).prop_filter("non-empty", |b| !b.is_empty()),
        at in any::<prop::sample::Index>(),
        bit in 0u8..8,
    ) {
        let header = tiktok_header("secret", 1_700_000_000, &body);
        let mut tampered = body.clone();
        let i = at.index(tampered.len());
        tampered[i] ^= 1 << bit;
        prop_assert_eq!(
            verify_tiktok_signature(&header, &tampered, &SecretString::from("secret"), 1_700_000_000, 300),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn tiktok_any_changed_signature_digit_is_refused(
        body in bytes(128),
        at in 0usize..64,
        digit in "[0-9a-f]",
    ) {
        let header = tiktok_header("secret", 1_700_000_000, &body);
        let (t, s) = header.split_once(",s=").unwrap();
        let mut hex: Vec<char> = s.chars().collect();
        let new = digit.chars().next().unwrap();
        prop_assume!(hex[at] != new);
        hex[at] = new;
        let tampered = format!("{t},s={}", hex.into_iter().collect::<String>());
        prop_assert_eq!(
            verify_tiktok_signature(&tampered, &body, &SecretString::from("secret"), 1_700_000_000, 300),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn tiktok_a_timestamp_moved_is_a_mismatch_and_an_old_one_is_outside_the_window(
        body in bytes(128),
        t in 0i64..4_000_000_000,
        shift in 1i64..1_000_000,
        tolerance in 0u64..600,
    ) {
        let secret = SecretString::from("secret");
        // The timestamp is signed: moving it to look fresh breaks the signature.
        let header = tiktok_header("secret", t, &body);
        let moved = header.replacen(&format!("t={t}"), &format!("t={}", t + shift), 1);
        prop_assert_eq!(
            verify_tiktok_signature(&moved, &body, &secret, t + shift, tolerance),
            Err(SignatureError::Mismatch)
        );
        // A genuine signature replayed later than the tolerance is refused.
        let now = t + tolerance as i64 + shift;
        let refused = matches!(
            verify_tiktok_signature(&header, &body, &secret, now, tolerance),
            Err(SignatureError::OutsideWindow { .. })
        );
        prop_assert!(refused);
    }

    #[test]
    fn tiktok_a_signature_under_another_secret_is_a_mismatch(
        body in bytes(128),
        a in secrets(),
        b in secrets(),
    ) {
        // HMAC pads a short key with zero bytes, so keys that differ only by trailing NULs are
        // the same key ("" and "\0" sign alike): those are not "another secret".
        prop_assume!(a.trim_end_matches('\0') != b.trim_end_matches('\0'));
        let header = tiktok_header(&a, 5, &body);
        prop_assert_eq!(
            verify_tiktok_signature(&header, &body, &SecretString::from(b), 5, 0),
            Err(SignatureError::Mismatch)
        );
    }

    // ---- TikTok webhook bodies ----

    #[test]
    fn tiktok_body_of_any_bytes_never_panics(body in bytes(512)) {
        let _ = parse_tiktok_webhook(&body);
    }

    #[test]
    fn tiktok_body_of_any_json_never_panics(value in json_values(), content in json_values(), event in ".{0,30}") {
        let _ = parse_tiktok_webhook(&serde_json::to_vec(&value).unwrap());
        // The envelope right, `content` (JSON in a string) anything.
        let body = json!({"event": event, "content": content.to_string(), "create_time": 1});
        let _ = parse_tiktok_webhook(&serde_json::to_vec(&body).unwrap());
        for event in ["post.publish.failed", "post.publish.publicly_available", "authorization.removed", "video.upload.failed"] {
            let body = json!({"event": event, "content": content.to_string()});
            prop_assert!(parse_tiktok_webhook(&serde_json::to_vec(&body).unwrap()).is_ok());
        }
    }

    #[test]
    fn tiktok_publish_events_round_trip(
        publish_id in "[A-Za-z0-9_~.-]{1,40}",
        publish_type in prop_oneof![Just("DIRECT_POST"), Just("INBOX_SHARE")],
        post_id in any::<u64>(),
        numeric in any::<bool>(),
        reason in "[a-z_]{0,20}",
        client_key in "[a-z0-9]{0,16}",
        openid in "[A-Za-z0-9_.-]{0,40}",
        create_time in any::<i64>(),
    ) {
        let body = |event: &str, content: Value| {
            serde_json::to_vec(&json!({
                "client_key": client_key, "event": event, "create_time": create_time,
                "user_openid": openid, "content": content.to_string(),
            }))
            .unwrap()
        };
        let post_id_json = if numeric { json!(post_id) } else { json!(post_id.to_string()) };
        let parsed = parse_tiktok_webhook(&body(
            "post.publish.publicly_available",
            json!({"publish_id": publish_id, "publish_type": publish_type, "post_id": post_id_json}),
        ))
        .unwrap();
        prop_assert_eq!(&parsed.client_key, &client_key);
        prop_assert_eq!(&parsed.user_openid, &openid);
        prop_assert_eq!(parsed.create_time, create_time);
        prop_assert_eq!(parsed.content, TikTokEvent::PubliclyAvailable {
            publish_id: publish_id.clone(),
            publish_type: publish_type.to_string(),
            post_id: post_id.to_string(),
        });
        let failed = parse_tiktok_webhook(&body(
            "post.publish.failed",
            json!({"publish_id": publish_id, "publish_type": publish_type, "reason": reason}),
        ))
        .unwrap();
        prop_assert_eq!(failed.content, TikTokEvent::PublishFailed {
            publish_id,
            publish_type: publish_type.to_string(),
            reason,
        });
    }

    // ---- X-Hub-Signature-256 ----

    #[test]
    fn meta_signature_header_of_any_text_never_panics(header in ".{0,160}", body in bytes(64)) {
        let _ = verify_meta_signature(&header, &body, &SecretString::from("k"));
        let prefixed = format!("sha256={header}");
        let _ = verify_meta_signature(&prefixed, &body, &SecretString::from("k"));
    }

    #[test]
    fn meta_signatures_round_trip(secret in secrets(), body in bytes(512), pad in "[ ]{0,2}") {
        let header = format!("{pad}{}{pad}", meta_header(&secret, &body));
        prop_assert_eq!(verify_meta_signature(&header, &body, &SecretString::from(secret)), Ok(()));
    }

    #[test]
    fn meta_any_changed_body_or_digit_is_a_mismatch(
        body in bytes(256).prop_filter("non-empty", |b| !b.is_empty()),
        at in any::<prop::sample::Index>(),
        digit_at in 0usize..64,
        digit in "[0-9a-f]",
    ) {
        let secret = SecretString::from("app-secret");
        let header = meta_header("app-secret", &body);
        let mut tampered = body.clone();
        let i = at.index(tampered.len());
        tampered[i] = tampered[i].wrapping_add(1);
        prop_assert_eq!(verify_meta_signature(&header, &tampered, &secret), Err(SignatureError::Mismatch));
        let mut hex: Vec<char> = header["sha256=".len()..].chars().collect();
        let new = digit.chars().next().unwrap();
        prop_assume!(hex[digit_at] != new);
        hex[digit_at] = new;
        let changed = format!("sha256={}", hex.into_iter().collect::<String>());
        prop_assert_eq!(verify_meta_signature(&changed, &body, &secret), Err(SignatureError::Mismatch));
    }

    #[test]
    fn meta_a_truncated_or_extended_signature_is_malformed(body in bytes(64), cut in 0usize..64, extra in "[0-9a-f]{1,8}") {
        let secret = SecretString::from("app-secret");
        let header = meta_header("app-secret", &body);
        let truncated = &header[.."sha256=".len() + cut];
        prop_assert_eq!(verify_meta_signature(truncated, &body, &secret), Err(SignatureError::Malformed));
        let extended = format!("{header}{extra}");
        prop_assert_eq!(verify_meta_signature(&extended, &body, &secret), Err(SignatureError::Malformed));
    }

    // ---- Meta webhook bodies ----

    #[test]
    fn meta_body_of_any_bytes_never_panics(body in bytes(512)) {
        let _ = parse_meta_webhook(&body);
    }

    #[test]
    fn meta_body_of_any_json_never_panics(value in json_values(), change in json_values(), field in ".{0,12}") {
        let _ = parse_meta_webhook(&serde_json::to_vec(&value).unwrap());
        for field in [field.as_str(), "comments", "live_comments", "mentions"] {
            let body = json!({"object": "instagram", "entry": [
                {"id": "1784", "time": 1, "changes": [{"field": field, "value": change}]},
                {"id": 1785, "field": field, "value": change},
            ]});
            let parsed = parse_meta_webhook(&serde_json::to_vec(&body).unwrap());
            prop_assert!(parsed.is_ok(), "{:?}", parsed);
            prop_assert_eq!(parsed.unwrap().entries.len(), 2);
        }
    }

    #[test]
    fn meta_comments_and_mentions_round_trip(
        account in any::<u64>(),
        comment_id in "[0-9]{1,19}",
        text in ".{0,60}",
        from_id in "[0-9]{1,19}",
        username in "[a-z0-9_.]{1,20}",
        media_id in any::<u64>(),
        time in any::<i64>(),
    ) {
        let body = json!({"object": "instagram", "entry": [{
            "id": account.to_string(), "time": time, "changes": [
                {"field": "comments", "value": {
                    "id": comment_id, "text": text,
                    "from": {"id": from_id, "username": username},
                    "media": {"id": media_id, "media_product_type": "FEED"},
                }},
                {"field": "mentions", "value": {"media_id": media_id, "comment_id": comment_id}},
            ]
        }]});
        let parsed = parse_meta_webhook(&serde_json::to_vec(&body).unwrap()).unwrap();
        prop_assert_eq!(parsed.object, "instagram");
        let entry = &parsed.entries[0];
        prop_assert_eq!(&entry.account_id, &account.to_string());
        prop_assert_eq!(entry.time, time);
        prop_assert_eq!(&entry.changes[0], &MetaChange::Comment {
            comment_id: comment_id.clone(),
            text,
            from_id: Some(from_id),
            from_username: Some(username),
            media_id: Some(media_id.to_string()),
            media_product_type: Some("FEED".into()),
            parent_id: None,
        });
        prop_assert_eq!(&entry.changes[1], &MetaChange::Mention {
            media_id: media_id.to_string(),
            comment_id: Some(comment_id),
        });
    }

    // ---- Meta usage headers ----

    #[test]
    fn usage_headers_of_any_text_never_panic(app in "[ -~]{0,120}", business in "[ -~]{0,160}") {
        let mut headers = HeaderMap::new();
        for (name, value) in [("x-app-usage", app), ("x-business-use-case-usage", business)] {
            headers.insert(HeaderName::from_static(name), HeaderValue::from_str(&value).unwrap());
        }
        if let Some(usage) = Usage::from_headers(&headers) {
            let _ = (usage.max_percent(), usage.should_back_off(), usage.regain_access_after());
        }
    }

    #[test]
    fn usage_headers_round_trip(
        call_count in any::<u32>(),
        total_time in any::<u32>(),
        minutes in any::<u64>(),
        object in "[0-9]{1,19}",
    ) {
        let mut headers = HeaderMap::new();
        let app = json!({"call_count": call_count, "total_time": total_time, "total_cputime": 0});
        let business = json!({object.clone(): [{"type": "instagram", "call_count": call_count,
            "total_time": 0, "total_cputime": total_time, "estimated_time_to_regain_access": minutes}]});
        headers.insert("x-app-usage", HeaderValue::from_str(&app.to_string()).unwrap());
        headers.insert("x-business-use-case-usage", HeaderValue::from_str(&business.to_string()).unwrap());
        let usage = Usage::from_headers(&headers).unwrap();
        prop_assert_eq!(usage.max_percent(), call_count.max(total_time));
        prop_assert_eq!(usage.should_back_off(), call_count.max(total_time) >= BACK_OFF_PERCENT);
        prop_assert_eq!(&usage.business[0].object_id, &object);
        let regain = usage.regain_access_after().map(|d| d.as_secs()).unwrap_or(0);
        prop_assert_eq!(regain, minutes.saturating_mul(60));
    }

    // ---- Content-Range of a chunk plan ----

    #[test]
    fn every_chunk_content_range_reads_back_as_its_bytes(size in 1..=MAX_VIDEO_SIZE, preferred in any::<u64>()) {
        let plan = ChunkPlan::with_chunk_size(size, preferred).unwrap();
        let mut next = 0;
        for chunk in plan.chunks() {
            let header = chunk.content_range();
            let (first, last, total) = read_content_range(&header).unwrap();
            prop_assert_eq!((first, last, total), (chunk.offset, chunk.last_byte(), size));
            prop_assert_eq!(first, next);
            next = last + 1;
        }
        prop_assert_eq!(next, size);
    }
}

/// `bytes first-last/total`, as an upload endpoint reads it (strictly: what
/// [`Chunk::content_range`](tidepost_providers::tiktok::Chunk::content_range) writes must parse).
fn read_content_range(value: &str) -> Option<(u64, u64, u64)> {
    let (range, total) = value.strip_prefix("bytes ")?.split_once('/')?;
    let (first, last) = range.split_once('-')?;
    let parsed = (first.parse().ok()?, last.parse().ok()?, total.parse().ok()?);
    (parsed.0 <= parsed.1 && parsed.1 < parsed.2).then_some(parsed)
}

#[test]
fn deeply_nested_webhook_bodies_are_errors_not_stack_overflows() {
    let deep = deeply_nested(100_000);
    assert!(parse_tiktok_webhook(&deep).is_err());
    assert!(parse_meta_webhook(&deep).is_err());
    // Deep JSON inside TikTok's `content` string, and inside a Meta change value.
    let content = String::from_utf8(deeply_nested(50_000)).unwrap();
    let body = json!({"event": "post.publish.failed", "content": content});
    let parsed = parse_tiktok_webhook(&serde_json::to_vec(&body).unwrap()).unwrap();
    assert!(matches!(parsed.content, TikTokEvent::Other { .. }));
    let mut meta =
        br#"{"object":"instagram","entry":[{"id":"1","field":"comments","value":"#.to_vec();
    meta.extend(deeply_nested(50_000));
    meta.extend(b"}]}");
    assert!(parse_meta_webhook(&meta).is_err());
}

#[test]
fn extreme_timestamps_neither_overflow_nor_pass() {
    let secret = SecretString::from("secret");
    for (t, now) in [
        (i64::MIN, i64::MAX),
        (i64::MAX, i64::MIN),
        (i64::MIN, 0),
        (0, i64::MIN),
    ] {
        let header = tiktok_header("secret", t, b"{}");
        assert!(matches!(
            verify_tiktok_signature(&header, b"{}", &secret, now, u64::MAX - 1),
            Err(SignatureError::OutsideWindow { .. }) | Ok(_)
        ));
        assert!(matches!(
            verify_tiktok_signature(&header, b"{}", &secret, now, 300),
            Err(SignatureError::OutsideWindow { .. })
        ));
    }
}

#[test]
fn duplicated_signature_fields_cannot_smuggle_a_second_signature() {
    // A header with two `s=`: only the last one is checked, so appending a forged signature to
    // a genuine header (or the reverse) never passes a body the secret did not sign.
    let secret = SecretString::from("secret");
    let genuine = tiktok_header("secret", 100, b"{}");
    let forged = format!("{genuine},s={}", "00".repeat(32));
    assert_eq!(
        verify_tiktok_signature(&forged, b"{}", &secret, 100, 300),
        Err(SignatureError::Mismatch)
    );
}
