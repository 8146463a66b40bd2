use super::messages::find_message;
use super::models::attempt_json;
use super::{caller, find_app, find_endpoint, json, path_key, query};
use crate::db::attempts::{self, AttemptFilter};
use crate::db::{deliveries, endpoints as ep_db, messages::MessageFilter};
use crate::domain::time::now_ms;
use crate::http::error::ApiError;
use crate::http::extract::{list_out, Query};
use crate::http::Data;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};

fn filter(q: &Query) -> Result<AttemptFilter, ApiError> {
    let class = q.int("status_code_class")?;
    if let Some(c) = class {
        if ![0, 100, 200, 300, 400, 500].contains(&c) {
            return Err(ApiError::invalid(
                &["query", "status_code_class"],
                "one of 0, 100, 200, 300, 400, 500",
            ));
        }
    }
    Ok(AttemptFilter {
        endpoint_id: None,
        msg_id: None,
        status: q.int("status")?,
        status_code_class: class,
        messages: MessageFilter {
            channel: q.str("channel").map(str::to_owned),
            tag: q.str("tag").map(str::to_owned),
            event_types: q.list("event_types"),
            before: q.datetime("before")?,
            after: q.datetime("after")?,
        },
    })
}

async fn list(st: &Data, q: &Query, f: AttemptFilter) -> Result<HttpResponse, ApiError> {
    let page = q.page(true)?;
    let with_content = q.bool("with_content", true)?;
    let with_msg = q.bool("with_msg", false)?;
    let p = page.clone();
    let rows = st.db.read(move |c| attempts::list(c, &f, &p)).await?;
    Ok(json(
        StatusCode::OK,
        &list_out(
            rows,
            &page,
            |a| a.id.clone(),
            |a| attempt_json(a, with_msg, with_content),
        ),
    ))
}

pub async fn by_endpoint(st: Data, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    caller(&st, &req).await?;
    let (_, ep) = find_endpoint(&st, &req).await?;
    let q = query(&req);
    let f = AttemptFilter {
        endpoint_id: Some(ep.id),
        ..filter(&q)?
    };
    list(&st, &q, f).await
}

pub async fn by_message(st: Data, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    caller(&st, &req).await?;
    let app = find_app(&st, &req).await?;
    let m = find_message(&st, &req, &app.id).await?;
    let q = query(&req);
    let endpoint_id = match q.str("endpoint_id") {
        None => None,
        Some(key) => {
            let (app_id, key) = (app.id.clone(), key.to_owned());
            let ep = st
                .db
                .read(move |c| ep_db::get(c, &app_id, &key))
                .await?
                .ok_or(ApiError::NotFound("endpoint"))?;
            Some(ep.id)
        }
    };
    let f = AttemptFilter {
        msg_id: Some(m.id),
        endpoint_id,
        ..filter(&q)?
    };
    list(&st, &q, f).await
}

pub async fn get(st: Data, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    caller(&st, &req).await?;
    let app = find_app(&st, &req).await?;
    let m = find_message(&st, &req, &app.id).await?;
    let attempt_id = path_key(&req, "attempt_id")?.to_owned();
    let a = st
        .db
        .read(move |c| attempts::get(c, &m.id, &attempt_id))
        .await?
        .ok_or(ApiError::NotFound("attempt"))?;
    Ok(json(StatusCode::OK, &attempt_json(a, false, true)))
}

/// Sends the message to the endpoint once more, now.
pub async fn resend(st: Data, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    caller(&st, &req).await?;
    let (app, ep) = find_endpoint(&st, &req).await?;
    let m = find_message(&st, &req, &app.id).await?;
    if ep.disabled {
        return Err(ApiError::Conflict {
            code: "endpoint_disabled",
            detail: "the endpoint is disabled".into(),
        });
    }
    let max = st.cfg.retry_schedule().max_attempts();
    st.db
        .write(move |c| deliveries::resend(c, &m.id, &ep.id, max, now_ms()))
        .await?;
    st.dispatcher.wake();
    Ok(json(StatusCode::ACCEPTED, &serde_json::json!({})))
}
