//! Instagram connect and token upkeep against the emulator, on SQLite and PostgreSQL: Facebook
//! Login with the Page chooser (only the chosen pair is connected), Instagram Login, every
//! refusal (denied, personal account, Page without Instagram, expired token, permission
//! missing, another session, reused choice), refreshing long-lived tokens, 190 → needs_reauth,
//! and the sweep.

mod instagram_support;

use instagram_support::*;
use secrecy::ExposeSecret;
use serde_json::json;
use tidepost_app::connect::{CallbackSession, ConnectError};
use tidepost_app::instagram::connect::{self as ig_connect, Finished};
use tidepost_app::instagram::{Details, Login};
use tidepost_app::tokens::{self, TokenError};
use tidepost_providers::meta::GraphHost;
use tidepost_store::accounts;
use tidepost_store::events;
use tidepost_store::testing::Backend;

async fn chooser_connects_only_the_chosen_pair(backend: Backend) {
    let h = harness(backend).await;
    let callback = h.authorize(Login::Facebook).await;
    let Finished::Choose(choice) = ig_connect::finish(&h.app, &callback, h.session())
        .await
        .unwrap()
    else {
        panic!("expected the chooser")
    };
    assert_eq!(choice.pairs.len(), 3, "{:?}", choice.pairs);
    let business = choice
        .pairs
        .iter()
        .find(|p| p.page_id == BUSINESS_PAGE)
        .unwrap();
    assert!(business.choosable());
    assert_eq!(business.page_name, "Tidepost Coffee");
    let ig = business.instagram.as_ref().unwrap();
    assert_eq!(
        (ig.id.as_str(), ig.username.as_str()),
        (BUSINESS_IG, "tidepost.coffee")
    );
    assert!(ig.profile_picture_url.is_some());
    let creator = choice
        .pairs
        .iter()
        .find(|p| p.page_id == CREATOR_PAGE)
        .unwrap();
    assert!(creator.choosable());
    let empty = choice
        .pairs
        .iter()
        .find(|p| p.page_id == EMPTY_PAGE)
        .unwrap();
    assert!(!empty.choosable());
    assert!(
        empty
            .problem
            .as_deref()
            .unwrap()
            .contains("Linked accounts"),
        "{:?}",
        empty.problem
    );
    // Nothing is stored before the person picks.
    assert!(accounts::list(&h.app.db, &h.ws).await.unwrap().is_empty());
    // A Page without Instagram cannot be chosen (and a refused choice stores nothing).
    let token = choice.token.expose_secret().to_string();
    let err = ig_connect::choose(&h.app, &token, &[EMPTY_PAGE.to_string()], h.session())
        .await
        .unwrap_err();
    assert!(matches!(err, ConnectError::NotChoosable(_)), "{err}");
    assert!(accounts::list(&h.app.db, &h.ws).await.unwrap().is_empty());
    // The choice was single use: start again and pick the business pair only.
    let err = ig_connect::choose(&h.app, &token, &[BUSINESS_PAGE.to_string()], h.session())
        .await
        .unwrap_err();
    assert!(matches!(err, ConnectError::StateReused), "{err}");
    let connected = h.connect_facebook(&[BUSINESS_PAGE]).await;
    assert_eq!(connected.len(), 1);
    let account = &connected[0];
    assert_eq!(account.platform, tidepost_domain::Platform::Instagram);
    assert_eq!(account.provider_user_id, BUSINESS_IG);
    assert_eq!(account.username.as_deref(), Some("tidepost.coffee"));
    assert!(account.access_token.starts_with("v1."), "encrypted at rest");
    assert!(account.refresh_token.is_none());
    let days = (account.access_expires_at.unwrap() - tidepost_domain::now_ms()) / 86_400_000;
    assert!((58..=60).contains(&days), "long-lived token: {days} days");
    let details = Details::of(account);
    assert_eq!(details.login, Some(Login::Facebook));
    assert_eq!(details.page_id.as_deref(), Some(BUSINESS_PAGE));
    assert_eq!(details.page_name.as_deref(), Some("Tidepost Coffee"));
    let all = accounts::list(&h.app.db, &h.ws).await.unwrap();
    assert_eq!(all.len(), 1, "only the chosen pair is connected");
    let log = events::recent(&h.app.db, &h.ws, Some(&account.id), 10)
        .await
        .unwrap();
    assert_eq!(log[0].r#type, "account.connected");
    assert!(log[0].payload.contains(BUSINESS_IG));
    // The stored token works on the Facebook host.
    let token = tokens::open(&h.app, account, tokens::ACCESS_TOKEN).unwrap();
    let meta = h.app.providers.meta().unwrap();
    let user = meta.ig_user(&token, BUSINESS_IG).await.unwrap();
    assert_eq!(user.username, "tidepost.coffee");
    // Connecting again updates the same account; both pairs at once gives two.
    let again = h.connect_facebook(&[BUSINESS_PAGE, CREATOR_PAGE]).await;
    assert_eq!(again.len(), 2);
    assert_eq!(again[0].id, account.id);
    assert_eq!(accounts::list(&h.app.db, &h.ws).await.unwrap().len(), 2);
    let _ = GraphHost::Facebook;
}
on_both!(chooser, chooser_connects_only_the_chosen_pair);

async fn instagram_login(backend: Backend) {
    let h = harness(backend).await;
    let callback = h.authorize(Login::Instagram).await;
    let Finished::Connected(account) = ig_connect::finish(&h.app, &callback, h.session())
        .await
        .unwrap()
    else {
        panic!("Instagram Login connects at once")
    };
    assert_eq!(account.provider_user_id, BUSINESS_IG);
    let details = Details::of(&account);
    assert_eq!(details.login, Some(Login::Instagram));
    assert_eq!(details.account_type.as_deref(), Some("BUSINESS"));
    assert!(details.app_scoped_id.is_some());
    let days = (account.access_expires_at.unwrap() - tidepost_domain::now_ms()) / 86_400_000;
    assert!((58..=60).contains(&days), "long-lived token: {days} days");
    let token = tokens::open(&h.app, &account, tokens::ACCESS_TOKEN).unwrap();
    let me = h
        .app
        .providers
        .meta()
        .unwrap()
        .me_instagram(&token)
        .await
        .unwrap();
    assert_eq!(me.id, BUSINESS_IG);
    // Single use.
    let again = ig_connect::finish(&h.app, &callback, h.session())
        .await
        .unwrap_err();
    assert!(matches!(again, ConnectError::StateReused), "{again}");
}
on_both!(instagram_login_connects, instagram_login);

async fn refusals(backend: Backend) {
    let h = harness_with(
        backend,
        Options {
            auto_approve: false,
            ..Options::default()
        },
    )
    .await;
    let finish = |callback| {
        let h = &h;
        async move {
            ig_connect::finish(&h.app, &callback, h.session())
                .await
                .unwrap_err()
        }
    };
    // Denied, on both dialogs.
    let denied = h.decide(Login::Facebook, &[("decision", "deny")]).await;
    let err = finish(denied).await;
    assert!(
        matches!(
            err,
            ConnectError::Denied {
                provider: "Facebook"
            }
        ),
        "{err}"
    );
    let denied = h.decide(Login::Instagram, &[("decision", "deny")]).await;
    let err = finish(denied).await;
    assert!(
        matches!(
            err,
            ConnectError::Denied {
                provider: "Instagram"
            }
        ),
        "{err}"
    );
    // A personal Instagram account.
    let personal = h
        .decide(
            Login::Instagram,
            &[("decision", "approve"), ("account", PERSONAL_IG)],
        )
        .await;
    let err = finish(personal).await;
    assert!(matches!(err, ConnectError::PersonalAccount { .. }), "{err}");
    assert!(
        err.to_string().contains("Switch to professional account"),
        "{err}"
    );
    // A permission unticked in the Facebook dialog.
    let partial = h
        .decide(
            Login::Facebook,
            &[
                ("decision", "approve"),
                ("grant", "instagram_basic"),
                ("grant", "pages_show_list"),
                ("grant", "pages_read_engagement"),
            ],
        )
        .await;
    let err = finish(partial).await;
    let ConnectError::ScopeMissing { provider, missing } = &err else {
        panic!("{err}")
    };
    assert_eq!(*provider, "Facebook");
    assert!(missing.contains("instagram_content_publish"), "{missing}");
    // An expired token: the short-lived token is dead before it can be exchanged.
    h.set_meta(json!({"short_lived_secs": -60})).await;
    let expired = h.decide(Login::Facebook, &[("decision", "approve")]).await;
    let err = finish(expired).await;
    let ConnectError::ProviderError { provider, message } = &err else {
        panic!("{err}")
    };
    assert_eq!(*provider, "Facebook");
    assert!(!message.is_empty());
    h.set_meta(json!({"short_lived_secs": 3600})).await;
    // A callback arriving in another session.
    let other = h.decide(Login::Facebook, &[("decision", "approve")]).await;
    let err = ig_connect::finish(
        &h.app,
        &other,
        Some(CallbackSession {
            workspace_id: &h.ws,
            user_id: "someone-else",
        }),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, ConnectError::StateFromAnotherSession),
        "{err}"
    );
    // Nothing was stored by any refusal.
    assert!(accounts::list(&h.app.db, &h.ws).await.unwrap().is_empty());
    // A TikTok state is not accepted by the Instagram callback.
    let err = ig_connect::choose(&h.app, "not-a-choice", &[BUSINESS_PAGE.into()], h.session())
        .await
        .unwrap_err();
    assert!(matches!(err, ConnectError::StateUnknown), "{err}");
    let err = ig_connect::choose(&h.app, "x", &[], h.session())
        .await
        .unwrap_err();
    assert!(matches!(err, ConnectError::NothingChosen), "{err}");
}
on_both!(every_refusal, refusals);

async fn refresh_and_reauth(backend: Backend) {
    let h = harness(backend).await;
    // Instagram Login: too young to refresh (stays active), then refreshed after 24 hours.
    let callback = h.authorize(Login::Instagram).await;
    let Finished::Connected(ig_account) = ig_connect::finish(&h.app, &callback, h.session())
        .await
        .unwrap()
    else {
        panic!()
    };
    let err = tokens::refresh(&h.app, &h.ws, &ig_account.id)
        .await
        .unwrap_err();
    assert!(matches!(err, TokenError::Provider(_)), "{err}");
    let still = accounts::get(&h.app.db, &h.ws, &ig_account.id)
        .await
        .unwrap()
        .unwrap();
    assert!(
        !still.needs_reauth(),
        "a too-young token is not a revoked one"
    );
    h.advance(25 * 3600).await;
    let refreshed = tokens::refresh(&h.app, &h.ws, &ig_account.id)
        .await
        .unwrap();
    assert_ne!(refreshed.access_token, ig_account.access_token);
    let token = tokens::open(&h.app, &refreshed, tokens::ACCESS_TOKEN).unwrap();
    let meta = h.app.providers.meta().unwrap();
    assert_eq!(meta.me_instagram(&token).await.unwrap().id, BUSINESS_IG);

    // Facebook Login: the long-lived user token is extended by exchanging it again.
    let fb_account = h.business_account().await;
    let refreshed = tokens::refresh(&h.app, &h.ws, &fb_account.id)
        .await
        .unwrap();
    assert_ne!(refreshed.access_token, fb_account.access_token);

    // Revoked at Meta (190): the next call marks the account needs_reauth.
    let token = tokens::open(&h.app, &refreshed, tokens::ACCESS_TOKEN).unwrap();
    h.admin(
        reqwest::Method::POST,
        "/_emulator/meta/tokens/revoke",
        Some(json!({"access_token": token.expose_secret()})),
    )
    .await;
    let err = tokens::with_token(&h.app, &refreshed, |token| async move {
        meta.ig_user(&token, BUSINESS_IG).await
    })
    .await
    .unwrap_err();
    assert!(matches!(err, TokenError::NeedsReauth(_)), "{err}");
    let after = accounts::get(&h.app.db, &h.ws, &fb_account.id)
        .await
        .unwrap()
        .unwrap();
    assert!(after.needs_reauth());
    let log = events::recent(&h.app.db, &h.ws, Some(&after.id), 10)
        .await
        .unwrap();
    assert!(log.iter().any(|e| e.r#type == "account.needs_reauth"));
}
on_both!(refresh_long_lived_and_190, refresh_and_reauth);

async fn sweep(backend: Backend) {
    let h = harness(backend).await;
    // Tokens that live 5 days are inside the 10-day window: the sweep extends them.
    h.set_meta(json!({"long_lived_secs": 5 * 86_400})).await;
    let account = h.business_account().await;
    h.set_meta(json!({"long_lived_secs": 5_183_944})).await;
    let report = tokens::refresh_due(&h.app).await.unwrap();
    assert_eq!(report.refreshed, 1, "{report:?}");
    let after = accounts::get(&h.app.db, &h.ws, &account.id)
        .await
        .unwrap()
        .unwrap();
    assert_ne!(after.access_token, account.access_token);
    let days = (after.access_expires_at.unwrap() - tidepost_domain::now_ms()) / 86_400_000;
    assert!(days >= 58, "{days}");
    // Nothing is due any more.
    let report = tokens::refresh_due(&h.app).await.unwrap();
    assert_eq!(report.refreshed, 0, "{report:?}");
}
on_both!(sweep_extends_tokens, sweep);

async fn disconnect_revokes(backend: Backend) {
    let h = harness(backend).await;
    let meta = h.app.providers.meta().unwrap();
    // Two pairs through one Facebook login share its token.
    let pairs = h.connect_facebook(&[BUSINESS_PAGE, CREATOR_PAGE]).await;
    let (business, creator) = (&pairs[0], &pairs[1]);
    let shared = tokens::open(&h.app, creator, tokens::ACCESS_TOKEN).unwrap();

    // Disconnecting one while the other still uses the login does not revoke it at Meta.
    assert!(
        tidepost_app::connect::disconnect(&h.app, &h.ws, &business.id)
            .await
            .unwrap()
    );
    assert!(meta.permissions(&shared).await.is_ok(), "still granted");

    // The last one: DELETE /me/permissions, and the token stops working at Meta.
    assert!(
        tidepost_app::connect::disconnect(&h.app, &h.ws, &creator.id)
            .await
            .unwrap()
    );
    assert!(
        accounts::list(&h.app.db, &h.ws).await.unwrap().is_empty(),
        "the tokens are deleted"
    );
    let err = meta.permissions(&shared).await.unwrap_err();
    assert_eq!(err.code, "190", "revoked at Meta: {err:?}");

    // Instagram Login has nothing to revoke: the account goes, Meta is not asked.
    let callback = h.authorize(Login::Instagram).await;
    let Finished::Connected(ig_account) = ig_connect::finish(&h.app, &callback, h.session())
        .await
        .unwrap()
    else {
        panic!("Instagram Login connects directly")
    };
    let ig_token = tokens::open(&h.app, &ig_account, tokens::ACCESS_TOKEN).unwrap();
    assert!(
        tidepost_app::connect::disconnect(&h.app, &h.ws, &ig_account.id)
            .await
            .unwrap()
    );
    assert!(meta.me_instagram(&ig_token).await.is_ok());

    // Best effort: when Meta cannot be reached the account is still disconnected.
    let account = h.business_account().await;
    let token = tokens::open(&h.app, &account, tokens::ACCESS_TOKEN).unwrap();
    h.admin(
        reqwest::Method::POST,
        "/_emulator/meta/tokens/revoke",
        Some(json!({"access_token": token.expose_secret()})),
    )
    .await;
    assert!(
        tidepost_app::connect::disconnect(&h.app, &h.ws, &account.id)
            .await
            .unwrap()
    );
    assert!(accounts::list(&h.app.db, &h.ws).await.unwrap().is_empty());
    let log = events::recent(&h.app.db, &h.ws, Some(&account.id), 10)
        .await
        .unwrap();
    assert_eq!(log[0].r#type, "account.disconnected");
}
on_both!(disconnect_revokes_at_meta, disconnect_revokes);
