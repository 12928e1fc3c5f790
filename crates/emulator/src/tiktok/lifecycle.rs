//! How a publish moves on once its bytes are in, on the emulated clock:
//!
//! `PROCESSING_UPLOAD` / `PROCESSING_DOWNLOAD` → (after `processing_delay_ms`)
//! `PUBLISH_COMPLETE` (direct) or `SEND_TO_USER_INBOX` (inbox), or `FAILED` under the
//! `fail_processing` fault; then, for public posts, the post id appears after
//! `moderation_delay_ms`. A background ticker and every status read drive the machine, so
//! advancing the clock through the admin API takes effect at once.

use std::sync::Arc;
use std::time::Duration;

use super::App;
use super::config::Config;
use super::state::{Mode, Publish, Source, Status, random_id19};
use super::webhooks::Event;
use crate::faults::Provider;

/// Marks a publish failed and returns the `post.publish.failed` event.
pub(crate) fn fail(publish: &mut Publish, reason: &str) -> Event {
    publish.status = Status::Failed;
    publish.fail_reason = Some(reason.to_string());
    publish.cancel.cancel();
    Event::publish("post.publish.failed", publish)
}

/// Marks a publish complete (direct post, or the creator posting an inbox draft).
pub(crate) fn complete(publish: &mut Publish, at_ms: i64) -> Event {
    publish.status = Status::PublishComplete;
    publish.completed_ms = Some(at_ms);
    Event::publish("post.publish.complete", publish)
}

/// Moves one publish as far as the clock allows; returns the events to send.
fn advance(
    publish: &mut Publish,
    now: i64,
    settings: &Config,
    fail_processing: bool,
) -> Vec<Event> {
    let mut events = Vec::new();
    if let (true, Some(done)) = (publish.status.is_processing(), publish.transfer_done_ms) {
        let ready_at = done + delay_ms(settings.processing_delay_ms);
        if now >= ready_at {
            events.push(if fail_processing {
                fail(publish, media_check_failure(publish.source))
            } else if publish.mode == Mode::Direct {
                complete(publish, ready_at)
            } else {
                publish.status = Status::SendToUserInbox;
                Event::publish("post.publish.inbox_delivered", publish)
            });
        }
    }
    if let (Status::PublishComplete, Some(done)) = (publish.status, publish.completed_ms)
        && publish.is_public()
        && publish.post_ids.is_empty()
        && now >= done + delay_ms(settings.moderation_delay_ms)
    {
        publish.post_ids.push(random_id19());
        events.push(Event::publish("post.publish.publicly_available", publish));
    }
    events
}

/// The fail_reason used by the `fail_processing` fault.
fn media_check_failure(source: Source) -> &'static str {
    match source {
        Source::Photo => "picture_size_check_failed",
        Source::FileUpload | Source::PullFromUrl => "file_format_check_failed",
    }
}

fn delay_ms(ms: u64) -> i64 {
    i64::try_from(ms).unwrap_or(i64::MAX / 4)
}

impl App {
    /// Advances every publish and sends the resulting webhooks.
    pub fn tick(&self) {
        let settings = self.settings();
        let fail_processing = self.ctx.faults.get(Provider::Tiktok).fail_processing;
        let now = self.now_ms();
        let events: Vec<Event> = self
            .store()
            .publishes
            .iter_mut()
            .flat_map(|publish| advance(publish, now, &settings, fail_processing))
            .collect();
        if !events.is_empty() {
            self.emit(events);
        }
    }
}

/// Ticks in the background while the router is alive.
pub(crate) fn spawn_ticker(app: &App) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let weak = Arc::downgrade(&app.0);
    runtime.spawn(async move {
        let mut interval = tokio::time::interval(Duration::from_millis(100));
        loop {
            interval.tick().await;
            match weak.upgrade() {
                Some(inner) => App(inner).tick(),
                None => return,
            }
        }
    });
}
