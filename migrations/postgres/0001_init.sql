-- hookbox schema on PostgreSQL: the same tables and columns as the SQLite schema (after its
-- migrations 0001 to 0008), in PostgreSQL's types, plus what several nodes sharing one
-- database need (the node a lease belongs to, node heartbeats). Times are integer
-- milliseconds since the Unix epoch (UTC); JSON is stored as the exact text received. Text
-- compares byte by byte (COLLATE "C"), as on SQLite, whatever the database's locale: ids,
-- paging cursors and names order the same on both.

CREATE TABLE applications (
    id           TEXT COLLATE "C" PRIMARY KEY,
    uid          TEXT COLLATE "C" UNIQUE,
    name         TEXT COLLATE "C" NOT NULL,
    rate_limit   BIGINT,
    metadata     TEXT COLLATE "C" NOT NULL DEFAULT '{}',
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    retention_ms BIGINT
);

CREATE TABLE event_types (
    name          TEXT COLLATE "C" PRIMARY KEY,
    description   TEXT COLLATE "C" NOT NULL,
    group_name    TEXT COLLATE "C",
    schemas       TEXT COLLATE "C",
    feature_flags TEXT COLLATE "C",
    archived      BOOLEAN NOT NULL DEFAULT FALSE,
    deprecated    BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);

CREATE TABLE endpoints (
    id               TEXT COLLATE "C" PRIMARY KEY,
    app_id           TEXT COLLATE "C" NOT NULL REFERENCES applications(id) ON DELETE CASCADE,
    uid              TEXT COLLATE "C",
    url              TEXT COLLATE "C" NOT NULL,
    description      TEXT COLLATE "C" NOT NULL DEFAULT '',
    filter_types     TEXT COLLATE "C",
    channels         TEXT COLLATE "C",
    rate_limit       BIGINT,
    metadata         TEXT COLLATE "C" NOT NULL DEFAULT '{}',
    headers          TEXT COLLATE "C" NOT NULL DEFAULT '{}',
    disabled         BOOLEAN NOT NULL DEFAULT FALSE,
    disabled_reason  TEXT COLLATE "C",
    disabled_at      BIGINT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    legacy_signature BOOLEAN NOT NULL DEFAULT FALSE,
    verify_ssl       BOOLEAN NOT NULL DEFAULT TRUE,
    failing_since    BIGINT,
    UNIQUE (app_id, uid)
);
CREATE INDEX endpoints_app ON endpoints (app_id, id);
CREATE INDEX endpoints_failing ON endpoints (failing_since)
    WHERE failing_since IS NOT NULL AND NOT disabled;

CREATE TABLE endpoint_secrets (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    endpoint_id TEXT COLLATE "C" NOT NULL REFERENCES endpoints(id) ON DELETE CASCADE,
    secret      TEXT COLLATE "C" NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT
);
CREATE INDEX endpoint_secrets_endpoint ON endpoint_secrets (endpoint_id);

CREATE TABLE messages (
    id          TEXT COLLATE "C" PRIMARY KEY,
    app_id      TEXT COLLATE "C" NOT NULL REFERENCES applications(id) ON DELETE CASCADE,
    event_type  TEXT COLLATE "C" NOT NULL,
    event_id    TEXT COLLATE "C",
    payload     TEXT COLLATE "C",
    channels    TEXT COLLATE "C",
    tags        TEXT COLLATE "C",
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT
);
CREATE INDEX messages_app ON messages (app_id, id);
CREATE UNIQUE INDEX messages_event_id ON messages (app_id, event_id) WHERE event_id IS NOT NULL;
CREATE INDEX messages_expiring ON messages (expires_at) WHERE payload IS NOT NULL;

-- The outbox. A pending row with lease_until set is claimed, by the node lease_owner.
CREATE TABLE deliveries (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    msg_id          TEXT COLLATE "C" NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    endpoint_id     TEXT COLLATE "C" NOT NULL REFERENCES endpoints(id) ON DELETE CASCADE,
    status          SMALLINT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT,
    lease_until     BIGINT,
    lease_owner     TEXT COLLATE "C",
    trigger_type    SMALLINT NOT NULL DEFAULT 0,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    UNIQUE (msg_id, endpoint_id)
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status = 1 AND lease_until IS NULL;
CREATE INDEX deliveries_endpoint ON deliveries (endpoint_id, msg_id);
CREATE INDEX deliveries_leased ON deliveries (lease_owner) WHERE lease_owner IS NOT NULL;

CREATE TABLE attempts (
    id                   TEXT COLLATE "C" PRIMARY KEY,
    msg_id               TEXT COLLATE "C" NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    endpoint_id          TEXT COLLATE "C" NOT NULL REFERENCES endpoints(id) ON DELETE CASCADE,
    url                  TEXT COLLATE "C" NOT NULL,
    status               SMALLINT NOT NULL,
    response_status_code INTEGER NOT NULL,
    response             TEXT COLLATE "C",
    response_duration_ms BIGINT NOT NULL,
    error                TEXT COLLATE "C",
    trigger_type         SMALLINT NOT NULL,
    created_at           BIGINT NOT NULL,
    request_headers      TEXT COLLATE "C",
    response_headers     TEXT COLLATE "C"
);
CREATE INDEX attempts_endpoint ON attempts (endpoint_id, id);
CREATE INDEX attempts_msg ON attempts (msg_id, id);

CREATE TABLE api_tokens (
    id           TEXT COLLATE "C" PRIMARY KEY,
    name         TEXT COLLATE "C" NOT NULL,
    token_hash   TEXT COLLATE "C" NOT NULL UNIQUE,
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT,
    revoked_at   BIGINT
);

CREATE TABLE idempotency_keys (
    token_id    TEXT COLLATE "C" NOT NULL,
    path        TEXT COLLATE "C" NOT NULL,
    key         TEXT COLLATE "C" NOT NULL,
    status_code INTEGER NOT NULL,
    body        TEXT COLLATE "C" NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (token_id, path, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);

CREATE TABLE admin_users (
    id            TEXT COLLATE "C" PRIMARY KEY,
    username      TEXT COLLATE "C" NOT NULL UNIQUE,
    password_hash TEXT COLLATE "C" NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);

CREATE TABLE admin_sessions (
    id_hash      TEXT COLLATE "C" PRIMARY KEY,
    user_id      TEXT COLLATE "C" NOT NULL REFERENCES admin_users(id) ON DELETE CASCADE,
    csrf         TEXT COLLATE "C" NOT NULL,
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL
);
CREATE INDEX admin_sessions_user ON admin_sessions (user_id);

CREATE TABLE admin_setup_tokens (
    token_hash TEXT COLLATE "C" PRIMARY KEY,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

CREATE TABLE portal_links (
    token_hash TEXT COLLATE "C" PRIMARY KEY,
    app_id     TEXT COLLATE "C" NOT NULL REFERENCES applications(id) ON DELETE CASCADE,
    read_only  BOOLEAN NOT NULL DEFAULT FALSE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX portal_links_app ON portal_links (app_id, expires_at);

CREATE TABLE portal_sessions (
    id_hash      TEXT COLLATE "C" PRIMARY KEY,
    link_hash    TEXT COLLATE "C" NOT NULL REFERENCES portal_links(token_hash) ON DELETE CASCADE,
    csrf         TEXT COLLATE "C" NOT NULL,
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL
);
CREATE INDEX portal_sessions_link ON portal_sessions (link_hash);

-- The nodes of the cluster: each heartbeats; the leases of a node whose heartbeat stopped
-- are freed by the others.
CREATE TABLE nodes (
    id           TEXT COLLATE "C" PRIMARY KEY,
    started_at   BIGINT NOT NULL,
    heartbeat_at BIGINT NOT NULL
);
