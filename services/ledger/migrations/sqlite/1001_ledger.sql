-- The ledger: accounts with derived balances, an append-only journal of transfers, postings.
CREATE TABLE IF NOT EXISTS ledger_accounts (
    id TEXT PRIMARY KEY,
    currency TEXT NOT NULL,
    allow_overdraft INTEGER NOT NULL,
    status TEXT NOT NULL,
    debits_posted INTEGER NOT NULL DEFAULT 0,
    credits_posted INTEGER NOT NULL DEFAULT 0,
    debits_pending INTEGER NOT NULL DEFAULT 0,
    credits_pending INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    CHECK (debits_posted >= 0 AND credits_posted >= 0 AND debits_pending >= 0 AND credits_pending >= 0)
);

-- Append-only: a pending transfer is resolved by a later 'post', 'void' or 'expire' row naming it.
CREATE TABLE IF NOT EXISTS transfers (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    debit_account_id TEXT NOT NULL,
    credit_account_id TEXT NOT NULL,
    amount_minor INTEGER NOT NULL,
    currency TEXT NOT NULL,
    code TEXT NOT NULL,
    reference TEXT NOT NULL,
    pending_id TEXT UNIQUE,
    timeout_ms INTEGER,
    expires_at_ms INTEGER,
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS transfers_expiry ON transfers (kind, expires_at_ms);

CREATE TABLE IF NOT EXISTS postings (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    transfer_id TEXT NOT NULL,
    account_id TEXT NOT NULL,
    direction TEXT NOT NULL,
    amount_minor INTEGER NOT NULL,
    currency TEXT NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (transfer_id, direction)
);
CREATE INDEX IF NOT EXISTS postings_account ON postings (account_id, seq);
