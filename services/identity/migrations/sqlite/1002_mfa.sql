-- TOTP second factor. The secret is base32; PLACEHOLDER: stored unwrapped, like the signing keys,
-- until identity's secrets are wrapped by the KMS key store.
ALTER TABLE users ADD COLUMN totp_secret TEXT NULL;
ALTER TABLE users ADD COLUMN totp_enabled INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN totp_last_step INTEGER NULL;

-- A password sign-in of a user with a second factor: the challenge its code answers.
CREATE TABLE IF NOT EXISTS mfa_challenges (
    token_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id),
    expires_at INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    used_at INTEGER NULL
);
