//! Background tasks (bulk replays).

use super::Store;
use crate::db::{postgres, sqlite, DbResult, Page, PageQuery};
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

    pub async fn task(&self, id: &str) -> DbResult<Option<Task>> {
        let id = id.to_owned();
        match self {
            Store::Sqlite(db) => db.read(move |c| sqlite::tasks::get(c, &id)).await,
            Store::Postgres(pg) => pg.read(async |c| postgres::tasks::get(c, &id).await).await,
        }
    }

    /// Tasks, newest first: of an application, of an endpoint, or all.
    pub async fn tasks(
        &self,
        app_id: Option<&str>,
        endpoint_id: Option<&str>,
        page: &PageQuery,
    ) -> DbResult<Page<Task>> {
        let (app, ep, p) = (
            app_id.map(str::to_owned),
            endpoint_id.map(str::to_owned),
            page.clone(),
        );
        match self {
            Store::Sqlite(db) => {
                db.read(move |c| sqlite::tasks::list(c, app.as_deref(), ep.as_deref(), &p))
                    .await
            }
            Store::Postgres(pg) => {
                pg.read(async |c| postgres::tasks::list(c, app.as_deref(), ep.as_deref(), &p).await)
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
