-- TOTP second factor. The secret is base32; PLACEHOLDER: stored unwrapped, like the signing keys,
-- until identity's secrets are wrapped by the KMS key store.
ALTER TABLE users ADD COLUMN totp_secret VARCHAR(64) NULL, ADD COLUMN totp_enabled BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN totp_last_step BIGINT NULL;

-- A password sign-in of a user with a second factor: the challenge its code answers.
CREATE TABLE IF NOT EXISTS mfa_challenges (
    token_hash CHAR(64) NOT NULL PRIMARY KEY,
    user_id VARCHAR(36) NOT NULL,
    expires_at BIGINT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    used_at BIGINT NULL,
    CONSTRAINT mfa_challenges_user_fk FOREIGN KEY (user_id) REFERENCES users (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
