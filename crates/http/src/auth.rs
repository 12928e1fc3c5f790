//! Who is calling: [`Viewer`] for UI pages (a session cookie, else a redirect to sign in) and
//! [`Caller`] for the API (an API key as `Authorization: Bearer`, or the browser's session with
//! its CSRF token in `X-CSRF-Token` for requests that change state).

use axum::extract::{FromRequestParts, OriginalUri};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::CookieJar;
use axum_extra::extract::cookie::{Cookie, SameSite};
use tidepost_app::access::{self, secrets_equal};
use tidepost_store::sessions::Session;
use tidepost_store::users::{Role, User};
use tidepost_store::workspaces::Workspace;

use crate::error::{PageError, Problem};
use crate::state::HttpState;

pub const SESSION_COOKIE: &str = "tidepost_session";
pub const LOGIN_CSRF_COOKIE: &str = "tidepost_login_csrf";
/// Marks a browser that signed in before ([`tidepost_app::access::is_known_device`]): its
/// holder's correct password gets through an account lock. One cookie per account the browser
/// signed in to, named this followed by `_` and a digest of the user id
/// ([`device_cookie_name`]), so that signing in to a second account keeps the first one's.
pub const DEVICE_COOKIE: &str = "tidepost_device";

/// A signed-in person looking at the UI.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub session: Session,
    pub user: User,
    pub workspace: Workspace,
    /// The zone every time on the viewer's pages is shown in.
    pub zone: crate::zone::Zone,
    /// The viewer's role in the workspace (the route layer in `roles.rs` checks it).
    pub role: Role,
}

impl Viewer {
    /// Checks the CSRF token a form sent.
    pub fn check_csrf(&self, sent: &str) -> Result<(), PageError> {
        if secrets_equal(&self.session.csrf_token, sent) {
            Ok(())
        } else {
            Err(csrf_refused())
        }
    }

    pub fn csrf(&self) -> &str {
        &self.session.csrf_token
    }
}

pub fn csrf_refused() -> PageError {
    PageError::new(
        StatusCode::FORBIDDEN,
        "This form has expired",
        "The form's security token is missing or does not match your session. Go back, reload the page and try again.",
    )
}

pub(crate) async fn session_of(
    parts: &Parts,
    state: &HttpState,
) -> Result<Option<Viewer>, access::AccessError> {
    // The role layer (`roles.rs`) looked the session up already.
    if let Some(viewer) = parts.extensions.get::<Viewer>() {
        return Ok(Some(viewer.clone()));
    }
    let jar = CookieJar::from_headers(&parts.headers);
    let Some(token) = jar.get(SESSION_COOKIE).map(|c| c.value().to_string()) else {
        return Ok(None);
    };
    Ok(access::session_from_cookie(&state.app.db, &token)
        .await?
        .map(|(session, user, workspace, role)| Viewer {
            zone: crate::zone::Zone::pick(
                user.time_zone.as_deref(),
                jar.get(crate::zone::BROWSER_ZONE_COOKIE).map(|c| c.value()),
            ),
            session,
            user,
            workspace,
            role,
        }))
}

impl FromRequestParts<HttpState> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &HttpState,
    ) -> Result<Self, Self::Rejection> {
        match session_of(parts, state).await {
            Ok(Some(viewer)) => Ok(viewer),
            Ok(None) => {
                let here = OriginalUri::from_request_parts(parts, state)
                    .await
                    .map(|u| {
                        u.0.path_and_query()
                            .map(|p| p.to_string())
                            .unwrap_or_default()
                    })
                    .unwrap_or_default();
                let target = if parts.method == Method::GET && safe_next(&here).is_some() {
                    format!(
                        "/login?next={}",
                        url::form_urlencoded::byte_serialize(here.as_bytes()).collect::<String>()
                    )
                } else {
                    "/login".to_string()
                };
                Err(Redirect::to(&target).into_response())
            }
            Err(err) => Err(PageError::from(err).into_response()),
        }
    }
}

/// The body of a form whose only field is its CSRF token (sign out, revoke, cancel, retry…).
#[derive(Debug, serde::Deserialize)]
pub struct CsrfForm {
    /// Missing is the same as wrong: [`Viewer::check_csrf`] refuses it.
    #[serde(default)]
    pub csrf: String,
}

/// A viewer when a live session cookie came with the request, else nothing (for pages that
/// also serve people who are not signed in, such as OAuth callbacks started through the API).
#[derive(Debug, Clone)]
pub struct MaybeViewer(pub Option<Viewer>);

impl FromRequestParts<HttpState> for MaybeViewer {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &HttpState,
    ) -> Result<Self, Self::Rejection> {
        session_of(parts, state)
            .await
            .map(MaybeViewer)
            .map_err(|err| PageError::from(err).into_response())
    }
}

/// Only same-site relative paths are followed after sign-in (no open redirects).
pub fn safe_next(next: &str) -> Option<&str> {
    let ok = next.starts_with('/')
        && !next.starts_with("//")
        && !next.starts_with("/\\")
        // No control character: browsers drop tabs and newlines (turning `/\t/evil` into
        // `//evil`), and the others cannot go in a `Location` header at all (a 500).
        && !next.chars().any(char::is_control)
        && !next.starts_with("/login")
        && !next.starts_with("/logout");
    ok.then_some(next)
}

/// How an API request authenticated.
#[derive(Debug, Clone)]
pub enum Credential {
    ApiKey { id: String, scopes: String },
    Session { user_id: String },
}

/// An authenticated API caller, always bound to one workspace.
#[derive(Debug, Clone)]
pub struct Caller {
    pub workspace_id: String,
    pub credential: Credential,
    /// The role the caller acts with: a member's own, or an API key's (capped by its creator's).
    pub role: Role,
}

impl Caller {
    pub fn has_scope(&self, scope: &str) -> bool {
        match &self.credential {
            Credential::ApiKey { scopes, .. } => scopes.split_whitespace().any(|s| s == scope),
            // People signed in to the UI can do what the UI does, which is the `api` scope.
            Credential::Session { .. } => scope == "api",
        }
    }

    pub fn require_scope(&self, scope: &str) -> Result<(), Problem> {
        if self.has_scope(scope) {
            Ok(())
        } else {
            Err(Problem::forbidden(format!(
                "this API key lacks the `{scope}` scope"
            )))
        }
    }
}

impl FromRequestParts<HttpState> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &HttpState,
    ) -> Result<Self, Self::Rejection> {
        if let Some(value) = parts.headers.get(axum::http::header::AUTHORIZATION) {
            let value = value
                .to_str()
                .map_err(|_| Problem::unauthorized("the Authorization header is not text"))?;
            let Some(secret) = value.strip_prefix("Bearer ").map(str::trim) else {
                return Err(Problem::unauthorized(
                    "use `Authorization: Bearer <API key>`",
                ));
            };
            let (key, role) = access::authenticate_api_key(&state.app.db, secret)
                .await?
                .map_err(|refusal| Problem::unauthorized(refusal.to_string()))?;
            let scopes = key.scopes.clone();
            if !key.has_scope("api") && !key.has_scope("worker") {
                return Err(Problem::forbidden("this API key has no scope"));
            }
            return Ok(Caller {
                workspace_id: key.workspace_id,
                credential: Credential::ApiKey { id: key.id, scopes },
                role,
            });
        }
        let Some(viewer) = session_of(parts, state).await? else {
            return Err(Problem::unauthorized(
                "send an API key as `Authorization: Bearer <key>`",
            ));
        };
        if !parts.method.is_safe() {
            let sent = parts
                .headers
                .get("x-csrf-token")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if !secrets_equal(viewer.csrf(), sent) {
                return Err(Problem::forbidden(
                    "a signed-in browser must send its CSRF token in X-CSRF-Token",
                ));
            }
        }
        Ok(Caller {
            workspace_id: viewer.workspace.id,
            credential: Credential::Session {
                user_id: viewer.user.id,
            },
            role: viewer.role,
        })
    }
}

/// The session cookie, as `secure` demands.
pub fn session_cookie(token: String, secure: bool, max_age_secs: i64) -> Cookie<'static> {
    Cookie::build((SESSION_COOKIE, token))
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(secure)
        .path("/")
        .max_age(time_duration(max_age_secs))
        .build()
}

/// The double-submit cookie that protects the sign-in form (there is no session yet).
pub fn login_csrf_cookie(token: String, secure: bool) -> Cookie<'static> {
    Cookie::build((LOGIN_CSRF_COOKIE, token))
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure)
        .path("/")
        .max_age(time_duration(3600))
        .build()
}

/// The name of `user_id`'s known-device cookie: [`DEVICE_COOKIE`], `_`, and the first 16 hex
/// digits of the id's SHA-256 (the id itself stays out of the browser's cookie names).
pub fn device_cookie_name(user_id: &str) -> String {
    let digest = tidepost_app::access::sha256_hex(user_id);
    format!("{DEVICE_COOKIE}_{}", &digest[..16])
}

/// The known-device cookies a request carries (one per account the browser signed in to).
pub fn device_cookies(jar: &CookieJar) -> Vec<String> {
    let prefix = format!("{DEVICE_COOKIE}_");
    jar.iter()
        .filter(|c| c.name().starts_with(&prefix))
        .map(|c| c.value().to_string())
        .collect()
}

/// `user_id`'s known-device cookie, sent only to the sign-in form.
pub fn device_cookie(user_id: &str, value: String, secure: bool) -> Cookie<'static> {
    Cookie::build((device_cookie_name(user_id), value))
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure)
        .path("/login")
        .max_age(time_duration(tidepost_app::access::KNOWN_DEVICE_MS / 1000))
        .build()
}

fn time_duration(secs: i64) -> cookie::time::Duration {
    cookie::time::Duration::seconds(secs)
}

/// A cookie that removes `name`.
pub fn removal(name: &'static str) -> Cookie<'static> {
    Cookie::build((name, ""))
        .path("/")
        .max_age(time_duration(0))
        .build()
}
