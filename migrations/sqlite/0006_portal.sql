-- Customer portal: expiring links scoped to one application, and the sessions they open.
-- Both are stored as SHA-256 hashes of the secret the browser holds.
CREATE TABLE portal_links (
    token_hash TEXT PRIMARY KEY,
    app_id     TEXT NOT NULL REFERENCES applications(id) ON DELETE CASCADE,
    read_only  INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX portal_links_app ON portal_links (app_id, expires_at);

CREATE TABLE portal_sessions (
    id_hash      TEXT PRIMARY KEY,
    link_hash    TEXT NOT NULL REFERENCES portal_links(token_hash) ON DELETE CASCADE,
    csrf         TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL
);
CREATE INDEX portal_sessions_link ON portal_sessions (link_hash);
