-- Connected provider accounts, pending OAuth authorizations, and the workspace event log.

CREATE TABLE oauth_states (
    state_hash       TEXT PRIMARY KEY,
    workspace_id     TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    user_id          TEXT,
    flow             TEXT NOT NULL,
    pkce_verifier    TEXT,
    return_to        TEXT,
    created_at       BIGINT NOT NULL,
    expires_at       BIGINT NOT NULL,
    used_at          BIGINT
);
CREATE INDEX oauth_states_expiry ON oauth_states (expires_at);

CREATE TABLE accounts (
    id                   TEXT PRIMARY KEY,
    workspace_id         TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    platform             TEXT NOT NULL,
    provider_user_id     TEXT NOT NULL,
    display_name         TEXT NOT NULL,
    username             TEXT,
    avatar_url           TEXT,
    status               TEXT NOT NULL,
    status_reason        TEXT,
    scopes               TEXT NOT NULL,
    access_token         TEXT NOT NULL,
    refresh_token        TEXT,
    access_expires_at    BIGINT,
    refresh_expires_at   BIGINT,
    last_refreshed_at    BIGINT,
    refresh_lease_until  BIGINT,
    refresh_lease_by     TEXT,
    details              TEXT NOT NULL,
    created_at           BIGINT NOT NULL,
    updated_at           BIGINT NOT NULL,
    UNIQUE (workspace_id, platform, provider_user_id)
);
CREATE INDEX accounts_refresh_due ON accounts (status, access_expires_at);
CREATE INDEX accounts_provider_user ON accounts (platform, provider_user_id);

CREATE TABLE events (
    id            TEXT PRIMARY KEY,
    workspace_id  TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    type          TEXT NOT NULL,
    subject_id    TEXT,
    payload       TEXT NOT NULL,
    created_at    BIGINT NOT NULL
);
CREATE INDEX events_workspace_time ON events (workspace_id, created_at);
