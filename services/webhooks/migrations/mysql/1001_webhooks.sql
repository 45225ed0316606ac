-- Merchants' endpoints: where their events go, and the secret deliveries are signed with.
CREATE TABLE IF NOT EXISTS webhook_endpoints (
    id VARCHAR(36) NOT NULL PRIMARY KEY,
    merchant_id VARCHAR(64) NOT NULL,
    url VARCHAR(2048) NOT NULL,
    secret VARCHAR(100) NOT NULL,
    events VARCHAR(1000) NOT NULL,
    status VARCHAR(16) NOT NULL,
    consecutive_failures INT NOT NULL,
    disabled_reason VARCHAR(300) NULL,
    created_at VARCHAR(32) NOT NULL,
    updated_at VARCHAR(32) NOT NULL,
    KEY webhook_endpoints_merchant (merchant_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- One row per (endpoint, event): what was sent, how often, and when it is tried next.
CREATE TABLE IF NOT EXISTS webhook_deliveries (
    id VARCHAR(36) NOT NULL PRIMARY KEY,
    endpoint_id VARCHAR(36) NOT NULL,
    event_id VARCHAR(64) NOT NULL,
    event_type VARCHAR(100) NOT NULL,
    payload MEDIUMTEXT NOT NULL,
    status VARCHAR(16) NOT NULL,
    attempts INT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    last_status_code INT NULL,
    last_error VARCHAR(300) NULL,
    created_at VARCHAR(32) NOT NULL,
    updated_at VARCHAR(32) NOT NULL,
    UNIQUE KEY webhook_deliveries_once (endpoint_id, event_id),
    KEY webhook_deliveries_due (status, next_attempt_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
