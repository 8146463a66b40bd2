//! An ordered endpoint's line (hookbox extension): the message it waits on, and the two ways
//! to move it on, as in the console.
//!
//! `GET /api/v1/app/{app_id}/endpoint/{endpoint_id}/line`,
//! `POST …/line/skip` and `POST …/line/retry` with `{"msgId": …}` (an id or an `eventId`).

use super::openapi::{AppPath, EndpointPath, ReadErrors, WriteErrors};
use super::{body, find_endpoint, json};
use crate::db::{Endpoint, Unblock};
use crate::domain::time::format_ms;
use crate::http::auth::Caller;
use crate::http::error::{ApiError, HttpErrorOut};
use crate::http::Data;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Where an endpoint's line stands: for an ordered endpoint, the message first in it (the
/// one sent next, or being sent, or failing and holding the others back) and how many wait.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LineOut {
    pub ordered: bool,
    /// Messages in the line, the first included.
    pub waiting: i64,
    #[schema(required)]
    pub first: Option<LineFirstOut>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LineFirstOut {
    #[schema(example = "msg_1srOrx2ZWZBpBUvZwXKQmoEYga2")]
    pub msg_id: String,
    /// Attempts made so far.
    pub attempts: u32,
    /// It failed and holds the others back until it is delivered, fails for good, or is
    /// skipped.
    pub held: bool,
    /// It is being sent now.
    pub sending: bool,
    /// When its next attempt is due (`null` while it is sent, or waits for a node to take
    /// it).
    #[schema(required, format = DateTime)]
    pub next_attempt: Option<String>,
    /// When its first attempt was made.
    #[schema(required, format = DateTime)]
    pub since: Option<String>,
}

/// The message the action is for: the one first in the line (as last seen), by id or
/// `eventId`.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LineActionIn {
    #[schema(min_length = 1, max_length = 256, pattern = r"^[a-zA-Z0-9\-_.]+$")]
    pub msg_id: String,
}

async fn line_of(st: &Data, ep: &Endpoint) -> Result<LineOut, ApiError> {
    let head = if ep.ordered {
        st.store.lane_head(&ep.id).await?
    } else {
        None
    };
    Ok(LineOut {
        ordered: ep.ordered,
        waiting: head.as_ref().map_or(0, |h| h.waiting),
        first: head.map(|h| LineFirstOut {
            held: h.held(),
            next_attempt: h.next_attempt_at.map(format_ms),
            since: h.since.map(format_ms),
            attempts: h.attempts,
            sending: h.sending,
            msg_id: h.msg_id,
        }),
    })
}

/// Get where an ordered endpoint's line stands (hookbox extension).
#[utoipa::path(
    get,
    path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/line",
    operation_id = "v1.endpoint.line",
    tag = "Endpoint",
    params(AppPath, EndpointPath),
    responses((status = 200, description = "OK", body = LineOut), ReadErrors)
)]
pub async fn get(st: Data, _who: Caller, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let (_, ep) = find_endpoint(&st, &req).await?;
    Ok(json(StatusCode::OK, &line_of(&st, &ep).await?))
}

async fn unblock(
    st: Data,
    req: HttpRequest,
    payload: web::Payload,
    what: Unblock,
) -> Result<HttpResponse, ApiError> {
    let (app, ep) = find_endpoint(&st, &req).await?;
    let input: LineActionIn = body(&st, payload).await?;
    if !crate::domain::validate::is_valid_uid(&input.msg_id) {
        return Err(ApiError::invalid(
            &["body", "msgId"],
            "not a message id or eventId",
        ));
    }
    if !ep.ordered {
        return Err(ApiError::Conflict {
            code: "endpoint_not_ordered",
            detail: "this endpoint is not ordered: its messages wait in no line".into(),
        });
    }
    // As in paths, a message is named by its id or its eventId.
    let msg = st
        .store
        .message(&app.id, &input.msg_id)
        .await?
        .ok_or(ApiError::NotFound("message"))?;
    let id = &msg.id.to_string();
    if !crate::service::endpoints::unblock(&st.store, &st.dispatcher, &ep.id, id, what).await? {
        return Err(ApiError::Conflict {
            code: "not_first_in_line",
            detail: format!(
                "{id} does not hold this endpoint's line (it is not first in it, or is being sent)"
            ),
        });
    }
    Ok(json(StatusCode::OK, &line_of(&st, &ep).await?))
}

/// Skip the message that holds an ordered endpoint's line: it counts as failed (it can be
/// resent later, to the end of the line) and the next one goes (hookbox extension).
#[utoipa::path(
    post,
    path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/line/skip",
    operation_id = "v1.endpoint.line-skip",
    tag = "Endpoint",
    params(AppPath, EndpointPath),
    request_body = LineActionIn,
    responses(
        (status = 200, description = "Skipped: the line as it stands now", body = LineOut),
        (status = 409, description = "The endpoint is not ordered, or the message does not hold its line", body = HttpErrorOut),
        WriteErrors
    )
)]
pub async fn skip(
    st: Data,
    _who: Caller,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    unblock(st, req, payload, Unblock::Skip).await
}

/// Try the message first in an ordered endpoint's line again now (hookbox extension).
#[utoipa::path(
    post,
    path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/line/retry",
    operation_id = "v1.endpoint.line-retry",
    tag = "Endpoint",
    params(AppPath, EndpointPath),
    request_body = LineActionIn,
    responses(
        (status = 200, description = "Due now: the line as it stands", body = LineOut),
        (status = 409, description = "The endpoint is not ordered, or the message does not hold its line", body = HttpErrorOut),
        WriteErrors
    )
)]
pub async fn retry(
    st: Data,
    _who: Caller,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    unblock(st, req, payload, Unblock::RetryNow).await
}
