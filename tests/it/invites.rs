//! Members and invites (issue 17, "Members and roles"): an owner invites by email with a role;
//! the one-time link (`/invite/<token>`) lets a new person set a password and join, or a
//! signed-in user with that email join; an expired, withdrawn or used link is a clear page;
//! the last owner can be neither demoted nor removed; with SMTP configured the link is mailed
//! (to a small SMTP sink the test runs, no outside server).

use reqwest::StatusCode;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

use crate::support::*;

/// The link the members page shows once after an invite.
fn invite_link(html: &str) -> String {
    let start = html
        .find("id=\"invite-link\">")
        .map(|i| i + "id=\"invite-link\">".len())
        .unwrap_or_else(|| panic!("the page shows the invite link:\n{html}"));
    let end = html[start..].find('<').unwrap();
    html[start..start + end].to_string()
}

/// The path of a link (`/invite/<token>`).
fn path_of(link: &str) -> String {
    link[link.find("/invite/").expect("an invite link")..].to_string()
}

/// Invites `email` with `role` through the members page as `owner`; returns the link.
async fn invite(app: &TestApp, owner: &SignedIn, email: &str, role: &str) -> String {
    let response = owner
        .client
        .post(app.url("/settings/members/invite"))
        .form(&[
            ("csrf", owner.csrf.as_str()),
            ("email", email),
            ("role", role),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/settings/members");
    let html = app.page_text(&owner.client, "/settings/members").await;
    let link = invite_link(&html);
    // Shown once: a reload does not show it again.
    let again = app.page_text(&owner.client, "/settings/members").await;
    assert!(!again.contains(&link), "the link is shown only once");
    link
}

/// Opens the invite page with a browser that is not signed in and accepts it with `password`.
async fn accept_as_new(
    app: &TestApp,
    path: &str,
    password: &str,
) -> (reqwest::Client, reqwest::Response) {
    let browser = client();
    let page = browser.get(app.url(path)).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    let csrf = hidden_input(&html, "csrf").expect("the invite form has a csrf field");
    let response = browser
        .post(app.url(path))
        .form(&[("csrf", csrf.as_str()), ("password", password)])
        .send()
        .await
        .unwrap();
    (browser, response)
}

both_backends!(a_new_person_joins_as_editor);

async fn a_new_person_joins_as_editor(backend: Backend) {
    let app = spawn_app(backend).await;
    let owner = app.signed_in("team").await;
    let link = invite(&app, &owner, "New.Editor@Example.com", "editor").await;
    let path = path_of(&link);
    let members = app.page_text(&owner.client, "/settings/members").await;
    assert!(
        members.contains("new.editor@example.com"),
        "pending invite listed"
    );

    let anonymous = client();
    let html = app.page_text(&anonymous, &path).await;
    assert!(
        html.contains("as an editor") && html.contains("new.editor@example.com"),
        "{html}"
    );
    // Too short a password: the page again, with the reason.
    let (_, response) = accept_as_new(&app, &path, "short").await;
    page_error(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "The password must be at least 10 characters long",
    )
    .await;
    let (browser, response) = accept_as_new(&app, &path, "a long enough password").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/");
    // Signed in, in the workspace, as an editor: composes, cannot open the members page.
    let dashboard = browser.get(app.url("/")).send().await.unwrap();
    assert_eq!(dashboard.status(), StatusCode::OK);
    let html = dashboard.text().await.unwrap();
    assert!(
        !html.contains("href=\"/settings/members\""),
        "no link it cannot open"
    );
    assert_eq!(
        browser
            .get(app.url("/compose"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    page_error(
        browser
            .get(app.url("/settings/members"))
            .send()
            .await
            .unwrap(),
        StatusCode::FORBIDDEN,
        "You need the admin role",
    )
    .await;
    let user = tidepost_store::users::by_email(&app.db, "new.editor@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        tidepost_store::users::role_of(&app.db, &owner.workspace.id, &user.id)
            .await
            .unwrap(),
        Some(tidepost_domain::Role::Editor)
    );
    // The same password signs in again later.
    let again = client();
    let response = app
        .sign_in(
            &again,
            "new.editor@example.com",
            "a long enough password",
            "/",
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);

    // The link is spent: a second use is a clear page, and creates nobody.
    let response = client().get(app.url(&path)).send().await.unwrap();
    page_error(response, StatusCode::GONE, "This invite was already used").await;
    let late = client();
    let csrf = app.login_csrf(&late).await;
    let response = late
        .post(app.url(&path))
        .form(&[
            ("csrf", csrf.as_str()),
            ("password", "another long password"),
        ])
        .send()
        .await
        .unwrap();
    page_error(response, StatusCode::GONE, "This invite was already used").await;
    assert_eq!(tidepost_store::users::count(&app.db).await.unwrap(), 2);
    // A link that was never made is a clear page too.
    let unknown = format!("/invite/{}", tidepost_app::access::random_token());
    page_error(
        client().get(app.url(&unknown)).send().await.unwrap(),
        StatusCode::NOT_FOUND,
        "This invite link is not known",
    )
    .await;
}

both_backends!(an_existing_user_joins_signed_in);

async fn an_existing_user_joins_signed_in(backend: Backend) {
    let app = spawn_app(backend).await;
    let owner = app.signed_in("agency").await;
    // Someone with their own workspace elsewhere.
    let other = app.signed_in("freelance").await;
    let link = invite(&app, &owner, "owner@freelance.example", "viewer").await;
    let path = path_of(&link);
    // Not signed in, the page asks them to sign in first (and comes back).
    let html = app.page_text(&client(), &path).await;
    assert!(html.contains("already has an account"), "{html}");
    // Signed in as someone else, they are told whom the invite is for.
    let response = owner
        .client
        .post(app.url(&path))
        .form(&[("csrf", owner.csrf.as_str())])
        .send()
        .await
        .unwrap();
    page_error(
        response,
        StatusCode::CONFLICT,
        "This invite is for owner@freelance.example, and you are signed in as owner@agency.example",
    )
    .await;
    // Signed in as the invited email: Join.
    let html = app.page_text(&other.client, &path).await;
    assert!(html.contains("id=\"join\""), "{html}");
    let response = other
        .client
        .post(app.url(&path))
        .form(&[("csrf", other.csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    // The session moved to the workspace joined, where they read but change nothing.
    let html = app.page_text(&other.client, "/").await;
    assert!(html.contains("agency"), "{html}");
    page_error(
        other.client.get(app.url("/compose")).send().await.unwrap(),
        StatusCode::FORBIDDEN,
        "You need the editor role",
    )
    .await;
    let user = tidepost_store::users::by_email(&app.db, "owner@freelance.example")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        tidepost_store::users::role_of(&app.db, &owner.workspace.id, &user.id)
            .await
            .unwrap(),
        Some(tidepost_domain::Role::Viewer)
    );
    // Still the owner of their own workspace.
    assert_eq!(
        tidepost_store::users::role_of(&app.db, &other.workspace.id, &user.id)
            .await
            .unwrap(),
        Some(tidepost_domain::Role::Owner)
    );
    // Inviting a member again is refused with the reason, the form kept.
    let response = owner
        .client
        .post(app.url("/settings/members/invite"))
        .form(&[
            ("csrf", owner.csrf.as_str()),
            ("email", "owner@freelance.example"),
            ("role", "editor"),
        ])
        .send()
        .await
        .unwrap();
    page_error(
        response,
        StatusCode::CONFLICT,
        "is already a member of this workspace",
    )
    .await;
}

both_backends!(expired_and_withdrawn_links_are_clear_pages);

async fn expired_and_withdrawn_links_are_clear_pages(backend: Backend) {
    let app = spawn_app(backend).await;
    let owner = app.signed_in("links").await;
    let expired = invite(&app, &owner, "late@example.com", "viewer").await;
    sqlx::query("UPDATE invites SET expires_at = $1 WHERE email = $2")
        .bind(tidepost_domain::now_ms() - 1)
        .bind("late@example.com")
        .execute(app.db.pool())
        .await
        .unwrap();
    page_error(
        client()
            .get(app.url(&path_of(&expired)))
            .send()
            .await
            .unwrap(),
        StatusCode::GONE,
        "This invite link has expired",
    )
    .await;

    let withdrawn = invite(&app, &owner, "maybe@example.com", "editor").await;
    let invite =
        tidepost_store::invites::pending(&app.db, &owner.workspace.id, tidepost_domain::now_ms())
            .await
            .unwrap()
            .into_iter()
            .find(|i| i.email == "maybe@example.com")
            .unwrap();
    let response = owner
        .client
        .post(app.url(&format!("/settings/members/invites/{}/revoke", invite.id)))
        .form(&[("csrf", owner.csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let members = app.page_text(&owner.client, "/settings/members").await;
    assert!(!members.contains("maybe@example.com"), "no longer pending");
    let browser = client();
    page_error(
        browser
            .get(app.url(&path_of(&withdrawn)))
            .send()
            .await
            .unwrap(),
        StatusCode::GONE,
        "This invite was withdrawn",
    )
    .await;
    // A form posted to it (opened before it was withdrawn) is refused the same way.
    let csrf = app.login_csrf(&browser).await;
    let response = browser
        .post(app.url(&path_of(&withdrawn)))
        .form(&[
            ("csrf", csrf.as_str()),
            ("password", "a long enough password"),
        ])
        .send()
        .await
        .unwrap();
    page_error(response, StatusCode::GONE, "This invite was withdrawn").await;
    assert!(
        tidepost_store::users::by_email(&app.db, "maybe@example.com")
            .await
            .unwrap()
            .is_none()
    );
}

both_backends!(the_last_owner_is_protected);

async fn the_last_owner_is_protected(backend: Backend) {
    let app = spawn_app(backend).await;
    let owner = app.signed_in("solo").await;
    let me = tidepost_store::users::by_email(&app.db, "owner@solo.example")
        .await
        .unwrap()
        .unwrap();
    let response = owner
        .client
        .post(app.url(&format!("/settings/members/{}/role", me.id)))
        .form(&[("csrf", owner.csrf.as_str()), ("role", "admin")])
        .send()
        .await
        .unwrap();
    page_error(
        response,
        StatusCode::CONFLICT,
        "This is the workspace&#39;s last owner: make another member owner first",
    )
    .await;
    let response = owner
        .client
        .post(app.url(&format!("/settings/members/{}/remove", me.id)))
        .form(&[("csrf", owner.csrf.as_str())])
        .send()
        .await
        .unwrap();
    page_error(response, StatusCode::CONFLICT, "last owner").await;
    // An admin can neither demote nor remove an owner, nor make one.
    let admin = app
        .member(
            &owner.workspace,
            "admin@solo.example",
            tidepost_domain::Role::Admin,
        )
        .await;
    let response = admin
        .client
        .post(app.url(&format!("/settings/members/{}/role", me.id)))
        .form(&[("csrf", admin.csrf.as_str()), ("role", "viewer")])
        .send()
        .await
        .unwrap();
    page_error(
        response,
        StatusCode::FORBIDDEN,
        "Only an owner can make or unmake an owner",
    )
    .await;
    let response = admin
        .client
        .post(app.url("/settings/members/invite"))
        .form(&[
            ("csrf", admin.csrf.as_str()),
            ("email", "boss@example.com"),
            ("role", "owner"),
        ])
        .send()
        .await
        .unwrap();
    page_error(
        response,
        StatusCode::FORBIDDEN,
        "Only an owner can invite an owner",
    )
    .await;
    // With a second owner, the first may step down; then the second is the last.
    let response = owner
        .client
        .post(app.url(&format!(
            "/settings/members/{}/role",
            tidepost_store::users::by_email(&app.db, "admin@solo.example")
                .await
                .unwrap()
                .unwrap()
                .id
        )))
        .form(&[("csrf", owner.csrf.as_str()), ("role", "owner")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let response = owner
        .client
        .post(app.url(&format!("/settings/members/{}/role", me.id)))
        .form(&[("csrf", owner.csrf.as_str()), ("role", "editor")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        tidepost_store::users::role_of(&app.db, &owner.workspace.id, &me.id)
            .await
            .unwrap(),
        Some(tidepost_domain::Role::Editor)
    );
    // Two owners demoting each other at once: one stays owner.
    let a = app.create_user("a@race.example", "race").await;
    let b = app.create_user("b@race.example", "race").await;
    let ws = a.1.id.clone();
    let (ra, rb) = tokio::join!(
        tidepost_store::users::set_role(&app.db, &ws, &a.0.id, tidepost_domain::Role::Admin),
        tidepost_store::users::set_role(&app.db, &ws, &b.0.id, tidepost_domain::Role::Admin),
    );
    let outcomes = [ra.unwrap(), rb.unwrap()];
    assert!(
        outcomes.contains(&tidepost_store::users::MembershipChange::Done)
            && outcomes.contains(&tidepost_store::users::MembershipChange::LastOwner),
        "{outcomes:?}"
    );
}

/// A tiny SMTP server: accepts every mail and hands its DATA to the test.
async fn smtp_sink() -> (u16, mpsc::UnboundedReceiver<String>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut lines = BufReader::new(read).lines();
                write.write_all(b"220 sink ESMTP\r\n").await.unwrap();
                while let Ok(Some(line)) = lines.next_line().await {
                    let verb = line
                        .split_whitespace()
                        .next()
                        .unwrap_or("")
                        .to_ascii_uppercase();
                    let reply: &[u8] = match verb.as_str() {
                        "EHLO" | "HELO" => b"250 sink\r\n",
                        "DATA" => {
                            write.write_all(b"354 go on\r\n").await.unwrap();
                            let mut data = String::new();
                            while let Ok(Some(l)) = lines.next_line().await {
                                if l == "." {
                                    break;
                                }
                                data.push_str(&l);
                                data.push('\n');
                            }
                            let _ = tx.send(data);
                            b"250 kept\r\n"
                        }
                        "QUIT" => {
                            let _ = write.write_all(b"221 bye\r\n").await;
                            break;
                        }
                        _ => b"250 ok\r\n",
                    };
                    write.write_all(reply).await.unwrap();
                }
            });
        }
    });
    (port, rx)
}

both_backends!(invites_are_mailed_when_smtp_is_configured);

async fn invites_are_mailed_when_smtp_is_configured(backend: Backend) {
    let (port, mut mails) = smtp_sink().await;
    let app = spawn_app_with(
        backend,
        Options {
            env: vec![
                ("TIDEPOST_SMTP_URL", format!("smtp://127.0.0.1:{port}")),
                (
                    "TIDEPOST_SMTP_FROM",
                    "tidepost <noreply@example.com>".into(),
                ),
            ],
            ..Options::default()
        },
    )
    .await;
    let owner = app.signed_in("mailed").await;
    let link = invite(&app, &owner, "friend@example.com", "viewer").await;
    let mail = tokio::time::timeout(std::time::Duration::from_secs(10), mails.recv())
        .await
        .expect("a mail within 10 s")
        .unwrap();
    // Quoted-printable soft breaks joined again.
    let text = mail.replace("=\n", "");
    assert!(text.contains("To: friend@example.com"), "{mail}");
    assert!(
        text.contains("From: tidepost <noreply@example.com>"),
        "{mail}"
    );
    assert!(
        text.contains("You are invited to mailed on tidepost"),
        "{mail}"
    );
    assert!(text.contains(&link), "the mail carries the link: {mail}");
    let html = app.page_text(&owner.client, "/settings/members").await;
    assert!(!html.contains(&link));
    // The page said it was mailed (the flash was read by `invite` already: make another).
    let response = owner
        .client
        .post(app.url("/settings/members/invite"))
        .form(&[
            ("csrf", owner.csrf.as_str()),
            ("email", "second@example.com"),
            ("role", "editor"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let html = app.page_text(&owner.client, "/settings/members").await;
    assert!(
        html.contains("It was also mailed to second@example.com."),
        "{html}"
    );
}
