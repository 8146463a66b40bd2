use super::messages::{ingest, IngestSpec};
use super::models::{
    api_status, raw_json, status_text, with_message_out, BackgroundTaskStatus, BackgroundTaskType,
    EndpointHeadersIn, EndpointHeadersOut, EndpointHeadersPatchIn, EndpointHealthOut,
    EndpointHealthStatus, EndpointIn, EndpointMessageOut, EndpointOut, EndpointPatch,
    EndpointSecretOut, EndpointSecretRotateIn, EndpointStats, EndpointTestIn, EndpointTestOut,
    EventExampleIn, HourlyAttempts, ListResponse_EndpointMessageOut_, ListResponse_EndpointOut_,
    MessageOut, RecoverIn, RecoverOut,
};
use super::openapi::{
    AppPath, EndpointPath, ListParams, MessageFilterParams, ReadErrors, WithContent, WriteErrors,
};
use super::{body, find_endpoint, idempotent, json, query};
use crate::db::{App as AppRow, Endpoint, HealthReport};
use crate::domain::ids;
use crate::domain::signing::SigningKey;
use crate::domain::time::{format_ms, now_ms, parse_datetime};
use crate::http::auth::Caller;
use crate::http::error::{ApiError, HttpErrorOut};
use crate::http::extract::list_out;
use crate::http::Data;
use crate::service::endpoint_input::{
    check_channels, check_event_types, check_headers, check_headers_size, check_url, parse_secret,
    EndpointInput,
};
use crate::service::endpoints as service;
use crate::service::input::{check_uid, metadata_map};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use std::collections::BTreeMap;

fn out(e: Endpoint) -> serde_json::Value {
    serde_json::to_value(EndpointOut::from(e)).unwrap_or_default()
}

/// List an application's endpoints, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/app/{app_id}/endpoint",
    operation_id = "v1.endpoint.list",
    tag = "Endpoint",
    params(AppPath, ListParams),
    responses((status = 200, description = "OK", body = ListResponse_EndpointOut_), ReadErrors)
)]
pub async fn list(st: Data, _who: Caller, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let app = super::find_app(&st, &req).await?;
    let page = query(&req).page(true)?;
    let rows = st.store.endpoints(&app.id, &page).await?;
    Ok(json(
        StatusCode::OK,
        &list_out(rows, &page, |e| e.id.clone(), EndpointOut::from),
    ))
}

pub(super) async fn validated_new(
    st: &Data,
    app: &AppRow,
    input: EndpointIn,
) -> Result<(Endpoint, SigningKey), ApiError> {
    Ok(EndpointInput::from(input)
        .parse(&st.store, app, st.cfg.delivery.https_only)
        .await?)
}

/// Create an endpoint.
#[utoipa::path(
    post,
    path = "/api/v1/app/{app_id}/endpoint",
    operation_id = "v1.endpoint.create",
    tag = "Endpoint",
    params(AppPath),
    request_body = EndpointIn,
    responses(
        (status = 201, description = "Created", body = EndpointOut),
        (status = 409, description = "The uid is taken", body = HttpErrorOut),
        WriteErrors
    )
)]
pub async fn create(
    st: Data,
    who: Caller,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let app = super::find_app(&st, &req).await?;
    let input: EndpointIn = body(&st, payload).await?;
    idempotent(&st, &req, &who, || async {
        let (ep, key) = validated_new(&st, &app, input).await?;
        service::create(&st.store, &st.dispatcher, ep.clone(), key).await?;
        Ok((StatusCode::CREATED, out(ep)))
    })
    .await
}

/// Get an endpoint.
#[utoipa::path(
    get,
    path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}",
    operation_id = "v1.endpoint.get",
    tag = "Endpoint",
    params(AppPath, EndpointPath),
    responses((status = 200, description = "OK", body = EndpointOut), ReadErrors)
)]
pub async fn get(st: Data, _who: Caller, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let (_, ep) = find_endpoint(&st, &req).await?;
    Ok(json(StatusCode::OK, &EndpointOut::from(ep)))
}

async fn save(st: &Data, ep: Endpoint) -> Result<HttpResponse, ApiError> {
    service::update(&st.store, &st.dispatcher, ep.clone()).await?;
    Ok(json(StatusCode::OK, &EndpointOut::from(ep)))
}

fn set_disabled(ep: &mut Endpoint, disabled: bool, now: i64) {
    if disabled != ep.disabled {
        ep.disabled = disabled;
        ep.disabled_reason = disabled.then(|| service::API_DISABLED.to_owned());
        ep.disabled_at = disabled.then_some(now);
    }
}

/// Replace an endpoint, or create it with the path's uid when there is none.
#[utoipa::path(
    put,
    path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}",
    operation_id = "v1.endpoint.update",
    tag = "Endpoint",
    params(AppPath, EndpointPath),
    request_body = EndpointIn,
    responses(
        (status = 200, description = "Updated", body = EndpointOut),
        (status = 201, description = "Created", body = EndpointOut),
        (status = 409, description = "The uid is taken", body = HttpErrorOut),
        WriteErrors
    )
)]
pub async fn put(
    st: Data,
    _who: Caller,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let app = super::find_app(&st, &req).await?;
    let key = super::path_key(&req, "endpoint_id")?.to_owned();
    let input: EndpointIn = body(&st, payload).await?;
    let existing = st.store.endpoint(&app.id, &key).await?;
    let Some(mut ep) = existing else {
        let (ep, secret) = validated_new(
            &st,
            &app,
            EndpointIn {
                uid: input.uid.clone().or(Some(key)),
                ..input
            },
        )
        .await?;
        service::create(&st.store, &st.dispatcher, ep.clone(), secret).await?;
        return Ok(json(StatusCode::CREATED, &EndpointOut::from(ep)));
    };
    check_url(&input.url, st.cfg.delivery.https_only)?;
    check_uid(input.uid.as_deref())?;
    check_channels(input.channels.as_ref())?;
    let now = now_ms();
    ep.filter_types = check_event_types(&st.store, &app, input.event_types).await?;
    ep.url = input.url;
    ep.description = input.description;
    ep.uid = input.uid.or(ep.uid);
    ep.rate_limit = input.throttle_rate.map(i64::from);
    ep.legacy_signature = input.legacy_signature;
    ep.verify_ssl = input.verify_ssl.unwrap_or(true);
    ep.channels = input.channels.filter(|c| !c.is_empty());
    ep.metadata = metadata_map(input.metadata);
    if let Some(h) = input.headers {
        check_headers(&h)?;
        ep.headers = h;
    }
    set_disabled(&mut ep, input.disabled, now);
    ep.updated_at = now;
    save(&st, ep).await
}

/// Change some fields of an endpoint.
#[utoipa::path(
    patch,
    path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}",
    operation_id = "v1.endpoint.patch",
    tag = "Endpoint",
    params(AppPath, EndpointPath),
    request_body = EndpointPatch,
    responses(
        (status = 200, description = "OK", body = EndpointOut),
        (status = 409, description = "The uid is taken", body = HttpErrorOut),
        WriteErrors
    )
)]
pub async fn patch(
    st: Data,
    _who: Caller,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let (app, mut ep) = find_endpoint(&st, &req).await?;
    let p: EndpointPatch = body(&st, payload).await?;
    let now = now_ms();
    if let Some(url) = p.url {
        check_url(&url, st.cfg.delivery.https_only)?;
        ep.url = url;
    }
    if let Some(d) = p.description {
        ep.description = d;
    }
    if let Some(uid) = p.uid {
        check_uid(uid.as_deref())?;
        ep.uid = uid;
    }
    if let Some(r) = p.throttle_rate {
        ep.rate_limit = r.map(i64::from);
    }
    if let Some(types) = p.event_types {
        ep.filter_types = check_event_types(&st.store, &app, types).await?;
    }
    if let Some(ch) = p.channels {
        check_channels(ch.as_ref())?;
        ep.channels = ch.filter(|c| !c.is_empty());
    }
    if let Some(m) = p.metadata {
        ep.metadata = metadata_map(Some(m));
    }
    if let Some(l) = p.legacy_signature {
        ep.legacy_signature = l;
    }
    if let Some(v) = p.verify_ssl {
        ep.verify_ssl = v;
    }
    if let Some(d) = p.disabled {
        set_disabled(&mut ep, d, now);
    }
    ep.updated_at = now;
    save(&st, ep).await
}

/// Delete an endpoint with its deliveries and attempts.
#[utoipa::path(
    delete,
    path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}",
    operation_id = "v1.endpoint.delete",
    tag = "Endpoint",
    params(AppPath, EndpointPath),
    responses((status = 204, description = "Deleted"), ReadErrors)
)]
pub async fn delete(st: Data, _who: Caller, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let (app, ep) = find_endpoint(&st, &req).await?;
    service::delete(&st.store, &st.dispatcher, app, &ep).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Get the endpoint's current signing secret.
#[utoipa::path(
    get,
    path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/secret",
    operation_id = "v1.endpoint.get-secret",
    tag = "Endpoint",
    params(AppPath, EndpointPath),
    responses((status = 200, description = "OK", body = EndpointSecretOut), ReadErrors)
)]
pub async fn secret(st: Data, _who: Caller, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let (_, ep) = find_endpoint(&st, &req).await?;
    let secrets = st.store.endpoint_secrets(&ep.id, now_ms()).await?;
    let current = secrets
        .into_iter()
        .find(|s| s.expires_at.is_none())
        .ok_or(ApiError::NotFound("secret"))?;
    Ok(json(
        StatusCode::OK,
        &EndpointSecretOut {
            key: current.secret,
        },
    ))
}

/// Make a new secret current; the old one keeps signing for the grace period. The body is
/// optional.
#[utoipa::path(
    post,
    path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/secret/rotate",
    operation_id = "v1.endpoint.rotate-secret",
    tag = "Endpoint",
    params(AppPath, EndpointPath),
    request_body = Option<EndpointSecretRotateIn>,
    responses((status = 200, description = "The new secret", body = EndpointSecretOut), WriteErrors)
)]
pub async fn rotate_secret(
    st: Data,
    who: Caller,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let (_, ep) = find_endpoint(&st, &req).await?;
    let bytes = crate::http::extract::read_body(payload, 64 * 1024).await?;
    // The body is optional: none, or `null`, asks for a generated key and the default grace.
    let empty = bytes.iter().all(u8::is_ascii_whitespace) || bytes.trim_ascii() == b"null";
    let input: EndpointSecretRotateIn = if empty {
        EndpointSecretRotateIn::default()
    } else {
        crate::http::extract::parse_json(&bytes)?
    };
    let key = parse_secret(input.key.as_deref(), "key")?;
    let grace = input
        .grace_period_seconds
        .map_or(st.cfg.api.rotation_grace, std::time::Duration::from_secs);
    if grace > service::MAX_ROTATION_GRACE {
        return Err(ApiError::invalid(
            &["body", "gracePeriodSeconds"],
            "at most 7 days",
        ));
    }
    let res = super::idempotent_secret(&st, &req, &who, || async {
        let secret = key.to_secret_string();
        service::rotate_secret(&st.store, &st.dispatcher, &ep.id, secret.clone(), grace).await?;
        let out = serde_json::to_value(EndpointSecretOut { key: secret }).unwrap_or_default();
        Ok((StatusCode::OK, out))
    })
    .await;
    res
}

/// Get the headers sent with every delivery.
#[utoipa::path(
    get,
    path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/headers",
    operation_id = "v1.endpoint.get-headers",
    tag = "Endpoint",
    params(AppPath, EndpointPath),
    responses((status = 200, description = "OK", body = EndpointHeadersOut), ReadErrors)
)]
pub async fn headers(st: Data, _who: Caller, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let (_, ep) = find_endpoint(&st, &req).await?;
    // As Svix: the values of sensitive headers are not returned, only their names.
    let (sensitive, headers): (BTreeMap<_, _>, BTreeMap<_, _>) = ep
        .headers
        .into_iter()
        .partition(|(k, _)| crate::domain::headers::is_sensitive(k));
    Ok(json(
        StatusCode::OK,
        &EndpointHeadersOut {
            headers,
            sensitive: sensitive.into_keys().collect(),
        },
    ))
}

/// Replace the headers sent with every delivery.
#[utoipa::path(
    put,
    path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/headers",
    operation_id = "v1.endpoint.update-headers",
    tag = "Endpoint",
    params(AppPath, EndpointPath),
    request_body = EndpointHeadersIn,
    responses((status = 204, description = "Replaced"), WriteErrors)
)]
pub async fn put_headers(
    st: Data,
    _who: Caller,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let (_, mut ep) = find_endpoint(&st, &req).await?;
    let input: EndpointHeadersIn = body(&st, payload).await?;
    check_headers(&input.headers)?;
    ep.headers = input.headers;
    ep.updated_at = now_ms();
    save(&st, ep).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Merge headers: a `null` value or a name in `deleteHeaders` removes one.
#[utoipa::path(
    patch,
    path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/headers",
    operation_id = "v1.endpoint.patch-headers",
    tag = "Endpoint",
    params(AppPath, EndpointPath),
    request_body = EndpointHeadersPatchIn,
    responses((status = 204, description = "Merged"), WriteErrors)
)]
pub async fn patch_headers(
    st: Data,
    _who: Caller,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let (_, mut ep) = find_endpoint(&st, &req).await?;
    let input: EndpointHeadersPatchIn = body(&st, payload).await?;
    let set: BTreeMap<String, String> = input
        .headers
        .iter()
        .filter_map(|(k, v)| Some((k.clone(), v.clone()?)))
        .collect();
    check_headers(&set)?;
    for (k, v) in input.headers {
        match v {
            Some(v) => ep.headers.insert(k, v),
            None => ep.headers.remove(&k),
        };
    }
    for k in input.delete_headers {
        ep.headers.remove(&k);
    }
    check_headers_size(&ep.headers)?;
    ep.updated_at = now_ms();
    save(&st, ep).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // documents query parameters
struct StatsRange {
    /// Count deliveries of messages created since this time.
    #[param(format = DateTime, pattern = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}")]
    since: Option<String>,
    /// Count deliveries of messages created until this time.
    #[param(format = DateTime, pattern = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}")]
    until: Option<String>,
}

/// Count the endpoint's deliveries by status.
#[utoipa::path(
    get,
    path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/stats",
    operation_id = "v1.endpoint.get-stats",
    tag = "Endpoint",
    params(AppPath, EndpointPath, StatsRange),
    responses((status = 200, description = "OK", body = EndpointStats), ReadErrors)
)]
pub async fn stats(st: Data, _who: Caller, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let (_, ep) = find_endpoint(&st, &req).await?;
    let q = query(&req);
    let (since, until) = (q.datetime("since")?, q.datetime("until")?);
    let s = st.store.delivery_stats(&ep.id, since, until).await?;
    Ok(json(
        StatusCode::OK,
        &EndpointStats {
            success: s.success,
            pending: s.pending,
            sending: s.sending,
            fail: s.fail,
            canceled: s.canceled,
        },
    ))
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
        app_key: app.id,
        create_app: None,
        event_type: et.name.clone(),
        event_id: None,
        payload: service::example_payload(&et, input.example_index.unwrap_or(0)),
        channels: None,
        tags: None,
        deliver_at: None,
        retention_ms: None,
        only_endpoint: Some(ep.id),
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
    Ok((since, until))
}

fn task_out(task: BackgroundTaskType, count: usize) -> RecoverOut {
    RecoverOut {
        id: ids::new_id(ids::TASK),
        status: BackgroundTaskStatus::Finished,
        task,
        updated_at: format_ms(now_ms()),
        count,
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
    responses((status = 202, description = "Accepted", body = RecoverOut), WriteErrors)
)]
pub async fn recover(
    st: Data,
    _who: Caller,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let (_, ep) = find_endpoint(&st, &req).await?;
    let input: RecoverIn = body(&st, payload).await?;
    let (since, until) = since_until(&input)?;
    let n = service::recover(&st.store, &st.dispatcher, &ep.id, since, until).await?;
    let out = task_out(BackgroundTaskType::Recover, n);
    Ok(json(StatusCode::ACCEPTED, &out))
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
    responses((status = 202, description = "Accepted", body = RecoverOut), WriteErrors)
)]
pub async fn replay_missing(
    st: Data,
    _who: Caller,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let (_, ep) = find_endpoint(&st, &req).await?;
    let input: RecoverIn = body(&st, payload).await?;
    let (since, until) = since_until(&input)?;
    let n = service::replay_missing(&st.store, &st.dispatcher, &ep, since, until).await?;
    let out = task_out(BackgroundTaskType::Replay, n);
    Ok(json(StatusCode::ACCEPTED, &out))
}

#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // documents a query parameter
struct StatusFilter {
    /// Only messages with this delivery status.
    #[param(value_type = Option<super::models::MessageStatus>)]
    status: Option<i64>,
}

/// List the messages sent to this endpoint, with their delivery status.
#[utoipa::path(
    get,
    path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/msg",
    operation_id = "v1.message-attempt.list-attempted-messages",
    tag = "Endpoint",
    params(AppPath, EndpointPath, ListParams, StatusFilter, MessageFilterParams, WithContent),
    responses((status = 200, description = "OK", body = ListResponse_EndpointMessageOut_), ReadErrors)
)]
pub async fn messages(st: Data, _who: Caller, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let (_, ep) = find_endpoint(&st, &req).await?;
    let q = query(&req);
    let page = q.page(true)?;
    let status = super::messages::status_param(&q)?;
    let with_content = q.bool("with_content", true)?;
    let filter = super::messages::filter(&q)?;
    let rows = st
        .store
        .endpoint_messages(&ep.id, status, filter, &page)
        .await?;
    Ok(json(
        StatusCode::OK,
        &list_out(
            rows,
            &page,
            |r| r.msg.id.clone(),
            |r| {
                let status = api_status(r.status);
                let next_attempt = r
                    .next_attempt_at
                    .filter(|_| r.status == crate::db::status::PENDING)
                    .map(format_ms);
                with_message_out(&r.msg, with_content, |message| {
                    raw_json(&EndpointMessageOut {
                        message,
                        status,
                        status_text: status_text(status),
                        next_attempt,
                    })
                })
            },
        ),
    ))
}

#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // documents a query parameter
struct HealthSince {
    /// The start of the window (default: 24 hours ago).
    #[param(format = DateTime, pattern = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}")]
    since: Option<String>,
}

/// hookbox: the endpoint's health over a window (default the last 24 h): status, why it is
/// disabled, since when it has been failing, success rate and attempts per hour.
#[utoipa::path(
    get,
    path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/health",
    operation_id = "v1.endpoint.health",
    tag = "Endpoint",
    params(AppPath, EndpointPath, HealthSince),
    responses((status = 200, description = "OK", body = EndpointHealthOut), ReadErrors)
)]
pub async fn health(st: Data, _who: Caller, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let (_, ep) = find_endpoint(&st, &req).await?;
    let q = query(&req);
    let since = q
        .datetime("since")?
        .unwrap_or_else(|| now_ms() - 24 * 3600 * 1000);
    let HealthReport {
        health,
        activity,
        failing_since,
    } = st.store.endpoint_health_report(&ep.id, since).await?;
    let status = match service::status(&ep, &health) {
        service::Status::Disabled => EndpointHealthStatus::Disabled,
        service::Status::Failing => EndpointHealthStatus::Failing,
        service::Status::Healthy => EndpointHealthStatus::Healthy,
        service::Status::Unknown => EndpointHealthStatus::Unknown,
    };
    let hourly = activity
        .hourly
        .iter()
        .map(|&(h, success, fail)| HourlyAttempts {
            hour: format_ms(h),
            success,
            fail,
        })
        .collect();
    Ok(json(
        StatusCode::OK,
        &EndpointHealthOut {
            status,
            disabled_reason: ep.disabled_reason,
            disabled_at: ep.disabled_at.map(format_ms),
            failing_since: failing_since.map(format_ms),
            since: format_ms(since),
            success: health.succeeded,
            fail: health.failed,
            success_rate: health.success_rate(),
            hourly,
        },
    ))
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
    _who: Caller,
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
    Ok(json(
        StatusCode::OK,
        &EndpointTestOut {
            msg_id: out.msg_id,
            attempt_id: out.attempt_id,
            url: out.url,
            success: out.succeeded,
            response_status_code: out.status_code,
            response: out.response,
            response_duration_ms: out.duration_ms,
            error: out.error,
        },
    ))
}
