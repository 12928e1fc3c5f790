//! Meta webhooks: `X-Hub-Signature-256: sha256=<hex>` over the raw body (keyed with the app
//! secret: the Facebook app's for Facebook Login, the Instagram app's for Instagram Login), and
//! the typed `{"object":"instagram","entry":[…]}` payload. Entries may carry `changes[]` or a
//! bare `field`/`value`; both are read.

use hmac::{Hmac, KeyInit, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sha2::Sha256;

use crate::error::SignatureError;
use crate::ids;

/// Verifies `X-Hub-Signature-256` (`sha256=<hex HMAC-SHA256(app_secret, raw_body)>`) in
/// constant time. Meta sends no timestamp: deduplicate deliveries instead.
pub fn verify_meta_signature(
    header_value: &str,
    raw_body: &[u8],
    app_secret: &SecretString,
) -> Result<(), SignatureError> {
    let hex_signature = header_value
        .trim()
        .strip_prefix("sha256=")
        .ok_or(SignatureError::Malformed)?;
    let signature = hex::decode(hex_signature).map_err(|_| SignatureError::Malformed)?;
    if signature.len() != 32 {
        return Err(SignatureError::Malformed);
    }
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(app_secret.expose_secret().as_bytes())
        .map_err(|_| SignatureError::Mismatch)?;
    mac.update(raw_body);
    mac.verify_slice(&signature)
        .map_err(|_| SignatureError::Mismatch)
}

/// A webhook delivery (possibly a batch of entries).
#[derive(Debug, Clone, PartialEq)]
pub struct MetaWebhook {
    /// `instagram` for these fields.
    pub object: String,
    pub entries: Vec<MetaWebhookEntry>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MetaWebhookEntry {
    /// The Instagram professional account the change is about.
    pub account_id: String,
    /// When Meta sent the notification (unix seconds).
    pub time: i64,
    pub changes: Vec<MetaChange>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum MetaChange {
    /// A comment (or reply, with `parent_id`) on the account's media.
    Comment {
        comment_id: String,
        text: String,
        from_id: Option<String>,
        from_username: Option<String>,
        media_id: Option<String>,
        media_product_type: Option<String>,
        parent_id: Option<String>,
    },
    /// The account was @mentioned in a comment (`comment_id` set) or a caption.
    Mention {
        media_id: String,
        comment_id: Option<String>,
    },
    /// Any other field (`story_insights`, `messages`, …) as sent.
    Other {
        field: String,
        value: serde_json::Value,
    },
}

#[derive(Deserialize)]
struct RawWebhook {
    object: String,
    #[serde(default)]
    entry: Vec<RawEntry>,
}

#[derive(Deserialize)]
struct RawEntry {
    #[serde(deserialize_with = "ids::id")]
    id: String,
    #[serde(default)]
    time: i64,
    #[serde(default)]
    changes: Vec<RawChange>,
    #[serde(default)]
    field: Option<String>,
    #[serde(default)]
    value: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct RawChange {
    field: String,
    #[serde(default)]
    value: serde_json::Value,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawComment {
    #[serde(deserialize_with = "ids::id")]
    id: String,
    text: String,
    from: Option<RawFrom>,
    media: Option<RawMedia>,
    #[serde(deserialize_with = "ids::opt_id")]
    parent_id: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawFrom {
    #[serde(deserialize_with = "ids::opt_id")]
    id: Option<String>,
    username: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawMedia {
    #[serde(deserialize_with = "ids::opt_id")]
    id: Option<String>,
    media_product_type: Option<String>,
}

#[derive(Deserialize)]
struct RawMention {
    #[serde(deserialize_with = "ids::id")]
    media_id: String,
    #[serde(default, deserialize_with = "ids::opt_id")]
    comment_id: Option<String>,
}

/// Parses a (verified) delivery. A change whose value does not fit its field becomes
/// [`MetaChange::Other`].
pub fn parse_meta_webhook(raw_body: &[u8]) -> Result<MetaWebhook, serde_json::Error> {
    let raw: RawWebhook = serde_json::from_slice(raw_body)?;
    let entries = raw
        .entry
        .into_iter()
        .map(|entry| {
            let mut changes: Vec<RawChange> = entry.changes;
            if let Some(field) = entry.field {
                changes.push(RawChange {
                    field,
                    value: entry.value.unwrap_or_default(),
                });
            }
            MetaWebhookEntry {
                account_id: entry.id,
                time: entry.time,
                changes: changes.into_iter().map(typed_change).collect(),
            }
        })
        .collect();
    Ok(MetaWebhook {
        object: raw.object,
        entries,
    })
}

fn typed_change(change: RawChange) -> MetaChange {
    let typed = match change.field.as_str() {
        "comments" | "live_comments" => serde_json::from_value::<RawComment>(change.value.clone())
            .ok()
            .filter(|c| !c.id.is_empty())
            .map(|c| {
                let from = c.from.unwrap_or_default();
                let media = c.media.unwrap_or_default();
                MetaChange::Comment {
                    comment_id: c.id,
                    text: c.text,
                    from_id: from.id,
                    from_username: from.username,
                    media_id: media.id,
                    media_product_type: media.media_product_type,
                    parent_id: c.parent_id,
                }
            }),
        "mentions" => serde_json::from_value::<RawMention>(change.value.clone())
            .ok()
            .map(|m| MetaChange::Mention {
                media_id: m.media_id,
                comment_id: m.comment_id,
            }),
        _ => None,
    };
    typed.unwrap_or(MetaChange::Other {
        field: change.field,
        value: change.value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sign(secret: &str, body: &[u8]) -> String {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(body);
        format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    }

    #[test]
    fn signatures() {
        let secret = SecretString::from("app-secret");
        let body = br#"{"object":"instagram","entry":[]}"#;
        assert_eq!(
            verify_meta_signature(&sign("app-secret", body), body, &secret),
            Ok(())
        );
        assert_eq!(
            verify_meta_signature(&sign("other", body), body, &secret),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_meta_signature(&sign("app-secret", body), b"{}", &secret),
            Err(SignatureError::Mismatch)
        );
        for bad in ["", "sha1=abcd", "sha256=zz", "sha256=abcd", "abcd"] {
            assert_eq!(
                verify_meta_signature(bad, body, &secret),
                Err(SignatureError::Malformed),
                "{bad}"
            );
        }
    }

    #[test]
    fn payload_shapes() {
        let body = br#"{"object":"instagram","entry":[
            {"id":"17841405822304914","time":1714560000,"changes":[
                {"field":"comments","value":{"id":"1789","from":{"id":"6000","username":"bob"},"text":"nice!","media":{"id":"1790","media_product_type":"FEED"}}},
                {"field":"mentions","value":{"comment_id":"1791","media_id":"1792"}},
                {"field":"story_insights","value":{"media_id":"1","reach":17}}]},
            {"id":17841405822304915,"time":1714560001,"field":"mentions","value":{"media_id":"1793"}}]}"#;
        let hook = parse_meta_webhook(body).unwrap();
        assert_eq!(hook.object, "instagram");
        assert_eq!(hook.entries.len(), 2);
        assert!(
            matches!(&hook.entries[0].changes[0], MetaChange::Comment { text, from_username, .. } if text == "nice!" && from_username.as_deref() == Some("bob"))
        );
        assert_eq!(
            hook.entries[0].changes[1],
            MetaChange::Mention {
                media_id: "1792".into(),
                comment_id: Some("1791".into())
            }
        );
        assert!(
            matches!(&hook.entries[0].changes[2], MetaChange::Other { field, .. } if field == "story_insights")
        );
        assert_eq!(hook.entries[1].account_id, "17841405822304915");
        assert_eq!(
            hook.entries[1].changes[0],
            MetaChange::Mention {
                media_id: "1793".into(),
                comment_id: None
            }
        );
    }

    proptest! {
        #[test]
        fn any_header_never_panics(header in ".{0,120}", body in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = verify_meta_signature(&header, &body, &SecretString::from("k"));
        }

        #[test]
        fn round_trip(body in proptest::collection::vec(any::<u8>(), 0..256)) {
            prop_assert_eq!(verify_meta_signature(&sign("s", &body), &body, &SecretString::from("s")), Ok(()));
        }
    }
}
