//! Keyset pages of the lists that had none (API keys, accounts): every row once, newest first,
//! only the workspace's own, on SQLite and on PostgreSQL.

use tidepost_store::{Db, accounts, api_keys, both_backends, workspaces};

fn key(workspace_id: &str, n: usize) -> api_keys::ApiKey {
    api_keys::ApiKey {
        id: tidepost_domain::new_id(),
        workspace_id: workspace_id.into(),
        name: format!("key {n}"),
        prefix: format!("tp_{n}"),
        key_hash: format!("{workspace_id}-{n}"),
        scopes: "api".into(),
        created_at: 5,
        last_used_at: None,
        revoked_at: None,
        role: tidepost_domain::Role::Admin,
        created_by: None,
    }
}

fn account(workspace_id: &str, n: usize) -> accounts::Account {
    accounts::Account {
        id: tidepost_domain::new_id(),
        workspace_id: workspace_id.into(),
        platform: tidepost_domain::Platform::Tiktok,
        provider_user_id: format!("user-{n}"),
        display_name: format!("Creator {n}"),
        username: None,
        avatar_url: None,
        status: "active".into(),
        status_reason: None,
        scopes: "user.info.basic".into(),
        access_token: "envelope".into(),
        refresh_token: None,
        access_expires_at: None,
        refresh_expires_at: None,
        last_refreshed_at: None,
        refresh_lease_until: None,
        refresh_lease_by: None,
        details: "{}".into(),
        created_at: 5,
        updated_at: 5,
    }
}

/// Walks pages of `size` with `fetch(after, size)` until a short page; returns the ids in order.
async fn walk<F, Fut>(size: i64, fetch: F) -> Vec<String>
where
    F: Fn(Option<String>, i64) -> Fut,
    Fut: std::future::Future<Output = Vec<String>>,
{
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = fetch(after.clone(), size).await;
        assert!(page.len() as i64 <= size);
        seen.extend(page.iter().cloned());
        if (page.len() as i64) < size {
            return seen;
        }
        after = page.last().cloned();
    }
}

both_backends!(api_keys_page_by_id, |db: Db| async move {
    let a = workspaces::create(&db, "a", "A").await.unwrap();
    let b = workspaces::create(&db, "b", "B").await.unwrap();
    let mut ids = Vec::new();
    for n in 0..5 {
        let k = key(&a.id, n);
        api_keys::insert(&db, &k).await.unwrap();
        ids.push(k.id);
        api_keys::insert(&db, &key(&b.id, n)).await.unwrap();
    }
    ids.reverse();
    for size in [1, 2, 5, 6] {
        let seen = walk(size, |after, limit| {
            let (db, ws) = (db.clone(), a.id.clone());
            async move {
                api_keys::page(&db, &ws, after.as_deref(), limit)
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|k| k.id)
                    .collect()
            }
        })
        .await;
        assert_eq!(
            seen, ids,
            "pages of {size}: each of A's keys once, newest first"
        );
    }
});

both_backends!(accounts_page_by_id, |db: Db| async move {
    let a = workspaces::create(&db, "a", "A").await.unwrap();
    let b = workspaces::create(&db, "b", "B").await.unwrap();
    let mut ids = Vec::new();
    for n in 0..5 {
        let acc = account(&a.id, n);
        accounts::upsert(&db, &acc).await.unwrap();
        ids.push(acc.id);
        accounts::upsert(&db, &account(&b.id, n)).await.unwrap();
    }
    ids.reverse();
    for size in [1, 3, 5] {
        let seen = walk(size, |after, limit| {
            let (db, ws) = (db.clone(), a.id.clone());
            async move {
                accounts::page(&db, &ws, after.as_deref(), limit)
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|k| k.id)
                    .collect()
            }
        })
        .await;
        assert_eq!(
            seen, ids,
            "pages of {size}: each of A's accounts once, newest first"
        );
    }
});
