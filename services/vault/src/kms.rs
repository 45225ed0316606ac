//! The distributed mode's key store: Google Cloud KMS through Google's official client
//! (`google-cloud-kms-v1`, over REST).
//!
//! - The KEK is a symmetric Cloud KMS key (`vault.kms_key`). A KEK id is one of its versions
//!   (`…/cryptoKeys/k/cryptoKeyVersions/3`): data keys are wrapped by `Encrypt` with that
//!   version and unwrapped by `Decrypt` (KMS finds the version in the ciphertext). Rotation makes
//!   a new version the primary, re-wraps every data key with it, then disables the old versions:
//!   a data key still wrapped by one can no longer be unwrapped.
//! - The fingerprint key is a Cloud KMS HMAC-SHA256 key version (`vault.kms_fingerprint_key`):
//!   fingerprints come from `MacSign`, so that key never leaves KMS either.
//!
//! Every call has a deadline and is retried by the client on transient errors only.

use std::sync::RwLock;
use std::time::Duration;

use google_cloud_kms_v1::client::KeyManagementService;
use google_cloud_kms_v1::model::CryptoKeyVersion;
use google_cloud_kms_v1::model::crypto_key_version::CryptoKeyVersionState;
use zeroize::Zeroizing;

use crate::domain::Pan;
use crate::keys::{KeyError, KeyStore};

/// The associated data of every wrapped data key: a ciphertext of another use of the same key
/// does not decrypt as a data key.
const DEK_AAD: &[u8] = b"fintech-vault-dek-v1";

/// How long one KMS call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Cloud KMS as the vault's key store.
pub struct CloudKms {
    client: KeyManagementService,
    /// `projects/p/locations/l/keyRings/r/cryptoKeys/k`.
    key: String,
    /// The HMAC key version of the fingerprints.
    fingerprint_key: String,
    /// The primary version and when it was read: read again once older than `refresh`, so a
    /// rotation by another replica reaches this one within that time.
    primary: RwLock<(String, std::time::Instant)>,
    refresh: Duration,
}

impl std::fmt::Debug for CloudKms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CloudKms").field("key", &self.key).finish_non_exhaustive()
    }
}

fn store_error(what: &str, e: &google_cloud_kms_v1::Error) -> KeyError {
    // The error names the key and the status, never key material.
    tracing::error!(error = %e, "Cloud KMS {what} failed");
    KeyError::Store(format!("Cloud KMS {what} failed"))
}

/// The crypto key a version belongs to.
fn key_of_version(version: &str) -> &str {
    version.split("/cryptoKeyVersions/").next().unwrap_or(version)
}

async fn timed<T>(
    what: &str,
    call: impl std::future::Future<Output = google_cloud_kms_v1::Result<T>>,
) -> Result<google_cloud_kms_v1::Result<T>, KeyError> {
    tokio::time::timeout(CALL_TIMEOUT, call).await.map_err(|_| KeyError::Store(format!("Cloud KMS {what} timed out")))
}

impl CloudKms {
    /// Connects to Cloud KMS (`endpoint`: another root, e.g. a test server; default Google's)
    /// with the workload's credentials (`anonymous` for a test server) and reads the key's
    /// primary version. Fails when the key cannot be read: vault must not start without it.
    pub async fn connect(
        key: &str,
        fingerprint_key: &str,
        endpoint: Option<&str>,
        anonymous: bool,
        refresh: Duration,
    ) -> Result<CloudKms, KeyError> {
        // The Google clients speak TLS through rustls and need its provider chosen: ring, the
        // workspace's. Already installed is fine.
        fintech_http::install_crypto_provider();
        let mut builder = KeyManagementService::builder();
        if let Some(e) = endpoint {
            builder = builder.with_endpoint(e);
        }
        if anonymous {
            builder = builder.with_credentials(google_cloud_auth::credentials::anonymous::Builder::new().build());
        }
        let client = builder.build().await.map_err(|e| {
            tracing::error!(error = %e, "building the Cloud KMS client failed");
            KeyError::Store("Cloud KMS client could not be built".into())
        })?;
        let primary = read_primary(&client, key).await?;
        Ok(CloudKms {
            client,
            key: key.to_owned(),
            fingerprint_key: fingerprint_key.to_owned(),
            primary: RwLock::new((primary, std::time::Instant::now())),
            refresh,
        })
    }

    fn set_primary(&self, version: &str) -> Result<(), KeyError> {
        *self.primary.write().map_err(|_| KeyError::Store("lock poisoned".into()))? =
            (version.to_owned(), std::time::Instant::now());
        Ok(())
    }
}

/// The key's primary version, from KMS.
async fn read_primary(client: &KeyManagementService, key: &str) -> Result<String, KeyError> {
    let crypto_key = timed("GetCryptoKey", client.get_crypto_key().set_name(key).send())
        .await?
        .map_err(|e| store_error("GetCryptoKey", &e))?;
    crypto_key
        .primary
        .map(|v| v.name)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| KeyError::Store(format!("Cloud KMS key {key} has no primary version")))
}

#[async_trait::async_trait]
impl KeyStore for CloudKms {
    async fn primary(&self) -> Result<String, KeyError> {
        let (version, read_at) = self.primary.read().map_err(|_| KeyError::Store("lock poisoned".into()))?.clone();
        if read_at.elapsed() < self.refresh {
            return Ok(version);
        }
        let version = read_primary(&self.client, &self.key).await?;
        self.set_primary(&version)?;
        Ok(version)
    }

    fn propagation_delay(&self) -> Duration {
        // Every replica has read the new primary once this has passed.
        self.refresh + Duration::from_millis(500)
    }

    async fn wrap(&self, kek_id: &str, dek: &[u8]) -> Result<Vec<u8>, KeyError> {
        let call = self
            .client
            .encrypt()
            .set_name(kek_id)
            .set_plaintext(bytes::Bytes::copy_from_slice(dek))
            .set_additional_authenticated_data(bytes::Bytes::from_static(DEK_AAD))
            .send();
        let answer = timed("Encrypt", call).await?.map_err(|e| match e.status().map(|s| s.code) {
            // A version another replica has just retired: the next primary read moves on.
            Some(google_cloud_gax::error::rpc::Code::FailedPrecondition) => KeyError::UnknownKek(kek_id.to_owned()),
            _ => store_error("Encrypt", &e),
        })?;
        if answer.name != kek_id {
            return Err(KeyError::Store(format!("Cloud KMS wrapped with {} instead of {kek_id}", answer.name)));
        }
        Ok(answer.ciphertext.to_vec())
    }

    async fn unwrap(&self, kek_id: &str, wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        if key_of_version(kek_id) != self.key {
            return Err(KeyError::UnknownKek(kek_id.to_owned()));
        }
        let call = self
            .client
            .decrypt()
            .set_name(&self.key)
            .set_ciphertext(bytes::Bytes::copy_from_slice(wrapped))
            .set_additional_authenticated_data(bytes::Bytes::from_static(DEK_AAD))
            .send();
        match timed("Decrypt", call).await? {
            Ok(answer) => Ok(Zeroizing::new(answer.plaintext.to_vec())),
            // A disabled or destroyed version answers FAILED_PRECONDITION; altered ciphertext
            // INVALID_ARGUMENT.
            Err(e) => match e.status().map(|s| s.code) {
                Some(google_cloud_gax::error::rpc::Code::FailedPrecondition) => {
                    Err(KeyError::UnknownKek(kek_id.to_owned()))
                }
                Some(google_cloud_gax::error::rpc::Code::InvalidArgument) => Err(KeyError::Decrypt),
                _ => Err(store_error("Decrypt", &e)),
            },
        }
    }

    async fn fingerprint(&self, pan: &Pan) -> Result<String, KeyError> {
        let data = bytes::Bytes::copy_from_slice(pan.expose().as_bytes());
        let call = self.client.mac_sign().set_name(&self.fingerprint_key).set_data(data).send();
        let answer = timed("MacSign", call).await?.map_err(|e| store_error("MacSign", &e))?;
        if answer.mac.len() != 32 {
            return Err(KeyError::Store("Cloud KMS MacSign answered a MAC that is not HMAC-SHA256".into()));
        }
        Ok(answer.mac.iter().map(|b| format!("{b:02x}")).collect())
    }

    async fn add_primary(&self) -> Result<String, KeyError> {
        let call = self
            .client
            .create_crypto_key_version()
            .set_parent(&self.key)
            .set_crypto_key_version(CryptoKeyVersion::new())
            .send();
        let version =
            timed("CreateCryptoKeyVersion", call).await?.map_err(|e| store_error("CreateCryptoKeyVersion", &e))?;
        let id = version.name.rsplit('/').next().unwrap_or_default().to_owned();
        let call =
            self.client.update_crypto_key_primary_version().set_name(&self.key).set_crypto_key_version_id(id).send();
        let key = timed("UpdateCryptoKeyPrimaryVersion", call)
            .await?
            .map_err(|e| store_error("UpdateCryptoKeyPrimaryVersion", &e))?;
        let primary = key.primary.map(|v| v.name).unwrap_or_default();
        if primary != version.name {
            return Err(KeyError::Store(format!("Cloud KMS made {primary} the primary instead of {}", version.name)));
        }
        self.set_primary(&primary)?;
        tracing::info!(target: "security", event = "kms_primary_version_added", version = %primary, "new Cloud KMS primary version");
        Ok(primary)
    }

    async fn retire_all_but_primary(&self) -> Result<Vec<String>, KeyError> {
        let primary = self.primary().await?;
        let call = self
            .client
            .list_crypto_key_versions()
            .set_parent(&self.key)
            .set_filter("state=ENABLED")
            .set_page_size(1000)
            .send();
        let listed =
            timed("ListCryptoKeyVersions", call).await?.map_err(|e| store_error("ListCryptoKeyVersions", &e))?;
        let mut retired = Vec::new();
        for version in listed.crypto_key_versions {
            if version.name == primary || version.state != CryptoKeyVersionState::Enabled {
                continue;
            }
            let disabled =
                CryptoKeyVersion::new().set_name(version.name.clone()).set_state(CryptoKeyVersionState::Disabled);
            let mask = google_cloud_wkt::FieldMask::default().set_paths(["state"]);
            let call =
                self.client.update_crypto_key_version().set_crypto_key_version(disabled).set_update_mask(mask).send();
            timed("UpdateCryptoKeyVersion", call).await?.map_err(|e| store_error("UpdateCryptoKeyVersion", &e))?;
            retired.push(version.name);
        }
        Ok(retired)
    }
}
