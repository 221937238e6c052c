-- Ratings per account and mode, and each rated match's change to them, written in the same
-- transaction as the match (0003), so a match's result and its rating changes are stored
-- together exactly once. The model (Weng-Lin) lives in coil-match; the store keeps numbers.
CREATE TABLE IF NOT EXISTS ratings (
    account_id  TEXT    NOT NULL,
    mode        TEXT    NOT NULL CHECK (char_length(mode) BETWEEN 1 AND 32),
    mean        DOUBLE PRECISION NOT NULL,
    uncertainty DOUBLE PRECISION NOT NULL CHECK (uncertainty >= 0),
    -- Rated matches played: a rating is shown once the account is calibrated.
    matches     BIGINT  NOT NULL CHECK (matches >= 0),
    updated_at  BIGINT  NOT NULL,
    PRIMARY KEY (account_id, mode)
);

CREATE TABLE IF NOT EXISTS rating_changes (
    match_id           TEXT    NOT NULL REFERENCES matches (match_id) ON DELETE CASCADE,
    account_id         TEXT    NOT NULL,
    mode               TEXT    NOT NULL,
    mean_before        DOUBLE PRECISION,  -- NULL: the first rated match
    uncertainty_before DOUBLE PRECISION,
    mean_after         DOUBLE PRECISION NOT NULL,
    uncertainty_after  DOUBLE PRECISION NOT NULL,
    ended_at           BIGINT  NOT NULL,
    PRIMARY KEY (match_id, account_id)
);

-- An account's rating history in one mode, newest first.
CREATE INDEX IF NOT EXISTS rating_changes_account_idx
    ON rating_changes (account_id, mode, ended_at DESC);
