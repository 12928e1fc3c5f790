//! Users and their memberships in workspaces. Passwords arrive here already hashed (argon2id,
//! by the app layer); emails are stored lower-cased.

use serde::Serialize;
use sqlx::Row;
use tidepost_domain::{new_id, now_ms};

use crate::error::conflict_as;
use crate::workspaces::Workspace;
use crate::{Db, Result};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct User {
    pub id: String,
    pub email: String,
    pub password_hash: String,
    pub created_at: i64,
    /// The IANA zone the person chose to see times in; `None` until they choose one.
    pub time_zone: Option<String>,
}

pub use tidepost_domain::Role;

/// A role as stored (its name): an unknown name is a decode error naming it, never a default.
pub(crate) fn decode_role(name: &str) -> Result<Role> {
    name.parse::<Role>()
        .map_err(|e| crate::StoreError::Sqlx(sqlx::Error::Decode(Box::new(e))))
}

/// A member of a workspace, as the members page lists them.
#[derive(Debug, Clone, Serialize)]
pub struct Member {
    pub user_id: String,
    pub email: String,
    pub role: Role,
    pub joined_at: i64,
}

pub async fn create(db: &Db, email: &str, password_hash: &str) -> Result<User> {
    let user = User {
        id: new_id(),
        email: email.trim().to_lowercase(),
        password_hash: password_hash.to_string(),
        created_at: now_ms(),
        time_zone: None,
    };
    sqlx::query("INSERT INTO users (id, email, password_hash, created_at) VALUES ($1, $2, $3, $4)")
        .bind(&user.id)
        .bind(&user.email)
        .bind(&user.password_hash)
        .bind(user.created_at)
        .execute(db.pool())
        .await
        .map_err(conflict_as("a user with this email"))?;
    Ok(user)
}

/// Creates the first user, owner of the workspace `slug` (created if needed), only if no user
/// exists yet: `None` when one does. The check and the inserts are one transaction that holds
/// off every other creation of a user until it ends (SQLite: `BEGIN IMMEDIATE`; PostgreSQL: a
/// `SHARE ROW EXCLUSIVE` lock on `users`, which waits for and blocks any concurrent insert), so
/// of many concurrent first-run requests, and of a first-run request racing
/// `tidepost user create`, exactly one user comes out of the first run.
pub async fn create_first(
    db: &Db,
    email: &str,
    password_hash: &str,
    slug: &str,
) -> Result<Option<(User, Workspace)>> {
    let mut tx = db.begin_write().await?;
    if db.dialect() == crate::Dialect::Postgres {
        sqlx::query("LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE")
            .execute(&mut *tx)
            .await?;
    }
    let existing: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
        .fetch_one(&mut *tx)
        .await?;
    if existing > 0 {
        tx.rollback().await?;
        return Ok(None);
    }
    let now = now_ms();
    let found: Option<Workspace> =
        sqlx::query_as("SELECT id, slug, name, created_at FROM workspaces WHERE slug = $1")
            .bind(slug)
            .fetch_optional(&mut *tx)
            .await?;
    let workspace = match found {
        Some(ws) => ws,
        None => {
            let ws = Workspace {
                id: new_id(),
                slug: slug.to_string(),
                name: slug.to_string(),
                created_at: now,
            };
            sqlx::query(
                "INSERT INTO workspaces (id, slug, name, created_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(&ws.id)
            .bind(&ws.slug)
            .bind(&ws.name)
            .bind(ws.created_at)
            .execute(&mut *tx)
            .await
            .map_err(conflict_as("a workspace with this slug"))?;
            ws
        }
    };
    let user = User {
        id: new_id(),
        email: email.trim().to_lowercase(),
        password_hash: password_hash.to_string(),
        created_at: now,
        time_zone: None,
    };
    sqlx::query("INSERT INTO users (id, email, password_hash, created_at) VALUES ($1, $2, $3, $4)")
        .bind(&user.id)
        .bind(&user.email)
        .bind(&user.password_hash)
        .bind(user.created_at)
        .execute(&mut *tx)
        .await
        .map_err(conflict_as("a user with this email"))?;
    sqlx::query(
        "INSERT INTO memberships (workspace_id, user_id, role, created_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(&workspace.id)
    .bind(&user.id)
    .bind(Role::Owner.as_str())
    .bind(now)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Some((user, workspace)))
}

pub async fn by_email(db: &Db, email: &str) -> Result<Option<User>> {
    Ok(sqlx::query_as(
        "SELECT id, email, password_hash, created_at, time_zone FROM users WHERE email = $1",
    )
    .bind(email.trim().to_lowercase())
    .fetch_optional(db.pool())
    .await?)
}

pub async fn by_id(db: &Db, id: &str) -> Result<Option<User>> {
    Ok(sqlx::query_as(
        "SELECT id, email, password_hash, created_at, time_zone FROM users WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(db.pool())
    .await?)
}

pub async fn set_password_hash(db: &Db, user_id: &str, password_hash: &str) -> Result<()> {
    sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
        .bind(password_hash)
        .bind(user_id)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// Keeps the zone the person sees times in (an IANA name the caller has checked), or forgets
/// it (`None`: the browser's zone again).
pub async fn set_time_zone(db: &Db, user_id: &str, time_zone: Option<&str>) -> Result<()> {
    sqlx::query("UPDATE users SET time_zone = $1 WHERE id = $2")
        .bind(time_zone)
        .bind(user_id)
        .execute(db.pool())
        .await?;
    Ok(())
}

pub async fn count(db: &Db) -> Result<i64> {
    Ok(sqlx::query_scalar("SELECT COUNT(*) FROM users")
        .fetch_one(db.pool())
        .await?)
}

/// Adds the user to the workspace (no-op when already a member).
pub async fn add_membership(db: &Db, workspace_id: &str, user_id: &str, role: Role) -> Result<()> {
    sqlx::query(
        "INSERT INTO memberships (workspace_id, user_id, role, created_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (workspace_id, user_id) DO NOTHING",
    )
    .bind(workspace_id)
    .bind(user_id)
    .bind(role.as_str())
    .bind(now_ms())
    .execute(db.pool())
    .await?;
    Ok(())
}

/// The workspaces the user belongs to, oldest membership first.
pub async fn workspaces_of(db: &Db, user_id: &str) -> Result<Vec<Workspace>> {
    Ok(sqlx::query_as(
        "SELECT w.id, w.slug, w.name, w.created_at FROM workspaces w \
         JOIN memberships m ON m.workspace_id = w.id WHERE m.user_id = $1 ORDER BY m.created_at, w.slug",
    )
    .bind(user_id)
    .fetch_all(db.pool())
    .await?)
}

pub async fn is_member(db: &Db, workspace_id: &str, user_id: &str) -> Result<bool> {
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM memberships WHERE workspace_id = $1 AND user_id = $2",
    )
    .bind(workspace_id)
    .bind(user_id)
    .fetch_one(db.pool())
    .await?;
    Ok(n > 0)
}

/// The user's role in the workspace; `None` when they are not a member.
pub async fn role_of(db: &Db, workspace_id: &str, user_id: &str) -> Result<Option<Role>> {
    let name: Option<String> =
        sqlx::query_scalar("SELECT role FROM memberships WHERE workspace_id = $1 AND user_id = $2")
            .bind(workspace_id)
            .bind(user_id)
            .fetch_optional(db.pool())
            .await?;
    name.as_deref().map(decode_role).transpose()
}

/// The workspace's members, owners first, then by email.
pub async fn members(db: &Db, workspace_id: &str) -> Result<Vec<Member>> {
    let rows = sqlx::query(
        "SELECT m.user_id, u.email, m.role, m.created_at FROM memberships m \
         JOIN users u ON u.id = m.user_id WHERE m.workspace_id = $1 ORDER BY u.email",
    )
    .bind(workspace_id)
    .fetch_all(db.pool())
    .await?;
    let mut members = rows
        .iter()
        .map(|row| {
            Ok(Member {
                user_id: row.try_get("user_id")?,
                email: row.try_get("email")?,
                role: decode_role(&row.try_get::<String, _>("role")?)?,
                joined_at: row.try_get("created_at")?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    members.sort_by(|a, b| b.role.cmp(&a.role).then_with(|| a.email.cmp(&b.email)));
    Ok(members)
}

/// What became of a change to a membership.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MembershipChange {
    Done,
    /// The user is not a member of the workspace.
    NotMember,
    /// The change would leave the workspace without an owner.
    LastOwner,
}

/// Locks the workspace's owner rows and counts them, in `tx`: two owners demoting each other
/// at once cannot both see the other still there (PostgreSQL: `FOR UPDATE`, which waits for
/// the other's change and reads the rows again; SQLite: the transaction holds the write lock).
async fn owners_locked(
    db: &Db,
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    workspace_id: &str,
) -> Result<usize> {
    let sql = match db.dialect() {
        crate::Dialect::Postgres => {
            "SELECT user_id FROM memberships WHERE workspace_id = $1 AND role = 'owner' FOR UPDATE"
        }
        crate::Dialect::Sqlite => {
            "SELECT user_id FROM memberships WHERE workspace_id = $1 AND role = 'owner'"
        }
    };
    let owners: Vec<String> = sqlx::query_scalar(sql)
        .bind(workspace_id)
        .fetch_all(&mut **tx)
        .await?;
    Ok(owners.len())
}

/// The member's role, read in `tx`.
async fn role_in(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    workspace_id: &str,
    user_id: &str,
) -> Result<Option<Role>> {
    let name: Option<String> =
        sqlx::query_scalar("SELECT role FROM memberships WHERE workspace_id = $1 AND user_id = $2")
            .bind(workspace_id)
            .bind(user_id)
            .fetch_optional(&mut **tx)
            .await?;
    name.as_deref().map(decode_role).transpose()
}

/// Gives the member `role`, unless that leaves the workspace without an owner.
pub async fn set_role(
    db: &Db,
    workspace_id: &str,
    user_id: &str,
    role: Role,
) -> Result<MembershipChange> {
    let mut tx = db.begin_write().await?;
    let owners = owners_locked(db, &mut tx, workspace_id).await?;
    let Some(current) = role_in(&mut tx, workspace_id, user_id).await? else {
        return Ok(MembershipChange::NotMember);
    };
    if current == Role::Owner && role != Role::Owner && owners <= 1 {
        return Ok(MembershipChange::LastOwner);
    }
    sqlx::query("UPDATE memberships SET role = $1 WHERE workspace_id = $2 AND user_id = $3")
        .bind(role.as_str())
        .bind(workspace_id)
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(MembershipChange::Done)
}

/// Removes the member from the workspace, unless they are its last owner: their sessions in
/// it end and the API keys they made for it are revoked, in the same transaction.
pub async fn remove_member(
    db: &Db,
    workspace_id: &str,
    user_id: &str,
    now: i64,
) -> Result<MembershipChange> {
    let mut tx = db.begin_write().await?;
    let owners = owners_locked(db, &mut tx, workspace_id).await?;
    let Some(current) = role_in(&mut tx, workspace_id, user_id).await? else {
        return Ok(MembershipChange::NotMember);
    };
    if current == Role::Owner && owners <= 1 {
        return Ok(MembershipChange::LastOwner);
    }
    sqlx::query("DELETE FROM memberships WHERE workspace_id = $1 AND user_id = $2")
        .bind(workspace_id)
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM sessions WHERE workspace_id = $1 AND user_id = $2")
        .bind(workspace_id)
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "UPDATE api_keys SET revoked_at = $1 WHERE workspace_id = $2 AND created_by = $3 AND revoked_at IS NULL",
    )
    .bind(now)
    .bind(workspace_id)
    .bind(user_id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(MembershipChange::Done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::both_backends;

    both_backends!(
        the_first_user_is_created_once_however_many_race,
        |db: Db| async move {
            let mut tasks = Vec::new();
            for i in 0..20 {
                let db = db.clone();
                tasks.push(tokio::spawn(async move {
                    create_first(&db, &format!("first{i}@example.com"), "hash", "acme")
                        .await
                        .unwrap()
                }));
            }
            let mut created = Vec::new();
            for task in tasks {
                if let Some((user, ws)) = task.await.unwrap() {
                    created.push((user, ws));
                }
            }
            assert_eq!(created.len(), 1, "exactly one first user");
            assert_eq!(count(&db).await.unwrap(), 1);
            let (user, ws) = &created[0];
            assert!(is_member(&db, &ws.id, &user.id).await.unwrap());
            // Once any user exists, by whatever way, there is no first user any more.
            assert!(
                create_first(&db, "late@example.com", "hash", "acme")
                    .await
                    .unwrap()
                    .is_none()
            );
        }
    );

    both_backends!(no_first_user_once_another_exists, |db: Db| async move {
        create(&db, "cli@example.com", "hash").await.unwrap();
        assert!(
            create_first(&db, "web@example.com", "hash", "acme")
                .await
                .unwrap()
                .is_none()
        );
        assert!(by_email(&db, "web@example.com").await.unwrap().is_none());
        // Nothing half-made either: the workspace was not created.
        assert!(
            crate::workspaces::by_slug(&db, "acme")
                .await
                .unwrap()
                .is_none()
        );
    });
}
