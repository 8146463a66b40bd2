use super::apps::nested_app;
use super::models::{
    message_json, message_text, EndpointOut, ListResponse_MessageEndpointOut_,
    ListResponse_MessageOut_, MessageEndpointOut, MessageIn, MessageOut,
};
use super::openapi::{
    AppPath, ListParams, MessageFilterParams, MsgPath, ReadErrors, WithContent, WriteErrors,
};
use super::{body, find_app, idempotency_key, json, query, stored_response};
use crate::db::{Message, MessageFilter};
use crate::domain::ids;
use crate::domain::model::DeliveryStatus;
use crate::domain::time::{format_ms, now_ms, parse_datetime};
use crate::domain::validate::{is_valid_channel, is_valid_event_type, is_valid_uid};
use crate::http::auth::Caller;
use crate::http::error::{ApiError, HttpErrorOut};
use crate::http::extract::list_out;
use crate::http::Data;
use crate::service::messages as service;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use std::sync::Arc;

/// A validated message to store and send.
pub(super) struct IngestSpec {
    /// The application's id or uid: resolved inside the ingest transaction.
    pub app_key: String,
    /// Created when no application has that key (`application` in the body).
    pub create_app: Option<crate::db::App>,
    pub event_type: String,
    pub event_id: Option<String>,
    pub payload: String,
    pub channels: Option<Vec<String>>,
    pub tags: Option<Vec<String>>,
    pub deliver_at: Option<i64>,
    /// How long this message's payload is kept, when not the application's or server's default.
    pub retention_ms: Option<i64>,
    pub only_endpoint: Option<String>,
    pub status: StatusCode,
    pub with_content: bool,
}

/// Commits the message and its deliveries (and the idempotency record) in one transaction,
/// then hands the deliveries to the dispatcher.
pub(super) async fn ingest(
    st: &Data,
    req: &HttpRequest,
    who: &Caller,
    s: IngestSpec,
) -> Result<HttpResponse, ApiError> {
    let now = now_ms();
    let msg = Message {
        id: ids::MsgId::generate(),
        app_id: ids::AppId::from_string(String::new()),
        event_type: s.event_type,
        event_id: s.event_id,
        payload: Some(Arc::from(s.payload)),
        channels: s.channels,
        tags: s.tags,
        created_at: now,
    };
    let response = message_text(&msg, s.with_content);
    let status = s.status.as_u16();
    let app_key = s.app_key.clone();
    let new = service::NewMessage {
        msg,
        app_key: s.app_key,
        create_app: s.create_app,
        only_endpoint: s.only_endpoint,
        deliver_at: s.deliver_at,
        retention_ms: s.retention_ms,
        default_retention_ms: crate::domain::time::duration_ms(st.cfg.retention.payload),
        idempotency: idempotency_key(req, who)?,
        response: (status, response),
    };
    match service::ingest(&st.store, &st.dispatcher, new)
        .await?
        .ok_or(ApiError::NotFound("application"))?
    {
        service::Stored::Created { response } => {
            st.metrics.messages_ingested.inc();
            Ok(stored_response(status, response))
        }
        service::Stored::Replayed { status, body } => Ok(stored_response(
            status,
            as_stored_now(st, &app_key, body).await?,
        )),
    }
}

/// A kept answer to a message, its payload as the message holds it now: a repeat of the POST
/// does not give back a payload deleted since, or purged by retention.
async fn as_stored_now(st: &Data, app_key: &str, kept: String) -> Result<String, ApiError> {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(&kept) else {
        return Ok(kept);
    };
    let Some(id) = v.get("payload").and(v["id"].as_str()) else {
        return Ok(kept);
    };
    let stored = match st.store.app(app_key).await? {
        Some(app) => st.store.message(&app.id, id).await?,
        None => None,
    };
    Ok(match stored {
        // With the payload only when it is still stored (as a listing shows it).
        Some(m) if m.payload.is_some() => return Ok(kept),
        Some(m) => message_text(&m, true),
        // Gone with its application: nothing of its payload is given back either.
        None => {
            let mut v = v;
            v["payload"] = serde_json::json!({});
            v.to_string()
        }
    })
}

fn check_list(field: &str, v: Option<&Vec<String>>, max: usize) -> Result<(), ApiError> {
    if let Some(v) = v {
        if v.len() > max {
            return Err(ApiError::invalid(
                &["body", field],
                format!("at most {max} entries"),
            ));
        }
        if let Some(bad) = v.iter().find(|c| !is_valid_channel(c)) {
            return Err(ApiError::invalid(
                &["body", field],
                format!("invalid entry `{bad}`"),
            ));
        }
    }
    Ok(())
}

/// `POST /api/v1/app/{app_id}/msg` with a valid app id, answered without the router: actix
/// matches a route with path parameters by running a regular expression over the path, which
/// cost about 7 % of an ingest's instructions. Gives the request back when it is anything
/// else; the routes in `super::routes` answer it (an invalid app id there gets its 422).
/// Whatever a route there is given (app data, a guard, middleware) this path needs as well.
pub fn ingest_without_router(
    mut req: actix_web::dev::ServiceRequest,
) -> Result<
    futures_util::future::LocalBoxFuture<
        'static,
        Result<actix_web::dev::ServiceResponse, actix_web::Error>,
    >,
    actix_web::dev::ServiceRequest,
> {
    let app_id = match req
        .path()
        .strip_prefix("/api/v1/app/")
        .and_then(|rest| rest.strip_suffix("/msg"))
    {
        Some(id) if req.method() == actix_web::http::Method::POST && is_valid_uid(id) => {
            id.to_owned()
        }
        _ => return Err(req),
    };
    req.match_info_mut().add_static("app_id", app_id);
    Ok(Box::pin(async move {
        use actix_web::FromRequest;
        let (req, mut payload) = req.into_parts();
        let res = match <(Data, Caller, web::Payload)>::from_request(&req, &mut payload).await {
            Ok((st, who, body)) => create(st, who, req.clone(), body)
                .await
                .unwrap_or_else(HttpResponse::from_error),
            Err(e) => HttpResponse::from_error(e),
        };
        Ok(actix_web::dev::ServiceResponse::new(req, res))
    }))
}

/// Send a message to the application's endpoints (`application` in the body creates the
/// application when there is none).
#[utoipa::path(
    post,
    path = "/api/v1/app/{app_id}/msg",
    operation_id = "v1.message.create",
    tag = "Message",
    params(AppPath, WithContent),
    request_body = MessageIn,
    responses(
        (status = 202, description = "Stored; deliveries are under way", body = MessageOut),
        (status = 409, description = "A message has this `eventId`", body = HttpErrorOut),
        WriteErrors
    )
)]
pub async fn create(
    st: Data,
    who: Caller,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let started = std::time::Instant::now();
    let input: MessageIn = body(&st, payload).await?;
    if !is_valid_event_type(&input.event_type) {
        return Err(ApiError::invalid(
            &["body", "eventType"],
            "eventType must match [a-zA-Z0-9-_.:]{1,256}",
        ));
    }
    if !input.payload.get().trim_start().starts_with('{') {
        return Err(ApiError::invalid(
            &["body", "payload"],
            "payload must be a JSON object",
        ));
    }
    if input.payload.get().len() > st.cfg.api.max_payload_bytes {
        return Err(ApiError::PayloadTooLarge(format!(
            "payload is larger than {} bytes",
            st.cfg.api.max_payload_bytes
        )));
    }
    if let Some(id) = &input.event_id {
        if !is_valid_uid(id) {
            return Err(ApiError::invalid(
                &["body", "eventId"],
                "eventId must match [a-zA-Z0-9-_.]{1,256}",
            ));
        }
    }
    if input
        .transformations_params
        .as_ref()
        .and_then(|t| t.get("rawPayload"))
        .is_some_and(|raw| !raw.is_null())
    {
        return Err(ApiError::invalid(
            &["body", "transformationsParams", "rawPayload"],
            "raw payloads are not supported: send the payload as JSON in `payload`",
        ));
    }
    check_list("channels", input.channels.as_ref(), 10)?;
    check_list("tags", input.tags.as_ref(), 5)?;
    let deliver_at = input
        .deliver_at
        .as_deref()
        .map(|d| {
            parse_datetime(d)
                .ok_or_else(|| ApiError::invalid(&["body", "deliverAt"], "not a date-time"))
        })
        .transpose()?;
    let with_content = super::openapi::WithContent::parse(&query(&req))?.with_content;
    let app_key = super::app_key(&st, &req)?;
    let create_app = match input.application {
        Some(app_in) => Some(nested_app(app_in, &app_key)?),
        None => None,
    };
    let spec = IngestSpec {
        app_key,
        create_app,
        event_type: input.event_type,
        event_id: input.event_id,
        payload: input.payload.get().to_owned(),
        channels: input.channels.filter(|c| !c.is_empty()),
        tags: input.tags.filter(|t| !t.is_empty()),
        deliver_at,
        retention_ms: match (
            input.payload_retention_hours,
            input.payload_retention_period,
        ) {
            (Some(h), _) if h >= 1 => Some(i64::from(h) * 3_600_000),
            (None, Some(d)) if d >= 1 => Some(i64::from(d) * super::models::DAY_MS),
            (None, None) => None,
            _ => {
                return Err(ApiError::invalid(
                    &["body", "payloadRetentionPeriod"],
                    "must be at least 1",
                ))
            }
        },
        only_endpoint: None,
        status: StatusCode::ACCEPTED,
        with_content,
    };
    let answer = ingest(&st, &req, &who, spec).await;
    if answer.is_ok() {
        st.metrics
            .ingest_latency
            .observe_duration(started.elapsed());
    }
    answer
}

/// The `status` query parameter of delivery and attempt listings (0 to 4).
pub(super) fn status_param(
    q: &crate::http::extract::Query,
) -> Result<Option<DeliveryStatus>, ApiError> {
    q.int("status")?
        .map(|s| {
            DeliveryStatus::from_api_code(s).ok_or_else(|| {
                ApiError::invalid(
                    &["query", "status"],
                    "one of 0, 1, 2, 3, 4 (and 5: only those the payload filter left out)",
                )
            })
        })
        .transpose()
}

/// The message filters of a listing's query: channel, tag, event types, before, after.
pub(super) fn filter(q: &crate::http::extract::Query) -> Result<MessageFilter, ApiError> {
    super::openapi::MessageFilterParams::parse(q)
}

/// List the application's messages, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/app/{app_id}/msg",
    operation_id = "v1.message.list",
    tag = "Message",
    params(AppPath, ListParams, MessageFilterParams, WithContent),
    responses((status = 200, description = "OK", body = ListResponse_MessageOut_), ReadErrors)
)]
pub async fn list(st: Data, _who: Caller, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let app = find_app(&st, &req).await?;
    let q = query(&req);
    let page = crate::http::api::openapi::ListParams::parse(&q)?.page(true);
    let with_content = super::openapi::WithContent::parse(&q)?.with_content;
    let f = filter(&q)?;
    let rows = st.store.messages(&app.id, f, &page).await?;
    Ok(json(
        StatusCode::OK,
        &list_out(
            rows,
            &page,
            |m| m.id.to_string(),
            |m| message_json(&m, with_content),
        ),
    ))
}

pub(super) async fn find_message(
    st: &Data,
    req: &HttpRequest,
    app_id: &str,
) -> Result<Message, ApiError> {
    let key = super::openapi::MsgPath::parse(req)?.msg_id;
    st.store
        .message(app_id, &key)
        .await?
        .ok_or(ApiError::NotFound("message"))
}

/// Get a message by id or `eventId`.
#[utoipa::path(
    get,
    path = "/api/v1/app/{app_id}/msg/{msg_id}",
    operation_id = "v1.message.get",
    tag = "Message",
    params(AppPath, MsgPath, WithContent),
    responses((status = 200, description = "OK", body = MessageOut), ReadErrors)
)]
pub async fn get(st: Data, _who: Caller, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let app = find_app(&st, &req).await?;
    let m = find_message(&st, &req, &app.id).await?;
    let with_content = super::openapi::WithContent::parse(&query(&req))?.with_content;
    Ok(json(StatusCode::OK, &message_json(&m, with_content)))
}

/// Delete a message's payload (for example personal data, on request). It cannot be sent
/// again: its deliveries not made yet are canceled. Its attempts and counts stay, and it
/// reads with `payload: {}`.
#[utoipa::path(
    delete,
    path = "/api/v1/app/{app_id}/msg/{msg_id}/content",
    operation_id = "v1.message.expunge-content",
    tag = "Message",
    params(AppPath, MsgPath),
    responses((status = 204, description = "Deleted"), ReadErrors)
)]
pub async fn expunge_content(
    st: Data,
    _who: Caller,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let app = find_app(&st, &req).await?;
    let m = find_message(&st, &req, &app.id).await?;
    crate::service::messages::expunge_content(&st.store, &st.dispatcher, &m.id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// List the endpoints a message went to, with its delivery status at each.
#[utoipa::path(
    get,
    path = "/api/v1/app/{app_id}/msg/{msg_id}/endpoint",
    operation_id = "v1.message-attempt.list-attempted-destinations",
    tag = "Message Attempt",
    params(AppPath, MsgPath, ListParams),
    responses((status = 200, description = "OK", body = ListResponse_MessageEndpointOut_), ReadErrors)
)]
pub async fn endpoints(st: Data, _who: Caller, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let app = find_app(&st, &req).await?;
    let m = find_message(&st, &req, &app.id).await?;
    let page = crate::http::api::openapi::ListParams::parse(&query(&req))?.page(false);
    let rows = st.store.message_endpoints(&m.id, &page).await?;
    Ok(json(
        StatusCode::OK,
        &list_out(
            rows,
            &page,
            |r| r.endpoint.id.to_string(),
            |r| MessageEndpointOut {
                endpoint: EndpointOut::from(r.endpoint),
                status: r.status.api_code(),
                status_text: r.status.api_text(),
                filtered: r.status == DeliveryStatus::Filtered,
                next_attempt: r
                    .next_attempt_at
                    .filter(|_| r.status == DeliveryStatus::Pending)
                    .map(format_ms),
                filter_error: r.filter_error,
            },
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::ingest_without_router;
    use actix_web::test::TestRequest;

    /// Which requests skip the router: the valid ones are checked end to end by every ingest
    /// test; here, that everything else is left to the routes.
    #[test]
    fn only_a_post_to_a_valid_app_ids_msg_skips_the_router() {
        let taken = |req: TestRequest| ingest_without_router(req.to_srv_request()).is_ok();
        assert!(taken(
            TestRequest::post().uri("/api/v1/app/app_2Zx.y-z/msg")
        ));
        assert!(taken(
            TestRequest::post().uri("/api/v1/app/app_1/msg?with_content=false")
        ));
        for uri in [
            "/api/v1/app//msg",
            "/api/v1/app/a%20b/msg",
            "/api/v1/app/a/b/msg",
            "/api/v1/app/a/msg/msg_1",
            "/api/v1/app/a/msgs",
            "/api/v1/application/a/msg",
            "/api/v1/app/a/endpoint",
        ] {
            assert!(!taken(TestRequest::post().uri(uri)), "{uri}");
        }
        let long = format!("/api/v1/app/{}/msg", "a".repeat(257));
        assert!(!taken(TestRequest::post().uri(&long)));
        assert!(!taken(TestRequest::get().uri("/api/v1/app/app_1/msg")));
    }
}
