//! TikTok connect and token upkeep against the emulator, on SQLite and PostgreSQL: the OAuth
//! round trip and each of its refusals, one refresh at a time, refresh-and-retry after a 401,
//! refused refreshes, the sweep, disconnecting, and key rotation.

mod publish_support;

use publish_support::{Harness, harness};
use secrecy::ExposeSecret;
use serde_json::json;
use tidepost_app::App;
use tidepost_app::connect::{self, Callback, CallbackSession, ConnectError, Initiator};
use tidepost_app::providers::Providers;
use tidepost_app::tokens::{self, TokenError};
use tidepost_providers::tiktok::UserFields;
use tidepost_store::accounts;
use tidepost_store::events;
use tidepost_store::testing::Backend;
use tidepost_vault::Keyring;

const USER: &str = "user-1";

/// Starts a connection and follows the emulator's auto-approving consent page to the callback.
async fn authorize(h: &Harness) -> Callback {
    authorize_with(h, &h.app).await
}

async fn authorize_with(h: &Harness, app: &App) -> Callback {
    let url = tidepost_app::tiktok::connect::start(
        app,
        Initiator {
            workspace_id: &h.ws,
            user_id: Some(USER),
            connect_link: None,
        },
    )
    .await
    .unwrap();
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let answer = no_redirects.get(&url).send().await.unwrap();
    assert_eq!(
        answer.status(),
        302,
        "{}",
        answer.text().await.unwrap_or_default()
    );
    let location = answer.headers()["location"].to_str().unwrap().to_string();
    assert!(
        location.starts_with(&app.config.tiktok.redirect_uri),
        "{location}"
    );
    let query = url::Url::parse(&location).unwrap();
    let pairs: std::collections::HashMap<String, String> =
        query.query_pairs().into_owned().collect();
    Callback {
        code: pairs.get("code").cloned(),
        state: pairs.get("state").cloned(),
        scopes: pairs.get("scopes").cloned(),
        error: pairs.get("error").cloned(),
        error_description: pairs.get("error_description").cloned(),
    }
}

fn session(h: &Harness) -> Option<CallbackSession<'_>> {
    Some(CallbackSession {
        workspace_id: &h.ws,
        user_id: USER,
    })
}

async fn oauth_round_trip(backend: Backend) {
    let h = harness(backend).await;
    let callback = authorize(&h).await;
    let account = tidepost_app::tiktok::connect::finish(&h.app, &callback, session(&h))
        .await
        .unwrap();
    assert_eq!(account.workspace_id, h.ws);
    assert_eq!(account.username.as_deref(), Some("tidepost.sandbox"));
    assert!(
        account.access_token.starts_with("v1."),
        "tokens are stored encrypted"
    );
    assert!(account.scopes.contains("video.publish"));
    let token = tokens::open(&h.app, &account, tokens::ACCESS_TOKEN).unwrap();
    let me = h
        .app
        .tiktok()
        .unwrap()
        .user_info(&token, UserFields::Basic)
        .await
        .unwrap();
    assert_eq!(me.open_id, account.provider_user_id);
    let log = events::recent(&h.app.db, &h.ws, Some(&account.id), 10)
        .await
        .unwrap();
    // The harness stored this creator's account already: connecting it again is a reconnection.
    assert_eq!(log[0].r#type, "account.reconnected");
    // The same callback again is refused: states are single use.
    let again = tidepost_app::tiktok::connect::finish(&h.app, &callback, session(&h))
        .await
        .unwrap_err();
    assert!(matches!(again, ConnectError::StateReused), "{again}");
}

async fn every_refusal(backend: Backend) {
    let h = harness(backend).await;
    let before = accounts::list(&h.app.db, &h.ws).await.unwrap().len();
    let refuse = |callback: Callback| {
        let h = &h;
        async move {
            tidepost_app::tiktok::connect::finish(&h.app, &callback, session(h))
                .await
                .unwrap_err()
        }
    };
    assert!(matches!(
        refuse(Callback::default()).await,
        ConnectError::StateMissing
    ));
    let unknown = Callback {
        state: Some("not-a-state".into()),
        code: Some("x".into()),
        ..Default::default()
    };
    assert!(matches!(refuse(unknown).await, ConnectError::StateUnknown));

    let mut denied = authorize(&h).await;
    denied.code = None;
    denied.error = Some("access_denied".into());
    let err = refuse(denied).await;
    assert!(matches!(err, ConnectError::Denied { .. }));
    assert_eq!(
        err.to_string(),
        "you declined access on TikTok, so nothing was connected"
    );

    let mut bad_code = authorize(&h).await;
    bad_code.code = Some("forged".into());
    assert!(matches!(
        refuse(bad_code).await,
        ConnectError::ProviderError { .. }
    ));

    let stolen = authorize(&h).await;
    let other = CallbackSession {
        workspace_id: &h.ws,
        user_id: "someone-else",
    };
    let err = tidepost_app::tiktok::connect::finish(&h.app, &stolen, Some(other))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ConnectError::StateFromAnotherSession),
        "{err}"
    );
    let err = tidepost_app::tiktok::connect::finish(&h.app, &authorize(&h).await, None)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ConnectError::StateFromAnotherSession),
        "a UI flow needs its session back: {err}"
    );

    let expired = authorize(&h).await;
    sqlx::query("UPDATE oauth_states SET expires_at = 0 WHERE used_at IS NULL")
        .execute(h.app.db.pool())
        .await
        .unwrap();
    assert!(matches!(refuse(expired).await, ConnectError::StateExpired));

    assert_eq!(
        accounts::list(&h.app.db, &h.ws).await.unwrap().len(),
        before,
        "no refusal stores anything"
    );
}

async fn one_refresh_at_a_time(backend: Backend) {
    let h = harness(backend).await;
    let (a, b) = tokio::join!(
        tokens::refresh_seen(&h.app, &h.account),
        tokens::refresh_seen(&h.app, &h.account)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(
        a.access_token, b.access_token,
        "the second caller waited for the first refresh"
    );
    assert_ne!(a.access_token, h.account.access_token);
    // Had both spent the same rotating refresh token, the stored one would now be dead.
    let again = tokens::refresh(&h.app, &h.ws, &h.account.id).await.unwrap();
    assert_eq!(again.status, "active");
}

async fn refresh_and_retry_after_401(backend: Backend) {
    let h = harness(backend).await;
    h.set_faults(json!({"revoke_all_tokens": true})).await;
    let client = h.app.tiktok().unwrap().clone();
    let me = tokens::with_token(&h.app, &h.account, |token| {
        let client = client.clone();
        async move { client.user_info(&token, UserFields::Basic).await }
    })
    .await
    .unwrap();
    assert_eq!(me.open_id, h.account.provider_user_id);
    let stored = accounts::get(&h.app.db, &h.ws, &h.account.id)
        .await
        .unwrap()
        .unwrap();
    assert_ne!(
        stored.access_token, h.account.access_token,
        "refreshed once"
    );
}

async fn refused_refresh_needs_reauth(backend: Backend) {
    let h = harness(backend).await;
    h.set_faults(json!({"refuse_refresh": true})).await;
    let err = tokens::refresh(&h.app, &h.ws, &h.account.id)
        .await
        .unwrap_err();
    assert!(matches!(err, TokenError::NeedsReauth(_)), "{err}");
    let again = tokens::refresh(&h.app, &h.ws, &h.account.id)
        .await
        .unwrap_err();
    assert!(matches!(again, TokenError::NeedsReauth(_)));
    let stored = accounts::get(&h.app.db, &h.ws, &h.account.id)
        .await
        .unwrap()
        .unwrap();
    assert!(stored.needs_reauth());
    let log = events::recent(&h.app.db, &h.ws, Some(&h.account.id), 10)
        .await
        .unwrap();
    assert_eq!(
        log.iter()
            .filter(|e| e.r#type == "account.needs_reauth")
            .count(),
        1,
        "emitted once"
    );
    // Calls on a revoked account fail fast with the reason, without a provider call.
    let err = tokens::with_token(&h.app, &stored, |_| async { Ok::<(), _>(()) })
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("the account must be connected again"),
        "{err}"
    );
}

async fn sweep_refreshes_what_is_due(backend: Backend) {
    let h = harness(backend).await;
    let soon = tidepost_domain::now_ms() + 60_000;
    sqlx::query("UPDATE accounts SET access_expires_at = $1 WHERE id = $2")
        .bind(soon)
        .bind(&h.account.id)
        .execute(h.app.db.pool())
        .await
        .unwrap();
    let report = tokens::refresh_due(&h.app).await.unwrap();
    assert_eq!(report.refreshed, 1);
    let stored = accounts::get(&h.app.db, &h.ws, &h.account.id)
        .await
        .unwrap()
        .unwrap();
    assert!(stored.access_expires_at.unwrap() > soon + 3_600_000);
    assert_eq!(tokens::refresh_due(&h.app).await.unwrap().refreshed, 0);
}

async fn disconnect_revokes(backend: Backend) {
    let h = harness(backend).await;
    let token = tokens::open(&h.app, &h.account, tokens::ACCESS_TOKEN).unwrap();
    assert!(
        connect::disconnect(&h.app, &h.ws, &h.account.id)
            .await
            .unwrap()
    );
    assert!(
        accounts::get(&h.app.db, &h.ws, &h.account.id)
            .await
            .unwrap()
            .is_none()
    );
    let err = h
        .app
        .tiktok()
        .unwrap()
        .user_info(&token, UserFields::Basic)
        .await
        .unwrap_err();
    assert_eq!(err.code, "access_token_invalid");
    assert!(
        !connect::disconnect(&h.app, &h.ws, &h.account.id)
            .await
            .unwrap()
    );
}

fn app_with_keys(h: &Harness, keys: &str) -> App {
    let config = h.app.config.clone();
    let providers = Providers::from_config(&config, Some(&h.emu.base_url()));
    App::new(
        config,
        h.app.db.clone(),
        Keyring::parse(keys).unwrap(),
        providers,
    )
}

async fn rotation_moves_secrets_to_the_new_key(backend: Backend) {
    let h = harness(backend).await;
    let old_key = Keyring::generate_key_text();
    let new_key = Keyring::generate_key_text();
    let (old_key, new_key) = (old_key.expose_secret(), new_key.expose_secret());
    let before = app_with_keys(&h, old_key);
    let account = tidepost_app::tiktok::connect::finish(
        &before,
        &authorize_with(&h, &before).await,
        session(&h),
    )
    .await
    .unwrap();
    // The operator puts a new key first and keeps the old one after it, then rotates.
    let during = app_with_keys(&h, &format!("{new_key},{old_key}"));
    let report = connect::rotate_secrets(&during).await.unwrap();
    assert!(report.reencrypted >= 1, "{report:?}");
    assert_eq!(
        connect::rotate_secrets(&during).await.unwrap().reencrypted,
        0
    );
    // Now the new key alone opens the tokens, and the old one alone does not.
    let after = app_with_keys(&h, new_key);
    let stored = accounts::get(&after.db, &h.ws, &account.id)
        .await
        .unwrap()
        .unwrap();
    assert!(tokens::open(&after, &stored, tokens::REFRESH_TOKEN).is_ok());
    assert!(tokens::open(&before, &stored, tokens::ACCESS_TOKEN).is_err());
}

macro_rules! on_both {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn sqlite() { super::$name(tidepost_store::testing::Backend::Sqlite).await }
            #[tokio::test]
            async fn postgres() { super::$name(tidepost_store::testing::Backend::Postgres).await }
        }
    )*};
}

on_both!(
    oauth_round_trip,
    every_refusal,
    one_refresh_at_a_time,
    refresh_and_retry_after_401,
    refused_refresh_needs_reauth,
    sweep_refreshes_what_is_due,
    disconnect_revokes,
    rotation_moves_secrets_to_the_new_key,
);
