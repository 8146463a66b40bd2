//! `POST /api/v1/auth/app-portal-access/{app_id}`: a link to the customer portal of one
//! application (Svix's `app_portal_access`), answered with `{url, token}`.

use super::models::{whole, ApplicationIn};
use super::openapi::{AppPath, WriteErrors};
use super::{app_key, body};
use crate::http::auth::Caller;
use crate::http::error::ApiError;
use crate::http::forwarded::portal_link_url;
use crate::http::Data;
use crate::service::portal::{create_link, MAX_TTL as PORTAL_MAX_TTL};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Debug, Deserialize, Default, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppPortalAccessIn {
    /// Creates the application (with the path's key as its uid) when it does not exist.
    pub application: Option<ApplicationIn>,
    /// Seconds the link stays valid (default 7 days).
    #[serde(default, deserialize_with = "whole")]
    #[schema(minimum = 60, maximum = 31536000)]
    pub expiry: Option<u64>,
    pub read_only: Option<bool>,
    /// Svix's capabilities: without `ManageEndpoint` the portal is read-only.
    pub capabilities: Option<Vec<String>>,
    // `featureFlags` is accepted and ignored: hookbox's portal has no feature flags.
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AppPortalAccessOut {
    pub url: String,
    pub token: String,
}

const MIN_EXPIRY: u64 = 60;
const DEFAULT_EXPIRY: u64 = 7 * 24 * 3600;

/// A link to the customer portal of one application. With `application` in the body, the
/// application is created (the path's key as its uid) when there is none.
#[utoipa::path(
    post,
    path = "/api/v1/auth/app-portal-access/{app_id}",
    operation_id = "v1.authentication.app-portal-access",
    tag = "Authentication",
    params(AppPath),
    request_body = AppPortalAccessIn,
    responses(
        (status = 200, description = "OK", body = AppPortalAccessOut),
        (status = 409, description = "The application's uid is taken", body = crate::http::error::HttpErrorOut),
        WriteErrors
    )
)]
pub async fn access(
    st: Data,
    who: Caller,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let key = app_key(&st, &req)?;
    let input: AppPortalAccessIn = body(&st, payload).await?;
    let expiry = input.expiry.unwrap_or(DEFAULT_EXPIRY);
    if !(MIN_EXPIRY..=PORTAL_MAX_TTL.as_secs()).contains(&expiry) {
        return Err(ApiError::invalid(
            &["body", "expiry"],
            format!(
                "must be {MIN_EXPIRY} to {} seconds",
                PORTAL_MAX_TTL.as_secs()
            ),
        ));
    }
    let read_only = input.read_only.unwrap_or(false)
        || input
            .capabilities
            .as_ref()
            .is_some_and(|c| !c.iter().any(|c| c == "ManageEndpoint"));
    // Validated before anything is written.
    let fresh = input
        .application
        .map(|a| super::apps::nested_app(a, &key))
        .transpose()?;
    // A repeat with the key gets the same link (its token kept sealed, as secrets are).
    super::idempotent_secret(&st, &req, &who, || async {
        let app = crate::service::apps::open_or_create(&st.store, &key, fresh)
            .await?
            .filter(|a| !a.is_operational())
            .ok_or(ApiError::NotFound("application"))?;
        let token = create_link(
            &st.store,
            &app.id,
            Duration::from_secs(expiry),
            read_only,
            st.now(),
        )
        .await?;
        let out = AppPortalAccessOut {
            url: portal_link_url(&req, &token),
            token,
        };
        Ok((
            StatusCode::OK,
            serde_json::to_value(out).unwrap_or_default(),
        ))
    })
    .await
}
