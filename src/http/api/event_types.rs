use super::models::{EventTypeIn, EventTypeOut, EventTypePatch, EventTypeUpdate};
use super::{body, caller, idempotent, json, query};
use crate::db::event_types::{self, EventType};
use crate::domain::{time::now_ms, validate::is_valid_event_type};
use crate::http::error::ApiError;
use crate::http::extract::list_out;
use crate::http::Data;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};

fn name_from_path(req: &HttpRequest) -> Result<String, ApiError> {
    let name = req.match_info().get("name").unwrap_or_default();
    if is_valid_event_type(name) {
        Ok(name.to_owned())
    } else {
        Err(ApiError::invalid(
            &["path", "event_type_name"],
            "must match [a-zA-Z0-9-_.:]{1,256}",
        ))
    }
}

fn check(
    description: &str,
    schemas: Option<&serde_json::Map<String, serde_json::Value>>,
) -> Result<(), ApiError> {
    if description.len() > 8192 {
        return Err(ApiError::invalid(
            &["body", "description"],
            "description is longer than 8192 characters",
        ));
    }
    if let Some(s) = schemas {
        if serde_json::to_string(s).map_or(0, |t| t.len()) > 256 * 1024 {
            return Err(ApiError::invalid(
                &["body", "schemas"],
                "schemas are larger than 256 KiB",
            ));
        }
    }
    Ok(())
}

fn flags(many: Option<Vec<String>>, one: Option<String>) -> Option<Vec<String>> {
    many.or_else(|| one.map(|f| vec![f]))
}

fn out(e: EventType) -> EventTypeOut {
    EventTypeOut::new(e, true)
}

pub async fn list(st: Data, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    caller(&st, &req).await?;
    let q = query(&req);
    let page = q.page(false)?;
    let include_archived = q.bool("include_archived", false)?;
    let with_content = q.bool("with_content", true)?;
    let p = page.clone();
    let rows = st
        .db
        .read(move |c| event_types::list(c, &p, include_archived))
        .await?;
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

pub async fn create(
    st: Data,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let who = caller(&st, &req).await?;
    let input: EventTypeIn = body(&st, payload).await?;
    if !is_valid_event_type(&input.name) {
        return Err(ApiError::invalid(
            &["body", "name"],
            "name must match [a-zA-Z0-9-_.:]{1,256}",
        ));
    }
    check(&input.description, input.schemas.as_ref())?;
    idempotent(&st, &req, &who, || async {
        let now = now_ms();
        let e = EventType {
            name: input.name,
            description: input.description,
            group_name: input.group_name,
            schemas: input.schemas.map(serde_json::Value::Object),
            feature_flags: flags(input.feature_flags, input.feature_flag),
            archived: input.archived,
            deprecated: input.deprecated,
            created_at: now,
            updated_at: now,
        };
        // Creating an archived event type again brings it back (as Svix does).
        let e = st
            .db
            .write(move |c| match event_types::get(c, &e.name)? {
                Some(old) if old.archived => {
                    let revived = EventType {
                        created_at: old.created_at,
                        ..e
                    };
                    event_types::update(c, &revived)?;
                    Ok(revived)
                }
                _ => event_types::insert(c, &e).map(|()| e),
            })
            .await
            .map_err(|err| match err {
                crate::db::DbError::Conflict(detail) => ApiError::Conflict {
                    code: "event_type_exists",
                    detail,
                },
                other => other.into(),
            })?;
        Ok((
            StatusCode::CREATED,
            serde_json::to_value(out(e)).unwrap_or_default(),
        ))
    })
    .await
}

pub async fn get(st: Data, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    caller(&st, &req).await?;
    let name = name_from_path(&req)?;
    let e = st
        .db
        .read(move |c| event_types::get(c, &name))
        .await?
        .ok_or(ApiError::NotFound("event type"))?;
    Ok(json(StatusCode::OK, &out(e)))
}

pub async fn put(
    st: Data,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    caller(&st, &req).await?;
    let name = name_from_path(&req)?;
    let input: EventTypeUpdate = body(&st, payload).await?;
    check(&input.description, input.schemas.as_ref())?;
    let (created, e) = st
        .db
        .write(move |c| {
            let now = now_ms();
            let existing = event_types::get(c, &name)?;
            let e = EventType {
                created_at: existing.as_ref().map_or(now, |e| e.created_at),
                name,
                description: input.description,
                group_name: input.group_name,
                schemas: input.schemas.map(serde_json::Value::Object),
                feature_flags: flags(input.feature_flags, input.feature_flag),
                archived: input.archived,
                deprecated: input.deprecated,
                updated_at: now,
            };
            if existing.is_some() {
                event_types::update(c, &e)?;
            } else {
                event_types::insert(c, &e)?;
            }
            Ok((existing.is_none(), e))
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

pub async fn patch(
    st: Data,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    caller(&st, &req).await?;
    let name = name_from_path(&req)?;
    let p: EventTypePatch = body(&st, payload).await?;
    if let Some(d) = &p.description {
        check(d, None)?;
    }
    if let Some(Some(s)) = &p.schemas {
        check("", Some(s))?;
    }
    let e = st
        .db
        .write(move |c| {
            let Some(mut e) = event_types::get(c, &name)? else {
                return Ok(None);
            };
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
            if let Some(f) = p.feature_flags {
                e.feature_flags = f;
            }
            if let Some(g) = p.group_name {
                e.group_name = g;
            }
            e.updated_at = now_ms();
            event_types::update(c, &e)?;
            Ok(Some(e))
        })
        .await?
        .ok_or(ApiError::NotFound("event type"))?;
    Ok(json(StatusCode::OK, &out(e)))
}

/// Archives the event type; `?expunge=true` deletes it.
pub async fn delete(st: Data, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    caller(&st, &req).await?;
    let name = name_from_path(&req)?;
    let expunge = query(&req).bool("expunge", false)?;
    let found = st
        .db
        .write(move |c| {
            if expunge {
                return event_types::delete(c, &name);
            }
            let Some(mut e) = event_types::get(c, &name)? else {
                return Ok(false);
            };
            e.archived = true;
            e.updated_at = now_ms();
            event_types::update(c, &e)?;
            Ok(true)
        })
        .await?;
    if found {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(ApiError::NotFound("event type"))
    }
}
