-- Card payments: the card's vault token and last 4 digits (never the number), and why a
-- declined card was declined.
ALTER TABLE payments ADD COLUMN card_token VARCHAR(40) NULL, ADD COLUMN card_last4 CHAR(4) NULL,
    ADD COLUMN decline_code VARCHAR(32) NULL;
