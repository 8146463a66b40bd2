-- How an endpoint's requests are signed: 'v1' (HMAC-SHA256 under a whsec_ secret) or 'v1a'
-- (ed25519 under a whsk_ secret key; receivers get the whpk_ public key). Fixed when it is
-- created: a rotation keeps it.
ALTER TABLE endpoints ADD COLUMN signature_version TEXT NOT NULL DEFAULT 'v1';
