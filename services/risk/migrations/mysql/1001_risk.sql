-- The rule sets, one row per version; the highest version is in force.
CREATE TABLE IF NOT EXISTS rule_sets (
    version BIGINT NOT NULL PRIMARY KEY,
    document MEDIUMTEXT NOT NULL,
    created_by VARCHAR(64) NOT NULL,
    created_at VARCHAR(32) NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- Every assessed attempt, by the caller's id for it (a payment id): the velocity rules count
-- these, and the same id asked again answers the stored verdict.
CREATE TABLE IF NOT EXISTS assessments (
    id VARCHAR(64) NOT NULL PRIMARY KEY,
    customer_id VARCHAR(64) NOT NULL,
    card_fingerprint CHAR(64) NULL,
    bin VARCHAR(8) NULL,
    country CHAR(2) NULL,
    ip VARCHAR(64) NULL,
    amount_minor BIGINT NOT NULL,
    currency CHAR(3) NOT NULL,
    score INT NOT NULL,
    decision VARCHAR(16) NOT NULL,
    reasons TEXT NOT NULL,
    rules_version BIGINT NOT NULL,
    created_ms BIGINT NOT NULL,
    created_at VARCHAR(32) NOT NULL,
    KEY assessments_card (card_fingerprint, created_ms),
    KEY assessments_customer (customer_id, created_ms),
    KEY assessments_ip (ip, created_ms),
    KEY assessments_decision (decision, created_ms)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
