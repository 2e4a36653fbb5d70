-- Users, refresh-token families, used reset tokens, the email outbox and the audit log.

CREATE TABLE users (
    id                   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email                text        NOT NULL CHECK (char_length(email) BETWEEN 3 AND 254),
    username             text        NOT NULL CHECK (char_length(username) BETWEEN 1 AND 150),
    -- PHC string (argon2id; pbkdf2_sha256 for users imported from Django until they log in).
    password_hash        text        NOT NULL,
    role                 text        NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'admin')),
    first_name           text        NOT NULL DEFAULT '' CHECK (char_length(first_name) <= 150),
    last_name            text        NOT NULL DEFAULT '' CHECK (char_length(last_name) <= 150),
    is_active            boolean     NOT NULL DEFAULT true,
    date_joined          timestamptz NOT NULL DEFAULT now(),
    last_login           timestamptz,
    password_changed_at  timestamptz NOT NULL DEFAULT now(),
    -- Carried in every token as `ver`; a password reset bumps it so older tokens stop working.
    token_version        integer     NOT NULL DEFAULT 0,
    -- Failed logins in the current window (ASVS 2.2.1 lockout).
    failed_logins        integer     NOT NULL DEFAULT 0,
    failed_logins_since  timestamptz
);
-- Login and registration look users up by email case-insensitively; one account per address.
CREATE UNIQUE INDEX users_email_lower_key ON users (lower(email));
-- Django's username uniqueness is case-sensitive; kept for compatibility.
CREATE UNIQUE INDEX users_username_key ON users (username);

-- One family per login; rotation adds tokens to it, reuse or logout revokes it whole.
CREATE TABLE refresh_families (
    id          uuid        PRIMARY KEY,
    user_id     bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz,
    revoked_reason text CHECK (revoked_reason IN ('logout', 'reuse', 'password_reset'))
);
CREATE INDEX refresh_families_live_by_user ON refresh_families (user_id) WHERE revoked_at IS NULL;

CREATE TABLE refresh_tokens (
    jti         uuid        PRIMARY KEY,
    family_id   uuid        NOT NULL REFERENCES refresh_families (id) ON DELETE CASCADE,
    parent_jti  uuid        REFERENCES refresh_tokens (jti) ON DELETE CASCADE,
    user_id     bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    issued_at   timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    -- Set when the token is rotated (exchanged for its child).
    used_at     timestamptz
);
CREATE INDEX refresh_tokens_by_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_by_parent ON refresh_tokens (parent_jti);
CREATE INDEX refresh_tokens_by_user ON refresh_tokens (user_id);
CREATE INDEX refresh_tokens_by_expiry ON refresh_tokens (expires_at);

-- Reset tokens are single use: their jti is recorded when consumed.
CREATE TABLE password_resets (
    jti      text        PRIMARY KEY CHECK (char_length(jti) <= 64),
    user_id  bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    used_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX password_resets_by_user ON password_resets (user_id);

-- Written in the same transaction as the event; a background task sends and marks rows.
-- Bodies are blanked once sent (they hold reset codes); rows are never deleted on failure.
CREATE TABLE email_outbox (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind             text        NOT NULL,
    to_address       text        NOT NULL,
    subject          text        NOT NULL,
    body_text        text        NOT NULL,
    body_html        text        NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    attempts         integer     NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    sent_at          timestamptz,
    last_error       text
);
CREATE INDEX email_outbox_pending ON email_outbox (next_attempt_at) WHERE sent_at IS NULL;

CREATE TABLE audit_log (
    id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at       timestamptz NOT NULL DEFAULT now(),
    user_id  bigint REFERENCES users (id) ON DELETE SET NULL,
    event    text        NOT NULL,
    detail   jsonb       NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX audit_log_by_user ON audit_log (user_id, at);
CREATE INDEX audit_log_by_event ON audit_log (event, at);
