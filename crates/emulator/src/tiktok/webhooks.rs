//! TikTok webhook events: the documented body (`client_key, event, create_time, user_openid,
//! content` with `content` a JSON string) signed with
//! `TikTok-Signature: t=<unix>,s=<hex HMAC-SHA256(client_secret, "<t>.<body>")>`.

use hmac::{Hmac, KeyInit, Mac};
use serde::Serialize;
use serde_json::json;
use sha2::Sha256;

use super::App;
use super::state::Publish;
use crate::faults::Provider;
use crate::webhook::Webhook;

/// One event to send once the state lock is released.
#[derive(Debug, Clone)]
pub(crate) struct Event {
    pub open_id: String,
    pub name: &'static str,
    pub content: serde_json::Value,
}

impl Event {
    pub fn authorization_removed(open_id: &str, reason: u8) -> Self {
        Self {
            open_id: open_id.into(),
            name: "authorization.removed",
            content: json!({"reason": reason}),
        }
    }

    /// A `post.publish.*` event about `publish`.
    pub fn publish(name: &'static str, publish: &Publish) -> Self {
        let mut content =
            json!({"publish_id": publish.publish_id, "publish_type": publish.mode.publish_type()});
        match name {
            "post.publish.failed" => {
                content["reason"] = json!(publish.fail_reason.as_deref().unwrap_or("internal"))
            }
            "post.publish.publicly_available" | "post.publish.no_longer_publicaly_available" => {
                content["post_id"] = json!(publish.post_ids.last());
            }
            _ => {}
        }
        Self {
            open_id: publish.open_id.clone(),
            name,
            content,
        }
    }
}

#[derive(Serialize)]
struct Body<'a> {
    client_key: &'a str,
    event: &'a str,
    create_time: i64,
    user_openid: &'a str,
    content: String,
}

impl App {
    /// Signs and queues events for the configured callback URL (none configured: dropped).
    pub fn emit(&self, events: Vec<Event>) {
        let settings = self.settings();
        let Some(url) = settings.webhook_url.filter(|u| !u.is_empty()) else {
            return;
        };
        let faults = self.ctx.faults.get(Provider::Tiktok);
        for event in events {
            let create_time = self.ctx.clock.now_secs();
            let body = Body {
                client_key: &settings.client_key,
                event: event.name,
                create_time,
                user_openid: &event.open_id,
                content: event.content.to_string(),
            };
            let Ok(body) = serde_json::to_vec(&body) else {
                continue;
            };
            let signature = signature_header(&settings.client_secret, create_time, &body);
            let headers = vec![
                ("Content-Type".to_string(), "application/json".to_string()),
                ("TikTok-Signature".to_string(), signature),
            ];
            self.ctx.webhooks.send(
                Webhook {
                    provider: Provider::Tiktok,
                    url: url.clone(),
                    headers,
                    body,
                },
                &faults,
            );
        }
    }
}

/// `t=<unix>,s=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
pub(crate) fn signature_header(secret: &str, t: i64, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes())
        .expect("HMAC accepts any key length");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("t={t},s={}", hex::encode(mac.finalize().into_bytes()))
}
