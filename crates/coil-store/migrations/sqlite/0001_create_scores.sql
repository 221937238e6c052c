-- Leaderboard scores, recorded only by the game server (never from client input).
-- `recorded_at` is Unix time in milliseconds (INTEGER), so the SQL that reads and writes this
-- table is byte-for-byte the same on SQLite and PostgreSQL.
CREATE TABLE IF NOT EXISTS scores (
    id          INTEGER PRIMARY KEY,
    run_id      TEXT    NOT NULL UNIQUE CHECK (length(run_id) BETWEEN 1 AND 128),
    name        TEXT    NOT NULL CHECK (length(name) BETWEEN 1 AND 16),
    score       INTEGER NOT NULL CHECK (score BETWEEN 0 AND 4294967295),
    room        TEXT    NOT NULL CHECK (length(room) BETWEEN 1 AND 64),
    recorded_at INTEGER NOT NULL CHECK (recorded_at >= 0)
);

-- Serves `top(n)`: ORDER BY score DESC, recorded_at DESC, id DESC LIMIT n walks this index
-- from the start and stops after n rows, without sorting the table.
CREATE INDEX IF NOT EXISTS scores_top_idx ON scores (score DESC, recorded_at DESC, id DESC);
