-- The calendar: each person's time zone (an IANA name; NULL until they choose one, when the
-- browser's zone is used), and an index on the time a post is planned for (its schedule, or
-- when it was made for a post sent at once), the calendar's window.

ALTER TABLE users ADD COLUMN time_zone TEXT;
CREATE INDEX posts_workspace_planned ON posts (workspace_id, (COALESCE(scheduled_at, created_at)));
