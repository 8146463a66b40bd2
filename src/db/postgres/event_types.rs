//! The event catalog.

use super::super::{to_json, DbError, DbResult, Page, PageQuery};
use crate::db::EventType;
use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

const COLS: &str = "name, description, group_name, schemas, feature_flags, archived, deprecated, \
                    created_at, updated_at";

/// Names are listed (and paged) in byte order, as on SQLite, whatever the database's collation.
const NAME_ORDER: &str = "name COLLATE \"C\"";

fn from_row(r: &Row) -> DbResult<EventType> {
    let schemas: Option<String> = r.try_get(3)?;
    let feature_flags: Option<String> = r.try_get(4)?;
    Ok(EventType {
        name: r.try_get(0)?,
        description: r.try_get(1)?,
        group_name: r.try_get(2)?,
        schemas: schemas.and_then(|s| serde_json::from_str(&s).ok()),
        feature_flags: feature_flags.and_then(|s| serde_json::from_str(&s).ok()),
        archived: r.try_get(5)?,
        deprecated: r.try_get(6)?,
        created_at: r.try_get(7)?,
        updated_at: r.try_get(8)?,
    })
}

fn name_taken() -> DbError {
    DbError::Conflict("an event type with this name already exists".into())
}

pub async fn insert(c: &impl GenericClient, e: &EventType) -> DbResult<()> {
    let stmt = c
        .prepare_cached(&format!(
            "INSERT INTO event_types ({COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        ))
        .await?;
    c.execute(
        &stmt,
        &[
            &e.name,
            &e.description,
            &e.group_name,
            &e.schemas.as_ref().map(to_json),
            &e.feature_flags.as_ref().map(to_json),
            &e.archived,
            &e.deprecated,
            &e.created_at,
            &e.updated_at,
        ],
    )
    .await
    .map_err(|err| {
        if super::is_unique_violation(&err) {
            name_taken()
        } else {
            err.into()
        }
    })?;
    Ok(())
}

/// The advisory lock class of event type names (`pg_advisory_xact_lock(class, hash)`).
const NAME_LOCK_CLASS: i32 = 0x6576_7470;

/// Waits for, then holds until the transaction ends, the lock on the name `name`: writers
/// that read the type then insert or replace it take it first, so that nodes storing the
/// same name at once do so one after the other (each sees what the previous one stored).
pub async fn lock_name(c: &impl GenericClient, name: &str) -> DbResult<()> {
    let stmt = c
        .prepare_cached("SELECT pg_advisory_xact_lock($1, hashtext($2))")
        .await?;
    c.execute(&stmt, &[&NAME_LOCK_CLASS, &name]).await?;
    Ok(())
}

pub async fn update(c: &impl GenericClient, e: &EventType) -> DbResult<()> {
    let stmt = c
        .prepare_cached(
            "UPDATE event_types SET description = $1, group_name = $2, schemas = $3, \
             feature_flags = $4, archived = $5, deprecated = $6, updated_at = $7 WHERE name = $8",
        )
        .await?;
    c.execute(
        &stmt,
        &[
            &e.description,
            &e.group_name,
            &e.schemas.as_ref().map(to_json),
            &e.feature_flags.as_ref().map(to_json),
            &e.archived,
            &e.deprecated,
            &e.updated_at,
            &e.name,
        ],
    )
    .await?;
    Ok(())
}

pub async fn get(c: &impl GenericClient, name: &str) -> DbResult<Option<EventType>> {
    let stmt = c
        .prepare_cached(&format!("SELECT {COLS} FROM event_types WHERE name = $1"))
        .await?;
    c.query_opt(&stmt, &[&name])
        .await?
        .as_ref()
        .map(from_row)
        .transpose()
}

/// As [`get`], the row locked until the transaction ends (for changing it).
pub async fn get_for_update(c: &impl GenericClient, name: &str) -> DbResult<Option<EventType>> {
    let stmt = c
        .prepare_cached(&format!(
            "SELECT {COLS} FROM event_types WHERE name = $1 FOR UPDATE"
        ))
        .await?;
    c.query_opt(&stmt, &[&name])
        .await?
        .as_ref()
        .map(from_row)
        .transpose()
}

pub async fn list(
    c: &impl GenericClient,
    page: &PageQuery,
    include_archived: bool,
) -> DbResult<Page<EventType>> {
    let filter = if include_archived {
        "TRUE"
    } else {
        "NOT archived"
    };
    super::paged(
        c,
        &format!("SELECT {COLS} FROM event_types WHERE {filter} AND {{page}}"),
        NAME_ORDER,
        &[],
        page,
        from_row,
    )
    .await
}

/// Names among `names` that do not exist (or are archived), in the order given.
pub async fn missing(c: &impl GenericClient, names: &[String]) -> DbResult<Vec<String>> {
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let stmt = c
        .prepare_cached("SELECT name FROM event_types WHERE name = ANY($1) AND NOT archived")
        .await?;
    let live = c
        .query(&stmt, &[&names])
        .await?
        .iter()
        .map(|r| r.try_get::<_, String>(0))
        .collect::<Result<std::collections::HashSet<_>, _>>()?;
    Ok(names
        .iter()
        .filter(|n| !live.contains(n.as_str()))
        .cloned()
        .collect())
}

pub async fn delete(c: &impl GenericClient, name: &str) -> DbResult<bool> {
    let stmt = c
        .prepare_cached("DELETE FROM event_types WHERE name = $1")
        .await?;
    Ok(c.execute(&stmt, &[&name]).await? > 0)
}

#[cfg(test)]
mod tests {
    use crate::db::EventType;

    fn event_type(name: &str, description: &str) -> EventType {
        EventType {
            name: name.into(),
            description: description.into(),
            group_name: None,
            schemas: None,
            feature_flags: None,
            archived: false,
            deprecated: false,
            created_at: 1,
            updated_at: 1,
        }
    }

    /// Nodes storing the same name at once: one creates it, the others see or replace it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_creates_and_puts_of_one_name_take_turns() {
        let Some((_, url)) = super::super::tests::fresh_database().await else {
            return;
        };
        let nodes = super::super::tests::nodes(&url, 4).await;
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let s = nodes[i % 4].clone();
                tokio::spawn(async move { s.create_event_type(event_type("a.b", "c")).await })
            })
            .collect();
        let mut created = 0;
        for t in tasks {
            created += usize::from(t.await.unwrap().unwrap().is_some());
        }
        assert_eq!(created, 1);

        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let s = nodes[i % 4].clone();
                tokio::spawn(async move {
                    s.put_event_type("x.y", move |old| {
                        let mut e = event_type("x.y", &format!("p{i}"));
                        if let Some(old) = old {
                            e.created_at = old.created_at;
                        }
                        e
                    })
                    .await
                })
            })
            .collect();
        let mut new = 0;
        for t in tasks {
            new += usize::from(t.await.unwrap().unwrap().0);
        }
        assert_eq!(new, 1);

        // Listed in byte order whatever the database's collation.
        for n in ["B.x", "a_b", "a-b", "Z"] {
            nodes[0].create_event_type(event_type(n, "")).await.unwrap();
        }
        let page = nodes[0]
            .event_types(
                &crate::db::PageQuery {
                    limit: 3,
                    after: Some("Z".into()),
                    ..Default::default()
                },
                false,
            )
            .await
            .unwrap();
        let names: Vec<_> = page.items.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["a-b", "a.b", "a_b"]);
        assert!(!page.done);
        let missing = nodes[0]
            .missing_event_types(vec!["q".into(), "a.b".into(), "q".into()])
            .await
            .unwrap();
        assert_eq!(missing, ["q", "q"]);
    }
}
