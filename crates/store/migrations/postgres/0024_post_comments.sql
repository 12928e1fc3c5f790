-- Comments on a post between the members of its workspace: who (a user, or an API key for a
-- host application's people), when, the text. They go with the post.

CREATE TABLE post_comments (
    id            TEXT PRIMARY KEY,
    workspace_id  TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    post_id       TEXT NOT NULL REFERENCES posts(id) ON DELETE CASCADE,
    author        TEXT NOT NULL,
    body          TEXT NOT NULL,
    created_at    BIGINT NOT NULL
);
CREATE INDEX post_comments_of_post ON post_comments (workspace_id, post_id, id);
