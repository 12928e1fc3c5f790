//! Repository tests, each run on SQLite and on PostgreSQL.

use tidepost_store::{
    Db, SchemaState, api_keys, both_backends, login_attempts, sessions, users, workspaces,
};

both_backends!(migrations_are_current, |db: Db| async move {
    assert_eq!(db.schema_state().await.unwrap(), SchemaState::Current);
    // Running them again is a no-op.
    db.migrate().await.unwrap();
    db.ensure_current().await.unwrap();
});

both_backends!(newer_schema_is_refused, |db: Db| async move {
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, installed_on, success, checksum, execution_time) \
         VALUES (99990101, 'from the future', CURRENT_TIMESTAMP, TRUE, $1, 0)",
    )
    .bind(vec![0u8; 4])
    .execute(db.pool())
    .await
    .unwrap();
    let err = db.migrate().await.unwrap_err().to_string();
    assert!(
        err.contains("migration 99990101 which this tidepost binary does not know"),
        "{err}"
    );
    assert!(db.ensure_current().await.is_err());
});

both_backends!(workspaces_and_users, |db: Db| async move {
    let ws = workspaces::create(&db, "acme", "Acme").await.unwrap();
    let dup = workspaces::create(&db, "acme", "Acme again")
        .await
        .unwrap_err();
    assert!(dup.is_unique_violation());
    assert_eq!(dup.to_string(), "a workspace with this slug already exists");
    assert_eq!(
        workspaces::get_or_create(&db, "acme", "x")
            .await
            .unwrap()
            .id,
        ws.id
    );

    let user = users::create(&db, " Ada@Example.com ", "hash")
        .await
        .unwrap();
    assert_eq!(user.email, "ada@example.com");
    assert!(
        users::create(&db, "ada@example.com", "h")
            .await
            .unwrap_err()
            .is_unique_violation()
    );
    assert_eq!(
        users::by_email(&db, "ADA@example.com")
            .await
            .unwrap()
            .unwrap()
            .id,
        user.id
    );

    users::add_membership(&db, &ws.id, &user.id, users::Role::Owner)
        .await
        .unwrap();
    users::add_membership(&db, &ws.id, &user.id, users::Role::Owner)
        .await
        .unwrap();
    assert_eq!(
        users::workspaces_of(&db, &user.id).await.unwrap(),
        vec![ws.clone()]
    );
    assert!(users::is_member(&db, &ws.id, &user.id).await.unwrap());
    let other = workspaces::create(&db, "other", "Other").await.unwrap();
    assert!(!users::is_member(&db, &other.id, &user.id).await.unwrap());
});

both_backends!(sessions_expire, |db: Db| async move {
    let ws = workspaces::create(&db, "w", "W").await.unwrap();
    let user = users::create(&db, "a@b.c", "h").await.unwrap();
    let session = sessions::Session {
        token_hash: "t1".into(),
        workspace_id: ws.id.clone(),
        user_id: user.id.clone(),
        csrf_token: "c".into(),
        created_at: 1_000,
        expires_at: 2_000,
    };
    sessions::create(&db, &session).await.unwrap();
    assert!(
        sessions::find_live(&db, "t1", 1_999)
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        sessions::find_live(&db, "t1", 2_000)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(sessions::delete_expired(&db, 2_000).await.unwrap(), 1);
});

both_backends!(api_keys_are_workspace_scoped, |db: Db| async move {
    let a = workspaces::create(&db, "a", "A").await.unwrap();
    let b = workspaces::create(&db, "b", "B").await.unwrap();
    let key = api_keys::ApiKey {
        id: tidepost_domain::new_id(),
        workspace_id: a.id.clone(),
        name: "ci".into(),
        prefix: "tp_abc".into(),
        key_hash: "hash".into(),
        scopes: "api worker".into(),
        created_at: 5,
        last_used_at: None,
        revoked_at: None,
        role: tidepost_domain::Role::Admin,
        created_by: None,
    };
    api_keys::insert(&db, &key).await.unwrap();
    assert_eq!(api_keys::list(&db, &a.id).await.unwrap().len(), 1);
    assert!(api_keys::list(&db, &b.id).await.unwrap().is_empty());
    assert!(api_keys::get(&db, &b.id, &key.id).await.unwrap().is_none());
    assert!(!api_keys::revoke(&db, &b.id, &key.id, 10).await.unwrap());
    let found = api_keys::find_by_hash(&db, "hash").await.unwrap().unwrap();
    assert!(found.has_scope("worker") && found.revoked_at.is_none());
    api_keys::touch(&db, &key.id, 100_000).await.unwrap();
    assert!(api_keys::revoke(&db, &a.id, &key.id, 10).await.unwrap());
    assert!(!api_keys::revoke(&db, &a.id, &key.id, 11).await.unwrap());
    let found = api_keys::find_by_hash(&db, "hash").await.unwrap().unwrap();
    assert_eq!(
        (found.revoked_at, found.last_used_at),
        (Some(10), Some(100_000))
    );
});

// Pruning forgets idle throttle subjects but keeps one still blocked, and a subject pruned
// starts its count again.
both_backends!(
    login_throttle_prune_keeps_blocked_subjects,
    |db: Db| async move {
        fn blocked_after_two(attempt: i64) -> i64 {
            if attempt >= 2 { 1_000_000 } else { 0 }
        }
        let policy = login_attempts::Policy {
            window_ms: 100,
            delay_after: blocked_after_two,
        };
        for at in [10, 20] {
            login_attempts::admit(&db, "ada@example.com", "blocked", at, policy)
                .await
                .unwrap();
        }
        login_attempts::admit(&db, "ada@example.com", "idle", 10, policy)
            .await
            .unwrap();
        assert_eq!(login_attempts::prune(&db, 500).await.unwrap(), 1);
        assert_eq!(
            login_attempts::blocked_until(&db, "blocked", 500)
                .await
                .unwrap(),
            Some(1_000_020)
        );
        assert_eq!(
            login_attempts::admit(&db, "ada@example.com", "idle", 500, policy)
                .await
                .unwrap(),
            login_attempts::Admission::Granted { attempt: 1 }
        );
    }
);

#[tokio::test]
async fn unreachable_postgres_is_a_clear_error() {
    let err = Db::connect("postgres://nobody@127.0.0.1:1/none")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("cannot reach the database (PostgreSQL):"),
        "{err}"
    );
    assert!(!err.contains("nobody"), "the URL must not leak: {err}");
}

fn account(
    workspace_id: &str,
    id: &str,
    provider_user_id: &str,
) -> tidepost_store::accounts::Account {
    tidepost_store::accounts::Account {
        id: id.into(),
        workspace_id: workspace_id.into(),
        platform: tidepost_domain::Platform::Tiktok,
        provider_user_id: provider_user_id.into(),
        display_name: "Creator".into(),
        username: Some("creator".into()),
        avatar_url: None,
        status: "active".into(),
        status_reason: None,
        scopes: "user.info.basic".into(),
        access_token: "v1.k.access".into(),
        refresh_token: Some("v1.k.refresh".into()),
        access_expires_at: Some(1_000),
        refresh_expires_at: Some(9_000),
        last_refreshed_at: None,
        refresh_lease_until: None,
        refresh_lease_by: None,
        details: "{}".into(),
        created_at: 1,
        updated_at: 1,
    }
}

both_backends!(
    accounts_upsert_scope_and_refresh_lease,
    |db: Db| async move {
        use tidepost_store::accounts::{self, AccountStatus, Refreshed};
        let a = workspaces::create(&db, "a", "A").await.unwrap();
        let b = workspaces::create(&db, "b", "B").await.unwrap();
        accounts::upsert(&db, &account(&a.id, "acc-1", "open-1"))
            .await
            .unwrap();
        // Reconnecting the same identity updates the row instead of adding one.
        let mut again = account(&a.id, "acc-other", "open-1");
        again.display_name = "Renamed".into();
        accounts::upsert(&db, &again).await.unwrap();
        let list = accounts::list(&db, &a.id).await.unwrap();
        assert_eq!(
            (
                list.len(),
                list[0].id.as_str(),
                list[0].display_name.as_str()
            ),
            (1, "acc-1", "Renamed")
        );
        assert!(accounts::get(&db, &b.id, "acc-1").await.unwrap().is_none());
        assert!(!accounts::delete(&db, &b.id, "acc-1").await.unwrap());

        // One refresh lease at a time; a stale holder cannot write.
        assert!(
            accounts::try_lease_refresh(&db, "acc-1", "w1", 100, 30_000)
                .await
                .unwrap()
        );
        assert!(
            !accounts::try_lease_refresh(&db, "acc-1", "w2", 200, 30_000)
                .await
                .unwrap()
        );
        let tokens = Refreshed {
            access_token: "v1.k.new",
            refresh_token: None,
            access_expires_at: Some(5_000),
            refresh_expires_at: None,
        };
        assert!(
            !accounts::store_refreshed(&db, "acc-1", "w2", &tokens, 300)
                .await
                .unwrap()
        );
        assert!(
            accounts::store_refreshed(&db, "acc-1", "w1", &tokens, 300)
                .await
                .unwrap()
        );
        let stored = accounts::get(&db, &a.id, "acc-1").await.unwrap().unwrap();
        assert_eq!(stored.access_token, "v1.k.new");
        assert_eq!(
            stored.refresh_token.as_deref(),
            Some("v1.k.refresh"),
            "a refresh never blanks the refresh token"
        );
        assert!(stored.refresh_lease_by.is_none());
        // An expired lease can be taken over.
        assert!(
            accounts::try_lease_refresh(&db, "acc-1", "w1", 400, 10)
                .await
                .unwrap()
        );
        assert!(
            accounts::try_lease_refresh(&db, "acc-1", "w2", 500, 10)
                .await
                .unwrap()
        );

        assert_eq!(
            accounts::due_for_refresh(&db, 6_000, 10)
                .await
                .unwrap()
                .len(),
            1
        );
        assert!(
            accounts::set_status(
                &db,
                &a.id,
                "acc-1",
                AccountStatus::NeedsReauth,
                Some("revoked"),
                600
            )
            .await
            .unwrap()
        );
        assert!(
            !accounts::set_status(
                &db,
                &a.id,
                "acc-1",
                AccountStatus::NeedsReauth,
                Some("revoked"),
                700
            )
            .await
            .unwrap()
        );
        assert!(
            accounts::due_for_refresh(&db, 6_000, 10)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            accounts::by_provider_identity(&db, tidepost_domain::Platform::Tiktok, "open-1")
                .await
                .unwrap()
                .len(),
            1
        );
    }
);

both_backends!(oauth_states_are_single_use, |db: Db| async move {
    use tidepost_store::oauth_states::{self, OAuthState, Refusal};
    let ws = workspaces::create(&db, "w", "W").await.unwrap();
    let state = |hash: &str, expires_at| OAuthState {
        state_hash: hash.into(),
        workspace_id: ws.id.clone(),
        user_id: None,
        flow: "tiktok".into(),
        pkce_verifier: None,
        return_to: None,
        connect_link_id: None,
        created_at: 0,
        expires_at,
        used_at: None,
    };
    oauth_states::insert(&db, &state("h1", 1_000))
        .await
        .unwrap();
    oauth_states::insert(&db, &state("h2", 1_000))
        .await
        .unwrap();
    assert!(oauth_states::consume(&db, "h1", 10).await.unwrap().is_ok());
    assert_eq!(
        oauth_states::consume(&db, "h1", 20)
            .await
            .unwrap()
            .unwrap_err(),
        Refusal::AlreadyUsed
    );
    assert_eq!(
        oauth_states::consume(&db, "h2", 1_000)
            .await
            .unwrap()
            .unwrap_err(),
        Refusal::Expired
    );
    assert_eq!(
        oauth_states::consume(&db, "nope", 10)
            .await
            .unwrap()
            .unwrap_err(),
        Refusal::Unknown
    );
    assert_eq!(oauth_states::prune(&db, 2_000).await.unwrap(), 2);
});

both_backends!(connect_links_are_spent_once, |db: Db| async move {
    use tidepost_store::connect_links::{self, ConnectLink, Refusal};
    let ws = workspaces::create(&db, "w", "W").await.unwrap();
    let other = workspaces::create(&db, "o", "O").await.unwrap();
    let link = |id: &str, expires_at| ConnectLink {
        id: id.into(),
        workspace_id: ws.id.clone(),
        platforms: "tiktok instagram".into(),
        external_ref: Some("crm-1".into()),
        return_url: "https://crm.example.com/back".into(),
        reconnect_account_id: None,
        created_at: 0,
        expires_at,
        used_at: None,
        finished_at: None,
        status: None,
        error: None,
        account_id: None,
    };
    connect_links::insert(&db, &link("l1", 1_000), "h1")
        .await
        .unwrap();
    connect_links::insert(&db, &link("l2", 1_000), "h2")
        .await
        .unwrap();
    // Looking does not spend it.
    assert!(connect_links::peek(&db, "h1", 10).await.unwrap().is_ok());
    // Of several requests racing with one link, exactly one wins.
    let racers: Vec<_> = (0..8)
        .map(|_| {
            let db = db.clone();
            tokio::spawn(async move { connect_links::consume(&db, "h1", 10).await })
        })
        .collect();
    let mut won = 0;
    for racer in racers {
        if racer.await.unwrap().unwrap().is_ok() {
            won += 1;
        }
    }
    assert_eq!(won, 1);
    assert_eq!(
        connect_links::peek(&db, "h1", 20)
            .await
            .unwrap()
            .unwrap_err(),
        Refusal::AlreadyUsed
    );
    assert_eq!(
        connect_links::consume(&db, "h2", 1_000)
            .await
            .unwrap()
            .unwrap_err(),
        Refusal::Expired
    );
    assert_eq!(
        connect_links::peek(&db, "nope", 10)
            .await
            .unwrap()
            .unwrap_err(),
        Refusal::Unknown
    );
    // Bound to its workspace; its ending is recorded once.
    assert!(
        connect_links::get(&db, &other.id, "l1")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        connect_links::finish(&db, &ws.id, "l1", "connected", None, Some("acc"), 30)
            .await
            .unwrap()
    );
    assert!(
        !connect_links::finish(&db, &ws.id, "l1", "error", Some("internal"), None, 40)
            .await
            .unwrap()
    );
    let ended = connect_links::get(&db, &ws.id, "l1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ended.status.as_deref(), Some("connected"));
    assert_eq!(ended.account_id.as_deref(), Some("acc"));
    assert_eq!(connect_links::prune(&db, 2_000).await.unwrap(), 2);
});

both_backends!(events_are_recorded_per_workspace, |db: Db| async move {
    use tidepost_store::events;
    let a = workspaces::create(&db, "a", "A").await.unwrap();
    let b = workspaces::create(&db, "b", "B").await.unwrap();
    events::record(
        &db,
        &a.id,
        "account.connected",
        Some("acc-1"),
        &serde_json::json!({"x": 1}),
    )
    .await
    .unwrap();
    events::record(
        &db,
        &a.id,
        "post.published",
        Some("post-1"),
        &serde_json::json!({}),
    )
    .await
    .unwrap();
    assert_eq!(events::recent(&db, &a.id, None, 10).await.unwrap().len(), 2);
    assert_eq!(
        events::recent(&db, &a.id, Some("acc-1"), 10)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(
        events::recent(&db, &b.id, None, 10)
            .await
            .unwrap()
            .is_empty()
    );
});

// A row whose platform tidepost does not know is an error naming the value, never read as
// another platform.
both_backends!(an_unknown_platform_in_a_row_is_named, |db: Db| async move {
    let ws = workspaces::create(&db, "rows", "Rows").await.unwrap();
    tidepost_store::accounts::upsert(&db, &account(&ws.id, "acc-1", "open-1"))
        .await
        .unwrap();
    sqlx::query("UPDATE accounts SET platform = 'myspace' WHERE id = 'acc-1'")
        .execute(db.pool())
        .await
        .unwrap();
    let err = tidepost_store::accounts::get(&db, &ws.id, "acc-1")
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown platform \"myspace\""), "{err}");
    assert!(err.contains("\"tiktok\", \"instagram\""), "{err}");
});
