//! `fintech audit verify`: recompute the audit log's hash chain and report the first record that
//! was altered, removed or re-linked. Reads only: it never migrates nor writes, so it can run
//! against a live database (it reads one snapshot) or a restored backup.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::{Args, Subcommand};
use fintech_db::{Db, PoolLimits};
use fintech_kit::Host;
use tokio_util::sync::CancellationToken;

/// Records between two progress lines on stderr.
const PROGRESS_EVERY: u64 = 10_000;

#[derive(Debug, Args)]
pub struct AuditArgs {
    #[command(subcommand)]
    pub command: AuditCommand,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the audit log's hash chain; exit non-zero when a record was altered, removed or
    /// re-linked, or the head or the expected head disagree with it.
    Verify(VerifyArgs),
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The audit service's database. Defaults to the configured `database.audit.url`, else the
    /// SQLite file in the data dir. Never migrated: a database without the audit tables is refused.
    #[arg(long, env = "FINTECH_AUDIT_DATABASE_URL")]
    pub database_url: Option<String>,
    #[arg(long, env = "FINTECH_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    #[arg(long, env = "FINTECH_CONFIG")]
    pub config: Option<PathBuf>,
    /// A head noted earlier (`GET /api/audit/v1/head`), as SEQ:HASH: the chain must still hold
    /// record SEQ with that hash. The only check that catches a rewrite of the whole chain.
    #[arg(long, value_name = "SEQ:HASH", value_parser = parse_anchor)]
    pub expect_head: Option<Anchor>,
}

/// A (seq, hash) of the chain noted earlier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anchor {
    pub seq: u64,
    pub hash: String,
}

fn parse_anchor(s: &str) -> Result<Anchor, String> {
    let (seq, hash) = s.split_once(':').ok_or_else(|| "expected SEQ:HASH, e.g. 1200:9f86d081…".to_owned())?;
    let seq = seq.trim().parse::<u64>().map_err(|_| format!("{seq:?} is not a record number"))?;
    let hash = hash.trim().to_ascii_lowercase();
    if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("the hash must be 64 hex digits, as `GET /api/audit/v1/head` answers it".to_owned());
    }
    Ok(Anchor { seq, hash })
}

pub async fn run(args: AuditArgs) -> anyhow::Result<()> {
    match args.command {
        AuditCommand::Verify(args) => verify(args).await,
    }
}

/// The audit service's database URL: `--database-url`, else as `fintech up` would find it.
/// Settings are loaded only when needed, so a URL given on the command line works whatever the
/// configuration says.
fn database_url(args: &VerifyArgs) -> anyhow::Result<String> {
    if let Some(url) = &args.database_url {
        return Ok(url.clone());
    }
    let (source, settings) = crate::load_settings(args.config.as_deref())?;
    let host = Host::embedded(source, settings, args.data_dir.clone(), CancellationToken::new());
    Ok(host.database_url(fintech_audit::SERVICE))
}

/// The file of a SQLite URL (`sqlite://path?options`), `None` for other engines and `:memory:`.
fn sqlite_file(url: &str) -> Option<&Path> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty() && path != ":memory:").then_some(Path::new(path))
}

async fn verify(args: VerifyArgs) -> anyhow::Result<()> {
    let url = database_url(&args)?;
    // Connecting would create a missing SQLite file: refuse before, naming it (a file path holds
    // no secret; a MySQL URL may, and is never printed).
    if let Some(file) = sqlite_file(&url)
        && !file.exists()
    {
        anyhow::bail!(
            "there is no audit database at {}: point --database-url (FINTECH_AUDIT_DATABASE_URL) or --data-dir at \
             the audit service's database; this command never creates or migrates one",
            file.display()
        );
    }
    let db = Db::connect(&url, PoolLimits { max_connections: 1, ..PoolLimits::default() })
        .await
        .context("connecting to the audit database")?;
    let anchor = args.expect_head.map(|a| (a.seq, a.hash));
    let mut reported = 0;
    let result = fintech_audit::verify(
        &db,
        |checked| {
            if checked >= reported + PROGRESS_EVERY {
                eprintln!("audit verify: {checked} records checked");
                reported = checked - checked % PROGRESS_EVERY;
            }
        },
        anchor,
    )
    .await;
    db.close().await;
    let report = match result {
        Ok(report) => report,
        Err(fintech_audit::AuditError::NotInstalled) => anyhow::bail!(
            "this database has no audit tables (audit_records, audit_head): it is not the audit service's, or the \
             audit service was never migrated there. This command never migrates; check --database-url, or run \
             `fintech migrate audit` first if the service has not been deployed yet"
        ),
        Err(e) => return Err(e).context("reading the audit log"),
    };
    match &report.problem {
        None => {
            println!("ok: {} records, head {} {}", report.records, report.head_seq, report.head_hash);
            Ok(())
        }
        Some(problem) => {
            println!("TAMPERED: {problem}");
            anyhow::bail!("the audit log failed verification after {} sound records", report.records)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchors_parse_strictly() {
        let hash = "AB".repeat(32);
        assert_eq!(parse_anchor(&format!("12:{hash}")), Ok(Anchor { seq: 12, hash: hash.to_ascii_lowercase() }));
        assert!(parse_anchor("12").is_err());
        assert!(parse_anchor(&format!("-1:{hash}")).is_err());
        assert!(parse_anchor("12:abc").is_err());
        assert!(parse_anchor(&format!("12:{}", "g".repeat(64))).is_err());
    }

    #[test]
    fn sqlite_files_are_found_in_urls() {
        assert_eq!(sqlite_file("sqlite://data/audit.db?mode=rwc"), Some(Path::new("data/audit.db")));
        assert_eq!(sqlite_file("sqlite:/tmp/a.db"), Some(Path::new("/tmp/a.db")));
        assert_eq!(sqlite_file("sqlite://:memory:"), None);
        assert_eq!(sqlite_file("mysql://u:p@h/audit"), None);
    }
}
