-- Who notifications writes to: each customer's name and contact addresses, from accounts'
-- customer.created events (the customer id is the identity user id).
CREATE TABLE IF NOT EXISTS notification_recipients (
    customer_id VARCHAR(64) NOT NULL PRIMARY KEY,
    name VARCHAR(200) NOT NULL,
    email VARCHAR(254) NOT NULL,
    phone VARCHAR(32) NULL,
    updated_at VARCHAR(32) NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- One row per message an event asked for (event, kind, channel): written before the message
-- leaves, so a redelivered event never sends it twice. The address is kept masked.
CREATE TABLE IF NOT EXISTS notification_deliveries (
    id VARCHAR(36) NOT NULL PRIMARY KEY,
    event_id VARCHAR(64) NOT NULL,
    kind VARCHAR(64) NOT NULL,
    channel VARCHAR(8) NOT NULL,
    customer_id VARCHAR(64) NULL,
    address_hint VARCHAR(64) NOT NULL,
    status VARCHAR(16) NOT NULL,
    message_id VARCHAR(64) NULL,
    detail VARCHAR(300) NULL,
    attempts INT NOT NULL,
    created_at VARCHAR(32) NOT NULL,
    updated_at VARCHAR(32) NOT NULL,
    UNIQUE KEY notification_deliveries_once (event_id, kind, channel),
    KEY notification_deliveries_message (message_id),
    KEY notification_deliveries_customer (customer_id, created_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
