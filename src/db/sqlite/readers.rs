//! A small pool of read-only connections used from tokio's blocking threads.

use super::{open_connection, DbError, DbResult};
use rusqlite::Connection;
use std::path::Path;
use std::sync::{Arc, Mutex};
use tokio::sync::Semaphore;

#[derive(Clone)]
pub struct Readers {
    pool: Arc<Mutex<Vec<Connection>>>,
    permits: Arc<Semaphore>,
}

impl Readers {
    pub(super) fn open(path: &Path, n: usize, synchronous: &str) -> DbResult<Readers> {
        let conns = (0..n)
            .map(|_| open_connection(path, true, synchronous))
            .collect::<DbResult<Vec<_>>>()?;
        Ok(Readers {
            pool: Arc::new(Mutex::new(conns)),
            permits: Arc::new(Semaphore::new(n)),
        })
    }

    pub async fn run<T, F>(&self, f: F) -> DbResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> DbResult<T> + Send + 'static,
    {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| DbError::WriterGone)?;
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            // A permit guarantees a free connection; the lock is never held across a query.
            let conn = pool
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .pop();
            let conn = conn.ok_or_else(|| DbError::Corrupt("reader pool is empty".into()))?;
            let result = f(&conn);
            pool.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(conn);
            result
        })
        .await
        .map_err(|e| DbError::Corrupt(format!("reader task failed: {e}")))?
    }
}
