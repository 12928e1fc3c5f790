-- Threads publishing: what Threads answered for each published target (the post's media id
-- and permalink, ids kept as text: they are 17 to 19 digits).

CREATE TABLE threads_media (
    target_id     TEXT PRIMARY KEY,
    workspace_id  TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    media_id      TEXT,
    permalink     TEXT,
    media_type    TEXT NOT NULL,
    created_at    BIGINT NOT NULL
);

CREATE INDEX threads_media_by_media ON threads_media (workspace_id, media_id);
