//! Members of a workspace and invites to join one.
//!
//! An invite is a one-time link (`/invite/<token>`, 32 random bytes; only their SHA-256 is
//! stored) that expires after [`INVITE_TTL_MS`]. It is shown to copy and, when SMTP is
//! configured, mailed. Accepting it as a new person sets a password and creates the user with
//! the invited email; a signed-in user with that email joins. Who may invite, change or remove
//! whom is [`Role::may_manage`]; the last owner can neither leave nor be demoted.

use tidepost_domain::{Role, new_id, now_ms};
use tidepost_store::invites::{self, Invite, InviteState, Joiner};
use tidepost_store::users::{self, MembershipChange, User};
use tidepost_store::workspaces::{self, Workspace};
use tidepost_store::{Db, StoreError};

use crate::access::{self, AccessError};
use crate::config::Config;
use crate::mail::{self, Delivery};

/// How long an invite link stays good: 7 days.
pub const INVITE_TTL_MS: i64 = 7 * 24 * 3_600_000;

/// Who acts on the members: a signed-in member with their role, or the operator on the
/// command line (who may do anything).
#[derive(Debug, Clone, Copy)]
pub enum Actor<'a> {
    Member { user_id: &'a str, role: Role },
    Operator,
}

impl Actor<'_> {
    fn may_manage(&self, role: Role) -> bool {
        match self {
            Actor::Member { role: mine, .. } => mine.may_manage(role),
            Actor::Operator => true,
        }
    }

    fn user_id(&self) -> Option<&str> {
        match self {
            Actor::Member { user_id, .. } => Some(user_id),
            Actor::Operator => None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MemberError {
    #[error("only an owner can {0}")]
    OwnersOnly(&'static str),
    #[error("your role cannot {0}: it needs the admin role or higher")]
    NotAllowed(&'static str),
    #[error("{0} is already a member of this workspace")]
    AlreadyMember(String),
    #[error("no such member in this workspace")]
    NotMember,
    #[error(
        "this is the workspace's last owner: make another member owner first, so the workspace always has one"
    )]
    LastOwner,
    #[error("no such pending invite in this workspace")]
    NoSuchInvite,
    #[error(transparent)]
    Access(#[from] AccessError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why an invite link cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InviteRefusal {
    #[error("this invite link is not known: check that it was copied whole, or ask for a new one")]
    Unknown,
    #[error("this invite link has expired: ask whoever invited you for a new one")]
    Expired,
    #[error("this invite was withdrawn: ask whoever invited you for a new one")]
    Revoked,
    #[error("this invite link was already used: sign in, or ask for a new one")]
    Used,
}

/// A fresh invite: `link` holds the token, shown once and never stored.
#[derive(Debug)]
pub struct NewInvite {
    pub invite: Invite,
    pub link: String,
    pub mail: Delivery,
}

/// Invites `email` to `workspace` with `role`: an actor may invite to the roles they manage.
pub async fn invite(
    db: &Db,
    config: &Config,
    workspace: &Workspace,
    actor: Actor<'_>,
    email: &str,
    role: Role,
) -> Result<NewInvite, MemberError> {
    if !actor.may_manage(role) {
        return Err(match role {
            Role::Owner => MemberError::OwnersOnly("invite an owner"),
            Role::Admin | Role::Editor | Role::Viewer => MemberError::NotAllowed("invite members"),
        });
    }
    let email = access::validate_email(email)?;
    if let Some(user) = users::by_email(db, &email).await?
        && users::role_of(db, &workspace.id, &user.id).await?.is_some()
    {
        return Err(MemberError::AlreadyMember(email));
    }
    let token = access::random_token();
    let now = now_ms();
    let invite = Invite {
        id: new_id(),
        workspace_id: workspace.id.clone(),
        email,
        role,
        token_hash: access::sha256_hex(&token),
        invited_by: actor.user_id().map(str::to_string),
        created_at: now,
        expires_at: now + INVITE_TTL_MS,
        accepted_at: None,
        accepted_by: None,
        revoked_at: None,
    };
    invites::insert(db, &invite).await?;
    let link = invite_link(config, &token);
    let mail = mail::send(
        config.mail.as_ref(),
        mail::Mail {
            to: &invite.email,
            subject: &format!("You are invited to {} on tidepost", workspace.name),
            body: format!(
                "You are invited to join the workspace {} on tidepost as {}.\n\n\
                 Open this link to accept (it works once, until {}):\n\n{link}\n\n\
                 If you did not expect this, ignore this mail.\n",
                workspace.name,
                role.with_article(),
                tidepost_domain::time::rfc3339(invite.expires_at),
            ),
        },
    )
    .await;
    tracing::info!(invite = %invite.id, workspace = %workspace.slug, role = %role, mail = ?mail, "invite created");
    Ok(NewInvite { invite, link, mail })
}

/// The link of an invite token.
pub fn invite_link(config: &Config, token: &str) -> String {
    format!(
        "{}/invite/{token}",
        config.public_url.as_str().trim_end_matches('/')
    )
}

/// The invite behind a link, if it can still be accepted, with its workspace.
pub async fn open(
    db: &Db,
    token: &str,
) -> Result<Result<(Invite, Workspace), InviteRefusal>, StoreError> {
    // A token is 43 base64url characters; anything else is not one of ours.
    if token.len() != 43
        || !token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Ok(Err(InviteRefusal::Unknown));
    }
    let Some(invite) = invites::by_token_hash(db, &access::sha256_hex(token)).await? else {
        return Ok(Err(InviteRefusal::Unknown));
    };
    match invite.state(now_ms()) {
        InviteState::Pending => {}
        InviteState::Accepted => return Ok(Err(InviteRefusal::Used)),
        InviteState::Revoked => return Ok(Err(InviteRefusal::Revoked)),
        InviteState::Expired => return Ok(Err(InviteRefusal::Expired)),
    }
    let Some(workspace) = workspaces::by_id(db, &invite.workspace_id).await? else {
        return Ok(Err(InviteRefusal::Unknown));
    };
    Ok(Ok((invite, workspace)))
}

/// Why accepting did not join.
#[derive(Debug, thiserror::Error)]
pub enum AcceptError {
    #[error(transparent)]
    Refused(#[from] InviteRefusal),
    /// A person with an account must sign in as that account to accept.
    #[error("{0} already has an account: sign in with it to accept this invite")]
    SignInFirst(String),
    /// The signed-in user is someone else than the invited email.
    #[error(
        "this invite is for {invited}, and you are signed in as {signed_in}: sign out and accept it as {invited}"
    )]
    OtherUser { invited: String, signed_in: String },
    #[error(transparent)]
    Access(#[from] AccessError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What an accepted invite led to.
#[derive(Debug)]
pub struct Joined {
    pub user: User,
    pub workspace: Workspace,
    pub role: Role,
}

/// A new person accepts: they become a user with the invited email and `password`.
pub async fn accept_new(db: &Db, token: &str, password: &str) -> Result<Joined, AcceptError> {
    let (invite, workspace) = open(db, token).await??;
    if users::by_email(db, &invite.email).await?.is_some() {
        return Err(AcceptError::SignInFirst(invite.email));
    }
    let user = access::new_user(&invite.email, password).await?;
    match invites::accept(db, &invite, Joiner::New(&user), now_ms()).await {
        Ok(true) => {}
        Ok(false) => return Err(refusal_now(db, token).await?.into()),
        // The email got an account in the meantime.
        Err(e) if e.is_unique_violation() => return Err(AcceptError::SignInFirst(invite.email)),
        Err(e) => return Err(e.into()),
    }
    Ok(Joined {
        user,
        workspace,
        role: invite.role,
    })
}

/// A signed-in user accepts (their email must be the invited one).
pub async fn accept_existing(db: &Db, token: &str, user: &User) -> Result<Joined, AcceptError> {
    let (invite, workspace) = open(db, token).await??;
    if invite.email != user.email {
        return Err(AcceptError::OtherUser {
            invited: invite.email,
            signed_in: user.email.clone(),
        });
    }
    if !invites::accept(db, &invite, Joiner::Existing(&user.id), now_ms()).await? {
        return Err(refusal_now(db, token).await?.into());
    }
    let role = users::role_of(db, &workspace.id, &user.id)
        .await?
        .unwrap_or(invite.role);
    Ok(Joined {
        user: user.clone(),
        workspace,
        role,
    })
}

/// Why a link that was good a moment ago is not any more (another acceptance won, it was
/// revoked, or it expired in between).
async fn refusal_now(db: &Db, token: &str) -> Result<InviteRefusal, StoreError> {
    Ok(match open(db, token).await? {
        Err(refusal) => refusal,
        Ok(_) => InviteRefusal::Used,
    })
}

/// Withdraws a pending invite.
pub async fn revoke_invite(
    db: &Db,
    workspace_id: &str,
    actor: Actor<'_>,
    invite_id: &str,
) -> Result<(), MemberError> {
    let invite = invites::get(db, workspace_id, invite_id)
        .await?
        .ok_or(MemberError::NoSuchInvite)?;
    if !actor.may_manage(invite.role) {
        return Err(MemberError::OwnersOnly("withdraw an invite to be an owner"));
    }
    if invites::revoke(db, workspace_id, invite_id, now_ms()).await? {
        Ok(())
    } else {
        Err(MemberError::NoSuchInvite)
    }
}

/// Gives a member another role. Admins manage every role but the owner's.
pub async fn change_role(
    db: &Db,
    workspace_id: &str,
    actor: Actor<'_>,
    user_id: &str,
    role: Role,
) -> Result<(), MemberError> {
    let current = users::role_of(db, workspace_id, user_id)
        .await?
        .ok_or(MemberError::NotMember)?;
    if !actor.may_manage(current) || !actor.may_manage(role) {
        return Err(MemberError::OwnersOnly("make or unmake an owner"));
    }
    match users::set_role(db, workspace_id, user_id, role).await? {
        MembershipChange::Done => Ok(()),
        MembershipChange::NotMember => Err(MemberError::NotMember),
        MembershipChange::LastOwner => Err(MemberError::LastOwner),
    }
}

/// Removes a member: their sessions in the workspace end and their API keys are revoked.
pub async fn remove(
    db: &Db,
    workspace_id: &str,
    actor: Actor<'_>,
    user_id: &str,
) -> Result<(), MemberError> {
    let current = users::role_of(db, workspace_id, user_id)
        .await?
        .ok_or(MemberError::NotMember)?;
    if !actor.may_manage(current) {
        return Err(MemberError::OwnersOnly("remove an owner"));
    }
    match users::remove_member(db, workspace_id, user_id, now_ms()).await? {
        MembershipChange::Done => Ok(()),
        MembershipChange::NotMember => Err(MemberError::NotMember),
        MembershipChange::LastOwner => Err(MemberError::LastOwner),
    }
}
