-- People and merchants who sign in, and staff. A customer's or merchant's id is also their
-- customer id in accounts.
CREATE TABLE IF NOT EXISTS users (
    id VARCHAR(36) NOT NULL PRIMARY KEY,
    kind VARCHAR(16) NOT NULL,
    email VARCHAR(254) NOT NULL,
    password_hash VARCHAR(255) NOT NULL,
    roles VARCHAR(64) NOT NULL,
    status VARCHAR(16) NOT NULL,
    created_at VARCHAR(32) NOT NULL,
    UNIQUE KEY users_email (email)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- Refresh tokens (stored as SHA-256 of the token) grouped in families: one per sign-in. Using a
-- token twice revokes its whole family.
CREATE TABLE IF NOT EXISTS refresh_families (
    id VARCHAR(36) NOT NULL PRIMARY KEY,
    user_id VARCHAR(36) NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT NULL,
    revoked_reason VARCHAR(32) NULL,
    CONSTRAINT refresh_families_user_fk FOREIGN KEY (user_id) REFERENCES users (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
CREATE TABLE IF NOT EXISTS refresh_tokens (
    token_hash CHAR(64) NOT NULL PRIMARY KEY,
    family_id VARCHAR(36) NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT NULL,
    KEY refresh_tokens_family (family_id),
    CONSTRAINT refresh_tokens_family_fk FOREIGN KEY (family_id) REFERENCES refresh_families (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- Merchants' API keys: `fk_<prefix>_<secret>`; only SHA-256 of the whole key is kept.
CREATE TABLE IF NOT EXISTS api_keys (
    id VARCHAR(36) NOT NULL PRIMARY KEY,
    prefix VARCHAR(16) NOT NULL,
    key_hash CHAR(64) NOT NULL,
    user_id VARCHAR(36) NOT NULL,
    name VARCHAR(100) NOT NULL,
    scopes VARCHAR(255) NOT NULL,
    created_at VARCHAR(32) NOT NULL,
    revoked_at VARCHAR(32) NULL,
    UNIQUE KEY api_keys_prefix (prefix),
    KEY api_keys_user (user_id),
    CONSTRAINT api_keys_user_fk FOREIGN KEY (user_id) REFERENCES users (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- Ed25519 signing keys. A key is published (JWKS) from its creation and signs from
-- `active_from`, so every verifier can know it before the first token it signs arrives.
CREATE TABLE IF NOT EXISTS signing_keys (
    kid VARCHAR(64) NOT NULL PRIMARY KEY,
    private_pkcs8 VARCHAR(255) NOT NULL,
    public_x VARCHAR(64) NOT NULL,
    created_at BIGINT NOT NULL,
    active_from BIGINT NOT NULL,
    retired_at BIGINT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
