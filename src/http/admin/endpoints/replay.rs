//! An endpoint's Replay tab: send it the messages of a window again, as a background task,
//! and see how far each replay got.

use super::*;
use crate::domain::tasks::{Outcome, ReplaySpec, Task, TaskKind};

/// A replay as listed: its task, when it started, what it replays.
pub struct TaskRow {
    pub task: Task,
    pub started: String,
    pub window: String,
}

impl TaskRow {
    pub fn of(task: Task) -> TaskRow {
        let s = &task.spec;
        let what = match task.kind {
            TaskKind::Replay => "",
            TaskKind::Recover => "Failed deliveries retried: ",
            TaskKind::ReplayMissing => "Missed messages sent: ",
        };
        let mut window = format!(
            "{what}{} to {}",
            when(s.since),
            s.until.map_or_else(|| "now".to_owned(), when)
        );
        if let Some(types) = &s.event_types {
            window.push_str(&format!(", {}", types.join(", ")));
        }
        match s.outcome {
            Some(Outcome::Succeeded) => window.push_str(", delivered ones"),
            Some(Outcome::Failed) => window.push_str(", failed ones"),
            None => {}
        }
        TaskRow {
            started: when(task.created_at),
            window,
            task,
        }
    }
}

#[derive(Template)]
#[template(path = "admin/endpoints/replay.html")]
struct ReplayPage {
    chrome: Chrome,
    head: Head,
    types: Vec<String>,
    since: String,
    until: String,
    event_type: String,
    outcome: String,
    error: Option<String>,
    tasks: Vec<TaskRow>,
}

/// `YYYY-MM-DDTHH:MM` (a `datetime-local` field, taken as UTC), with seconds, or RFC 3339.
fn form_datetime(raw: &str) -> Option<i64> {
    let raw = raw.trim();
    crate::domain::time::parse_datetime(raw).or_else(|| {
        ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"]
            .iter()
            .find_map(|f| chrono::NaiveDateTime::parse_from_str(raw, f).ok())
            .map(|t| t.and_utc().timestamp_millis())
    })
}

fn form_value(ms: i64) -> String {
    use chrono::TimeZone;
    chrono::Utc
        .timestamp_millis_opt(ms)
        .single()
        .map(|t| t.format("%Y-%m-%dT%H:%M").to_string())
        .unwrap_or_default()
}

async fn replay_page(
    st: &Data,
    chrome: Chrome,
    head: Head,
    form: Option<(&crate::http::admin::Form, String)>,
    status: StatusCode,
) -> Result<HttpResponse, ConsoleError> {
    let q = PageQuery {
        limit: 20,
        after: None,
        before: None,
        descending: true,
    };
    let tasks = st
        .store
        .tasks(
            &crate::db::TaskFilter {
                endpoint_id: Some(head.ep.id.to_string()),
                ..Default::default()
            },
            &q,
        )
        .await?
        .items
        .into_iter()
        .map(TaskRow::of)
        .collect();
    let types = received_types(st, &head).await?;
    let (since, until, event_type, outcome, error) = match form {
        Some((f, error)) => (
            f.get("since").to_owned(),
            f.get("until").to_owned(),
            f.get("event_type").to_owned(),
            f.get("outcome").to_owned(),
            Some(error),
        ),
        None => (
            form_value(now_ms() - 24 * 3_600_000),
            String::new(),
            String::new(),
            String::new(),
            None,
        ),
    };
    page_with(
        status,
        &ReplayPage {
            chrome,
            head,
            types,
            since,
            until,
            event_type,
            outcome,
            error,
            tasks,
        },
    )
}

pub async fn replay(
    st: Data,
    admin: Admin,
    req: HttpRequest,
) -> Result<HttpResponse, ConsoleError> {
    let (head, _) = find_endpoint(&st, &req, "replay").await?;
    let chrome = admin.chrome_with_notice("apps", &req);
    replay_page(&st, chrome, head, None, StatusCode::OK).await
}

/// Starts a replay from the form, or shows it again with what is wrong.
pub async fn start_replay(
    st: Data,
    req: HttpRequest,
    Posted { admin, form }: Posted,
) -> Result<HttpResponse, ConsoleError> {
    let (head, _) = find_endpoint(&st, &req, "replay").await?;
    let since = form_datetime(form.get("since"));
    let until = match form.get("until").trim() {
        "" => Ok(None),
        u => form_datetime(u).map(Some).ok_or(()),
    };
    let outcome = match form.get("outcome") {
        "succeeded" => Some(Outcome::Succeeded),
        "failed" => Some(Outcome::Failed),
        _ => None,
    };
    let event_type = form.get("event_type").trim();
    let spec = match (since, until) {
        (Some(since), Ok(until)) => Ok(ReplaySpec {
            since,
            until,
            event_types: (!event_type.is_empty()).then(|| vec![event_type.to_owned()]),
            outcome,
            ..ReplaySpec::default()
        }),
        (None, _) => Err("Give the time to replay from, like 2026-11-27T09:00.".to_owned()),
        (_, Err(())) => Err(
            "Give the time to replay until, like 2026-11-28T09:00, or leave it empty.".to_owned(),
        ),
    }
    .and_then(|s| {
        crate::service::tasks::check_replay(&s)
            .map(|()| s)
            .map_err(|e| format!("{}: {}", e.loc.join("."), e.msg))
    });
    let started = match spec {
        Ok(spec) => {
            crate::service::tasks::bulk_replay(&st.store, &st.tasks, &head.ep, spec, now_ms()).await
        }
        Err(why) => Err(crate::db::DbError::Conflict(why)),
    };
    match started {
        Ok(_) => Ok(redirect(&format!("{}/replay?ok=replay-started", head.base))),
        // What the form asked for cannot be done (a bad window, a disabled endpoint): said
        // next to it.
        Err(crate::db::DbError::Conflict(why)) => {
            let chrome = admin.chrome("apps");
            let form = Some((&form, why));
            replay_page(&st, chrome, head, form, StatusCode::UNPROCESSABLE_ENTITY).await
        }
        Err(e) => Err(e.into()),
    }
}
