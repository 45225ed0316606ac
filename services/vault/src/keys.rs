//! Envelope encryption. Each card's number is sealed with its own fresh AES-256-GCM data key
//! (DEK); the DEK is stored only wrapped by a key-encryption key (KEK) that never leaves the key
//! store. Rotating the KEK re-wraps the DEKs; the numbers are not decrypted.
//!
//! [`LocalKeyFile`] is the embedded mode's key store: a JSON file (mode 0600) with the KEKs and
//! the fingerprint key. [`crate::kms::CloudKms`] is the distributed mode's: the KEK is a Cloud
//! KMS key (its versions are the KEK ids) and the fingerprint key a Cloud KMS HMAC key; no key
//! material ever reaches vault.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::domain::Pan;

/// Key-store and cipher failures. They never carry key material or plaintext.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("key-encryption key {0} is unknown or retired")]
    UnknownKek(String),
    #[error("decryption failed: wrong key or altered ciphertext")]
    Decrypt,
    #[error("key store: {0}")]
    Store(String),
}

fn random<const N: usize>() -> Result<Zeroizing<[u8; N]>, KeyError> {
    let mut bytes = Zeroizing::new([0u8; N]);
    SystemRandom::new().fill(bytes.as_mut()).map_err(|_| KeyError::Store("no system random generator".into()))?;
    Ok(bytes)
}

/// AES-256-GCM with a random nonce: `nonce || ciphertext+tag`.
fn seal(key: &[u8], aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, KeyError> {
    let key =
        LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).map_err(|_| KeyError::Store("bad key length".into()))?);
    let nonce = random::<NONCE_LEN>()?;
    let mut buf = plaintext.to_vec();
    key.seal_in_place_append_tag(Nonce::assume_unique_for_key(*nonce), Aad::from(aad), &mut buf)
        .map_err(|_| KeyError::Store("encryption failed".into()))?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&buf);
    buf.iter_mut().for_each(|b| *b = 0);
    Ok(out)
}

fn open(key: &[u8], aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    if sealed.len() < NONCE_LEN {
        return Err(KeyError::Decrypt);
    }
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).map_err(|_| KeyError::Decrypt)?);
    let (nonce, body) = sealed.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| KeyError::Decrypt)?;
    let mut buf = Zeroizing::new(body.to_vec());
    let plain = key.open_in_place(nonce, Aad::from(aad), &mut buf).map_err(|_| KeyError::Decrypt)?;
    let len = plain.len();
    buf.truncate(len);
    Ok(buf)
}

/// A card number sealed under its own data key, and that key wrapped by a KEK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    /// `nonce || AES-256-GCM(dek, pan)`, base64; the card's token is the associated data.
    pub pan_ciphertext: String,
    /// `nonce || AES-256-GCM(kek, dek)`, base64; the KEK's id is the associated data.
    pub dek_wrapped: String,
    pub kek_id: String,
}

/// Where key-encryption keys live. Data keys reach it only to be wrapped or unwrapped.
#[async_trait::async_trait]
pub trait KeyStore: Send + Sync + fmt::Debug {
    /// The KEK new data keys are wrapped with.
    async fn primary(&self) -> Result<String, KeyError>;
    async fn wrap(&self, kek_id: &str, dek: &[u8]) -> Result<Vec<u8>, KeyError>;
    async fn unwrap(&self, kek_id: &str, wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>, KeyError>;
    /// HMAC-SHA256 of the number under the fingerprint key, hex: the same card gives the same
    /// fingerprint, and the number cannot be recovered from it.
    async fn fingerprint(&self, pan: &Pan) -> Result<String, KeyError>;
    /// Makes a new KEK the primary; the others still unwrap. Returns its id.
    async fn add_primary(&self) -> Result<String, KeyError>;
    /// Retires every KEK but the primary: they unwrap nothing any more. Returns their ids.
    async fn retire_all_but_primary(&self) -> Result<Vec<String>, KeyError>;
    /// How long until every process using this store wraps with a primary just added (other
    /// replicas read it again periodically). Zero for a store only this process uses.
    fn propagation_delay(&self) -> std::time::Duration {
        std::time::Duration::ZERO
    }
}

/// Seals `pan` for the card `token` under a fresh data key wrapped by the primary KEK.
pub async fn seal_pan(keys: &dyn KeyStore, token: &str, pan: &Pan) -> Result<Sealed, KeyError> {
    let dek = random::<32>()?;
    let kek_id = keys.primary().await?;
    let pan_ciphertext = STANDARD.encode(seal(dek.as_ref(), token.as_bytes(), pan.expose().as_bytes())?);
    let dek_wrapped = STANDARD.encode(keys.wrap(&kek_id, dek.as_ref()).await?);
    Ok(Sealed { pan_ciphertext, dek_wrapped, kek_id })
}

/// The number of the card `token`, from its sealed form.
pub async fn open_pan(keys: &dyn KeyStore, token: &str, sealed: &Sealed) -> Result<Pan, KeyError> {
    let wrapped = STANDARD.decode(&sealed.dek_wrapped).map_err(|_| KeyError::Decrypt)?;
    let dek = keys.unwrap(&sealed.kek_id, &wrapped).await?;
    let ciphertext = STANDARD.decode(&sealed.pan_ciphertext).map_err(|_| KeyError::Decrypt)?;
    let plain = open(&dek, token.as_bytes(), &ciphertext)?;
    let text = Zeroizing::new(String::from_utf8(plain.to_vec()).map_err(|_| KeyError::Decrypt)?);
    Pan::parse(&text).map_err(|_| KeyError::Decrypt)
}

/// The data key of `sealed` wrapped again by `to` (rotation): the number stays sealed.
pub async fn rewrap(keys: &dyn KeyStore, sealed: &Sealed, to: &str) -> Result<Sealed, KeyError> {
    let wrapped = STANDARD.decode(&sealed.dek_wrapped).map_err(|_| KeyError::Decrypt)?;
    let dek = keys.unwrap(&sealed.kek_id, &wrapped).await?;
    Ok(Sealed { dek_wrapped: STANDARD.encode(keys.wrap(to, &dek).await?), kek_id: to.to_owned(), ..sealed.clone() })
}

/// A KEK's state in the key file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KekState {
    /// Wraps new data keys.
    Primary,
    /// Still unwraps the data keys it wrapped.
    Active,
    /// Unwraps nothing any more.
    Retired,
}

#[derive(Clone, Serialize, Deserialize)]
struct KekEntry {
    id: String,
    key: String,
    state: KekState,
    created_at: String,
}

#[derive(Clone, Serialize, Deserialize)]
struct KeyFileBody {
    keks: Vec<KekEntry>,
    fingerprint_key: String,
}

/// The embedded key store: `<data dir>/vault/keys.json` (or `vault.key_file`), mode 0600.
pub struct LocalKeyFile {
    path: PathBuf,
    body: RwLock<KeyFileBody>,
}

impl fmt::Debug for LocalKeyFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalKeyFile").field("path", &self.path).finish_non_exhaustive()
    }
}

fn new_kek(state: KekState) -> Result<KekEntry, KeyError> {
    let key = random::<32>()?;
    let id = format!("kek_{}", uuid::Uuid::now_v7().simple());
    Ok(KekEntry { id, key: STANDARD.encode(key.as_ref()), state, created_at: fintech_telemetry::now_rfc3339() })
}

impl LocalKeyFile {
    /// Opens the key file, creating it (one primary KEK, a fingerprint key) when absent.
    pub fn open_or_create(path: &Path) -> Result<LocalKeyFile, KeyError> {
        let body = match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice::<KeyFileBody>(&bytes)
                .map_err(|e| KeyError::Store(format!("{} is not a vault key file: {e}", path.display())))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let fingerprint = random::<32>()?;
                let body = KeyFileBody {
                    keks: vec![new_kek(KekState::Primary)?],
                    fingerprint_key: STANDARD.encode(fingerprint.as_ref()),
                };
                write_private(path, &body)?;
                tracing::info!(target: "security", event = "vault_key_file_created", path = %path.display(), "created the vault key file");
                body
            }
            Err(e) => return Err(KeyError::Store(format!("reading {}: {e}", path.display()))),
        };
        if body.keks.iter().filter(|k| k.state == KekState::Primary).count() != 1 {
            return Err(KeyError::Store(format!("{} must hold exactly one primary key", path.display())));
        }
        Ok(LocalKeyFile { path: path.to_owned(), body: RwLock::new(body) })
    }

    fn key_of(&self, kek_id: &str) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        let body = self.body.read().map_err(|_| KeyError::Store("lock poisoned".into()))?;
        let entry = body
            .keks
            .iter()
            .find(|k| k.id == kek_id && k.state != KekState::Retired)
            .ok_or_else(|| KeyError::UnknownKek(kek_id.to_owned()))?;
        STANDARD.decode(&entry.key).map(Zeroizing::new).map_err(|_| KeyError::Store("unreadable key".into()))
    }

    fn update(&self, change: impl FnOnce(&mut KeyFileBody) -> Result<(), KeyError>) -> Result<(), KeyError> {
        let mut body = self.body.write().map_err(|_| KeyError::Store("lock poisoned".into()))?;
        let mut next = body.clone();
        change(&mut next)?;
        write_private(&self.path, &next)?;
        *body = next;
        Ok(())
    }

    fn add_primary_entry(&self) -> Result<String, KeyError> {
        let entry = new_kek(KekState::Primary)?;
        let id = entry.id.clone();
        self.update(|body| {
            for k in &mut body.keks {
                if k.state == KekState::Primary {
                    k.state = KekState::Active;
                }
            }
            body.keks.push(entry);
            Ok(())
        })?;
        Ok(id)
    }

    fn retire_entries(&self) -> Result<Vec<String>, KeyError> {
        let mut retired = Vec::new();
        self.update(|body| {
            for k in &mut body.keks {
                if k.state == KekState::Active {
                    k.state = KekState::Retired;
                    retired.push(k.id.clone());
                }
            }
            Ok(())
        })?;
        Ok(retired)
    }
}

/// Writes `body` to `path` with mode 0600, through a temporary file and a rename.
fn write_private(path: &Path, body: &KeyFileBody) -> Result<(), KeyError> {
    let err = |e: std::io::Error| KeyError::Store(format!("writing {}: {e}", path.display()));
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    let tmp = path.with_extension("tmp");
    let json = Zeroizing::new(serde_json::to_vec_pretty(body).map_err(|e| KeyError::Store(e.to_string()))?);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&tmp).map_err(err)?;
    std::io::Write::write_all(&mut file, &json).map_err(err)?;
    file.sync_all().map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)?;
    // The rename is durable only once the directory is: a crash must not lose a key that
    // re-wrapped data keys already depend on.
    #[cfg(unix)]
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(err)?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl KeyStore for LocalKeyFile {
    async fn primary(&self) -> Result<String, KeyError> {
        let body = self.body.read().map_err(|_| KeyError::Store("lock poisoned".into()))?;
        body.keks
            .iter()
            .find(|k| k.state == KekState::Primary)
            .map(|k| k.id.clone())
            .ok_or_else(|| KeyError::Store("no primary key".into()))
    }

    async fn wrap(&self, kek_id: &str, dek: &[u8]) -> Result<Vec<u8>, KeyError> {
        seal(&self.key_of(kek_id)?, kek_id.as_bytes(), dek)
    }

    async fn unwrap(&self, kek_id: &str, wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        open(&self.key_of(kek_id)?, kek_id.as_bytes(), wrapped)
    }

    async fn add_primary(&self) -> Result<String, KeyError> {
        self.add_primary_entry()
    }

    async fn retire_all_but_primary(&self) -> Result<Vec<String>, KeyError> {
        self.retire_entries()
    }

    async fn fingerprint(&self, pan: &Pan) -> Result<String, KeyError> {
        let body = self.body.read().map_err(|_| KeyError::Store("lock poisoned".into()))?;
        let key = Zeroizing::new(
            STANDARD.decode(&body.fingerprint_key).map_err(|_| KeyError::Store("unreadable key".into()))?,
        );
        let tag = ring::hmac::sign(&ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key), pan.expose().as_bytes());
        Ok(tag.as_ref().iter().map(|b| format!("{b:02x}")).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn envelope_round_trip_rotation_and_tamper() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("keys.json");
        let keys = LocalKeyFile::open_or_create(&path).expect("created");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).expect("file").permissions().mode() & 0o777, 0o600);
        }
        let pan = Pan::parse("4242424242424242").expect("pan");
        let sealed = seal_pan(&keys, "tok_1", &pan).await.expect("sealed");
        assert!(!sealed.pan_ciphertext.contains("4242424242424242"));
        assert_eq!(open_pan(&keys, "tok_1", &sealed).await.expect("opened"), pan);
        assert_eq!(open_pan(&keys, "tok_2", &sealed).await, Err(KeyError::Decrypt), "bound to its token");
        let mut altered = sealed.clone();
        altered.pan_ciphertext = STANDARD.encode({
            let mut b = STANDARD.decode(&sealed.pan_ciphertext).expect("b64");
            b[20] ^= 1;
            b
        });
        assert_eq!(open_pan(&keys, "tok_1", &altered).await, Err(KeyError::Decrypt));
        // Same card, same fingerprint; another card, another one.
        let again = keys.fingerprint(&Pan::parse("4242 4242 4242 4242").expect("pan")).await.expect("fp");
        assert_eq!(keys.fingerprint(&pan).await.expect("fp"), again);
        assert_ne!(keys.fingerprint(&Pan::parse("5555555555554444").expect("pan")).await.expect("fp"), again);

        // Rotation: a new primary, re-wrap, retire the old: the card opens, the old KEK is refused.
        let old = keys.primary().await.expect("primary");
        let new = keys.add_primary().await.expect("rotated");
        let moved = rewrap(&keys, &sealed, &new).await.expect("rewrapped");
        assert_eq!(moved.pan_ciphertext, sealed.pan_ciphertext, "the number is not re-encrypted");
        assert_eq!(keys.retire_all_but_primary().await.expect("retired"), vec![old.clone()]);
        assert_eq!(open_pan(&keys, "tok_1", &moved).await.expect("opened"), pan);
        assert_eq!(open_pan(&keys, "tok_1", &sealed).await, Err(KeyError::UnknownKek(old)));
        // The file kept it all.
        let reopened = LocalKeyFile::open_or_create(&path).expect("reopened");
        assert_eq!(reopened.primary().await.expect("primary"), new);
        assert_eq!(open_pan(&reopened, "tok_1", &moved).await.expect("opened"), pan);
        let text = std::fs::read_to_string(&path).expect("file");
        assert!(!text.contains("4242"), "no card data in the key file");
    }
}
