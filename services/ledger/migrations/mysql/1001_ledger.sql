-- The ledger: accounts with derived balances, an append-only journal of transfers, postings.
CREATE TABLE IF NOT EXISTS ledger_accounts (
    id VARCHAR(64) NOT NULL PRIMARY KEY,
    currency CHAR(3) NOT NULL,
    allow_overdraft BIGINT NOT NULL,
    status VARCHAR(8) NOT NULL,
    debits_posted BIGINT NOT NULL DEFAULT 0,
    credits_posted BIGINT NOT NULL DEFAULT 0,
    debits_pending BIGINT NOT NULL DEFAULT 0,
    credits_pending BIGINT NOT NULL DEFAULT 0,
    created_at VARCHAR(32) NOT NULL,
    CONSTRAINT ledger_accounts_non_negative
        CHECK (debits_posted >= 0 AND credits_posted >= 0 AND debits_pending >= 0 AND credits_pending >= 0)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- Append-only: a pending transfer is resolved by a later 'post', 'void' or 'expire' row naming it.
CREATE TABLE IF NOT EXISTS transfers (
    id VARCHAR(64) NOT NULL PRIMARY KEY,
    kind VARCHAR(8) NOT NULL,
    debit_account_id VARCHAR(64) NOT NULL,
    credit_account_id VARCHAR(64) NOT NULL,
    amount_minor BIGINT NOT NULL,
    currency CHAR(3) NOT NULL,
    code VARCHAR(32) NOT NULL,
    reference VARCHAR(128) NOT NULL,
    pending_id VARCHAR(64) NULL,
    timeout_ms BIGINT NULL,
    expires_at_ms BIGINT NULL,
    created_at VARCHAR(32) NOT NULL,
    UNIQUE KEY transfers_pending (pending_id),
    KEY transfers_expiry (kind, expires_at_ms)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE IF NOT EXISTS postings (
    seq BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    transfer_id VARCHAR(64) NOT NULL,
    account_id VARCHAR(64) NOT NULL,
    direction CHAR(1) NOT NULL,
    amount_minor BIGINT NOT NULL,
    currency CHAR(3) NOT NULL,
    created_at VARCHAR(32) NOT NULL,
    UNIQUE KEY postings_transfer (transfer_id, direction),
    KEY postings_account (account_id, seq)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
