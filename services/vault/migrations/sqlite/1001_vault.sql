-- Cards: the number only sealed (AES-256-GCM under the card's own data key, that key wrapped by
-- a key-encryption key); the fingerprint is a keyed HMAC of the number; BIN and last 4 for display.
CREATE TABLE IF NOT EXISTS cards (
    token TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    brand TEXT NOT NULL,
    bin TEXT NOT NULL,
    last4 TEXT NOT NULL,
    exp_month INTEGER NOT NULL,
    exp_year INTEGER NOT NULL,
    pan_ciphertext TEXT NOT NULL,
    dek_wrapped TEXT NOT NULL,
    kek_id TEXT NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (customer_id, fingerprint)
);
CREATE INDEX IF NOT EXISTS cards_kek ON cards (kek_id);

-- Every use of a card's number (an authorization at the acquirer), by charge id.
CREATE TABLE IF NOT EXISTS card_uses (
    charge_id TEXT PRIMARY KEY,
    token TEXT NOT NULL REFERENCES cards (token),
    caller TEXT NOT NULL,
    amount_minor INTEGER NOT NULL,
    currency TEXT NOT NULL,
    outcome TEXT NOT NULL,
    created_at TEXT NOT NULL
);
