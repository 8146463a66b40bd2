//! Background tasks (bulk replays) on PostgreSQL: as on SQLite, a step locks its task's row,
//! so nodes stepping the same task take its batches one after the other.

use super::messages;
use crate::db::tasks::{replay_from, Arg, Dialect};
use crate::db::TaskFilter;
use crate::db::{DbResult, Page, PageQuery};
use crate::domain::crypto::MainKey;
use crate::domain::tasks::{ReplaySpec, Task, TaskKind, TaskStatus, BATCH};
use deadpool_postgres::GenericClient;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

const COLS: &str =
    "id, app_id, endpoint_id, status, spec, total, done, queued, created_at, updated_at, kind";

const POSTGRES: Dialect = Dialect {
    ph: |n| format!("${n}"),
    json_has: |col, p| {
        format!("EXISTS (SELECT 1 FROM json_array_elements_text({col}::json) v WHERE v = {p})")
    },
};

fn sql_args(args: &[Arg]) -> Vec<Box<dyn ToSql + Sync + Send>> {
    args.iter()
        .map(|a| -> Box<dyn ToSql + Sync + Send> {
            match a {
                Arg::Int(i) => Box::new(*i),
                Arg::Text(s) => Box::new(s.clone()),
            }
        })
        .collect()
}

fn refs(args: &[Box<dyn ToSql + Sync + Send>]) -> Vec<&(dyn ToSql + Sync)> {
    args.iter()
        .map(|b| b.as_ref() as &(dyn ToSql + Sync))
        .collect()
}

fn from_row(r: &Row) -> Task {
    Task {
        id: r.get(0),
        app_id: r.get(1),
        endpoint_id: r.get(2),
        status: TaskStatus::parse(r.get(3)).unwrap_or(TaskStatus::Failed),
        spec: ReplaySpec::from_stored(r.get(4)).unwrap_or_default(),
        total: r.get(5),
        done: r.get(6),
        queued: r.get(7),
        created_at: r.get(8),
        updated_at: r.get(9),
        kind: TaskKind::from_stored(r.get(10)).unwrap_or(TaskKind::Replay),
    }
}

/// Stores a new running replay `t`, its total the messages its window holds now.
pub async fn create(c: &impl GenericClient, t: &mut Task) -> DbResult<()> {
    let (from, args) = replay_from(&POSTGRES, &t.spec, &t.app_id, &t.endpoint_id, None);
    let args = sql_args(&args);
    t.total = c
        .query_one(&format!("SELECT COUNT(*) {from}"), &refs(&args))
        .await?
        .get(0);
    insert(c, t).await
}

/// Stores `t` as it is.
pub async fn insert(c: &impl GenericClient, t: &Task) -> DbResult<()> {
    c.execute(
        &format!(
            "INSERT INTO background_tasks ({COLS}) \
             VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11)"
        ),
        &[
            &t.id,
            &t.app_id,
            &t.endpoint_id,
            &t.status.name(),
            &t.spec.stored(),
            &t.total,
            &t.done,
            &t.queued,
            &t.created_at,
            &t.updated_at,
            &t.kind.stored(),
        ],
    )
    .await?;
    Ok(())
}

pub async fn get(c: &impl GenericClient, id: &str) -> DbResult<Option<Task>> {
    let row = c
        .query_opt(
            &format!("SELECT {COLS} FROM background_tasks WHERE id = $1"),
            &[&id],
        )
        .await?;
    Ok(row.as_ref().map(from_row))
}

/// The tasks `f` picks, newest first.
pub async fn list(
    c: &impl GenericClient,
    f: &TaskFilter,
    page: &PageQuery,
) -> DbResult<Page<Task>> {
    let status = f.status.map(TaskStatus::name);
    let kinds = f
        .kinds
        .as_ref()
        .map(|k| k.iter().map(|k| k.stored()).collect::<Vec<_>>());
    super::paged(
        c,
        &format!(
            "SELECT {COLS} FROM background_tasks WHERE ($1::TEXT IS NULL OR app_id = $1) \
             AND ($2::TEXT IS NULL OR endpoint_id = $2) AND ($3::TEXT IS NULL OR status = $3) \
             AND ($4::TEXT[] IS NULL OR kind = ANY($4)) AND {{page}}"
        ),
        "id",
        &[&f.app_id, &f.endpoint_id, &status, &kinds],
        page,
        |r| Ok(from_row(r)),
    )
    .await
}

/// The running tasks' ids.
pub async fn running(c: &impl GenericClient) -> DbResult<Vec<String>> {
    let rows = c
        .query(
            "SELECT id FROM background_tasks WHERE status = 'running'",
            &[],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// One step of task `id` (see the SQLite `step`), in the caller's transaction, its row
/// locked first.
pub async fn step(
    c: &impl GenericClient,
    key: &MainKey,
    id: &str,
    now: i64,
) -> DbResult<Option<Task>> {
    let Some(row) = c
        .query_opt(
            &format!(
                "SELECT {COLS}, cursor_at, cursor_id FROM background_tasks \
                 WHERE id = $1 AND status = 'running' FOR UPDATE"
            ),
            &[&id],
        )
        .await?
    else {
        return Ok(None);
    };
    let mut t = from_row(&row);
    let cursor: Option<(i64, String)> = row
        .get::<_, Option<i64>>(11)
        .zip(row.get::<_, Option<String>>(12));
    let Some(ep) = super::endpoints::get_by_id(c, key, &t.endpoint_id).await? else {
        return Ok(None);
    };
    let (from, args) = replay_from(
        &POSTGRES,
        &t.spec,
        &t.app_id,
        &t.endpoint_id,
        cursor.as_ref().map(|(at, id)| (*at, id.as_str())),
    );
    let args = sql_args(&args);
    let rows = c
        .query(
            &format!(
                "SELECT {} {from} ORDER BY m.created_at, m.id LIMIT {BATCH}",
                messages::COLS
            ),
            &refs(&args),
        )
        .await?;
    let msgs = rows
        .iter()
        .map(messages::from_row)
        .collect::<DbResult<Vec<_>>>()?;
    let requeue = c
        .prepare_cached(
            "INSERT INTO deliveries (msg_id, endpoint_id, status, attempts, next_attempt_at, \
                 trigger_type, created_at, updated_at) VALUES ($1, $2, 1, 0, $3, 1, $3, $3) \
             ON CONFLICT (msg_id, endpoint_id) DO UPDATE SET status = 1, attempts = 0, \
                 next_attempt_at = $3, trigger_type = 1, updated_at = $3, filter_error = NULL, \
                 lane = CASE WHEN deliveries.status = 1 THEN deliveries.lane END \
             WHERE deliveries.lease_until IS NULL RETURNING id",
        )
        .await?;
    // The endpoint's line, when it is ordered, is taken before any of its deliveries.
    super::lanes::lock(c, [ep.id.as_str()]).await?;
    let mut ids = Vec::new();
    for m in msgs.iter().filter(|m| ep.takes(m)) {
        if let Some(r) = c.query_opt(&requeue, &[&m.id, &ep.id, &now]).await? {
            ids.push(r.get::<_, i64>(0));
        }
    }
    // On an ordered endpoint they join the end of its line, in the order they were accepted.
    t.queued += super::deliveries::requeued(c, &ep.id, ids, now).await? as i64;
    t.done += msgs.len() as i64;
    if msgs.len() < BATCH {
        t.status = TaskStatus::Finished;
    }
    t.updated_at = now;
    let last = msgs.last().map(|m| (m.created_at, m.id.to_string()));
    c.execute(
        "UPDATE background_tasks SET status = $2, done = $3, queued = $4, updated_at = $5, \
             cursor_at = COALESCE($6, cursor_at), cursor_id = COALESCE($7, cursor_id) \
         WHERE id = $1",
        &[
            &t.id,
            &t.status.name(),
            &t.done,
            &t.queued,
            &now,
            &last.as_ref().map(|l| l.0),
            &last.as_ref().map(|l| l.1.clone()),
        ],
    )
    .await?;
    Ok(Some(t))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::tasks::Outcome;

    #[tokio::test]
    async fn a_replay_counts_and_steps_with_every_filter() {
        let Some((pool, _)) = super::super::tests::fresh_database().await else {
            return;
        };
        let c = pool.get().await.unwrap();
        c.batch_execute(
            "INSERT INTO applications (id, name, created_at, updated_at) VALUES ('app_1', 'a', 0, 0); \
             INSERT INTO endpoints (id, app_id, url, description, metadata, headers, created_at, \
                 updated_at) VALUES ('ep_1', 'app_1', 'http://127.0.0.1:9/', '', '{}', '{}', 0, 0); \
             INSERT INTO messages (id, app_id, event_type, payload, channels, created_at, expires_at) \
                 VALUES ('msg_1', 'app_1', 'a.b', '{}', '[\"eu\"]', 5, 99)",
        )
        .await
        .unwrap();
        let spec = ReplaySpec {
            since: 0,
            until: Some(10),
            event_types: Some(vec!["a.b".into()]),
            channel: Some("eu".into()),
            outcome: Some(Outcome::Failed),
            status_code_class: Some(5),
        };
        let mut t = Task {
            id: "qtask_1".into(),
            kind: TaskKind::Replay,
            app_id: "app_1".into(),
            endpoint_id: "ep_1".into(),
            status: TaskStatus::Running,
            spec,
            total: 0,
            done: 0,
            queued: 0,
            created_at: 1,
            updated_at: 1,
        };
        create(&c, &mut t).await.unwrap();
        assert_eq!(t.total, 0, "msg_1 has no failed delivery");
        t.spec = ReplaySpec {
            since: 0,
            ..Default::default()
        };
        t.id = "qtask_2".into();
        create(&c, &mut t).await.unwrap();
        assert_eq!(t.total, 1);
        let key = MainKey::generate();
        let stepped = step(&c, &key, "qtask_2", 7).await.unwrap().unwrap();
        assert_eq!(
            (stepped.done, stepped.queued, stepped.status),
            (1, 1, TaskStatus::Finished)
        );
        assert_eq!(
            list(
                &c,
                &TaskFilter {
                    endpoint_id: Some("ep_1".into()),
                    ..TaskFilter::default()
                },
                &PageQuery {
                    limit: 10,
                    after: None,
                    before: None,
                    descending: true
                }
            )
            .await
            .unwrap()
            .items
            .len(),
            2
        );
    }
}
