-- Drafts: a post saved without being sent or scheduled. `body` is the post as saved (JSON:
-- caption, media, targets with their options, the wished time); it becomes a post only when
-- published, in the transaction that stores the post, which sets `post_id` (a draft is
-- published once). `version` grows with every change, so a change and a publish racing on one
-- draft cannot both win.

CREATE TABLE drafts (
    id            TEXT PRIMARY KEY,
    workspace_id  TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    body          TEXT NOT NULL,
    created_by    TEXT,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    version       BIGINT NOT NULL,
    post_id       TEXT,
    published_at  BIGINT
);
CREATE INDEX drafts_open ON drafts (workspace_id, id) WHERE post_id IS NULL;
