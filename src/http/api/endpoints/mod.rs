use super::messages::{ingest, IngestSpec};
use super::models::{
    raw_json, with_message_out, BackgroundTaskStatus, BackgroundTaskType, EndpointHeadersIn,
    EndpointHeadersOut, EndpointHeadersPatchIn, EndpointHealthOut, EndpointHealthStatus,
    EndpointIn, EndpointMessageOut, EndpointOut, EndpointPatch, EndpointSecretOut,
    EndpointSecretRotateIn, EndpointStats, EndpointTestIn, EndpointTestOut, EventExampleIn,
    HourlyAttempts, ListResponse_EndpointMessageOut_, ListResponse_EndpointOut_, MessageOut,
    RecoverIn, RecoverOut, SignatureVersionSpec,
};
use super::openapi::{
    AppPath, EndpointPath, ListParams, MessageFilterParams, ReadErrors, WithContent, WriteErrors,
};
use super::{body, find_endpoint, idempotent, json, query};
use crate::db::{App as AppRow, Endpoint, HealthReport};
use crate::domain::signing::{SignatureVersion, SigningKey};
use crate::domain::time::{format_ms, now_ms, parse_datetime};
use crate::http::auth::Caller;
use crate::http::error::{ApiError, HttpErrorOut};
use crate::http::extract::list_out;
use crate::http::Data;
use crate::service::endpoint_input::{
    check_channels, check_description, check_event_types, check_filter, check_headers,
    check_headers_beside, check_headers_size, check_policy, check_signature_header,
    check_signing_styles, check_url, parse_secret, EndpointInput,
};
use crate::service::endpoints as service;
use crate::service::input::{check_uid, metadata_map};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};

mod activity;
mod secrets;
mod sending;

pub use activity::*;
pub use secrets::*;
pub use sending::*;
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
    let page = crate::http::api::openapi::ListParams::parse(&query(&req))?.page(true);
    let rows = st.store.endpoints(&app.id, &page).await?;
    Ok(json(
        StatusCode::OK,
        &list_out(rows, &page, |e| e.id.to_string(), EndpointOut::from),
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
        (status = 409, description = "The uid is taken, or (PUT) the signature version differs from the endpoint's", body = HttpErrorOut),
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

/// Changes the endpoint `ep` as `change` says, on the endpoint as stored (see
/// [`service::edit`]), and answers with it.
async fn edit(
    st: &Data,
    ep: &Endpoint,
    change: impl FnMut(&mut Endpoint) -> Result<(), ApiError>,
) -> Result<Endpoint, ApiError> {
    service::edit(&st.store, &st.dispatcher, &ep.app_id, &ep.id, change)
        .await?
        .ok_or(ApiError::NotFound("endpoint"))
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
        (status = 409, description = "The uid is taken, the signature version differs from the endpoint's, or (nothing existing under the path) the body names another uid", body = HttpErrorOut),
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
    let key = EndpointPath::parse(&req)?.endpoint_id;
    let input: EndpointIn = body(&st, payload).await?;
    let existing = st.store.endpoint(&app.id, &key).await?;
    let Some(ep) = existing else {
        crate::service::input::check_created_uid(&key, input.uid.as_deref())?;
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
    check_description(&input.description)?;
    check_uid(input.uid.as_deref())?;
    check_channels(input.channels.as_ref())?;
    let policy = input.policy();
    check_policy(&policy)?;
    let filter = check_filter(input.filter.clone())?;
    let filter_types = check_event_types(&st.store, &app, input.event_types.clone()).await?;
    if let Some(h) = &input.headers {
        check_headers(h)?;
    }
    let ep = edit(&st, &ep, |ep| {
        let input = input.clone();
        let now = now_ms();
        ep.policy = policy.clone();
        let signature_header = input.signature_header.map(Into::into);
        check_signature_header(
            signature_header.as_ref(),
            input.headers.as_ref().unwrap_or(&ep.headers),
        )?;
        same_signature_version(input.signature_version, ep)?;
        check_signing_styles(
            ep.signature_version,
            input.legacy_signature,
            signature_header.as_ref(),
        )?;
        ep.signature_header = signature_header;
        ep.filter = filter.clone();
        ep.filter_types = filter_types.clone();
        ep.url = input.url;
        ep.description = input.description;
        ep.uid = input.uid.or(ep.uid.take());
        ep.rate_limit = input.throttle_rate.map(i64::from);
        ep.legacy_signature = input.legacy_signature;
        ep.verify_ssl = input.verify_ssl.unwrap_or(true);
        ep.ordered = input.ordered;
        ep.channels = input.channels.filter(|c| !c.is_empty());
        ep.metadata = metadata_map(input.metadata);
        if let Some(h) = input.headers {
            ep.headers = h;
        }
        set_disabled(ep, input.disabled, now);
        Ok(())
    })
    .await?;
    Ok(json(StatusCode::OK, &EndpointOut::from(ep)))
}

/// A PUT or PATCH may name the endpoint's signature version, not change it.
fn same_signature_version(
    asked: Option<SignatureVersionSpec>,
    ep: &Endpoint,
) -> Result<(), ApiError> {
    if asked.is_some_and(|v| SignatureVersion::from(v) != ep.signature_version) {
        return Err(ApiError::Conflict {
            code: "signature_version_mismatch",
            detail: "signatureVersion is fixed when the endpoint is created".into(),
        });
    }
    Ok(())
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
        (status = 409, description = "The uid is taken, or the signature version differs from the endpoint's", body = HttpErrorOut),
        WriteErrors
    )
)]
pub async fn patch(
    st: Data,
    _who: Caller,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let (app, ep) = find_endpoint(&st, &req).await?;
    let p: EndpointPatch = body(&st, payload).await?;
    // What needs only the body (or the database) is checked once, and the signature version
    // (fixed at creation); the rest on the endpoint as stored when the change is made.
    same_signature_version(p.signature_version, &ep)?;
    if let Some(url) = &p.url {
        check_url(url, st.cfg.delivery.https_only)?;
    }
    if let Some(d) = &p.description {
        check_description(d)?;
    }
    if let Some(uid) = &p.uid {
        check_uid(uid.as_deref())?;
    }
    let filter_types = match p.event_types.clone() {
        Some(types) => Some(check_event_types(&st.store, &app, types).await?),
        None => None,
    };
    if let Some(ch) = &p.channels {
        check_channels(ch.as_ref())?;
    }
    let filter = match p.filter.clone() {
        Some(f) => Some(check_filter(f)?),
        None => None,
    };
    let ep = edit(&st, &ep, |ep| {
        let p = p.clone();
        let now = now_ms();
        if let Some(url) = p.url {
            ep.url = url;
        }
        if let Some(d) = p.description {
            ep.description = d;
        }
        if let Some(uid) = p.uid {
            ep.uid = uid;
        }
        if let Some(r) = p.throttle_rate {
            ep.rate_limit = r.map(i64::from);
        }
        if let Some(types) = &filter_types {
            ep.filter_types = types.clone();
        }
        if let Some(ch) = p.channels {
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
        if let Some(o) = p.ordered {
            ep.ordered = o;
        }
        if let Some(s) = p.retry_schedule {
            ep.policy.retry_schedule = s;
        }
        if let Some(t) = p.timeout_seconds {
            ep.policy.timeout_secs = t;
        }
        if let Some(a) = p.auto_disable_after_seconds {
            ep.policy.auto_disable_after_secs = a;
        }
        check_policy(&ep.policy)?;
        if let Some(h) = p.signature_header {
            ep.signature_header = h.map(Into::into);
        }
        check_signature_header(ep.signature_header.as_ref(), &ep.headers)?;
        check_signing_styles(
            ep.signature_version,
            ep.legacy_signature,
            ep.signature_header.as_ref(),
        )?;
        if let Some(f) = &filter {
            ep.filter = f.clone();
        }
        if let Some(d) = p.disabled {
            set_disabled(ep, d, now);
        }
        Ok(())
    })
    .await?;
    Ok(json(StatusCode::OK, &EndpointOut::from(ep)))
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
