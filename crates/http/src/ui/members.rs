//! Members and invites: `/settings/members` (owners and admins: list members, change a role,
//! remove someone, invite by email, list and withdraw pending invites) and the invite link's
//! page `/invite/{token}` (anyone holding the link: a new person sets a password and joins, a
//! signed-in user with the invited email joins).

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use axum_extra::extract::CookieJar;
use serde::Deserialize;
use tidepost_app::access::{self, secrets_equal};
use tidepost_app::mail::Delivery;
use tidepost_app::members::{self, AcceptError, Actor, InviteRefusal, MemberError};
use tidepost_domain::Role;
use tidepost_store::{invites, users};

use super::{Chrome, flash};
use crate::auth::{self, CsrfForm, LOGIN_CSRF_COOKIE, MaybeViewer, Viewer, csrf_refused};
use crate::error::{PageError, capitalize};
use crate::state::HttpState;

pub fn router() -> Router<HttpState> {
    Router::new()
        .route("/settings/members", get(members_page))
        .route("/settings/members/invite", post(invite))
        .route("/settings/members/invites/{id}/revoke", post(revoke_invite))
        .route("/settings/members/{id}/role", post(change_role))
        .route("/settings/members/{id}/remove", post(remove))
        .route("/invite/{token}", get(invite_page).post(accept))
}

struct MemberRow {
    user_id: String,
    email: String,
    role: &'static str,
    joined: String,
    you: bool,
    /// The viewer may change this member's role or remove them.
    manageable: bool,
}

struct InviteRow {
    id: String,
    email: String,
    role: &'static str,
    expires: String,
}

/// An invite just made: its link, shown once, carried by a flash cookie.
#[derive(serde::Serialize, Deserialize)]
struct CreatedInvite {
    email: String,
    role: String,
    link: String,
    /// What became of the mail, as a sentence.
    mail: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "members.html")]
struct MembersPage {
    chrome: Chrome,
    members: Vec<MemberRow>,
    invites: Vec<InviteRow>,
    created: Option<CreatedInvite>,
    error: Option<String>,
    /// The roles the viewer may give, highest first.
    roles: Vec<&'static str>,
    /// The invite form as typed (after a refusal).
    email: String,
    role: String,
}

fn actor(viewer: &Viewer) -> Actor<'_> {
    Actor::Member {
        user_id: &viewer.user.id,
        role: viewer.role,
    }
}

async fn page(
    state: &HttpState,
    viewer: &Viewer,
    created: Option<CreatedInvite>,
    error: Option<String>,
) -> Result<MembersPage, PageError> {
    let db = &state.app.db;
    let members = users::members(db, &viewer.workspace.id)
        .await?
        .into_iter()
        .map(|m| MemberRow {
            you: m.user_id == viewer.user.id,
            manageable: viewer.role.may_manage(m.role),
            joined: viewer.zone.when(Some(m.joined_at)),
            role: m.role.as_str(),
            email: m.email,
            user_id: m.user_id,
        })
        .collect();
    let invites = invites::pending(db, &viewer.workspace.id, tidepost_domain::now_ms())
        .await?
        .into_iter()
        .map(|i| InviteRow {
            expires: viewer.zone.when(Some(i.expires_at)),
            role: i.role.as_str(),
            id: i.id,
            email: i.email,
        })
        .collect();
    let roles = Role::ALL
        .iter()
        .rev()
        .filter(|r| viewer.role.may_manage(**r))
        .map(|r| r.as_str())
        .collect();
    Ok(MembersPage {
        chrome: Chrome::for_viewer(state, viewer, "Members"),
        members,
        invites,
        created,
        error,
        roles,
        email: String::new(),
        role: Role::Editor.as_str().to_string(),
    })
}

/// The members page; right after an invite was made it shows that invite's link, once.
async fn members_page(
    State(state): State<HttpState>,
    viewer: Viewer,
    jar: CookieJar,
) -> Result<Response, PageError> {
    let (jar, created) =
        flash::take::<CreatedInvite>(&state, jar, flash::INVITE, &viewer.session.token_hash);
    Ok((jar, page(&state, &viewer, created, None).await?).into_response())
}

/// A refusal of one of the page's forms: the page again with the reason (422, or 409 for the
/// last owner), so the person can go on from it.
async fn refused(
    state: &HttpState,
    viewer: &Viewer,
    err: MemberError,
    typed: Option<(String, String)>,
) -> Result<Response, PageError> {
    let status = match err {
        MemberError::Store(e) => return Err(e.into()),
        MemberError::NotMember | MemberError::NoSuchInvite => {
            return Err(PageError::not_found());
        }
        MemberError::OwnersOnly(_) | MemberError::NotAllowed(_) => StatusCode::FORBIDDEN,
        MemberError::LastOwner | MemberError::AlreadyMember(_) => StatusCode::CONFLICT,
        MemberError::Access(_) => StatusCode::UNPROCESSABLE_ENTITY,
    };
    let mut page = page(state, viewer, None, Some(capitalize(&err.to_string()))).await?;
    if let Some((email, role)) = typed {
        page.email = email;
        page.role = role;
    }
    Ok((status, page).into_response())
}

#[derive(Deserialize)]
struct InviteForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    role: String,
}

/// Makes an invite and answers 303 to the members page, which shows its link once.
async fn invite(
    State(state): State<HttpState>,
    viewer: Viewer,
    jar: CookieJar,
    Form(form): Form<InviteForm>,
) -> Result<Response, PageError> {
    viewer.check_csrf(&form.csrf)?;
    let typed = Some((form.email.clone(), form.role.clone()));
    let role = match form.role.parse::<Role>() {
        Ok(role) => role,
        Err(e) => {
            let mut page = page(&state, &viewer, None, Some(capitalize(&e.to_string()))).await?;
            page.email = form.email;
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
        }
    };
    match members::invite(
        &state.app.db,
        &state.app.config,
        &viewer.workspace,
        actor(&viewer),
        &form.email,
        role,
    )
    .await
    {
        Ok(made) => {
            let mail = match made.mail {
                Delivery::Sent => format!("It was also mailed to {}.", made.invite.email),
                Delivery::NotConfigured => {
                    "No mail server is configured: send the link yourself.".to_string()
                }
                Delivery::Failed(why) => {
                    format!("The mail could not be sent ({why}): send the link yourself.")
                }
            };
            let created = CreatedInvite {
                email: made.invite.email,
                role: made.invite.role.as_str().to_string(),
                link: made.link,
                mail,
            };
            let cookie = flash::set(&state, flash::INVITE, &viewer.session.token_hash, &created);
            Ok((jar.add(cookie), Redirect::to("/settings/members")).into_response())
        }
        Err(err) => refused(&state, &viewer, err, typed).await,
    }
}

async fn revoke_invite(
    State(state): State<HttpState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, PageError> {
    viewer.check_csrf(&form.csrf)?;
    match members::revoke_invite(&state.app.db, &viewer.workspace.id, actor(&viewer), &id).await {
        Ok(()) => Ok(Redirect::to("/settings/members").into_response()),
        Err(err) => refused(&state, &viewer, err, None).await,
    }
}

#[derive(Deserialize)]
struct RoleForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    role: String,
}

async fn change_role(
    State(state): State<HttpState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Form(form): Form<RoleForm>,
) -> Result<Response, PageError> {
    viewer.check_csrf(&form.csrf)?;
    // Another workspace's member (or nobody) is not found, whatever the form holds.
    if users::role_of(&state.app.db, &viewer.workspace.id, &id)
        .await?
        .is_none()
    {
        return Err(PageError::not_found());
    }
    let role = match form.role.parse::<Role>() {
        Ok(role) => role,
        Err(e) => {
            let page = page(&state, &viewer, None, Some(capitalize(&e.to_string()))).await?;
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
        }
    };
    match members::change_role(
        &state.app.db,
        &viewer.workspace.id,
        actor(&viewer),
        &id,
        role,
    )
    .await
    {
        Ok(()) => {
            tracing::info!(member = %id, role = %role, workspace = %viewer.workspace.slug, "member role changed");
            Ok(Redirect::to("/settings/members").into_response())
        }
        Err(err) => refused(&state, &viewer, err, None).await,
    }
}

async fn remove(
    State(state): State<HttpState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, PageError> {
    viewer.check_csrf(&form.csrf)?;
    match members::remove(&state.app.db, &viewer.workspace.id, actor(&viewer), &id).await {
        Ok(()) => {
            tracing::info!(member = %id, workspace = %viewer.workspace.slug, "member removed");
            Ok(Redirect::to("/settings/members").into_response())
        }
        Err(err) => refused(&state, &viewer, err, None).await,
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "invite.html")]
struct InvitePage {
    chrome: Chrome,
    workspace: String,
    email: String,
    role: &'static str,
    role_phrase: &'static str,
    /// The form's CSRF token: the session's when signed in, else a double-submit cookie's.
    csrf: String,
    /// Signed in as this email (`None`: not signed in).
    signed_in_as: Option<String>,
    /// The invited email has an account already (and is not the one signed in).
    has_account: bool,
    login_href: String,
    error: Option<String>,
}

/// The page of a link that cannot be used (410 for spent, withdrawn or expired; 404 unknown).
fn refusal_page(refusal: InviteRefusal) -> PageError {
    let (status, title) = match refusal {
        InviteRefusal::Unknown => (StatusCode::NOT_FOUND, "Unknown invite link"),
        InviteRefusal::Expired => (StatusCode::GONE, "This invite has expired"),
        InviteRefusal::Revoked => (StatusCode::GONE, "This invite was withdrawn"),
        InviteRefusal::Used => (StatusCode::GONE, "This invite was already used"),
    };
    PageError::new(status, title, capitalize(&refusal.to_string())).with_action("/login", "Sign in")
}

async fn invite_view(
    state: &HttpState,
    viewer: &Option<Viewer>,
    jar: CookieJar,
    token: &str,
    error: Option<String>,
) -> Result<(CookieJar, InvitePage), PageError> {
    let (invite, workspace) = match members::open(&state.app.db, token).await? {
        Ok(found) => found,
        Err(refusal) => return Err(refusal_page(refusal)),
    };
    let has_account = users::by_email(&state.app.db, &invite.email)
        .await?
        .is_some();
    let (jar, csrf) = match viewer {
        Some(v) => (jar, v.csrf().to_string()),
        None => {
            let csrf = access::random_token();
            (
                jar.add(auth::login_csrf_cookie(
                    csrf.clone(),
                    state.app.config.secure_cookies,
                )),
                csrf,
            )
        }
    };
    let next = format!("/invite/{token}");
    Ok((
        jar,
        InvitePage {
            chrome: Chrome::for_maybe_viewer(state, viewer, ""),
            workspace: workspace.name,
            role: invite.role.as_str(),
            role_phrase: invite.role.with_article(),
            csrf,
            signed_in_as: viewer.as_ref().map(|v| v.user.email.clone()),
            has_account,
            login_href: format!(
                "/login?next={}",
                url::form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()
            ),
            email: invite.email,
            error,
        },
    ))
}

async fn invite_page(
    State(state): State<HttpState>,
    MaybeViewer(viewer): MaybeViewer,
    jar: CookieJar,
    Path(token): Path<String>,
) -> Result<Response, PageError> {
    Ok(invite_view(&state, &viewer, jar, &token, None)
        .await?
        .into_response())
}

#[derive(Deserialize)]
struct AcceptForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    password: String,
}

/// Accepts the invite: as the signed-in user, or as a new person with the password they set
/// (then signed in). Answers 303 to the dashboard of the workspace joined.
async fn accept(
    State(state): State<HttpState>,
    MaybeViewer(viewer): MaybeViewer,
    jar: CookieJar,
    Path(token): Path<String>,
    Form(form): Form<AcceptForm>,
) -> Result<Response, PageError> {
    let db = &state.app.db;
    match &viewer {
        Some(v) => v.check_csrf(&form.csrf)?,
        None => {
            let cookie = jar
                .get(LOGIN_CSRF_COOKIE)
                .map(|c| c.value().to_string())
                .unwrap_or_default();
            if cookie.is_empty() || !secrets_equal(&cookie, &form.csrf) {
                return Err(csrf_refused());
            }
        }
    }
    let joined = match &viewer {
        Some(v) => members::accept_existing(db, &token, &v.user).await,
        None => members::accept_new(db, &token, &form.password).await,
    };
    let joined = match joined {
        Ok(joined) => joined,
        Err(AcceptError::Refused(refusal)) => return Err(refusal_page(refusal)),
        Err(AcceptError::Store(e)) => return Err(e.into()),
        Err(
            err @ (AcceptError::SignInFirst(_)
            | AcceptError::OtherUser { .. }
            | AcceptError::Access(_)),
        ) => {
            let status = match &err {
                AcceptError::Access(_) => StatusCode::UNPROCESSABLE_ENTITY,
                AcceptError::SignInFirst(_)
                | AcceptError::OtherUser { .. }
                | AcceptError::Refused(_)
                | AcceptError::Store(_) => StatusCode::CONFLICT,
            };
            let message = capitalize(&err.to_string());
            let (jar, page) = invite_view(&state, &viewer, jar, &token, Some(message)).await?;
            return Ok((status, jar, page).into_response());
        }
    };
    tracing::info!(user_id = %joined.user.id, workspace = %joined.workspace.slug, role = %joined.role, "invite accepted");
    match viewer {
        Some(v) => {
            // The session moves to the workspace just joined.
            tidepost_store::sessions::switch_workspace(
                db,
                &v.session.token_hash,
                &joined.workspace.id,
            )
            .await?;
            Ok(Redirect::to("/").into_response())
        }
        None => {
            let config = &state.app.config;
            let session = access::open_session(
                db,
                &state.app.keyring,
                joined.user,
                joined.workspace,
                config.session_hours,
            )
            .await?;
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
            Ok((jar, Redirect::to("/")).into_response())
        }
    }
}
