-- SMS second factor. `phone` is the E.164 number (`+15551234567`) codes are sent to, set when
-- its enrolment code is confirmed; `sms_enabled` is then 1.
ALTER TABLE users ADD COLUMN phone TEXT NULL;
ALTER TABLE users ADD COLUMN sms_enabled INTEGER NOT NULL DEFAULT 0;

-- One-time codes sent by SMS: for an enrolment (`purpose` 'enrol', to `phone`) or a sign-in
-- challenge (`purpose` 'sign_in', `challenge_hash` the challenge's `token_hash`). Never the code:
-- `code_hash` is SHA-256 hex of `code_salt` (16 random bytes, hex), ':' and the code. A code is
-- spent or replaced by a newer one (`used_at`), and dies after 5 wrong tries (`attempts`) or at
-- `expires_at` (Unix seconds).
CREATE TABLE IF NOT EXISTS sms_codes (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id),
    purpose TEXT NOT NULL,
    challenge_hash TEXT NULL,
    phone TEXT NOT NULL,
    code_salt TEXT NOT NULL,
    code_hash TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    used_at INTEGER NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS sms_codes_user ON sms_codes (user_id, purpose);
CREATE INDEX IF NOT EXISTS sms_codes_challenge ON sms_codes (challenge_hash);
