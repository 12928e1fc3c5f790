-- Embedding tidepost in a host application: the origins the workspace's host runs on (the
-- only places a connect link may send a creator back to), connect links (single use, only a
-- hash of the token stored), and the host's own id for a creator on accounts and creators.

CREATE TABLE allowed_origins (
    workspace_id  TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    origin        TEXT NOT NULL,
    position      BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, origin)
);

CREATE TABLE connect_links (
    id                    TEXT PRIMARY KEY,
    workspace_id          TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    token_hash            TEXT NOT NULL UNIQUE,
    platforms             TEXT NOT NULL,
    external_ref          TEXT,
    return_url            TEXT NOT NULL,
    reconnect_account_id  TEXT,
    created_at            BIGINT NOT NULL,
    expires_at            BIGINT NOT NULL,
    used_at               BIGINT,
    finished_at           BIGINT,
    status                TEXT,
    error                 TEXT,
    account_id            TEXT
);
CREATE INDEX connect_links_expiry ON connect_links (expires_at);

-- The connect link an OAuth state was started from: its callback finishes into the link.
ALTER TABLE oauth_states ADD COLUMN connect_link_id TEXT;

ALTER TABLE accounts ADD COLUMN external_ref TEXT;
CREATE INDEX accounts_external_ref ON accounts (workspace_id, external_ref);
ALTER TABLE creators ADD COLUMN external_ref TEXT;
