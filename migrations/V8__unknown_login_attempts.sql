-- A login for an email no account has is counted per client network, before its (dummy) hash,
-- with the same two statements a known email's attempt costs in login_attempts: the answer then
-- takes as long whether or not the email has an account. The counts show where logins for
-- unknown emails (credential stuffing) come from; the janitor prunes them after LOCKOUT_WINDOW.
CREATE TABLE unknown_login_attempts (
    network          text        PRIMARY KEY CHECK (char_length(network) <= 64),
    attempts         bigint      NOT NULL DEFAULT 0,
    last_attempt_at  timestamptz NOT NULL DEFAULT now()
);
