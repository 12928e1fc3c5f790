-- A published target shows no error: the error of an earlier, retried attempt (a rate limit,
-- a transport failure) was kept on targets that then published. Moving to `published` clears
-- it since; this clears it on the targets published before.
UPDATE post_targets SET error_code = NULL, error_message = NULL, error_retryable = 0
WHERE state = 'published' AND (error_code IS NOT NULL OR error_message IS NOT NULL);

-- Every rotated-out webhook secret keeps signing until its own overlap ends: a second rotation
-- within the overlap of the first must not drop the first's old secret. `previous_secret` is
-- the secret rotated out last; the ones rotated out before it, whose overlap has not ended,
-- are kept here as a JSON list of {"secret": <vault envelope>, "until": <ms>}.
ALTER TABLE webhook_endpoints ADD COLUMN older_secrets TEXT NOT NULL DEFAULT '[]';
