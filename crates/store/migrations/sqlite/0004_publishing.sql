-- Publishing: stored media, posts and their per-account targets, inbound provider webhooks,
-- and the shared rate-limit windows every instance consults.

CREATE TABLE media (
    id             TEXT PRIMARY KEY,
    workspace_id   TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    sha256         TEXT NOT NULL,
    size_bytes     BIGINT NOT NULL,
    content_type   TEXT NOT NULL,
    kind           TEXT NOT NULL,
    storage_path   TEXT NOT NULL,
    original_name  TEXT,
    created_at     BIGINT NOT NULL,
    UNIQUE (workspace_id, sha256)
);

CREATE TABLE posts (
    id               TEXT PRIMARY KEY,
    workspace_id     TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    caption          TEXT NOT NULL,
    kind             TEXT NOT NULL,
    media_id         TEXT REFERENCES media(id),
    media_url        TEXT,
    options          TEXT NOT NULL,
    idempotency_key  TEXT,
    created_by       TEXT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    UNIQUE (workspace_id, idempotency_key)
);
CREATE INDEX posts_workspace_order ON posts (workspace_id, id);

CREATE TABLE post_targets (
    id                     TEXT PRIMARY KEY,
    workspace_id           TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    post_id                TEXT NOT NULL REFERENCES posts(id) ON DELETE CASCADE,
    account_id             TEXT NOT NULL,
    platform               TEXT NOT NULL,
    mode                   TEXT NOT NULL,
    source                 TEXT NOT NULL,
    state                  TEXT NOT NULL,
    bytes_total            BIGINT NOT NULL,
    bytes_sent             BIGINT NOT NULL,
    chunk_size             BIGINT NOT NULL,
    chunks_total           BIGINT NOT NULL,
    chunks_acked           BIGINT NOT NULL,
    init_generation        BIGINT NOT NULL,
    publish_id             TEXT,
    provider_status        TEXT,
    provider_post_ids      TEXT NOT NULL,
    error_code             TEXT,
    error_message          TEXT,
    error_retryable        BIGINT NOT NULL,
    upload_url             TEXT,
    upload_url_expires_at  BIGINT,
    init_at                BIGINT,
    finished_at            BIGINT,
    created_at             BIGINT NOT NULL,
    updated_at             BIGINT NOT NULL
);
CREATE INDEX post_targets_post ON post_targets (post_id);
CREATE INDEX post_targets_publish ON post_targets (platform, publish_id);
CREATE INDEX post_targets_quota ON post_targets (account_id, mode, init_at);

CREATE TABLE inbound_events (
    id             TEXT PRIMARY KEY,
    provider       TEXT NOT NULL,
    dedupe_key     TEXT NOT NULL UNIQUE,
    event_type     TEXT NOT NULL,
    body           TEXT NOT NULL,
    signature_ts   BIGINT,
    received_at    BIGINT NOT NULL,
    applied_at     BIGINT,
    apply_result   TEXT
);

CREATE TABLE rate_locks (
    key  TEXT PRIMARY KEY
);

CREATE TABLE rate_events (
    id   TEXT PRIMARY KEY,
    key  TEXT NOT NULL,
    at   BIGINT NOT NULL
);
CREATE INDEX rate_events_key_at ON rate_events (key, at);
