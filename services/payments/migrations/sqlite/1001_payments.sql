CREATE TABLE IF NOT EXISTS payments (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    payer_account_id TEXT NOT NULL,
    payee_account_id TEXT NOT NULL,
    amount_minor INTEGER NOT NULL,
    currency TEXT NOT NULL,
    fee_minor INTEGER NOT NULL,
    status TEXT NOT NULL,
    captured_minor INTEGER NOT NULL,
    refunded_minor INTEGER NOT NULL,
    description TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    CHECK (amount_minor > 0 AND fee_minor >= 0 AND captured_minor >= 0 AND refunded_minor >= 0
           AND refunded_minor <= captured_minor AND captured_minor <= amount_minor)
);

CREATE TABLE IF NOT EXISTS refunds (
    id TEXT PRIMARY KEY,
    payment_id TEXT NOT NULL REFERENCES payments (id),
    amount_minor INTEGER NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS refunds_payment ON refunds (payment_id);
