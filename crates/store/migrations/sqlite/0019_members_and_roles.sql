-- Members and roles: owner, admin, editor, viewer (tidepost_domain::Role). Members made before
-- roles could do everything an owner could short of being one, so they become admins: nobody
-- loses a thing they could do the day before.
UPDATE memberships SET role = 'admin' WHERE role NOT IN ('owner', 'admin', 'editor', 'viewer');
CREATE INDEX memberships_user ON memberships (user_id);

-- An API key acts with a role, never above the member who made it (`created_by`, checked on
-- every use; NULL for keys made on the command line or before roles, which keep theirs).
-- Existing keys could do everything: admin.
ALTER TABLE api_keys ADD COLUMN role TEXT NOT NULL DEFAULT 'admin';
ALTER TABLE api_keys ADD COLUMN created_by TEXT REFERENCES users(id) ON DELETE SET NULL;

-- Invites: a one-time, expiring link to join a workspace with a role. Only the SHA-256 of the
-- link's token is kept. `accepted_at` / `revoked_at` end it; accepting is one conditional
-- update, so a link is spent once however often it is opened.
CREATE TABLE invites (
    id            TEXT PRIMARY KEY,
    workspace_id  TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    email         TEXT NOT NULL,
    role          TEXT NOT NULL,
    token_hash    TEXT NOT NULL UNIQUE,
    invited_by    TEXT REFERENCES users(id) ON DELETE SET NULL,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    accepted_at   BIGINT,
    accepted_by   TEXT REFERENCES users(id) ON DELETE SET NULL,
    revoked_at    BIGINT
);
CREATE INDEX invites_workspace ON invites (workspace_id, created_at);
