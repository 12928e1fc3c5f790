//! Signing in and out, and the first-run setup page.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use axum_extra::extract::CookieJar;
use serde::Deserialize;
use tidepost_app::access::{self, AccessError, secrets_equal};

use super::Chrome;
use crate::auth::{
    self, CsrfForm, LOGIN_CSRF_COOKIE, SESSION_COOKIE, Viewer, csrf_refused, safe_next,
};
use crate::client_addr::ClientAddr;
use crate::error::{PageError, capitalize};
use crate::state::HttpState;

pub fn router() -> Router<HttpState> {
    Router::new()
        .route("/login", get(login_form).post(login))
        .route("/logout", post(logout))
        .route("/setup", get(setup_form).post(setup))
}

#[derive(Template, WebTemplate)]
#[template(path = "login.html")]
struct LoginPage {
    chrome: Chrome,
    csrf: String,
    next: String,
    email: String,
    error: Option<String>,
    info: Option<String>,
    setup_pending: bool,
}

#[derive(Deserialize, Default)]
struct LoginQuery {
    next: Option<String>,
    signed_out: Option<String>,
}

/// Renders the sign-in form with a fresh double-submit CSRF token.
fn login_page(
    state: &HttpState,
    jar: CookieJar,
    next: &str,
    email: &str,
    error: Option<String>,
    info: Option<String>,
) -> Response {
    let csrf = access::random_token();
    let jar = jar.add(auth::login_csrf_cookie(
        csrf.clone(),
        state.app.config.secure_cookies,
    ));
    let page = LoginPage {
        chrome: Chrome::anonymous(state),
        csrf,
        next: safe_next(next).unwrap_or("/").to_string(),
        email: email.to_string(),
        error,
        info,
        setup_pending: state.setup.is_live(),
    };
    (jar, page).into_response()
}

async fn login_form(
    State(state): State<HttpState>,
    jar: CookieJar,
    Query(query): Query<LoginQuery>,
) -> Response {
    let info = query.signed_out.map(|_| "You are signed out.".to_string());
    login_page(
        &state,
        jar,
        query.next.as_deref().unwrap_or("/"),
        "",
        None,
        info,
    )
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: String,
}

async fn login(
    State(state): State<HttpState>,
    ClientAddr(client): ClientAddr,
    jar: CookieJar,
    Form(form): Form<LoginForm>,
) -> Response {
    let cookie_token = jar
        .get(LOGIN_CSRF_COOKIE)
        .map(|c| c.value().to_string())
        .unwrap_or_default();
    if cookie_token.is_empty() || !secrets_equal(&cookie_token, &form.csrf) {
        return csrf_refused().into_response();
    }
    let config = &state.app.config;
    match access::sign_in(
        &state.app.db,
        &form.email,
        &form.password,
        &client.to_string(),
        config.session_hours,
    )
    .await
    {
        Ok(session) => {
            tracing::info!(user_id = %session.user.id, workspace = %session.workspace.slug, "signed in");
            let max_age = (session.expires_at - tidepost_domain::now_ms()) / 1000;
            let jar = jar
                .remove(auth::removal(LOGIN_CSRF_COOKIE))
                .add(auth::session_cookie(
                    session.token,
                    config.secure_cookies,
                    max_age,
                ));
            (jar, Redirect::to(safe_next(&form.next).unwrap_or("/"))).into_response()
        }
        Err(err @ (AccessError::WrongCredentials | AccessError::TooManyAttempts { .. })) => {
            let status = match err {
                AccessError::TooManyAttempts { .. } => axum::http::StatusCode::TOO_MANY_REQUESTS,
                AccessError::WrongCredentials
                | AccessError::WeakPassword
                | AccessError::InvalidEmail(_)
                | AccessError::InvalidWorkspace(_)
                | AccessError::UnknownWorkspace(_)
                | AccessError::UnknownScope(_)
                | AccessError::InvalidKeyName
                | AccessError::Store(_) => axum::http::StatusCode::UNAUTHORIZED,
            };
            let page = login_page(
                &state,
                jar,
                &form.next,
                &form.email,
                Some(capitalize(&err.to_string())),
                None,
            );
            (status, page).into_response()
        }
        Err(other) => PageError::from(other).into_response(),
    }
}

async fn logout(
    State(state): State<HttpState>,
    viewer: Viewer,
    jar: CookieJar,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Err(refusal) = viewer.check_csrf(&form.csrf) {
        return refusal.into_response();
    }
    if let Some(token) = jar.get(SESSION_COOKIE).map(|c| c.value().to_string())
        && let Err(err) = access::sign_out(&state.app.db, &token).await
    {
        return PageError::from(err).into_response();
    }
    (
        jar.remove(auth::removal(SESSION_COOKIE)),
        Redirect::to("/login?signed_out=1"),
    )
        .into_response()
}

#[derive(Template, WebTemplate)]
#[template(path = "setup.html")]
struct SetupPage {
    chrome: Chrome,
    token: String,
    email: String,
    workspace: String,
    error: Option<String>,
}

#[derive(Deserialize)]
struct SetupQuery {
    #[serde(default)]
    token: String,
}

fn setup_expired() -> PageError {
    PageError::new(
        axum::http::StatusCode::NOT_FOUND,
        "This setup link is no longer valid",
        "The first account already exists, or the link is from an earlier start of tidepost. Sign in, or create users with `tidepost user create`.",
    )
}

async fn setup_form(State(state): State<HttpState>, Query(query): Query<SetupQuery>) -> Response {
    if !state.setup.matches(&query.token) {
        return setup_expired().into_response();
    }
    SetupPage {
        chrome: Chrome::anonymous(&state),
        token: query.token,
        email: String::new(),
        workspace: "default".into(),
        error: None,
    }
    .into_response()
}

#[derive(Deserialize)]
struct SetupForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    workspace: String,
}

async fn setup(
    State(state): State<HttpState>,
    jar: CookieJar,
    Form(form): Form<SetupForm>,
) -> Response {
    // The setup token is the CSRF protection here: it is secret and single-use.
    if !state.setup.matches(&form.token) {
        return setup_expired().into_response();
    }
    match access::create_user(&state.app.db, &form.email, &form.password, &form.workspace).await {
        Ok((user, ws)) => {
            state.setup.take(&form.token);
            tracing::info!(user_id = %user.id, workspace = %ws.slug, "first account created");
            let info = Some(format!(
                "Account created for {}. Sign in to continue.",
                user.email
            ));
            login_page(&state, jar, "/", &user.email, None, info)
        }
        Err(AccessError::Store(e)) if !e.is_unique_violation() => {
            PageError::internal(e).into_response()
        }
        Err(err) => {
            let page = SetupPage {
                chrome: Chrome::anonymous(&state),
                token: form.token,
                email: form.email,
                workspace: form.workspace,
                error: Some(capitalize(&err.to_string())),
            };
            (axum::http::StatusCode::UNPROCESSABLE_ENTITY, page).into_response()
        }
    }
}
