-- Pacing shared by the nodes: each rate-limited endpoint's theoretical arrival time (GCRA), in
-- microseconds since the Unix epoch. A node reserves a send by moving it on by 1/rate s; the
-- send may go once the reserved time, less one second of burst, has come.
CREATE TABLE endpoint_pacing (
    endpoint_id TEXT COLLATE "C" PRIMARY KEY REFERENCES endpoints(id) ON DELETE CASCADE,
    tat_us      BIGINT NOT NULL
);

-- Periodic chores taken in turn by the nodes: whoever moves `last_run` on does the round.
CREATE TABLE chores (
    name     TEXT COLLATE "C" PRIMARY KEY,
    last_run BIGINT NOT NULL
);
