-- Finished matches and each seat's line, written once per match by the game node that ran it
-- (from the game's match-result event, never from client input). `match_id` makes the write
-- idempotent: a replayed result inserts nothing. Times are Unix milliseconds.
CREATE TABLE IF NOT EXISTS matches (
    match_id    TEXT    PRIMARY KEY CHECK (length(match_id) BETWEEN 1 AND 128),
    mode        TEXT    NOT NULL CHECK (length(mode) BETWEEN 1 AND 32),
    room        TEXT    NOT NULL CHECK (length(room) BETWEEN 1 AND 64),
    winner      INTEGER CHECK (winner BETWEEN 0 AND 255),
    reason      TEXT    NOT NULL CHECK (length(reason) BETWEEN 1 AND 32),
    -- JSON: an array of team scores, an object of the game's details (map, rules).
    team_scores TEXT    NOT NULL,
    details     TEXT    NOT NULL,
    duration_ms INTEGER NOT NULL CHECK (duration_ms >= 0),
    ended_at    INTEGER NOT NULL CHECK (ended_at >= 0)
);

CREATE TABLE IF NOT EXISTS match_players (
    match_id     TEXT    NOT NULL REFERENCES matches (match_id) ON DELETE CASCADE,
    slot         INTEGER NOT NULL CHECK (slot BETWEEN 0 AND 255),
    -- The player's account when the node verified it from a join token; NULL for bots and
    -- anonymous players (then `player_key` is the game's or the matchmaker's id).
    account_id   TEXT,
    player_key   TEXT    NOT NULL CHECK (length(player_key) BETWEEN 1 AND 64),
    display_name TEXT    NOT NULL CHECK (length(display_name) BETWEEN 1 AND 32),
    team         INTEGER NOT NULL CHECK (team BETWEEN 0 AND 255),
    kills        INTEGER NOT NULL CHECK (kills >= 0),
    deaths       INTEGER NOT NULL CHECK (deaths >= 0),
    assists      INTEGER NOT NULL CHECK (assists >= 0),
    score        INTEGER NOT NULL,
    left_early   INTEGER NOT NULL CHECK (left_early IN (0, 1)),
    bot          INTEGER NOT NULL CHECK (bot IN (0, 1)),
    -- The match's end, copied here so an account's history is one index walk.
    ended_at     INTEGER NOT NULL,
    PRIMARY KEY (match_id, slot)
);

-- Serves an account's history, newest first, paged by (ended_at, match_id).
CREATE INDEX IF NOT EXISTS match_players_account_idx
    ON match_players (account_id, ended_at DESC, match_id DESC)
    WHERE account_id IS NOT NULL;
