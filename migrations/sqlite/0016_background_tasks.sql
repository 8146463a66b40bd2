-- Background tasks: a bulk replay of an endpoint's messages, what it replays (spec, JSON) and
-- how far it got. The cursor is the (created_at, id) of the last message looked at: a task
-- resumes after it, so each message is queued once however often the server restarts.
CREATE TABLE background_tasks (
    id          TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,
    app_id      TEXT NOT NULL REFERENCES applications(id) ON DELETE CASCADE,
    endpoint_id TEXT NOT NULL REFERENCES endpoints(id) ON DELETE CASCADE,
    status      TEXT NOT NULL,
    spec        TEXT NOT NULL,
    total       INTEGER NOT NULL,
    done        INTEGER NOT NULL DEFAULT 0,
    queued      INTEGER NOT NULL DEFAULT 0,
    cursor_at   INTEGER,
    cursor_id   TEXT,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE INDEX background_tasks_status ON background_tasks (status);
CREATE INDEX background_tasks_endpoint ON background_tasks (endpoint_id, id);
