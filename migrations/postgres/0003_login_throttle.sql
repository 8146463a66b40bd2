-- Console logins, counted over a sliding window for the whole cluster: one row per password
-- check per scope (a client, a client and username, a username's failures; `scope` names
-- which and whose).
CREATE TABLE login_checks (
    scope TEXT COLLATE "C" NOT NULL,
    at    BIGINT NOT NULL
);
CREATE INDEX login_checks_scope ON login_checks (scope, at);
CREATE INDEX login_checks_at ON login_checks (at);

-- A username that keeps failing is checked one at a time, whichever node: when its next
-- check may run.
CREATE TABLE login_turns (
    username TEXT COLLATE "C" PRIMARY KEY,
    next_at  BIGINT NOT NULL
);
