-- When an endpoint's current run of failed attempts began (NULL: its last attempt succeeded).
ALTER TABLE endpoints ADD COLUMN failing_since INTEGER;
CREATE INDEX endpoints_failing ON endpoints (failing_since) WHERE failing_since IS NOT NULL AND disabled = 0;
