use super::{is_unique_violation, paged, DbError, DbResult, Page, PageQuery};
use rusqlite::{params, Connection, OptionalExtension, Row};

pub use crate::domain::model::App;

const COLS: &str = "id, uid, name, rate_limit, metadata, created_at, updated_at, retention_ms";

fn from_row(r: &Row<'_>) -> rusqlite::Result<App> {
    let metadata: String = r.get(4)?;
    Ok(App {
        id: r.get(0)?,
        uid: r.get(1)?,
        name: r.get(2)?,
        rate_limit: r.get(3)?,
        metadata: serde_json::from_str(&metadata).unwrap_or_default(),
        created_at: r.get(5)?,
        updated_at: r.get(6)?,
        retention_ms: r.get(7)?,
    })
}

fn uid_conflict(e: rusqlite::Error) -> DbError {
    if is_unique_violation(&e) {
        DbError::Conflict("an application with this uid already exists".into())
    } else {
        e.into()
    }
}

pub fn insert(c: &Connection, a: &App) -> DbResult<()> {
    c.prepare_cached(&format!(
        "INSERT INTO applications ({COLS}) VALUES (?,?,?,?,?,?,?,?)"
    ))?
    .execute(params![
        a.id,
        a.uid,
        a.name,
        a.rate_limit,
        super::to_json(&a.metadata),
        a.created_at,
        a.updated_at,
        a.retention_ms
    ])
    .map_err(uid_conflict)?;
    Ok(())
}

/// Stores `a`'s fields, unless the application changed since it was read as last changed at
/// `as_read` ([`DbError::Changed`]; nothing is written).
pub fn update(c: &Connection, a: &App, as_read: i64) -> DbResult<()> {
    let changed = c
        .prepare_cached(
            "UPDATE applications SET uid=?, name=?, rate_limit=?, metadata=?, updated_at=?, retention_ms=? \
             WHERE id=? AND updated_at=?",
        )?
        .execute(params![
            a.uid,
            a.name,
            a.rate_limit,
            super::to_json(&a.metadata),
            a.updated_at,
            a.retention_ms,
            a.id,
            as_read
        ])
        .map_err(uid_conflict)?;
    if changed == 0 {
        return Err(DbError::Changed);
    }
    Ok(())
}

/// By id, or else by uid.
pub fn get(c: &Connection, key: &str) -> DbResult<Option<App>> {
    let mut stmt = c.prepare_cached(&format!(
        "SELECT {COLS} FROM applications WHERE id = ?1 UNION ALL \
         SELECT {COLS} FROM applications WHERE uid = ?1 LIMIT 1"
    ))?;
    Ok(stmt.query_row([key], from_row).optional()?)
}

/// Every application but the one with uid `hidden_uid` (hookbox's own).
pub fn list(c: &Connection, page: &PageQuery, hidden_uid: &str) -> DbResult<Page<App>> {
    paged(
        c,
        &format!("SELECT {COLS} FROM applications WHERE uid IS NOT ? AND {{page}}"),
        "id",
        &[&hidden_uid],
        page,
        from_row,
    )
}

pub fn delete(c: &Connection, id: &str) -> DbResult<bool> {
    Ok(c.prepare_cached("DELETE FROM applications WHERE id = ?")?
        .execute([id])?
        > 0)
}
