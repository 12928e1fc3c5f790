//! Connected accounts: the connect pages, the account list and detail, disconnecting, and the
//! reusable account card (also on the dashboard).

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;
use tidepost_app::connect::{ConnectError, Initiator};
use tidepost_app::pipeline::quota::DAY_MS;
use tidepost_app::tiktok::connect::SCOPE_REASONS as TIKTOK_SCOPE_REASONS;
use tidepost_domain::Platform;
use tidepost_store::accounts::{self, Account};
use tidepost_store::{StoreError, events, posts};

use super::Chrome;
use crate::auth::{CsrfForm, Viewer};
use crate::error::PageError;
use crate::state::HttpState;
use crate::zone::Zone;

pub fn router() -> Router<HttpState> {
    Router::new()
        .route(
            "/connect/tiktok",
            get(connect_tiktok_page).post(connect_tiktok_start),
        )
        .route(
            "/connect/threads",
            get(connect_threads_page).post(connect_threads_start),
        )
        .route("/accounts", get(list))
        .route("/accounts/{id}", get(detail))
        .route("/accounts/{id}/disconnect", post(disconnect))
}

/// An account as the card shows it.
pub struct AccountCard {
    pub id: String,
    pub platform: Platform,
    pub platform_name: &'static str,
    pub platform_initial: &'static str,
    pub display_name: String,
    pub username: Option<String>,
    pub avatar_url: Option<String>,
    pub health: &'static str,
    pub health_class: &'static str,
    pub needs_reauth: bool,
    /// Why the account cannot post now (a blocked creator, a used-up limit): no "New post".
    pub posting_block: Option<String>,
    pub status_reason: Option<String>,
    pub token_line: String,
    pub reconnect_href: String,
    /// On the account's own page (no link to itself).
    pub on_own_page: bool,
    /// Shown in a host's widget: no links or buttons into tidepost.
    pub read_only: bool,
    /// In a host's widget minted with a `return_url`: the Reconnect form.
    pub widget_reconnect: Option<WidgetReconnect>,
    /// Quota left today and the latest posts (TikTok accounts, where the page asks for them).
    pub tiktok: Option<TikTokStats>,
    /// Token days left, publishing limit used and the latest posts (Instagram accounts).
    pub instagram: Option<InstagramStats>,
}

/// The widget's Reconnect button: where it posts and its form token.
pub struct WidgetReconnect {
    pub action: String,
    pub form_token: String,
}

/// What a TikTok account's card adds on the dashboard and the account page: direct posts
/// left today out of the daily cap (and when the next slot opens), drafts waiting in the
/// creator's inbox and the latest posts. Read from tidepost's own records with indexed
/// queries; never a call to TikTok.
pub struct TikTokStats {
    pub direct_cap: i64,
    pub direct_used: i64,
    pub direct_left: i64,
    /// When the daily cap is reached: when the next direct post may go out.
    pub next_slot: Option<String>,
    pub inbox_cap: i64,
    pub inbox_pending: i64,
    pub recent: Vec<RecentPost>,
}

/// One of an account's latest posts, as a line of the widget.
pub struct RecentPost {
    pub id: String,
    pub caption: String,
    pub mode: &'static str,
    pub state: String,
    pub state_class: String,
    pub when: String,
}

impl TikTokStats {
    /// Reads the stats of `account` (a TikTok account) at `now`.
    pub async fn of(
        state: &HttpState,
        account: &Account,
        now: i64,
        zone: &Zone,
    ) -> Result<Self, PageError> {
        let settings = &state.app.config.publish;
        let since = now - DAY_MS;
        let (direct, inbox) = {
            let mut conn = state
                .app
                .db
                .pool()
                .acquire()
                .await
                .map_err(StoreError::from)?;
            let direct = posts::quota_inits(&mut conn, &account.id, "direct", since, None).await?;
            let inbox = posts::quota_inits(&mut conn, &account.id, "inbox", since, None).await?;
            (direct, inbox)
        };
        let direct_cap = i64::from(settings.tiktok_direct_post_daily_cap);
        let direct_used = direct.len() as i64;
        let direct_left = (direct_cap - direct_used).max(0);
        // The same rule as the publish check: the (used - cap + 1)-th oldest init must leave
        // the 24-hour window before one more fits.
        let next_slot = (direct_left == 0 && direct_cap > 0).then(|| {
            let at = direct[direct.len() - direct_cap as usize].1 + DAY_MS;
            format!("{} (in {})", zone.when(Some(at)), human_duration(at - now))
        });
        let inbox_pending = inbox
            .iter()
            .filter(|(_, _, status)| status.as_deref() != Some("PUBLISH_COMPLETE"))
            .count() as i64;
        let recent = recent_posts(state, account, zone).await?;
        Ok(Self {
            direct_cap,
            direct_used,
            direct_left,
            next_slot,
            inbox_cap: i64::from(settings.tiktok_pending_inbox_cap),
            inbox_pending,
            recent,
        })
    }
}

/// The account's 3 latest posts, as lines of a widget.
async fn recent_posts(
    state: &HttpState,
    account: &Account,
    zone: &Zone,
) -> Result<Vec<RecentPost>, PageError> {
    Ok(
        posts::recent_for_account(&state.app.db, &account.workspace_id, &account.id, 3)
            .await?
            .into_iter()
            .map(|t| RecentPost {
                state_class: format!("state-{}", t.state),
                state: t.state.replace('_', " "),
                caption: if t.caption.is_empty() {
                    format!("({} without a caption)", t.kind)
                } else {
                    t.caption
                },
                mode: if t.mode == "inbox" { "draft" } else { "direct" },
                when: zone.when(Some(t.created_at)),
                id: t.post_id,
            })
            .collect(),
    )
}

/// What an Instagram account's card adds: how long its token lasts, how much of Meta's
/// publishing limit the account used at the last check (kept by the publish job: no call to
/// Meta while the page loads), and the latest posts.
pub struct InstagramStats {
    pub token_days_left: Option<i64>,
    /// (used, total, checked when), from the last reading.
    pub limit: Option<(i64, i64, String)>,
    pub recent: Vec<RecentPost>,
}

impl InstagramStats {
    pub async fn of(
        state: &HttpState,
        account: &Account,
        now: i64,
        zone: &Zone,
    ) -> Result<Self, PageError> {
        let details: serde_json::Value = serde_json::from_str(&account.details).unwrap_or_default();
        let reading = &details[tidepost_app::instagram::limits::PUBLISHING_LIMIT_DETAIL];
        let limit = reading["used"].as_i64().map(|used| {
            let total = reading["total"].as_i64().unwrap_or(100);
            (used, total, zone.when(reading["checked_at"].as_i64()))
        });
        Ok(Self {
            token_days_left: account
                .access_expires_at
                .map(|at| ((at - now) / 86_400_000).max(0)),
            limit,
            recent: recent_posts(state, account, zone).await?,
        })
    }
}

impl AccountCard {
    pub fn of(account: &Account) -> Self {
        let platform_name = account.platform.display_name();
        let platform_initial = match account.platform {
            Platform::Tiktok => "T",
            Platform::Instagram => "I",
            Platform::Threads => "@",
        };
        let now = tidepost_domain::now_ms();
        let posting_block = tidepost_app::platforms::posting_block(account, now);
        let (health, health_class) = if account.needs_reauth() {
            ("needs reconnect", "bad")
        } else if posting_block.is_some() {
            ("cannot post", "bad")
        } else if account.access_expires_at.is_some_and(|at| at < now) {
            ("token expired", "warn")
        } else {
            ("healthy", "ok")
        };
        let token_line = match account.access_expires_at {
            _ if account.needs_reauth() => {
                "refused by the provider; reconnect to resume publishing".to_string()
            }
            Some(at) if at > now => format!(
                "valid for {}, renewed automatically",
                human_duration(at - now)
            ),
            Some(_) => "expired; renewing".to_string(),
            None => "does not expire".to_string(),
        };
        Self {
            id: account.id.clone(),
            platform: account.platform,
            platform_name,
            platform_initial,
            display_name: account.display_name.clone(),
            username: account.username.clone(),
            avatar_url: account.avatar_url.clone(),
            health,
            health_class,
            needs_reauth: account.needs_reauth(),
            posting_block,
            status_reason: account.status_reason.clone(),
            token_line,
            reconnect_href: format!("/connect/{}", account.platform),
            on_own_page: false,
            read_only: false,
            widget_reconnect: None,
            tiktok: None,
            instagram: None,
        }
    }

    /// The card of `account` after a fresh reading of whether it may post (no stats): every
    /// page that shows an account's health reads it first, so none shows a blocked account
    /// healthy.
    pub async fn fresh(state: &HttpState, account: &Account) -> Result<Self, PageError> {
        Ok(Self::of(&with_fresh_reading(state, account).await?))
    }

    /// The card of `account`, with its [`TikTokStats`] when it is a TikTok account.
    pub async fn with_stats(
        state: &HttpState,
        account: &Account,
        zone: &Zone,
    ) -> Result<Self, PageError> {
        let account = &with_fresh_reading(state, account).await?;
        let mut card = Self::of(account);
        let now = tidepost_domain::now_ms();
        match account.platform {
            Platform::Tiktok => {
                card.tiktok = Some(TikTokStats::of(state, account, now, zone).await?)
            }
            Platform::Instagram => {
                card.instagram = Some(InstagramStats::of(state, account, now, zone).await?);
            }
            // The publishing limit shows on the card's health; Threads has no stats card yet.
            Platform::Threads => {}
        }
        Ok(card)
    }
}

/// How old Instagram's last publishing-limit reading may be before a page showing the account
/// reads it again (a blocked account is read again on every load, so a lifted block shows).
const INSTAGRAM_READING_FRESH_MS: i64 = 60_000;

/// The account after a fresh reading of whether it may post, when its platform has one to read,
/// kept on the account (`platforms::posting_block`) so the card, the API and the composer agree.
/// A failed reading changes nothing.
///
/// - TikTok: `creator_info`, through the one-minute cache of answers the composer and the API
///   share (`platforms/tiktok/creator_cache.rs`); a refusal is not kept there, so a blocked
///   creator is asked again on the next load and a lifted block shows at once.
/// - Instagram: Meta's publishing limit, when the last reading is older than a minute or says
///   the limit is used up.
async fn with_fresh_reading(state: &HttpState, account: &Account) -> Result<Account, PageError> {
    if account.needs_reauth() {
        return Ok(account.clone());
    }
    let now = tidepost_domain::now_ms();
    let blocked = tidepost_app::platforms::posting_block(account, now).is_some();
    let read = match account.platform {
        Platform::Tiktok => {
            // The cache keeps an answer, never a refusal: a blocked creator is asked again.
            tidepost_app::tiktok::creator_cache::creator_info(&state.app, account)
                .await
                .map(drop)
                .map_err(|e| e.to_string())
        }
        Platform::Instagram => {
            let details: serde_json::Value =
                serde_json::from_str(&account.details).unwrap_or_default();
            let checked_at =
                details[tidepost_app::instagram::limits::PUBLISHING_LIMIT_DETAIL]["checked_at"]
                    .as_i64();
            if blocked || checked_at.is_none_or(|at| now - at >= INSTAGRAM_READING_FRESH_MS) {
                tidepost_app::instagram::limits::publishing_limit(&state.app, account)
                    .await
                    .map(drop)
                    .map_err(|e| e.to_string())
            } else {
                return Ok(account.clone());
            }
        }
        Platform::Threads => {
            let details: serde_json::Value =
                serde_json::from_str(&account.details).unwrap_or_default();
            let checked_at =
                details[tidepost_app::threads::limits::PUBLISHING_LIMIT_DETAIL]["checked_at"]
                    .as_i64();
            if blocked || checked_at.is_none_or(|at| now - at >= INSTAGRAM_READING_FRESH_MS) {
                tidepost_app::threads::limits::publishing_limit(&state.app, account)
                    .await
                    .map(drop)
                    .map_err(|e| e.to_string())
            } else {
                return Ok(account.clone());
            }
        }
    };
    if let Err(err) = read {
        tracing::debug!(account_id = %account.id, error = %err, "the platform's can-post reading was not taken for the account's health");
    }
    Ok(
        accounts::get(&state.app.db, &account.workspace_id, &account.id)
            .await?
            .unwrap_or_else(|| account.clone()),
    )
}

/// "3 days", "5 hours", "12 minutes".
pub fn human_duration(ms: i64) -> String {
    let minutes = ms / 60_000;
    match minutes {
        m if m >= 2 * 1440 => format!("{} days", m / 1440),
        m if m >= 120 => format!("{} hours", m / 60),
        m if m >= 2 => format!("{m} minutes"),
        _ => "a minute".to_string(),
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "connect_tiktok.html")]
struct ConnectTikTokPage {
    chrome: Chrome,
    scopes: &'static [(&'static str, &'static str)],
    configured: bool,
    cards: Vec<AccountCard>,
    error: Option<String>,
}

async fn connect_page(
    state: &HttpState,
    viewer: &Viewer,
    error: Option<String>,
) -> Result<ConnectTikTokPage, PageError> {
    let mut cards = Vec::new();
    for account in accounts::list(&state.app.db, &viewer.workspace.id).await? {
        if account.platform == Platform::Tiktok {
            cards.push(AccountCard::with_stats(state, &account, &viewer.zone).await?);
        }
    }
    Ok(ConnectTikTokPage {
        chrome: Chrome::for_viewer(state, viewer, "Accounts"),
        scopes: TIKTOK_SCOPE_REASONS,
        configured: state.app.tiktok().is_ok(),
        cards,
        error,
    })
}

async fn connect_tiktok_page(
    State(state): State<HttpState>,
    viewer: Viewer,
) -> Result<ConnectTikTokPage, PageError> {
    connect_page(&state, &viewer, None).await
}

async fn connect_tiktok_start(
    State(state): State<HttpState>,
    viewer: Viewer,
    Form(form): Form<CsrfForm>,
) -> Result<Response, PageError> {
    viewer.check_csrf(&form.csrf)?;
    let who = Initiator {
        workspace_id: &viewer.workspace.id,
        user_id: Some(&viewer.user.id),
        connect_link: None,
    };
    match tidepost_app::tiktok::connect::start(&state.app, who).await {
        Ok(url) => Ok(Redirect::to(&url).into_response()),
        Err(err @ ConnectError::NotConfigured(_)) => {
            let page = connect_page(&state, &viewer, Some(err.to_string())).await?;
            Ok((axum::http::StatusCode::SERVICE_UNAVAILABLE, page).into_response())
        }
        Err(err) => Err(PageError::internal(err)),
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "connect_threads.html")]
struct ConnectThreadsPage {
    chrome: Chrome,
    scopes: &'static [(&'static str, &'static str)],
    configured: bool,
    cards: Vec<AccountCard>,
    error: Option<String>,
}

async fn threads_page(
    state: &HttpState,
    viewer: &Viewer,
    error: Option<String>,
) -> Result<ConnectThreadsPage, PageError> {
    let mut cards = Vec::new();
    for account in accounts::list(&state.app.db, &viewer.workspace.id).await? {
        if account.platform == Platform::Threads {
            cards.push(AccountCard::fresh(state, &account).await?);
        }
    }
    Ok(ConnectThreadsPage {
        chrome: Chrome::for_viewer(state, viewer, "Accounts"),
        scopes: tidepost_app::threads::connect::SCOPE_REASONS,
        configured: state.app.providers.threads().is_ok(),
        cards,
        error,
    })
}

async fn connect_threads_page(
    State(state): State<HttpState>,
    viewer: Viewer,
) -> Result<ConnectThreadsPage, PageError> {
    threads_page(&state, &viewer, None).await
}

async fn connect_threads_start(
    State(state): State<HttpState>,
    viewer: Viewer,
    Form(form): Form<CsrfForm>,
) -> Result<Response, PageError> {
    viewer.check_csrf(&form.csrf)?;
    let who = Initiator {
        workspace_id: &viewer.workspace.id,
        user_id: Some(&viewer.user.id),
        connect_link: None,
    };
    match tidepost_app::threads::connect::start(&state.app, who).await {
        Ok(url) => Ok(Redirect::to(&url).into_response()),
        Err(err @ ConnectError::NotConfigured(_)) => {
            let page = threads_page(&state, &viewer, Some(err.to_string())).await?;
            Ok((axum::http::StatusCode::SERVICE_UNAVAILABLE, page).into_response())
        }
        Err(err) => Err(PageError::internal(err)),
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "accounts.html")]
struct AccountsPage {
    chrome: Chrome,
    cards: Vec<AccountCard>,
}

async fn list(State(state): State<HttpState>, viewer: Viewer) -> Result<AccountsPage, PageError> {
    let mut cards = Vec::new();
    for account in accounts::list(&state.app.db, &viewer.workspace.id).await? {
        cards.push(AccountCard::fresh(&state, &account).await?);
    }
    Ok(AccountsPage {
        chrome: Chrome::for_viewer(&state, &viewer, "Accounts"),
        cards,
    })
}

#[derive(Template, WebTemplate)]
#[template(path = "account.html")]
struct AccountPage {
    chrome: Chrome,
    card: AccountCard,
    connected: bool,
    access_expires: String,
    refresh_expires: String,
    last_refresh: String,
    scopes: String,
    history: Vec<(String, String)>,
}

#[derive(Deserialize, Default)]
struct DetailQuery {
    connected: Option<String>,
}

async fn detail(
    State(state): State<HttpState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Query(query): Query<DetailQuery>,
) -> Result<AccountPage, PageError> {
    let account = accounts::get(&state.app.db, &viewer.workspace.id, &id)
        .await?
        .ok_or_else(PageError::not_found)?;
    let history = events::recent(&state.app.db, &viewer.workspace.id, Some(&account.id), 50)
        .await?
        .into_iter()
        .map(|e| {
            (
                viewer.zone.when(Some(e.created_at)),
                describe_event(&e.r#type, &e.payload),
            )
        })
        .collect();
    Ok(AccountPage {
        chrome: Chrome::for_viewer(&state, &viewer, "Accounts"),
        connected: query.connected.is_some(),
        access_expires: viewer.zone.when(account.access_expires_at),
        refresh_expires: viewer.zone.when(account.refresh_expires_at),
        last_refresh: viewer.zone.when(account.last_refreshed_at),
        scopes: account.scopes.replace(',', ", "),
        history,
        card: AccountCard {
            on_own_page: true,
            ..AccountCard::with_stats(&state, &account, &viewer.zone).await?
        },
    })
}

/// One line about an event, for timelines.
pub fn describe_event(kind: &str, payload: &str) -> String {
    let payload: serde_json::Value = serde_json::from_str(payload).unwrap_or_default();
    let field = |name: &str| payload.get(name).and_then(|v| v.as_str()).unwrap_or("");
    match kind {
        "account.connected" => "Connected".to_string(),
        "account.needs_reauth" => format!("Needs to be connected again: {}", field("reason")),
        "account.disconnected" => "Disconnected".to_string(),
        "interaction.created" => {
            let what = match field("kind") {
                _ if field("direction") == "outbound" => "You replied",
                "comment" => "Comment",
                "reply" => "Reply",
                "mention" => "Mention",
                _ => "Interaction",
            };
            match quoted(field("text")) {
                Some(text) => format!("{what}: {text}"),
                None => what.to_string(),
            }
        }
        // The other events read as the webhook settings describe them.
        other => tidepost_app::outbound::EVENT_TYPES
            .iter()
            .find(|(name, _)| *name == other)
            .map(|(_, description)| description.to_string())
            .unwrap_or_else(|| other.replace(['.', '_'], " ")),
    }
}

/// `text` in quotes, cut to 80 characters; `None` when empty.
fn quoted(text: &str) -> Option<String> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    let mut cut: String = text.chars().take(80).collect();
    if cut.len() < text.len() {
        cut.push('…');
    }
    Some(format!("“{cut}”"))
}

async fn disconnect(
    State(state): State<HttpState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, PageError> {
    viewer.check_csrf(&form.csrf)?;
    match tidepost_app::connect::disconnect(&state.app, &viewer.workspace.id, &id).await {
        Ok(true) => Ok(Redirect::to("/accounts").into_response()),
        Ok(false) => Err(PageError::not_found()),
        Err(err) => Err(PageError::internal(err)),
    }
}

#[cfg(test)]
mod tests {
    use super::describe_event;

    #[test]
    fn history_lines_read_as_sentences() {
        assert_eq!(describe_event("account.connected", "{}"), "Connected");
        assert_eq!(
            describe_event("account.needs_reauth", r#"{"reason":"token revoked"}"#),
            "Needs to be connected again: token revoked"
        );
        assert_eq!(
            describe_event(
                "interaction.created",
                r#"{"kind":"comment","direction":"inbound","text":"where is this?"}"#
            ),
            "Comment: “where is this?”"
        );
        assert_eq!(
            describe_event(
                "interaction.created",
                r#"{"kind":"reply","direction":"outbound","text":"Lisbon"}"#
            ),
            "You replied: “Lisbon”"
        );
        let long = format!(r#"{{"kind":"mention","text":"{}"}}"#, "a".repeat(100));
        assert_eq!(
            describe_event("interaction.created", &long),
            format!("Mention: “{}…”", "a".repeat(80))
        );
        assert_eq!(
            describe_event("post.published", "{}"),
            "A post was published to an account"
        );
        assert_eq!(describe_event("some.new_kind", "{}"), "some new kind");
    }
}
