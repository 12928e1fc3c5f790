//! Signing in and out, and the first-run setup page.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use axum_extra::extract::CookieJar;
use serde::Deserialize;
use tidepost_app::access::{self, AccessError, SignIn, secrets_equal};
use tidepost_store::users;

use super::{Chrome, flash};
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

/// What the sign-in form shows besides its fresh CSRF token.
struct LoginView<'a> {
    next: &'a str,
    email: &'a str,
    error: Option<String>,
    info: Option<String>,
    setup_pending: bool,
}

/// Renders the sign-in form with a fresh double-submit CSRF token.
fn login_page(state: &HttpState, jar: CookieJar, view: LoginView<'_>) -> Response {
    let csrf = access::random_token();
    let jar = jar.add(auth::login_csrf_cookie(
        csrf.clone(),
        state.app.config.secure_cookies,
    ));
    let page = LoginPage {
        chrome: Chrome::anonymous(state),
        csrf,
        next: safe_next(view.next).unwrap_or("/").to_string(),
        email: view.email.to_string(),
        error: view.error,
        info: view.info,
        setup_pending: view.setup_pending,
    };
    (jar, page).into_response()
}

/// The account the setup form created, shown once on the sign-in page it redirects to.
#[derive(serde::Serialize, Deserialize)]
struct SetupDone {
    email: String,
}

async fn login_form(
    State(state): State<HttpState>,
    jar: CookieJar,
    Query(query): Query<LoginQuery>,
) -> Response {
    let (jar, created) = flash::take::<SetupDone>(&state, jar, flash::SETUP_DONE, "");
    let mut info = query.signed_out.map(|_| "You are signed out.".to_string());
    let mut email = String::new();
    if let Some(created) = created {
        info = Some(format!(
            "Account created for {}. Sign in to continue.",
            created.email
        ));
        email = created.email;
    }
    let setup_pending = match setup_live(&state).await {
        Ok(live) => live,
        Err(err) => return err.into_response(),
    };
    login_page(
        &state,
        jar,
        LoginView {
            next: query.next.as_deref().unwrap_or("/"),
            email: &email,
            error: None,
            info,
            setup_pending,
        },
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
    let client = client.to_string();
    let devices = auth::device_cookies(&jar);
    let request = SignIn {
        email: &form.email,
        password: &form.password,
        client: &client,
        devices: &devices,
        session_hours: config.session_hours,
    };
    match access::sign_in(&state.app.db, &state.app.keyring, request).await {
        Ok(session) => {
            tracing::info!(user_id = %session.user.id, workspace = %session.workspace.slug, "signed in");
            let max_age = (session.expires_at - tidepost_domain::now_ms()) / 1000;
            let jar = jar
                .remove(auth::removal(LOGIN_CSRF_COOKIE))
                .add(auth::session_cookie(
                    session.token,
                    config.secure_cookies,
                    max_age,
                ))
                .add(auth::device_cookie(
                    &session.user.id,
                    session.device,
                    config.secure_cookies,
                ));
            (jar, Redirect::to(safe_next(&form.next).unwrap_or("/"))).into_response()
        }
        Err(
            err @ (AccessError::WrongCredentials
            | AccessError::TooManyAttempts { .. }
            | AccessError::AccountLocked { .. }),
        ) => {
            let retry_after = match err {
                AccessError::TooManyAttempts { retry_after_secs }
                | AccessError::AccountLocked { retry_after_secs } => Some(retry_after_secs),
                AccessError::WrongCredentials
                | AccessError::WeakPassword
                | AccessError::InvalidEmail(_)
                | AccessError::InvalidWorkspace(_)
                | AccessError::UnknownWorkspace(_)
                | AccessError::UnknownScope(_)
                | AccessError::InvalidKeyName
                | AccessError::KeyAboveCreator { .. }
                | AccessError::Store(_) => None,
            };
            let setup_pending = match setup_live(&state).await {
                Ok(live) => live,
                Err(err) => return err.into_response(),
            };
            let page = login_page(
                &state,
                jar,
                LoginView {
                    next: &form.next,
                    email: &form.email,
                    error: Some(capitalize(&err.to_string())),
                    info: None,
                    setup_pending,
                },
            );
            match retry_after {
                // Every 429 says when to come back.
                Some(secs) => (
                    StatusCode::TOO_MANY_REQUESTS,
                    [(header::RETRY_AFTER, secs.max(1).to_string())],
                    page,
                )
                    .into_response(),
                None => (StatusCode::UNAUTHORIZED, page).into_response(),
            }
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

/// True while the first-run setup link may be used: its token is live in this process and no
/// user exists in the database (one may have been made by `tidepost user create`, or through
/// another instance). Once a user exists the token is dropped for good.
async fn setup_live(state: &HttpState) -> Result<bool, PageError> {
    if !state.setup.is_live() {
        return Ok(false);
    }
    if users::count(&state.app.db).await? > 0 {
        state.setup.kill();
        return Ok(false);
    }
    Ok(true)
}

async fn setup_form(State(state): State<HttpState>, Query(query): Query<SetupQuery>) -> Response {
    match setup_live(&state).await {
        Ok(true) if state.setup.matches(&query.token) => {}
        Ok(_) => return setup_expired().into_response(),
        Err(err) => return err.into_response(),
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

/// Creates the first account, only if no user exists (checked in the same database
/// transaction as the insert, so parallel posts of the link, or a `tidepost user create`
/// racing it, leave exactly one first user), then answers 303 to the sign-in page.
async fn setup(
    State(state): State<HttpState>,
    jar: CookieJar,
    Form(form): Form<SetupForm>,
) -> Response {
    // The setup token is the CSRF protection here: it is secret and single-use.
    if !state.setup.matches(&form.token) {
        return setup_expired().into_response();
    }
    match access::create_first_user(&state.app.db, &form.email, &form.password, &form.workspace)
        .await
    {
        Ok(Some((user, ws))) => {
            state.setup.kill();
            tracing::info!(user_id = %user.id, workspace = %ws.slug, "first account created");
            let done = SetupDone { email: user.email };
            let cookie = flash::set(&state, flash::SETUP_DONE, "", &done);
            (jar.add(cookie), Redirect::to("/login")).into_response()
        }
        Ok(None) => {
            state.setup.kill();
            setup_expired().into_response()
        }
        Err(AccessError::Store(e)) if !e.is_unique_violation() => {
            PageError::from(e).into_response()
        }
        Err(err) => {
            let page = SetupPage {
                chrome: Chrome::anonymous(&state),
                token: form.token,
                email: form.email,
                workspace: form.workspace,
                error: Some(capitalize(&err.to_string())),
            };
            (StatusCode::UNPROCESSABLE_ENTITY, page).into_response()
        }
    }
}
