-- An outbox row may name events instead of carrying them: `derived_from` is the name of the
-- service's event source (for example the ledger's journal) and the payload is the JSON array of
-- the keys of the rows those events are built from, in order. The rows are committed in the same
-- transaction as the outbox row and never change, so the relay builds the same events every time
-- it reads them. A ledger group commit of thousands of transfers then writes a few bytes per event
-- instead of a second copy of every transfer.
ALTER TABLE outbox ADD COLUMN derived_from TEXT NULL;
