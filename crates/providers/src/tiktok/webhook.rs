//! TikTok webhooks: the `TikTok-Signature: t=<unix>,s=<hex>` check over the raw body, and the
//! typed event body (`content` is JSON serialized as a string).

use hmac::{Hmac, KeyInit, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sha2::Sha256;

use crate::error::SignatureError;
use crate::ids;

/// The `t` of a verified signature: when TikTok signed the delivery (unix seconds). A dedupe
/// key should not rely on it (retries are signed anew).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct WebhookTimestamp(pub i64);

/// Verifies a `TikTok-Signature` header over the **raw** body: HMAC-SHA256 keyed with the
/// client secret over `"{t}.{body}"`, compared in constant time, then `|now - t|` within
/// `tolerance_secs` (replay protection).
pub fn verify_tiktok_signature(
    header_value: &str,
    raw_body: &[u8],
    client_secret: &SecretString,
    now_secs: i64,
    tolerance_secs: u64,
) -> Result<WebhookTimestamp, SignatureError> {
    let (t, signature) = parse_header(header_value)?;
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(client_secret.expose_secret().as_bytes())
            .map_err(|_| SignatureError::Mismatch)?;
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(raw_body);
    mac.verify_slice(&signature)
        .map_err(|_| SignatureError::Mismatch)?;
    let age_secs = now_secs.saturating_sub(t);
    if age_secs.unsigned_abs() > tolerance_secs {
        return Err(SignatureError::OutsideWindow {
            age_secs,
            tolerance_secs,
        });
    }
    Ok(WebhookTimestamp(t))
}

/// `t=…,s=…` in any order, with optional spaces; `s` is hex (64 digits for SHA-256).
fn parse_header(value: &str) -> Result<(i64, Vec<u8>), SignatureError> {
    let mut t = None;
    let mut s = None;
    for part in value.split(',') {
        let (key, val) = part.split_once('=').ok_or(SignatureError::Malformed)?;
        match key.trim() {
            "t" => {
                t = Some(
                    val.trim()
                        .parse::<i64>()
                        .map_err(|_| SignatureError::Malformed)?,
                )
            }
            "s" => s = Some(hex::decode(val.trim()).map_err(|_| SignatureError::Malformed)?),
            _ => {}
        }
    }
    match (t, s) {
        (Some(t), Some(s)) if s.len() == 32 => Ok((t, s)),
        _ => Err(SignatureError::Malformed),
    }
}

/// A webhook delivery.
#[derive(Debug, Clone, PartialEq)]
pub struct TikTokWebhook {
    pub client_key: String,
    /// The event name as sent.
    pub event: String,
    /// When the event happened (unix seconds).
    pub create_time: i64,
    pub user_openid: String,
    pub content: TikTokEvent,
}

/// The known events, from `event` + the `content` string.
#[derive(Debug, Clone, PartialEq)]
pub enum TikTokEvent {
    /// The user deauthorized the app; their tokens are already revoked. `reason`: 0 unknown,
    /// 1 disconnected in the app, 2 account deleted, 3 age changed, 4 banned, 5 developer
    /// revoked.
    AuthorizationRemoved {
        reason: i64,
    },
    PublishFailed {
        publish_id: String,
        publish_type: String,
        /// A status `fail_reason`.
        reason: String,
    },
    PublishComplete {
        publish_id: String,
        publish_type: String,
    },
    InboxDelivered {
        publish_id: String,
        publish_type: String,
    },
    /// `post.publish.publicly_available` (also the older `publicaly` spelling).
    PubliclyAvailable {
        publish_id: String,
        publish_type: String,
        post_id: String,
    },
    /// `post.publish.no_longer_publicaly_available` (documented typo; `publicly` accepted).
    NoLongerPubliclyAvailable {
        publish_id: String,
        publish_type: String,
        post_id: String,
    },
    VideoUploadFailed {
        share_id: String,
    },
    VideoPublishCompleted {
        share_id: String,
    },
    /// Anything else, with its content parsed as JSON when possible.
    Other {
        content: serde_json::Value,
    },
}

#[derive(Deserialize)]
struct RawWebhook {
    #[serde(default)]
    client_key: String,
    event: String,
    #[serde(default)]
    create_time: i64,
    #[serde(default)]
    user_openid: String,
    #[serde(default)]
    content: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawContent {
    reason: Option<serde_json::Value>,
    #[serde(deserialize_with = "ids::opt_id")]
    publish_id: Option<String>,
    publish_type: Option<String>,
    #[serde(deserialize_with = "ids::opt_id")]
    post_id: Option<String>,
    share_id: Option<String>,
}

/// Parses a (verified) delivery. Only the envelope must be well-formed; an unknown event or
/// content that does not fit its event becomes [`TikTokEvent::Other`].
pub fn parse_tiktok_webhook(raw_body: &[u8]) -> Result<TikTokWebhook, serde_json::Error> {
    let raw: RawWebhook = serde_json::from_slice(raw_body)?;
    let value: serde_json::Value = serde_json::from_str(&raw.content)
        .unwrap_or(serde_json::Value::String(raw.content.clone()));
    let content = typed_event(&raw.event, &value).unwrap_or(TikTokEvent::Other { content: value });
    Ok(TikTokWebhook {
        client_key: raw.client_key,
        event: raw.event,
        create_time: raw.create_time,
        user_openid: raw.user_openid,
        content,
    })
}

fn typed_event(event: &str, value: &serde_json::Value) -> Option<TikTokEvent> {
    let c: RawContent = serde_json::from_value(value.clone()).ok()?;
    let publish = |c: &RawContent| {
        Some((
            c.publish_id.clone()?,
            c.publish_type.clone().unwrap_or_default(),
        ))
    };
    Some(match event {
        "authorization.removed" => TikTokEvent::AuthorizationRemoved {
            reason: c
                .reason
                .as_ref()
                .and_then(serde_json::Value::as_i64)
                .unwrap_or(0),
        },
        "post.publish.failed" => {
            let (publish_id, publish_type) = publish(&c)?;
            let reason = c
                .reason
                .as_ref()
                .and_then(|r| r.as_str())
                .unwrap_or_default()
                .to_string();
            TikTokEvent::PublishFailed {
                publish_id,
                publish_type,
                reason,
            }
        }
        "post.publish.complete" => {
            let (publish_id, publish_type) = publish(&c)?;
            TikTokEvent::PublishComplete {
                publish_id,
                publish_type,
            }
        }
        "post.publish.inbox_delivered" => {
            let (publish_id, publish_type) = publish(&c)?;
            TikTokEvent::InboxDelivered {
                publish_id,
                publish_type,
            }
        }
        "post.publish.publicly_available" | "post.publish.publicaly_available" => {
            let (publish_id, publish_type) = publish(&c)?;
            TikTokEvent::PubliclyAvailable {
                publish_id,
                publish_type,
                post_id: c.post_id?,
            }
        }
        "post.publish.no_longer_publicaly_available"
        | "post.publish.no_longer_publicly_available" => {
            let (publish_id, publish_type) = publish(&c)?;
            TikTokEvent::NoLongerPubliclyAvailable {
                publish_id,
                publish_type,
                post_id: c.post_id?,
            }
        }
        "video.upload.failed" => TikTokEvent::VideoUploadFailed {
            share_id: c.share_id?,
        },
        "video.publish.completed" => TikTokEvent::VideoPublishCompleted {
            share_id: c.share_id?,
        },
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sign(secret: &str, t: i64, body: &[u8]) -> String {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(format!("{t}.").as_bytes());
        mac.update(body);
        format!("t={t},s={}", hex::encode(mac.finalize().into_bytes()))
    }

    #[test]
    fn good_bad_and_old() {
        let secret = SecretString::from("shh");
        let body = br#"{"event":"authorization.removed"}"#;
        let header = sign("shh", 1_000, body);
        assert_eq!(
            verify_tiktok_signature(&header, body, &secret, 1_100, 300),
            Ok(WebhookTimestamp(1_000))
        );
        assert_eq!(
            verify_tiktok_signature(&header, b"{}", &secret, 1_000, 300),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_tiktok_signature(&header, body, &SecretString::from("other"), 1_000, 300),
            Err(SignatureError::Mismatch)
        );
        assert!(matches!(
            verify_tiktok_signature(&header, body, &secret, 2_000, 300),
            Err(SignatureError::OutsideWindow {
                age_secs: 1_000,
                ..
            })
        ));
        for malformed in [
            "",
            "t=1",
            "s=00",
            "t=x,s=00",
            "t=1,s=zz",
            "t=1,s=abcd",
            "garbage",
        ] {
            assert_eq!(
                verify_tiktok_signature(malformed, body, &secret, 1, 300),
                Err(SignatureError::Malformed),
                "{malformed}"
            );
        }
        // Order and spaces do not matter.
        let (t, s) = header.split_once(',').unwrap();
        let swapped = format!("{s}, {t}");
        assert!(verify_tiktok_signature(&swapped, body, &secret, 1_000, 0).is_ok());
    }

    #[test]
    fn events_parse_with_both_spellings() {
        let body = |event: &str, content: &str| {
            serde_json::to_vec(&serde_json::json!({
                "client_key": "ck", "event": event, "create_time": 1615338610,
                "user_openid": "act.1", "content": content,
            }))
            .unwrap()
        };
        let parsed =
            parse_tiktok_webhook(&body("authorization.removed", r#"{"reason": 1 }"#)).unwrap();
        assert_eq!(
            parsed.content,
            TikTokEvent::AuthorizationRemoved { reason: 1 }
        );
        assert_eq!(parsed.create_time, 1615338610);
        for name in [
            "post.publish.publicly_available",
            "post.publish.publicaly_available",
        ] {
            let parsed = parse_tiktok_webhook(&body(
                name,
                r#"{"publish_id":"v_pub_file~v2-1.1","publish_type":"DIRECT_POST","post_id":7423456789012345678}"#,
            ))
            .unwrap();
            assert_eq!(
                parsed.content,
                TikTokEvent::PubliclyAvailable {
                    publish_id: "v_pub_file~v2-1.1".into(),
                    publish_type: "DIRECT_POST".into(),
                    post_id: "7423456789012345678".into()
                }
            );
        }
        let failed = parse_tiktok_webhook(&body(
            "post.publish.failed",
            r#"{"publish_id":"p","publish_type":"INBOX_SHARE","reason":"publish_cancelled"}"#,
        ))
        .unwrap();
        assert!(
            matches!(failed.content, TikTokEvent::PublishFailed { ref reason, .. } if reason == "publish_cancelled")
        );
        let other = parse_tiktok_webhook(&body("brand.new.event", r#"{"x":1}"#)).unwrap();
        assert_eq!(
            other.content,
            TikTokEvent::Other {
                content: serde_json::json!({"x": 1})
            }
        );
        assert!(parse_tiktok_webhook(b"not json").is_err());
    }

    proptest! {
        #[test]
        fn any_header_text_never_panics(header in ".{0,200}", body in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = verify_tiktok_signature(&header, &body, &SecretString::from("k"), 0, 300);
        }

        #[test]
        fn signatures_round_trip(t in 0i64..4_000_000_000, body in proptest::collection::vec(any::<u8>(), 0..256)) {
            let header = sign("secret", t, &body);
            prop_assert_eq!(verify_tiktok_signature(&header, &body, &SecretString::from("secret"), t, 0), Ok(WebhookTimestamp(t)));
        }
    }
}
