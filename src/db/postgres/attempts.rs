//! The attempt log.

use super::super::{Attempt, AttemptFilter, DbResult, Page, PageQuery};
use super::messages::{self, filter_sql, from_row_at, Param};
use deadpool_postgres::GenericClient;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

const COLS: &str =
    "a.id, a.msg_id, a.endpoint_id, a.url, a.status, a.response_status_code, a.response, \
     a.response_duration_ms, a.error, a.trigger_type, a.created_at, a.request_headers, \
     a.response_headers";

/// An attempt with its message (whose columns follow the attempt's 13).
fn with_msg(r: &Row) -> DbResult<Attempt> {
    Ok(Attempt {
        id: r.try_get(0)?,
        msg_id: r.try_get(1)?,
        endpoint_id: r.try_get(2)?,
        url: r.try_get(3)?,
        status: r.try_get(4)?,
        response_status_code: i64::from(r.try_get::<_, i32>(5)?),
        response: r.try_get(6)?,
        response_duration_ms: r.try_get(7)?,
        error: r.try_get(8)?,
        trigger: r.try_get(9)?,
        created_at: r.try_get(10)?,
        request_headers: r.try_get(11)?,
        response_headers: r.try_get(12)?,
        msg: Some(from_row_at(r, 13)?),
    })
}

/// Attempts newest first (by default), with their messages.
pub async fn list(
    c: &impl GenericClient,
    f: &AttemptFilter,
    page: &PageQuery,
) -> DbResult<Page<Attempt>> {
    let mut cond = String::new();
    let mut owned: Vec<Param> = Vec::new();
    let push = |cond: &mut String, sql: &str, p: Param, owned: &mut Vec<Param>| {
        owned.push(p);
        cond.push_str(&sql.replace('#', &format!("${}", owned.len())));
    };
    if let Some(e) = &f.endpoint_id {
        push(
            &mut cond,
            " AND a.endpoint_id = #",
            Box::new(e.clone()),
            &mut owned,
        );
    }
    if let Some(m) = &f.msg_id {
        push(
            &mut cond,
            " AND a.msg_id = #",
            Box::new(m.clone()),
            &mut owned,
        );
    }
    if let Some(s) = f.status {
        push(&mut cond, " AND a.status = #", Box::new(s), &mut owned);
    }
    if let Some(class) = f.status_code_class {
        if class == 0 {
            cond.push_str(" AND a.response_status_code = 0");
        } else {
            let (lo, hi) = (
                i32::try_from(class).unwrap_or(0),
                i32::try_from(class + 100).unwrap_or(0),
            );
            push(
                &mut cond,
                " AND a.response_status_code >= #",
                Box::new(lo),
                &mut owned,
            );
            push(
                &mut cond,
                " AND a.response_status_code < #",
                Box::new(hi),
                &mut owned,
            );
        }
    }
    // The time each shows (when it was sent; its id is made when its answer came).
    if let Some(b) = f.before {
        push(&mut cond, " AND a.created_at < #", Box::new(b), &mut owned);
    }
    if let Some(at) = f.after {
        push(&mut cond, " AND a.created_at > #", Box::new(at), &mut owned);
    }
    let (mcond, mparams) = filter_sql(&f.messages, owned.len() + 1);
    let params: Vec<&(dyn ToSql + Sync)> = owned
        .iter()
        .chain(mparams.iter())
        .map(|b| b.as_ref() as &(dyn ToSql + Sync))
        .collect();
    super::paged(
        c,
        &format!(
            "SELECT {COLS}, {} FROM attempts a JOIN messages m ON m.id = a.msg_id \
             WHERE TRUE{cond}{mcond} AND {{page}}",
            messages::COLS
        ),
        "a.id",
        &params,
        page,
        with_msg,
    )
    .await
}

pub async fn get(
    c: &impl GenericClient,
    msg_id: &str,
    attempt_id: &str,
) -> DbResult<Option<Attempt>> {
    let stmt = c
        .prepare_cached(&format!(
            "SELECT {COLS}, {} FROM attempts a JOIN messages m ON m.id = a.msg_id \
             WHERE a.msg_id = $1 AND a.id = $2",
            messages::COLS
        ))
        .await?;
    c.query_opt(&stmt, &[&msg_id, &attempt_id])
        .await?
        .map(|r| with_msg(&r))
        .transpose()
}
