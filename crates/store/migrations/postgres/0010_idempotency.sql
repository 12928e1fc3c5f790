-- Idempotency-Key: the first answer to a POST, kept per (workspace, key) for 24 hours so that a
-- retried request gets it again instead of acting twice. `state` is `running` while the first
-- request is in flight (a duplicate then gets 409) and `done` once its answer is stored.
CREATE TABLE idempotency_keys (
    workspace_id  TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    idem_key      TEXT NOT NULL,
    state         TEXT NOT NULL,
    fingerprint   TEXT,
    status        INTEGER,
    headers       TEXT,
    body          BYTEA,
    locked_until  BIGINT NOT NULL,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, idem_key)
);

CREATE INDEX idempotency_keys_expires_at ON idempotency_keys (expires_at);
