-- Editing a post that has not been sent, and its history.
--
-- `version` on posts and post_targets grows with every edit. An edit writes each target at the
-- version it read, only while the target has not started (queued or scheduled); a publish job
-- claims a target (scheduled/queued -> uploading) only at the version it read its options at.
-- Of an edit and a claim racing on one target exactly one wins, so nothing is ever sent with
-- half an edit. The post's version is its ETag (`If-Match` on PATCH).
--
-- `post_history`: who changed what and when. `actor` is `user:<id>` or `api_key:<id>` (null:
-- tidepost itself); `action` is created, edited, moved or cancelled; `changes` is a JSON
-- array of {field, target, before, after}.

ALTER TABLE posts ADD COLUMN version BIGINT NOT NULL DEFAULT 1;
ALTER TABLE post_targets ADD COLUMN version BIGINT NOT NULL DEFAULT 1;

CREATE TABLE post_history (
    id            TEXT PRIMARY KEY,
    workspace_id  TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    post_id       TEXT NOT NULL REFERENCES posts(id) ON DELETE CASCADE,
    at            BIGINT NOT NULL,
    actor         TEXT,
    action        TEXT NOT NULL,
    changes       TEXT NOT NULL
);
CREATE INDEX post_history_post ON post_history (workspace_id, post_id, id);
