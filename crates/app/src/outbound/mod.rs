//! Outbound webhooks: telling the host application what happened, signed as the
//! [Standard Webhooks](https://www.standardwebhooks.com/) specification says.
//!
//! # Where events come from
//!
//! The source is the workspace event log ([`tidepost_store::events`]). Whoever records an event
//! with `events::record` / `events::record_in` publishes it, if its type is one of
//! [`EVENT_TYPES`]; nothing else needs to be called. Today they are recorded by:
//!
//! | type | recorded by | `subject_id` |
//! |---|---|---|
//! | `account.connected`, `account.reconnected` | `connect::announce_connected` (from each platform's `connect.rs`) | the account |
//! | `account.needs_reauth` | `tokens::mark_needs_reauth` | the account |
//! | `account.disconnected` | `connect::disconnect` | the account |
//! | `post.published`, `post.failed`, `post.outcome_unknown` | `pipeline::advance` (a target reaching its final state; see `pipeline::final_event`), `tiktok::reconcile` | the post |
//! | `post.updated` | `pipeline::record_provider_status` (a published target's post ids arriving later) | the post |
//! | `interaction.created` | the Instagram comment/mention webhook, the CRM | the account |
//! | `metrics.updated` | the CRM's metrics sync | the post |
//! | `endpoint.disabled` | [`deliver`] (an endpoint that kept failing) | the endpoint |
//!
//! **Payload convention** (for anyone adding an event): the payload is a JSON object and becomes
//! the webhook's `data` verbatim, so it must hold no secret (no token, no signed URL), name
//! objects by their tidepost ids (`account_id`, `post_id`, `target_id`, `creator_id`,
//! `contact_id`, `interaction_id`) plus `platform`, and be useful without a follow-up call
//! (display names, counts, the error's `code` and `message`). `metrics.updated` carries
//! `{"post_id", "target_id", "account_id", "platform", "metrics": {"views", "likes",
//! "comments", "shares", "saves", "reach"}, "sampled_at"}` (absent counts omitted);
//! The `post.*` events carry `{"post_id", "target_id", "account_id", "platform", "mode",
//! "state", "publish_id", "post_ids", "post_url", "error"}`: `post_ids` and `post_url` as soon
//! as the platform told them (else `[]` and null, followed by `post.updated` when they arrive).
//! A target whose publish answer was lost is announced `post.outcome_unknown`, never
//! `post.failed`: it may still turn out published (then `post.published` follows), so a
//! receiver never sees a failure that later reverses.
//! The `account.*` events carry `{"account_id", "platform", "external_ref"}` (the host's id
//! for the creator, from the connect link; null when none) and what the event adds
//! (`display_name`, `reason`…).
//! `interaction.created` carries `{"interaction_id", "kind", "account_id", "platform",
//! "contact_id", "post_id", "text", "time"}` as far as known.
//!
//! # From event to delivery
//!
//! [`dispatch`] reads the events recorded since its cursor (less a one-minute look-back for
//! transactions that committed late and for clock skew between instances) that an enabled
//! endpoint of the same workspace subscribes to, and turns each (event, endpoint) pair into one
//! delivery row, unique on the pair: two instances dispatching at once, or the look-back
//! re-reading an event, cannot create it twice, and only the dispatcher whose insert created
//! the row sends it.
//!
//! It runs **at once** when this process records an event: `events::record`/`record_in`
//! announce it ([`tidepost_store::events::recorded`]) and a listener task — started by the
//! first sweep a worker process runs — dispatches on each announcement (and again 20 ms and
//! 200 ms after one made inside a transaction, which is announced before it commits), reading
//! from half a second before its previous dispatch. The recurring sweep (every
//! `webhooks_dispatch_interval_ms`, default 1 s), with its minute of look-back, stays as the
//! fallback for events other instances record and for commits slower than that.
//!
//! Candidates are read a page at a time in (event time, event id, endpoint id) order, each
//! page from where the last one ended, so a page costs what it returns however long the
//! backlog behind it.
//!
//! # Delivering
//!
//! The **first attempt** is made by the dispatcher itself, not through a job: it takes a
//! permit per delivery before creating a page of them (at most [`dispatch::DIRECT_CONCURRENCY`]
//! first attempts in flight per process), so each attempt starts as soon as its delivery
//! exists. The deliveries are created with no attempt counted. An attempt is counted when its
//! outcome is recorded, in one transaction with its log row, the delivery's new state, the
//! endpoint's success and (when it failed) the retry job; the dispatcher's attempts are
//! recorded in groups by one writer per process ([`recorder`]), which also creates the next
//! page of deliveries. A first attempt cut short by a crash leaves a pending delivery with no
//! attempt counted; the sweep re-queues it once it is older than the request timeout plus a
//! minute ([`dispatch::recover_stranded_now`]). **Retries** and re-sends are `webhooks.deliver`
//! jobs ([`deliver`]), one attempt per run, counted the same way: a run cut short makes its
//! attempt again.
//!
//! Each attempt is a `POST` of the delivery's fixed body with
//! `webhook-id` (the event id, the same on every retry), `webhook-timestamp` (unix seconds of the
//! attempt) and `webhook-signature` ([`signing`]), through the SSRF guard
//! ([`crate::net_guard`]). A 2xx within the timeout (`webhooks_timeout_secs`, 15 s) is
//! delivered; anything else is retried on [`deliver::SCHEDULE`] (at once, 5 s, 5 min, 30 min,
//! 2 h, 5 h, 10 h, 10 h: eight attempts over about 27.5 hours), then the delivery has failed.
//!
//! **Disabling**: an endpoint whose deliveries fail for good `webhooks_disable_after_failures`
//! times in a row (default 5, with no delivery getting through in between) is disabled: its
//! pending deliveries fail, `endpoint.disabled` is recorded (other endpoints of the workspace
//! may subscribe to it) and the UI shows a notice until someone enables it again. A count
//! rather than a duration, so a quiet endpoint is not disabled for one bad day, and a busy one
//! that is down is disabled after about a day (five deliveries each retried for 27.5 hours).
//!
//! Every attempt is kept ([`tidepost_store::webhook_deliveries::Attempt`]: status, latency,
//! 1 KiB of the answer, error) for the delivery log; a person or the API can re-send a
//! delivery ([`deliver::resend`]), which makes one more attempt at once.

pub mod deliver;
pub mod dispatch;
pub mod endpoints;
pub mod recorder;
pub mod signing;

use tidepost_jobs::Registry;

use crate::App;
use crate::config::{ConfigError, RawSettings};
use crate::net_guard::NetPolicy;

/// The dispatcher's state in this process: whether its listener runs, the permits that bound
/// how many first attempts it has in flight (shared by the listener and the sweep; a delivery
/// takes one before it is created and gives it back once its attempt is recorded), and the
/// group writer that records them ([`recorder`]).
#[derive(Debug)]
pub struct Live {
    pub(crate) listener_started: std::sync::atomic::AtomicBool,
    /// A sweep job is running in this process (a second one would only race it).
    pub(crate) sweeping: std::sync::atomic::AtomicBool,
    pub(crate) permits: std::sync::Arc<tokio::sync::Semaphore>,
    pub(crate) recorder: std::sync::Arc<recorder::Recorder>,
}

impl Default for Live {
    fn default() -> Self {
        Self {
            listener_started: std::sync::atomic::AtomicBool::new(false),
            sweeping: std::sync::atomic::AtomicBool::new(false),
            permits: std::sync::Arc::new(tokio::sync::Semaphore::new(dispatch::DIRECT_CONCURRENCY)),
            recorder: std::sync::Arc::default(),
        }
    }
}

/// The event types an endpoint can subscribe to, in the order the UI lists them.
pub const EVENT_TYPES: &[(&str, &str)] = &[
    ("account.connected", "An account was connected"),
    (
        "account.reconnected",
        "An account connected before was connected again",
    ),
    ("account.needs_reauth", "An account must be connected again"),
    ("account.disconnected", "An account was disconnected"),
    ("post.published", "A post was published to an account"),
    ("post.failed", "A post failed on an account"),
    (
        "post.outcome_unknown",
        "A post may or may not have reached its platform (the answer was lost); it is settled later",
    ),
    (
        "post.updated",
        "A published post's platform ids or link arrived",
    ),
    ("interaction.created", "A comment, reply or mention arrived"),
    ("metrics.updated", "A post's metrics were updated"),
    (
        "endpoint.disabled",
        "A webhook endpoint was disabled after failing",
    ),
];

/// The names of [`EVENT_TYPES`].
pub fn event_type_names() -> Vec<&'static str> {
    EVENT_TYPES.iter().map(|(name, _)| *name).collect()
}

/// The outbound webhook settings (`webhooks_*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundSettings {
    /// Deliveries may go to private and local addresses.
    pub allow_private: bool,
    pub timeout_secs: u64,
    /// How long a rotated-out secret keeps signing beside the new one.
    pub secret_overlap_secs: u64,
    /// Final failures in a row that disable an endpoint.
    pub disable_after_failures: u32,
    pub dispatch_interval_ms: u64,
}

impl OutboundSettings {
    /// Reads the `webhooks_*` settings; private targets are allowed by default in sandbox mode.
    pub fn from_raw(raw: &RawSettings, sandbox: bool) -> Result<Self, ConfigError> {
        let number = |name: &'static str, default: u64, min: u64, max: u64| match raw.get(name) {
            None => Ok(default),
            Some((text, origin)) => match text.trim().parse::<u64>() {
                Ok(n) if (min..=max).contains(&n) => Ok(n),
                _ => Err(ConfigError::Invalid {
                    setting: name,
                    origin: origin.to_string(),
                    message: format!("expected a whole number from {min} to {max}, got {text:?}"),
                }),
            },
        };
        let allow_private = match raw.get("webhooks_allow_private") {
            None => sandbox,
            Some((text, origin)) => match text.trim().to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" | "on" => true,
                "0" | "false" | "no" | "off" => false,
                _ => {
                    return Err(ConfigError::Invalid {
                        setting: "webhooks_allow_private",
                        origin: origin.to_string(),
                        message: format!("expected true or false, got {text:?}"),
                    });
                }
            },
        };
        Ok(Self {
            allow_private,
            timeout_secs: number("webhooks_timeout_secs", 15, 1, 120)?,
            secret_overlap_secs: number("webhooks_secret_overlap_secs", 86_400, 0, 30 * 86_400)?,
            disable_after_failures: u32::try_from(number(
                "webhooks_disable_after_failures",
                5,
                1,
                10_000,
            )?)
            .unwrap_or(5),
            dispatch_interval_ms: number("webhooks_dispatch_interval_ms", 1000, 100, 3_600_000)?,
        })
    }
}

/// The guard's policy for this application.
pub fn policy(app: &App) -> NetPolicy {
    NetPolicy {
        allow_private: app.config.outbound.allow_private,
    }
}

/// Registers the dispatch sweep and the delivery job.
pub fn register(registry: Registry, app: &App) -> Registry {
    let registry = dispatch::register(registry, app);
    deliver::register(registry, app)
}

/// The dispatch sweep's schedule (idempotent; every instance may call it at start).
pub async fn ensure_schedules(app: &App) -> tidepost_jobs::Result<()> {
    dispatch::ensure_schedule(app).await
}
