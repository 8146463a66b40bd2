//! Applications.

use super::super::{DbError, DbResult, Page, PageQuery};
use crate::db::App;
use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

const COLS: &str = "id, uid, name, rate_limit, metadata, created_at, updated_at, retention_ms";

fn from_row(r: &Row) -> DbResult<App> {
    let metadata: String = r.try_get(4)?;
    Ok(App {
        id: r.try_get(0)?,
        uid: r.try_get(1)?,
        name: r.try_get(2)?,
        rate_limit: r.try_get(3)?,
        metadata: serde_json::from_str(&metadata).unwrap_or_default(),
        created_at: r.try_get(5)?,
        updated_at: r.try_get(6)?,
        retention_ms: r.try_get(7)?,
    })
}

fn uid_conflict(e: tokio_postgres::Error) -> DbError {
    if super::is_unique_violation(&e) {
        uid_taken()
    } else {
        e.into()
    }
}

/// The error for an application whose uid another application has.
pub(crate) fn uid_taken() -> DbError {
    DbError::Conflict("an application with this uid already exists".into())
}

pub async fn insert(c: &impl GenericClient, a: &App) -> DbResult<()> {
    let stmt = c
        .prepare_cached(&format!(
            "INSERT INTO applications ({COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        ))
        .await?;
    c.execute(
        &stmt,
        &[
            &a.id,
            &a.uid,
            &a.name,
            &a.rate_limit,
            &super::super::to_json(&a.metadata),
            &a.created_at,
            &a.updated_at,
            &a.retention_ms,
        ],
    )
    .await
    .map_err(uid_conflict)?;
    Ok(())
}

/// Stores `a` unless an application with its id or uid exists (or is being stored by a
/// transaction that then commits): `false` then, and nothing is written. Safe when several
/// nodes store the same uid at once.
pub async fn insert_if_absent(c: &impl GenericClient, a: &App) -> DbResult<bool> {
    let stmt = c
        .prepare_cached(&format!(
            "INSERT INTO applications ({COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT DO NOTHING"
        ))
        .await?;
    let n = c
        .execute(
            &stmt,
            &[
                &a.id,
                &a.uid,
                &a.name,
                &a.rate_limit,
                &super::super::to_json(&a.metadata),
                &a.created_at,
                &a.updated_at,
                &a.retention_ms,
            ],
        )
        .await?;
    Ok(n > 0)
}

pub async fn update(c: &impl GenericClient, a: &App, as_read: i64) -> DbResult<()> {
    let stmt = c
        .prepare_cached(
            "UPDATE applications SET uid = $1, name = $2, rate_limit = $3, metadata = $4, \
             updated_at = $5, retention_ms = $6 WHERE id = $7 AND updated_at = $8",
        )
        .await?;
    let changed = c
        .execute(
            &stmt,
            &[
                &a.uid,
                &a.name,
                &a.rate_limit,
                &super::super::to_json(&a.metadata),
                &a.updated_at,
                &a.retention_ms,
                &a.id,
                &as_read,
            ],
        )
        .await
        .map_err(uid_conflict)?;
    if changed == 0 {
        return Err(DbError::Changed);
    }
    Ok(())
}

/// By id, or else by uid.
pub async fn get(c: &impl GenericClient, key: &str) -> DbResult<Option<App>> {
    let stmt = c
        .prepare_cached(&format!(
            "(SELECT {COLS} FROM applications WHERE id = $1) UNION ALL \
             (SELECT {COLS} FROM applications WHERE uid = $1) LIMIT 1"
        ))
        .await?;
    c.query_opt(&stmt, &[&key])
        .await?
        .as_ref()
        .map(from_row)
        .transpose()
}

/// As [`get`], the row locked until the transaction ends (for changing it).
pub async fn get_for_update(c: &impl GenericClient, key: &str) -> DbResult<Option<App>> {
    let stmt = c
        .prepare_cached(&format!(
            "SELECT {COLS} FROM applications WHERE id = $1 OR uid = $1 \
             ORDER BY id = $1 DESC LIMIT 1 FOR UPDATE"
        ))
        .await?;
    c.query_opt(&stmt, &[&key])
        .await?
        .as_ref()
        .map(from_row)
        .transpose()
}

/// Every application but the one with uid `hidden_uid` (hookbox's own).
pub async fn list(
    c: &impl GenericClient,
    page: &PageQuery,
    hidden_uid: &str,
) -> DbResult<Page<App>> {
    super::paged(
        c,
        &format!("SELECT {COLS} FROM applications WHERE uid IS DISTINCT FROM $1 AND {{page}}"),
        "id",
        &[&hidden_uid],
        page,
        from_row,
    )
    .await
}

/// Deletes an application and everything in it. Its deliveries are locked first, in the
/// order a node recording results locks rows (deliveries, then their endpoint), so that the
/// two wait for each other instead of deadlocking.
pub async fn delete(c: &impl GenericClient, id: &str) -> DbResult<bool> {
    c.execute(
        "SELECT 1 FROM deliveries d JOIN endpoints e ON e.id = d.endpoint_id \
         WHERE e.app_id = $1 ORDER BY d.id FOR UPDATE OF d",
        &[&id],
    )
    .await?;
    let stmt = c
        .prepare_cached("DELETE FROM applications WHERE id = $1")
        .await?;
    Ok(c.execute(&stmt, &[&id]).await? > 0)
}

#[cfg(test)]
mod tests {
    use crate::db::{App, DbError};
    use crate::domain::ids::AppId;

    fn app(uid: &str, name: &str) -> App {
        App {
            id: AppId::generate(),
            uid: Some(uid.into()),
            name: name.into(),
            rate_limit: None,
            retention_ms: None,
            metadata: Default::default(),
            created_at: 1,
            updated_at: 1,
        }
    }

    /// Nodes (separate pools) storing the same uid at once end with one application.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_creates_and_puts_of_one_uid_make_one_application() {
        let Some((_, url)) = super::super::tests::fresh_database().await else {
            return;
        };
        let nodes = super::super::tests::nodes(&url, 4).await;
        let (mut created, mut conflicts) = (0, 0);
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let s = nodes[i % 4].clone();
                tokio::spawn(async move { s.create_app(app("dup", "c")).await })
            })
            .collect();
        for t in tasks {
            match t.await.unwrap() {
                Ok(()) => created += 1,
                Err(DbError::Conflict(_)) => conflicts += 1,
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!((created, conflicts), (1, 7));

        for (round, uid) in ["g", "p", "o"].iter().enumerate() {
            let tasks: Vec<_> = (0..8)
                .map(|i| {
                    let s = nodes[i % 4].clone();
                    let uid = (*uid).to_owned();
                    tokio::spawn(async move {
                        let fresh = app(&uid, &format!("n{i}"));
                        match round {
                            0 => s.get_or_create_app(&uid, fresh).await,
                            1 => {
                                s.put_app(&uid, fresh, |old, fresh| App {
                                    id: old.id,
                                    uid: old.uid,
                                    created_at: old.created_at,
                                    ..fresh
                                })
                                .await
                            }
                            _ => s
                                .app_or_create(&uid, Some(fresh))
                                .await
                                .map(|a| (false, a.unwrap())),
                        }
                    })
                })
                .collect();
            let mut ids = std::collections::HashSet::new();
            let mut news = 0;
            for t in tasks {
                let (new, a) = t.await.unwrap().unwrap();
                news += usize::from(new);
                ids.insert(a.id);
            }
            assert_eq!(ids.len(), 1, "one application for uid {uid}");
            assert!(round == 2 || news == 1, "one creation for uid {uid}");
        }
        let page = nodes[0]
            .apps(
                &crate::db::PageQuery {
                    limit: 50,
                    ..Default::default()
                },
                "none",
            )
            .await
            .unwrap();
        assert_eq!(page.items.len(), 4);
    }
}
