-- The accounts statements are made for, and whose they are (from accounts' account.opened).
CREATE TABLE IF NOT EXISTS statement_accounts (
    account_id VARCHAR(64) NOT NULL PRIMARY KEY,
    customer_id VARCHAR(64) NOT NULL,
    currency VARCHAR(3) NOT NULL,
    opened_at VARCHAR(32) NOT NULL,
    KEY statement_accounts_customer (customer_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- One statement per account and month; its files are in the bucket under statements/<id>.
CREATE TABLE IF NOT EXISTS statements (
    id VARCHAR(36) NOT NULL PRIMARY KEY,
    account_id VARCHAR(64) NOT NULL,
    customer_id VARCHAR(64) NOT NULL,
    month VARCHAR(7) NOT NULL,
    currency VARCHAR(3) NOT NULL,
    opening_minor BIGINT NOT NULL,
    closing_minor BIGINT NOT NULL,
    credits_minor BIGINT NOT NULL,
    debits_minor BIGINT NOT NULL,
    line_count INT NOT NULL,
    created_at VARCHAR(32) NOT NULL,
    UNIQUE KEY statements_once (account_id, month),
    KEY statements_customer (customer_id, month)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
