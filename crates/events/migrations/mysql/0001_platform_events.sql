-- Platform tables present in every service database: the transactional outbox, the relay's
-- lease, and the inbox of processed event ids. Versions 1-999 are the platform's.
CREATE TABLE IF NOT EXISTS outbox (
    seq BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    event_id VARCHAR(64) NOT NULL,
    topic VARCHAR(128) NOT NULL,
    ordering_key VARCHAR(128) NOT NULL,
    event_type VARCHAR(128) NOT NULL,
    source VARCHAR(64) NOT NULL,
    occurred_at VARCHAR(32) NOT NULL,
    payload MEDIUMTEXT NOT NULL,
    published_at VARCHAR(32) NULL,
    UNIQUE KEY outbox_event_id (event_id),
    KEY outbox_unpublished (published_at, seq)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE IF NOT EXISTS outbox_lease (
    name VARCHAR(64) NOT NULL PRIMARY KEY,
    owner VARCHAR(64) NOT NULL,
    expires_at_ms BIGINT NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
INSERT IGNORE INTO outbox_lease (name, owner, expires_at_ms) VALUES ('relay', '', 0);

CREATE TABLE IF NOT EXISTS inbox (
    consumer VARCHAR(64) NOT NULL,
    event_id VARCHAR(64) NOT NULL,
    processed_at VARCHAR(32) NOT NULL,
    PRIMARY KEY (consumer, event_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
