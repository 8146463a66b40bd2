//! The writer thread: owns the only read-write connection and commits the work of many
//! concurrent callers in one transaction (group commit). Each caller's work runs in its own
//! savepoint, so one caller's error rolls back only its own changes; every caller is answered
//! only after the transaction that holds its work has committed.

use super::{DbError, DbResult};
use rusqlite::Connection;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

type Finish = Box<dyn FnOnce(bool) + Send>;
type Job = Box<dyn FnOnce(&Connection) -> Finish + Send>;

#[derive(Clone)]
pub struct Writer {
    tx: mpsc::Sender<Job>,
    stats: Arc<WriterStats>,
}

/// Counters for metrics: transactions, jobs and commit time.
#[derive(Default, Debug)]
pub struct WriterStats {
    pub commits: AtomicU64,
    pub jobs: AtomicU64,
    pub commit_micros: AtomicU64,
}

impl Writer {
    pub(super) fn start(conn: Connection, max_batch: usize) -> DbResult<Writer> {
        let (tx, rx) = mpsc::channel::<Job>(8192);
        let stats = Arc::new(WriterStats::default());
        let thread_stats = stats.clone();
        std::thread::Builder::new()
            .name("hookbox-writer".into())
            .spawn(move || run_writer(conn, rx, max_batch.max(1), &thread_stats))
            .map_err(|e| DbError::Corrupt(format!("cannot start the writer thread: {e}")))?;
        Ok(Writer { tx, stats })
    }

    pub fn stats(&self) -> &WriterStats {
        &self.stats
    }

    pub async fn run<T, F>(&self, f: F) -> DbResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> DbResult<T> + Send + 'static,
    {
        let (done_tx, done_rx) = oneshot::channel::<DbResult<T>>();
        let job: Job = Box::new(move |conn: &Connection| {
            let result = in_savepoint(conn, f);
            Box::new(move |committed: bool| {
                let answer = match result {
                    Ok(v) if committed => Ok(v),
                    Ok(_) => Err(DbError::Corrupt("the transaction failed to commit".into())),
                    Err(e) => Err(e),
                };
                let _ = done_tx.send(answer);
            })
        });
        self.tx.send(job).await.map_err(|_| DbError::WriterGone)?;
        done_rx.await.map_err(|_| DbError::WriterGone)?
    }
}

fn in_savepoint<T>(conn: &Connection, f: impl FnOnce(&Connection) -> DbResult<T>) -> DbResult<T> {
    conn.execute_batch("SAVEPOINT job")?;
    match f(conn) {
        Ok(v) => {
            conn.execute_batch("RELEASE job")?;
            Ok(v)
        }
        Err(e) => {
            conn.execute_batch("ROLLBACK TO job; RELEASE job")?;
            Err(e)
        }
    }
}

fn run_writer(
    conn: Connection,
    mut rx: mpsc::Receiver<Job>,
    max_batch: usize,
    stats: &WriterStats,
) {
    let mut finishes: Vec<Finish> = Vec::with_capacity(max_batch);
    while let Some(first) = rx.blocking_recv() {
        let started = std::time::Instant::now();
        if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
            tracing::error!(error = %e, "writer cannot begin a transaction");
            first(&conn)(false);
            continue;
        }
        finishes.push(first(&conn));
        while finishes.len() < max_batch {
            match rx.try_recv() {
                Ok(job) => finishes.push(job(&conn)),
                Err(_) => break,
            }
        }
        let committed = match conn.execute_batch("COMMIT") {
            Ok(()) => true,
            Err(e) => {
                tracing::error!(error = %e, "writer commit failed; rolling back the batch");
                let _ = conn.execute_batch("ROLLBACK");
                false
            }
        };
        stats.commits.fetch_add(1, Ordering::Relaxed);
        stats
            .jobs
            .fetch_add(finishes.len() as u64, Ordering::Relaxed);
        stats.commit_micros.fetch_add(
            u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        for finish in finishes.drain(..) {
            finish(committed);
        }
    }
    // Every sender is gone: flush the WAL into the main file before the thread ends.
    if let Err(e) = conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)") {
        tracing::warn!(error = %e, "final checkpoint failed");
    }
}
