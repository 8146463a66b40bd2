-- Each endpoint's attempts per minute, for the alerts about error rates, timeouts and 401/403
-- answers: written with the attempts (one row per endpoint, minute and node), read over the
-- alerts' window, pruned once older. `rejected`: answered 401 or 403.
CREATE TABLE endpoint_health (
    endpoint_id     TEXT NOT NULL REFERENCES endpoints(id) ON DELETE CASCADE,
    minute          INTEGER NOT NULL,
    node            TEXT NOT NULL DEFAULT '',
    attempts        INTEGER NOT NULL,
    failures        INTEGER NOT NULL,
    timeouts        INTEGER NOT NULL,
    rejected        INTEGER NOT NULL,
    last_success_at INTEGER,
    last_failure_at INTEGER,
    PRIMARY KEY (endpoint_id, minute, node)
);

-- What alerts are about: an endpoint failing, rejecting, or disabled, from when it began
-- (`opened_at`) to when it delivered again (`resolved_at`). `alerted_at`: when its alert was
-- queued (NULL while it is quiet: it began within the cooldown of an earlier alert of the same
-- rule). `data`: the facts at its beginning (JSON).
CREATE TABLE alert_incidents (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    endpoint_id TEXT NOT NULL REFERENCES endpoints(id) ON DELETE CASCADE,
    app_id      TEXT NOT NULL REFERENCES applications(id) ON DELETE CASCADE,
    rule        TEXT NOT NULL,
    data        TEXT NOT NULL,
    opened_at   INTEGER NOT NULL,
    alerted_at  INTEGER,
    resolved_at INTEGER
);
-- One open incident per endpoint and rule.
CREATE UNIQUE INDEX alert_incidents_open ON alert_incidents (endpoint_id, rule) WHERE resolved_at IS NULL;
CREATE INDEX alert_incidents_endpoint ON alert_incidents (endpoint_id, rule, alerted_at);
CREATE INDEX alert_incidents_app ON alert_incidents (app_id, id);

-- Recipients who had every rule get the new ones too.
UPDATE alert_recipients SET rules = rules || ',endpoint.failing,endpoint.unauthorized,endpoint.recovered'
 WHERE rules = 'endpoint.disabled,message.exhausted';
