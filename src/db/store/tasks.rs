//! Background tasks (bulk replays).

use super::Store;
use crate::db::{postgres, sqlite, DbResult, Page, PageQuery, TaskFilter};
use crate::domain::tasks::Task;

impl Store {
    /// Stores a new running task, its total counted in the same transaction.
    pub async fn create_task(&self, mut t: Task) -> DbResult<Task> {
        match self {
            Store::Sqlite(db) => {
                db.write(move |c| {
                    sqlite::tasks::create(c, &mut t)?;
                    Ok(t)
                })
                .await
            }
            Store::Postgres(pg) => {
                pg.write(async |tx| {
                    let mut t = t.clone();
                    postgres::tasks::create(tx, &mut t).await?;
                    Ok(t)
                })
                .await
            }
        }
    }

    /// Stores `t` as it is (a task done when it was asked for, stored finished).
    pub async fn record_task(&self, t: Task) -> DbResult<()> {
        match self {
            Store::Sqlite(db) => db.write(move |c| sqlite::tasks::insert(c, &t)).await,
            Store::Postgres(pg) => {
                pg.write(async |tx| postgres::tasks::insert(tx, &t).await)
                    .await
            }
        }
    }

    pub async fn task(&self, id: &str) -> DbResult<Option<Task>> {
        let id = id.to_owned();
        match self {
            Store::Sqlite(db) => db.read(move |c| sqlite::tasks::get(c, &id)).await,
            Store::Postgres(pg) => pg.read(async |c| postgres::tasks::get(c, &id).await).await,
        }
    }

    /// The tasks `filter` picks, newest first.
    pub async fn tasks(&self, filter: &TaskFilter, page: &PageQuery) -> DbResult<Page<Task>> {
        let (f, p) = (filter.clone(), page.clone());
        match self {
            Store::Sqlite(db) => db.read(move |c| sqlite::tasks::list(c, &f, &p)).await,
            Store::Postgres(pg) => {
                pg.read(async |c| postgres::tasks::list(c, &f, &p).await)
                    .await
            }
        }
    }

    /// The ids of the tasks still running.
    pub async fn running_tasks(&self) -> DbResult<Vec<String>> {
        match self {
            Store::Sqlite(db) => db.read(sqlite::tasks::running).await,
            Store::Postgres(pg) => pg.read(async |c| postgres::tasks::running(c).await).await,
        }
    }

    /// One step of a running task, in one transaction (see `sqlite::tasks::step`).
    pub async fn step_task(&self, id: &str, now: i64) -> DbResult<Option<Task>> {
        let (id, key) = (id.to_owned(), self.main_key().clone());
        match self {
            Store::Sqlite(db) => {
                db.write(move |c| sqlite::tasks::step(c, &key, &id, now))
                    .await
            }
            Store::Postgres(pg) => {
                pg.write(async |tx| postgres::tasks::step(tx, &key, &id, now).await)
                    .await
            }
        }
    }
}
