//! An endpoint's signing secret and custom headers.

use super::*;
use crate::domain::signing::SignatureVersion;

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
            key: service::shown_secret(&current.secret),
        },
    ))
}

/// Make a new secret current; the old one keeps signing for the grace period. The body is
/// optional. While 5 keys it replaced still sign, a rotation with a grace period is refused
/// with 400 `limit_reached`.
#[utoipa::path(
    post,
    path = "/api/v1/app/{app_id}/endpoint/{endpoint_id}/secret/rotate",
    operation_id = "v1.endpoint.rotate-secret",
    tag = "Endpoint",
    params(AppPath, EndpointPath),
    request_body = Option<EndpointSecretRotateIn>,
    responses(
        (status = 200, description = "The new secret (for a v1a endpoint, its public key)", body = EndpointSecretOut),
        (status = 409, description = "The key is not of the endpoint's signature version", body = HttpErrorOut),
        WriteErrors
    )
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
    let key = match input.key.as_deref() {
        None => SigningKey::generate_for(ep.signature_version),
        Some(k) => parse_secret(Some(k), "key")?,
    };
    if key.version() != ep.signature_version {
        // The key is valid, but not for this endpoint, whose signature version was fixed
        // when it was created.
        return Err(ApiError::Conflict {
            code: "signature_version_mismatch",
            detail: format!(
                "this endpoint signs with {}: its keys are {}",
                ep.signature_version.name(),
                match ep.signature_version {
                    SignatureVersion::V1 => "whsec_ secrets",
                    SignatureVersion::V1a => "whsk_ secret keys",
                }
            ),
        });
    }
    let grace = input
        .grace_period_seconds
        .map_or(st.cfg.api.rotation_grace, std::time::Duration::from_secs);
    if grace > service::MAX_ROTATION_GRACE {
        return Err(ApiError::invalid(
            &["body", "gracePeriodSeconds"],
            "at most 7 days",
        ));
    }
    let res = crate::http::api::idempotent_secret(&st, &req, &who, || async {
        let secret = key.to_secret_string();
        service::rotate_secret(&st.store, &st.dispatcher, &ep.id, secret, grace).await?;
        let shown = key.to_shown_string();
        let out = serde_json::to_value(EndpointSecretOut { key: shown }).unwrap_or_default();
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
    let (_, ep) = find_endpoint(&st, &req).await?;
    let input: EndpointHeadersIn = body(&st, payload).await?;
    check_headers(&input.headers)?;
    edit(&st, &ep, |ep| {
        check_headers_beside(ep.signature_header.as_ref(), &input.headers)?;
        ep.headers = input.headers.clone();
        Ok(())
    })
    .await?;
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
    let (_, ep) = find_endpoint(&st, &req).await?;
    let input: EndpointHeadersPatchIn = body(&st, payload).await?;
    let set: BTreeMap<String, String> = input
        .headers
        .iter()
        .filter_map(|(k, v)| Some((k.clone(), v.clone()?)))
        .collect();
    check_headers(&set)?;
    // Merged into the headers as stored when the change is made: concurrent merges all land.
    edit(&st, &ep, |ep| {
        for (k, v) in &input.headers {
            match v {
                Some(v) => ep.headers.insert(k.clone(), v.clone()),
                None => ep.headers.remove(k),
            };
        }
        for k in &input.delete_headers {
            ep.headers.remove(k);
        }
        check_headers_size(&ep.headers)?;
        check_headers_beside(ep.signature_header.as_ref(), &ep.headers)?;
        Ok(())
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}
