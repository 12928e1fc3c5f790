//! Facebook Login (`www.facebook.com/vXX.X/dialog/oauth`, `graph.facebook.com/oauth/access_token`
//! with the code and `fb_exchange_token` grants) and Instagram Login
//! (`www.instagram.com/oauth/authorize`, `api.instagram.com/oauth/access_token`,
//! `graph.instagram.com/access_token` and `/refresh_access_token`).
//!
//! The consent pages are small HTML forms posting back to the same path; with
//! `EmulatorConfig::auto_approve` the dialogs redirect at once, granting every requested scope
//! to the first fixture account.

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde_json::json;

use super::call::{Call, Incoming, Params, apply_latency};
use super::errors::{self, GraphError, GraphResult, legacy_error};
use super::state::{AuthCode, BUSINESS_IG_ID, Login, Meta, Token, TokenKind, TokenTemplate};
use crate::ctx::Ctx;

const FB_CODE_LIFETIME_MS: i64 = 10 * 60 * 1000;
const IG_CODE_LIFETIME_MS: i64 = 60 * 60 * 1000;
const DAY_MS: i64 = 86_400_000;

const IG_SCOPES: &[&str] = &[
    "instagram_business_basic",
    "instagram_business_content_publish",
    "instagram_business_manage_comments",
    "instagram_business_manage_messages",
    "instagram_business_manage_insights",
];

/// The parameters both dialogs share, validated.
struct DialogRequest {
    redirect_uri: String,
    state: Option<String>,
    scopes: Vec<String>,
}

fn split_scopes(scope: Option<&str>) -> Vec<String> {
    let mut scopes: Vec<String> = scope
        .unwrap_or("")
        .split([',', ' '])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    scopes.dedup();
    scopes
}

fn dialog_request(meta: &Meta, params: &Params, login: Login) -> Result<DialogRequest, String> {
    let app_id = match login {
        Login::Facebook => &meta.config.app_id,
        Login::Instagram => &meta.config.instagram_app_id,
    };
    if params.get("client_id") != Some(app_id.as_str()) {
        return Err(
            "Invalid App ID: The provided app ID does not look like a valid app ID.".into(),
        );
    }
    let redirect_uri = params
        .get("redirect_uri")
        .ok_or("The parameter redirect_uri is required.")?;
    if url::Url::parse(redirect_uri).is_err() {
        return Err("Invalid redirect_uri: it must be an absolute URL.".into());
    }
    let allowed = &meta.config.redirect_uris;
    if !allowed.is_empty() && !allowed.iter().any(|u| u == redirect_uri) {
        return Err("URL Blocked: This redirect failed because the redirect URI is not whitelisted in the app's Client OAuth Settings.".into());
    }
    let response_type = params.get("response_type");
    let scopes = split_scopes(params.get("scope"));
    if login == Login::Instagram {
        if response_type != Some("code") {
            return Err("Invalid response_type: it must be code.".into());
        }
        if scopes.is_empty() {
            return Err("The parameter scope is required.".into());
        }
        if let Some(bad) = scopes.iter().find(|s| !IG_SCOPES.contains(&s.as_str())) {
            return Err(format!("Invalid scope field(s): {bad}"));
        }
    } else if response_type.is_some_and(|r| r != "code") {
        return Err("Only response_type=code is supported by this emulator.".into());
    }
    Ok(DialogRequest {
        redirect_uri: redirect_uri.to_string(),
        state: params.get("state").map(str::to_string),
        scopes,
    })
}

fn error_page(message: &str) -> Response {
    let body = format!(
        "<!doctype html><html><head><title>Error</title></head><body><h1>Sorry, something went wrong.</h1><p id=\"error\">{}</p></body></html>",
        escape(message)
    );
    (StatusCode::BAD_REQUEST, Html(body)).into_response()
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A 302 to `redirect_uri` with `pairs` added to its query and `fragment` appended.
fn redirect(redirect_uri: &str, pairs: &[(&str, &str)], fragment: &str) -> Response {
    let Ok(mut url) = url::Url::parse(redirect_uri) else {
        return error_page("Invalid redirect_uri");
    };
    url.query_pairs_mut().extend_pairs(pairs);
    url.set_fragment(Some(fragment));
    (StatusCode::FOUND, [(header::LOCATION, url.to_string())]).into_response()
}

fn hidden(name: &str, value: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
        escape(name),
        escape(value)
    )
}

fn consent_page(
    title: &str,
    action: &str,
    hidden_fields: &[(&str, &str)],
    choices: &str,
) -> Response {
    let hidden_fields: String = hidden_fields.iter().map(|(k, v)| hidden(k, v)).collect();
    let body = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{title}</title></head><body>\
         <h1>{title}</h1><form method=\"post\" action=\"{action}\">{hidden_fields}{choices}\
         <button type=\"submit\" name=\"decision\" value=\"approve\">Continue</button>\
         <button type=\"submit\" name=\"decision\" value=\"deny\">Cancel</button></form></body></html>",
        title = escape(title),
        action = escape(action),
    );
    Html(body).into_response()
}

async fn read_dialog(req: Request) -> Result<(String, Params), Response> {
    let incoming = Incoming::read(req)
        .await
        .map_err(|_| error_page("Malformed request"))?;
    Ok((incoming.path, incoming.params))
}

fn new_code(
    meta: &Meta,
    login: Login,
    request: &DialogRequest,
    subject: &str,
    granted: Vec<String>,
) -> String {
    let declined = request
        .scopes
        .iter()
        .filter(|s| !granted.contains(s))
        .cloned()
        .collect();
    let code = match login {
        Login::Facebook => Ctx::random_token("AQ"),
        Login::Instagram => Ctx::random_token("IGQ"),
    };
    let record = AuthCode {
        login,
        redirect_uri: request.redirect_uri.clone(),
        subject: subject.to_string(),
        scopes: granted,
        declined,
        created_ms: meta.now_ms(),
        used: false,
    };
    meta.store(|s| s.codes.insert(code.clone(), record));
    code
}

// ---- Facebook Login ----

pub async fn fb_dialog(State(meta): State<Meta>, req: Request) -> Response {
    let (path, params) = match read_dialog(req).await {
        Ok(read) => read,
        Err(page) => return page,
    };
    let request = match dialog_request(&meta, &params, Login::Facebook) {
        Ok(request) => request,
        Err(message) => return error_page(&message),
    };
    if meta.ctx.config.auto_approve {
        return fb_approve(&meta, &request, request.scopes.clone());
    }
    let choices: String = request
        .scopes
        .iter()
        .map(|s| format!("<label><input type=\"checkbox\" name=\"grant\" value=\"{0}\" checked> {0}</label><br>", escape(s)))
        .collect();
    let user = meta.store(|s| s.fb_user.name.clone());
    let title = format!(
        "{} wants to access your Facebook account ({user})",
        meta.config.app_name
    );
    let scope = request.scopes.join(",");
    let fields = [
        ("client_id", meta.config.app_id.as_str()),
        ("redirect_uri", request.redirect_uri.as_str()),
        ("state", request.state.as_deref().unwrap_or("")),
        ("scope", scope.as_str()),
        ("response_type", "code"),
    ];
    consent_page(&title, &path, &fields, &choices)
}

pub async fn fb_dialog_submit(State(meta): State<Meta>, req: Request) -> Response {
    let (_, params) = match read_dialog(req).await {
        Ok(read) => read,
        Err(page) => return page,
    };
    let request = match dialog_request(&meta, &params, Login::Facebook) {
        Ok(request) => request,
        Err(message) => return error_page(&message),
    };
    let state = request.state.as_deref().unwrap_or("");
    if params.get("decision") != Some("approve") {
        let pairs = [
            ("error", "access_denied"),
            ("error_code", "200"),
            ("error_description", "Permissions error"),
            ("error_reason", "user_denied"),
            ("state", state),
        ];
        return redirect(&request.redirect_uri, &pairs, "_=_");
    }
    let ticked = params.all("grant");
    let granted = if ticked.is_empty() {
        request.scopes.clone()
    } else {
        request
            .scopes
            .iter()
            .filter(|s| ticked.contains(&s.as_str()))
            .cloned()
            .collect()
    };
    fb_approve(&meta, &request, granted)
}

fn fb_approve(meta: &Meta, request: &DialogRequest, granted: Vec<String>) -> Response {
    let user = meta.store(|s| s.fb_user.id.clone());
    let code = new_code(meta, Login::Facebook, request, &user, granted);
    let state = request.state.as_deref().unwrap_or("");
    let mut pairs = vec![("code", code.as_str())];
    if request.state.is_some() {
        pairs.push(("state", state));
    }
    redirect(&request.redirect_uri, &pairs, "_=_")
}

fn token_answer(token: &Token, now_ms: i64) -> serde_json::Value {
    json!({"access_token": token.value, "token_type": "bearer", "expires_in": token.expires_in(now_ms)})
}

fn check_fb_client(meta: &Meta, params: &Params) -> GraphResult<()> {
    let client_id = params
        .get("client_id")
        .ok_or_else(|| GraphError::new(101, "Missing client_id parameter."))?;
    if client_id != meta.config.app_id {
        return Err(errors::app_invalid());
    }
    let secret = params
        .get("client_secret")
        .ok_or_else(|| GraphError::new(1, "Missing client_secret parameter."))?;
    if secret != meta.config.app_secret {
        return Err(errors::client_secret_invalid());
    }
    Ok(())
}

/// `GET /oauth/access_token` on graph.facebook.com: the code exchange, `fb_exchange_token`,
/// and `client_credentials` (app token).
pub fn fb_access_token(call: &Call) -> GraphResult {
    let meta = &call.meta;
    let params = &call.params;
    check_fb_client(meta, params)?;
    match params.get("grant_type") {
        Some("fb_exchange_token") => fb_exchange(call),
        Some("client_credentials") => Ok(json!({
            "access_token": format!("{}|{}", meta.config.app_id, meta.config.app_secret),
            "token_type": "bearer",
        })),
        None | Some("authorization_code") => fb_code_exchange(call),
        Some(other) => Err(errors::invalid_param(format!(
            "Unsupported grant_type: {other}"
        ))),
    }
}

fn fb_code_exchange(call: &Call) -> GraphResult {
    let meta = &call.meta;
    let redirect_uri = call
        .params
        .get("redirect_uri")
        .ok_or_else(|| GraphError::new(100, "Missing redirect_uri parameter."))?;
    let code = call
        .params
        .get("code")
        .ok_or_else(|| GraphError::new(100, "Missing code parameter."))?;
    let record = take_code(meta, code, Login::Facebook, redirect_uri).map_err(|problem| match problem {
        CodeProblem::Unknown => GraphError::new(100, "Invalid verification code format."),
        CodeProblem::Used => GraphError::new(100, "This authorization code has been used.").subcode(36009),
        CodeProblem::Expired => GraphError::new(100, "This authorization code has expired.").subcode(36007),
        CodeProblem::RedirectMismatch => GraphError::new(
            100,
            "Error validating verification code. Please make sure your redirect_uri is identical to the one you used in the OAuth dialog request",
        )
        .subcode(36008),
    })?;
    let settings = meta.settings();
    let long = settings.code_exchange_long_lived;
    let token = issue_user(meta, Login::Facebook, record, long);
    Ok(token_answer(&token, meta.now_ms()))
}

fn fb_exchange(call: &Call) -> GraphResult {
    let meta = &call.meta;
    let short = call.params.require("fb_exchange_token")?;
    let token = meta.authenticate(Some(short), super::errors::Host::Facebook)?;
    if token.kind != TokenKind::User {
        return Err(errors::invalid_param(
            "fb_exchange_token must be a user access token",
        ));
    }
    if meta.faults().refuse_refresh {
        return Err(errors::token_revoked(&meta.config.app_id));
    }
    let now = meta.now_ms();
    let mut template = TokenTemplate::from_token(&token);
    template.lifetime_secs = meta.settings().long_lived_secs;
    template.long_lived = true;
    let long = meta.store(|s| s.issue(template, now));
    Ok(token_answer(&long, now))
}

enum CodeProblem {
    Unknown,
    Used,
    Expired,
    RedirectMismatch,
}

/// Consumes a single-use code issued by `login`'s dialog for `redirect_uri`.
fn take_code(
    meta: &Meta,
    code: &str,
    login: Login,
    redirect_uri: &str,
) -> Result<AuthCode, CodeProblem> {
    let now = meta.now_ms();
    let lifetime = match login {
        Login::Facebook => FB_CODE_LIFETIME_MS,
        Login::Instagram => IG_CODE_LIFETIME_MS,
    };
    // Instagram appends `#_` to the redirect; a client may keep it glued to the code.
    let code = code.strip_suffix("#_").unwrap_or(code);
    meta.store(|s| {
        let record = s
            .codes
            .get_mut(code)
            .filter(|c| c.login == login)
            .ok_or(CodeProblem::Unknown)?;
        if record.used {
            return Err(CodeProblem::Used);
        }
        if now - record.created_ms > lifetime {
            return Err(CodeProblem::Expired);
        }
        if record.redirect_uri != redirect_uri {
            return Err(CodeProblem::RedirectMismatch);
        }
        record.used = true;
        Ok(record.clone())
    })
}

fn issue_user(meta: &Meta, login: Login, code: AuthCode, long_lived: bool) -> Token {
    let settings = meta.settings();
    let template = TokenTemplate {
        login,
        kind: TokenKind::User,
        subject: code.subject,
        scopes: code.scopes,
        declined: code.declined,
        lifetime_secs: if long_lived {
            settings.long_lived_secs
        } else {
            settings.short_lived_secs
        },
        long_lived,
        parent: None,
    };
    let now = meta.now_ms();
    meta.store(|s| s.issue(template, now))
}

// ---- Instagram Login ----

pub async fn ig_dialog(State(meta): State<Meta>, req: Request) -> Response {
    let (path, params) = match read_dialog(req).await {
        Ok(read) => read,
        Err(page) => return page,
    };
    let request = match dialog_request(&meta, &params, Login::Instagram) {
        Ok(request) => request,
        Err(message) => return error_page(&message),
    };
    if meta.ctx.config.auto_approve {
        return ig_approve(&meta, &request, BUSINESS_IG_ID);
    }
    let accounts = meta.store(|s| s.ig_accounts.clone());
    let choices: String = accounts
        .iter()
        .enumerate()
        .map(|(i, a)| {
            format!(
                "<label><input type=\"radio\" name=\"account\" value=\"{}\"{}> @{} ({})</label><br>",
                escape(&a.id),
                if i == 0 { " checked" } else { "" },
                escape(&a.username),
                a.account_type.as_str()
            )
        })
        .collect();
    let title = format!(
        "Allow {} to access your Instagram account?",
        meta.config.app_name
    );
    let scope = request.scopes.join(",");
    let fields = [
        ("client_id", meta.config.instagram_app_id.as_str()),
        ("redirect_uri", request.redirect_uri.as_str()),
        ("state", request.state.as_deref().unwrap_or("")),
        ("scope", scope.as_str()),
        ("response_type", "code"),
    ];
    consent_page(&title, &path, &fields, &choices)
}

pub async fn ig_dialog_submit(State(meta): State<Meta>, req: Request) -> Response {
    let (_, params) = match read_dialog(req).await {
        Ok(read) => read,
        Err(page) => return page,
    };
    let request = match dialog_request(&meta, &params, Login::Instagram) {
        Ok(request) => request,
        Err(message) => return error_page(&message),
    };
    if params.get("decision") != Some("approve") {
        let mut pairs = vec![
            ("error", "access_denied"),
            ("error_reason", "user_denied"),
            ("error_description", "The user denied your request"),
        ];
        if let Some(state) = request.state.as_deref() {
            pairs.push(("state", state));
        }
        return redirect(&request.redirect_uri, &pairs, "_");
    }
    let account = params.get("account").unwrap_or(BUSINESS_IG_ID).to_string();
    if meta.store(|s| s.ig_account(&account).is_none()) {
        return error_page("Unknown account");
    }
    ig_approve(&meta, &request, &account)
}

fn ig_approve(meta: &Meta, request: &DialogRequest, account: &str) -> Response {
    let code = new_code(
        meta,
        Login::Instagram,
        request,
        account,
        request.scopes.clone(),
    );
    let mut pairs = vec![("code", code.as_str())];
    if let Some(state) = request.state.as_deref() {
        pairs.push(("state", state));
    }
    redirect(&request.redirect_uri, &pairs, "_")
}

/// `POST api.instagram.com/oauth/access_token` (form or multipart): flat answer, legacy errors.
pub async fn ig_code_exchange(State(meta): State<Meta>, req: Request) -> Response {
    apply_latency(&meta.faults()).await;
    let incoming = match Incoming::read(req).await {
        Ok(incoming) => incoming,
        Err(_) => return legacy_error("Malformed request body"),
    };
    if incoming.method != axum::http::Method::POST {
        return legacy_error("Unsupported method: use POST");
    }
    match ig_code_exchange_inner(&meta, &incoming.params) {
        Ok(body) => axum::Json(body).into_response(),
        Err(message) => legacy_error(message),
    }
}

fn ig_code_exchange_inner(meta: &Meta, params: &Params) -> Result<serde_json::Value, &'static str> {
    let client_id = params
        .get("client_id")
        .ok_or("Missing required field client_id")?;
    if client_id != meta.config.instagram_app_id {
        return Err("Invalid platform app");
    }
    let secret = params
        .get("client_secret")
        .ok_or("Missing required field client_secret")?;
    if secret != meta.config.instagram_app_secret {
        return Err("Error validating client secret.");
    }
    match params.get("grant_type") {
        Some("authorization_code") => {}
        None => return Err("Missing required field grant_type"),
        Some(_) => return Err("Invalid grant_type"),
    }
    let redirect_uri = params
        .get("redirect_uri")
        .ok_or("Missing required field redirect_uri")?;
    let code = params.get("code").ok_or("Missing required field code")?;
    let record = take_code(meta, code, Login::Instagram, redirect_uri).map_err(|problem| match problem {
        CodeProblem::RedirectMismatch => {
            "Error validating verification code. Please make sure your redirect_uri is identical to the one you used in the OAuth dialog request"
        }
        _ => "Matching code was not found or was already used",
    })?;
    let token = issue_user(meta, Login::Instagram, record, false);
    let user_id: serde_json::Value = token
        .subject
        .parse::<u64>()
        .map(|n| json!(n))
        .unwrap_or_else(|_| json!(token.subject));
    Ok(json!({"access_token": token.value, "user_id": user_id, "permissions": token.scopes}))
}

/// `GET graph.instagram.com/access_token?grant_type=ig_exchange_token&client_secret=…&access_token=…`.
pub fn ig_exchange_token(call: &Call) -> GraphResult {
    let meta = &call.meta;
    match call.params.get("grant_type") {
        Some("ig_exchange_token") => {}
        None => return Err(errors::missing_param("grant_type")),
        Some(other) => {
            return Err(errors::invalid_param(format!(
                "Unsupported grant_type: {other}"
            )));
        }
    }
    let secret = call.params.require("client_secret")?;
    if secret != meta.config.instagram_app_secret {
        return Err(errors::client_secret_invalid());
    }
    let token = call.auth()?;
    extend(call, &token)
}

/// `GET graph.instagram.com/refresh_access_token?grant_type=ig_refresh_token&access_token=…`:
/// only for valid long-lived tokens at least 24 hours old.
pub fn ig_refresh_token(call: &Call) -> GraphResult {
    let meta = &call.meta;
    match call.params.get("grant_type") {
        Some("ig_refresh_token") => {}
        None => return Err(errors::missing_param("grant_type")),
        Some(other) => {
            return Err(errors::invalid_param(format!(
                "Unsupported grant_type: {other}"
            )));
        }
    }
    let token = call.auth()?;
    if meta.faults().refuse_refresh {
        return Err(errors::token_revoked(&meta.config.instagram_app_id));
    }
    if meta.now_ms() - token.issued_ms < DAY_MS {
        return Err(GraphError::new(
            190,
            "Error validating access token: the access token must be at least 24 hours old to be refreshed.",
        ));
    }
    if !token.has_scope("instagram_business_basic") {
        return Err(errors::permission_missing(10, "instagram_business_basic"));
    }
    extend(call, &token)
}

fn extend(call: &Call, token: &Token) -> GraphResult {
    let meta = &call.meta;
    let now = meta.now_ms();
    let mut template = TokenTemplate::from_token(token);
    template.lifetime_secs = meta.settings().long_lived_secs;
    template.long_lived = true;
    let long = meta.store(|s| s.issue(template, now));
    Ok(token_answer(&long, now))
}
