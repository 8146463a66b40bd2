-- Ordered lines on several nodes. A delivery's place in its line comes from one sequence when
-- it is written, so ingest takes no lock (the order of two messages accepted at the same
-- moment on two nodes is the sequence's; one accepted after another was acknowledged comes
-- after it). The first of a line may then be any delivery not waiting: this index finds, for
-- an endpoint, what is on its way (due, or leased), of which there is at most one.
CREATE SEQUENCE delivery_lanes;
SELECT setval('delivery_lanes', GREATEST(1, (SELECT COALESCE(MAX(lane), 0) + 1 FROM deliveries)), false);
CREATE INDEX deliveries_lane_moving ON deliveries (endpoint_id)
    WHERE status = 1 AND lane IS NOT NULL AND (next_attempt_at IS NOT NULL OR lease_until IS NOT NULL);
