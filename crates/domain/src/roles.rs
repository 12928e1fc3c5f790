//! Who may do what in a workspace: a member's [`Role`] and the [`Permission`]s routes ask for.
//!
//! The rule lives here and only here: [`Permission::least_role`] names the lowest role that has
//! a permission, and the roles are ordered (viewer < editor < admin < owner), so a role has
//! every permission of the roles below it. Adding a permission (approvals will add one) is a
//! variant and its arm in `least_role` and `describe`; the compiler asks for both.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A member's role in a workspace, lowest first (the derived order is the rank).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads everything in the workspace, changes nothing.
    Viewer,
    /// Creates and edits posts, drafts, media and CRM notes; connects nothing.
    Editor,
    /// Everything an editor does, and manages accounts, webhooks, jobs, API keys, settings and
    /// members (except owners).
    Admin,
    /// Everything; the only role that can make or unmake an owner.
    Owner,
}

impl Role {
    /// Every role, lowest first.
    pub const ALL: [Role; 4] = [Role::Viewer, Role::Editor, Role::Admin, Role::Owner];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Editor => "editor",
            Role::Admin => "admin",
            Role::Owner => "owner",
        }
    }

    /// The role with an article, as a sentence names it ("an editor").
    pub fn with_article(self) -> &'static str {
        match self {
            Role::Viewer => "a viewer",
            Role::Editor => "an editor",
            Role::Admin => "an admin",
            Role::Owner => "an owner",
        }
    }

    pub fn allows(self, permission: Permission) -> bool {
        self >= permission.least_role()
    }

    /// Whether a member with this role may give `to` to someone, or take `from` away from
    /// them: admins manage every role but the owner's, owners every role.
    pub fn may_manage(self, other: Role) -> bool {
        self.allows(Permission::ManageMembers) && (self == Role::Owner || other != Role::Owner)
    }

    /// The lower of two roles (an API key never does more than the member who made it).
    pub fn capped_by(self, cap: Role) -> Role {
        self.min(cap)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not a role.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a role: use owner, admin, editor or viewer")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "viewer" => Ok(Role::Viewer),
            "editor" => Ok(Role::Editor),
            "admin" => Ok(Role::Admin),
            "owner" => Ok(Role::Owner),
            _ => Err(UnknownRole(s.to_string())),
        }
    }
}

#[cfg(feature = "sqlx")]
impl<DB: sqlx::Database> sqlx::Type<DB> for Role
where
    String: sqlx::Type<DB>,
{
    fn type_info() -> DB::TypeInfo {
        <String as sqlx::Type<DB>>::type_info()
    }

    fn compatible(ty: &DB::TypeInfo) -> bool {
        <String as sqlx::Type<DB>>::compatible(ty)
    }
}

/// A `role` column: an unknown name is an error naming it, never a default.
#[cfg(feature = "sqlx")]
impl<'r, DB: sqlx::Database> sqlx::Decode<'r, DB> for Role
where
    String: sqlx::Decode<'r, DB>,
{
    fn decode(value: DB::ValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
        let text = <String as sqlx::Decode<'r, DB>>::decode(value)?;
        Ok(text.parse::<Role>()?)
    }
}

/// What a route needs. Every route of the server declares one (or that it is public).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    /// Read the workspace: posts, drafts, accounts, media, CRM, jobs.
    Read,
    /// Create, edit, schedule, cancel and retry posts and drafts.
    EditPosts,
    /// Upload and delete media in the library.
    EditMedia,
    /// Keep the CRM: creators and their notes, replies to comments.
    EditCrm,
    /// Connect, reconnect and disconnect accounts; connect links, widget links, allowed origins.
    ManageAccounts,
    /// Outbound webhook endpoints and their deliveries.
    ManageWebhooks,
    /// Retry and cancel background jobs, run due jobs (with an API key's `worker` scope).
    ManageJobs,
    /// API keys.
    ManageApiKeys,
    /// Members and invites.
    ManageMembers,
}

impl Permission {
    /// The lowest role that has this permission.
    pub fn least_role(self) -> Role {
        match self {
            Permission::Read => Role::Viewer,
            Permission::EditPosts | Permission::EditMedia | Permission::EditCrm => Role::Editor,
            Permission::ManageAccounts
            | Permission::ManageWebhooks
            | Permission::ManageJobs
            | Permission::ManageApiKeys
            | Permission::ManageMembers => Role::Admin,
        }
    }

    /// What it lets one do, as a sentence ends ("… needed to manage members").
    pub fn describe(self) -> &'static str {
        match self {
            Permission::Read => "read this workspace",
            Permission::EditPosts => "create and edit posts",
            Permission::EditMedia => "change the media library",
            Permission::EditCrm => "change creators and answer comments",
            Permission::ManageAccounts => "connect and disconnect accounts",
            Permission::ManageWebhooks => "manage webhooks",
            Permission::ManageJobs => "manage background jobs",
            Permission::ManageApiKeys => "manage API keys",
            Permission::ManageMembers => "manage members and invites",
        }
    }

    /// Every permission (for the documentation's table and the tests).
    pub const ALL: [Permission; 9] = [
        Permission::Read,
        Permission::EditPosts,
        Permission::EditMedia,
        Permission::EditCrm,
        Permission::ManageAccounts,
        Permission::ManageWebhooks,
        Permission::ManageJobs,
        Permission::ManageApiKeys,
        Permission::ManageMembers,
    ];
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered_and_parse() {
        assert!(Role::Viewer < Role::Editor && Role::Editor < Role::Admin);
        assert!(Role::Admin < Role::Owner);
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>().unwrap(), role);
        }
        assert_eq!(" Editor ".parse::<Role>().unwrap(), Role::Editor);
        assert_eq!(
            "member".parse::<Role>().unwrap_err().to_string(),
            "\"member\" is not a role: use owner, admin, editor or viewer"
        );
    }

    #[test]
    fn a_role_has_the_permissions_of_the_roles_below() {
        for p in Permission::ALL {
            for role in Role::ALL {
                assert_eq!(role.allows(p), role >= p.least_role(), "{role} {p:?}");
            }
            assert!(Role::Owner.allows(p));
        }
        assert!(Role::Viewer.allows(Permission::Read));
        assert!(!Role::Viewer.allows(Permission::EditPosts));
        assert!(Role::Editor.allows(Permission::EditPosts));
        assert!(!Role::Editor.allows(Permission::ManageAccounts));
        assert!(!Role::Editor.allows(Permission::ManageWebhooks));
        assert!(Role::Admin.allows(Permission::ManageMembers));
    }

    #[test]
    fn only_owners_manage_owners() {
        assert!(Role::Owner.may_manage(Role::Owner));
        assert!(Role::Admin.may_manage(Role::Admin));
        assert!(!Role::Admin.may_manage(Role::Owner));
        assert!(!Role::Editor.may_manage(Role::Viewer));
        assert_eq!(Role::Owner.capped_by(Role::Editor), Role::Editor);
        assert_eq!(Role::Viewer.capped_by(Role::Admin), Role::Viewer);
    }
}
