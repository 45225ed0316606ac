//! Group commit for small write transactions on SQLite.
//!
//! SQLite has one writer at a time and a durable commit costs an fsync, so many small
//! transactions (an idempotency key claimed, a payment recorded, an answer stored) are bounded
//! by the fsync rate. [`crate::Db::write`] sends each unit of work to one writer task per
//! database, which runs everything queued in ONE transaction, each unit inside its own
//! savepoint: a unit that fails is rolled back alone and its caller gets its error, the others
//! commit together. Every caller hears back only after the shared commit is durable.
//!
//! A unit must only talk to the database: anything slow inside it (a call to another service)
//! would hold up every unit of its group.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::{AnyConnection, AnyPool};
use tokio::sync::mpsc;

/// The future a unit of work returns; it borrows the group's connection.
pub type WriteFuture<'c, T> = Pin<Box<dyn Future<Output = Result<T, sqlx::Error>> + Send + 'c>>;

/// Hands a unit's result to its caller once the group's commit outcome is known.
type Deliver = Box<dyn FnOnce(Option<&sqlx::Error>) + Send>;
type UnitFuture<'c> = Pin<Box<dyn Future<Output = (bool, Deliver)> + Send + 'c>>;
pub(crate) type Unit = Box<dyn for<'c> FnOnce(&'c mut AnyConnection) -> UnitFuture<'c> + Send>;

/// Most units in one transaction (bounds a group's duration and memory).
const MAX_UNITS_PER_COMMIT: usize = 512;
/// Units waiting for the writer; beyond this, callers wait (backpressure).
pub(crate) const QUEUE_CAPACITY: usize = 4096;
/// Longest the writer waits for the callers of its previous group to come back (see the
/// ledger's writer: a caller answered by a commit usually sends again within microseconds).
const GATHER_WINDOW: Duration = Duration::from_micros(300);

/// Wraps `work` into a unit whose result reaches `reply` after the commit.
pub(crate) fn unit<T, F>(work: F, reply: tokio::sync::oneshot::Sender<Result<T, sqlx::Error>>) -> Unit
where
    T: Send + 'static,
    F: for<'c> FnOnce(&'c mut AnyConnection) -> WriteFuture<'c, T> + Send + 'static,
{
    Box::new(move |conn| {
        Box::pin(async move {
            let result = work(conn).await;
            let ok = result.is_ok();
            let deliver: Deliver = Box::new(move |commit_failed| {
                let answer = match commit_failed {
                    Some(e) => Err(sqlx::Error::Protocol(format!("the group commit failed, nothing was written: {e}"))),
                    None => result,
                };
                let _ = reply.send(answer);
            });
            (ok, deliver)
        })
    })
}

pub(crate) async fn writer(pool: AnyPool, gate: Arc<tokio::sync::Mutex<()>>, mut rx: mpsc::Receiver<Unit>) {
    let mut expected = 1;
    while let Some(first) = rx.recv().await {
        let mut units = vec![first];
        let started = Instant::now();
        while units.len() < MAX_UNITS_PER_COMMIT {
            match rx.try_recv() {
                Ok(unit) => units.push(unit),
                Err(_) if units.len() < expected && started.elapsed() < GATHER_WINDOW => {
                    tokio::task::yield_now().await;
                }
                Err(_) => break,
            }
        }
        expected = units.len();
        run_group(&pool, &gate, units).await;
    }
}

/// Runs the units in one transaction. Units that never ran (the transaction could not start,
/// or a savepoint failed) are dropped, which tells their callers nothing was written.
async fn run_group(pool: &AnyPool, gate: &Arc<tokio::sync::Mutex<()>>, units: Vec<Unit>) {
    let mut delivers: Vec<Deliver> = Vec::with_capacity(units.len());
    let outcome: Result<(), sqlx::Error> = async {
        // In turn with the database's other writers in this process (`Db::begin_write`).
        let mut tx = crate::begin_sqlite_write(pool, gate).await?;
        for unit in units {
            sqlx::query("SAVEPOINT unit").execute(&mut *tx).await?;
            let (ok, deliver) = unit(&mut tx).await;
            delivers.push(deliver);
            if !ok {
                sqlx::query("ROLLBACK TO SAVEPOINT unit").execute(&mut *tx).await?;
            }
            sqlx::query("RELEASE SAVEPOINT unit").execute(&mut *tx).await?;
        }
        tx.commit().await
    }
    .await;
    if let Err(e) = &outcome {
        tracing::error!(error = e as &dyn std::error::Error, units = delivers.len(), "group commit failed");
    }
    for deliver in delivers {
        deliver(outcome.as_ref().err());
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use sqlx::Row;

    use crate::{Db, PoolLimits};

    /// 200 concurrent writes, every 10th of which breaks a unique key: the others all commit,
    /// each failing one gets its own error and leaves nothing behind.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_unit_is_rolled_back_alone() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::connect(&format!("sqlite://{}/g.db", dir.path().display()), PoolLimits::default()).await.unwrap();
        sqlx::query("CREATE TABLE t (k TEXT PRIMARY KEY, n INTEGER NOT NULL)").execute(db.pool()).await.unwrap();
        sqlx::query("INSERT INTO t (k, n) VALUES ('taken', 0)").execute(db.pool()).await.unwrap();
        let writes = (0..200).map(|i| {
            let db = db.clone();
            tokio::spawn(async move {
                db.write(move |conn| {
                    Box::pin(async move {
                        sqlx::query("INSERT INTO t (k, n) VALUES (?, ?)")
                            .bind(format!("k{i}"))
                            .bind(i64::from(i))
                            .execute(&mut *conn)
                            .await?;
                        // Every 10th unit wrote a row, then fails: its row must go too.
                        if i % 10 == 0 {
                            sqlx::query("INSERT INTO t (k, n) VALUES ('taken', 1)").execute(&mut *conn).await?;
                        }
                        Ok(i)
                    })
                })
                .await
            })
        });
        let results: Vec<Result<i32, sqlx::Error>> =
            futures_join(writes.collect()).await.into_iter().map(|r| r.unwrap()).collect();
        for (i, r) in results.iter().enumerate() {
            if i % 10 == 0 {
                assert!(r.as_ref().is_err_and(crate::is_unique_violation), "write {i}: {r:?}");
            } else {
                assert_eq!(r.as_ref().ok(), Some(&(i as i32)));
            }
        }
        let rows = sqlx::query("SELECT COUNT(*), SUM(n) FROM t").fetch_one(db.pool()).await.unwrap();
        let (count, sum): (i64, i64) = (rows.get(0), rows.get(1));
        let expected: i64 = (0..200).filter(|i| i % 10 != 0).sum();
        assert_eq!((count, sum), (1 + 180, expected));
    }

    /// Group-commit units and whole write transactions on the same SQLite database take turns
    /// at the process's write gate: all commit, none waits on SQLite's busy handler or fails.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn units_and_write_transactions_take_turns() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::connect(&format!("sqlite://{}/g.db", dir.path().display()), PoolLimits::default()).await.unwrap();
        sqlx::query("CREATE TABLE t (k TEXT PRIMARY KEY, n INTEGER NOT NULL)").execute(db.pool()).await.unwrap();
        let mut handles = Vec::new();
        for task in 0..16 {
            let db = db.clone();
            handles.push(tokio::spawn(async move {
                for i in 0..20 {
                    let k = format!("{task}-{i}");
                    if (task + i) % 2 == 0 {
                        db.write(move |conn| {
                            Box::pin(async move {
                                sqlx::query("INSERT INTO t (k, n) VALUES (?, 1)").bind(k).execute(&mut *conn).await?;
                                Ok(())
                            })
                        })
                        .await?;
                    } else {
                        let mut tx = db.begin_write().await?;
                        sqlx::query("INSERT INTO t (k, n) VALUES (?, 1)").bind(k).execute(&mut *tx).await?;
                        tokio::task::yield_now().await;
                        tx.commit().await?;
                    }
                }
                Ok::<_, sqlx::Error>(())
            }));
        }
        for result in futures_join(handles).await {
            result.unwrap().unwrap();
        }
        let (count,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM t").fetch_one(db.pool()).await.unwrap();
        assert_eq!(count, 16 * 20);
    }

    async fn futures_join<T>(handles: Vec<tokio::task::JoinHandle<T>>) -> Vec<Result<T, tokio::task::JoinError>> {
        let mut out = Vec::with_capacity(handles.len());
        for h in handles {
            out.push(h.await);
        }
        out
    }
}
