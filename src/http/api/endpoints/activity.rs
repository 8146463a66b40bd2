//! What an endpoint received: delivery counts, its messages, its health.

use super::*;

#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct StatsRange {
    /// Count deliveries of messages created since this time.
    #[param(value_type = Option<String>, format = DateTime, pattern = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}")]
    since: Option<i64>,
    /// Count deliveries of messages created until this time.
    #[param(value_type = Option<String>, format = DateTime, pattern = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}")]
    until: Option<i64>,
}

impl StatsRange {
    fn parse(q: &crate::http::extract::Query) -> Result<StatsRange, ApiError> {
        Ok(StatsRange {
            since: q.datetime("since")?,
            until: q.datetime("until")?,
        })
    }
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
    let StatsRange { since, until } = StatsRange::parse(&q)?;
    let s = st.store.delivery_stats(&ep.id, since, until).await?;
    Ok(json(
        StatusCode::OK,
        &EndpointStats {
            success: s.success,
            pending: s.pending,
            sending: s.sending,
            fail: s.fail,
            canceled: s.canceled,
            filtered: s.filtered,
        },
    ))
}

#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct StatusFilter {
    /// Only messages with this delivery status.
    #[param(value_type = Option<crate::http::api::models::MessageStatus>)]
    status: Option<crate::domain::model::DeliveryStatus>,
}

impl StatusFilter {
    fn parse(q: &crate::http::extract::Query) -> Result<StatusFilter, ApiError> {
        Ok(StatusFilter {
            status: crate::http::api::messages::status_param(q)?,
        })
    }
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
    let page = crate::http::api::openapi::ListParams::parse(&q)?.page(true);
    let StatusFilter { status } = StatusFilter::parse(&q)?;
    let with_content = crate::http::api::openapi::WithContent::parse(&q)?.with_content;
    let filter = crate::http::api::messages::filter(&q)?;
    let rows = st
        .store
        .endpoint_messages(&ep.id, status, filter, &page)
        .await?;
    Ok(json(
        StatusCode::OK,
        &list_out(
            rows,
            &page,
            |r| r.msg.id.to_string(),
            |r| {
                let next_attempt = r
                    .next_attempt_at
                    .filter(|_| r.status == crate::domain::model::DeliveryStatus::Pending)
                    .map(format_ms);
                with_message_out(&r.msg, with_content, |message| {
                    raw_json(&EndpointMessageOut {
                        message,
                        status: r.status.api_code(),
                        status_text: r.status.api_text(),
                        filtered: r.status == crate::domain::model::DeliveryStatus::Filtered,
                        next_attempt,
                        filter_error: r.filter_error.as_deref(),
                    })
                })
            },
        ),
    ))
}

#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct HealthSince {
    /// The start of the window (default: 24 hours ago).
    #[param(value_type = Option<String>, format = DateTime, pattern = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}")]
    since: Option<i64>,
}

impl HealthSince {
    fn parse(q: &crate::http::extract::Query) -> Result<HealthSince, ApiError> {
        Ok(HealthSince {
            since: q.datetime("since")?,
        })
    }
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
    let since = HealthSince::parse(&q)?
        .since
        .unwrap_or_else(|| now_ms() - crate::domain::time::DAY_MS);
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
