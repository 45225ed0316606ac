-- One outbox row may carry several events staged together by one transaction (a ledger group
-- commit stages thousands): event_count > 1 means the payload is a JSON array of whole event
-- envelopes, published in order. The row's event_id, ordering_key and event_type are its first
-- event's. One row instead of thousands keeps a large commit's write cost close to its business rows.
ALTER TABLE outbox ADD COLUMN event_count BIGINT NOT NULL DEFAULT 1;
