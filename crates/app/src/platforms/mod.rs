//! The platforms tidepost publishes to, each one adapter folder (`tiktok`, `instagram`,
//! `threads`), and
//! the one place that dispatches to them: every function here is an exhaustive `match` over
//! [`Platform`] (no wildcard arm: clippy's `wildcard_enum_match_arm` is denied in this crate),
//! so a new platform is added by a new folder and the arms the compiler asks for. Why a closed
//! enum and not a trait object: `docs/architecture.md`, "The platform seam".

pub mod instagram;
pub mod threads;
pub mod tiktok;

use tidepost_domain::Platform;
use tidepost_jobs::{NewJob, Registry};
use tidepost_store::posts::Target;

use crate::App;
use crate::pipeline::Prepared;
use crate::pipeline::quota::DailyLimit;

/// Registers every platform's job kinds.
pub fn register(registry: Registry, app: &App) -> Registry {
    Platform::ALL
        .into_iter()
        .fold(registry, |registry, platform| match platform {
            Platform::Tiktok => tiktok::register(registry, app),
            Platform::Instagram => instagram::register(registry, app),
            Platform::Threads => threads::register(registry, app),
        })
}

/// The publish job of `target` on its platform, due at `run_at`.
pub fn publish_job(target: &Target, run_at: i64) -> NewJob {
    match target.platform {
        Platform::Tiktok => tiktok::publish_job(target, run_at),
        Platform::Instagram => instagram::publish::publish_job(target, run_at),
        Platform::Threads => threads::publish::publish_job(target, run_at),
    }
}

/// The kind of `platform`'s publish job.
pub fn publish_job_kind(platform: Platform) -> &'static str {
    match platform {
        Platform::Tiktok => tiktok::PUBLISH_JOB,
        Platform::Instagram => instagram::publish::PUBLISH_JOB,
        Platform::Threads => threads::publish::PUBLISH_JOB,
    }
}

/// The daily limit a checked target counts against.
pub async fn daily_limit(app: &App, prepared: &Prepared) -> DailyLimit {
    match prepared.account.platform {
        Platform::Tiktok => tiktok::limits::daily_limit(app, prepared),
        Platform::Instagram => instagram::limits::daily_limit(app, prepared).await,
        Platform::Threads => threads::limits::daily_limit(app, prepared).await,
    }
}

/// The public page of a published target, when its platform told it: TikTok's is made from the
/// post id, Instagram's is the permalink Meta answered (stored with the media).
pub async fn post_url(
    app: &App,
    target: &Target,
) -> Result<Option<String>, tidepost_store::StoreError> {
    match target.platform {
        Platform::Tiktok => Ok(target.post_ids().first().map(|id| tiktok::post_url(id))),
        Platform::Instagram => {
            Ok(
                tidepost_store::instagram::get(&app.db, &target.workspace_id, &target.id)
                    .await?
                    .and_then(|m| m.permalink),
            )
        }
        Platform::Threads => {
            Ok(
                tidepost_store::threads::get(&app.db, &target.workspace_id, &target.id)
                    .await?
                    .and_then(|m| m.permalink),
            )
        }
    }
}

/// Why `account` cannot post now, from the platform's last reading kept on the account (no
/// call): TikTok's `creator_info` refusal (a banned creator, a spent cap), Instagram's
/// publishing limit used up. `None` when nothing known stops it.
pub fn posting_block(account: &tidepost_store::accounts::Account, now: i64) -> Option<String> {
    match account.platform {
        Platform::Tiktok => tiktok::limits::posting_block(account),
        Platform::Instagram => instagram::limits::posting_block(account, now),
        Platform::Threads => threads::limits::posting_block(account, now),
    }
}

/// Who answers for `platform`'s accounts, as a person reads it in an error ("Meta refused…").
pub fn provider_name(platform: Platform) -> &'static str {
    match platform {
        Platform::Tiktok => "TikTok",
        Platform::Instagram => "Meta",
        Platform::Threads => "Threads",
    }
}

/// Revokes `account`'s access at its platform, best effort (disconnecting deletes the tokens
/// whatever the platform answers).
pub async fn revoke(app: &App, account: &tidepost_store::accounts::Account) {
    match account.platform {
        Platform::Tiktok => tiktok::connect::revoke(app, account).await,
        Platform::Instagram => instagram::connect::revoke_at_meta(app, account).await,
        // Threads has no revoke call: the tokens are deleted, and the person removes the app
        // in Threads' own settings.
        Platform::Threads => {
            tracing::info!(account_id = %account.id, "Threads has no revoke call; deleting the tokens");
        }
    }
}

/// Refreshes `account`'s tokens at its platform (the caller holds the refresh lease); the
/// platform's answer.
pub(crate) async fn refresh(
    app: &App,
    account: &tidepost_store::accounts::Account,
) -> Result<
    Result<crate::tokens::NewTokens, tidepost_providers::ProviderError>,
    crate::tokens::TokenError,
> {
    match account.platform {
        Platform::Tiktok => tiktok::tokens::refresh(app, account).await,
        Platform::Instagram => instagram::refresh(app, account).await,
        Platform::Threads => threads::refresh(app, account).await,
    }
}

/// Whether a refused refresh leaves the token valid: Instagram and Threads refuse to extend a
/// token younger than 24 hours, which stays usable (their refusals of a dead token are
/// `Reauth`, never kept); TikTok's refusal means the access is gone.
pub fn refusal_keeps_token(platform: Platform) -> bool {
    match platform {
        Platform::Tiktok => false,
        Platform::Instagram | Platform::Threads => true,
    }
}

/// How long before expiry `platform`'s tokens are renewed, when it differs from the general
/// window (`token_refresh_window_secs`): Instagram's 60-day tokens are extended well before.
pub fn refresh_window_ms(app: &App, platform: Platform) -> Option<i64> {
    match platform {
        Platform::Tiktok => None,
        Platform::Instagram => Some(crate::tokens::secs_ms(app.config.meta.refresh_window_secs)),
        Platform::Threads => Some(crate::tokens::secs_ms(
            app.config.threads.refresh_window_secs,
        )),
    }
}

/// Checks one target of a composite post with its platform's checks, before anything is
/// stored or sent.
pub async fn prepare_target(
    app: &App,
    workspace_id: &str,
    account: tidepost_store::accounts::Account,
    input: &crate::pipeline::spec::TargetInput<'_>,
) -> Result<Prepared, crate::pipeline::PublishError> {
    match account.platform {
        Platform::Tiktok => {
            tiktok::prepare::prepare_target(app, workspace_id, account, input).await
        }
        Platform::Instagram => {
            instagram::prepare::prepare_target(app, workspace_id, account, input).await
        }
        Platform::Threads => {
            threads::prepare::prepare_target(app, workspace_id, account, input).await
        }
    }
}

/// What the platform's own limits say of one more post sent now: TikTok's quotas as tidepost
/// keeps them (including, for an unaudited app, the creators posted to in 24 hours); Instagram
/// asks Meta, which counts posts from other apps too.
pub async fn admit_now(
    app: &App,
    prepared: &Prepared,
    now: i64,
) -> Result<(), crate::pipeline::PublishError> {
    match prepared.account.platform {
        Platform::Tiktok => tiktok::limits::admit_now(app, prepared, now).await,
        Platform::Instagram => instagram::limits::admit_now(app, &prepared.account, now).await,
        Platform::Threads => threads::limits::admit_now(app, &prepared.account, now).await,
    }
}

/// The media rules a checked target's media must meet (`crate::media::rules`).
pub fn media_target(prepared: &Prepared) -> Option<crate::media::rules::Target> {
    match prepared.account.platform {
        Platform::Tiktok => tiktok::prepare::media_target(prepared),
        Platform::Instagram => instagram::prepare::media_target(prepared),
        Platform::Threads => threads::prepare::media_target(prepared),
    }
}

/// A single-account post stored before every post was a composite, read back as its caption,
/// media and target; `None` when its options cannot be read.
pub fn single_as_spec(
    post: &tidepost_store::posts::Post,
    target: &Target,
) -> Option<(
    String,
    Vec<crate::pipeline::media::Item>,
    crate::pipeline::spec::TargetSpec,
)> {
    match target.platform {
        Platform::Tiktok => tiktok::prepare::single_as_spec(post, target),
        Platform::Instagram => instagram::prepare::single_as_spec(post, target),
        Platform::Threads => threads::prepare::single_as_spec(post, target),
    }
}

/// The provider media id a published target's metrics are tracked by, from what the target
/// stored (`provider_post_ids`).
pub fn metrics_media_id(platform: Platform, stored: &str) -> Option<String> {
    match platform {
        Platform::Tiktok => tiktok::metrics::media_id(stored),
        Platform::Instagram => instagram::metrics::media_id(stored),
        Platform::Threads => threads::metrics::media_id(stored),
    }
}

/// Samples `account`'s due metric tracks at its platform (the `crm.metrics` job), within the
/// platform's call budget.
pub async fn sample_metrics(
    app: &App,
    account: &tidepost_store::accounts::Account,
    due: &[tidepost_store::crm::metrics::Track],
    now: i64,
) -> Result<(), tidepost_jobs::JobError> {
    match account.platform {
        Platform::Tiktok => tiktok::metrics::sample(app, account, due, now).await,
        Platform::Instagram => instagram::metrics::sample(app, account, due, now).await,
        Platform::Threads => threads::metrics::sample(app, account, due, now).await,
    }
}

/// Whether `platform` publishes a post of text alone, without media (Threads' text posts).
pub fn publishes_text_alone(platform: Platform) -> bool {
    match platform {
        Platform::Tiktok | Platform::Instagram => false,
        Platform::Threads => true,
    }
}

/// Whether tidepost pulls the comments of `platform`'s media into the CRM (TikTok has no
/// comments API for third-party apps; Threads' replies are not pulled yet).
pub fn pulls_comments(platform: Platform) -> bool {
    match platform {
        Platform::Tiktok | Platform::Threads => false,
        Platform::Instagram => true,
    }
}

/// Pulls the new comments of `account`'s tracked media (the `crm.comments` job).
pub async fn pull_comments(
    app: &App,
    account: &tidepost_store::accounts::Account,
    now: i64,
) -> Result<(), tidepost_jobs::JobError> {
    match account.platform {
        Platform::Tiktok | Platform::Threads => Ok(()),
        Platform::Instagram => instagram::comments::pull(app, account, now).await,
    }
}

/// Whether an interaction of `kind` on `platform` can be answered from tidepost.
pub fn can_answer(platform: Platform, kind: &str) -> bool {
    match platform {
        Platform::Tiktok | Platform::Threads => false,
        Platform::Instagram => instagram::comments::can_answer(kind),
    }
}

/// Whether `target` failed with an outcome its platform could not tell (the request may have
/// reached the platform, its answer was lost): such a target is not retried blindly but
/// looked for, then marked published or sent again on purpose (TikTok's `tiktok.reconcile`;
/// Instagram and Threads read their container's status before publishing again, so none
/// stays unknown).
pub fn outcome_unknown(target: &Target) -> bool {
    match target.platform {
        Platform::Tiktok => tiktok::reconcile::is_unknown(target),
        Platform::Instagram | Platform::Threads => false,
    }
}

/// One way to connect an account, as a connect link's page offers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectChoice {
    pub platform: Platform,
    /// The form value naming this choice (`tiktok`, `instagram:facebook`, …).
    pub value: &'static str,
    pub label: &'static str,
    /// What the creator needs for it, in plain words.
    pub needs: &'static str,
    /// For Instagram, which login.
    pub login: instagram::Login,
}

/// The ways to connect an account of `platform`.
pub fn connect_choices(platform: Platform) -> &'static [ConnectChoice] {
    match platform {
        Platform::Tiktok => &[ConnectChoice {
            platform: Platform::Tiktok,
            value: "tiktok",
            label: "Continue with TikTok",
            needs: "Sign in to TikTok and allow posting. Any TikTok account can be connected.",
            login: instagram::Login::Facebook,
        }],
        Platform::Instagram => &[
            ConnectChoice {
                platform: Platform::Instagram,
                value: "instagram:facebook",
                label: "Instagram through Facebook",
                needs: "For an Instagram professional account (Business or Creator) linked to a Facebook Page you manage: sign in to Facebook, then pick the Page.",
                login: instagram::Login::Facebook,
            },
            ConnectChoice {
                platform: Platform::Instagram,
                value: "instagram:instagram",
                label: "Instagram Login",
                needs: "For an Instagram professional account (Business or Creator), with or without a Facebook Page: sign in to Instagram. Personal accounts cannot be connected: switch to a professional account in the Instagram app first.",
                login: instagram::Login::Instagram,
            },
        ],
        Platform::Threads => &[ConnectChoice {
            platform: Platform::Threads,
            value: "threads",
            label: "Continue with Threads",
            needs: "Sign in to Threads and allow posting. Any Threads profile can be connected; while the app is in development, only profiles invited as Threads testers.",
            login: instagram::Login::Facebook,
        }],
    }
}

/// Starts connecting an account through `choice` for `who`: the provider's consent URL.
pub async fn start_connect(
    app: &App,
    choice: &ConnectChoice,
    who: crate::connect::Initiator<'_>,
) -> Result<String, crate::connect::ConnectError> {
    match choice.platform {
        Platform::Tiktok => tiktok::connect::start(app, who).await,
        Platform::Instagram => instagram::connect::start(app, who, choice.login).await,
        Platform::Threads => threads::connect::start(app, who).await,
    }
}

/// Whether this instance is configured to connect accounts of `platform`.
pub fn connect_configured(app: &App, platform: Platform) -> bool {
    match platform {
        Platform::Tiktok => app.tiktok().is_ok(),
        Platform::Instagram => app.providers.meta().is_ok(),
        Platform::Threads => app.providers.threads().is_ok(),
    }
}
