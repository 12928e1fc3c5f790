//! Instagram's comments in the CRM: the `crm.comments` pull of an account's recent media
//! (driven by `crate::crm::sync`), page by page from where the last pull stopped (a cursor per
//! account and media), and which interactions tidepost can answer.

use tidepost_domain::Platform;
use tidepost_jobs::JobError;
use tidepost_store::StoreError;
use tidepost_store::accounts::Account;
use tidepost_store::crm::contacts::Sighting;
use tidepost_store::crm::interactions::{self, Observed};
use tidepost_store::crm::{cursors, metrics};

use super::metrics::take_slot;
use crate::App;
use crate::crm::announce_in;
use crate::tokens::{self, TokenError};

/// Comment pages read per media per pull.
const MAX_COMMENT_PAGES: usize = 10;

/// Whether an interaction of `kind` can be answered from tidepost: comments and replies.
pub fn can_answer(kind: &str) -> bool {
    matches!(kind, "comment" | "reply")
}

/// Pulls the new comments of the account's tracked media (stories have none to pull).
pub async fn pull(app: &App, account: &Account, now: i64) -> Result<(), JobError> {
    let (client, host) = super::graph_for_job(app, account)?;
    let workspace_id = &account.workspace_id;
    for track in metrics::active_of_account(&app.db, workspace_id, &account.id).await? {
        if track.media_type.as_deref() == Some("story") {
            continue;
        }
        let scope = format!("comments:{}", track.provider_media_id);
        let mut after = cursors::get(&app.db, workspace_id, &account.id, &scope).await?;
        for _ in 0..MAX_COMMENT_PAGES {
            take_slot(app, account, now).await?;
            let media = track.provider_media_id.clone();
            let page_after = after.clone();
            let page = tokens::with_token(app, account, |token| {
                let (client, media, page_after) =
                    (client.clone(), media.clone(), page_after.clone());
                async move {
                    client
                        .comments(host, &token, &media, page_after.as_deref())
                        .await
                }
            })
            .await;
            let page = match page {
                Ok(page) => page,
                Err(TokenError::Provider(e)) if !e.is_retryable() => {
                    tracing::info!(account_id = %account.id, media = %track.provider_media_id, error = %e, "comments pull skipped a media");
                    break;
                }
                Err(err) => return Err(JobError::retryable(err.to_string())),
            };
            let mut tx = app.db.begin_write().await?;
            for c in &page.comments {
                let at = c
                    .timestamp
                    .as_deref()
                    .and_then(parse_graph_time)
                    .unwrap_or(now);
                let author = c.from.as_ref().filter(|f| !f.id.is_empty());
                let own = author.is_some_and(|f| f.id == account.provider_user_id);
                let observed = Observed {
                    platform: Platform::Instagram,
                    kind: if c.parent_id.is_some() {
                        "reply"
                    } else {
                        "comment"
                    },
                    direction: if own { "outbound" } else { "inbound" },
                    provider_id: &c.id,
                    parent_provider_id: c.parent_id.as_deref(),
                    author: author.filter(|_| !own).map(|f| Sighting {
                        platform: Platform::Instagram,
                        platform_user_id: &f.id,
                        handle: f.username.as_deref().or(c.username.as_deref()),
                        name: None,
                        at,
                    }),
                    account_id: &account.id,
                    provider_media_id: Some(&track.provider_media_id),
                    text: &c.text,
                    occurred_at: at,
                };
                if let Some(i) = interactions::record_in(&mut tx, workspace_id, &observed).await? {
                    announce_in(&mut tx, &i).await?;
                }
            }
            tx.commit().await.map_err(StoreError::from)?;
            // Resume from the last page that had a next one: the final page is read again
            // next time (recording is idempotent), so comments added to it are not missed.
            match page.next_cursor {
                Some(next) => {
                    cursors::set(&app.db, workspace_id, &account.id, &scope, &next).await?;
                    after = Some(next);
                }
                None => break,
            }
        }
    }
    Ok(())
}

/// Graph times: `2024-05-01T12:00:00+0000`.
fn parse_graph_time(text: &str) -> Option<i64> {
    let normal = if text.len() > 5 && (text.ends_with("+0000") || text.ends_with("-0000")) {
        format!("{}Z", &text[..text.len() - 5])
    } else {
        text.to_string()
    };
    normal
        .parse::<jiff::Timestamp>()
        .ok()
        .map(|t| t.as_millisecond())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graph_times_parse() {
        assert_eq!(parse_graph_time("1970-01-01T00:00:01+0000"), Some(1_000));
        assert_eq!(parse_graph_time("nonsense"), None);
    }

    #[test]
    fn comments_and_replies_can_be_answered() {
        assert!(can_answer("comment"));
        assert!(can_answer("reply"));
        assert!(!can_answer("mention"));
    }
}
