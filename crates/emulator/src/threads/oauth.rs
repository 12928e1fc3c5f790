//! Threads' OAuth: the consent dialog (`threads.net/oauth/authorize`) and the three token
//! endpoints of `graph.threads.net` (no version segment): the code exchange, the long-lived
//! exchange (`th_exchange_token`) and the refresh (`th_refresh_token`).

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde_json::{Value, json};

use super::state::{AuthCode, DAY_MS, NAME, Threads, TokenKind, USERNAME};
use crate::ctx::Ctx;
use crate::meta::call::{Incoming, Params};
use crate::meta::errors::{GraphError, GraphResult};

const CODE_LIFETIME_MS: i64 = 60 * 60 * 1000;

pub const SCOPES: &[&str] = &[
    "threads_basic",
    "threads_content_publish",
    "threads_manage_replies",
    "threads_read_replies",
    "threads_manage_insights",
    "threads_delete",
    "threads_manage_mentions",
    "threads_keyword_search",
    "threads_location_tagging",
    "threads_profile_discovery",
];

struct DialogRequest {
    redirect_uri: String,
    state: Option<String>,
    scopes: Vec<String>,
}

fn dialog_request(threads: &Threads, params: &Params) -> Result<DialogRequest, String> {
    if params.get("client_id") != Some(threads.config.app_id.as_str()) {
        return Err("Invalid App ID: the client_id is not a Threads App ID.".into());
    }
    let redirect_uri = params
        .get("redirect_uri")
        .ok_or("The parameter redirect_uri is required.")?;
    if url::Url::parse(redirect_uri).is_err() {
        return Err("Invalid redirect_uri: it must be an absolute URL.".into());
    }
    let allowed = &threads.config.redirect_uris;
    if !allowed.is_empty() && !allowed.iter().any(|u| u == redirect_uri) {
        return Err(
            "Invalid redirect_uri: it is not one of the app's redirect callback URLs.".into(),
        );
    }
    if params.get("response_type") != Some("code") {
        return Err("Invalid response_type: it must be code.".into());
    }
    let scopes: Vec<String> = params
        .get("scope")
        .unwrap_or("")
        .split([',', ' '])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    if !scopes.iter().any(|s| s == "threads_basic") {
        return Err("Invalid scope: threads_basic is required.".into());
    }
    if let Some(bad) = scopes.iter().find(|s| !SCOPES.contains(&s.as_str())) {
        return Err(format!("Invalid scope: {bad}"));
    }
    Ok(DialogRequest {
        redirect_uri: redirect_uri.to_string(),
        state: params.get("state").map(str::to_string),
        scopes,
    })
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn error_page(message: &str) -> Response {
    let body = format!(
        "<!doctype html><html><head><title>Error</title></head><body><h1>Something went wrong</h1><p id=\"error\">{}</p></body></html>",
        escape(message)
    );
    (StatusCode::BAD_REQUEST, Html(body)).into_response()
}

/// A 302 to `redirect_uri` with `pairs` added and Meta's `#_` fragment.
fn redirect(redirect_uri: &str, pairs: &[(&str, &str)]) -> Response {
    let Ok(mut url) = url::Url::parse(redirect_uri) else {
        return error_page("Invalid redirect_uri");
    };
    url.query_pairs_mut().extend_pairs(pairs);
    url.set_fragment(Some("_"));
    (StatusCode::FOUND, [(header::LOCATION, url.to_string())]).into_response()
}

fn approve(threads: &Threads, request: &DialogRequest) -> Response {
    let code = Ctx::random_token("THC");
    let record = AuthCode {
        redirect_uri: request.redirect_uri.clone(),
        scopes: request.scopes.clone(),
        created_ms: threads.now_ms(),
        used: false,
    };
    threads.store(|s| s.codes.insert(code.clone(), record));
    let state = request.state.clone().unwrap_or_default();
    redirect(&request.redirect_uri, &[("code", &code), ("state", &state)])
}

async fn read(req: Request) -> Result<(String, Params), Response> {
    let incoming = Incoming::read(req)
        .await
        .map_err(|_| error_page("Malformed request"))?;
    Ok((incoming.path, incoming.params))
}

/// `GET /oauth/authorize`: the consent page (or, with auto-approve, the redirect at once).
pub async fn dialog(State(threads): State<Threads>, req: Request) -> Response {
    let (path, params) = match read(req).await {
        Ok(read) => read,
        Err(page) => return page,
    };
    let request = match dialog_request(&threads, &params) {
        Ok(r) => r,
        Err(message) => return error_page(&message),
    };
    if threads.ctx.config.auto_approve {
        return approve(&threads, &request);
    }
    let scope = request.scopes.join(",");
    let hidden: String = [
        ("client_id", threads.config.app_id.as_str()),
        ("redirect_uri", request.redirect_uri.as_str()),
        ("state", request.state.as_deref().unwrap_or("")),
        ("scope", scope.as_str()),
        ("response_type", "code"),
    ]
    .iter()
    .map(|(k, v)| {
        format!(
            "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
            escape(k),
            escape(v)
        )
    })
    .collect();
    let title = format!(
        "{} wants to access your Threads profile @{USERNAME} ({NAME})",
        threads.config.app_name
    );
    let body = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{t}</title></head><body>\
         <h1>{t}</h1><p>It asks for: {scope}</p><form method=\"post\" action=\"{action}\">{hidden}\
         <button type=\"submit\" name=\"decision\" value=\"approve\">Allow</button>\
         <button type=\"submit\" name=\"decision\" value=\"deny\">Cancel</button></form></body></html>",
        t = escape(&title),
        scope = escape(&scope),
        action = escape(&path),
    );
    Html(body).into_response()
}

/// `POST /oauth/authorize`: the person's answer.
pub async fn dialog_submit(State(threads): State<Threads>, req: Request) -> Response {
    let (_, params) = match read(req).await {
        Ok(read) => read,
        Err(page) => return page,
    };
    let request = match dialog_request(&threads, &params) {
        Ok(r) => r,
        Err(message) => return error_page(&message),
    };
    if params.get("decision") != Some("approve") {
        let state = request.state.clone().unwrap_or_default();
        return redirect(
            &request.redirect_uri,
            &[
                ("error", "access_denied"),
                ("error_reason", "user_denied"),
                ("error_description", "Permissions error"),
                ("state", &state),
            ],
        );
    }
    approve(&threads, &request)
}

fn secret_ok(threads: &Threads, params: &Params) -> GraphResult<()> {
    match params.get("client_secret") {
        Some(s) if s == threads.config.app_secret => Ok(()),
        Some(_) => Err(GraphError::new(101, "Error validating client secret.")),
        None => Err(GraphError::new(
            100,
            "The parameter client_secret is required",
        )),
    }
}

/// `/oauth/access_token` (GET with a query or POST with a form): `authorization_code` or
/// `client_credentials`.
pub fn access_token(threads: &Threads, params: &Params) -> GraphResult {
    if params.get("client_id") != Some(threads.config.app_id.as_str()) {
        return Err(GraphError::new(
            101,
            "Error validating application. Invalid application ID.",
        ));
    }
    secret_ok(threads, params)?;
    match params.get("grant_type") {
        Some("client_credentials") => Ok(json!({
            "access_token": format!("TH|{}|{}", threads.config.app_id, Ctx::random_token("")),
            "token_type": "bearer",
        })),
        Some("authorization_code") => {
            let code = params
                .get("code")
                .ok_or_else(|| GraphError::new(100, "The parameter code is required"))?;
            let redirect_uri = params.get("redirect_uri").unwrap_or("");
            let now = threads.now_ms();
            let bad = || {
                GraphError::new(
                    100,
                    "Error validating verification code. Please make sure your redirect_uri is identical to the one you used in the OAuth dialog request",
                )
            };
            let scopes = threads.store(|s| {
                let record = s.codes.get_mut(code).ok_or_else(bad)?;
                if record.used
                    || record.redirect_uri != redirect_uri
                    || now - record.created_ms > CODE_LIFETIME_MS
                {
                    return Err(bad());
                }
                record.used = true;
                Ok(record.scopes.clone())
            })?;
            let (value, token) = threads.issue(TokenKind::Short, scopes);
            // `user_id` is a JSON number, as Threads sends it.
            let user_id: u64 = token.user_id.parse().unwrap_or_default();
            Ok(json!({"access_token": value, "user_id": user_id}))
        }
        _ => Err(GraphError::new(
            100,
            "(#100) grant_type must be authorization_code or client_credentials",
        )),
    }
}

/// `/access_token?grant_type=th_exchange_token&client_secret&access_token` (GET or POST).
pub fn exchange(threads: &Threads, params: &Params, token: Option<&str>) -> GraphResult {
    if params.get("grant_type") != Some("th_exchange_token") {
        return Err(GraphError::new(
            100,
            "(#100) grant_type must be th_exchange_token",
        ));
    }
    secret_ok(threads, params)?;
    let token =
        token.ok_or_else(|| GraphError::new(100, "The parameter access_token is required"))?;
    let found = super::graph::valid_token(threads, token)?;
    if found.kind == TokenKind::Long {
        return Err(GraphError::new(
            452,
            "Session key invalid. This could be because the session key has an incorrect format, or because the user has revoked this session",
        )
        .subcode(4279019));
    }
    let (value, _) = threads.issue(TokenKind::Long, found.scopes);
    Ok(token_answer(threads, value))
}

/// `/refresh_access_token?grant_type=th_refresh_token&access_token`: a long-lived token at
/// least 24 hours old and not expired. A younger one is refused and stays valid; the old one
/// stays valid until its own expiry.
pub fn refresh(threads: &Threads, params: &Params, token: Option<&str>) -> GraphResult {
    if params.get("grant_type") != Some("th_refresh_token") {
        return Err(GraphError::new(
            100,
            "(#100) grant_type must be th_refresh_token",
        ));
    }
    if threads.faults().refuse_refresh {
        return Err(GraphError::new(
            190,
            "Error validating access token: The user has not authorized application.",
        )
        .subcode(458));
    }
    let token =
        token.ok_or_else(|| GraphError::new(100, "The parameter access_token is required"))?;
    let found = super::graph::valid_token(threads, token)?;
    let now = threads.now_ms();
    if found.kind != TokenKind::Long || now - found.issued_ms < DAY_MS {
        return Err(GraphError::new(
            190,
            "Session not eligible for refresh: only a long-lived token at least 24 hours old can be refreshed.",
        ));
    }
    let (value, _) = threads.issue(TokenKind::Long, found.scopes);
    Ok(token_answer(threads, value))
}

fn token_answer(threads: &Threads, value: String) -> Value {
    json!({
        "access_token": value,
        "token_type": "bearer",
        "expires_in": threads.settings().long_lived_secs,
    })
}
