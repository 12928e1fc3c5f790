-- Instagram publishing: what Meta answered for each published target (media id and
-- permalink, ids kept as text).

CREATE TABLE instagram_media (
    target_id     TEXT PRIMARY KEY,
    workspace_id  TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    media_id      TEXT,
    permalink     TEXT,
    media_type    TEXT NOT NULL,
    created_at    BIGINT NOT NULL
);
