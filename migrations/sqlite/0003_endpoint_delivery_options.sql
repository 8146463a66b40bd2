-- Per-endpoint delivery options.
-- legacy_signature: also send X-Webhook-Signature-256: sha256=<hex HMAC-SHA256(key, body)>.
-- verify_ssl: 0 skips TLS certificate verification for this endpoint's requests.
ALTER TABLE endpoints ADD COLUMN legacy_signature INTEGER NOT NULL DEFAULT 0;
ALTER TABLE endpoints ADD COLUMN verify_ssl INTEGER NOT NULL DEFAULT 1;
