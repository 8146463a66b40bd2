use super::models::{
    ApplicationIn, ApplicationOut, ApplicationPatch, ListResponse_ApplicationOut_,
};
use super::openapi::{AppPath, ListParams, ReadErrors, WriteErrors};
use super::{app_key, body, find_app, idempotent, json, query};
use crate::db::App;
use crate::http::auth::Caller;
use crate::http::error::{ApiError, HttpErrorOut, ValidationItem};
use crate::http::extract::list_out;
use crate::http::Data;
use crate::service::apps::{self as service, check_app_uid, check_name, retention, AppInput};
use crate::service::input::metadata_map;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};

#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct GetIfExists {
    /// `true`: when an application has the body's uid, answer 200 with it instead of 409.
    #[param(required = false, value_type = Option<bool>)]
    get_if_exists: bool,
}

impl GetIfExists {
    fn parse(q: &crate::http::extract::Query) -> Result<GetIfExists, ApiError> {
        Ok(GetIfExists {
            get_if_exists: q.bool("get_if_exists", false)?,
        })
    }
}

/// A validated new application.
pub(super) fn new_app(input: ApplicationIn) -> Result<App, ApiError> {
    Ok(AppInput::from(input).parse()?)
}

/// [`new_app`] for an application given inside another body (`application` of a message or a
/// portal link) under the path's `key`: without a uid of its own, the key is its uid (checked
/// as any uid); with one, it must be the key. A bad field is located where it came from: in
/// `application`, or the path.
pub(super) fn nested_app(mut input: ApplicationIn, key: &str) -> Result<App, ApiError> {
    // The application made is the one the path names: a uid of its own must be that one.
    if input.uid.as_deref().is_some_and(|uid| uid != key) {
        return Err(ApiError::Validation(vec![ValidationItem {
            loc: vec!["body".into(), "application".into(), "uid".into()],
            msg: "Application UID in the path and body must match".into(),
            kind: "application_uid_mismatch".into(),
        }]));
    }
    let uid_from_path = input.uid.is_none();
    input.uid = input.uid.or_else(|| Some(key.to_owned()));
    AppInput::from(input).parse().map_err(|mut e| {
        if uid_from_path && e.loc == ["uid"] {
            return ApiError::invalid(&["path", "app_id"], e.msg);
        }
        e.loc.insert(0, "application".into());
        e.into()
    })
}

fn out(a: App) -> serde_json::Value {
    serde_json::to_value(ApplicationOut::from(a)).unwrap_or_default()
}

/// List applications (oldest first by default).
#[utoipa::path(
    get,
    path = "/api/v1/app",
    operation_id = "v1.application.list",
    tag = "Application",
    params(ListParams),
    responses((status = 200, description = "OK", body = ListResponse_ApplicationOut_), ReadErrors)
)]
pub async fn list(st: Data, _who: Caller, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let page = crate::http::api::openapi::ListParams::parse(&query(&req))?.page(false);
    let rows = st.store.apps(&page, crate::operational::APP_UID).await?;
    Ok(json(
        StatusCode::OK,
        &list_out(rows, &page, |a| a.id.to_string(), ApplicationOut::from),
    ))
}

/// Create an application.
#[utoipa::path(
    post,
    path = "/api/v1/app",
    operation_id = "v1.application.create",
    tag = "Application",
    params(GetIfExists),
    request_body = ApplicationIn,
    responses(
        (status = 201, description = "Created", body = ApplicationOut),
        (status = 200, description = "With `get_if_exists=true`: the application with this uid", body = ApplicationOut),
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
    let input: ApplicationIn = body(&st, payload).await?;
    let get_if_exists = GetIfExists::parse(&query(&req))?.get_if_exists;
    idempotent(&st, &req, &who, || async {
        let app = new_app(input)?;
        let result = if get_if_exists {
            service::get_or_create(&st.store, app).await?
        } else {
            (true, service::create(&st.store, app).await?)
        };
        let status = if result.0 {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        };
        Ok((status, out(result.1)))
    })
    .await
}

/// Get an application.
#[utoipa::path(
    get,
    path = "/api/v1/app/{app_id}",
    operation_id = "v1.application.get",
    tag = "Application",
    params(AppPath),
    responses((status = 200, description = "OK", body = ApplicationOut), ReadErrors)
)]
pub async fn get(st: Data, _who: Caller, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let app = find_app(&st, &req).await?;
    Ok(json(StatusCode::OK, &ApplicationOut::from(app)))
}

/// Update an application, or create it with the path's uid when there is none.
#[utoipa::path(
    put,
    path = "/api/v1/app/{app_id}",
    operation_id = "v1.application.update",
    tag = "Application",
    params(AppPath),
    request_body = ApplicationIn,
    responses(
        (status = 200, description = "Updated", body = ApplicationOut),
        (status = 201, description = "Created", body = ApplicationOut),
        (status = 409, description = "The uid is taken, or (nothing existing under the path) the body names another uid", body = HttpErrorOut),
        WriteErrors
    )
)]
pub async fn put(
    st: Data,
    _who: Caller,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let key = app_key(&st, &req)?;
    let input: ApplicationIn = body(&st, payload).await?;
    // Validated as a new application; if one exists under the key, it takes these fields.
    let fresh = new_app(ApplicationIn {
        uid: Some(input.uid.clone().unwrap_or_else(|| key.clone())),
        ..input
    })?;
    let (created, app) = service::put(&st.store, &key, fresh).await?;
    Ok(json(
        if created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        },
        &ApplicationOut::from(app),
    ))
}

/// Change some fields of an application.
#[utoipa::path(
    patch,
    path = "/api/v1/app/{app_id}",
    operation_id = "v1.application.patch",
    tag = "Application",
    params(AppPath),
    request_body = ApplicationPatch,
    responses(
        (status = 200, description = "OK", body = ApplicationOut),
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
    let app = find_app(&st, &req).await?;
    let p: ApplicationPatch = body(&st, payload).await?;
    if let Some(name) = &p.name {
        check_name(name)?;
    }
    if let Some(uid) = &p.uid {
        check_app_uid(uid.as_deref())?;
    }
    let retention_ms = p.payload_retention_period.map(retention).transpose()?;
    // Made on the application as stored then: concurrent changes all land.
    let app = service::edit(&st.store, &app.id, |app| {
        let p = p.clone();
        if let Some(name) = p.name {
            app.name = name;
        }
        if let Some(uid) = p.uid {
            app.uid = uid;
        }
        if let Some(ms) = retention_ms {
            app.retention_ms = ms;
        }
        if let Some(rate) = p.throttle_rate {
            app.rate_limit = rate.map(i64::from);
        }
        if let Some(m) = p.metadata {
            app.metadata = metadata_map(Some(m));
        }
        Ok::<_, ApiError>(())
    })
    .await?
    .ok_or(ApiError::NotFound("application"))?;
    Ok(json(StatusCode::OK, &ApplicationOut::from(app)))
}

/// Delete an application with its endpoints and messages.
#[utoipa::path(
    delete,
    path = "/api/v1/app/{app_id}",
    operation_id = "v1.application.delete",
    tag = "Application",
    params(AppPath),
    responses((status = 204, description = "Deleted"), ReadErrors)
)]
pub async fn delete(st: Data, _who: Caller, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let app = find_app(&st, &req).await?;
    service::delete(&st.store, &st.dispatcher, &app).await?;
    Ok(HttpResponse::NoContent().finish())
}
