-- Cloud KMS key versions as key-encryption key ids: SQLite's TEXT columns already hold them.
-- (The MySQL migration of the same number widens kek_id and dek_wrapped.)
SELECT 1;
