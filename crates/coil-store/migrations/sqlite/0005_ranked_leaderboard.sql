-- The per-mode ranked leaderboard: each rating's displayed value (coil-match's conservative
-- mean - k*sigma), NULL until the account is calibrated, so the leaderboard is one index walk.
-- The writer computes it (the store knows no rating model); rows rated before this migration
-- get the value the default settings give (k = 3, calibrated after 10 matches).
ALTER TABLE ratings ADD COLUMN displayed REAL;
UPDATE ratings SET displayed = mean - 3 * uncertainty WHERE matches >= 10 AND displayed IS NULL;
CREATE INDEX IF NOT EXISTS ratings_leaderboard_idx ON ratings (mode, displayed DESC, account_id);
