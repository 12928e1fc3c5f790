//! Identity nodes: the Facebook user (`/me`, `/me/permissions`, `/me/accounts`), Pages,
//! Instagram users on both hosts, `debug_token`, `subscribed_apps`, and which node an id names.

use axum::http::header;
use axum::response::IntoResponse;
use serde_json::{Map, Value, json};

use super::call::Call;
use super::errors::{self, GraphError, GraphResult, Host};
use super::fields::{self, paginate};
use super::state::{IgAccount, Login, Store, Token, TokenKind, TokenState};

/// What a path id names, once the caller's access to it is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    FbUser,
    Page(String),
    IgUser(String),
    Container(String),
    Media(String),
    Comment(String),
}

impl Node {
    pub fn type_name(&self) -> &'static str {
        match self {
            Node::FbUser => "User",
            Node::Page(_) => "Page",
            Node::IgUser(_) => "IGUser",
            Node::Container(_) => "IGContainer",
            Node::Media(_) => "IGMedia",
            Node::Comment(_) => "IGComment",
        }
    }

    /// Edges that exist on the node (a wrong method on them is "Unsupported request").
    pub fn edges(&self) -> &'static [&'static str] {
        match self {
            Node::FbUser => &["permissions", "accounts"],
            Node::Page(_) => &["subscribed_apps"],
            Node::IgUser(_) => &[
                "media",
                "stories",
                "media_publish",
                "content_publishing_limit",
                "insights",
                "subscribed_apps",
            ],
            Node::Container(_) => &[],
            Node::Media(_) => &["children", "insights", "comments"],
            Node::Comment(_) => &["replies"],
        }
    }
}

/// The node `id` names for `token`, or `None` when it does not exist or is not the caller's.
pub fn resolve(s: &Store, token: &Token, id: &str) -> Option<Node> {
    let facebook_user = token.login == Login::Facebook && token.kind == TokenKind::User;
    if id == "me" {
        return Some(match (token.login, token.kind) {
            (Login::Instagram, _) => Node::IgUser(token.subject.clone()),
            (Login::Facebook, TokenKind::User) => Node::FbUser,
            (Login::Facebook, TokenKind::Page) => Node::Page(token.subject.clone()),
        });
    }
    if id == s.fb_user.id {
        return facebook_user.then_some(Node::FbUser);
    }
    if s.page(id).is_some() {
        return s
            .can_access_page(token, id)
            .then(|| Node::Page(id.to_string()));
    }
    let scoped = token.login == Login::Instagram;
    if let Some(account) = s
        .ig_accounts
        .iter()
        .find(|a| a.id == id || (scoped && a.app_scoped_id == id))
    {
        return s
            .can_access_ig(token, &account.id)
            .then(|| Node::IgUser(account.id.clone()));
    }
    if let Some(container) = s.containers.get(id) {
        return s
            .can_access_ig(token, &container.owner)
            .then(|| Node::Container(id.to_string()));
    }
    if let Some(media) = s.media.get(id) {
        return s
            .can_access_ig(token, &media.owner)
            .then(|| Node::Media(id.to_string()));
    }
    let comment = s.comments.get(id)?;
    let owner = &s.media.get(&comment.media_id)?.owner;
    s.can_access_ig(token, owner)
        .then(|| Node::Comment(id.to_string()))
}

/// Publishing, insights and comments need a professional account (code 10 otherwise).
pub fn require_professional(call: &Call, ig: &str) -> GraphResult<()> {
    let professional = call
        .meta
        .store(|s| s.ig_account(ig).map(IgAccount::professional))
        .unwrap_or(false);
    if professional {
        Ok(())
    } else {
        Err(
            GraphError::new(10, "(#10) The user is not an Instagram Business").user(
                "Not a professional account",
                "Only Instagram Business and Creator accounts can use this API.",
            ),
        )
    }
}

fn picture_url(call: &Call, id: &str) -> String {
    format!("{}/meta/cdn/{id}.gif", call.meta.ctx.base_url)
}

fn picture(call: &Call, id: &str) -> Value {
    json!({"data": {"height": 50, "width": 50, "is_silhouette": false, "url": picture_url(call, id)}})
}

pub fn fb_user(call: &Call) -> GraphResult {
    let user = call.meta.store(|s| s.fb_user.clone());
    let mut full = Map::new();
    full.insert("id".into(), json!(user.id));
    full.insert("name".into(), json!(user.name));
    full.insert("email".into(), json!(user.email));
    full.insert("picture".into(), picture(call, &user.id));
    fields::select(
        &full,
        &call.fields(&["name", "id"]),
        &["id", "name", "email", "picture"],
        "User",
    )
}

pub fn permissions(_call: &Call, token: &Token) -> GraphResult {
    let granted = token
        .scopes
        .iter()
        .map(|p| json!({"permission": p, "status": "granted"}));
    let declined = token
        .declined
        .iter()
        .map(|p| json!({"permission": p, "status": "declined"}));
    Ok(json!({ "data": granted.chain(declined).collect::<Vec<_>>() }))
}

/// `DELETE /me/permissions` with a Facebook user token: the user takes back every permission
/// the app had, so every token of that user, and every Page token derived from one, stops
/// working (Graph error 190 from then on). Answers `{"success": true}` as Meta does.
pub fn revoke_permissions(call: &Call, token: &Token) -> GraphResult {
    let user = token.subject.clone();
    call.meta.store(|s| {
        let revoked: Vec<String> = s
            .tokens
            .values()
            .filter(|t| {
                t.login == Login::Facebook && t.kind == TokenKind::User && t.subject == user
            })
            .map(|t| t.value.clone())
            .collect();
        for t in s.tokens.values_mut() {
            let derived = t.parent.as_ref().is_some_and(|p| revoked.contains(p));
            if revoked.contains(&t.value) || derived {
                t.state = TokenState::Revoked;
            }
        }
    });
    Ok(json!({ "success": true }))
}

const PAGE_FIELDS: &[&str] = &[
    "id",
    "name",
    "category",
    "access_token",
    "instagram_business_account",
    "connected_instagram_account",
    "tasks",
    "picture",
    "link",
    "username",
];

/// Every field of a Page, minting its Page token from `token` when `with_token`.
fn page_full(call: &Call, token: &Token, page_id: &str, with_token: bool) -> Map<String, Value> {
    let now = call.meta.now_ms();
    let (page, access_token) = call.meta.store(|s| {
        let page = s.page(page_id).cloned();
        let access_token = match (with_token, token.kind) {
            (false, _) => None,
            (true, TokenKind::Page) => Some(token.value.clone()),
            (true, TokenKind::User) => Some(s.page_token(token, page_id, now)),
        };
        (page, access_token)
    });
    let mut full = Map::new();
    let Some(page) = page else { return full };
    full.insert("id".into(), json!(page.id));
    full.insert("name".into(), json!(page.name));
    full.insert("category".into(), json!(page.category));
    full.insert(
        "tasks".into(),
        json!([
            "ANALYZE",
            "ADVERTISE",
            "MODERATE",
            "CREATE_CONTENT",
            "MANAGE"
        ]),
    );
    full.insert("picture".into(), picture(call, &page.id));
    full.insert(
        "link".into(),
        json!(format!("https://www.facebook.com/{}", page.id)),
    );
    if let Some(ig) = page.ig_user_id {
        full.insert("instagram_business_account".into(), json!({ "id": ig }));
        full.insert("connected_instagram_account".into(), json!({ "id": ig }));
    }
    if let Some(access_token) = access_token {
        full.insert("access_token".into(), json!(access_token));
    }
    full
}

pub fn accounts(call: &Call, token: &Token) -> GraphResult {
    if !token.has_scope("pages_show_list") {
        return Err(errors::permission_missing(200, "pages_show_list"));
    }
    let specs = call.fields(&["access_token", "category", "name", "id", "tasks"]);
    let wants_token = specs.iter().any(|s| s.name == "access_token");
    let pages: Vec<String> = call
        .meta
        .store(|s| s.pages.iter().map(|p| p.id.clone()).collect());
    let mut items = Vec::new();
    for page_id in pages {
        let full = page_full(call, token, &page_id, wants_token);
        items.push((page_id, fields::select(&full, &specs, PAGE_FIELDS, "Page")?));
    }
    paginate(call, items)
}

pub fn page(call: &Call, token: &Token, page_id: &str) -> GraphResult {
    let specs = call.fields(&["name", "id"]);
    let wants_token = specs.iter().any(|s| s.name == "access_token");
    fields::select(
        &page_full(call, token, page_id, wants_token),
        &specs,
        PAGE_FIELDS,
        "Page",
    )
}

pub fn ig_user(call: &Call, ig: &str) -> GraphResult {
    let found = call.meta.store(|s| {
        s.ig_account(ig)
            .cloned()
            .map(|a| (a.clone(), media_count(s, &a)))
    });
    let Some((account, media_count)) = found else {
        return Err(errors::unknown_object(ig, call.method.as_str()));
    };
    let instagram_host = call.host == Host::Instagram;
    let mut full = Map::new();
    full.insert(
        "id".into(),
        json!(if instagram_host {
            &account.app_scoped_id
        } else {
            &account.id
        }),
    );
    full.insert(
        "ig_id".into(),
        json!(
            account
                .id
                .get(8..)
                .unwrap_or(&account.id)
                .trim_start_matches('0')
        ),
    );
    full.insert("username".into(), json!(account.username));
    if !account.name.is_empty() {
        full.insert("name".into(), json!(account.name));
    }
    full.insert(
        "profile_picture_url".into(),
        json!(picture_url(call, &account.id)),
    );
    full.insert("followers_count".into(), json!(account.followers));
    full.insert("follows_count".into(), json!(account.follows));
    full.insert("media_count".into(), json!(media_count));
    full.insert("biography".into(), json!(account.biography));
    full.insert("website".into(), json!(account.website));
    let mut known = vec![
        "id",
        "ig_id",
        "username",
        "name",
        "profile_picture_url",
        "followers_count",
        "follows_count",
        "media_count",
        "biography",
        "website",
    ];
    let defaults: &[&str] = if instagram_host {
        full.insert("user_id".into(), json!(account.id));
        full.insert("account_type".into(), json!(account.account_type.as_str()));
        known.extend(["user_id", "account_type"]);
        &["id", "username"]
    } else {
        &["id"]
    };
    fields::select(&full, &call.fields(defaults), &known, "IGUser")
}

fn media_count(s: &Store, account: &IgAccount) -> u64 {
    let published = s
        .media
        .values()
        .filter(|m| m.owner == account.id && m.counts_in_profile())
        .count();
    account.base_media_count + published as u64
}

/// `GET /debug_token?input_token=…&access_token={app-id}|{app-secret}`.
pub fn debug_token(call: &Call) -> GraphResult {
    let meta = &call.meta;
    let app_token = format!("{}|{}", meta.config.app_id, meta.config.app_secret);
    match call.token_value() {
        None => {
            return Err(errors::invalid_param(
                "You must provide an app access token, or a user access token that is an owner or developer of the app",
            ));
        }
        Some(value)
            if value != app_token && meta.authenticate(Some(&value), Host::Facebook).is_err() =>
        {
            return Err(errors::invalid_token());
        }
        Some(_) => {}
    }
    let input = call.params.require("input_token")?;
    let Some(token) = meta
        .store(|s| s.tokens.get(input).cloned())
        .filter(|t| t.login == Login::Facebook)
    else {
        return Ok(json!({"data": {
            "error": {"code": 190, "message": "Invalid OAuth access token - Cannot parse access token"},
            "is_valid": false,
            "scopes": [],
        }}));
    };
    let mut data = json!({
        "app_id": meta.config.app_id,
        "type": if token.kind == TokenKind::Page { "PAGE" } else { "USER" },
        "application": meta.config.app_name,
        "data_access_expires_at": token.issued_ms / 1000 + 90 * 86_400,
        "expires_at": token.expires_ms / 1000,
        "is_valid": true,
        "issued_at": token.issued_ms / 1000,
        "scopes": token.scopes,
        "granular_scopes": granular_scopes(call, &token),
        "user_id": meta.store(|s| s.fb_user.id.clone()),
    });
    if token.kind == TokenKind::Page {
        data["profile_id"] = json!(token.subject);
    }
    if let Err(err) = meta.authenticate(Some(input), Host::Facebook) {
        data["is_valid"] = json!(false);
        data["error"] = err.describe();
    }
    Ok(json!({ "data": data }))
}

fn granular_scopes(call: &Call, token: &Token) -> Vec<Value> {
    let (pages, igs): (Vec<String>, Vec<String>) = call.meta.store(|s| {
        let pages = s.pages.iter().map(|p| p.id.clone()).collect();
        let igs = s
            .pages
            .iter()
            .filter_map(|p| p.ig_user_id.clone())
            .collect();
        (pages, igs)
    });
    token
        .scopes
        .iter()
        .map(|scope| match scope.as_str() {
            s if s.starts_with("pages_") => json!({"scope": scope, "target_ids": pages}),
            s if s.starts_with("instagram_") => json!({"scope": scope, "target_ids": igs}),
            _ => json!({"scope": scope}),
        })
        .collect()
}

/// `POST|GET|DELETE /{page-id|ig-user-id}/subscribed_apps`: answered as Meta does; the
/// subscribed fields are remembered for `GET`.
pub fn subscribed_apps(call: &Call) -> GraphResult {
    let node = call.segments.first().cloned().unwrap_or_default();
    let fields: Vec<String> = call
        .params
        .get("subscribed_fields")
        .map(|f| {
            f.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();
    match call.method.as_str() {
        "POST" => {
            if fields.is_empty() {
                return Err(errors::missing_param("subscribed_fields"));
            }
            call.meta.store(|s| s.subscriptions.insert(node, fields));
            Ok(json!({"success": true}))
        }
        "DELETE" => {
            call.meta.store(|s| s.subscriptions.remove(&node));
            Ok(json!({"success": true}))
        }
        "GET" => {
            let subscribed = call.meta.store(|s| s.subscriptions.get(&node).cloned());
            let data: Vec<Value> = subscribed
                .map(|f| vec![json!({"id": call.meta.config.app_id, "name": call.meta.config.app_name, "subscribed_fields": f})])
                .unwrap_or_default();
            Ok(json!({ "data": data }))
        }
        other => Err(errors::unsupported_method(other)),
    }
}

/// A 1×1 GIF standing for every fixture picture.
pub async fn cdn_picture() -> impl IntoResponse {
    const GIF: &[u8] = &[
        0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00,
        0x00, 0xff, 0xff, 0xff, 0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00,
        0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x02, 0x44, 0x01, 0x00, 0x3b,
    ];
    ([(header::CONTENT_TYPE, "image/gif")], GIF)
}
