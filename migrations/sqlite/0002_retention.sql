-- Payload retention: when a message's payload (and its attempts' response bodies) may be purged.
ALTER TABLE applications ADD COLUMN retention_ms INTEGER;
ALTER TABLE messages ADD COLUMN expires_at INTEGER;
CREATE INDEX messages_expiring ON messages (expires_at) WHERE payload IS NOT NULL;
