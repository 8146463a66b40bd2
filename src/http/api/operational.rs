//! Operational webhook endpoints: `/api/v1/operational-webhook/endpoint…` is answered by the
//! endpoint routes of hookbox's own application (see `http::trim_trailing_slash`). These
//! functions only carry the routes' OpenAPI description.

#![allow(dead_code)]

use super::models::{
    EndpointHeadersIn, EndpointHeadersOut, EndpointHeadersPatchIn, EndpointIn, EndpointOut,
    EndpointPatch, EndpointSecretOut, EndpointSecretRotateIn, ListResponse_EndpointOut_,
};
use super::openapi::{EndpointPath, ListParams, ReadErrors, WriteErrors};
use crate::http::error::HttpErrorOut;

/// Operational webhook endpoints, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/operational-webhook/endpoint",
    operation_id = "v1.operational-webhook.endpoint.list",
    tag = "Operational Webhook Endpoint",
    params(ListParams),
    responses((status = 200, description = "OK", body = ListResponse_EndpointOut_), ReadErrors)
)]
pub fn list() {}

/// Create an operational webhook endpoint.
#[utoipa::path(
    post,
    path = "/api/v1/operational-webhook/endpoint",
    operation_id = "v1.operational-webhook.endpoint.create",
    tag = "Operational Webhook Endpoint",
    request_body = EndpointIn,
    responses(
        (status = 201, description = "Created", body = EndpointOut),
        (status = 409, description = "The uid is taken", body = HttpErrorOut),
        WriteErrors
    )
)]
pub fn create() {}

/// Get an operational webhook endpoint.
#[utoipa::path(
    get,
    path = "/api/v1/operational-webhook/endpoint/{endpoint_id}",
    operation_id = "v1.operational-webhook.endpoint.get",
    tag = "Operational Webhook Endpoint",
    params(EndpointPath),
    responses((status = 200, description = "OK", body = EndpointOut), ReadErrors)
)]
pub fn get() {}

/// Replace an operational webhook endpoint, or create it with the path's uid.
#[utoipa::path(
    put,
    path = "/api/v1/operational-webhook/endpoint/{endpoint_id}",
    operation_id = "v1.operational-webhook.endpoint.upsert",
    tag = "Operational Webhook Endpoint",
    params(EndpointPath),
    request_body = EndpointIn,
    responses(
        (status = 200, description = "Updated", body = EndpointOut),
        (status = 201, description = "Created", body = EndpointOut),
        (status = 409, description = "The uid is taken", body = HttpErrorOut),
        WriteErrors
    )
)]
pub fn put() {}

/// Change some fields of an operational webhook endpoint.
#[utoipa::path(
    patch,
    path = "/api/v1/operational-webhook/endpoint/{endpoint_id}",
    operation_id = "v1.operational-webhook.endpoint.patch",
    tag = "Operational Webhook Endpoint",
    params(EndpointPath),
    request_body = EndpointPatch,
    responses(
        (status = 200, description = "OK", body = EndpointOut),
        (status = 409, description = "The uid is taken", body = HttpErrorOut),
        WriteErrors
    )
)]
pub fn patch() {}

/// Delete an operational webhook endpoint.
#[utoipa::path(
    delete,
    path = "/api/v1/operational-webhook/endpoint/{endpoint_id}",
    operation_id = "v1.operational-webhook.endpoint.delete",
    tag = "Operational Webhook Endpoint",
    params(EndpointPath),
    responses((status = 204, description = "Deleted"), ReadErrors)
)]
pub fn delete() {}

/// Get an operational webhook endpoint's signing secret.
#[utoipa::path(
    get,
    path = "/api/v1/operational-webhook/endpoint/{endpoint_id}/secret",
    operation_id = "v1.operational-webhook.endpoint.get-secret",
    tag = "Operational Webhook Endpoint",
    params(EndpointPath),
    responses((status = 200, description = "OK", body = EndpointSecretOut), ReadErrors)
)]
pub fn secret() {}

/// Rotate an operational webhook endpoint's signing secret. The body is optional.
#[utoipa::path(
    post,
    path = "/api/v1/operational-webhook/endpoint/{endpoint_id}/secret/rotate",
    operation_id = "v1.operational-webhook.endpoint.rotate-secret",
    tag = "Operational Webhook Endpoint",
    params(EndpointPath),
    request_body = Option<EndpointSecretRotateIn>,
    responses((status = 200, description = "The new secret", body = EndpointSecretOut), WriteErrors)
)]
pub fn rotate_secret() {}

/// Get the headers sent with every operational event.
#[utoipa::path(
    get,
    path = "/api/v1/operational-webhook/endpoint/{endpoint_id}/headers",
    operation_id = "v1.operational-webhook.endpoint.get-headers",
    tag = "Operational Webhook Endpoint",
    params(EndpointPath),
    responses((status = 200, description = "OK", body = EndpointHeadersOut), ReadErrors)
)]
pub fn headers() {}

/// Replace the headers sent with every operational event.
#[utoipa::path(
    put,
    path = "/api/v1/operational-webhook/endpoint/{endpoint_id}/headers",
    operation_id = "v1.operational-webhook.endpoint.set-headers",
    tag = "Operational Webhook Endpoint",
    params(EndpointPath),
    request_body = EndpointHeadersIn,
    responses((status = 204, description = "Replaced"), WriteErrors)
)]
pub fn put_headers() {}

/// Merge headers sent with every operational event.
#[utoipa::path(
    patch,
    path = "/api/v1/operational-webhook/endpoint/{endpoint_id}/headers",
    operation_id = "v1.operational-webhook.endpoint.patch-headers",
    tag = "Operational Webhook Endpoint",
    params(EndpointPath),
    request_body = EndpointHeadersPatchIn,
    responses((status = 204, description = "Merged"), WriteErrors)
)]
pub fn patch_headers() {}
