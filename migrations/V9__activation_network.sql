-- An activation code is bound to the network that asked for it (the sign-up's, or a resend's),
-- as the reset codes are: a resend from another network does not replace a live code (nothing
-- is mailed), and at most 2 of a code's 5 guesses may come from other networks.
ALTER TABLE activation_codes
    ADD COLUMN network text NOT NULL DEFAULT '' CHECK (char_length(network) <= 64),
    ADD COLUMN other_attempts integer NOT NULL DEFAULT 0;
