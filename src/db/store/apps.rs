//! Applications.

use super::{unported, App, Store};
use crate::db::sqlite::{admin, apps, endpoints};
use crate::db::{DbResult, Page, PageQuery};

impl Store {
    /// An application by id or uid.
    pub async fn app(&self, key: &str) -> DbResult<Option<App>> {
        let key = key.to_owned();
        match self {
            Store::Postgres(_) => unported(),
            Store::Sqlite(db) => db.read(move |c| apps::get(c, &key)).await,
        }
    }

    /// A page of applications, hookbox's own (`hidden_uid`) left out.
    pub async fn apps(&self, page: &PageQuery, hidden_uid: &'static str) -> DbResult<Page<App>> {
        let q = page.clone();
        match self {
            Store::Postgres(_) => unported(),
            Store::Sqlite(db) => db.read(move |c| apps::list(c, &q, hidden_uid)).await,
        }
    }

    /// A page of applications with how many endpoints each has.
    pub async fn apps_with_endpoint_counts(
        &self,
        page: &PageQuery,
        hidden_uid: &'static str,
    ) -> DbResult<Page<(App, i64)>> {
        let q = page.clone();
        match self {
            Store::Postgres(_) => unported(),
            Store::Sqlite(db) => {
                db.read(move |c| {
                    let page = apps::list(c, &q, hidden_uid)?;
                    let items = page
                        .items
                        .into_iter()
                        .map(|a| {
                            let n = admin::count_endpoints(c, &a.id)?;
                            Ok((a, n))
                        })
                        .collect::<DbResult<Vec<_>>>()?;
                    Ok(Page {
                        items,
                        done: page.done,
                    })
                })
                .await
            }
        }
    }

    /// How many endpoints an application has.
    pub async fn count_endpoints(&self, app_id: &str) -> DbResult<i64> {
        let id = app_id.to_owned();
        match self {
            Store::Postgres(_) => unported(),
            Store::Sqlite(db) => db.read(move |c| admin::count_endpoints(c, &id)).await,
        }
    }

    /// Stores a new application; a taken uid is a [`DbError::Conflict`](crate::db::DbError).
    pub async fn create_app(&self, app: App) -> DbResult<()> {
        match self {
            Store::Postgres(_) => unported(),
            Store::Sqlite(db) => db.write(move |c| apps::insert(c, &app)).await,
        }
    }

    /// The application under `key` when there is one (`false`), else `fresh` stored (`true`).
    pub async fn get_or_create_app(&self, key: &str, fresh: App) -> DbResult<(bool, App)> {
        let key = key.to_owned();
        match self {
            Store::Postgres(_) => unported(),
            Store::Sqlite(db) => {
                db.write(move |c| match apps::get(c, &key)? {
                    Some(existing) => Ok((false, existing)),
                    None => apps::insert(c, &fresh).map(|()| (true, fresh)),
                })
                .await
            }
        }
    }

    /// The application under `key`; when there is none, `fresh` (if given) is stored and
    /// returned.
    pub async fn app_or_create(&self, key: &str, fresh: Option<App>) -> DbResult<Option<App>> {
        let key = key.to_owned();
        match self {
            Store::Postgres(_) => unported(),
            Store::Sqlite(db) => {
                db.write(move |c| match apps::get(c, &key)? {
                    Some(app) => Ok(Some(app)),
                    None => match fresh {
                        Some(app) => apps::insert(c, &app).map(|()| Some(app)),
                        None => Ok(None),
                    },
                })
                .await
            }
        }
    }

    /// The application under `key` replaced by `change(old)`, or `fresh` stored when there is
    /// none; `true` when it was created.
    pub async fn put_app(
        &self,
        key: &str,
        fresh: App,
        change: impl FnOnce(App, App) -> App + Send + 'static,
    ) -> DbResult<(bool, App)> {
        let key = key.to_owned();
        match self {
            Store::Postgres(_) => unported(),
            Store::Sqlite(db) => {
                db.write(move |c| match apps::get(c, &key)? {
                    Some(old) => {
                        let a = change(old, fresh);
                        apps::update(c, &a)?;
                        Ok((false, a))
                    }
                    None => apps::insert(c, &fresh).map(|()| (true, fresh)),
                })
                .await
            }
        }
    }

    pub async fn update_app(&self, app: App) -> DbResult<()> {
        match self {
            Store::Postgres(_) => unported(),
            Store::Sqlite(db) => db.write(move |c| apps::update(c, &app)).await,
        }
    }

    /// Deletes an application with its endpoints, messages and deliveries; returns the ids of
    /// the endpoints that went with it.
    pub async fn delete_app(&self, app_id: &str) -> DbResult<Vec<String>> {
        let id = app_id.to_owned();
        match self {
            Store::Postgres(_) => unported(),
            Store::Sqlite(db) => {
                db.write(move |c| {
                    let eps = endpoints::ids_in_app(c, &id)?;
                    apps::delete(c, &id)?;
                    Ok(eps)
                })
                .await
            }
        }
    }
}
