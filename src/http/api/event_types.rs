use super::models::{
    EventTypeIn, EventTypeOut, EventTypePatch, EventTypeUpdate, ListResponse_EventTypeOut_,
};
use super::openapi::{EventTypePath, ListParams, ReadErrors, WriteErrors};
use super::{body, idempotent, json, query};
use crate::db::EventType;
use crate::domain::{time::now_ms, validate::is_valid_event_type};
use crate::http::auth::Caller;
use crate::http::error::{ApiError, HttpErrorOut};
use crate::http::extract::list_out;
use crate::http::Data;
use crate::service::event_types as service;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};

fn name_from_path(req: &HttpRequest) -> Result<String, ApiError> {
    Ok(EventTypePath::parse(req)?.event_type_name)
}

/// The catalog's rules (`service::event_types`), as 422s located in the body.
fn check(
    description: Option<&str>,
    group: Option<&str>,
    schemas: Option<&serde_json::Map<String, serde_json::Value>>,
) -> Result<(), ApiError> {
    description.map_or(Ok(()), service::check_description)?;
    service::check_group(group)?;
    Ok(schemas.map_or(Ok(()), service::check_schemas)?)
}

/// The feature flags `featureFlags` gives, else the one `featureFlag` gives, checked (a bad
/// one located in the field that was sent).
fn flags(many: Option<Vec<String>>, one: Option<String>) -> Result<Option<Vec<String>>, ApiError> {
    // Checked even when `featureFlags` is there too and wins.
    if let Some(one) = &one {
        service::check_feature_flags(Some(std::slice::from_ref(one))).map_err(|mut e| {
            e.loc = vec!["featureFlag".into()];
            e
        })?;
    }
    service::check_feature_flags(many.as_deref())?;
    Ok(many.or_else(|| one.map(|f| vec![f])))
}

fn out(e: EventType) -> EventTypeOut {
    EventTypeOut::new(e, true)
}

#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ListFilter {
    /// Include archived event types (default `false`).
    #[param(required = false, value_type = Option<bool>)]
    include_archived: bool,
    /// `false` leaves `schemas` out (`null`); default `true`.
    #[param(required = false, value_type = Option<bool>)]
    with_content: bool,
}

impl ListFilter {
    fn parse(q: &crate::http::extract::Query) -> Result<ListFilter, ApiError> {
        Ok(ListFilter {
            include_archived: q.bool("include_archived", false)?,
            with_content: super::openapi::WithContent::parse(q)?.with_content,
        })
    }
}

#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct Expunge {
    /// `true` deletes the event type instead of archiving it.
    #[param(required = false, value_type = Option<bool>)]
    expunge: bool,
}

impl Expunge {
    fn parse(q: &crate::http::extract::Query) -> Result<Expunge, ApiError> {
        Ok(Expunge {
            expunge: q.bool("expunge", false)?,
        })
    }
}

/// List event types, by name.
#[utoipa::path(
    get,
    path = "/api/v1/event-type",
    operation_id = "v1.event-type.list",
    tag = "Event Type",
    params(ListParams, ListFilter),
    responses((status = 200, description = "OK", body = ListResponse_EventTypeOut_), ReadErrors)
)]
pub async fn list(st: Data, _who: Caller, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let q = query(&req);
    let page = crate::http::api::openapi::ListParams::parse(&q)?.page(false);
    let ListFilter {
        include_archived,
        with_content,
    } = ListFilter::parse(&q)?;
    let rows = st.store.event_types(&page, include_archived).await?;
    Ok(json(
        StatusCode::OK,
        &list_out(
            rows,
            &page,
            |e| e.name.clone(),
            |e| EventTypeOut::new(e, with_content),
        ),
    ))
}

/// Create an event type (creating an archived one again brings it back).
#[utoipa::path(
    post,
    path = "/api/v1/event-type",
    operation_id = "v1.event-type.create",
    tag = "Event Type",
    request_body = EventTypeIn,
    responses(
        (status = 201, description = "Created", body = EventTypeOut),
        (status = 409, description = "An event type has this name", body = HttpErrorOut),
        WriteErrors
    )
)]
pub async fn create(
    st: Data,
    who: Caller,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let input: EventTypeIn = body(&st, payload).await?;
    if !is_valid_event_type(&input.name) {
        return Err(ApiError::invalid(
            &["body", "name"],
            "name must match [a-zA-Z0-9-_.:]{1,256}",
        ));
    }
    if crate::domain::validate::only_dots(&input.name) {
        return Err(ApiError::invalid(
            &["body", "name"],
            "a name of dots only cannot be used in a URL: add a letter or digit",
        ));
    }
    let feature_flags = flags(input.feature_flags, input.feature_flag)?;
    check(
        Some(&input.description),
        input.group_name.as_deref(),
        input.schemas.as_ref(),
    )?;
    idempotent(&st, &req, &who, || async {
        let now = now_ms();
        let e = EventType {
            name: input.name,
            description: input.description,
            group_name: input.group_name,
            schemas: input.schemas.map(serde_json::Value::Object),
            feature_flags,
            archived: input.archived,
            deprecated: input.deprecated,
            created_at: now,
            updated_at: now,
        };
        let e = service::create(&st.store, e)
            .await?
            .ok_or_else(|| ApiError::Conflict {
                code: "event_type_exists",
                detail: "an event type with this name already exists".into(),
            })?;
        Ok((
            StatusCode::CREATED,
            serde_json::to_value(out(e)).unwrap_or_default(),
        ))
    })
    .await
}

/// Get an event type.
#[utoipa::path(
    get,
    path = "/api/v1/event-type/{event_type_name}",
    operation_id = "v1.event-type.get",
    tag = "Event Type",
    params(EventTypePath),
    responses((status = 200, description = "OK", body = EventTypeOut), ReadErrors)
)]
pub async fn get(st: Data, _who: Caller, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let name = name_from_path(&req)?;
    let e = st
        .store
        .event_type(&name)
        .await?
        .ok_or(ApiError::NotFound("event type"))?;
    Ok(json(StatusCode::OK, &out(e)))
}

/// Update an event type, or create it.
#[utoipa::path(
    put,
    path = "/api/v1/event-type/{event_type_name}",
    operation_id = "v1.event-type.update",
    tag = "Event Type",
    params(EventTypePath),
    request_body = EventTypeUpdate,
    responses(
        (status = 200, description = "Updated", body = EventTypeOut),
        (status = 201, description = "Created", body = EventTypeOut),
        WriteErrors
    )
)]
pub async fn put(
    st: Data,
    _who: Caller,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let name = name_from_path(&req)?;
    let input: EventTypeUpdate = body(&st, payload).await?;
    let feature_flags = flags(input.feature_flags, input.feature_flag)?;
    check(
        Some(&input.description),
        input.group_name.as_deref(),
        input.schemas.as_ref(),
    )?;
    let now = now_ms();
    let (created, e) = service::put(&st.store, &name.clone(), move |existing| EventType {
        created_at: existing.map_or(now, |e| e.created_at),
        name,
        description: input.description,
        group_name: input.group_name,
        schemas: input.schemas.map(serde_json::Value::Object),
        feature_flags,
        archived: input.archived,
        deprecated: input.deprecated,
        updated_at: now,
    })
    .await?;
    Ok(json(
        if created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        },
        &out(e),
    ))
}

/// Change some fields of an event type.
#[utoipa::path(
    patch,
    path = "/api/v1/event-type/{event_type_name}",
    operation_id = "v1.event-type.patch",
    tag = "Event Type",
    params(EventTypePath),
    request_body = EventTypePatch,
    responses((status = 200, description = "OK", body = EventTypeOut), WriteErrors)
)]
pub async fn patch(
    st: Data,
    _who: Caller,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let name = name_from_path(&req)?;
    let p: EventTypePatch = body(&st, payload).await?;
    check(
        p.description.as_deref(),
        p.group_name.as_ref().and_then(Option::as_deref),
        p.schemas.as_ref().and_then(Option::as_ref),
    )?;
    // Each of the two fields sets the flags; `null` (either) removes them.
    let feature_flags = match (p.feature_flags, p.feature_flag) {
        (Some(many), one) => Some(flags(many, one.flatten())?),
        (None, Some(one)) => Some(flags(None, one)?),
        (None, None) => None,
    };
    let e = service::change(&st.store, &name, move |e| {
        if let Some(d) = p.description {
            e.description = d;
        }
        if let Some(a) = p.archived {
            e.archived = a;
        }
        if let Some(d) = p.deprecated {
            e.deprecated = d;
        }
        if let Some(s) = p.schemas {
            e.schemas = s.map(serde_json::Value::Object);
        }
        if let Some(f) = feature_flags {
            e.feature_flags = f;
        }
        if let Some(g) = p.group_name {
            e.group_name = g;
        }
        e.updated_at = now_ms();
    })
    .await?
    .ok_or(ApiError::NotFound("event type"))?;
    Ok(json(StatusCode::OK, &out(e)))
}

/// Archive an event type; `?expunge=true` deletes it.
#[utoipa::path(
    delete,
    path = "/api/v1/event-type/{event_type_name}",
    operation_id = "v1.event-type.delete",
    tag = "Event Type",
    params(EventTypePath, Expunge),
    responses((status = 204, description = "Archived or deleted"), ReadErrors)
)]
pub async fn delete(st: Data, _who: Caller, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let name = name_from_path(&req)?;
    let expunge = Expunge::parse(&query(&req))?.expunge;
    let found = service::remove(&st.store, &name, expunge, now_ms()).await?;
    if found {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(ApiError::NotFound("event type"))
    }
}
