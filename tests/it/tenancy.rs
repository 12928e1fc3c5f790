//! Tenancy: no route ever serves, changes or reveals another workspace's object.
//!
//! [`ID_ROUTES`] lists every route that takes an id: each API route under `/api/v1` and each UI
//! page. For every row the test makes an object in workspace A, calls the route as workspace B
//! with A's id and expects 404 (never 2xx, never A's data), checks A's object is untouched, and
//! then calls the route as A to prove the row names a real route (a misspelled row must not
//! pass by answering 404 to everyone). Routes with several ids (a post's target) get all of
//! them from workspace A.
//!
//! **When you add a route that takes an id, add a row here** (and, for a new kind of object, an
//! [`Object`] variant and how to make one in [`make`]). `every_id_route_is_in_the_table` scans
//! `crates/http/src` for routes with `{…}` in their path and fails when one has no row.

use reqwest::{Method, StatusCode};
use serde_json::Value;

use tidepost_store::{accounts, posts};

use crate::support::*;

/// The kinds of workspace objects routes take ids of.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Object {
    ApiKey,
    Account,
    /// A post with one target (`{id}` is the post, `{target}` its target).
    Post,
    /// A queued background job of the workspace.
    Job,
    /// An outbound webhook endpoint (made through the API, so its secret is really sealed).
    WebhookEndpoint,
    /// A delivery of an event to a webhook endpoint.
    WebhookDelivery,
    /// A media item of the library.
    Media,
    /// A resumable upload.
    Upload,
    /// A CRM creator owning one account (`{account_id}`).
    Creator,
    /// A CRM contact (made by recording an interaction of theirs).
    Contact,
    /// A CRM interaction (an Instagram comment on an account).
    Interaction,
    /// A post target (`{id}` is the target).
    Target,
    /// A draft (a post saved without being sent).
    Draft,
    /// A pending invite to join the workspace.
    Invite,
    /// A member of the workspace (`{id}` is their user id; an editor besides the owner).
    Member,
}

/// Who calls a route: an API key (`/api/v1`) or a signed-in browser (UI pages, CSRF field sent).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Surface {
    Api,
    Ui,
}

struct IdRoute {
    method: &'static str,
    /// The route template as registered: `{id}` (and any other `{…}`) stand for the ids
    /// [`make`] returns.
    template: &'static str,
    surface: Surface,
    object: Object,
}

const fn row(method: &'static str, template: &'static str, object: Object) -> IdRoute {
    let surface = if matches!(template.as_bytes(), [b'/', b'a', b'p', b'i', b'/', ..]) {
        Surface::Api
    } else {
        Surface::Ui
    };
    IdRoute {
        method,
        template,
        surface,
        object,
    }
}

/// Every route that takes an id. Add a row with each new route.
const ID_ROUTES: &[IdRoute] = &[
    row("GET", "/api/v1/api-keys/{id}", Object::ApiKey),
    row("DELETE", "/api/v1/api-keys/{id}", Object::ApiKey),
    row("POST", "/settings/api-keys/{id}/revoke", Object::ApiKey),
    row("GET", "/api/v1/accounts/{id}", Object::Account),
    row("DELETE", "/api/v1/accounts/{id}", Object::Account),
    row(
        "POST",
        "/api/v1/accounts/{id}/widget-links",
        Object::Account,
    ),
    row("GET", "/accounts/{id}", Object::Account),
    row("POST", "/accounts/{id}/disconnect", Object::Account),
    row("GET", "/api/v1/posts/{id}", Object::Post),
    row("GET", "/api/v1/posts/{id}/comments", Object::Post),
    row("POST", "/api/v1/posts/{id}/comments", Object::Post),
    row("POST", "/posts/{id}/comments", Object::Post),
    row("POST", "/api/v1/posts/{id}/cancel", Object::Post),
    row("PATCH", "/api/v1/posts/{id}", Object::Post),
    row("GET", "/api/v1/posts/{id}/history", Object::Post),
    row("DELETE", "/api/v1/posts/{id}", Object::Post),
    row(
        "POST",
        "/api/v1/posts/{id}/targets/{target}/retry",
        Object::Post,
    ),
    row(
        "POST",
        "/api/v1/posts/{id}/targets/{target}/mark-published",
        Object::Post,
    ),
    row(
        "POST",
        "/api/v1/posts/{id}/targets/{target}/send-again",
        Object::Post,
    ),
    row("GET", "/posts/{id}", Object::Post),
    row("POST", "/posts/{id}/cancel", Object::Post),
    row("POST", "/posts/{id}/reschedule", Object::Post),
    row("POST", "/posts/{id}/targets/{target}/retry", Object::Post),
    row(
        "POST",
        "/posts/{id}/targets/{target}/mark-published",
        Object::Post,
    ),
    row(
        "POST",
        "/posts/{id}/targets/{target}/send-again",
        Object::Post,
    ),
    row("GET", "/api/v1/jobs/{id}", Object::Job),
    row("POST", "/api/v1/jobs/{id}/retry", Object::Job),
    row("POST", "/api/v1/jobs/{id}/cancel", Object::Job),
    row("POST", "/jobs/{id}/retry", Object::Job),
    row("POST", "/jobs/{id}/cancel", Object::Job),
    row(
        "GET",
        "/api/v1/webhook-endpoints/{id}",
        Object::WebhookEndpoint,
    ),
    row(
        "PATCH",
        "/api/v1/webhook-endpoints/{id}",
        Object::WebhookEndpoint,
    ),
    row(
        "DELETE",
        "/api/v1/webhook-endpoints/{id}",
        Object::WebhookEndpoint,
    ),
    row(
        "POST",
        "/api/v1/webhook-endpoints/{id}/rotate-secret",
        Object::WebhookEndpoint,
    ),
    row(
        "GET",
        "/api/v1/webhook-endpoints/{id}/deliveries",
        Object::WebhookEndpoint,
    ),
    row("GET", "/settings/webhooks/{id}", Object::WebhookEndpoint),
    row(
        "POST",
        "/settings/webhooks/{id}/rotate",
        Object::WebhookEndpoint,
    ),
    row(
        "POST",
        "/settings/webhooks/{id}/enable",
        Object::WebhookEndpoint,
    ),
    row(
        "POST",
        "/settings/webhooks/{id}/disable",
        Object::WebhookEndpoint,
    ),
    row(
        "POST",
        "/settings/webhooks/{id}/delete",
        Object::WebhookEndpoint,
    ),
    row(
        "GET",
        "/api/v1/webhook-deliveries/{id}",
        Object::WebhookDelivery,
    ),
    row(
        "POST",
        "/api/v1/webhook-deliveries/{id}/resend",
        Object::WebhookDelivery,
    ),
    row(
        "GET",
        "/settings/webhooks/deliveries/{id}",
        Object::WebhookDelivery,
    ),
    row(
        "POST",
        "/settings/webhooks/deliveries/{id}/resend",
        Object::WebhookDelivery,
    ),
    row("GET", "/api/v1/media/{id}", Object::Media),
    row("GET", "/api/v1/media/{id}/frame", Object::Media),
    row("GET", "/api/v1/media/{id}/content", Object::Media),
    row("DELETE", "/api/v1/media/{id}", Object::Media),
    row("POST", "/media/{id}/delete", Object::Media),
    row("GET", "/api/v1/uploads/{id}", Object::Upload),
    row("PATCH", "/api/v1/uploads/{id}", Object::Upload),
    row("DELETE", "/api/v1/uploads/{id}", Object::Upload),
    row("GET", "/api/v1/creators/{id}", Object::Creator),
    row("PATCH", "/api/v1/creators/{id}", Object::Creator),
    row("DELETE", "/api/v1/creators/{id}", Object::Creator),
    row("POST", "/api/v1/creators/{id}/accounts", Object::Creator),
    row(
        "DELETE",
        "/api/v1/creators/{id}/accounts/{account_id}",
        Object::Creator,
    ),
    row("GET", "/api/v1/creators/{id}/timeline", Object::Creator),
    row(
        "POST",
        "/api/v1/creators/{id}/widget-links",
        Object::Creator,
    ),
    row("GET", "/creators/{id}", Object::Creator),
    row("POST", "/creators/{id}", Object::Creator),
    row("POST", "/creators/{id}/accounts", Object::Creator),
    row(
        "POST",
        "/creators/{id}/accounts/{account_id}/detach",
        Object::Creator,
    ),
    row("POST", "/creators/{id}/delete", Object::Creator),
    row("GET", "/api/v1/contacts/{id}", Object::Contact),
    row("GET", "/api/v1/contacts/{id}/timeline", Object::Contact),
    row("GET", "/contacts/{id}", Object::Contact),
    row("GET", "/api/v1/interactions/{id}", Object::Interaction),
    row(
        "POST",
        "/api/v1/interactions/{id}/reply",
        Object::Interaction,
    ),
    row("POST", "/inbox/{id}/reply", Object::Interaction),
    row("GET", "/api/v1/targets/{id}/metrics", Object::Target),
    row("GET", "/api/v1/drafts/{id}", Object::Draft),
    row("PUT", "/api/v1/drafts/{id}", Object::Draft),
    row("DELETE", "/api/v1/drafts/{id}", Object::Draft),
    row("POST", "/api/v1/drafts/{id}/publish", Object::Draft),
    row("POST", "/drafts/{id}/delete", Object::Draft),
    row(
        "POST",
        "/settings/members/invites/{id}/revoke",
        Object::Invite,
    ),
    row("POST", "/settings/members/{id}/role", Object::Member),
    row("POST", "/settings/members/{id}/remove", Object::Member),
];

/// Routes with a path parameter that is not a workspace object's id.
/// `/media/{id}/{token}` is the signed, expiring URL Meta fetches media from: it is authorized by
/// its token (a vault envelope bound to the media id), not by a workspace's credentials.
/// `/connect/link/{token}` is a connect link's hosted page: the token is the link (only its hash
/// is stored, bound to one workspace), for a creator who has no tidepost login.
/// `/widget/{id}/{token}` is an account widget's signed URL, authorized by its token like
/// signed media, and so are its Reconnect and its JSON for the web component.
/// `/invite/{token}` is an invite link: the token is the invite (only its hash is stored), for
/// a person who may not have a login yet.
const NOT_TENANT_DATA: &[&str] = &[
    "/assets/{name}",
    "/media/{id}/{token}",
    "/connect/link/{token}",
    "/widget/{id}/{token}",
    "/widget/{id}/{token}/reconnect",
    "/widget/{id}/{token}/card.json",
    "/invite/{token}",
];

/// Makes an object of `kind` in `workspace_id`; returns the values of the template's
/// placeholders, `id` first.
pub(crate) async fn make(
    app: &TestApp,
    kind: Object,
    workspace_id: &str,
) -> Vec<(&'static str, String)> {
    match kind {
        Object::Invite => {
            let ws = tidepost_store::workspaces::by_id(&app.db, workspace_id)
                .await
                .unwrap()
                .unwrap();
            let email = format!("invited-{}@example.com", &tidepost_domain::new_id()[24..]);
            let made = tidepost_app::members::invite(
                &app.db,
                &app.app.config,
                &ws,
                tidepost_app::members::Actor::Operator,
                &email,
                tidepost_domain::Role::Viewer,
            )
            .await
            .unwrap();
            vec![("id", made.invite.id)]
        }
        Object::Member => {
            let ws = tidepost_store::workspaces::by_id(&app.db, workspace_id)
                .await
                .unwrap()
                .unwrap();
            let email = format!("member-{}@example.com", &tidepost_domain::new_id()[24..]);
            let (user, _) = app.create_user(&email, &ws.slug).await;
            tidepost_store::users::set_role(
                &app.db,
                workspace_id,
                &user.id,
                tidepost_domain::Role::Editor,
            )
            .await
            .unwrap();
            vec![("id", user.id)]
        }
        Object::Creator => {
            let account_id = make_account(app, workspace_id).await;
            let creator = tidepost_store::crm::creators::create(
                &app.db,
                workspace_id,
                &format!("Fixture creator {}", &tidepost_domain::new_id()[24..]),
                "tenancy fixture",
            )
            .await
            .unwrap();
            assert!(
                tidepost_store::crm::creators::attach(
                    &app.db,
                    workspace_id,
                    &creator.id,
                    &account_id
                )
                .await
                .unwrap()
            );
            vec![("id", creator.id), ("account_id", account_id)]
        }
        Object::Contact | Object::Interaction => {
            let account_id = make_account(app, workspace_id).await;
            let unique = tidepost_domain::new_id()[24..].to_string();
            let (fan, comment, text) = (
                format!("fan-{unique}"),
                format!("comment-{unique}"),
                format!("fixture comment {unique}"),
            );
            let observed = tidepost_store::crm::interactions::Observed {
                platform: tidepost_domain::Platform::Instagram,
                kind: "comment",
                direction: "inbound",
                provider_id: &comment,
                parent_provider_id: None,
                author: Some(tidepost_store::crm::contacts::Sighting {
                    platform: tidepost_domain::Platform::Instagram,
                    platform_user_id: &fan,
                    handle: Some(&fan),
                    name: None,
                    at: tidepost_domain::now_ms(),
                }),
                account_id: &account_id,
                provider_media_id: None,
                text: &text,
                occurred_at: tidepost_domain::now_ms(),
            };
            let i = tidepost_store::crm::interactions::record(&app.db, workspace_id, &observed)
                .await
                .unwrap()
                .unwrap();
            match kind {
                Object::Contact => vec![("id", i.contact_id.unwrap())],
                _ => vec![("id", i.id)],
            }
        }
        Object::Target => {
            let ids = Box::pin(make(app, Object::Post, workspace_id)).await;
            let target = ids.into_iter().find(|(k, _)| *k == "target").unwrap().1;
            vec![("id", target)]
        }
        Object::Media => {
            let now = tidepost_domain::now_ms();
            let id = tidepost_domain::new_id();
            let sha = format!("{:0>64}", id.replace('-', ""));
            let media = tidepost_store::media::Media {
                id: id.clone(),
                workspace_id: workspace_id.to_string(),
                sha256: sha.clone(),
                size_bytes: 10,
                content_type: "image/jpeg".into(),
                kind: "image".into(),
                storage_path: format!("media/{sha}"),
                original_name: Some(format!("fixture-{}.jpg", &id[24..])),
                created_at: now,
                info: None,
                probe_error: Some("a fixture".into()),
                container: None,
                width: None,
                height: None,
                duration_ms: None,
                last_used_at: Some(now),
            };
            let stored = tidepost_store::media::insert_or_get(&app.db, &media)
                .await
                .unwrap();
            vec![("id", stored.id)]
        }
        Object::Upload => {
            let now = tidepost_domain::now_ms();
            let id = tidepost_domain::new_id();
            let upload = tidepost_store::uploads::Upload {
                id: id.clone(),
                workspace_id: workspace_id.to_string(),
                length: 100,
                received: 0,
                file_name: Some(format!("fixture-{}.mp4", &id[24..])),
                content_type: Some("video/mp4".into()),
                metadata: String::new(),
                state: "receiving".into(),
                media_id: None,
                error: None,
                lock_token: None,
                locked_until: None,
                created_by: None,
                created_at: now,
                updated_at: now,
                expires_at: now + 3_600_000,
                multipart_id: None,
                tail: None,
            };
            tidepost_store::uploads::insert(&app.db, &upload)
                .await
                .unwrap();
            vec![("id", id)]
        }
        Object::ApiKey => {
            let secret = app.api_key(workspace_id, "tenancy fixture", &[]).await;
            vec![("id", app.key_id(&secret).await)]
        }
        Object::Account => vec![("id", make_account(app, workspace_id).await)],
        Object::Draft => {
            let now = tidepost_domain::now_ms();
            let id = tidepost_domain::new_id();
            let draft = tidepost_store::drafts::Draft {
                id: id.clone(),
                workspace_id: workspace_id.to_string(),
                body: serde_json::json!({"caption": format!("fixture draft {}", &id[24..])})
                    .to_string(),
                created_by: None,
                created_at: now,
                updated_at: now,
                version: 1,
                post_id: None,
                published_at: None,
            };
            tidepost_store::drafts::insert(&app.db, &draft)
                .await
                .unwrap();
            vec![("id", id)]
        }
        Object::Post => {
            let account_id = make_account(app, workspace_id).await;
            let now = tidepost_domain::now_ms();
            let post = posts::Post {
                id: tidepost_domain::new_id(),
                workspace_id: workspace_id.to_string(),
                caption: format!("tenancy fixture {}", &tidepost_domain::new_id()[24..]),
                kind: "video".into(),
                media_id: None,
                media_url: Some("https://media.example.com/v.mp4".into()),
                options: "{}".into(),
                idempotency_key: None,
                created_by: None,
                created_at: now,
                updated_at: now,
                scheduled_at: None,
                time_zone: None,
                version: 1,
            };
            let target = posts::Target {
                id: tidepost_domain::new_id(),
                workspace_id: workspace_id.to_string(),
                post_id: post.id.clone(),
                account_id,
                platform: tidepost_domain::Platform::Tiktok,
                mode: "direct".into(),
                source: "pull_from_url".into(),
                state: "failed".into(),
                bytes_total: 0,
                bytes_sent: 0,
                chunk_size: 0,
                chunks_total: 0,
                chunks_acked: 0,
                init_generation: 0,
                publish_id: None,
                provider_status: None,
                provider_post_ids: "[]".into(),
                error_code: Some("fixture".into()),
                error_message: Some("a failed fixture".into()),
                error_retryable: 1,
                upload_url: None,
                upload_url_expires_at: None,
                init_at: None,
                finished_at: Some(now),
                created_at: now,
                updated_at: now,
                options: None,
                scheduled_at: None,
                version: 1,
            };
            let mut conn = app.db.pool().acquire().await.unwrap();
            posts::insert_post_in(&mut conn, &post).await.unwrap();
            posts::insert_target_in(&mut conn, &target).await.unwrap();
            vec![("id", post.id), ("target", target.id)]
        }
        Object::Job => {
            let key = format!("tenancy-{}", tidepost_domain::new_id());
            let job = tidepost_jobs::NewJob::new("housekeeping.prune", &serde_json::json!({}))
                .workspace(workspace_id)
                .idempotency_key(key);
            let queued = tidepost_jobs::Queue::new(app.db.clone())
                .enqueue(job)
                .await
                .unwrap();
            vec![("id", queued.id)]
        }
        Object::WebhookEndpoint => vec![("id", make_webhook_endpoint(app, workspace_id).await)],
        Object::WebhookDelivery => {
            let endpoint_id = make_webhook_endpoint(app, workspace_id).await;
            let now = tidepost_domain::now_ms();
            let event_id = tidepost_domain::new_id();
            let delivery = tidepost_store::webhook_deliveries::Delivery {
                id: tidepost_domain::new_id(),
                workspace_id: workspace_id.to_string(),
                endpoint_id,
                event_type: "post.published".into(),
                body: format!(r#"{{"type":"post.published","data":{{"fixture":"{event_id}"}}}}"#),
                event_id,
                state: "failed".into(),
                attempts: 8,
                auto_attempts: 8,
                resends: 0,
                next_attempt_at: None,
                last_status: Some(500),
                last_error: Some("fixture".into()),
                event_created_at: now,
                created_at: now,
                updated_at: now,
                finished_at: Some(now),
            };
            let mut conn = app.db.pool().acquire().await.unwrap();
            tidepost_store::webhook_deliveries::insert_in(&mut conn, &delivery)
                .await
                .unwrap();
            vec![("id", delivery.id)]
        }
    }
}

/// A webhook endpoint of the workspace, made through its API (a sandbox server allows the
/// loopback URL).
async fn make_webhook_endpoint(app: &TestApp, workspace_id: &str) -> String {
    let key = app.api_key(workspace_id, "tenancy webhooks", &[]).await;
    let response = bare_client()
        .post(app.url("/api/v1/webhook-endpoints"))
        .bearer_auth(&key)
        .json(&serde_json::json!({
            "url": format!("http://127.0.0.1:9/fixture/{}", tidepost_domain::new_id()),
            "description": "tenancy fixture",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let created: Value = response.json().await.unwrap();
    created["id"].as_str().unwrap().to_string()
}

async fn job(app: &TestApp, workspace_id: &str, id: &str) -> tidepost_jobs::Job {
    tidepost_jobs::admin::get(
        &app.db,
        tidepost_jobs::admin::Scope::Workspace(workspace_id),
        id,
    )
    .await
    .unwrap()
    .expect("the object exists")
}

async fn make_account(app: &TestApp, workspace_id: &str) -> String {
    let suffix = &tidepost_domain::new_id()[24..];
    let name = format!("Fixture Creator {suffix}");
    fixture_account(
        &app.db,
        workspace_id,
        "tiktok",
        &format!("open-{suffix}"),
        &name,
    )
    .await
}

/// What identifies the object in a response, to prove it never leaks to the other workspace.
async fn fingerprint(app: &TestApp, kind: Object, workspace_id: &str, id: &str) -> String {
    match kind {
        Object::Invite => {
            tidepost_store::invites::get(&app.db, workspace_id, id)
                .await
                .unwrap()
                .expect("the object exists")
                .email
        }
        Object::Member => {
            tidepost_store::users::by_id(&app.db, id)
                .await
                .unwrap()
                .expect("the user exists")
                .email
        }
        Object::Creator => {
            tidepost_store::crm::creators::get(&app.db, workspace_id, id)
                .await
                .unwrap()
                .expect("the object exists")
                .name
        }
        Object::Contact => {
            tidepost_store::crm::contacts::get(&app.db, workspace_id, id)
                .await
                .unwrap()
                .expect("the object exists")
                .platform_user_id
        }
        Object::Interaction => {
            tidepost_store::crm::interactions::get(&app.db, workspace_id, id)
                .await
                .unwrap()
                .expect("the object exists")
                .text
        }
        Object::Target => {
            let target = posts::target(&app.db, workspace_id, id)
                .await
                .unwrap()
                .expect("the object exists");
            posts::get(&app.db, workspace_id, &target.post_id)
                .await
                .unwrap()
                .expect("the post exists")
                .caption
        }
        Object::Draft => {
            tidepost_store::drafts::get(&app.db, workspace_id, id)
                .await
                .unwrap()
                .expect("the object exists")
                .body
        }
        Object::Media => tidepost_store::media::get(&app.db, workspace_id, id)
            .await
            .unwrap()
            .expect("the object exists")
            .original_name
            .unwrap_or_default(),
        Object::Upload => tidepost_store::uploads::get(&app.db, workspace_id, id)
            .await
            .unwrap()
            .expect("the object exists")
            .file_name
            .unwrap_or_default(),
        Object::ApiKey => {
            let key = tidepost_store::api_keys::get(&app.db, workspace_id, id)
                .await
                .unwrap()
                .expect("the object exists");
            key.prefix
        }
        Object::Account => {
            let account = accounts::get(&app.db, workspace_id, id)
                .await
                .unwrap()
                .expect("the object exists");
            account.display_name
        }
        Object::Post => {
            let post = posts::get(&app.db, workspace_id, id)
                .await
                .unwrap()
                .expect("the object exists");
            post.caption
        }
        Object::Job => job(app, workspace_id, id)
            .await
            .idempotency_key
            .unwrap_or_default(),
        Object::WebhookEndpoint => {
            tidepost_store::webhook_endpoints::get(&app.db, workspace_id, id)
                .await
                .unwrap()
                .expect("the object exists")
                .url
        }
        Object::WebhookDelivery => {
            tidepost_store::webhook_deliveries::get(&app.db, workspace_id, id)
                .await
                .unwrap()
                .expect("the object exists")
                .event_id
        }
    }
}

/// The object's state, to prove the other workspace's call changed nothing.
async fn state_of(app: &TestApp, kind: Object, workspace_id: &str, id: &str) -> String {
    match kind {
        Object::Invite => {
            let i = tidepost_store::invites::get(&app.db, workspace_id, id)
                .await
                .unwrap()
                .expect("the object exists");
            format!("{:?} {:?} {}", i.revoked_at, i.accepted_at, i.role)
        }
        Object::Member => format!(
            "{:?}",
            tidepost_store::users::role_of(&app.db, workspace_id, id)
                .await
                .unwrap()
        ),
        Object::Creator => match tidepost_store::crm::creators::get(&app.db, workspace_id, id)
            .await
            .unwrap()
        {
            Some(c) => {
                let owned = tidepost_store::crm::creators::accounts_of(&app.db, workspace_id, id)
                    .await
                    .unwrap();
                format!("{} {} {} {}", c.name, c.notes, c.updated_at, owned.len())
            }
            None => "deleted".into(),
        },
        Object::Contact => {
            let c = tidepost_store::crm::contacts::get(&app.db, workspace_id, id)
                .await
                .unwrap()
                .expect("the object exists");
            format!("{:?} {} {}", c.handle, c.interactions, c.updated_at)
        }
        Object::Interaction => {
            let i = tidepost_store::crm::interactions::get(&app.db, workspace_id, id)
                .await
                .unwrap()
                .expect("the object exists");
            let replies = tidepost_store::crm::interactions::replies_to(
                &app.db,
                workspace_id,
                i.platform,
                &i.provider_id,
            )
            .await
            .unwrap();
            format!("{} {}", i.text, replies.len())
        }
        Object::Target => {
            let t = posts::target(&app.db, workspace_id, id)
                .await
                .unwrap()
                .expect("the object exists");
            format!("{} {}", t.state, t.updated_at)
        }
        Object::Draft => match tidepost_store::drafts::get(&app.db, workspace_id, id)
            .await
            .unwrap()
        {
            Some(d) => format!("{} {} {:?}", d.version, d.updated_at, d.post_id),
            None => "deleted".into(),
        },
        Object::Media => match tidepost_store::media::get(&app.db, workspace_id, id)
            .await
            .unwrap()
        {
            Some(m) => format!("{} {:?}", m.size_bytes, m.last_used_at),
            None => "deleted".into(),
        },
        Object::Upload => match tidepost_store::uploads::get(&app.db, workspace_id, id)
            .await
            .unwrap()
        {
            Some(u) => format!("{} {} {}", u.state, u.received, u.updated_at),
            None => "deleted".into(),
        },
        Object::ApiKey => {
            let key = tidepost_store::api_keys::get(&app.db, workspace_id, id)
                .await
                .unwrap()
                .expect("the object exists");
            format!("{} {} {:?}", key.name, key.scopes, key.revoked_at)
        }
        Object::Account => match accounts::get(&app.db, workspace_id, id).await.unwrap() {
            Some(a) => format!("{} {} {}", a.status, a.access_token, a.updated_at),
            None => "deleted".into(),
        },
        Object::Post => {
            let post = posts::get(&app.db, workspace_id, id)
                .await
                .unwrap()
                .expect("the object exists");
            let targets = posts::targets_of(&app.db, workspace_id, id).await.unwrap();
            let states: Vec<String> = targets
                .iter()
                .map(|t| format!("{} {} {}", t.state, t.init_generation, t.updated_at))
                .collect();
            format!("{} {states:?}", post.updated_at)
        }
        Object::Job => {
            let job = job(app, workspace_id, id).await;
            format!("{} {}", job.state.as_str(), job.updated_at)
        }
        Object::WebhookEndpoint => {
            match tidepost_store::webhook_endpoints::get(&app.db, workspace_id, id)
                .await
                .unwrap()
            {
                Some(e) => format!(
                    "{} {} {:?} {}",
                    e.url, e.secret, e.disabled_at, e.updated_at
                ),
                None => "deleted".into(),
            }
        }
        Object::WebhookDelivery => {
            let d = tidepost_store::webhook_deliveries::get(&app.db, workspace_id, id)
                .await
                .unwrap()
                .expect("the object exists");
            format!("{} {} {}", d.state, d.resends, d.updated_at)
        }
    }
}

/// One workspace's ways in: an API key and a signed-in browser.
struct Tenant {
    key: String,
    browser: SignedIn,
}

impl Tenant {
    async fn new(app: &TestApp, slug: &str) -> Tenant {
        let browser = app.signed_in(slug).await;
        let key = app.api_key(&browser.workspace.id, "tenancy", &[]).await;
        Tenant { key, browser }
    }

    async fn call(
        &self,
        app: &TestApp,
        route: &IdRoute,
        ids: &[(&'static str, String)],
    ) -> reqwest::Response {
        let mut path = route.template.to_string();
        for (name, value) in ids {
            path = path.replace(&format!("{{{name}}}"), value);
        }
        assert!(!path.contains('{'), "no value for a placeholder in {path}");
        let method = Method::from_bytes(route.method.as_bytes()).unwrap();
        match route.surface {
            Surface::Api => bare_client()
                .request(method, app.url(&path))
                .bearer_auth(&self.key)
                .send()
                .await
                .unwrap(),
            Surface::Ui => {
                let request = self.browser.client.request(method.clone(), app.url(&path));
                let request = if method == Method::GET {
                    request
                } else {
                    request.form(&[("csrf", self.browser.csrf.as_str())])
                };
                request.send().await.unwrap()
            }
        }
    }
}

both_backends!(other_workspaces_ids_are_not_found);

async fn other_workspaces_ids_are_not_found(backend: Backend) {
    let app = spawn_app(backend).await;
    let a = Tenant::new(&app, "tenant-a").await;
    let b = Tenant::new(&app, "tenant-b").await;
    let a_ws = a.browser.workspace.id.clone();
    for route in ID_ROUTES {
        let what = format!("{} {}", route.method, route.template);
        let ids = make(&app, route.object, &a_ws).await;
        let id = ids[0].1.clone();
        let before = state_of(&app, route.object, &a_ws, &id).await;
        let secret_bit = fingerprint(&app, route.object, &a_ws, &id).await;

        let response = b.call(&app, route, &ids).await;
        let status = response.status();
        let body = response.text().await.unwrap();
        assert_eq!(
            status,
            StatusCode::NOT_FOUND,
            "{what} as another workspace: {body}"
        );
        for (_, value) in &ids {
            assert!(
                !body.contains(value.as_str()),
                "{what} echoed an id: {body}"
            );
        }
        assert!(
            !body.contains(&secret_bit),
            "{what} leaked the object: {body}"
        );
        if route.surface == Surface::Api {
            let problem: Value = serde_json::from_str(&body).expect("problem+json");
            assert_eq!(problem["type"], "urn:tidepost:problem:not-found", "{what}");
        }
        assert_eq!(
            state_of(&app, route.object, &a_ws, &id).await,
            before,
            "{what} as another workspace changed the object"
        );

        // The owner is not told 404: the row names a live route that finds the object (what it
        // then does, e.g. calling a provider that is not running here, is other tests' business).
        let response = a.call(&app, route, &ids).await;
        let status = response.status();
        assert!(
            status != StatusCode::NOT_FOUND && status != StatusCode::METHOD_NOT_ALLOWED,
            "{what} as the owner: {status} {}",
            response.text().await.unwrap_or_default()
        );
    }
}

/// Routes registered in `crates/http/src` whose path has a `{…}` parameter, with their methods
/// (the scan the security tests use, so both see the same routes with the same nesting).
fn registered_id_routes() -> Vec<(String, String)> {
    registered_routes()
        .into_iter()
        .filter(|route| route.template.contains('{'))
        .map(|route| (route.method, route.template))
        .collect()
}

#[test]
fn every_id_route_is_in_the_table() {
    let registered = registered_id_routes();
    assert!(
        registered.iter().any(|(_, t)| t == "/api/v1/api-keys/{id}"),
        "the route scan found nothing; does crates/http/src still register routes with .route(…)? {registered:?}"
    );
    let missing: Vec<_> = registered
        .iter()
        .filter(|(_, template)| !NOT_TENANT_DATA.contains(&template.as_str()))
        .filter(|(method, template)| {
            !ID_ROUTES
                .iter()
                .any(|r| r.method == method && r.template == template)
        })
        .collect();
    assert!(
        missing.is_empty(),
        "routes that take an id but have no row in tests/it/tenancy.rs ID_ROUTES: {missing:?}"
    );
    for row in ID_ROUTES {
        assert!(
            registered
                .iter()
                .any(|(m, t)| m == row.method && t == row.template),
            "ID_ROUTES row {} {} is not a registered route",
            row.method,
            row.template
        );
    }
}

#[test]
fn the_route_scanner_reads_handlers() {
    let source = r#"Router::new()
        .route("/a/{id}", delete(revoke).get(show))
        .route("/b", get(list).post(create))
        .route("/c/{x}/go", post(go_get))"#;
    let routes: Vec<_> = routes_in(source)
        .into_iter()
        .map(|(_, template, methods)| (template, methods))
        .collect();
    assert_eq!(
        routes,
        vec![
            ("/a/{id}".to_string(), vec!["GET".into(), "DELETE".into()]),
            ("/b".to_string(), vec!["GET".into(), "POST".into()]),
            ("/c/{x}/go".to_string(), vec!["POST".into()]),
        ]
    );
}
