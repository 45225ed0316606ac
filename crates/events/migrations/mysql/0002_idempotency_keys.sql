-- Idempotency-Key results (Stripe semantics), per service database.
CREATE TABLE IF NOT EXISTS idempotency_keys (
    scope VARCHAR(64) NOT NULL,
    idem_key VARCHAR(255) NOT NULL,
    request_hash CHAR(64) NOT NULL,
    state VARCHAR(12) NOT NULL,
    response_status INT NULL,
    response_content_type VARCHAR(128) NULL,
    response_body MEDIUMTEXT NULL,
    locked_until_ms BIGINT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    PRIMARY KEY (scope, idem_key),
    KEY idempotency_keys_age (created_at_ms)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
