-- Accounts, their credentials, sessions with refresh-token families, roles and bans.
-- Every time is Unix milliseconds (BIGINT) and every id is text (32 lowercase hex characters),
-- so the SQL that reads and writes these tables is the same text on SQLite and PostgreSQL.
CREATE TABLE IF NOT EXISTS accounts (
    id               TEXT    PRIMARY KEY CHECK (char_length(id) = 32),
    -- The username as typed (trimmed); NULL for a guest until it is upgraded.
    username         TEXT    NULL CHECK (username IS NULL OR char_length(username) BETWEEN 1 AND 16),
    -- Lower-cased username: login looks accounts up by it, and it is unique.
    username_folded  TEXT    NULL UNIQUE,
    display_name     TEXT    NOT NULL CHECK (char_length(display_name) BETWEEN 1 AND 16),
    kind             TEXT    NOT NULL CHECK (kind IN ('guest', 'registered')),
    -- Argon2id PHC string; NULL for guests (they hold a device secret instead).
    password_hash    TEXT    NULL,
    preferred_region TEXT    NULL CHECK (preferred_region IS NULL OR char_length(preferred_region) BETWEEN 1 AND 64),
    single_session   BOOLEAN NOT NULL DEFAULT FALSE,
    created_at       BIGINT  NOT NULL CHECK (created_at >= 0),
    updated_at       BIGINT  NOT NULL CHECK (updated_at >= 0)
);

-- Confusable-skeleton keys of every username: two accounts can never hold a key in common, so a
-- name that differs from a taken one only in case or in look-alike characters is refused by the
-- database itself, even when two registrations race.
CREATE TABLE IF NOT EXISTS account_name_keys (
    name_key   TEXT NOT NULL PRIMARY KEY CHECK (char_length(name_key) BETWEEN 1 AND 256),
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS account_name_keys_account_idx ON account_name_keys (account_id);

-- A guest's device secret, stored only as its SHA-256 (hex). The secret is 128+ random bits
-- chosen by the client, so a fast hash is enough (nothing to brute-force).
CREATE TABLE IF NOT EXISTS guest_credentials (
    secret_hash TEXT   NOT NULL PRIMARY KEY CHECK (char_length(secret_hash) = 64),
    account_id  TEXT   NOT NULL UNIQUE REFERENCES accounts (id) ON DELETE CASCADE,
    created_at  BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS account_roles (
    account_id TEXT   NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    role       TEXT   NOT NULL CHECK (role IN ('player', 'admin', 'server')),
    granted_at BIGINT NOT NULL,
    PRIMARY KEY (account_id, role)
);

-- A session is one refresh-token family: created by a login, alive while its refresh tokens
-- rotate, ended by logout, revocation, a ban, a takeover or a replayed refresh token.
CREATE TABLE IF NOT EXISTS sessions (
    id           TEXT   PRIMARY KEY CHECK (char_length(id) = 32),
    account_id   TEXT   NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    ended_at     BIGINT NULL,
    end_reason   TEXT   NULL,
    user_agent   TEXT   NULL CHECK (user_agent IS NULL OR char_length(user_agent) <= 200),
    client_ip    TEXT   NULL CHECK (client_ip IS NULL OR char_length(client_ip) <= 64)
);
CREATE INDEX IF NOT EXISTS sessions_account_idx ON sessions (account_id, ended_at);
CREATE INDEX IF NOT EXISTS sessions_expiry_idx ON sessions (expires_at);

-- Every refresh token a live session was given, as SHA-256 (hex). The current one has
-- used_at NULL; a used one presented again is a replay and ends the family. Rows go when their
-- session ends.
CREATE TABLE IF NOT EXISTS refresh_tokens (
    token_hash TEXT   NOT NULL PRIMARY KEY CHECK (char_length(token_hash) = 64),
    session_id TEXT   NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    issued_at  BIGINT NOT NULL,
    used_at    BIGINT NULL
);
CREATE INDEX IF NOT EXISTS refresh_tokens_session_idx ON refresh_tokens (session_id);

-- Bans: until_at NULL is forever; lifted_at ends one early. History is kept.
CREATE TABLE IF NOT EXISTS bans (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id TEXT   NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    reason     TEXT   NOT NULL CHECK (char_length(reason) BETWEEN 1 AND 500),
    banned_at  BIGINT NOT NULL,
    until_at   BIGINT NULL,
    lifted_at  BIGINT NULL
);
CREATE INDEX IF NOT EXISTS bans_account_idx ON bans (account_id);

-- Leaderboard rows carry the account when the player had one (NULL: anonymous arena play).
ALTER TABLE scores ADD COLUMN IF NOT EXISTS account_id TEXT NULL;
