-- Login back-off per (account, client network): failures are counted before the password is
-- hashed (a burst of parallel guesses cannot slip past the threshold), and a network that
-- logged into the account recently stays "known", so another network's guessing never locks the
-- owner out. users.failed_logins stays the account-wide count (the wall for unknown networks).
CREATE TABLE login_attempts (
    user_id          bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- As the edge signed it (X-Client-Network): an address or prefix, '' when unknown.
    network          text        NOT NULL CHECK (char_length(network) <= 64),
    failures         integer     NOT NULL DEFAULT 0,
    last_failure_at  timestamptz,
    last_success_at  timestamptz,
    PRIMARY KEY (user_id, network)
);
