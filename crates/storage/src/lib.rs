//! Object storage: the bucket behind attachments and statements.
//!
//! [`ObjectStore`] is the interface; [`LocalFolderStore`] keeps objects in a folder (the embedded
//! mode); [`gcs::GcsStore`] is a Cloud Storage bucket (the distributed mode).

pub mod gcs;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;

/// Longest accepted object key (Cloud Storage allows 1024 bytes; we stay well below).
pub const MAX_KEY_LEN: usize = 512;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("object key is not valid: {0}")]
    InvalidKey(&'static str),
    #[error("object {0} does not exist")]
    NotFound(String),
    #[error("storage I/O error")]
    Io(#[from] std::io::Error),
    #[error("storage backend error: {0}")]
    Backend(String),
}

/// A validated object key: `/`-separated segments of `[A-Za-z0-9._-]`, no `.` or `..` segment,
/// no leading or trailing `/`, at most [`MAX_KEY_LEN`] characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ObjectKey(String);

impl ObjectKey {
    pub fn parse(key: &str) -> Result<Self, StorageError> {
        if key.is_empty() || key.len() > MAX_KEY_LEN {
            return Err(StorageError::InvalidKey("length must be 1 to 512"));
        }
        for segment in key.split('/') {
            if segment.is_empty() || segment == "." || segment == ".." {
                return Err(StorageError::InvalidKey("empty, '.' or '..' segment"));
            }
            if !segment.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')) {
                return Err(StorageError::InvalidKey("only A-Z a-z 0-9 . _ - and / are allowed"));
            }
        }
        Ok(ObjectKey(key.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An object read back from the store.
#[derive(Debug, Clone)]
pub struct StoredObject {
    pub bytes: Bytes,
    pub content_type: String,
}

#[async_trait]
pub trait ObjectStore: Send + Sync + fmt::Debug {
    /// Writes the whole object, replacing any previous one; readers never see a partial object.
    async fn put(&self, key: &ObjectKey, bytes: Bytes, content_type: &str) -> Result<(), StorageError>;
    async fn get(&self, key: &ObjectKey) -> Result<StoredObject, StorageError>;
    /// Deleting a missing object is not an error.
    async fn delete(&self, key: &ObjectKey) -> Result<(), StorageError>;
    /// Readiness: the store can be reached and written.
    async fn check(&self) -> Result<(), StorageError>;
    /// A link that downloads the object without credentials for `ttl`, when the store can make
    /// one (Cloud Storage's signed URLs); `None` when it cannot, and the service serves the bytes
    /// itself. The link does not check that the object exists.
    async fn download_link(&self, _key: &ObjectKey, _ttl: Duration) -> Result<Option<String>, StorageError> {
        Ok(None)
    }
}

/// Objects as files under `root/objects/`, with metadata under `root/meta/`.
#[derive(Debug, Clone)]
pub struct LocalFolderStore {
    root: PathBuf,
}

#[derive(Serialize, Deserialize)]
struct Meta {
    content_type: String,
}

impl LocalFolderStore {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        LocalFolderStore { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn object_path(&self, key: &ObjectKey) -> PathBuf {
        self.root.join("objects").join(key.as_str())
    }

    fn meta_path(&self, key: &ObjectKey) -> PathBuf {
        self.root.join("meta").join(format!("{}.json", key.as_str()))
    }

    /// Writes through a temporary file, syncs it, then renames it into place.
    async fn write_atomic(&self, path: &Path, bytes: &[u8]) -> Result<(), StorageError> {
        let tmp_dir = self.root.join("tmp");
        tokio::fs::create_dir_all(&tmp_dir).await?;
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent).await?;
        }
        let tmp = tmp_dir.join(uuid::Uuid::new_v4().to_string());
        let mut file = tokio::fs::File::create(&tmp).await?;
        file.write_all(bytes).await?;
        file.sync_all().await?;
        drop(file);
        if let Err(e) = tokio::fs::rename(&tmp, path).await {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(e.into());
        }
        Ok(())
    }
}

fn not_found_as(key: &ObjectKey) -> impl Fn(std::io::Error) -> StorageError + '_ {
    move |e| match e.kind() {
        std::io::ErrorKind::NotFound => StorageError::NotFound(key.to_string()),
        _ => StorageError::Io(e),
    }
}

#[async_trait]
impl ObjectStore for LocalFolderStore {
    async fn put(&self, key: &ObjectKey, bytes: Bytes, content_type: &str) -> Result<(), StorageError> {
        let meta = serde_json::to_vec(&Meta { content_type: content_type.to_owned() })
            .map_err(|e| StorageError::Backend(e.to_string()))?;
        self.write_atomic(&self.meta_path(key), &meta).await?;
        self.write_atomic(&self.object_path(key), &bytes).await
    }

    async fn get(&self, key: &ObjectKey) -> Result<StoredObject, StorageError> {
        let bytes = tokio::fs::read(self.object_path(key)).await.map_err(not_found_as(key))?;
        let meta = tokio::fs::read(self.meta_path(key)).await.map_err(not_found_as(key))?;
        let meta: Meta = serde_json::from_slice(&meta).map_err(|e| StorageError::Backend(e.to_string()))?;
        Ok(StoredObject { bytes: Bytes::from(bytes), content_type: meta.content_type })
    }

    async fn delete(&self, key: &ObjectKey) -> Result<(), StorageError> {
        for path in [self.object_path(key), self.meta_path(key)] {
            match tokio::fs::remove_file(path).await {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
                _ => {}
            }
        }
        Ok(())
    }

    async fn check(&self) -> Result<(), StorageError> {
        let probe = self.root.join("tmp").join(".ready");
        self.write_atomic(&probe, b"ok").await?;
        tokio::fs::remove_file(probe).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_validated() {
        assert!(ObjectKey::parse("contact-us/2026/a1.pdf").is_ok());
        for bad in ["", "/a", "a/", "a//b", "../etc/passwd", "a/./b", "a b", "a\\b", "é", &"x".repeat(513)] {
            assert!(ObjectKey::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[tokio::test]
    async fn put_get_delete_round_trip() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = LocalFolderStore::new(dir.path());
        store.check().await.expect("ready");
        let key = ObjectKey::parse("a/b/c.txt").expect("valid");
        assert!(matches!(store.get(&key).await, Err(StorageError::NotFound(_))));
        store.put(&key, Bytes::from_static(b"hello"), "text/plain").await.expect("put");
        let got = store.get(&key).await.expect("get");
        assert_eq!((&got.bytes[..], got.content_type.as_str()), (&b"hello"[..], "text/plain"));
        store.put(&key, Bytes::from_static(b"v2"), "text/plain").await.expect("overwrite");
        assert_eq!(&store.get(&key).await.expect("get").bytes[..], b"v2");
        store.delete(&key).await.expect("delete");
        store.delete(&key).await.expect("delete again");
        assert!(matches!(store.get(&key).await, Err(StorageError::NotFound(_))));
    }
}
