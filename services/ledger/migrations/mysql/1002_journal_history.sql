-- The journal is the history: a transfer row is its pair of postings (debit on one account,
-- credit on the other), so an account's history is read from `transfers` through two indexes
-- instead of being written a second time as posting rows. `seq` numbers the journal and becomes
-- the clustered key (appends at the end of the table instead of inserting at random ids).
ALTER TABLE transfers
    DROP PRIMARY KEY,
    ADD COLUMN seq BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY FIRST,
    ADD UNIQUE KEY transfers_id (id),
    ADD KEY transfers_debit (debit_account_id, seq),
    ADD KEY transfers_credit (credit_account_id, seq);
DROP TABLE postings;
