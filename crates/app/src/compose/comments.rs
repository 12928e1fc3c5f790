//! Comments on a post between the members of its workspace: who wrote it (a person, or an API
//! key for a host application's people), when, and the text. They never reach the platforms.

use tidepost_domain::{new_id, now_ms};
use tidepost_store::post_comments::{self, Comment};
use tidepost_store::{StoreError, api_keys, users};

use crate::App;

/// The longest comment, in characters.
pub const MAX_CHARS: usize = 2000;

/// A comment's text, valid by construction: trimmed, not empty, at most [`MAX_CHARS`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommentText(String);

impl CommentText {
    pub fn parse(text: &str) -> Result<Self, CommentError> {
        let text = text.trim();
        let chars = text.chars().count();
        if chars == 0 {
            return Err(CommentError::Empty);
        }
        if chars > MAX_CHARS {
            return Err(CommentError::TooLong(chars));
        }
        Ok(Self(text.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CommentError {
    #[error("the comment is empty: write something to say")]
    Empty,
    #[error("the comment is {0} characters long; at most {MAX_CHARS}")]
    TooLong(usize),
    #[error("no post {0:?} in this workspace")]
    NotFound(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Who wrote a comment, as a reader sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Author {
    /// `user` or `api_key`.
    pub kind: &'static str,
    pub id: String,
    /// The person's email, or the key's name; `(removed)` once they are gone.
    pub name: String,
}

/// Adds a comment to a post of the workspace, written by `author` (a user id, or
/// `api_key:<id>`, as posts record who made them).
pub async fn add(
    app: &App,
    workspace_id: &str,
    post_id: &str,
    author: &str,
    text: CommentText,
) -> Result<Comment, CommentError> {
    let comment = Comment {
        id: new_id(),
        workspace_id: workspace_id.to_string(),
        post_id: post_id.to_string(),
        author: author.to_string(),
        body: text.0,
        created_at: now_ms(),
    };
    if !post_comments::insert(&app.db, &comment).await? {
        return Err(CommentError::NotFound(post_id.to_string()));
    }
    Ok(comment)
}

/// A post's comments, newest first, a page at a time.
pub async fn list(
    app: &App,
    workspace_id: &str,
    post_id: &str,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<Comment>, CommentError> {
    if tidepost_store::posts::get(&app.db, workspace_id, post_id)
        .await?
        .is_none()
    {
        return Err(CommentError::NotFound(post_id.to_string()));
    }
    Ok(post_comments::list(&app.db, workspace_id, post_id, after, limit).await?)
}

/// Who `author` is (a user id, also written `user:<id>`, or `api_key:<id>` of a key of the
/// workspace): the one reading of who wrote or did something, for comments and a post's
/// history.
pub async fn author(app: &App, workspace_id: &str, author: &str) -> Result<Author, StoreError> {
    Ok(match author.strip_prefix("api_key:") {
        Some(id) => Author {
            kind: "api_key",
            id: id.to_string(),
            name: api_keys::get(&app.db, workspace_id, id)
                .await?
                .map_or_else(|| "(removed)".to_string(), |k| k.name),
        },
        None => {
            let id = author.strip_prefix("user:").unwrap_or(author);
            Author {
                kind: "user",
                id: id.to_string(),
                name: match users::by_id(&app.db, id).await? {
                    Some(user) if users::is_member(&app.db, workspace_id, &user.id).await? => {
                        user.email
                    }
                    Some(_) | None => "(removed)".to_string(),
                },
            }
        }
    })
}

/// [`author`] of each of `names`, each looked up once: a page of comments or of a post's
/// history names the same few people many times.
pub async fn authors(
    app: &App,
    workspace_id: &str,
    names: &[&str],
) -> Result<std::collections::HashMap<String, Author>, StoreError> {
    let mut found = std::collections::HashMap::new();
    for &name in names {
        if !found.contains_key(name) {
            found.insert(name.to_string(), author(app, workspace_id, name).await?);
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_comment_is_said_and_not_too_long() {
        assert_eq!(
            CommentText::parse("  looks good \n").unwrap().as_str(),
            "looks good"
        );
        assert!(matches!(
            CommentText::parse(" \n\t"),
            Err(CommentError::Empty)
        ));
        let long = "é".repeat(MAX_CHARS + 1);
        assert!(matches!(
            CommentText::parse(&long),
            Err(CommentError::TooLong(n)) if n == MAX_CHARS + 1
        ));
        assert!(CommentText::parse(&"é".repeat(MAX_CHARS)).is_ok());
    }
}
