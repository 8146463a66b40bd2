//! Background tasks: a bulk replay of an endpoint's messages, and its progress.
//!
//! `POST /api/v1/app/{app_id}/endpoint/{endpoint_id}/bulk-replay`,
//! `GET /api/v1/background-task`, `GET /api/v1/background-task/{task_id}`.

use super::openapi::{AppPath, EndpointPath, ListParams, ReadErrors, WriteErrors};
use super::{body, find_endpoint, json, query};
use crate::db::TaskFilter;
use crate::domain::tasks::{Outcome, ReplaySpec, Task, TaskKind, TaskStatus};
use crate::domain::time::{format_ms, now_ms, parse_datetime};
use crate::http::auth::Caller;
use crate::http::error::{ApiError, HttpErrorOut};
use crate::http::extract::list_out;
use crate::http::Data;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// Which of the application's messages to send to the endpoint again. The endpoint's own
/// event types, channels and payload filter apply too; messages whose content is gone are
/// left out.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BulkReplayIn {
    /// Messages taken from this time on.
    #[schema(format = DateTime, pattern = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}")]
    pub since: String,
    /// …and before this time (default: now; later messages reach the endpoint anyway).
    #[schema(format = DateTime, pattern = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}")]
    pub until: Option<String>,
    /// Only these event types.
    #[schema(inline, value_type = Option<Vec<super::models::EventTypeName>>, max_items = 100)]
    pub event_types: Option<Vec<String>>,
    /// Only messages in this channel.
    #[schema(max_length = 128, pattern = r"^[a-zA-Z0-9\-_.:]+$")]
    pub channel: Option<String>,
    /// Only messages whose delivery to the endpoint ended so: 0 success, 2 fail.
    #[serde(default, deserialize_with = "super::models::whole")]
    #[schema(value_type = Option<ReplayStatus>)]
    pub status: Option<u32>,
    /// Only messages whose last attempt at the endpoint got a status of this class: 100 to
    /// 500, or 0 for no answer.
    #[serde(default, deserialize_with = "super::models::whole")]
    #[schema(minimum = 0, maximum = 500, multiple_of = 100)]
    pub status_code_class: Option<u32>,
}

/// A delivery's end a replay may pick: 0 success, 2 fail.
pub struct ReplayStatus;

impl utoipa::PartialSchema for ReplayStatus {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .description(Some("0 success, 2 fail."))
            .enum_values(Some([0, 2]))
            .into()
    }
}
impl ToSchema for ReplayStatus {}

/// A background task (Svix's shape; hookbox runs `endpoint.replay`).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackgroundTaskOut {
    #[schema(example = "qtask_2yZwUhtgs5Ai8T9yRQJXA")]
    pub id: String,
    /// `running`, `finished` or `failed` (a recovery, and a replay of missing messages, are
    /// done when asked: `finished`).
    #[schema(example = "running")]
    pub status: &'static str,
    /// `endpoint.replay` (a bulk replay, or a replay of missing messages) or
    /// `endpoint.recover`.
    #[schema(example = "endpoint.replay")]
    pub task: &'static str,
    pub data: BackgroundTaskData,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

/// How far a replay got: `done` of `total` messages looked at (counted when it started),
/// `queued` of them sent again.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackgroundTaskData {
    pub app_id: String,
    pub endpoint_id: String,
    pub total: i64,
    pub done: i64,
    pub queued: i64,
    /// 0 to 100 (100 only once finished).
    pub percent: i64,
}

impl From<Task> for BackgroundTaskOut {
    fn from(t: Task) -> Self {
        BackgroundTaskOut {
            status: t.status.name(),
            task: t.kind.api_name(),
            data: BackgroundTaskData {
                percent: t.percent(),
                app_id: t.app_id,
                endpoint_id: t.endpoint_id,
                total: t.total,
                done: t.done,
                queued: t.queued,
            },
            created_at: format_ms(t.created_at),
            updated_at: format_ms(t.updated_at),
            id: t.id,
        }
    }
}

/// A page of background tasks.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(non_camel_case_types)]
pub struct ListResponse_BackgroundTaskOut_ {
    pub data: Vec<BackgroundTaskOut>,
    #[schema(required)]
    pub iterator: Option<String>,
    #[schema(required)]
    pub prev_iterator: Option<String>,
    pub done: bool,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // documents the path parameter
pub struct TaskPath {
    /// The task's id.
    #[param(min_length = 1, max_length = 256, pattern = r"^[a-zA-Z0-9\-_.]+$")]
    pub task_id: String,
}

fn datetime(field: &'static str, s: &str) -> Result<i64, ApiError> {
    parse_datetime(s).ok_or_else(|| ApiError::invalid(&["body", field], "not a date-time"))
}

impl BulkReplayIn {
    fn spec(self) -> Result<ReplaySpec, ApiError> {
        let outcome = match self.status {
            None => None,
            Some(0) => Some(Outcome::Succeeded),
            Some(2) => Some(Outcome::Failed),
            Some(_) => {
                return Err(ApiError::invalid(
                    &["body", "status"],
                    "0 (success) or 2 (fail)",
                ))
            }
        };
        let status_code_class = match self.status_code_class {
            Some(c) if c % 100 != 0 || c > 500 => {
                return Err(ApiError::invalid(
                    &["body", "statusCodeClass"],
                    "0 (no answer), 100, 200, 300, 400 or 500",
                ))
            }
            c => c.and_then(|c| u16::try_from(c / 100).ok()),
        };
        let spec = ReplaySpec {
            since: datetime("since", &self.since)?,
            until: self
                .until
                .as_deref()
                .map(|u| datetime("until", u))
                .transpose()?,
            event_types: self.event_types.filter(|t| !t.is_empty()),
            channel: self.channel,
            outcome,
            status_code_class,
        };
        crate::service::tasks::check_replay(&spec)?;
        Ok(spec)
    }
}

/// Send an endpoint the messages of a time window again, in the background (hookbox: with
/// filters on event type, channel, delivery status and status code class).
#[utoipa::path(
    post,
    path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/bulk-replay",
    operation_id = "v1.endpoint.bulk-replay",
    tag = "Background Task",
    params(AppPath, EndpointPath),
    request_body = BulkReplayIn,
    responses(
        (status = 202, description = "Started", body = BackgroundTaskOut),
        (status = 409, description = "The endpoint is disabled", body = HttpErrorOut),
        WriteErrors
    )
)]
pub async fn bulk_replay(
    st: Data,
    who: Caller,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let (_, ep) = find_endpoint(&st, &req).await?;
    let input: BulkReplayIn = body(&st, payload).await?;
    let spec = input.spec()?;
    super::idempotent(&st, &req, &who, || async {
        let t =
            crate::service::tasks::bulk_replay(&st.store, &st.tasks, &ep, spec, now_ms()).await?;
        let out = BackgroundTaskOut::from(t);
        Ok((
            StatusCode::ACCEPTED,
            serde_json::to_value(out).unwrap_or_default(),
        ))
    })
    .await
}

/// Which tasks a listing holds.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // documents the query parameters
pub struct TaskListParams {
    /// Only tasks in this state.
    #[param(inline, value_type = Option<TaskStatusName>)]
    pub status: Option<String>,
    /// Only tasks of this type: `endpoint.replay` or `endpoint.recover` (any other type
    /// lists nothing: hookbox runs no other).
    pub task: Option<String>,
}

/// A task's state: `running`, `finished` or `failed`.
pub struct TaskStatusName;

impl utoipa::PartialSchema for TaskStatusName {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(TaskStatus::ALL.map(TaskStatus::name)))
            .into()
    }
}
impl ToSchema for TaskStatusName {}

/// The listing's filter from the query string.
fn task_filter(q: &crate::http::extract::Query) -> Result<TaskFilter, ApiError> {
    let status = match q.str("status") {
        None => None,
        Some(s) => Some(TaskStatus::parse(s).ok_or_else(|| {
            ApiError::invalid(
                &["query", "status"],
                "status must be running, finished or failed",
            )
        })?),
    };
    Ok(TaskFilter {
        status,
        kinds: q.str("task").map(TaskKind::with_api_name),
        ..TaskFilter::default()
    })
}

/// List background tasks, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/background-task",
    operation_id = "v1.background-task.list",
    tag = "Background Task",
    params(ListParams, TaskListParams),
    responses((status = 200, description = "OK", body = ListResponse_BackgroundTaskOut_), ReadErrors)
)]
pub async fn list(st: Data, _who: Caller, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let q = query(&req);
    let page = ListParams::parse(&q)?.page(true);
    let rows = st.store.tasks(&task_filter(&q)?, &page).await?;
    Ok(json(
        StatusCode::OK,
        &list_out(rows, &page, |t| t.id.clone(), BackgroundTaskOut::from),
    ))
}

/// Get a background task and its progress.
#[utoipa::path(
    get,
    path = "/api/v1/background-task/{task_id}",
    operation_id = "v1.background-task.get",
    tag = "Background Task",
    params(TaskPath),
    responses(
        (status = 200, description = "OK", body = BackgroundTaskOut),
        (status = 404, description = "No such task", body = HttpErrorOut),
        ReadErrors
    )
)]
pub async fn get(st: Data, _who: Caller, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let id = req.match_info().get("task_id").unwrap_or_default();
    let t = st
        .store
        .task(id)
        .await?
        .ok_or(ApiError::NotFound("background task"))?;
    Ok(json(StatusCode::OK, &BackgroundTaskOut::from(t)))
}
