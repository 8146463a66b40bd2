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
use crate::metrics::{Histogram, BATCH_BOUNDS, FAST_LATENCY_BOUNDS_MICROS};
use rusqlite::Connection;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use tokio::sync::{mpsc, oneshot};

/// How a job's transaction ended: committed (and synced, in durable mode), or why not.
type Outcome = Result<(), Failure>;
type Finish = Box<dyn FnOnce(Outcome) + Send>;

/// Why a transaction did not count as written.
#[derive(Debug, Clone, Copy)]
enum Failure {
    /// The disk, or the database's size limit, is full.
    Full,
    Begin,
    Commit,
    Sync,
    /// Another write of the batch failed and SQLite rolled back the whole transaction.
    Aborted,
}

impl Failure {
    fn of_sqlite(e: &rusqlite::Error, otherwise: Failure) -> Failure {
        if super::is_full(e) {
            Failure::Full
        } else {
            otherwise
        }
    }
}

impl From<Failure> for DbError {
    fn from(f: Failure) -> Self {
        match f {
            Failure::Full => DbError::Full,
            Failure::Begin => DbError::NotCommitted("the transaction could not begin".into()),
            Failure::Commit => DbError::NotCommitted("the transaction failed to commit".into()),
            Failure::Sync => DbError::NotCommitted(
                "the WAL could not be synced to disk: the write may or may not be kept".into(),
            ),
            Failure::Aborted => DbError::NotCommitted(
                "another write of the same transaction failed and SQLite rolled it back".into(),
            ),
        }
    }
}
/// A caller's work: run in the writer's transaction (`Some`), or skipped (`None`: no
/// transaction could be had). Gives back how to answer the caller once the transaction's fate
/// is known and, when the work's error made SQLite roll back the whole transaction (it does
/// so on `SQLITE_FULL`, among others), why.
type Job = Box<dyn FnOnce(Option<&Connection>) -> (Finish, Option<Failure>) + Send>;

/// What the writer thread is asked to do.
enum Cmd {
    Run(Job),
    /// Commit and sync everything sent before, checkpoint the WAL, stop; then answer.
    Close(oneshot::Sender<()>),
}

#[derive(Clone)]
pub struct Writer {
    tx: mpsc::Sender<Cmd>,
    stats: Arc<WriterStats>,
    thread: Arc<Mutex<Option<JoinHandle<()>>>>,
}

/// Counters for metrics: transactions, jobs and commit time.
#[derive(Debug)]
pub struct WriterStats {
    pub commits: AtomicU64,
    pub jobs: AtomicU64,
    pub commit_micros: AtomicU64,
    pub syncs: AtomicU64,
    /// Callers' jobs per transaction.
    pub batch_size: Histogram,
    /// BEGIN to COMMIT of each transaction (running the batch's work included), in µs.
    pub commit_latency: Histogram,
    /// Writes refused because the disk (or the size limit) was full.
    pub full_errors: AtomicU64,
    /// The last write was refused for that reason (cleared by the next that succeeds).
    pub full: AtomicBool,
}

impl WriterStats {
    /// Notes how a caller's write ended, for the `full` gauge and counter.
    fn note<T>(&self, answer: &DbResult<T>) {
        match answer {
            Ok(_) => {
                if self.full.load(Ordering::Relaxed) {
                    self.full.store(false, Ordering::Relaxed);
                    tracing::info!("writes succeed again: the database is no longer full");
                }
            }
            Err(e) if e.is_full() => {
                self.full_errors.fetch_add(1, Ordering::Relaxed);
                if !self.full.swap(true, Ordering::Relaxed) {
                    tracing::error!(
                        "database or disk is full: writes are refused until space is freed"
                    );
                }
            }
            Err(_) => {}
        }
    }
}

impl Default for WriterStats {
    fn default() -> Self {
        WriterStats {
            commits: AtomicU64::new(0),
            jobs: AtomicU64::new(0),
            commit_micros: AtomicU64::new(0),
            syncs: AtomicU64::new(0),
            batch_size: Histogram::new(BATCH_BOUNDS, 1.0),
            commit_latency: Histogram::new(FAST_LATENCY_BOUNDS_MICROS, 1e6),
            full_errors: AtomicU64::new(0),
            full: AtomicBool::new(false),
        }
    }
}

impl Writer {
    /// Starts the writer; with `sync_wal` set, answers wait until that WAL file is synced.
    pub(super) fn start(
        conn: Connection,
        max_batch: usize,
        sync_wal: Option<PathBuf>,
    ) -> DbResult<Writer> {
        let (tx, rx) = mpsc::channel::<Cmd>(8192);
        let stats = Arc::new(WriterStats::default());
        let spawn_err =
            |e: std::io::Error| DbError::Corrupt(format!("cannot start a database thread: {e}"));
        let syncer = match sync_wal {
            Some(wal) => {
                let (sync_tx, sync_rx) = std::sync::mpsc::channel::<Vec<Finish>>();
                let sync_stats = stats.clone();
                let thread = std::thread::Builder::new()
                    .name("hookbox-sync".into())
                    .spawn(move || run_syncer(&wal, &sync_rx, &sync_stats))
                    .map_err(spawn_err)?;
                Some(Syncer {
                    tx: sync_tx,
                    thread,
                })
            }
            None => None,
        };
        let thread_stats = stats.clone();
        let thread = std::thread::Builder::new()
            .name("hookbox-writer".into())
            .spawn(move || run_writer(conn, rx, max_batch.max(1), syncer, &thread_stats))
            .map_err(spawn_err)?;
        Ok(Writer {
            tx,
            stats,
            thread: Arc::new(Mutex::new(Some(thread))),
        })
    }

    /// Stops the writer: every job sent before is committed (and synced, in durable mode) and
    /// answered, the WAL is checkpointed into the database file and truncated, and both
    /// threads have ended when this returns. Later writes fail with `WriterGone`.
    pub async fn close(&self) {
        let (ack_tx, ack_rx) = oneshot::channel();
        if self.tx.send(Cmd::Close(ack_tx)).await.is_ok() {
            // An error means the thread ended without answering (it panicked): join it anyway.
            let _ = ack_rx.await;
        }
        let thread = self
            .thread
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(thread) = thread {
            if !matches!(
                tokio::task::spawn_blocking(move || thread.join()).await,
                Ok(Ok(()))
            ) {
                tracing::error!("the database writer thread panicked");
            }
        }
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
        let stats = self.stats.clone();
        let job: Job = Box::new(move |conn: Option<&Connection>| {
            let (result, aborted) = match conn {
                Some(conn) => {
                    let result = in_savepoint(conn, f);
                    let aborted = match &result {
                        Err(e) if conn.is_autocommit() => Some(if e.is_full() {
                            Failure::Full
                        } else {
                            Failure::Aborted
                        }),
                        _ => None,
                    };
                    (Some(result), aborted)
                }
                None => (None, None),
            };
            let finish: Finish = Box::new(move |outcome: Outcome| {
                let answer = match (result, outcome) {
                    (Some(Err(e)), _) => Err(e),
                    (Some(Ok(v)), Ok(())) => Ok(v),
                    (_, Err(failure)) => Err(failure.into()),
                    (None, Ok(())) => Err(Failure::Begin.into()),
                };
                stats.note(&answer);
                let _ = done_tx.send(answer);
            });
            (finish, aborted)
        });
        self.tx
            .send(Cmd::Run(job))
            .await
            .map_err(|_| DbError::WriterGone)?;
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
        // SQLite rolled back the whole transaction (and the savepoint with it).
        Err(e) if conn.is_autocommit() => Err(e),
        Err(e) => {
            let undone = conn
                .prepare_cached("ROLLBACK TO job")
                .and_then(|mut s| s.execute([]))
                .and_then(|_| conn.prepare_cached("RELEASE job")?.execute([]));
            if let Err(undo) = undone {
                // The failed work cannot be taken out alone: the whole transaction goes (the
                // writer sees it ended and fails the batch), so none of it is committed.
                tracing::error!(error = %undo, "cannot roll back a failed write; aborting its transaction");
                let _ = conn.execute_batch("ROLLBACK");
            }
            Err(e)
        }
    }
}

/// The WAL sync thread and the channel feeding it.
struct Syncer {
    tx: std::sync::mpsc::Sender<Vec<Finish>>,
    thread: JoinHandle<()>,
}

fn run_writer(
    conn: Connection,
    mut rx: mpsc::Receiver<Cmd>,
    max_batch: usize,
    syncer: Option<Syncer>,
    stats: &WriterStats,
) {
    let mut finishes: Vec<Finish> = Vec::with_capacity(max_batch);
    // Who asked to close: answered once everything is committed, synced and checkpointed.
    let mut closers: Vec<oneshot::Sender<()>> = Vec::new();
    while let Some(cmd) = rx.blocking_recv() {
        let first = match cmd {
            Cmd::Run(job) => job,
            Cmd::Close(ack) => {
                // Jobs already queued are still received (and run); new sends fail.
                closers.push(ack);
                rx.close();
                continue;
            }
        };
        let started = std::time::Instant::now();
        if let Err(e) = conn
            .prepare_cached("BEGIN IMMEDIATE")
            .and_then(|mut s| s.execute([]))
        {
            tracing::error!(error = %e, "writer cannot begin a transaction");
            first(None).0(Err(Failure::of_sqlite(&e, Failure::Begin)));
            continue;
        }
        // Runs a job; when its error rolled back the whole transaction, every job of the
        // batch so far is answered with that failure and `Some` is returned.
        let run = |job: Job, finishes: &mut Vec<Finish>| {
            let (finish, aborted) = job(Some(&conn));
            finishes.push(finish);
            if let Some(failure) = aborted {
                tracing::error!(
                    ?failure,
                    "a write failed and SQLite rolled back its transaction; failing the batch"
                );
                finishes.drain(..).for_each(|f| f(Err(failure)));
            }
            aborted
        };
        let mut aborted = run(first, &mut finishes);
        while aborted.is_none() && finishes.len() < max_batch {
            match rx.try_recv() {
                Ok(Cmd::Run(job)) => aborted = run(job, &mut finishes),
                Ok(Cmd::Close(ack)) => {
                    closers.push(ack);
                    rx.close();
                }
                Err(_) => break,
            }
        }
        let outcome = match aborted {
            Some(failure) => Err(failure),
            None => match conn
                .prepare_cached("COMMIT")
                .and_then(|mut s| s.execute([]))
            {
                Ok(_) => Ok(()),
                Err(e) => {
                    tracing::error!(error = %e, "writer commit failed; rolling back the batch");
                    let _ = conn.execute_batch("ROLLBACK");
                    Err(Failure::of_sqlite(&e, Failure::Commit))
                }
            },
        };
        let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        stats.commits.fetch_add(1, Ordering::Relaxed);
        stats
            .jobs
            .fetch_add(finishes.len() as u64, Ordering::Relaxed);
        stats.commit_micros.fetch_add(micros, Ordering::Relaxed);
        stats.batch_size.observe(finishes.len() as u64);
        stats.commit_latency.observe(micros);
        match &syncer {
            Some(sync) if outcome.is_ok() => {
                let batch = std::mem::replace(&mut finishes, Vec::with_capacity(max_batch));
                if let Err(std::sync::mpsc::SendError(batch)) = sync.tx.send(batch) {
                    tracing::error!("the WAL sync thread has stopped");
                    batch.into_iter().for_each(|f| f(Err(Failure::Sync)));
                }
            }
            _ => finishes.drain(..).for_each(|f| f(outcome)),
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
    // Let the sync thread sync and answer the last batches, then end it.
    if let Some(Syncer { tx, thread }) = syncer {
        drop(tx);
        if thread.join().is_err() {
            tracing::error!("the WAL sync thread panicked");
        }
    }
    // Closed, or every sender is gone: copy the WAL into the database file and empty it.
    match conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, i64>(2)?,
        ))
    }) {
        // After a TRUNCATE checkpoint the WAL is empty: its page counts say nothing more.
        Ok((0, _, _)) => tracing::info!("WAL checkpointed"),
        Ok((busy, log, done)) => tracing::warn!(
            busy,
            pages = log,
            checkpointed = done,
            "final checkpoint was blocked by a reader"
        ),
        Err(e) => tracing::warn!(error = %e, "final checkpoint failed"),
    }
    drop(conn);
    for ack in closers {
        let _ = ack.send(());
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
        // The batch is committed but not known to be durable: its callers are told it
        // failed (and that it may have been stored), whatever the cause.
        let synced = std::fs::File::open(wal)
            .and_then(|f| f.sync_data())
            .map_err(|e| {
                tracing::error!(error = %e, wal = %wal.display(), "cannot sync the WAL; failing the batch");
                Failure::Sync
            });
        stats.syncs.fetch_add(1, Ordering::Relaxed);
        for f in batches.into_iter().flatten() {
            f(synced);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::db::sqlite::Db;
    use crate::db::{DbError, DbOptions};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn close_commits_every_pending_write_then_truncates_the_wal_and_refuses_more() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let db = Db::open(
            &DbOptions {
                max_size_mib: 0,
                path: path.clone(),
                synchronous: "full".into(),
                readers: 1,
                max_batch: 16,
            },
            crate::domain::crypto::MainKey::generate(),
        )
        .unwrap();
        db.write(|c| Ok(c.execute_batch("CREATE TABLE t (n INTEGER)")?))
            .await
            .unwrap();
        let writes: Vec<_> = (0..200)
            .map(|n| {
                let db = db.clone();
                tokio::spawn(async move {
                    db.write(move |c| Ok(c.execute("INSERT INTO t VALUES (?)", [n])?))
                        .await
                })
            })
            .collect();
        // Every write is either committed and acknowledged, or refused: none is lost after
        // an acknowledgement, and the close waits for all that were queued before it.
        db.close().await;
        let mut acked = 0;
        for w in writes {
            match w.await.unwrap() {
                Ok(1) => acked += 1,
                Err(DbError::WriterGone) => {}
                other => panic!("unexpected: {other:?}"),
            }
        }
        let wal = dir.path().join("t.db-wal");
        assert_eq!(std::fs::metadata(&wal).map_or(0, |m| m.len()), 0);
        let stored: i64 = db
            .read(|c| Ok(c.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))?))
            .await
            .unwrap();
        assert_eq!(stored, acked);
        assert!(matches!(
            db.write(|_| Ok(())).await,
            Err(DbError::WriterGone)
        ));
        assert!(db.writer.stats().batch_size.snapshot().1 >= 1);
        // Closing twice is harmless.
        db.close().await;
    }
}
