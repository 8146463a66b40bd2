-- Console logins, counted over a sliding window in the database (so that the counts hold
-- across restarts and, on PostgreSQL, across nodes): one row per password check per scope
-- (a client, a client and username, a username's failures; `scope` names which and whose).
CREATE TABLE login_checks (
    scope TEXT NOT NULL,
    at    INTEGER NOT NULL
);
CREATE INDEX login_checks_scope ON login_checks (scope, at);
CREATE INDEX login_checks_at ON login_checks (at);

-- A username that keeps failing is checked one at a time: when its next check may run.
CREATE TABLE login_turns (
    username TEXT PRIMARY KEY,
    next_at  INTEGER NOT NULL
);
