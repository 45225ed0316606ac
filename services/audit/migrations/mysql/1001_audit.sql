-- The audit log: every event delivered on the platform's topics, one record each, in the order
-- recorded. Record n carries the hash of record n - 1 (see src/chain.rs and the README for the
-- recipe). The service only ever inserts records: it never updates or deletes one.
-- `seq` is assigned by the service under the head's lock (not AUTO_INCREMENT), so the seqs are
-- contiguous from 1 and a gap is a removed record. The primary key is the chain order, which is
-- also the order verification and the API read in. Column sizes match the limits of src/chain.rs.
CREATE TABLE IF NOT EXISTS audit_records (
    seq BIGINT NOT NULL PRIMARY KEY,
    event_id VARCHAR(64) NOT NULL,
    topic VARCHAR(255) NOT NULL,
    event_type VARCHAR(255) NOT NULL,
    source VARCHAR(255) NOT NULL,
    subject VARCHAR(255) NOT NULL,
    occurred_at VARCHAR(64) NOT NULL,
    recorded_at VARCHAR(32) NOT NULL,
    data MEDIUMTEXT NOT NULL,
    prev_hash CHAR(64) NOT NULL,
    hash CHAR(64) NOT NULL,
    UNIQUE KEY audit_records_event_id (event_id),
    CONSTRAINT audit_records_seq_from_1 CHECK (seq >= 1)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- The chain's head: one row, the last record's seq and hash (0 and the genesis hash, 64 zeros,
-- while the log is empty). Appends lock it (SELECT ... FOR UPDATE); verification compares it
-- with the last record.
CREATE TABLE IF NOT EXISTS audit_head (
    id INT NOT NULL PRIMARY KEY,
    seq BIGINT NOT NULL,
    hash CHAR(64) NOT NULL,
    updated_at VARCHAR(32) NOT NULL,
    CONSTRAINT audit_head_one_row CHECK (id = 1),
    CONSTRAINT audit_head_seq CHECK (seq >= 0)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
INSERT IGNORE INTO audit_head (id, seq, hash, updated_at)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000', CONCAT(LEFT(DATE_FORMAT(UTC_TIMESTAMP(3), '%Y-%m-%dT%H:%i:%s.%f'), 23), 'Z'));
