-- Who notifications writes to: each customer's name and contact addresses, from accounts'
-- customer.created events (the customer id is the identity user id).
CREATE TABLE IF NOT EXISTS notification_recipients (
    customer_id TEXT NOT NULL PRIMARY KEY,
    name TEXT NOT NULL,
    email TEXT NOT NULL,
    phone TEXT NULL,
    updated_at TEXT NOT NULL
);

-- One row per message an event asked for (event, kind, channel): written before the message
-- leaves, so a redelivered event never sends it twice. The address is kept masked.
CREATE TABLE IF NOT EXISTS notification_deliveries (
    id TEXT NOT NULL PRIMARY KEY,
    event_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    channel TEXT NOT NULL,
    customer_id TEXT NULL,
    address_hint TEXT NOT NULL,
    status TEXT NOT NULL,
    message_id TEXT NULL,
    detail TEXT NULL,
    attempts INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (event_id, kind, channel)
);
CREATE INDEX IF NOT EXISTS notification_deliveries_message ON notification_deliveries (message_id);
CREATE INDEX IF NOT EXISTS notification_deliveries_customer ON notification_deliveries (customer_id, created_at);
