use super::messages::find_message;
use super::models::{attempt_out, ListResponse_MessageAttemptOut_, MessageAttemptOut};
use super::openapi::{
    AppPath, AttemptPath, EndpointPath, ListParams, MessageFilterParams, MsgPath, ReadErrors,
};
use super::{find_app, find_endpoint, json, query};
use crate::db::AttemptFilter;
use crate::domain::ids::{EndpointId, MsgId};
use crate::http::auth::Caller;
use crate::http::error::{ApiError, HttpErrorOut};
use crate::http::extract::{list_out, Query};
use crate::http::Data;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};

/// Filters of attempt listings.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct AttemptFilterParams {
    /// Only attempts with this status.
    #[param(value_type = Option<super::models::MessageStatus>)]
    status: Option<crate::domain::model::DeliveryStatus>,
    /// Only attempts whose response status is in this class (0: no response).
    #[param(inline, value_type = Option<StatusCodeClass>)]
    status_code_class: Option<i64>,
    /// Include each attempt's message as `msg` (default `false`).
    #[param(required = false, value_type = Option<bool>)]
    with_msg: bool,
    /// With `with_msg=true`: `false` leaves the payload out.
    #[param(required = false, value_type = Option<bool>)]
    with_content: bool,
}

/// A class of HTTP status codes: 0 (no response), 100, 200, 300, 400, 500.
struct StatusCodeClass;

impl utoipa::PartialSchema for StatusCodeClass {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .enum_values(Some([0, 100, 200, 300, 400, 500]))
            .into()
    }
}
impl utoipa::ToSchema for StatusCodeClass {}

#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ByEndpoint {
    /// Only attempts to this endpoint (id or uid).
    #[param(min_length = 1, max_length = 256, pattern = r"^[a-zA-Z0-9\-_.]+$")]
    endpoint_id: Option<String>,
}

impl AttemptFilterParams {
    fn parse(q: &Query) -> Result<AttemptFilterParams, ApiError> {
        let class = q.int("status_code_class")?;
        if let Some(c) = class {
            if ![0, 100, 200, 300, 400, 500].contains(&c) {
                return Err(ApiError::invalid(
                    &["query", "status_code_class"],
                    "one of 0, 100, 200, 300, 400, 500",
                ));
            }
        }
        Ok(AttemptFilterParams {
            status: super::messages::status_param(q)?,
            status_code_class: class,
            with_msg: q.bool("with_msg", false)?,
            with_content: super::openapi::WithContent::parse(q)?.with_content,
        })
    }
}

impl ByEndpoint {
    fn parse(q: &Query) -> ByEndpoint {
        ByEndpoint {
            endpoint_id: q.str("endpoint_id").map(str::to_owned),
        }
    }
}

/// The attempts to `endpoint_id` and/or of `msg_id` that the query's filters select.
async fn list(
    st: &Data,
    q: &Query,
    endpoint_id: Option<EndpointId>,
    msg_id: Option<MsgId>,
) -> Result<HttpResponse, ApiError> {
    let p = AttemptFilterParams::parse(q)?;
    // `before` and `after` are the attempts' times, not their messages'.
    let mut messages = super::messages::filter(q)?;
    let f = AttemptFilter {
        endpoint_id,
        msg_id,
        status: p.status,
        status_code_class: p.status_code_class,
        before: messages.before.take(),
        after: messages.after.take(),
        messages,
    };
    let page = crate::http::api::openapi::ListParams::parse(q)?.page(true);
    let (with_content, with_msg) = (p.with_content, p.with_msg);
    let rows = st.store.attempts(f, &page).await?;
    Ok(json(
        StatusCode::OK,
        &list_out(
            rows,
            &page,
            |a| a.id.to_string(),
            |a| attempt_out(a, with_msg, with_content),
        ),
    ))
}

/// List the attempts to send messages to an endpoint, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/app/{app_id}/attempt/endpoint/{endpoint_id}",
    operation_id = "v1.message-attempt.list-by-endpoint",
    tag = "Message Attempt",
    params(AppPath, EndpointPath, ListParams, AttemptFilterParams, MessageFilterParams),
    responses((status = 200, description = "OK", body = ListResponse_MessageAttemptOut_), ReadErrors)
)]
pub async fn by_endpoint(
    st: Data,
    _who: Caller,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let (_, ep) = find_endpoint(&st, &req).await?;
    let q = query(&req);
    list(&st, &q, Some(ep.id), None).await
}

/// List the attempts to send a message, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/app/{app_id}/attempt/msg/{msg_id}",
    operation_id = "v1.message-attempt.list-by-msg",
    tag = "Message Attempt",
    params(AppPath, MsgPath, ByEndpoint, ListParams, AttemptFilterParams, MessageFilterParams),
    responses((status = 200, description = "OK", body = ListResponse_MessageAttemptOut_), ReadErrors)
)]
pub async fn by_message(
    st: Data,
    _who: Caller,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let app = find_app(&st, &req).await?;
    let m = find_message(&st, &req, &app.id).await?;
    let q = query(&req);
    let endpoint_id = match ByEndpoint::parse(&q).endpoint_id {
        None => None,
        Some(key) => {
            let ep = st
                .store
                .endpoint(&app.id, &key)
                .await?
                .ok_or(ApiError::NotFound("endpoint"))?;
            Some(ep.id)
        }
    };
    list(&st, &q, endpoint_id, Some(m.id)).await
}

/// Get an attempt.
#[utoipa::path(
    get,
    path = "/api/v1/app/{app_id}/msg/{msg_id}/attempt/{attempt_id}",
    operation_id = "v1.message-attempt.get",
    tag = "Message Attempt",
    params(AppPath, MsgPath, AttemptPath),
    responses((status = 200, description = "OK", body = MessageAttemptOut), ReadErrors)
)]
pub async fn get(st: Data, _who: Caller, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let app = find_app(&st, &req).await?;
    let m = find_message(&st, &req, &app.id).await?;
    let attempt_id = AttemptPath::parse(&req)?.attempt_id;
    let a = st
        .store
        .attempt(&m.id, &attempt_id)
        .await?
        .ok_or(ApiError::NotFound("attempt"))?;
    Ok(json(StatusCode::OK, &attempt_out(a, false, true)))
}

/// Delete what the receiver answered to an attempt (its response body and headers), for
/// example personal data it sent back. The attempt stays, with its status code.
#[utoipa::path(
    delete,
    path = "/api/v1/app/{app_id}/msg/{msg_id}/attempt/{attempt_id}/content",
    operation_id = "v1.message-attempt.expunge-content",
    tag = "Message Attempt",
    params(AppPath, MsgPath, AttemptPath),
    responses((status = 204, description = "Deleted"), ReadErrors)
)]
pub async fn expunge_content(
    st: Data,
    _who: Caller,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let app = find_app(&st, &req).await?;
    let m = find_message(&st, &req, &app.id).await?;
    let attempt_id = AttemptPath::parse(&req)?.attempt_id;
    if !crate::service::messages::expunge_attempt_content(&st.store, &m.id, &attempt_id).await? {
        return Err(ApiError::NotFound("attempt"));
    }
    Ok(HttpResponse::NoContent().finish())
}

/// Send the message to the endpoint once more, now.
#[utoipa::path(
    post,
    path = "/api/v1/app/{app_id}/msg/{msg_id}/endpoint/{endpoint_id}/resend",
    operation_id = "v1.message-attempt.resend",
    tag = "Message Attempt",
    params(AppPath, MsgPath, EndpointPath),
    responses(
        (status = 202, description = "Scheduled", body = Object, example = json!({})),
        (status = 409, description = "The endpoint is disabled, or the message's payload is gone", body = HttpErrorOut),
        ReadErrors
    )
)]
pub async fn resend(st: Data, who: Caller, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let (app, ep) = find_endpoint(&st, &req).await?;
    let m = find_message(&st, &req, &app.id).await?;
    let server = st.cfg.retry_schedule();
    super::idempotent(&st, &req, &who, || async {
        crate::service::endpoints::resend(&st.store, &st.dispatcher, &server, &m, &ep)
            .await
            .map_err(|e| match e {
                crate::service::endpoints::ResendError::Disabled => ApiError::Conflict {
                    code: "endpoint_disabled",
                    detail: "the endpoint is disabled".into(),
                },
                crate::service::endpoints::ResendError::ContentGone => ApiError::Conflict {
                    code: "message_content_gone",
                    detail: "the message's payload was deleted or has expired: it cannot be sent \
                         again"
                        .into(),
                },
                crate::service::endpoints::ResendError::NotFor => {
                    ApiError::NotFound("delivery of this message to this endpoint")
                }
                crate::service::endpoints::ResendError::Db(e) => e.into(),
            })?;
        Ok((StatusCode::ACCEPTED, serde_json::json!({})))
    })
    .await
}
