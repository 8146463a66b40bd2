//! Background tasks (bulk replays): created with their count, stepped a batch at a time.

use super::{endpoints, messages, paged, DbResult, Page, PageQuery};
use crate::db::tasks::{replay_from, Arg, Dialect};
use crate::db::TaskFilter;
use crate::domain::tasks::{ReplaySpec, Task, TaskKind, TaskStatus, BATCH};
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Row};

const COLS: &str =
    "id, app_id, endpoint_id, status, spec, total, done, queued, created_at, updated_at, kind";

const SQLITE: Dialect = Dialect {
    ph: |n| format!("?{n}"),
    json_has: |col, p| format!("EXISTS (SELECT 1 FROM json_each({col}) WHERE value = {p})"),
};

impl rusqlite::ToSql for Arg {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        match self {
            Arg::Int(i) => i.to_sql(),
            Arg::Text(s) => s.to_sql(),
        }
    }
}

fn from_row(r: &Row<'_>) -> rusqlite::Result<Task> {
    Ok(Task {
        id: r.get(0)?,
        app_id: r.get(1)?,
        endpoint_id: r.get(2)?,
        status: TaskStatus::parse(&r.get::<_, String>(3)?).unwrap_or(TaskStatus::Failed),
        spec: ReplaySpec::from_stored(&r.get::<_, String>(4)?).unwrap_or_default(),
        total: r.get(5)?,
        done: r.get(6)?,
        queued: r.get(7)?,
        created_at: r.get(8)?,
        updated_at: r.get(9)?,
        kind: TaskKind::from_stored(&r.get::<_, String>(10)?).unwrap_or(TaskKind::Replay),
    })
}

/// Stores a new running replay `t`, its total the messages its window holds now.
pub fn create(c: &Connection, t: &mut Task) -> DbResult<()> {
    let (from, args) = replay_from(&SQLITE, &t.spec, &t.app_id, &t.endpoint_id, None);
    t.total = c
        .prepare(&format!("SELECT COUNT(*) {from}"))?
        .query_row(params_from_iter(args.iter()), |r| r.get(0))?;
    insert(c, t)
}

/// Stores `t` as it is.
pub fn insert(c: &Connection, t: &Task) -> DbResult<()> {
    c.prepare_cached(&format!(
        "INSERT INTO background_tasks ({COLS}) VALUES (?,?,?,?,?,?,?,?,?,?,?)"
    ))?
    .execute(params![
        t.id,
        t.app_id,
        t.endpoint_id,
        t.status.name(),
        t.spec.stored(),
        t.total,
        t.done,
        t.queued,
        t.created_at,
        t.updated_at,
        t.kind.stored()
    ])?;
    Ok(())
}

pub fn get(c: &Connection, id: &str) -> DbResult<Option<Task>> {
    Ok(
        c.prepare_cached(&format!("SELECT {COLS} FROM background_tasks WHERE id = ?"))?
            .query_row([id], from_row)
            .optional()?,
    )
}

/// The tasks `f` picks, newest first.
pub fn list(c: &Connection, f: &TaskFilter, page: &PageQuery) -> DbResult<Page<Task>> {
    let status = f.status.map(TaskStatus::name);
    // The kinds' stored names as a JSON array, for `json_each`.
    let kinds = f.kinds.as_ref().map(|k| {
        serde_json::to_string(&k.iter().map(|k| k.stored()).collect::<Vec<_>>()).unwrap_or_default()
    });
    paged(
        c,
        &format!(
            "SELECT {COLS} FROM background_tasks WHERE (?1 IS NULL OR app_id = ?1) \
             AND (?2 IS NULL OR endpoint_id = ?2) AND (?3 IS NULL OR status = ?3) \
             AND (?4 IS NULL OR kind IN (SELECT value FROM json_each(?4))) AND {{page}}"
        ),
        "id",
        &[&f.app_id, &f.endpoint_id, &status, &kinds],
        page,
        from_row,
    )
}

/// The running tasks' ids.
pub fn running(c: &Connection) -> DbResult<Vec<String>> {
    let mut stmt = c.prepare_cached("SELECT id FROM background_tasks WHERE status = 'running'")?;
    let ids = stmt
        .query_map([], |r| r.get(0))?
        .collect::<Result<Vec<String>, _>>()?;
    Ok(ids)
}

/// One step of task `id`: the next batch of messages after its cursor, each the endpoint
/// takes queued for it again, and the cursor moved past them, in the caller's transaction
/// (so a message is queued once, whatever stops the server). Finished when the batch was the
/// last. The task after the step; `None` when it is not running.
pub fn step(
    c: &Connection,
    key: &crate::domain::crypto::MainKey,
    id: &str,
    now: i64,
) -> DbResult<Option<Task>> {
    let found = c
        .prepare_cached(&format!(
            "SELECT {COLS}, cursor_at, cursor_id FROM background_tasks \
             WHERE id = ? AND status = 'running'"
        ))?
        .query_row([id], |r| {
            let cursor: Option<(i64, String)> = r.get::<_, Option<i64>>(11)?.zip(r.get(12)?);
            Ok((from_row(r)?, cursor))
        })
        .optional()?;
    let Some((mut t, cursor)) = found else {
        return Ok(None);
    };
    let Some(ep) = endpoints::get_by_id(c, key, &t.endpoint_id)? else {
        return Ok(None);
    };
    let (from, args) = replay_from(
        &SQLITE,
        &t.spec,
        &t.app_id,
        &t.endpoint_id,
        cursor.as_ref().map(|(at, id)| (*at, id.as_str())),
    );
    let msgs = c
        .prepare(&format!(
            "SELECT {} {from} ORDER BY m.created_at, m.id LIMIT {BATCH}",
            messages::COLS
        ))?
        .query_map(params_from_iter(args.iter()), messages::from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    let mut requeue = c.prepare_cached(
        "INSERT INTO deliveries (msg_id, endpoint_id, status, attempts, next_attempt_at, \
             trigger_type, created_at, updated_at) VALUES (?1, ?2, 1, 0, ?3, 1, ?3, ?3) \
         ON CONFLICT (msg_id, endpoint_id) DO UPDATE SET status = 1, attempts = 0, \
             next_attempt_at = ?3, trigger_type = 1, updated_at = ?3, filter_error = NULL, \
             lane = CASE WHEN status = 1 THEN lane END \
         WHERE lease_until IS NULL RETURNING id",
    )?;
    let mut ids = Vec::new();
    for m in msgs.iter().filter(|m| ep.takes(m)) {
        if let Some(id) = requeue
            .query_row(params![m.id, ep.id, now], |r| r.get::<_, i64>(0))
            .optional()?
        {
            ids.push(id);
        }
    }
    t.queued += ids.len() as i64;
    // On an ordered endpoint they join the end of its line, in the order they were accepted.
    if ep.ordered && !ids.is_empty() {
        super::lanes::enqueue(c, &ep.id, &ids, now)?;
    }
    t.done += msgs.len() as i64;
    if msgs.len() < BATCH {
        t.status = TaskStatus::Finished;
    }
    t.updated_at = now;
    let last = msgs.last().map(|m| (m.created_at, m.id.to_string()));
    c.prepare_cached(
        "UPDATE background_tasks SET status = ?2, done = ?3, queued = ?4, updated_at = ?5, \
             cursor_at = COALESCE(?6, cursor_at), cursor_id = COALESCE(?7, cursor_id) \
         WHERE id = ?1",
    )?
    .execute(params![
        t.id,
        t.status.name(),
        t.done,
        t.queued,
        now,
        last.as_ref().map(|l| l.0),
        last.as_ref().map(|l| l.1.clone())
    ])?;
    Ok(Some(t))
}
