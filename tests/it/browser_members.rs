//! Members in a real browser (SQLite; 390×844 and 1280×800): the owner invites an editor from
//! `/settings/members` and copies the link shown once; the editor opens it in a second browser,
//! sets a password and lands signed in on the dashboard, can compose, and is told which role
//! the members page needs (no link to it in their navigation). Screenshots under
//! `target/screenshots/members_<width>/`.

use tidepost_store::testing::Backend;

use crate::browser::Browser;
use crate::support::*;

#[tokio::test]
async fn owner_invites_an_editor_who_composes_at_390() {
    owner_invites_an_editor(390, 844).await;
}

#[tokio::test]
async fn owner_invites_an_editor_who_composes_at_1280() {
    owner_invites_an_editor(1280, 800).await;
}

async fn owner_invites_an_editor(width: u32, height: u32) {
    let test = format!("members_{width}");
    let app = spawn_app(Backend::Sqlite).await;
    app.create_user("ada@example.com", "acme").await;

    let owner = Browser::start(width, height).await;
    owner.goto(&app.url("/login")).await;
    owner.fill("#email", "ada@example.com").await;
    owner.fill("#password", PASSWORD).await;
    owner
        .click("form[action='/login'] button[type=submit]")
        .await;
    owner.wait_for_path("the dashboard", |p| p == "/").await;
    owner.goto(&app.url("/settings/members")).await;
    assert!(owner.text_of("#members").await.contains("ada@example.com"));
    owner.fill("#invite-email", "Eddie@Example.com").await;
    owner.click("#invite-role option[value='editor']").await;
    owner.click("#invite button[type=submit]").await;
    owner
        .wait_for_path("the members page", |p| p == "/settings/members")
        .await;
    let notice = owner.text_of("#invite-created").await;
    assert!(
        notice.contains("eddie@example.com is invited as editor"),
        "{notice}"
    );
    let link = owner.text_of("#invite-link").await;
    assert!(link.contains("/invite/"), "{link}");
    assert!(
        owner
            .text_of("#invites")
            .await
            .contains("eddie@example.com")
    );
    owner.assert_layout_fits("/settings/members").await;
    owner.screenshot(&test, "01-invited").await;
    // One browser at a time in this process (`browser.rs`): the owner's closes first.
    owner.close().await;

    // The editor, in a browser of their own.
    let editor = Browser::start(width, height).await;
    // The link names the configured public URL; the test's server has its own port.
    let path = &link[link.find("/invite/").unwrap()..];
    editor.goto(&app.url(path)).await;
    assert!(editor.text_of("h1").await.contains("Join acme"));
    assert!(editor.text_of("main").await.contains("as an editor"));
    editor.assert_layout_fits("/invite/…").await;
    editor.screenshot(&test, "02-invite-page").await;
    editor.fill("#password", "a long enough password").await;
    editor.click("#join").await;
    editor.wait_for_path("the dashboard", |p| p == "/").await;
    let nav = editor.text_of("nav").await;
    assert!(nav.contains("Compose"), "{nav}");
    assert!(
        !nav.contains("Members"),
        "no link the editor cannot open: {nav}"
    );
    editor.goto(&app.url("/compose")).await;
    assert!(editor.text_of("#caption").await.is_empty());
    editor.assert_layout_fits("/compose").await;
    editor.screenshot(&test, "03-editor-composes").await;
    editor.goto(&app.url("/settings/members")).await;
    let refusal = editor.text_of("main").await;
    assert!(
        refusal.contains("You need the admin role") && refusal.contains("you are an editor"),
        "{refusal}"
    );
    editor
        .assert_layout_fits("/settings/members (refused)")
        .await;
    editor.screenshot(&test, "04-editor-refused").await;

    editor.close().await;

    // The editor is a member, the invite no longer pending.
    let ws = tidepost_store::workspaces::by_slug(&app.db, "acme")
        .await
        .unwrap()
        .unwrap();
    let members = tidepost_store::users::members(&app.db, &ws.id)
        .await
        .unwrap();
    assert!(
        members
            .iter()
            .any(|m| m.email == "eddie@example.com" && m.role == tidepost_domain::Role::Editor),
        "{members:?}"
    );
    assert!(
        tidepost_store::invites::pending(&app.db, &ws.id, tidepost_domain::now_ms())
            .await
            .unwrap()
            .is_empty()
    );
}
