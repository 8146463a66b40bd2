//! What both backends ask for a bulk replay: the messages it takes, after its cursor, in the
//! order they were taken. Written once, with each backend's placeholders and JSON test.

use crate::domain::tasks::{Outcome, ReplaySpec};

/// A query argument.
#[derive(Debug, Clone)]
pub enum Arg {
    Int(i64),
    Text(String),
}

/// How a backend writes the query: its `n`th placeholder, and the test that a JSON array
/// column holds the text of a placeholder.
pub struct Dialect {
    pub ph: fn(usize) -> String,
    pub json_has: fn(&str, &str) -> String,
}

/// The FROM and WHERE of the messages of application `app_id` that `spec` replays to
/// `endpoint_id` (messages `m`, their delivery `d` to it), after `cursor` (created_at, id).
pub fn replay_from(
    d: &Dialect,
    spec: &ReplaySpec,
    app_id: &str,
    endpoint_id: &str,
    cursor: Option<(i64, &str)>,
) -> (String, Vec<Arg>) {
    let mut args = vec![
        Arg::Text(endpoint_id.to_owned()),
        Arg::Text(app_id.to_owned()),
        Arg::Int(spec.since),
        Arg::Int(spec.until.unwrap_or(i64::MAX)),
    ];
    let p = |n: usize| (d.ph)(n);
    let mut sql = format!(
        "FROM messages m LEFT JOIN deliveries d ON d.msg_id = m.id AND d.endpoint_id = {} \
         WHERE m.app_id = {} AND m.created_at >= {} AND m.created_at < {} \
         AND m.payload IS NOT NULL",
        p(1),
        p(2),
        p(3),
        p(4)
    );
    let next = |arg: Arg, args: &mut Vec<Arg>| {
        args.push(arg);
        p(args.len())
    };
    if let Some((at, id)) = cursor {
        let (a, i) = (
            next(Arg::Int(at), &mut args),
            next(Arg::Text(id.to_owned()), &mut args),
        );
        sql.push_str(&format!(
            " AND (m.created_at > {a} OR (m.created_at = {a} AND m.id > {i}))"
        ));
    }
    if let Some(types) = &spec.event_types {
        let list: Vec<String> = types
            .iter()
            .map(|t| next(Arg::Text(t.clone()), &mut args))
            .collect();
        sql.push_str(&format!(" AND m.event_type IN ({})", list.join(", ")));
    }
    if let Some(ch) = &spec.channel {
        let at = next(Arg::Text(ch.clone()), &mut args);
        sql.push_str(&format!(" AND {}", (d.json_has)("m.channels", &at)));
    }
    match spec.outcome {
        Some(Outcome::Succeeded) => sql.push_str(" AND d.status = 0"),
        Some(Outcome::Failed) => sql.push_str(" AND d.status = 2"),
        None => {}
    }
    if let Some(class) = spec.status_code_class {
        let c = next(Arg::Int(i64::from(class)), &mut args);
        sql.push_str(&format!(
            " AND (SELECT a.response_status_code FROM attempts a \
               WHERE a.msg_id = m.id AND a.endpoint_id = {} \
               ORDER BY a.created_at DESC, a.id DESC LIMIT 1) / 100 = CAST({c} AS BIGINT)",
            p(1)
        ));
    }
    (sql, args)
}
