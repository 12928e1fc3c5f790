-- The CRM: creators (a person or brand) own connected accounts; contacts are the people who
-- interact with them, one per platform identity; interactions (comments, replies, mentions)
-- are unique per provider id so that duplicate webhooks and re-pulled pages change nothing;
-- metrics are a time series per post target, sampled on a schedule that slows as the post ages.
-- Kept identical to the SQLite file.

CREATE TABLE creators (
    id            TEXT PRIMARY KEY,
    workspace_id  TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    notes         TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);
CREATE INDEX creators_workspace ON creators (workspace_id, id);

-- NULL only between an account's insert and its creator's (connect creates one at once).
ALTER TABLE accounts ADD COLUMN creator_id TEXT REFERENCES creators(id) ON DELETE SET NULL;
CREATE INDEX accounts_creator ON accounts (creator_id);

CREATE TABLE contacts (
    id                TEXT PRIMARY KEY,
    workspace_id      TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    platform          TEXT NOT NULL,
    platform_user_id  TEXT NOT NULL,
    handle            TEXT,
    name              TEXT,
    interactions      BIGINT NOT NULL,
    first_seen_at     BIGINT NOT NULL,
    last_seen_at      BIGINT NOT NULL,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL,
    UNIQUE (workspace_id, platform, platform_user_id)
);
CREATE INDEX contacts_recent ON contacts (workspace_id, last_seen_at, id);

CREATE TABLE interactions (
    id                  TEXT PRIMARY KEY,
    workspace_id        TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    platform            TEXT NOT NULL,
    -- comment | reply | mention | message
    kind                TEXT NOT NULL,
    -- inbound (from a contact) | outbound (the account answering)
    direction           TEXT NOT NULL,
    provider_id         TEXT NOT NULL,
    parent_provider_id  TEXT,
    contact_id          TEXT REFERENCES contacts(id) ON DELETE SET NULL,
    creator_id          TEXT REFERENCES creators(id) ON DELETE SET NULL,
    account_id          TEXT,
    target_id           TEXT,
    provider_media_id   TEXT,
    text                TEXT NOT NULL,
    occurred_at         BIGINT NOT NULL,
    created_at          BIGINT NOT NULL,
    UNIQUE (workspace_id, platform, provider_id)
);
CREATE INDEX interactions_recent ON interactions (workspace_id, occurred_at, id);
CREATE INDEX interactions_creator ON interactions (creator_id, occurred_at);
CREATE INDEX interactions_contact ON interactions (contact_id, occurred_at);

-- One row per published target whose metrics are sampled; next_sample_at is moved by
-- compare-and-set with each sample, so one slot is sampled once.
CREATE TABLE metric_tracks (
    target_id          TEXT PRIMARY KEY REFERENCES post_targets(id) ON DELETE CASCADE,
    workspace_id       TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    account_id         TEXT NOT NULL,
    platform           TEXT NOT NULL,
    provider_media_id  TEXT NOT NULL,
    media_type         TEXT,
    published_at       BIGINT NOT NULL,
    next_sample_at     BIGINT,
    last_sample_at     BIGINT,
    samples            BIGINT NOT NULL,
    last_error         TEXT,
    created_at         BIGINT NOT NULL
);
CREATE INDEX metric_tracks_due ON metric_tracks (next_sample_at);
CREATE INDEX metric_tracks_account ON metric_tracks (account_id, next_sample_at);

CREATE TABLE metric_samples (
    id            TEXT PRIMARY KEY,
    workspace_id  TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    target_id     TEXT NOT NULL REFERENCES post_targets(id) ON DELETE CASCADE,
    sampled_at    BIGINT NOT NULL,
    views         BIGINT,
    likes         BIGINT,
    comments      BIGINT,
    shares        BIGINT,
    saves         BIGINT,
    reach         BIGINT
);
CREATE INDEX metric_samples_target ON metric_samples (target_id, sampled_at);

CREATE TABLE metric_milestones (
    target_id     TEXT NOT NULL REFERENCES post_targets(id) ON DELETE CASCADE,
    workspace_id  TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    metric        TEXT NOT NULL,
    threshold     BIGINT NOT NULL,
    value         BIGINT NOT NULL,
    reached_at    BIGINT NOT NULL,
    PRIMARY KEY (target_id, metric, threshold)
);

-- Incremental pulls: where the last pull of one account's stream stopped.
CREATE TABLE crm_cursors (
    account_id    TEXT NOT NULL,
    scope         TEXT NOT NULL,
    workspace_id  TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    cursor        TEXT NOT NULL,
    updated_at    BIGINT NOT NULL,
    PRIMARY KEY (account_id, scope)
);
