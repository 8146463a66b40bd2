//! The writer thread: owns the only read-write connection and commits the work of many
//! concurrent callers in one transaction (group commit). One caller's error rolls back only
//! its own changes: its work runs in its own savepoint or, for work that may run again, it is
//! undone with the run of such work it belongs to, and the rest of that run is written again
//! (see [`Writer::run_replayable`]). Every caller is answered
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
/// How a job's run ended.
enum Ran {
    Ok,
    /// It failed, and the transaction is still open.
    Failed,
    /// Its error made SQLite roll back the whole transaction (it does so on `SQLITE_FULL`,
    /// among others).
    Aborted(Failure),
}

/// A caller's work, as the writer thread holds it until the transaction's fate is known.
trait Work: Send {
    /// Whether it may run again (see [`Writer::run_replayable`]).
    fn replayable(&self) -> bool;
    /// Runs it in the open transaction, in a savepoint of its own when `alone`; keeps its
    /// result (a later run's replaces it).
    fn run(&mut self, conn: &Connection, alone: bool) -> Ran;
    /// How to answer the caller once the transaction has committed (and been synced), or not.
    fn finish(self: Box<Self>) -> Finish;
}

/// A caller's work, its result and where to send it.
struct Caller<T, F> {
    f: F,
    /// Runs without a savepoint of its own in a run of such work (else always in one).
    replayable: bool,
    result: Option<DbResult<T>>,
    done: oneshot::Sender<DbResult<T>>,
    stats: Arc<WriterStats>,
}

impl<T, F> Work for Caller<T, F>
where
    T: Send + 'static,
    F: FnMut(&Connection) -> DbResult<T> + Send + 'static,
{
    fn replayable(&self) -> bool {
        self.replayable
    }

    fn run(&mut self, conn: &Connection, alone: bool) -> Ran {
        let result = if alone || !self.replayable {
            in_savepoint(conn, &mut self.f)
        } else {
            (self.f)(conn)
        };
        let ran = match &result {
            // Work that swallowed the error which ended the transaction.
            Ok(_) if conn.is_autocommit() => Ran::Aborted(Failure::Aborted),
            Ok(_) => Ran::Ok,
            Err(e) if conn.is_autocommit() => Ran::Aborted(if e.is_full() {
                Failure::Full
            } else {
                Failure::Aborted
            }),
            Err(_) => Ran::Failed,
        };
        self.result = Some(result);
        ran
    }

    fn finish(self: Box<Self>) -> Finish {
        let Caller {
            result,
            done,
            stats,
            ..
        } = *self;
        Box::new(move |outcome: Outcome| {
            let answer = match (result, outcome) {
                (Some(Err(e)), _) => Err(e),
                (Some(Ok(v)), Ok(())) => Ok(v),
                (_, Err(failure)) => Err(failure.into()),
                // Never run: no transaction could be had.
                (None, Ok(())) => Err(Failure::Begin.into()),
            };
            stats.note(&answer);
            let _ = done.send(answer);
        })
    }
}

type Job = Box<dyn Work>;

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
    /// Jobs handed to the writer (each counted once it is in the queue for the writer to
    /// take: a test holding the writer knows what its next transaction will hold).
    pub sent: AtomicU64,
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
            sent: AtomicU64::new(0),
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

    /// Runs `f` in the writer's next transaction, in a savepoint of its own: its error undoes
    /// only its own writes. Answers once the transaction has committed (and been synced).
    pub async fn run<T, F>(&self, f: F) -> DbResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> DbResult<T> + Send + 'static,
    {
        let mut once = Some(f);
        let f = move |c: &Connection| match once.take() {
            Some(f) => f(c),
            // Never: such work is not run again.
            None => Err(DbError::NotCommitted("a write was run twice".into())),
        };
        self.send(f, false).await
    }

    /// As [`Writer::run`], for work that may be run more than once and whose only effects are
    /// its writes through the connection. Such work runs without a savepoint of its own (which
    /// copies every page it changes): should one of it fail, the run it belongs to is undone
    /// and the rest of that run is run again, each in its own savepoint. Only the writes and
    /// the result of its last run count.
    pub async fn run_replayable<T, F>(&self, f: F) -> DbResult<T>
    where
        T: Send + 'static,
        F: FnMut(&Connection) -> DbResult<T> + Send + 'static,
    {
        self.send(f, true).await
    }

    async fn send<T, F>(&self, f: F, replayable: bool) -> DbResult<T>
    where
        T: Send + 'static,
        F: FnMut(&Connection) -> DbResult<T> + Send + 'static,
    {
        let (done, rx) = oneshot::channel();
        let job = Box::new(Caller {
            f,
            replayable,
            result: None,
            done,
            stats: self.stats.clone(),
        });
        self.tx
            .send(Cmd::Run(job))
            .await
            .map_err(|_| DbError::WriterGone)?;
        self.stats.sent.fetch_add(1, Ordering::Release);
        rx.await.map_err(|_| DbError::WriterGone)?
    }
}

/// Runs a cached statement that takes no parameters.
fn exec(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(drop)
}

/// The jobs of the transaction being written.
struct Batch<'c> {
    conn: &'c Connection,
    /// Taken and out of any savepoint: answered once the transaction's fate is known.
    finishes: Vec<Finish>,
    /// Replayable jobs that ran, without savepoints of their own, since the `run` savepoint
    /// was opened (it is open while this is not empty).
    run: Vec<Job>,
    /// A replayable job failed: the rest of the transaction runs each job in its own savepoint
    /// (so that a caller whose work keeps failing costs at most one replay per transaction).
    careful: bool,
}

impl<'c> Batch<'c> {
    fn new(conn: &'c Connection, finishes: Vec<Finish>) -> Self {
        Batch {
            conn,
            finishes,
            run: Vec::new(),
            careful: false,
        }
    }

    fn len(&self) -> usize {
        self.finishes.len() + self.run.len()
    }

    /// Runs a job in the open transaction; `Some` when the transaction is lost.
    fn take(&mut self, mut job: Job) -> Option<Failure> {
        if !job.replayable() || self.careful {
            if let Some(failure) = self.close_run() {
                self.finishes.push(job.finish());
                return Some(failure);
            }
            return self.alone(job);
        }
        if self.run.is_empty() {
            if let Err(e) = exec(self.conn, "SAVEPOINT run") {
                tracing::warn!(error = %e, "cannot open a savepoint; running each write alone");
                self.careful = true;
                return self.alone(job);
            }
        }
        match job.run(self.conn, false) {
            Ran::Ok => {
                self.run.push(job);
                None
            }
            Ran::Aborted(failure) => {
                self.run.push(job);
                Some(failure)
            }
            Ran::Failed => {
                // Its writes are undone with the run's; the rest of the run runs again.
                self.finishes.push(job.finish());
                self.careful = true;
                if !undo(self.conn, "ROLLBACK TO run", "RELEASE run") {
                    return Some(Failure::Aborted);
                }
                let mut rest = std::mem::take(&mut self.run).into_iter();
                while let Some(again) = rest.next() {
                    if let Some(failure) = self.alone(again) {
                        // Those not run again are answered with the transaction's failure.
                        self.finishes.extend(rest.map(|j| j.finish()));
                        return Some(failure);
                    }
                }
                None
            }
        }
    }

    /// Runs a job in a savepoint of its own.
    fn alone(&mut self, mut job: Job) -> Option<Failure> {
        let ran = job.run(self.conn, true);
        self.finishes.push(job.finish());
        match ran {
            Ran::Aborted(failure) => Some(failure),
            Ran::Ok | Ran::Failed => None,
        }
    }

    /// Ends the run of replayable jobs: their writes join the transaction.
    fn close_run(&mut self) -> Option<Failure> {
        if self.run.is_empty() {
            return None;
        }
        self.abandon_run();
        match exec(self.conn, "RELEASE run") {
            Ok(()) => None,
            Err(e) => {
                tracing::error!(error = %e, "cannot release a savepoint; aborting its transaction");
                let _ = self.conn.execute_batch("ROLLBACK");
                Some(Failure::Aborted)
            }
        }
    }

    /// The run's jobs are answered with the transaction (whose fate decides theirs).
    fn abandon_run(&mut self) {
        self.finishes.extend(self.run.drain(..).map(|j| j.finish()));
    }
}

fn in_savepoint<T>(conn: &Connection, f: impl FnOnce(&Connection) -> DbResult<T>) -> DbResult<T> {
    exec(conn, "SAVEPOINT job")?;
    match f(conn) {
        Ok(v) => {
            exec(conn, "RELEASE job")?;
            Ok(v)
        }
        // SQLite rolled back the whole transaction (and the savepoint with it).
        Err(e) if conn.is_autocommit() => Err(e),
        Err(e) => {
            undo(conn, "ROLLBACK TO job", "RELEASE job");
            Err(e)
        }
    }
}

/// Undoes the writes since a savepoint and ends it (`rollback_to`, then `release`). When
/// that fails, the failed work cannot be taken out alone: the whole transaction goes (the
/// writer sees it ended and fails the batch), so none of it is committed; `false` then.
fn undo(conn: &Connection, rollback_to: &str, release: &str) -> bool {
    match exec(conn, rollback_to).and_then(|()| exec(conn, release)) {
        Ok(()) => true,
        Err(e) => {
            tracing::error!(error = %e, "cannot roll back a failed write; aborting its transaction");
            let _ = conn.execute_batch("ROLLBACK");
            false
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
        if let Err(e) = exec(&conn, "BEGIN IMMEDIATE") {
            tracing::error!(error = %e, "writer cannot begin a transaction");
            first.finish()(Err(Failure::of_sqlite(&e, Failure::Begin)));
            continue;
        }
        let mut batch = Batch::new(&conn, finishes);
        let mut aborted = batch.take(first);
        while aborted.is_none() && batch.len() < max_batch {
            match rx.try_recv() {
                Ok(Cmd::Run(job)) => aborted = batch.take(job),
                Ok(Cmd::Close(ack)) => {
                    closers.push(ack);
                    rx.close();
                }
                Err(_) => break,
            }
        }
        let outcome = match aborted.or_else(|| batch.close_run()) {
            Some(failure) => {
                tracing::error!(
                    ?failure,
                    "a write failed and its transaction was rolled back; failing the batch"
                );
                batch.abandon_run();
                Err(failure)
            }
            None => match exec(&conn, "COMMIT") {
                Ok(()) => Ok(()),
                Err(e) => {
                    tracing::error!(error = %e, "writer commit failed; rolling back the batch");
                    let _ = conn.execute_batch("ROLLBACK");
                    Err(Failure::of_sqlite(&e, Failure::Commit))
                }
            },
        };
        finishes = batch.finishes;
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
    use crate::db::{DbError, DbOptions, DbResult};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

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

    /// Sends `write` to the writer, which is held inside another write, and returns once it is
    /// queued: writes sent one after the other so are taken in that order.
    async fn queue<T: Send + 'static>(
        db: &Db,
        write: impl std::future::Future<Output = DbResult<T>> + Send + 'static,
    ) -> tokio::task::JoinHandle<DbResult<T>> {
        // Counted once it is in the queue: a queue slot is taken a moment before, and the
        // writer, let go then, could find the queue without it and commit it apart.
        let queued = |db: &Db| db.writer.stats().sent.load(Ordering::Acquire);
        let before = queued(db);
        let handle = tokio::spawn(write);
        let waited = tokio::time::timeout(std::time::Duration::from_secs(10), async {
            while queued(db) == before {
                tokio::task::yield_now().await;
            }
        });
        waited.await.expect("the write was never queued");
        handle
    }

    /// [`queue`] for work that may run again.
    async fn queue_replayable<T: Send + 'static>(
        db: &Db,
        f: impl FnMut(&rusqlite::Connection) -> DbResult<T> + Send + 'static,
    ) -> tokio::task::JoinHandle<DbResult<T>> {
        let writer = db.clone();
        queue(db, async move { writer.write_replayable(f).await }).await
    }

    /// Work that writes row `n`, then fails: the row must not be kept.
    fn insert_then_fail(n: i64) -> impl FnMut(&rusqlite::Connection) -> DbResult<()> {
        move |c| {
            c.execute("INSERT INTO t VALUES (?)", [n])?;
            Err(DbError::Conflict("refused after writing".into()))
        }
    }

    async fn rows(db: &Db) -> i64 {
        db.read(|c| Ok(c.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))?))
            .await
            .unwrap()
    }

    /// A database with a table `t (n INTEGER UNIQUE)`.
    async fn table_db(dir: &std::path::Path) -> Db {
        let db = Db::open(
            &DbOptions {
                max_size_mib: 0,
                path: dir.join("t.db"),
                synchronous: "full".into(),
                readers: 1,
                max_batch: 64,
            },
            crate::domain::crypto::MainKey::generate(),
        )
        .unwrap();
        db.write(|c| Ok(c.execute_batch("CREATE TABLE t (n INTEGER UNIQUE)")?))
            .await
            .unwrap();
        db
    }

    /// Holds the writer inside a write until the sender is used, so that the writes queued
    /// meanwhile share the next transaction.
    async fn hold_writer(
        db: &Db,
    ) -> (
        tokio::task::JoinHandle<DbResult<()>>,
        std::sync::mpsc::Sender<()>,
    ) {
        let (open, gate) = std::sync::mpsc::channel::<()>();
        let (entered, inside) = tokio::sync::oneshot::channel::<()>();
        let held = tokio::spawn({
            let db = db.clone();
            async move {
                db.write(move |_| {
                    entered.send(()).unwrap();
                    gate.recv().unwrap();
                    Ok(())
                })
                .await
            }
        });
        tokio::time::timeout(std::time::Duration::from_secs(10), inside)
            .await
            .expect("the writer never ran the first write")
            .unwrap();
        (held, open)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn when_a_replayed_write_loses_the_transaction_every_write_of_it_is_told_so() {
        let dir = tempfile::tempdir().unwrap();
        let db = table_db(dir.path()).await;
        let (held, open) = hold_writer(&db).await;
        // Its second run ends the transaction, as SQLite does on some errors (SQLITE_FULL).
        let mut runs = 0;
        let a = queue_replayable(&db, move |c| {
            runs += 1;
            if runs == 2 {
                c.execute_batch("ROLLBACK")?;
                return Err(DbError::Full);
            }
            Ok(c.execute("INSERT INTO t VALUES (1)", [])?)
        })
        .await;
        let b = queue_replayable(&db, |c| Ok(c.execute("INSERT INTO t VALUES (2)", [])?)).await;
        let failing = queue_replayable(&db, insert_then_fail(3)).await;
        open.send(()).unwrap();
        // Every write of the lost transaction is told why, those that succeeded included.
        assert!(matches!(held.await.unwrap(), Err(DbError::Full)));
        assert!(matches!(a.await.unwrap(), Err(DbError::Full)));
        // Never run again: the transaction that held its first run was lost.
        assert!(matches!(b.await.unwrap(), Err(DbError::Full)));
        assert!(matches!(failing.await.unwrap(), Err(DbError::Conflict(_))));
        assert_eq!(rows(&db).await, 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_write_that_ends_the_transaction_yet_succeeds_fails_its_batch() {
        let dir = tempfile::tempdir().unwrap();
        let db = table_db(dir.path()).await;
        let (held, open) = hold_writer(&db).await;
        // It swallows what ended the transaction.
        let swallowing = queue_replayable(&db, |c| {
            c.execute_batch("ROLLBACK")?;
            Ok(())
        })
        .await;
        let next = queue_replayable(&db, |c| Ok(c.execute("INSERT INTO t VALUES (1)", [])?)).await;
        open.send(()).unwrap();
        assert!(matches!(held.await.unwrap(), Err(DbError::NotCommitted(_))));
        assert!(matches!(
            swallowing.await.unwrap(),
            Err(DbError::NotCommitted(_))
        ));
        // Not run outside a transaction (it would be kept whatever its caller is told): in
        // the next one, and told so.
        assert_eq!(next.await.unwrap().unwrap(), 1);
        assert_eq!(rows(&db).await, 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_replayable_write_undoes_its_run_and_the_rest_of_the_run_is_written_once() {
        let dir = tempfile::tempdir().unwrap();
        let db = table_db(dir.path()).await;
        let commits = || db.writer.stats().commits.load(Ordering::Relaxed);
        let before = commits();
        let (held, open) = hold_writer(&db).await;
        let runs: Vec<Arc<AtomicUsize>> = (0..4).map(|_| Arc::default()).collect();
        let insert = |n: i64, runs: &Arc<AtomicUsize>| {
            let runs = runs.clone();
            move |c: &rusqlite::Connection| {
                runs.fetch_add(1, Ordering::Relaxed);
                Ok(c.execute("INSERT INTO t VALUES (?)", [n])?)
            }
        };
        let a = queue_replayable(&db, insert(1, &runs[0])).await;
        let once = queue(&db, {
            let (db, f) = (db.clone(), insert(10, &runs[1]));
            async move { db.write(move |c| f(c)).await }
        })
        .await;
        let d = queue_replayable(&db, insert(4, &runs[2])).await;
        let failing = queue_replayable(&db, insert_then_fail(2)).await;
        let c = queue_replayable(&db, insert(3, &runs[3])).await;
        open.send(()).unwrap();
        held.await.unwrap().unwrap();
        for ok in [a, once, d, c] {
            assert_eq!(ok.await.unwrap().unwrap(), 1);
        }
        assert!(matches!(
            failing.await.unwrap(),
            Err(DbError::Conflict(m)) if m == "refused after writing"
        ));
        // One transaction held them all.
        assert_eq!(commits(), before + 1);
        let rows: Vec<i64> = db
            .read(|c| {
                let mut s = c.prepare("SELECT n FROM t ORDER BY n")?;
                let rows = s.query_map([], |r| r.get(0))?;
                Ok(rows.collect::<Result<_, _>>()?)
            })
            .await
            .unwrap();
        assert_eq!(rows, [1, 3, 4, 10]);
        // The write that ran in the failed one's run ran again; a write that cannot run
        // again never did; those before the run and after the failure ran once.
        let ran: Vec<usize> = runs.iter().map(|r| r.load(Ordering::Relaxed)).collect();
        assert_eq!(ran, [1, 1, 2, 1]);
    }
}
