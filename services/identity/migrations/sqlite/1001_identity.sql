-- People and merchants who sign in, and staff. A customer's or merchant's id is also their
-- customer id in accounts.
CREATE TABLE IF NOT EXISTS users (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    email TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    roles TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at TEXT NOT NULL
);

-- Refresh tokens (stored as SHA-256 of the token) grouped in families: one per sign-in. Using a
-- token twice revokes its whole family.
CREATE TABLE IF NOT EXISTS refresh_families (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id),
    created_at INTEGER NOT NULL,
    revoked_at INTEGER NULL,
    revoked_reason TEXT NULL
);
CREATE TABLE IF NOT EXISTS refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    family_id TEXT NOT NULL REFERENCES refresh_families (id),
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at INTEGER NULL
);
CREATE INDEX IF NOT EXISTS refresh_tokens_family ON refresh_tokens (family_id);

-- Merchants' API keys: `fk_<prefix>_<secret>`; only SHA-256 of the whole key is kept.
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY,
    prefix TEXT NOT NULL UNIQUE,
    key_hash TEXT NOT NULL,
    user_id TEXT NOT NULL REFERENCES users (id),
    name TEXT NOT NULL,
    scopes TEXT NOT NULL,
    created_at TEXT NOT NULL,
    revoked_at TEXT NULL
);
CREATE INDEX IF NOT EXISTS api_keys_user ON api_keys (user_id);

-- Ed25519 signing keys. A key is published (JWKS) from its creation and signs from
-- `active_from`, so every verifier can know it before the first token it signs arrives.
CREATE TABLE IF NOT EXISTS signing_keys (
    kid TEXT PRIMARY KEY,
    private_pkcs8 TEXT NOT NULL,
    public_x TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    active_from INTEGER NOT NULL,
    retired_at INTEGER NULL
);
