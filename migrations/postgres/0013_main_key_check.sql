-- A value sealed under the cluster's main key by the first node to start: a node started with
-- another key is refused even before any endpoint secret is stored. Only several nodes need
-- it (a SQLite installation keeps its key beside its database).
CREATE TABLE main_key_check (
    id     SMALLINT PRIMARY KEY CHECK (id = 1),
    sealed TEXT COLLATE "C" NOT NULL
);
