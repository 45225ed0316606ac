//! Google Cloud Storage behind [`ObjectStore`], through the community `gcloud-storage` crate (the
//! one client that reads, writes and signs V4 URLs against both storage emulators as well as
//! Google's endpoint).
//!
//! - Objects are whole uploads (one request), so readers never see a partial object; the content
//!   type is the object's metadata.
//! - A read fetches the metadata, then the bytes of exactly that generation: an object replaced
//!   in between is not read half old, half new.
//! - Download links are V4 signed URLs for one GET, valid for the time asked (at most 7 days). In
//!   GCP the workload's service account signs through IAM's `signBlob` (it needs
//!   `iam.serviceAccounts.signBlob` on itself); with a private key (tests), locally.
//! - Access tokens come from Google's official `google-cloud-auth` (Workload Identity), not from
//!   the crate's own auth.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use gcloud_storage::client::{Client, ClientConfig};
use gcloud_storage::http::Error as GcsError;
use gcloud_storage::http::objects::delete::DeleteObjectRequest;
use gcloud_storage::http::objects::download::Range;
use gcloud_storage::http::objects::get::GetObjectRequest;
use gcloud_storage::http::objects::list::ListObjectsRequest;
use gcloud_storage::http::objects::upload::{Media, UploadObjectRequest, UploadType};
use gcloud_storage::sign::{SignBy, SignedURLMethod, SignedURLOptions, URLStyle};

use crate::{ObjectKey, ObjectStore, StorageError, StoredObject};

/// Longest validity of a V4 signed URL.
pub const MAX_LINK_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// How download links are signed.
#[derive(Clone)]
pub enum LinkSigner {
    /// The service account's key stays with Google: IAM `signBlob` as `service_account` (GCP).
    Iam { service_account: String },
    /// A service account's PEM private key held here (tests, and deployments without IAM).
    PrivateKey { service_account: String, pem: Vec<u8> },
}

impl std::fmt::Debug for LinkSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LinkSigner::Iam { service_account } => {
                f.debug_struct("Iam").field("service_account", service_account).finish()
            }
            LinkSigner::PrivateKey { service_account, .. } => {
                f.debug_struct("PrivateKey").field("service_account", service_account).finish_non_exhaustive()
            }
        }
    }
}

/// Where the store connects.
#[derive(Debug, Clone)]
pub struct GcsConfig {
    pub bucket: String,
    /// `http://host:port` of a storage emulator (no credentials). `None`: Google's endpoint with
    /// the workload's credentials.
    pub emulator: Option<String>,
    /// `None`: the store gives no download links.
    pub signer: Option<LinkSigner>,
}

/// A Cloud Storage bucket.
#[derive(Clone)]
pub struct GcsStore {
    client: Arc<Client>,
    config: GcsConfig,
}

impl std::fmt::Debug for GcsStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GcsStore").field("config", &self.config).finish_non_exhaustive()
    }
}

/// Access tokens of the workload's credentials (Application Default Credentials).
#[derive(Debug)]
struct WorkloadTokens(google_cloud_auth::credentials::AccessTokenCredentials);

#[async_trait]
impl token_source::TokenSource for WorkloadTokens {
    async fn token(&self) -> Result<String, Box<dyn std::error::Error + Send + Sync>> {
        let token = self.0.access_token().await?;
        Ok(format!("Bearer {}", token.token))
    }
}

#[derive(Debug)]
struct WorkloadTokenProvider(Arc<WorkloadTokens>);

impl token_source::TokenSourceProvider for WorkloadTokenProvider {
    fn token_source(&self) -> Arc<dyn token_source::TokenSource> {
        self.0.clone()
    }
}

/// Path-style URLs on the emulator's host (the crate's own style always names Google's host).
struct EmulatorStyle(String);

impl URLStyle for EmulatorStyle {
    fn host(&self, _bucket: &str) -> String {
        self.0.clone()
    }

    fn path(&self, bucket: &str, object: &str) -> String {
        format!("{bucket}/{object}")
    }
}

fn backend(what: &str, e: impl std::fmt::Display) -> StorageError {
    StorageError::Backend(format!("{what}: {e}"))
}

/// A 404, whether the server sent Google's JSON error body (Cloud Storage) or none (an emulator).
fn not_found(e: &GcsError) -> bool {
    match e {
        GcsError::Response(r) => r.code == 404,
        GcsError::HttpClient(e) => e.status().is_some_and(|s| s.as_u16() == 404),
        _ => false,
    }
}

impl GcsStore {
    pub fn new(config: GcsConfig) -> Result<Self, StorageError> {
        fintech_http::install_crypto_provider();
        let mut client_config = ClientConfig::default();
        match &config.emulator {
            Some(endpoint) => {
                client_config = client_config.anonymous();
                client_config.storage_endpoint = endpoint.trim_end_matches('/').to_string();
            }
            None => {
                let credentials = google_cloud_auth::credentials::Builder::default()
                    .with_scopes(["https://www.googleapis.com/auth/devstorage.read_write"])
                    .build_access_token_credentials()
                    .map_err(|e| backend("Google credentials for Cloud Storage", e))?;
                client_config.token_source_provider =
                    Some(Box::new(WorkloadTokenProvider(Arc::new(WorkloadTokens(credentials)))));
            }
        }
        if let Some(signer) = &config.signer {
            let (account, sign_by) = match signer {
                LinkSigner::Iam { service_account } => (service_account, SignBy::SignBytes),
                LinkSigner::PrivateKey { service_account, pem } => (service_account, SignBy::PrivateKey(pem.clone())),
            };
            client_config.default_google_access_id = Some(account.clone());
            client_config.default_sign_by = Some(sign_by);
        }
        Ok(GcsStore { client: Arc::new(Client::new(client_config)), config })
    }

    fn get_request(&self, key: &ObjectKey) -> GetObjectRequest {
        GetObjectRequest { bucket: self.config.bucket.clone(), object: key.as_str().to_string(), ..Default::default() }
    }
}

#[async_trait]
impl ObjectStore for GcsStore {
    async fn put(&self, key: &ObjectKey, bytes: Bytes, content_type: &str) -> Result<(), StorageError> {
        let mut media = Media::new(key.as_str().to_string());
        media.content_type = content_type.to_string().into();
        media.content_length = Some(bytes.len() as u64);
        let request = UploadObjectRequest { bucket: self.config.bucket.clone(), ..Default::default() };
        self.client
            .upload_object(&request, bytes, &UploadType::Simple(media))
            .await
            .map_err(|e| backend(&format!("writing {key}"), e))?;
        Ok(())
    }

    async fn get(&self, key: &ObjectKey) -> Result<StoredObject, StorageError> {
        let meta = match self.client.get_object(&self.get_request(key)).await {
            Ok(meta) => meta,
            Err(e) if not_found(&e) => return Err(StorageError::NotFound(key.to_string())),
            Err(e) => return Err(backend(&format!("reading {key}"), e)),
        };
        let exact = GetObjectRequest { generation: Some(meta.generation), ..self.get_request(key) };
        let bytes = match self.client.download_object(&exact, &Range::default()).await {
            Ok(bytes) => bytes,
            // Replaced or deleted since the metadata was read: as missing as it is now.
            Err(e) if not_found(&e) => return Err(StorageError::NotFound(key.to_string())),
            Err(e) => return Err(backend(&format!("reading {key}"), e)),
        };
        Ok(StoredObject {
            bytes: Bytes::from(bytes),
            content_type: meta.content_type.unwrap_or_else(|| "application/octet-stream".into()),
        })
    }

    async fn delete(&self, key: &ObjectKey) -> Result<(), StorageError> {
        let request = DeleteObjectRequest {
            bucket: self.config.bucket.clone(),
            object: key.as_str().to_string(),
            ..Default::default()
        };
        match self.client.delete_object(&request).await {
            Ok(()) => Ok(()),
            Err(e) if not_found(&e) => Ok(()),
            Err(e) => Err(backend(&format!("deleting {key}"), e)),
        }
    }

    async fn check(&self) -> Result<(), StorageError> {
        let request =
            ListObjectsRequest { bucket: self.config.bucket.clone(), max_results: Some(1), ..Default::default() };
        self.client.list_objects(&request).await.map_err(|e| backend(&format!("bucket {}", self.config.bucket), e))?;
        Ok(())
    }

    async fn download_link(&self, key: &ObjectKey, ttl: Duration) -> Result<Option<String>, StorageError> {
        if self.config.signer.is_none() {
            return Ok(None);
        }
        if ttl.is_zero() || ttl > MAX_LINK_TTL {
            return Err(StorageError::Backend("a download link lives 1 s to 7 days".into()));
        }
        let mut options = SignedURLOptions { method: SignedURLMethod::GET, expires: ttl, ..Default::default() };
        if let Some(endpoint) = &self.config.emulator {
            let host = endpoint.trim_start_matches("http://").trim_start_matches("https://").trim_end_matches('/');
            options.style = Box::new(EmulatorStyle(host.to_string()));
            options.insecure = endpoint.starts_with("http://");
        }
        let url = self
            .client
            .signed_url(&self.config.bucket, key.as_str(), None, None, options)
            .await
            .map_err(|e| backend(&format!("signing a link to {key}"), e))?;
        Ok(Some(url))
    }
}
