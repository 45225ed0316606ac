-- Cards: the number only sealed (AES-256-GCM under the card's own data key, that key wrapped by
-- a key-encryption key); the fingerprint is a keyed HMAC of the number; BIN and last 4 for display.
CREATE TABLE IF NOT EXISTS cards (
    token VARCHAR(40) NOT NULL PRIMARY KEY,
    customer_id VARCHAR(64) NOT NULL,
    fingerprint CHAR(64) NOT NULL,
    brand VARCHAR(16) NOT NULL,
    bin CHAR(6) NOT NULL,
    last4 CHAR(4) NOT NULL,
    exp_month INT NOT NULL,
    exp_year INT NOT NULL,
    pan_ciphertext VARCHAR(255) NOT NULL,
    dek_wrapped VARCHAR(255) NOT NULL,
    kek_id VARCHAR(64) NOT NULL,
    created_at VARCHAR(32) NOT NULL,
    UNIQUE KEY cards_customer_fingerprint (customer_id, fingerprint),
    KEY cards_kek (kek_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- Every use of a card's number (an authorization at the acquirer), by charge id.
CREATE TABLE IF NOT EXISTS card_uses (
    charge_id VARCHAR(64) NOT NULL PRIMARY KEY,
    token VARCHAR(40) NOT NULL,
    caller VARCHAR(64) NOT NULL,
    amount_minor BIGINT NOT NULL,
    currency CHAR(3) NOT NULL,
    outcome VARCHAR(32) NOT NULL,
    created_at VARCHAR(32) NOT NULL,
    CONSTRAINT card_uses_card_fk FOREIGN KEY (token) REFERENCES cards (token)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
