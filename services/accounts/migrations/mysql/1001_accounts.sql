CREATE TABLE IF NOT EXISTS customers (
    id VARCHAR(64) NOT NULL PRIMARY KEY,
    kind VARCHAR(16) NOT NULL,
    name VARCHAR(200) NOT NULL,
    email VARCHAR(254) NOT NULL,
    phone VARCHAR(16) NULL,
    kyc_status VARCHAR(16) NOT NULL,
    created_at VARCHAR(32) NOT NULL,
    updated_at VARCHAR(32) NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- One account per customer and currency; system accounts have no customer.
CREATE TABLE IF NOT EXISTS accounts (
    id VARCHAR(64) NOT NULL PRIMARY KEY,
    customer_id VARCHAR(64) NULL,
    kind VARCHAR(16) NOT NULL,
    currency CHAR(3) NOT NULL,
    status VARCHAR(8) NOT NULL,
    created_at VARCHAR(32) NOT NULL,
    UNIQUE KEY accounts_customer_currency (customer_id, currency),
    CONSTRAINT accounts_customer_fk FOREIGN KEY (customer_id) REFERENCES customers (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
