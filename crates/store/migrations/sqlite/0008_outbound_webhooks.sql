-- Outbound webhooks (Standard Webhooks): the workspace's endpoints, one delivery per (event,
-- endpoint), every attempt of a delivery, and the dispatcher's cursor over the event log.

CREATE TABLE webhook_endpoints (
    id                     TEXT PRIMARY KEY,
    workspace_id           TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    url                    TEXT NOT NULL,
    description            TEXT NOT NULL,
    -- Space-separated event types; empty means every type.
    event_types            TEXT NOT NULL,
    -- The signing secret (`whsec_…`) as a vault envelope bound to webhook_endpoints/<id>/secret.
    secret                 TEXT NOT NULL,
    -- After a rotation, the old secret (webhook_endpoints/<id>/previous_secret) keeps signing
    -- beside the new one until previous_secret_until.
    previous_secret        TEXT,
    previous_secret_until  BIGINT,
    disabled_at            BIGINT,
    disabled_reason        TEXT,
    -- Deliveries in a row that failed for good; a delivered one resets it.
    failure_streak         BIGINT NOT NULL DEFAULT 0,
    last_success_at        BIGINT,
    created_at             BIGINT NOT NULL,
    updated_at             BIGINT NOT NULL
);
CREATE INDEX webhook_endpoints_workspace ON webhook_endpoints (workspace_id, id);

CREATE TABLE webhook_deliveries (
    id               TEXT PRIMARY KEY,
    workspace_id     TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    endpoint_id      TEXT NOT NULL REFERENCES webhook_endpoints(id) ON DELETE CASCADE,
    -- The event's id: the `webhook-id` every attempt sends.
    event_id         TEXT NOT NULL,
    event_type       TEXT NOT NULL,
    -- The exact body every attempt sends.
    body             TEXT NOT NULL,
    -- pending, succeeded or failed.
    state            TEXT NOT NULL,
    attempts         BIGINT NOT NULL DEFAULT 0,
    -- Attempts made on the retry schedule (manual re-sends not counted).
    auto_attempts    BIGINT NOT NULL DEFAULT 0,
    -- Manual re-sends asked for; part of each re-send job's idempotency key.
    resends          BIGINT NOT NULL DEFAULT 0,
    next_attempt_at  BIGINT,
    last_status      BIGINT,
    last_error       TEXT,
    event_created_at BIGINT NOT NULL,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    finished_at      BIGINT,
    UNIQUE (endpoint_id, event_id)
);
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (workspace_id, endpoint_id, id);

CREATE TABLE webhook_attempts (
    id               TEXT PRIMARY KEY,
    workspace_id     TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    delivery_id      TEXT NOT NULL REFERENCES webhook_deliveries(id) ON DELETE CASCADE,
    attempt          BIGINT NOT NULL,
    -- auto (the retry schedule) or manual (a re-send).
    cause            TEXT NOT NULL,
    url              TEXT NOT NULL,
    status_code      BIGINT,
    latency_ms       BIGINT NOT NULL,
    -- At most 1 KiB of the receiver's answer.
    response_excerpt TEXT,
    error            TEXT,
    started_at       BIGINT NOT NULL
);
CREATE INDEX webhook_attempts_delivery ON webhook_attempts (delivery_id, attempt);

-- Events up to this instant (less a look-back for late commits) have been dispatched.
CREATE TABLE webhook_dispatch_cursor (
    name        TEXT PRIMARY KEY,
    position    BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
