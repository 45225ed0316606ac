-- The journal is the history: a transfer row is its pair of postings (debit on one account,
-- credit on the other), so an account's history is read from `transfers` through two indexes
-- instead of being written a second time as posting rows. `seq` numbers the journal (an
-- INTEGER PRIMARY KEY: stable, unlike an implicit rowid, which VACUUM may renumber).
-- Indexes that only concern a few rows are partial: hold resolutions (`pending_id`) and live
-- holds (the expiry sweep).
CREATE TABLE transfers_journal (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    debit_account_id TEXT NOT NULL,
    credit_account_id TEXT NOT NULL,
    amount_minor INTEGER NOT NULL,
    currency TEXT NOT NULL,
    code TEXT NOT NULL,
    reference TEXT NOT NULL,
    pending_id TEXT,
    timeout_ms INTEGER,
    expires_at_ms INTEGER,
    created_at TEXT NOT NULL
);
-- Existing rows keep the order they were recorded in.
INSERT INTO transfers_journal (id, kind, debit_account_id, credit_account_id, amount_minor, currency, code,
    reference, pending_id, timeout_ms, expires_at_ms, created_at)
SELECT id, kind, debit_account_id, credit_account_id, amount_minor, currency, code,
    reference, pending_id, timeout_ms, expires_at_ms, created_at
FROM transfers ORDER BY rowid;
DROP TABLE transfers;
DROP TABLE postings;
ALTER TABLE transfers_journal RENAME TO transfers;
CREATE UNIQUE INDEX transfers_pending ON transfers (pending_id) WHERE pending_id IS NOT NULL;
CREATE INDEX transfers_expiry ON transfers (expires_at_ms) WHERE kind = 'pending';
CREATE INDEX transfers_debit ON transfers (debit_account_id, seq);
CREATE INDEX transfers_credit ON transfers (credit_account_id, seq);
