//! Repository tests, each run on SQLite and on PostgreSQL.

use tidepost_store::{Db, SchemaState, api_keys, both_backends, login_attempts, sessions, users, workspaces};

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
    assert!(err.contains("migration 99990101 which this tidepost binary does not know"), "{err}");
    assert!(db.ensure_current().await.is_err());
});

both_backends!(workspaces_and_users, |db: Db| async move {
    let ws = workspaces::create(&db, "acme", "Acme").await.unwrap();
    let dup = workspaces::create(&db, "acme", "Acme again").await.unwrap_err();
    assert!(dup.is_unique_violation());
    assert_eq!(dup.to_string(), "a workspace with this slug already exists");
    assert_eq!(workspaces::get_or_create(&db, "acme", "x").await.unwrap().id, ws.id);

    let user = users::create(&db, " Ada@Example.com ", "hash").await.unwrap();
    assert_eq!(user.email, "ada@example.com");
    assert!(users::create(&db, "ada@example.com", "h").await.unwrap_err().is_unique_violation());
    assert_eq!(users::by_email(&db, "ADA@example.com").await.unwrap().unwrap().id, user.id);

    users::add_membership(&db, &ws.id, &user.id, users::Role::Owner).await.unwrap();
    users::add_membership(&db, &ws.id, &user.id, users::Role::Owner).await.unwrap();
    assert_eq!(users::workspaces_of(&db, &user.id).await.unwrap(), vec![ws.clone()]);
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
    assert!(sessions::find_live(&db, "t1", 1_999).await.unwrap().is_some());
    assert!(sessions::find_live(&db, "t1", 2_000).await.unwrap().is_none());
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
    assert_eq!((found.revoked_at, found.last_used_at), (Some(10), Some(100_000)));
});

both_backends!(login_attempts_count_in_window, |db: Db| async move {
    for at in [10, 20, 30] {
        login_attempts::record_failure(&db, "ada@example.com", at).await.unwrap();
    }
    assert_eq!(login_attempts::failures_since(&db, "ada@example.com", 15).await.unwrap(), (2, Some(20)));
    assert_eq!(login_attempts::prune(&db, 25).await.unwrap(), 2);
    login_attempts::clear(&db, "ada@example.com").await.unwrap();
    assert_eq!(login_attempts::failures_since(&db, "ada@example.com", 0).await.unwrap(), (0, None));
});

#[tokio::test]
async fn unreachable_postgres_is_a_clear_error() {
    let err = Db::connect("postgres://nobody@127.0.0.1:1/none").await.unwrap_err().to_string();
    assert!(err.starts_with("cannot reach the database (PostgreSQL):"), "{err}");
    assert!(!err.contains("nobody"), "the URL must not leak: {err}");
}
