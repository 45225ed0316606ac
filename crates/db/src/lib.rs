//! Database access shared by every service: one pool type for both engines, chosen by URL.
//!
//! - `mysql://user:pass@host:3306/name` — Cloud SQL for MySQL 8.0 (5.7 accepted) or MariaDB;
//! - `sqlite://path/to/file.db` — the embedded mode; the file and its folder are created.
//!
//! SQL is written once where both engines agree (`?` placeholders, portable types: `BIGINT`,
//! `VARCHAR`, `TEXT`), and per engine where they do not ([`Engine`] tells which). Migrations live in
//! one folder per engine and carry the same version numbers, so both engines go through the same
//! steps. Invariant: a service's pool only ever sees that service's own database.

use std::path::Path;
use std::str::FromStr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::{Migration, Migrator};
use sqlx::{AnyPool, ConnectOptions, Connection, Executor};

pub use sqlx;

mod group;
pub use group::WriteFuture;

/// Which engine a URL points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    MySql,
}

impl Engine {
    pub fn from_url(url: &str) -> Result<Engine, DbError> {
        if url.starts_with("sqlite:") {
            Ok(Engine::Sqlite)
        } else if url.starts_with("mysql:") || url.starts_with("mariadb:") {
            Ok(Engine::MySql)
        } else {
            Err(DbError::UnsupportedUrl)
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database URL must start with sqlite:// or mysql://")]
    UnsupportedUrl,
    #[error("database URL is not valid: {0}")]
    InvalidUrl(String),
    #[error("database name {0:?} must be 1-64 characters of [A-Za-z0-9_]")]
    InvalidName(String),
    #[error("could not create the folder for the SQLite file")]
    Folder(#[source] std::io::Error),
    #[error("database error")]
    Sqlx(#[from] sqlx::Error),
    #[error("another migration held the database's migration lock for {MIGRATION_LOCK_WAIT_S} s")]
    MigrationLocked,
    #[error("migration failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// Pool limits: a bound on everything (TIGER_STYLE).
#[derive(Debug, Clone, Copy)]
pub struct PoolLimits {
    pub max_connections: u32,
    pub acquire_timeout: Duration,
}

impl Default for PoolLimits {
    fn default() -> Self {
        // SQLite serialises writers anyway; MySQL connections are a scarce server resource
        // (Cloud SQL's max_connections is shared by every replica of every service).
        PoolLimits { max_connections: 8, acquire_timeout: Duration::from_secs(5) }
    }
}

/// How long a MySQL migration waits for another one to finish.
pub const MIGRATION_LOCK_WAIT_S: i64 = 120;

/// How long a SQLite writer waits for the lock before giving up (`busy_timeout`).
const SQLITE_BUSY_TIMEOUT_MS: u32 = 5_000;

/// A service's database: the pool plus which engine it runs on.
#[derive(Debug, Clone)]
pub struct Db {
    pool: AnyPool,
    engine: Engine,
    /// The group-commit writer of [`Db::write`] (SQLite), started on first use.
    writer: Arc<OnceLock<tokio::sync::mpsc::Sender<group::Unit>>>,
    /// SQLite: one write transaction at a time in this process. Writers queue here, in order,
    /// instead of meeting at SQLite's lock, whose busy handler sleeps for milliseconds (1, 2,
    /// 5, 10... ms) between retries: under load those sleeps, not the disk, set the latency.
    write_gate: Arc<tokio::sync::Mutex<()>>,
}

/// A write transaction of [`Db::begin_write`]: use it as the connection (`&mut *tx`), then
/// [`WriteTx::commit`]. Dropped without commit, it rolls back. On SQLite it holds the process's
/// write gate until it ends.
#[derive(Debug)]
pub struct WriteTx {
    tx: sqlx::Transaction<'static, sqlx::Any>,
    _gate: Option<tokio::sync::OwnedMutexGuard<()>>,
}

/// SQLite: waits for the process's write gate, then `BEGIN IMMEDIATE`.
async fn begin_sqlite_write(pool: &AnyPool, gate: &Arc<tokio::sync::Mutex<()>>) -> Result<WriteTx, sqlx::Error> {
    let gate = Arc::clone(gate).lock_owned().await;
    let tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    Ok(WriteTx { tx, _gate: Some(gate) })
}

impl WriteTx {
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await
    }

    pub async fn rollback(self) -> Result<(), sqlx::Error> {
        self.tx.rollback().await
    }
}

impl std::ops::Deref for WriteTx {
    type Target = sqlx::AnyConnection;
    fn deref(&self) -> &sqlx::AnyConnection {
        &self.tx
    }
}

impl std::ops::DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut sqlx::AnyConnection {
        &mut self.tx
    }
}

impl Db {
    /// Connects (creating a SQLite file and its folder when absent). The MySQL database must
    /// exist: [`create_database_if_absent`] makes it.
    pub async fn connect(url: &str, limits: PoolLimits) -> Result<Db, DbError> {
        sqlx::any::install_default_drivers();
        let engine = Engine::from_url(url)?;
        let url = normalise_url(url, engine)?;
        let mut options = AnyConnectOptions::from_str(&url)?;
        options = options.disable_statement_logging();
        let pool = AnyPoolOptions::new()
            .max_connections(limits.max_connections)
            .acquire_timeout(limits.acquire_timeout)
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if engine == Engine::Sqlite {
                        // WAL + synchronous=FULL: a commit is durable once acknowledged.
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA synchronous = FULL").await?;
                        conn.execute("PRAGMA foreign_keys = ON").await?;
                        // Statement journals (the undo of one multi-row statement inside a
                        // transaction) stay in memory instead of spilling into temporary files.
                        conn.execute("PRAGMA temp_store = MEMORY").await?;
                        let busy = format!("PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}");
                        conn.execute(sqlx::AssertSqlSafe(busy)).await?;
                    } else {
                        conn.execute("SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ZERO_DATE,NO_ENGINE_SUBSTITUTION'")
                            .await?;
                        conn.execute("SET time_zone = '+00:00'").await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        Ok(Db { pool, engine, writer: Arc::new(OnceLock::new()), write_gate: Arc::new(tokio::sync::Mutex::new(())) })
    }

    /// Begins a transaction that will write. On SQLite it first waits its turn at the process's
    /// write gate, then runs `BEGIN IMMEDIATE`, which takes the write lock up front (another
    /// process's writer is still waited for up to `busy_timeout`) instead of failing with
    /// `SQLITE_BUSY` when a read lock has to be upgraded; on MySQL it is a plain `BEGIN`.
    pub async fn begin_write(&self) -> Result<WriteTx, sqlx::Error> {
        match self.engine {
            Engine::Sqlite => begin_sqlite_write(&self.pool, &self.write_gate).await,
            Engine::MySql => Ok(WriteTx { tx: self.pool.begin().await?, _gate: None }),
        }
    }

    /// Runs `work` in a write transaction and returns once it is durably committed.
    ///
    /// On SQLite, concurrent calls share one transaction and one fsync (group commit, see
    /// [`group`]): each `work` runs in its own savepoint, so one that fails is rolled back alone.
    /// `work` must only use the database. On MySQL, InnoDB already groups concurrent commits:
    /// `work` runs in a transaction of its own.
    ///
    /// ```text
    /// let n = db.write(move |conn| Box::pin(async move {
    ///     sqlx::query("UPDATE t SET v = v + 1").execute(&mut *conn).await?;
    ///     Ok(1)
    /// })).await?;
    /// ```
    pub async fn write<T, F>(&self, work: F) -> Result<T, sqlx::Error>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut sqlx::AnyConnection) -> WriteFuture<'c, T> + Send + 'static,
    {
        if self.engine == Engine::MySql {
            let mut tx = self.begin_write().await?;
            let value = work(&mut tx).await?;
            tx.commit().await?;
            return Ok(value);
        }
        let (reply, answer) = tokio::sync::oneshot::channel();
        let writer = self.writer.get_or_init(|| {
            let (tx, rx) = tokio::sync::mpsc::channel(group::QUEUE_CAPACITY);
            tokio::spawn(group::writer(self.pool.clone(), Arc::clone(&self.write_gate), rx));
            tx
        });
        let not_applied = || sqlx::Error::Protocol("the database writer stopped before applying this write".into());
        writer.send(group::unit(work, reply)).await.map_err(|_| not_applied())?;
        answer.await.map_err(|_| not_applied())?
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// Readiness: one round trip.
    pub async fn ping(&self) -> Result<(), DbError> {
        let mut conn = self.pool.acquire().await?;
        conn.ping().await?;
        Ok(())
    }

    /// Applies `migrator` (idempotent: applied versions are skipped), safe to run concurrently.
    ///
    /// MySQL: the run holds a named server lock (`GET_LOCK`) on its own connection, waiting up to
    /// [`MIGRATION_LOCK_WAIT_S`]; sqlx's own lock ignores a `GET_LOCK` that did not succeed, so we
    /// check ours. SQLite has no such lock: a concurrent run can lose the race on the bookkeeping
    /// row, so a failed run is retried once it can see what the winner applied.
    pub async fn migrate(&self, migrator: &Migrator) -> Result<(), DbError> {
        match self.engine {
            Engine::MySql => {
                let mut conn = self.pool.acquire().await?;
                let (locked,): (Option<i64>,) =
                    sqlx::query_as("SELECT CAST(GET_LOCK(CONCAT('fintech_migrate_', DATABASE()), ?) AS SIGNED)")
                        .bind(MIGRATION_LOCK_WAIT_S)
                        .fetch_one(&mut *conn)
                        .await?;
                if locked != Some(1) {
                    return Err(DbError::MigrationLocked);
                }
                let result = migrator.run(&mut *conn).await;
                let _ = sqlx::query("SELECT RELEASE_LOCK(CONCAT('fintech_migrate_', DATABASE()))")
                    .execute(&mut *conn)
                    .await;
                Ok(result?)
            }
            Engine::Sqlite => {
                const ATTEMPTS: u32 = 5;
                let mut attempt = 0;
                loop {
                    attempt += 1;
                    match migrator.run(&self.pool).await {
                        Ok(()) => return Ok(()),
                        Err(e) if attempt < ATTEMPTS => {
                            tracing::warn!(error = &e as &dyn std::error::Error, attempt, "migration raced; retrying");
                            tokio::time::sleep(Duration::from_millis(50 * u64::from(attempt))).await;
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
            }
        }
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// One migrator from several sets (the platform's tables, then the service's). Version numbers
/// must not overlap: the platform uses 1–999, services 1000 and up.
pub fn combine_migrations(sets: &[&Migrator]) -> Migrator {
    let all: Vec<Migration> = sets.iter().flat_map(|m| m.iter().cloned()).collect();
    Migrator::with_migrations(all)
}

fn normalise_url(url: &str, engine: Engine) -> Result<String, DbError> {
    match engine {
        Engine::MySql => Ok(url.replacen("mariadb:", "mysql:", 1)),
        Engine::Sqlite => {
            let path = sqlite_path(url)?;
            if path != ":memory:"
                && let Some(parent) = Path::new(&path).parent().filter(|p| !p.as_os_str().is_empty())
            {
                std::fs::create_dir_all(parent).map_err(DbError::Folder)?;
            }
            if url.contains('?') { Ok(url.to_owned()) } else { Ok(format!("{url}?mode=rwc")) }
        }
    }
}

fn sqlite_path(url: &str) -> Result<String, DbError> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")).ok_or(DbError::UnsupportedUrl)?;
    let path = rest.split('?').next().unwrap_or_default();
    if path.is_empty() {
        return Err(DbError::InvalidUrl("no SQLite file path".into()));
    }
    Ok(path.to_owned())
}

/// The "SQL table setup" stage's first half: make sure the database exists. For MySQL this
/// connects to the server without a database and runs `CREATE DATABASE IF NOT EXISTS`, which is
/// safe to run concurrently; for SQLite, opening the file creates it.
pub async fn create_database_if_absent(url: &str) -> Result<(), DbError> {
    sqlx::any::install_default_drivers();
    match Engine::from_url(url)? {
        Engine::Sqlite => {
            let db = Db::connect(url, PoolLimits { max_connections: 1, ..PoolLimits::default() }).await?;
            db.close().await;
            Ok(())
        }
        Engine::MySql => {
            let mut parsed = url::Url::parse(&url.replacen("mariadb:", "mysql:", 1))
                .map_err(|e| DbError::InvalidUrl(e.to_string()))?;
            let name = parsed.path().trim_start_matches('/').to_owned();
            if name.is_empty() || name.len() > 64 || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                return Err(DbError::InvalidName(name));
            }
            parsed.set_path("");
            let mut conn = sqlx::MySqlConnection::connect(parsed.as_str()).await?;
            // The name is checked above against [A-Za-z0-9_], so quoting it is safe.
            let sql = format!("CREATE DATABASE IF NOT EXISTS `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin");
            conn.execute(sqlx::AssertSqlSafe(sql)).await?;
            conn.close().await?;
            Ok(())
        }
    }
}

/// Splits `items` into chunks whose lengths are powers of two (largest first), each at most
/// `max` (itself rounded down to a power of two).
///
/// Multi-row statements have one SQL text per row count, and each text is prepared and cached
/// per connection. Power-of-two chunks bound the number of distinct texts to about
/// `log2(max)`, so they stay in the statement cache instead of being prepared again and again.
pub fn pow2_chunks<T>(items: &[T], max: usize) -> Vec<&[T]> {
    let max = if max == 0 { 1 } else { 1 << (usize::BITS - 1 - max.leading_zeros()) };
    let mut chunks = Vec::new();
    let mut rest = items;
    while !rest.is_empty() {
        let size = (1 << (usize::BITS - 1 - rest.len().leading_zeros())).min(max);
        let (head, tail) = rest.split_at(size);
        chunks.push(head);
        rest = tail;
    }
    chunks
}

/// An integer column as `i64`, whether the engine declares it `INT` (MySQL: 32 bits, which the
/// `Any` driver will not widen by itself) or `BIGINT`/`INTEGER` (64 bits).
pub fn get_i64(row: &sqlx::any::AnyRow, column: &str) -> Result<i64, sqlx::Error> {
    use sqlx::Row as _;
    row.try_get::<i64, _>(column).or_else(|_| row.try_get::<i32, _>(column).map(i64::from))
}

/// [`get_i64`] for a column that may be `NULL`.
pub fn get_opt_i64(row: &sqlx::any::AnyRow, column: &str) -> Result<Option<i64>, sqlx::Error> {
    use sqlx::Row as _;
    row.try_get::<Option<i64>, _>(column).or_else(|_| row.try_get::<Option<i32>, _>(column).map(|v| v.map(i64::from)))
}

/// True when `err` is a unique or primary-key violation (so callers can answer 409, not 500).
pub fn is_unique_violation(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Database(db) => db.is_unique_violation(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pow2_chunks_cover_everything_in_order() {
        let items: Vec<u32> = (0..13).collect();
        let sizes: Vec<usize> = pow2_chunks(&items, 400).iter().map(|c| c.len()).collect();
        assert_eq!(sizes, [8, 4, 1]);
        let sizes: Vec<usize> = pow2_chunks(&items, 5).iter().map(|c| c.len()).collect();
        assert_eq!(sizes, [4, 4, 4, 1]);
        let flat: Vec<u32> = pow2_chunks(&items, 3).concat();
        assert_eq!(flat, items);
        assert!(pow2_chunks::<u32>(&[], 8).is_empty());
    }

    #[test]
    fn engine_comes_from_the_url_scheme() {
        assert_eq!(Engine::from_url("sqlite://x.db").ok(), Some(Engine::Sqlite));
        assert_eq!(Engine::from_url("mysql://u@h/db").ok(), Some(Engine::MySql));
        assert_eq!(Engine::from_url("mariadb://u@h/db").ok(), Some(Engine::MySql));
        assert!(Engine::from_url("postgres://u@h/db").is_err());
        assert!(sqlite_path("sqlite://").is_err());
        assert_eq!(sqlite_path("sqlite://a/b.db?mode=rwc").ok().as_deref(), Some("a/b.db"));
    }

    #[tokio::test]
    async fn sqlite_file_and_folder_are_created_with_durable_settings() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}/nested/x.db", dir.path().display());
        let db = Db::connect(&url, PoolLimits::default()).await.expect("connects");
        db.ping().await.expect("pings");
        let (mode,): (String,) = sqlx::query_as("PRAGMA journal_mode").fetch_one(db.pool()).await.expect("pragma");
        assert_eq!(mode, "wal");
        let (sync,): (i64,) = sqlx::query_as("PRAGMA synchronous").fetch_one(db.pool()).await.expect("pragma");
        assert_eq!(sync, 2, "synchronous=FULL");
        assert!(dir.path().join("nested/x.db").exists());
    }
}
