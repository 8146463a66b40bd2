-- An endpoint's own delivery policy, where it differs from the server's (NULL: the server's):
-- the waits before each retry in seconds, comma-separated ('' for no retry); how long a
-- request may take; how long every attempt may fail before it is disabled (0: never).
ALTER TABLE endpoints ADD COLUMN retry_schedule TEXT;
ALTER TABLE endpoints ADD COLUMN timeout_secs INTEGER;
ALTER TABLE endpoints ADD COLUMN auto_disable_after_secs INTEGER;
