//! Password policy and hashing (argon2id, OWASP's parameters: 19 MiB, 2 passes, 1 lane).

use std::sync::{Arc, OnceLock};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use fintech_http::FieldError;
use tokio::sync::Semaphore;

use crate::error::IdentityError;
use crate::tokens::random_bytes;

pub const MIN_PASSWORD_CHARS: usize = 12;
/// Longest password accepted: hashing cost must not grow with the input without bound.
pub const MAX_PASSWORD_CHARS: usize = 128;
/// Hashes computed at once: each takes 19 MiB and a core for tens of milliseconds; more
/// requests wait their turn (bounded by the request deadline).
const CONCURRENT_HASHES: usize = 4;

static COMMON: &str = include_str!("common-passwords.txt");

fn is_common(password: &str) -> bool {
    let lower = password.to_lowercase();
    COMMON.lines().filter(|l| !l.starts_with('#') && !l.is_empty()).any(|l| l == lower)
}

/// Checks a new password: 12 to 128 characters, not a known common password, not the e-mail
/// address or its local part, not one repeated character.
pub fn check_policy(password: &str, email: &str) -> Result<(), FieldError> {
    let chars = password.chars().count();
    let refuse = |code: &str, message: &str| Err(FieldError::new("password", code, message));
    if chars < MIN_PASSWORD_CHARS {
        return refuse("too_short", "must be at least 12 characters");
    }
    if chars > MAX_PASSWORD_CHARS {
        return refuse("too_long", "must be at most 128 characters");
    }
    let lower = password.to_lowercase();
    let email = email.trim().to_lowercase();
    let local = email.split('@').next().unwrap_or_default();
    if is_common(password)
        || lower == email
        || (local.chars().count() >= 4 && lower.contains(local))
        || password.chars().all(|c| password.starts_with(c))
    {
        return refuse("too_common", "is too easy to guess: avoid common passwords and your e-mail address");
    }
    Ok(())
}

fn argon2() -> Argon2<'static> {
    // Argon2::default() is argon2id v0x13 with these parameters; spelled out so a crate upgrade
    // cannot lower them silently.
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

fn permits() -> &'static Arc<Semaphore> {
    static PERMITS: OnceLock<Arc<Semaphore>> = OnceLock::new();
    PERMITS.get_or_init(|| Arc::new(Semaphore::new(CONCURRENT_HASHES)))
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, IdentityError> {
    let _permit = permits().acquire().await.map_err(|_| IdentityError::Internal("hash permits closed".into()))?;
    tokio::task::spawn_blocking(f).await.map_err(|_| IdentityError::Internal("password hashing panicked".into()))
}

/// The PHC string of `password` (random 16-byte salt).
pub async fn hash(password: String) -> Result<String, IdentityError> {
    blocking(move || {
        let salt =
            SaltString::encode_b64(&random_bytes::<16>().map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
        argon2().hash_password(password.as_bytes(), &salt).map(|h| h.to_string()).map_err(|e| e.to_string())
    })
    .await?
    .map_err(|e| IdentityError::Internal(format!("hashing a password: {e}")))
}

/// A hash of a random password, verified against when the e-mail address is unknown so that
/// the answer takes as long as for a known one.
async fn decoy() -> Result<&'static str, IdentityError> {
    static DECOY: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
    DECOY.get_or_try_init(|| hash(format!("{:032x}", rand_u128()))).await.map(String::as_str)
}

fn rand_u128() -> u128 {
    random_bytes::<16>().map(u128::from_le_bytes).unwrap_or_default()
}

/// Whether `password` matches `stored`; with no stored hash, spends the same time and says no.
pub async fn verify(password: String, stored: Option<String>) -> Result<bool, IdentityError> {
    let (phc, real) = match stored {
        Some(h) => (h, true),
        None => (decoy().await?.to_owned(), false),
    };
    let ok = blocking(move || {
        PasswordHash::new(&phc).is_ok_and(|parsed| argon2().verify_password(password.as_bytes(), &parsed).is_ok())
    })
    .await?;
    Ok(ok && real)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy() {
        let email = "ana.lima@example.com";
        assert_eq!(check_policy("short", email).expect_err("refused").code, "too_short");
        assert_eq!(check_policy(&"x".repeat(129), email).expect_err("refused").code, "too_long");
        assert_eq!(check_policy("Password1234", email).expect_err("refused").code, "too_common");
        assert_eq!(check_policy("zzzzzzzzzzzzzz", email).expect_err("refused").code, "too_common");
        assert_eq!(check_policy("ANA.LIMA-secret-99", email).expect_err("refused").code, "too_common");
        check_policy("correct horse battery", email).expect("a passphrase");
        check_policy("ünïcödé-pässwörd", email).expect("counted in characters");
    }

    #[tokio::test]
    async fn hash_and_verify() {
        let phc = hash("a long enough passphrase".into()).await.expect("hash");
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(verify("a long enough passphrase".into(), Some(phc.clone())).await.expect("verify"));
        assert!(!verify("a long enough passphrasE".into(), Some(phc)).await.expect("verify"));
        assert!(!verify("anything at all here".into(), None).await.expect("decoy"));
        assert!(!verify("x".into(), Some("not a phc string".into())).await.expect("garbage"));
    }
}
