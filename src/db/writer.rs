//! The writer thread: owns the only read-write connection and commits the work of many
//! concurrent callers in one transaction (group commit). Each caller's work runs in its own
//! savepoint, so one caller's error rolls back only its own changes; every caller is answered
//! only after the transaction that holds its work has committed and, in durable mode, after
//! the WAL holding it has been synced to disk.
//!
//! Durable mode pipelines the sync: SQLite commits with `synchronous = NORMAL` (the commit
//! writes the WAL but does not fsync it), and a second thread fsyncs the WAL and then answers
//! every caller whose transaction was committed before that fsync began. While one fsync runs,
//! the writer already commits the next batches, so a slow disk limits latency, not throughput.

use super::{DbError, DbResult};
use rusqlite::Connection;
use std::path::PathBuf;
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
    pub syncs: AtomicU64,
}

impl Writer {
    /// Starts the writer; with `sync_wal` set, answers wait until that WAL file is synced.
    pub(super) fn start(
        conn: Connection,
        max_batch: usize,
        sync_wal: Option<PathBuf>,
    ) -> DbResult<Writer> {
        let (tx, rx) = mpsc::channel::<Job>(8192);
        let stats = Arc::new(WriterStats::default());
        let spawn_err =
            |e: std::io::Error| DbError::Corrupt(format!("cannot start a database thread: {e}"));
        let syncer = match sync_wal {
            Some(wal) => {
                let (sync_tx, sync_rx) = std::sync::mpsc::channel::<Vec<Finish>>();
                let sync_stats = stats.clone();
                std::thread::Builder::new()
                    .name("hookbox-sync".into())
                    .spawn(move || run_syncer(&wal, &sync_rx, &sync_stats))
                    .map_err(spawn_err)?;
                Some(sync_tx)
            }
            None => None,
        };
        let thread_stats = stats.clone();
        std::thread::Builder::new()
            .name("hookbox-writer".into())
            .spawn(move || run_writer(conn, rx, max_batch.max(1), syncer, &thread_stats))
            .map_err(spawn_err)?;
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
    conn.prepare_cached("SAVEPOINT job")?.execute([])?;
    match f(conn) {
        Ok(v) => {
            conn.prepare_cached("RELEASE job")?.execute([])?;
            Ok(v)
        }
        Err(e) => {
            conn.prepare_cached("ROLLBACK TO job")?.execute([])?;
            conn.prepare_cached("RELEASE job")?.execute([])?;
            Err(e)
        }
    }
}

fn run_writer(
    conn: Connection,
    mut rx: mpsc::Receiver<Job>,
    max_batch: usize,
    syncer: Option<std::sync::mpsc::Sender<Vec<Finish>>>,
    stats: &WriterStats,
) {
    let mut finishes: Vec<Finish> = Vec::with_capacity(max_batch);
    let mut last_report = (std::time::Instant::now(), 0u64, 0u64, 0u64, 0u64);
    while let Some(first) = rx.blocking_recv() {
        if last_report.0.elapsed() >= std::time::Duration::from_secs(2)
            && tracing::enabled!(tracing::Level::DEBUG)
        {
            let now = (
                std::time::Instant::now(),
                stats.commits.load(Ordering::Relaxed),
                stats.jobs.load(Ordering::Relaxed),
                stats.commit_micros.load(Ordering::Relaxed),
                stats.syncs.load(Ordering::Relaxed),
            );
            let commits = now.1 - last_report.1;
            tracing::debug!(
                commits,
                avg_batch = (now.2 - last_report.2) as f64 / commits.max(1) as f64,
                avg_commit_us = (now.3 - last_report.3) / commits.max(1),
                syncs = now.4 - last_report.4,
                secs = last_report.0.elapsed().as_secs_f64(),
                "writer"
            );
            last_report = now;
        }
        let started = std::time::Instant::now();
        if let Err(e) = conn
            .prepare_cached("BEGIN IMMEDIATE")
            .and_then(|mut s| s.execute([]))
        {
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
        let committed = match conn
            .prepare_cached("COMMIT")
            .and_then(|mut s| s.execute([]))
        {
            Ok(_) => true,
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
        match &syncer {
            Some(sync) if committed => {
                let batch = std::mem::replace(&mut finishes, Vec::with_capacity(max_batch));
                if let Err(std::sync::mpsc::SendError(batch)) = sync.send(batch) {
                    tracing::error!("the WAL sync thread has stopped");
                    batch.into_iter().for_each(|f| f(false));
                }
            }
            _ => finishes.drain(..).for_each(|f| f(committed)),
        }
    }
    let (commits, jobs) = (
        stats.commits.load(Ordering::Relaxed),
        stats.jobs.load(Ordering::Relaxed),
    );
    tracing::info!(
        commits,
        jobs,
        avg_batch = jobs as f64 / commits.max(1) as f64,
        avg_commit_us = stats.commit_micros.load(Ordering::Relaxed) / commits.max(1),
        syncs = stats.syncs.load(Ordering::Relaxed),
        "database writer stopping"
    );
    // Every sender is gone: flush the WAL into the main file before the thread ends.
    if let Err(e) = conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)") {
        tracing::warn!(error = %e, "final checkpoint failed");
    }
}

/// Syncs the WAL after each group of commits and only then answers their callers.
fn run_syncer(
    wal: &std::path::Path,
    rx: &std::sync::mpsc::Receiver<Vec<Finish>>,
    stats: &WriterStats,
) {
    while let Ok(first) = rx.recv() {
        let mut batches = vec![first];
        batches.extend(rx.try_iter());
        // fsync works on the file, whichever descriptor asks; opening it anew each time also
        // follows the WAL if SQLite ever recreates it.
        let synced = std::fs::File::open(wal).and_then(|f| f.sync_data());
        if let Err(e) = &synced {
            tracing::error!(error = %e, wal = %wal.display(), "cannot sync the WAL; failing the batch");
        }
        stats.syncs.fetch_add(1, Ordering::Relaxed);
        for f in batches.into_iter().flatten() {
            f(synced.is_ok());
        }
    }
}
