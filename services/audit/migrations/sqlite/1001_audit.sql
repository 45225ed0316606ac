-- The audit log: every event delivered on the platform's topics, one record each, in the order
-- recorded. Record n carries the hash of record n - 1 (see src/chain.rs and the README for the
-- recipe). The service only ever inserts records: it never updates or deletes one.
-- `seq` is assigned by the service under the head's lock (not AUTOINCREMENT), so the seqs are
-- contiguous from 1 and a gap is a removed record.
CREATE TABLE IF NOT EXISTS audit_records (
    seq INTEGER NOT NULL PRIMARY KEY CHECK (seq >= 1),
    event_id TEXT NOT NULL UNIQUE,
    topic TEXT NOT NULL,
    event_type TEXT NOT NULL,
    source TEXT NOT NULL,
    subject TEXT NOT NULL,
    occurred_at TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    data TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);

-- The chain's head: one row, the last record's seq and hash (0 and the genesis hash, 64 zeros,
-- while the log is empty). Appends lock it; verification compares it with the last record.
CREATE TABLE IF NOT EXISTS audit_head (
    id INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL CHECK (seq >= 0),
    hash TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
INSERT OR IGNORE INTO audit_head (id, seq, hash, updated_at)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000', strftime('%Y-%m-%dT%H:%M:%fZ', 'now'));
