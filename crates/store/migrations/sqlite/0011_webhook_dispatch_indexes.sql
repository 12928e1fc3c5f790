-- Indexes for the outbound webhook dispatcher.

-- The sweep looks for deliveries whose first attempt was cut short: pending, no automatic
-- attempt recorded, not touched for a while (webhook_deliveries::stranded). Only deliveries
-- whose first attempt is in flight (or was interrupted) match, a handful at any time among
-- every delivery ever made, so a partial index keeps exactly those, by age.
CREATE INDEX webhook_deliveries_unattempted ON webhook_deliveries (updated_at)
    WHERE state = 'pending' AND auto_attempts = 0;

-- The dispatcher reads new events of every workspace with endpoints in (created_at, id) order,
-- a page at a time from where the last page ended (webhook_deliveries::candidates_after); in
-- this order the database reads a page's worth of events and stops, instead of collecting and
-- sorting every event of the look-back window for each page.
CREATE INDEX events_created ON events (created_at, id);
