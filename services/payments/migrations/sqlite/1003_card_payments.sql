-- Card payments: the card's vault token and last 4 digits (never the number), and why a
-- declined card was declined.
ALTER TABLE payments ADD COLUMN card_token TEXT NULL;
ALTER TABLE payments ADD COLUMN card_last4 TEXT NULL;
ALTER TABLE payments ADD COLUMN decline_code TEXT NULL;
