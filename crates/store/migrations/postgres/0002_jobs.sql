-- The durable job queue: jobs, the durable steps of their side effects, recurring schedules.
-- Kept identical to the SQLite file wherever the dialects allow.

CREATE TABLE jobs (
    id               TEXT PRIMARY KEY,
    kind             TEXT NOT NULL,
    payload          TEXT NOT NULL,
    -- NULL for system jobs (sweeps that span workspaces).
    workspace_id     TEXT,
    -- Enqueuing the same key twice yields one job.
    idempotency_key  TEXT,
    priority         BIGINT NOT NULL DEFAULT 0,
    -- queued | running | failed (waiting for a retry) | succeeded | dead | cancelled
    state            TEXT NOT NULL,
    run_at           BIGINT NOT NULL,
    attempts         BIGINT NOT NULL DEFAULT 0,
    -- NULL: the kind's retry policy decides.
    max_attempts     BIGINT,
    last_error       TEXT,
    -- The lease: who holds the job, which claim (fences completion), until when.
    locked_by        TEXT,
    lease_id         TEXT,
    locked_until     BIGINT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    finished_at      BIGINT
);
CREATE UNIQUE INDEX jobs_idempotency_key ON jobs (idempotency_key);
-- Claims read this index in order (priority, then run_at) and stop after a few rows.
CREATE INDEX jobs_due ON jobs (priority DESC, run_at, id) WHERE state IN ('queued', 'failed');
CREATE INDEX jobs_lease ON jobs (locked_until) WHERE state = 'running';
CREATE INDEX jobs_state_kind ON jobs (state, kind);
CREATE INDEX jobs_workspace ON jobs (workspace_id, state);

-- One row per named side effect of a job: the intent is written before the call, the outcome
-- after it. An intent without an outcome means the call may or may not have happened.
CREATE TABLE job_steps (
    job_id      TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    -- intent | done
    state       TEXT NOT NULL,
    -- The attempt that recorded the intent.
    attempt     BIGINT NOT NULL,
    outcome     TEXT,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (job_id, name)
);

-- Recurring sweeps: each period is enqueued once, by whichever instance advances
-- next_run_at first (compare-and-set).
CREATE TABLE job_schedules (
    name         TEXT PRIMARY KEY,
    kind         TEXT NOT NULL,
    payload      TEXT NOT NULL,
    interval_ms  BIGINT NOT NULL,
    next_run_at  BIGINT NOT NULL,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);
