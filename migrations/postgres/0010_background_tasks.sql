-- Background tasks: a bulk replay of an endpoint's messages, what it replays (spec, JSON) and
-- how far it got. The cursor is the (created_at, id) of the last message looked at: a task
-- resumes after it, so each message is queued once however often the server restarts.
CREATE TABLE background_tasks (
    id          TEXT COLLATE "C" PRIMARY KEY,
    kind        TEXT COLLATE "C" NOT NULL,
    app_id      TEXT COLLATE "C" NOT NULL REFERENCES applications(id) ON DELETE CASCADE,
    endpoint_id TEXT COLLATE "C" NOT NULL REFERENCES endpoints(id) ON DELETE CASCADE,
    status      TEXT COLLATE "C" NOT NULL,
    spec        TEXT NOT NULL,
    total       BIGINT NOT NULL,
    done        BIGINT NOT NULL DEFAULT 0,
    queued      BIGINT NOT NULL DEFAULT 0,
    cursor_at   BIGINT,
    cursor_id   TEXT COLLATE "C",
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX background_tasks_status ON background_tasks (status);
CREATE INDEX background_tasks_endpoint ON background_tasks (endpoint_id, id);
