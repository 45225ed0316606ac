-- The rule sets, one row per version; the highest version is in force.
CREATE TABLE IF NOT EXISTS rule_sets (
    version INTEGER PRIMARY KEY,
    document TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL
);

-- Every assessed attempt, by the caller's id for it (a payment id): the velocity rules count
-- these, and the same id asked again answers the stored verdict.
CREATE TABLE IF NOT EXISTS assessments (
    id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL,
    card_fingerprint TEXT,
    bin TEXT,
    country TEXT,
    ip TEXT,
    amount_minor INTEGER NOT NULL,
    currency TEXT NOT NULL,
    score INTEGER NOT NULL,
    decision TEXT NOT NULL,
    reasons TEXT NOT NULL,
    rules_version INTEGER NOT NULL,
    created_ms INTEGER NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS assessments_card ON assessments (card_fingerprint, created_ms);
CREATE INDEX IF NOT EXISTS assessments_customer ON assessments (customer_id, created_ms);
CREATE INDEX IF NOT EXISTS assessments_ip ON assessments (ip, created_ms);
CREATE INDEX IF NOT EXISTS assessments_decision ON assessments (decision, created_ms);
