//! Applications.

use super::input::{check_created_uid, check_text, check_uid, metadata_map, FieldError, Rejected};
use crate::db::{App, DbResult, Store};
use crate::delivery::Dispatcher;
use crate::domain::ids;
use crate::domain::time::{now_ms, DAY_MS};
use std::collections::BTreeMap;

/// A new application as asked for, before its rules are checked.
#[derive(Debug, Clone, Default)]
pub struct AppInput {
    pub name: String,
    pub uid: Option<String>,
    /// Messages per second to its endpoints.
    pub throttle_rate: Option<u32>,
    pub metadata: Option<BTreeMap<String, String>>,
    /// Days its payloads are kept, when not the server's setting.
    pub retention_days: Option<u32>,
}

impl AppInput {
    /// The application, or the first rule it breaks.
    pub fn parse(self) -> Result<App, FieldError> {
        check_name(&self.name)?;
        check_app_uid(self.uid.as_deref())?;
        let now = now_ms();
        Ok(App {
            id: ids::AppId::generate(),
            uid: self.uid,
            name: self.name,
            rate_limit: self.throttle_rate.map(i64::from),
            retention_ms: retention(self.retention_days)?,
            metadata: metadata_map(self.metadata),
            created_at: now,
            updated_at: now,
        })
    }
}

/// 1 to 256 characters, not only blanks.
pub fn check_name(name: &str) -> Result<(), FieldError> {
    if name.trim().is_empty() || name.chars().count() > 256 {
        return Err(FieldError::new(
            &["name"],
            "name must be 1 to 256 characters",
        ));
    }
    check_text(&["name"], name)
}

/// Application uids: the endpoint rule, and `_hookbox…` is reserved.
pub fn check_app_uid(uid: Option<&str>) -> Result<(), FieldError> {
    if uid.is_some_and(|u| u.starts_with(crate::operational::RESERVED_PREFIX)) {
        return Err(FieldError::new(
            &["uid"],
            "uids starting with `_hookbox` are reserved",
        ));
    }
    check_uid(uid)
}

/// How long payloads are kept, from a number of days (1 to 3650); `None`: the server's.
pub fn retention(days: Option<u32>) -> Result<Option<i64>, FieldError> {
    match days {
        None => Ok(None),
        Some(d) if (1..=3650).contains(&d) => Ok(Some(i64::from(d) * DAY_MS)),
        Some(_) => Err(FieldError::new(
            &["payloadRetentionPeriod"],
            "must be 1 to 3650 days",
        )),
    }
}

/// Deletes an application with its endpoints, messages and their history; the endpoints'
/// cached sending details go too.
pub async fn delete(store: &Store, dispatcher: &Dispatcher, app: &App) -> DbResult<()> {
    let gone = store.delete_app(&app.id).await?;
    for ep in gone {
        dispatcher.endpoint_changed(&ep);
    }
    Ok(())
}

/// Stores a new application; a taken uid is a conflict.
pub async fn create(store: &Store, app: App) -> DbResult<App> {
    store.create_app(app.clone()).await?;
    Ok(app)
}

/// The application with `app`'s uid when there is one (`false`), else `app` stored (`true`).
pub async fn get_or_create(store: &Store, app: App) -> DbResult<(bool, App)> {
    match app.uid.clone() {
        Some(uid) => store.get_or_create_app(&uid, app).await,
        None => create(store, app).await.map(|a| (true, a)),
    }
}

/// The application under `key`; when there is none, `fresh` (if given) is stored.
pub async fn open_or_create(store: &Store, key: &str, fresh: Option<App>) -> DbResult<Option<App>> {
    store.app_or_create(key, fresh).await
}

/// Replaces the application under `key` with `fresh`'s fields (keeping its id, creation time
/// and, when `fresh` names the same uid, that uid), or stores `fresh` when there is none.
/// `true` when it was created.
pub async fn put(store: &Store, key: &str, fresh: App) -> Result<(bool, App), Rejected> {
    let same_uid = fresh.uid.as_deref() == Some(key);
    if !same_uid && store.app(key).await?.is_none() {
        check_created_uid(key, fresh.uid.as_deref())?;
    }
    Ok(store
        .put_app(key, fresh, move |old, fresh| App {
            id: old.id,
            uid: if same_uid { old.uid } else { fresh.uid },
            created_at: old.created_at,
            ..fresh
        })
        .await?)
}

/// How many times [`edit`] reads an application again that others keep changing.
const EDIT_TRIES: usize = 20;

/// Changes application `app_id` as `change` says, on the application as stored: should
/// another change land between the read and the write, it is read and changed again, so that
/// neither is lost. The application as stored then; `None` when there is no such application.
pub async fn edit<E: From<crate::db::DbError>>(
    store: &Store,
    app_id: &str,
    mut change: impl FnMut(&mut App) -> Result<(), E>,
) -> Result<Option<App>, E> {
    let _turn = super::turn(format!("application {app_id}")).await;
    for _ in 0..EDIT_TRIES {
        let Some(mut app) = store.app(app_id).await? else {
            return Ok(None);
        };
        let as_read = app.updated_at;
        change(&mut app)?;
        // Strictly later than what it changes, so that a change made meanwhile is seen.
        app.updated_at = crate::domain::time::now_ms().max(as_read + 1);
        match store.update_app(app.clone(), as_read).await {
            Err(crate::db::DbError::Changed) => continue,
            done => done?,
        }
        return Ok(Some(app));
    }
    Err(crate::db::DbError::Contended(
        "the application kept changing while this change was made".into(),
    )
    .into())
}
