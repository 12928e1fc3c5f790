//! Outbound webhook delivery as the providers do it: POST the signed body to the app's callback
//! URL, retry with backoff until a 2xx, and obey the webhook fault knobs (delay, duplicates,
//! reordering). Every attempt is recorded for the admin API.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;

use crate::faults::{FaultSet, Provider};

/// One webhook to deliver: the body is sent byte for byte as signed.
#[derive(Debug, Clone)]
pub struct Webhook {
    pub provider: Provider,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// A delivery attempt as the admin API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct DeliveryAttempt {
    pub provider: Provider,
    pub url: String,
    pub body: String,
    pub attempt: u32,
    /// HTTP status of the receiver's answer, or `None` when the connection failed.
    pub status: Option<u16>,
}

#[derive(Clone)]
pub struct WebhookSender {
    http: reqwest::Client,
    attempts: Arc<Mutex<Vec<DeliveryAttempt>>>,
    held: Arc<Mutex<Vec<Webhook>>>,
    /// How many attempts before a webhook is dropped (the real providers retry for up to 72 h).
    pub max_attempts: u32,
    /// Delay before the second attempt; doubles each time.
    pub first_retry_delay: Duration,
}

impl WebhookSender {
    pub fn new(http: reqwest::Client) -> Self {
        Self {
            http,
            attempts: Arc::default(),
            held: Arc::default(),
            max_attempts: 6,
            first_retry_delay: Duration::from_millis(500),
        }
    }

    /// Queues a webhook for delivery in the background, applying `faults`.
    pub fn send(&self, webhook: Webhook, faults: &FaultSet) {
        let batch = match faults.reorder_webhooks {
            Some(n) if n > 1 => {
                let mut held = self.held.lock().expect("held webhooks lock");
                held.push(webhook);
                if held.len() < n {
                    return;
                }
                let mut batch: Vec<Webhook> = held.drain(..).collect();
                batch.reverse();
                batch
            }
            _ => vec![webhook],
        };
        let copies = if faults.duplicate_webhooks { 2 } else { 1 };
        let delay = Duration::from_millis(faults.webhook_delay_ms);
        let this = self.clone();
        tokio::spawn(async move {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            for webhook in batch {
                for _ in 0..copies {
                    this.deliver(&webhook).await;
                }
            }
        });
    }

    /// Sends whatever is held for reordering, newest first.
    pub fn flush_held(&self) {
        let mut batch: Vec<Webhook> = self
            .held
            .lock()
            .expect("held webhooks lock")
            .drain(..)
            .collect();
        batch.reverse();
        let this = self.clone();
        tokio::spawn(async move {
            for webhook in batch {
                this.deliver(&webhook).await;
            }
        });
    }

    async fn deliver(&self, webhook: &Webhook) {
        let mut delay = self.first_retry_delay;
        for attempt in 1..=self.max_attempts {
            let mut request = self.http.post(&webhook.url).body(webhook.body.clone());
            for (name, value) in &webhook.headers {
                request = request.header(name, value);
            }
            let status = match request.send().await {
                Ok(response) => Some(response.status().as_u16()),
                Err(_) => None,
            };
            self.attempts
                .lock()
                .expect("attempts lock")
                .push(DeliveryAttempt {
                    provider: webhook.provider,
                    url: webhook.url.clone(),
                    body: String::from_utf8_lossy(&webhook.body).into_owned(),
                    attempt,
                    status,
                });
            if status.is_some_and(|s| (200..300).contains(&s)) {
                return;
            }
            tokio::time::sleep(delay).await;
            delay *= 2;
        }
    }

    pub fn attempts(&self) -> Vec<DeliveryAttempt> {
        self.attempts.lock().expect("attempts lock").clone()
    }
}
