-- Sessions the account's owner can see and end (`GET sessions/`, `DELETE sessions/{id}/`,
-- `sessions/revoke-others/`, `users/set_password/`): each refresh family remembers the client
-- it was opened from (as the edge saw it at login) and when it was last refreshed, and two more
-- revocation reasons name who ended it.
ALTER TABLE refresh_families
    ADD COLUMN user_agent text NOT NULL DEFAULT '' CHECK (char_length(user_agent) <= 256),
    ADD COLUMN client_network text NOT NULL DEFAULT '' CHECK (char_length(client_network) <= 64),
    ADD COLUMN last_used_at timestamptz NOT NULL DEFAULT now();
UPDATE refresh_families f SET last_used_at = coalesce(
    (SELECT max(t.issued_at) FROM refresh_tokens t WHERE t.family_id = f.id), f.created_at);
ALTER TABLE refresh_families DROP CONSTRAINT refresh_families_revoked_reason_check;
ALTER TABLE refresh_families ADD CONSTRAINT refresh_families_revoked_reason_check
    CHECK (revoked_reason IN ('logout', 'reuse', 'password_reset', 'admin', 'owner', 'password_change'));
