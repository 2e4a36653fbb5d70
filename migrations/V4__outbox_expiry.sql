-- An email can be worth sending only for a while: a reset code is dead after 10 minutes. Past
-- `expires_at` the sender gives the row up instead of retrying it forever with the code in it:
-- it sets `abandoned_at` and blanks the bodies. NULL `expires_at`: no expiry.
ALTER TABLE email_outbox ADD COLUMN expires_at timestamptz;
ALTER TABLE email_outbox ADD COLUMN abandoned_at timestamptz;
DROP INDEX email_outbox_pending;
CREATE INDEX email_outbox_pending ON email_outbox (next_attempt_at)
    WHERE sent_at IS NULL AND abandoned_at IS NULL;
