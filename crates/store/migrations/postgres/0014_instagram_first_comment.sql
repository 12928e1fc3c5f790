-- The first comment of an Instagram target: tidepost posts it under the media right after it
-- is published, as its own step (pending, posted, failed), never twice.

CREATE TABLE instagram_first_comments (
    target_id     TEXT PRIMARY KEY,
    workspace_id  TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    state         TEXT NOT NULL,
    comment_id    TEXT,
    error         TEXT,
    attempts      BIGINT NOT NULL DEFAULT 0,
    updated_at    BIGINT NOT NULL
);
