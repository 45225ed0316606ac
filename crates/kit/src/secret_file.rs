//! A secret generated on first start when configuration gives none (identity's first
//! administrator password): random, written to `<data dir>/<service>/<file>` with mode 0600. The
//! path is logged, never the secret.

use std::path::Path;

use anyhow::Context as _;
use fintech_config::Secret;

/// Shortest secret kept from the file; a shorter one is generated again.
pub const MIN_SECRET_CHARS: usize = 32;

/// The configured token, or the one kept in (or generated into) `dir/file_name`.
pub async fn load_or_generate(
    configured: Option<&Secret<String>>,
    dir: &Path,
    file_name: &str,
) -> anyhow::Result<Secret<String>> {
    if let Some(token) = configured {
        return Ok(token.clone());
    }
    let path = dir.join(file_name);
    if let Ok(existing) = tokio::fs::read_to_string(&path).await {
        let existing = existing.trim().to_owned();
        if existing.len() >= MIN_SECRET_CHARS {
            return Ok(Secret::new(existing));
        }
    }
    tokio::fs::create_dir_all(dir).await.with_context(|| format!("creating {}", dir.display()))?;
    let token: String = (0..32).map(|_| format!("{:02x}", rand::random::<u8>())).collect();
    let mut options = tokio::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options.open(&path).await.with_context(|| format!("writing {}", path.display()))?;
    // An existing file keeps its old mode on open; make sure only the owner can read it.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tokio::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).await?;
    }
    tokio::io::AsyncWriteExt::write_all(&mut file, token.as_bytes()).await?;
    // tokio finishes a write in the background unless flushed: without this, a start right after
    // the first could read an empty file and generate a second token.
    tokio::io::AsyncWriteExt::flush(&mut file).await?;
    file.sync_all().await?;
    tracing::info!(path = %path.display(), "generated a secret");
    Ok(Secret::new(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn generated_once_then_reused_and_private() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = load_or_generate(None, dir.path(), "t").await.expect("generated");
        let b = load_or_generate(None, dir.path(), "t").await.expect("reused");
        assert_eq!(a.expose(), b.expose());
        assert_eq!(a.expose().len(), 64);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("t")).expect("file").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let configured = Secret::new("c".repeat(40));
        let c = load_or_generate(Some(&configured), dir.path(), "t").await.expect("configured");
        assert_eq!(c.expose(), &"c".repeat(40));
    }
}
