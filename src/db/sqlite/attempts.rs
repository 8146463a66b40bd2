use super::{messages, paged, DbResult, Page, PageQuery};
use rusqlite::{Connection, OptionalExtension, Row};

pub use crate::domain::model::Attempt;

const COLS: &str =
    "a.id, a.msg_id, a.endpoint_id, a.url, a.status, a.response_status_code, a.response, \
                    a.response_duration_ms, a.error, a.trigger_type, a.created_at, \
                    a.request_headers, a.response_headers";

fn from_row(r: &Row<'_>) -> rusqlite::Result<Attempt> {
    Ok(Attempt {
        id: r.get(0)?,
        msg_id: r.get(1)?,
        endpoint_id: r.get(2)?,
        url: r.get(3)?,
        status: r.get(4)?,
        response_status_code: r.get(5)?,
        response: r.get(6)?,
        response_duration_ms: r.get(7)?,
        error: r.get(8)?,
        trigger: r.get(9)?,
        created_at: r.get(10)?,
        request_headers: r.get(11)?,
        response_headers: r.get(12)?,
        msg: None,
    })
}

fn with_msg(r: &Row<'_>) -> rusqlite::Result<Attempt> {
    let mut a = from_row(r)?;
    // The message columns follow the attempt's 13.
    a.msg = Some(messages::Message {
        id: r.get(13)?,
        app_id: r.get(14)?,
        event_type: r.get(15)?,
        event_id: r.get(16)?,
        payload: r.get::<_, Option<String>>(17)?.map(std::sync::Arc::from),
        channels: super::json_col(r.get(18)?).unwrap_or_default(),
        tags: super::json_col(r.get(19)?).unwrap_or_default(),
        created_at: r.get(20)?,
    });
    Ok(a)
}

#[derive(Debug, Default, Clone)]
pub struct AttemptFilter {
    pub endpoint_id: Option<crate::domain::ids::EndpointId>,
    pub msg_id: Option<crate::domain::ids::MsgId>,
    pub status: Option<crate::domain::model::DeliveryStatus>,
    /// 100, 200, 300, 400 or 500; 0 for no response at all.
    pub status_code_class: Option<i64>,
    /// Only attempts made before this time (ms).
    pub before: Option<i64>,
    /// Only attempts made after this time (ms).
    pub after: Option<i64>,
    /// Only attempts of the messages this picks.
    pub messages: messages::MessageFilter,
}

/// Attempts newest first (by default), with their messages.
pub fn list(c: &Connection, f: &AttemptFilter, page: &PageQuery) -> DbResult<Page<Attempt>> {
    let (mcond, mparams) = f.messages.sql();
    let mut cond = String::new();
    let mut owned: Vec<Box<dyn rusqlite::ToSql>> = Vec::new();
    if let Some(e) = &f.endpoint_id {
        cond.push_str(" AND a.endpoint_id = ?");
        owned.push(Box::new(e.clone()));
    }
    if let Some(m) = &f.msg_id {
        cond.push_str(" AND a.msg_id = ?");
        owned.push(Box::new(m.clone()));
    }
    if let Some(s) = f.status {
        cond.push_str(" AND a.status = ?");
        owned.push(Box::new(s));
    }
    if let Some(class) = f.status_code_class {
        if class == 0 {
            cond.push_str(" AND a.response_status_code = 0");
        } else {
            cond.push_str(" AND a.response_status_code >= ? AND a.response_status_code < ?");
            owned.push(Box::new(class));
            owned.push(Box::new(class + 100));
        }
    }
    // The time each shows (when it was sent; its id is made when its answer came).
    if let Some(b) = f.before {
        cond.push_str(" AND a.created_at < ?");
        owned.push(Box::new(b));
    }
    if let Some(at) = f.after {
        cond.push_str(" AND a.created_at > ?");
        owned.push(Box::new(at));
    }
    let params: Vec<&dyn rusqlite::ToSql> = owned
        .iter()
        .chain(mparams.iter())
        .map(|b| b.as_ref())
        .collect();
    paged(
        c,
        &format!(
            "SELECT {COLS}, {} FROM attempts a JOIN messages m ON m.id = a.msg_id WHERE 1{cond}{mcond} AND {{page}}",
            messages::COLS
        ),
        "a.id",
        &params,
        page,
        with_msg,
    )
}

pub fn get(c: &Connection, msg_id: &str, attempt_id: &str) -> DbResult<Option<Attempt>> {
    let mut stmt = c.prepare_cached(&format!(
        "SELECT {COLS}, {} FROM attempts a JOIN messages m ON m.id = a.msg_id WHERE a.msg_id = ? AND a.id = ?",
        messages::COLS
    ))?;
    Ok(stmt.query_row([msg_id, attempt_id], with_msg).optional()?)
}
