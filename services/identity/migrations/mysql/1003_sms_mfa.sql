-- SMS second factor. `phone` is the E.164 number (`+15551234567`) codes are sent to, set when
-- its enrolment code is confirmed; `sms_enabled` is then 1.
ALTER TABLE users ADD COLUMN phone VARCHAR(16) NULL, ADD COLUMN sms_enabled BIGINT NOT NULL DEFAULT 0;

-- One-time codes sent by SMS: for an enrolment (`purpose` 'enrol', to `phone`) or a sign-in
-- challenge (`purpose` 'sign_in', `challenge_hash` the challenge's `token_hash`). Never the code:
-- `code_hash` is SHA-256 hex of `code_salt` (16 random bytes, hex), ':' and the code. A code is
-- spent or replaced by a newer one (`used_at`), and dies after 5 wrong tries (`attempts`) or at
-- `expires_at` (Unix seconds).
CREATE TABLE IF NOT EXISTS sms_codes (
    id VARCHAR(36) NOT NULL PRIMARY KEY,
    user_id VARCHAR(36) NOT NULL,
    purpose VARCHAR(16) NOT NULL,
    challenge_hash CHAR(64) NULL,
    phone VARCHAR(16) NOT NULL,
    code_salt CHAR(32) NOT NULL,
    code_hash CHAR(64) NOT NULL,
    expires_at BIGINT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    used_at BIGINT NULL,
    created_at BIGINT NOT NULL,
    KEY sms_codes_user (user_id, purpose),
    KEY sms_codes_challenge (challenge_hash),
    CONSTRAINT sms_codes_user_fk FOREIGN KEY (user_id) REFERENCES users (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
