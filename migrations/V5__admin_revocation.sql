-- An operator can end every session of an account (`origin revoke-sessions`, and
-- `origin deactivate-user`): a fourth reason for a revoked refresh family.
ALTER TABLE refresh_families DROP CONSTRAINT refresh_families_revoked_reason_check;
ALTER TABLE refresh_families ADD CONSTRAINT refresh_families_revoked_reason_check
    CHECK (revoked_reason IN ('logout', 'reuse', 'password_reset', 'admin'));
