//! The Cloud Storage store against a real storage emulator (gcp-storage-emulator, started by the
//! tests): write, read back with its content type, replace, signed download link, missing object,
//! delete, readiness.

#![allow(clippy::unwrap_used)]

use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use fintech_storage::gcs::{GcsConfig, GcsStore, LinkSigner};
use fintech_storage::{ObjectKey, ObjectStore, StorageError};
use fintech_testkit::StorageEmulator;

const ACCOUNT: &str = "statements@fintech-test.iam.gserviceaccount.com";

/// A fresh RSA key in PKCS#8 PEM, as a service account's key file holds it.
fn private_key() -> Vec<u8> {
    let out = Command::new("openssl")
        .args(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"])
        .output()
        .expect("openssl (scripts/test.sh installs it)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

fn store(signer: Option<LinkSigner>) -> GcsStore {
    let emulator = StorageEmulator::shared();
    GcsStore::new(GcsConfig { bucket: StorageEmulator::BUCKET.into(), emulator: Some(emulator.endpoint()), signer })
        .unwrap()
}

fn key(name: &str) -> ObjectKey {
    ObjectKey::parse(&format!("t-{}/{name}", uuid::Uuid::new_v4().simple())).unwrap()
}

#[tokio::test]
async fn objects_are_written_read_replaced_and_deleted() {
    let store = store(None);
    store.check().await.unwrap();
    let key = key("statements/2026-10.csv");
    store.put(&key, Bytes::from_static(b"date,amount\n2026-10-01,1250\n"), "text/csv").await.unwrap();
    let read = store.get(&key).await.unwrap();
    assert_eq!(&read.bytes[..], b"date,amount\n2026-10-01,1250\n");
    assert_eq!(read.content_type, "text/csv");

    let pdf = Bytes::from((0u8..=255).cycle().take(300_000).collect::<Vec<_>>());
    store.put(&key, pdf.clone(), "application/pdf").await.unwrap();
    let read = store.get(&key).await.unwrap();
    assert_eq!(read.bytes, pdf, "binary, replaced whole");
    assert_eq!(read.content_type, "application/pdf");

    store.delete(&key).await.unwrap();
    store.delete(&key).await.unwrap(); // missing: not an error
    assert!(matches!(store.get(&key).await, Err(StorageError::NotFound(k)) if k == key.as_str()));
}

#[tokio::test]
async fn a_missing_object_is_a_clear_not_found() {
    let store = store(None);
    let missing = key("nothing-here.pdf");
    let error = store.get(&missing).await.unwrap_err();
    assert!(matches!(error, StorageError::NotFound(_)), "{error:?}");
    assert_eq!(error.to_string(), format!("object {missing} does not exist"));
}

#[tokio::test]
async fn a_signed_link_downloads_the_object_without_credentials() {
    let store = store(Some(LinkSigner::PrivateKey { service_account: ACCOUNT.into(), pem: private_key() }));
    let key = key("statement.pdf");
    store.put(&key, Bytes::from_static(b"%PDF-1.7 statement"), "application/pdf").await.unwrap();
    let link = store.download_link(&key, Duration::from_secs(300)).await.unwrap().expect("a signed link");
    let emulator = StorageEmulator::shared().endpoint();
    assert!(link.starts_with(&format!("{emulator}/{}/{key}?", StorageEmulator::BUCKET)), "{link}");
    assert!(link.contains("X-Goog-Algorithm=GOOG4-RSA-SHA256"), "{link}");
    assert!(link.contains("X-Goog-Expires=300"), "{link}");
    assert!(link.contains("X-Goog-Credential=statements%40fintech-test.iam.gserviceaccount.com"), "{link}");
    let signature = link.split("X-Goog-Signature=").nth(1).unwrap();
    assert_eq!(signature.len(), 512, "an RSA-2048 signature in hex");
    // The emulator serves the object at the link (it does not check signatures; Google does).
    let response = fintech_http::http_client().build().unwrap().get(&link).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(&response.bytes().await.unwrap()[..], b"%PDF-1.7 statement");

    assert!(store.download_link(&key, Duration::ZERO).await.is_err());
    assert!(store.download_link(&key, Duration::from_secs(8 * 24 * 3600)).await.is_err(), "over 7 days");
    assert_eq!(self::store(None).download_link(&key, Duration::from_secs(60)).await.unwrap(), None, "no signer");
}

#[tokio::test]
async fn an_unreachable_bucket_fails_readiness_with_a_clear_error() {
    let store = GcsStore::new(GcsConfig {
        bucket: "no-such-bucket-here".into(),
        emulator: Some(StorageEmulator::shared().endpoint()),
        signer: None,
    })
    .unwrap();
    let error = store.check().await.unwrap_err();
    assert!(error.to_string().contains("bucket no-such-bucket-here"), "{error}");
}
