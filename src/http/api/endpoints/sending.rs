//! Sending to an endpoint on request: an example, a recovery, a replay, a synchronous test.

use super::*;
use crate::domain::tasks::{Task, TaskKind};

/// The JSON of an answer.
fn to_value(out: impl serde::Serialize) -> serde_json::Value {
    serde_json::to_value(out).unwrap_or_default()
}

/// Send an example of an event type to this endpoint only.
#[utoipa::path(
    post,
    path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/send-example",
    operation_id = "v1.endpoint.send-example",
    tag = "Endpoint",
    params(AppPath, EndpointPath),
    request_body = EventExampleIn,
    responses((status = 200, description = "The message sent", body = MessageOut), WriteErrors)
)]
pub async fn send_example(
    st: Data,
    who: Caller,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let (app, ep) = find_endpoint(&st, &req).await?;
    let input: EventExampleIn = body(&st, payload).await?;
    let et = st
        .store
        .event_type(&input.event_type)
        .await?
        .ok_or_else(|| {
            ApiError::invalid(
                &["body", "eventType"],
                format!("unknown event type `{}`", input.event_type),
            )
        })?;
    let spec = IngestSpec {
        app_key: app.id.into(),
        create_app: None,
        event_type: et.name.clone(),
        event_id: None,
        payload: service::example_payload(&et, input.example_index.unwrap_or(0)),
        channels: None,
        tags: None,
        deliver_at: None,
        retention_ms: None,
        only_endpoint: Some(ep.id.into()),
        status: StatusCode::OK,
        with_content: true,
    };
    ingest(&st, &req, &who, spec).await
}

fn since_until(input: &RecoverIn) -> Result<(i64, Option<i64>), ApiError> {
    let since = parse_datetime(&input.since)
        .ok_or_else(|| ApiError::invalid(&["body", "since"], "not a date-time"))?;
    let until = input
        .until
        .as_deref()
        .map(|u| {
            parse_datetime(u)
                .ok_or_else(|| ApiError::invalid(&["body", "until"], "not a date-time"))
        })
        .transpose()?;
    crate::service::input::check_window(since, until)?;
    Ok((since, until))
}

/// A recovery or replay of missing messages, done when asked (it can be looked up with
/// `GET /background-task/{id}` afterwards).
fn task_out(t: Task) -> RecoverOut {
    RecoverOut {
        task: match t.kind {
            TaskKind::Recover => BackgroundTaskType::Recover,
            TaskKind::Replay | TaskKind::ReplayMissing => BackgroundTaskType::Replay,
        },
        id: t.id,
        status: BackgroundTaskStatus::Finished,
        updated_at: format_ms(t.updated_at),
        count: usize::try_from(t.queued).unwrap_or(0),
    }
}

/// Give the endpoint's failed deliveries in a time window a fresh retry schedule.
#[utoipa::path(
    post,
    path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/recover",
    operation_id = "v1.endpoint.recover",
    tag = "Endpoint",
    params(AppPath, EndpointPath),
    request_body = RecoverIn,
    responses(
        (status = 202, description = "Accepted", body = RecoverOut),
        (status = 409, description = "The endpoint is disabled", body = HttpErrorOut),
        WriteErrors
    )
)]
pub async fn recover(
    st: Data,
    who: Caller,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let (_, ep) = find_endpoint(&st, &req).await?;
    let input: RecoverIn = body(&st, payload).await?;
    let (since, until) = since_until(&input)?;
    super::super::idempotent(&st, &req, &who, || async {
        let t = service::recover(&st.store, &st.dispatcher, &ep, since, until).await?;
        Ok((StatusCode::ACCEPTED, to_value(task_out(t))))
    })
    .await
}

/// Send the messages of a time window that the endpoint never got (it was disabled, or did
/// not exist yet).
#[utoipa::path(
    post,
    path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/replay-missing",
    operation_id = "v1.endpoint.replay-missing",
    tag = "Endpoint",
    params(AppPath, EndpointPath),
    request_body = RecoverIn,
    responses(
        (status = 202, description = "Accepted", body = RecoverOut),
        (status = 409, description = "The endpoint is disabled", body = HttpErrorOut),
        WriteErrors
    )
)]
pub async fn replay_missing(
    st: Data,
    who: Caller,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let (_, ep) = find_endpoint(&st, &req).await?;
    let input: RecoverIn = body(&st, payload).await?;
    let (since, until) = since_until(&input)?;
    super::super::idempotent(&st, &req, &who, || async {
        let t = service::replay_missing(&st.store, &st.dispatcher, &ep, since, until).await?;
        Ok((StatusCode::ACCEPTED, to_value(task_out(t))))
    })
    .await
}

/// hookbox: a synchronous test send. Body `{"eventType": …, "payload"?: {…}}`; without a
/// payload the event type's example is sent. Answers with the endpoint's response.
#[utoipa::path(
    post,
    path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/test",
    operation_id = "v1.endpoint.test",
    tag = "Endpoint",
    params(AppPath, EndpointPath),
    request_body = EndpointTestIn,
    responses((status = 200, description = "OK", body = EndpointTestOut), WriteErrors)
)]
pub async fn test(
    st: Data,
    who: Caller,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let (app, ep) = find_endpoint(&st, &req).await?;
    let input: EndpointTestIn = body(&st, payload).await?;
    let et = st
        .store
        .event_type(&input.event_type)
        .await?
        .filter(|t| !t.archived)
        .ok_or_else(|| {
            ApiError::invalid(
                &["body", "eventType"],
                format!("unknown event type `{}`", input.event_type),
            )
        })?;
    let body_text = match input.payload {
        Some(p) if p.get().trim_start().starts_with('{') => p.get().to_owned(),
        Some(_) => {
            return Err(ApiError::invalid(
                &["body", "payload"],
                "payload must be a JSON object",
            ))
        }
        None => service::example_payload(&et, 0),
    };
    super::super::idempotent(&st, &req, &who, || async {
        let out = service::send_test(
            &st.store,
            &st.dispatcher,
            st.cfg.retention.payload,
            &app,
            &ep,
            &et.name,
            body_text.into(),
        )
        .await?
        .ok_or(ApiError::NotFound("endpoint"))?
        .record;
        let out = EndpointTestOut {
            msg_id: out.msg_id,
            attempt_id: out.attempt_id,
            url: out.url,
            success: out.succeeded,
            response_status_code: out.status_code,
            response: out.response,
            response_duration_ms: out.duration_ms,
            error: out.error,
        };
        Ok((StatusCode::OK, to_value(out)))
    })
    .await
}
