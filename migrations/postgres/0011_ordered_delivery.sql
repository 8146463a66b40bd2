-- Ordered delivery. An ordered endpoint takes its messages one at a time, in the order they
-- were accepted: its pending deliveries form a line, by `lane` ascending. Only the first of the
-- line has a due time; the others wait their turn with next_attempt_at NULL, so claims and the
-- scheduler never see them. `parked_due` is when a waiting delivery may go once its turn comes
-- (a deliverAt still ahead; NULL: at once).
ALTER TABLE endpoints ADD COLUMN ordered BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE deliveries ADD COLUMN lane BIGINT;
ALTER TABLE deliveries ADD COLUMN parked_due BIGINT;
CREATE INDEX deliveries_lane ON deliveries (endpoint_id, lane) WHERE status = 1 AND lane IS NOT NULL;
