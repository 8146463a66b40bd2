//! The event catalog.

use super::{EventType, Store};
use crate::db::postgres;
use crate::db::sqlite::event_types;
use crate::db::{DbResult, Page, PageQuery};

impl Store {
    pub async fn event_type(&self, name: &str) -> DbResult<Option<EventType>> {
        // No stored name holds NUL (nor could one on PostgreSQL, which refuses to be asked).
        if name.contains('\0') {
            return Ok(None);
        }
        let name = name.to_owned();
        match self {
            Store::Sqlite(db) => db.read(move |c| event_types::get(c, &name)).await,
            Store::Postgres(pg) => {
                pg.read(async |c| postgres::event_types::get(c, &name).await)
                    .await
            }
        }
    }

    pub async fn event_types(
        &self,
        page: &PageQuery,
        include_archived: bool,
    ) -> DbResult<Page<EventType>> {
        let q = page.clone();
        match self {
            Store::Sqlite(db) => {
                db.read(move |c| event_types::list(c, &q, include_archived))
                    .await
            }
            Store::Postgres(pg) => {
                pg.read(async |c| postgres::event_types::list(c, page, include_archived).await)
                    .await
            }
        }
    }

    /// Which of `names` are not in the catalog (archived ones are).
    pub async fn missing_event_types(&self, names: Vec<String>) -> DbResult<Vec<String>> {
        match self {
            Store::Sqlite(db) => db.read(move |c| event_types::missing(c, &names)).await,
            Store::Postgres(pg) => {
                pg.read(async |c| postgres::event_types::missing(c, &names).await)
                    .await
            }
        }
    }

    /// Stores `t`; an archived type of that name is revived with `t`'s fields (keeping its
    /// creation time). `None` when a live type has that name.
    pub async fn create_event_type(&self, t: EventType) -> DbResult<Option<EventType>> {
        match self {
            Store::Sqlite(db) => {
                db.write(move |c| match event_types::get(c, &t.name)? {
                    Some(old) if old.archived => {
                        let revived = EventType {
                            created_at: old.created_at,
                            ..t
                        };
                        event_types::update(c, &revived)?;
                        Ok(Some(revived))
                    }
                    Some(_) => Ok(None),
                    None => event_types::insert(c, &t).map(|()| Some(t)),
                })
                .await
            }
            // Nodes creating the same name at once take turns (the name's lock): the first
            // stores it, the others then find it live (`None`).
            Store::Postgres(pg) => {
                pg.write(async move |tx| {
                    postgres::event_types::lock_name(tx, &t.name).await?;
                    match postgres::event_types::get_for_update(tx, &t.name).await? {
                        Some(old) if old.archived => {
                            let revived = EventType {
                                created_at: old.created_at,
                                ..t
                            };
                            postgres::event_types::update(tx, &revived).await?;
                            Ok(Some(revived))
                        }
                        Some(_) => Ok(None),
                        None => postgres::event_types::insert(tx, &t)
                            .await
                            .map(|()| Some(t)),
                    }
                })
                .await
            }
        }
    }

    /// Stores `make(existing)` under `name`, replacing what is there; `true` when it is new.
    pub async fn put_event_type(
        &self,
        name: &str,
        make: impl FnOnce(Option<&EventType>) -> EventType + Send + 'static,
    ) -> DbResult<(bool, EventType)> {
        let name = name.to_owned();
        match self {
            Store::Sqlite(db) => {
                db.write(move |c| {
                    let existing = event_types::get(c, &name)?;
                    let e = make(existing.as_ref());
                    if existing.is_some() {
                        event_types::update(c, &e)?;
                    } else {
                        event_types::insert(c, &e)?;
                    }
                    Ok((existing.is_none(), e))
                })
                .await
            }
            // Nodes putting the same name at once take turns (the name's lock): one creates
            // it, the others replace it.
            Store::Postgres(pg) => {
                pg.write(async move |tx| {
                    postgres::event_types::lock_name(tx, &name).await?;
                    let existing = postgres::event_types::get_for_update(tx, &name).await?;
                    let e = make(existing.as_ref());
                    if existing.is_some() {
                        postgres::event_types::update(tx, &e).await?;
                    } else {
                        postgres::event_types::insert(tx, &e).await?;
                    }
                    Ok((existing.is_none(), e))
                })
                .await
            }
        }
    }

    /// Applies `change` to the event type `name` and stores it; `None` when there is none.
    pub async fn change_event_type(
        &self,
        name: &str,
        change: impl FnOnce(&mut EventType) + Send + 'static,
    ) -> DbResult<Option<EventType>> {
        let name = name.to_owned();
        match self {
            Store::Sqlite(db) => {
                db.write(move |c| {
                    let Some(mut e) = event_types::get(c, &name)? else {
                        return Ok(None);
                    };
                    change(&mut e);
                    event_types::update(c, &e)?;
                    Ok(Some(e))
                })
                .await
            }
            // Locked while it changes, so concurrent changes apply one after the other.
            Store::Postgres(pg) => {
                pg.write(async move |tx| {
                    let Some(mut e) = postgres::event_types::get_for_update(tx, &name).await?
                    else {
                        return Ok(None);
                    };
                    change(&mut e);
                    postgres::event_types::update(tx, &e).await?;
                    Ok(Some(e))
                })
                .await
            }
        }
    }

    pub async fn update_event_type(&self, e: EventType) -> DbResult<()> {
        match self {
            Store::Sqlite(db) => db.write(move |c| event_types::update(c, &e)).await,
            Store::Postgres(pg) => {
                pg.read(async |c| postgres::event_types::update(c, &e).await)
                    .await
            }
        }
    }

    /// Deletes an event type for good; `false` when there was none.
    pub async fn expunge_event_type(&self, name: &str) -> DbResult<bool> {
        let name = name.to_owned();
        match self {
            Store::Sqlite(db) => db.write(move |c| event_types::delete(c, &name)).await,
            Store::Postgres(pg) => {
                pg.read(async |c| postgres::event_types::delete(c, &name).await)
                    .await
            }
        }
    }
}

/// hookbox's operational events as event types, for choosing among them.
pub fn operational_event_types() -> Vec<EventType> {
    crate::domain::operational::EVENTS
        .iter()
        .map(|(name, description)| EventType {
            name: (*name).to_owned(),
            description: (*description).to_owned(),
            group_name: None,
            schemas: None,
            feature_flags: None,
            archived: false,
            deprecated: false,
            created_at: 0,
            updated_at: 0,
        })
        .collect()
}
