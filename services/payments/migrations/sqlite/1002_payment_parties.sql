-- The customers on each side of a payment, from accounts when it was made: who may see it and
-- who may capture, cancel or refund it. NULL for system accounts.
ALTER TABLE payments ADD COLUMN payer_customer_id TEXT NULL;
ALTER TABLE payments ADD COLUMN payee_customer_id TEXT NULL;
