-- A Message-ID fixed when the email is queued: a retry after a crash between the SMTP server's
-- acceptance and our commit carries the same Message-ID, so mail systems can recognise it.
ALTER TABLE email_outbox ADD COLUMN message_id uuid NOT NULL DEFAULT gen_random_uuid();
