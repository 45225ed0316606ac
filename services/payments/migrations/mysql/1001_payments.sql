CREATE TABLE IF NOT EXISTS payments (
    id VARCHAR(64) NOT NULL PRIMARY KEY,
    kind VARCHAR(16) NOT NULL,
    payer_account_id VARCHAR(64) NOT NULL,
    payee_account_id VARCHAR(64) NOT NULL,
    amount_minor BIGINT NOT NULL,
    currency CHAR(3) NOT NULL,
    fee_minor BIGINT NOT NULL,
    status VARCHAR(24) NOT NULL,
    captured_minor BIGINT NOT NULL,
    refunded_minor BIGINT NOT NULL,
    description VARCHAR(200) NOT NULL,
    created_at VARCHAR(32) NOT NULL,
    updated_at VARCHAR(32) NOT NULL,
    CONSTRAINT payments_amounts CHECK (amount_minor > 0 AND fee_minor >= 0 AND captured_minor >= 0
        AND refunded_minor >= 0 AND refunded_minor <= captured_minor AND captured_minor <= amount_minor)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE IF NOT EXISTS refunds (
    id VARCHAR(64) NOT NULL PRIMARY KEY,
    payment_id VARCHAR(64) NOT NULL,
    amount_minor BIGINT NOT NULL,
    created_at VARCHAR(32) NOT NULL,
    KEY refunds_payment (payment_id),
    CONSTRAINT refunds_payment_fk FOREIGN KEY (payment_id) REFERENCES payments (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
