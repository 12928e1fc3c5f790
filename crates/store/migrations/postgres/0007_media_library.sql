-- The media library: what probing found in each stored file, when a post last took it (the
-- clean-up sweep deletes media no post has used for a while), and resumable uploads (tus).

-- MediaInfo as JSON (NULL when the file could not be probed, with the reason beside it); the
-- fields people filter and sort by are columns too.
ALTER TABLE media ADD COLUMN info TEXT;
ALTER TABLE media ADD COLUMN probe_error TEXT;
ALTER TABLE media ADD COLUMN container TEXT;
ALTER TABLE media ADD COLUMN width BIGINT;
ALTER TABLE media ADD COLUMN height BIGINT;
ALTER TABLE media ADD COLUMN duration_ms BIGINT;
ALTER TABLE media ADD COLUMN last_used_at BIGINT;
CREATE INDEX media_workspace_kind ON media (workspace_id, kind, id);
CREATE INDEX media_last_used ON media (last_used_at);

-- A tus upload in progress. `received` is the durable offset: bytes up to it are on disk and
-- synced. One PATCH at a time holds the lease (`lock_token` until `locked_until`), so two
-- requests never write the same file; a crashed writer's lease simply runs out.
CREATE TABLE uploads (
    id             TEXT PRIMARY KEY,
    workspace_id   TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    length         BIGINT NOT NULL,
    received       BIGINT NOT NULL,
    file_name      TEXT,
    content_type   TEXT,
    metadata       TEXT NOT NULL,
    state          TEXT NOT NULL,
    media_id       TEXT,
    error          TEXT,
    lock_token     TEXT,
    locked_until   BIGINT,
    created_by     TEXT,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL
);
CREATE INDEX uploads_workspace ON uploads (workspace_id, id);
CREATE INDEX uploads_expiry ON uploads (expires_at);
