-- Sign-in throttling, replacing the log of failures (`login_attempts`), whose count and whose
-- check were two statements that concurrent requests could slip between. One row per subject:
-- an (account, client address) pair, or an account on its own. An attempt is taken from a row
-- by one compare-and-set update before the password is checked, so every instance sees the same
-- count; `blocked_until` is when the next attempt may be taken (0: now).
CREATE TABLE login_throttle (
    subject        TEXT PRIMARY KEY,
    account        TEXT NOT NULL,
    attempts       BIGINT NOT NULL,
    last_at        BIGINT NOT NULL,
    blocked_until  BIGINT NOT NULL
);

CREATE INDEX login_throttle_account ON login_throttle (account);
CREATE INDEX login_throttle_last_at ON login_throttle (last_at);

DROP TABLE login_attempts;
