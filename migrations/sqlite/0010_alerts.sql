-- Who hears about failing webhooks: the operator's recipients (app_id NULL: about every
-- application) and each application's own. `rules`: the alerts it gets, comma-separated.
-- `source`: where it was set (`console`, `api`, `portal`; `config` ones are replaced at
-- each start by the configuration's `alerts.emails` and `alerts.chat_url`).
CREATE TABLE alert_recipients (
    id         TEXT PRIMARY KEY,
    app_id     TEXT REFERENCES applications(id) ON DELETE CASCADE,
    channel    TEXT NOT NULL,
    address    TEXT NOT NULL,
    rules      TEXT NOT NULL,
    source     TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX alert_recipients_app ON alert_recipients (app_id);
-- One address once per application (and once among the operator's recipients).
CREATE UNIQUE INDEX alert_recipients_address ON alert_recipients (COALESCE(app_id, ''), channel, address);

-- Alerts, committed with the change they tell of and sent from here: pending (0), sent (1),
-- or given up (2) after their retries. `app_id` is the recipient's application (NULL: an
-- operator's); `data` holds the facts the message is written from; `result` the server's
-- last answer or error. A claimed alert is leased until `lease_until`.
CREATE TABLE notifications (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    app_id          TEXT REFERENCES applications(id) ON DELETE CASCADE,
    endpoint_id     TEXT,
    channel         TEXT NOT NULL,
    address         TEXT NOT NULL,
    rule            TEXT NOT NULL,
    data            TEXT NOT NULL,
    status          INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    lease_until     INTEGER,
    result          TEXT,
    created_at      INTEGER NOT NULL,
    sent_at         INTEGER
);
CREATE INDEX notifications_due ON notifications (next_attempt_at) WHERE status = 0;
CREATE INDEX notifications_app ON notifications (app_id, id);
