-- Cloud KMS key-encryption keys are named by their key version
-- (projects/P/locations/L/keyRings/R/cryptoKeys/K/cryptoKeyVersions/N), longer than the local
-- key file's ids; their wrapped data keys are longer too.
ALTER TABLE cards MODIFY kek_id VARCHAR(255) NOT NULL, MODIFY dek_wrapped VARCHAR(512) NOT NULL;
