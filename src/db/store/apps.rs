//! Applications.

use super::{App, Store};
use crate::db::postgres;
use crate::db::sqlite::{admin, apps, endpoints};
use crate::db::{DbResult, Page, PageQuery};

impl Store {
    /// An application by id or uid.
    pub async fn app(&self, key: &str) -> DbResult<Option<App>> {
        let key = key.to_owned();
        match self {
            Store::Sqlite(db) => db.read(move |c| apps::get(c, &key)).await,
            Store::Postgres(pg) => pg.read(async |c| postgres::apps::get(c, &key).await).await,
        }
    }

    /// A page of applications, hookbox's own (`hidden_uid`) left out.
    pub async fn apps(&self, page: &PageQuery, hidden_uid: &'static str) -> DbResult<Page<App>> {
        let q = page.clone();
        match self {
            Store::Sqlite(db) => db.read(move |c| apps::list(c, &q, hidden_uid)).await,
            Store::Postgres(pg) => {
                pg.read(async |c| postgres::apps::list(c, page, hidden_uid).await)
                    .await
            }
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
            Store::Postgres(pg) => {
                pg.read(async |c| {
                    let page = postgres::apps::list(c, &q, hidden_uid).await?;
                    let mut items = Vec::with_capacity(page.items.len());
                    for a in page.items {
                        let n = postgres::admin::count_endpoints(c, &a.id).await?;
                        items.push((a, n));
                    }
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
            Store::Sqlite(db) => db.read(move |c| admin::count_endpoints(c, &id)).await,
            Store::Postgres(pg) => {
                pg.read(async |c| postgres::admin::count_endpoints(c, app_id).await)
                    .await
            }
        }
    }

    /// Stores a new application; a taken uid is a [`DbError::Conflict`](crate::db::DbError).
    pub async fn create_app(&self, app: App) -> DbResult<()> {
        match self {
            Store::Sqlite(db) => db.write(move |c| apps::insert(c, &app)).await,
            // A uid taken by another node at the same time is a conflict too (the unique
            // index waits for the other insert, then refuses this one).
            Store::Postgres(pg) => {
                pg.read(async |c| postgres::apps::insert(c, &app).await)
                    .await
            }
        }
    }

    /// The application under `key` when there is one (`false`), else `fresh` stored (`true`).
    pub async fn get_or_create_app(&self, key: &str, fresh: App) -> DbResult<(bool, App)> {
        let key = key.to_owned();
        match self {
            Store::Sqlite(db) => {
                db.write(move |c| match apps::get(c, &key)? {
                    Some(existing) => Ok((false, existing)),
                    None => apps::insert(c, &fresh).map(|()| (true, fresh)),
                })
                .await
            }
            // Several nodes creating the same uid at once end with one application: the
            // others wait on the unique index, insert nothing, then find the stored one.
            Store::Postgres(pg) => {
                pg.write(async move |tx| {
                    if let Some(existing) = postgres::apps::get(tx, &key).await? {
                        return Ok((false, existing));
                    }
                    if postgres::apps::insert_if_absent(tx, &fresh).await? {
                        return Ok((true, fresh));
                    }
                    match postgres::apps::get(tx, &key).await? {
                        Some(existing) => Ok((false, existing)),
                        None => Err(postgres::apps::uid_taken()),
                    }
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
            // As `get_or_create_app`: one application when nodes create it at once.
            Store::Postgres(pg) => {
                pg.write(async move |tx| {
                    if let Some(app) = postgres::apps::get(tx, &key).await? {
                        return Ok(Some(app));
                    }
                    let Some(app) = fresh else {
                        return Ok(None);
                    };
                    if postgres::apps::insert_if_absent(tx, &app).await? {
                        return Ok(Some(app));
                    }
                    match postgres::apps::get(tx, &key).await? {
                        Some(existing) => Ok(Some(existing)),
                        None => Err(postgres::apps::uid_taken()),
                    }
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
            Store::Sqlite(db) => {
                db.write(move |c| match apps::get(c, &key)? {
                    Some(old) => {
                        let as_read = old.updated_at;
                        let mut a = change(old, fresh);
                        a.updated_at = a.updated_at.max(as_read + 1);
                        apps::update(c, &a, as_read)?;
                        Ok((false, a))
                    }
                    None => apps::insert(c, &fresh).map(|()| (true, fresh)),
                })
                .await
            }
            // The application is locked while it changes; when another node creates it at
            // the same time, this one waits for it, then replaces it: one application.
            Store::Postgres(pg) => {
                pg.write(async move |tx| {
                    let old = match postgres::apps::get_for_update(tx, &key).await? {
                        Some(old) => old,
                        None => {
                            if postgres::apps::insert_if_absent(tx, &fresh).await? {
                                return Ok((true, fresh));
                            }
                            postgres::apps::get_for_update(tx, &key)
                                .await?
                                .ok_or_else(postgres::apps::uid_taken)?
                        }
                    };
                    let as_read = old.updated_at;
                    let mut a = change(old, fresh);
                    a.updated_at = a.updated_at.max(as_read + 1);
                    postgres::apps::update(tx, &a, as_read).await?;
                    Ok((false, a))
                })
                .await
            }
        }
    }

    /// Stores a changed application; [`crate::db::DbError::Changed`], and nothing written,
    /// when it changed since it was read as last changed at `as_read`.
    pub async fn update_app(&self, app: App, as_read: i64) -> DbResult<()> {
        match self {
            Store::Sqlite(db) => db.write(move |c| apps::update(c, &app, as_read)).await,
            Store::Postgres(pg) => {
                pg.read(async |c| postgres::apps::update(c, &app, as_read).await)
                    .await
            }
        }
    }

    /// Deletes an application with its endpoints, messages and deliveries; returns the ids of
    /// the endpoints that went with it.
    pub async fn delete_app(&self, app_id: &str) -> DbResult<Vec<String>> {
        let id = app_id.to_owned();
        match self {
            Store::Sqlite(db) => {
                db.write(move |c| {
                    let eps = endpoints::ids_in_app(c, &id)?;
                    apps::delete(c, &id)?;
                    Ok(eps)
                })
                .await
            }
            // The application is locked first: an endpoint being added to it meanwhile is
            // either listed (its insert committed first) or refused (it waits for the lock).
            Store::Postgres(pg) => {
                pg.write(async |tx| {
                    if postgres::apps::get_for_update(tx, app_id).await?.is_none() {
                        return Ok(Vec::new());
                    }
                    let eps = postgres::endpoints::ids_in_app(tx, app_id).await?;
                    postgres::apps::delete(tx, app_id).await?;
                    Ok(eps)
                })
                .await
            }
        }
    }
}
