use super::{is_unique_violation, json_col, paged, to_json, DbError, DbResult, Page, PageQuery};
use rusqlite::{params, Connection, OptionalExtension, Row};

pub use crate::domain::model::EventType;

const COLS: &str =
    "name, description, group_name, schemas, feature_flags, archived, deprecated, created_at, updated_at";

fn from_row(r: &Row<'_>) -> rusqlite::Result<EventType> {
    Ok(EventType {
        name: r.get(0)?,
        description: r.get(1)?,
        group_name: r.get(2)?,
        schemas: json_col(r.get(3)?).unwrap_or_default(),
        feature_flags: json_col(r.get(4)?).unwrap_or_default(),
        archived: r.get(5)?,
        deprecated: r.get(6)?,
        created_at: r.get(7)?,
        updated_at: r.get(8)?,
    })
}

pub fn insert(c: &Connection, e: &EventType) -> DbResult<()> {
    c.prepare_cached(&format!(
        "INSERT INTO event_types ({COLS}) VALUES (?,?,?,?,?,?,?,?,?)"
    ))?
    .execute(params![
        e.name,
        e.description,
        e.group_name,
        e.schemas.as_ref().map(to_json),
        e.feature_flags.as_ref().map(to_json),
        e.archived,
        e.deprecated,
        e.created_at,
        e.updated_at
    ])
    .map_err(|err| {
        if is_unique_violation(&err) {
            DbError::Conflict("an event type with this name already exists".into())
        } else {
            err.into()
        }
    })?;
    Ok(())
}

pub fn update(c: &Connection, e: &EventType) -> DbResult<()> {
    c.prepare_cached(
        "UPDATE event_types SET description=?, group_name=?, schemas=?, feature_flags=?, archived=?, \
         deprecated=?, updated_at=? WHERE name=?",
    )?
    .execute(params![
        e.description,
        e.group_name,
        e.schemas.as_ref().map(to_json),
        e.feature_flags.as_ref().map(to_json),
        e.archived,
        e.deprecated,
        e.updated_at,
        e.name
    ])?;
    Ok(())
}

pub fn get(c: &Connection, name: &str) -> DbResult<Option<EventType>> {
    let mut stmt = c.prepare_cached(&format!("SELECT {COLS} FROM event_types WHERE name = ?"))?;
    Ok(stmt.query_row([name], from_row).optional()?)
}

pub fn list(c: &Connection, page: &PageQuery, include_archived: bool) -> DbResult<Page<EventType>> {
    let filter = if include_archived {
        "1"
    } else {
        "archived = 0"
    };
    paged(
        c,
        &format!("SELECT {COLS} FROM event_types WHERE {filter} AND {{page}}"),
        "name",
        &[],
        page,
        from_row,
    )
}

/// Names among `names` that do not exist (or are archived).
pub fn missing(c: &Connection, names: &[String]) -> DbResult<Vec<String>> {
    let mut stmt = c.prepare_cached("SELECT 1 FROM event_types WHERE name = ? AND archived = 0")?;
    let mut out = Vec::new();
    for n in names {
        if !stmt.exists([n])? {
            out.push(n.clone());
        }
    }
    Ok(out)
}

pub fn delete(c: &Connection, name: &str) -> DbResult<bool> {
    Ok(c.prepare_cached("DELETE FROM event_types WHERE name = ?")?
        .execute([name])?
        > 0)
}
