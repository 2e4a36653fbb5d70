-- Email verification at sign-up (SEND_ACTIVATION_EMAIL): a new account waits for activation,
-- by the emailed link (`users/activation/` {uid, token}) or code ({email, code}). Only an
-- account still pending can be activated: one an operator deactivated cannot activate itself.
ALTER TABLE users ADD COLUMN pending_activation boolean NOT NULL DEFAULT false;

-- The emailed code's hash (HMAC, keyed), as the reset codes' rules: 10 minutes, 5 attempts.
CREATE TABLE activation_codes (
    user_id     bigint      PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    code_hash   bytea       NOT NULL,
    expires_at  timestamptz NOT NULL,
    attempts    integer     NOT NULL DEFAULT 0
);
