-- Posts to several accounts, and scheduling.
--
-- A post keeps the time it was scheduled for (UTC ms) and the IANA zone it was given in, so
-- that it can be shown back in that zone. Each target keeps its own effective options (the
-- post's shared caption and media with the target's overrides applied) and the time its job
-- is due: targets of one post may be moved to different free slots.

ALTER TABLE posts ADD COLUMN scheduled_at BIGINT;
ALTER TABLE posts ADD COLUMN time_zone TEXT;
ALTER TABLE post_targets ADD COLUMN options TEXT;
ALTER TABLE post_targets ADD COLUMN scheduled_at BIGINT;
CREATE INDEX posts_workspace_scheduled ON posts (workspace_id, scheduled_at);
CREATE INDEX post_targets_account_scheduled ON post_targets (account_id, scheduled_at);
