-- The accounts statements are made for, and whose they are (from accounts' account.opened).
CREATE TABLE IF NOT EXISTS statement_accounts (
    account_id TEXT NOT NULL PRIMARY KEY,
    customer_id TEXT NOT NULL,
    currency TEXT NOT NULL,
    opened_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS statement_accounts_customer ON statement_accounts (customer_id);

-- One statement per account and month; its files are in the bucket under statements/<id>.
CREATE TABLE IF NOT EXISTS statements (
    id TEXT NOT NULL PRIMARY KEY,
    account_id TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    month TEXT NOT NULL,
    currency TEXT NOT NULL,
    opening_minor INTEGER NOT NULL,
    closing_minor INTEGER NOT NULL,
    credits_minor INTEGER NOT NULL,
    debits_minor INTEGER NOT NULL,
    line_count INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (account_id, month)
);
CREATE INDEX IF NOT EXISTS statements_customer ON statements (customer_id, month);
