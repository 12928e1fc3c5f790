//! Outbound Instagram webhooks as Meta sends them: the verification handshake (`GET` with
//! `hub.mode=subscribe`, `hub.verify_token`, `hub.challenge`) and signed `POST` deliveries
//! (`X-Hub-Signature-256: sha256=<hex HMAC-SHA256(app secret, raw body)>`) in the
//! `{"object":"instagram","entry":[{"id","time","changes":[{"field","value"}]}]}` shape.
//!
//! Deliveries for media published with an Instagram Login token are signed with the Instagram
//! app secret, the others with the Facebook app secret.

use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use super::state::{Login, Meta};
use crate::faults::Provider;
use crate::webhook::Webhook;

/// `sha256=<lowercase hex HMAC-SHA256(secret, body)>`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Meta serializes payloads with non-ASCII characters escaped (`\u00e4`).
pub fn escape_non_ascii(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for ch in json.chars() {
        if ch.is_ascii() {
            out.push(ch);
        } else {
            let mut units = [0u16; 2];
            for unit in ch.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}

/// Queues a `field` change for Instagram account `account` to the configured callback.
/// Returns `false` when no callback URL is set.
pub fn deliver(meta: &Meta, login: Login, account: &str, field: &str, value: Value) -> bool {
    let Some(url) = meta.settings().webhook_url else {
        return false;
    };
    let payload = json!({
        "object": "instagram",
        "entry": [{
            "id": account,
            "time": meta.ctx.clock.now_secs(),
            "changes": [{ "field": field, "value": value }],
        }],
    });
    let body = escape_non_ascii(&payload.to_string()).into_bytes();
    let secret = match login {
        Login::Facebook => &meta.config.app_secret,
        Login::Instagram => &meta.config.instagram_app_secret,
    };
    let webhook = Webhook {
        provider: Provider::Meta,
        url,
        headers: vec![
            ("Content-Type".into(), "application/json".into()),
            ("X-Hub-Signature-256".into(), signature(secret, &body)),
            ("User-Agent".into(), "facebookexternalua".into()),
        ],
        body,
    };
    meta.ctx.webhooks.send(webhook, &meta.faults());
    true
}

/// Performs the verification handshake against the callback and reports the outcome:
/// `{"ok","url","status","challenge","body"}` (`ok` when the answer is 200 with the challenge).
pub async fn handshake(
    meta: &Meta,
    url: Option<String>,
    verify_token: Option<String>,
) -> Result<Value, String> {
    let settings = meta.settings();
    let url = url
        .or(settings.webhook_url)
        .ok_or("no webhook URL is configured")?;
    let verify_token = verify_token.unwrap_or(settings.webhook_verify_token);
    let challenge = format!("{}", rand::random::<u32>());
    let mut target = url::Url::parse(&url).map_err(|e| format!("invalid webhook URL: {e}"))?;
    target
        .query_pairs_mut()
        .append_pair("hub.mode", "subscribe")
        .append_pair("hub.challenge", &challenge)
        .append_pair("hub.verify_token", &verify_token);
    let (status, body) = match meta.ctx.http.get(target).send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            (Some(status), response.text().await.unwrap_or_default())
        }
        Err(err) => (None, format!("request failed: {err}")),
    };
    let ok = status == Some(200) && body.trim() == challenge;
    Ok(json!({"ok": ok, "url": url, "status": status, "challenge": challenge, "body": body}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_like_meta() {
        assert_eq!(
            escape_non_ascii("{\"t\":\"ä😀\"}"),
            "{\"t\":\"\\u00e4\\ud83d\\ude00\"}"
        );
    }

    #[test]
    fn signs_with_hmac_sha256() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
