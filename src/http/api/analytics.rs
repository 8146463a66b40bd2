//! hookbox: `GET /api/v1/app/{app_id}/analytics`, attempt counts of an application over a
//! window by outcome, event type, response code and hour or day.

use super::openapi::{AppPath, ReadErrors};
use super::{find_app, json, query};
use crate::domain::time::{format_ms, now_ms};
use crate::http::auth::Caller;
use crate::http::error::ApiError;
use crate::http::Data;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;
/// The longest window, and the most hourly buckets one answer holds.
const MAX_WINDOW: i64 = 366 * DAY;
const MAX_HOURLY_WINDOW: i64 = 31 * DAY;

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Counts {
    pub success: i64,
    pub fail: i64,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventTypeCounts {
    pub event_type: String,
    pub success: i64,
    pub fail: i64,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatusCodeCount {
    /// The receiver's HTTP status; 0 when no response came (timeout, refused, …).
    pub code: i64,
    pub count: i64,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Bucket {
    #[schema(format = DateTime)]
    pub start: String,
    pub success: i64,
    pub fail: i64,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AnalyticsOut {
    #[schema(format = DateTime)]
    pub since: String,
    #[schema(format = DateTime)]
    pub until: String,
    /// `hour` or `day`: the length of each bucket.
    #[schema(pattern = "^(hour|day)$")]
    pub interval: &'static str,
    pub total: Counts,
    pub event_types: Vec<EventTypeCounts>,
    pub status_codes: Vec<StatusCodeCount>,
    pub buckets: Vec<Bucket>,
}

#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct AnalyticsParams {
    /// The start of the window (default: 24 hours before `until`; at most 366 days before it).
    #[param(value_type = Option<String>, format = DateTime, pattern = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}")]
    since: Option<i64>,
    /// The end of the window (default: now).
    #[param(value_type = Option<String>, format = DateTime, pattern = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}")]
    until: Option<i64>,
    /// Bucket length: default `hour` for windows up to 2 days, else `day`; `hour` covers at
    /// most 31 days.
    #[param(inline)]
    interval: Option<Interval>,
    /// Only attempts to this endpoint (id or uid).
    #[param(
        rename = "endpointId",
        min_length = 1,
        max_length = 256,
        pattern = r"^[a-zA-Z0-9\-_.]+$"
    )]
    endpoint_id: Option<String>,
}

#[derive(ToSchema, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Interval {
    Hour,
    Day,
}

impl AnalyticsParams {
    fn parse(q: &crate::http::extract::Query) -> Result<AnalyticsParams, ApiError> {
        let until = q.datetime("until")?;
        let since = q.datetime("since")?;
        let interval = match q.str("interval") {
            None => None,
            Some("hour") => Some(Interval::Hour),
            Some("day") => Some(Interval::Day),
            Some(_) => {
                return Err(ApiError::invalid(
                    &["query", "interval"],
                    "interval must be hour or day",
                ))
            }
        };
        let endpoint_id = match q.str("endpointId") {
            None => None,
            Some(key) if crate::domain::validate::is_valid_uid(key) => Some(key.to_owned()),
            Some(_) => {
                return Err(ApiError::invalid(
                    &["query", "endpointId"],
                    "must match [a-zA-Z0-9-_.]{1,256}",
                ))
            }
        };
        Ok(AnalyticsParams {
            since,
            until,
            interval,
            endpoint_id,
        })
    }
}

/// hookbox: attempt counts of an application over a window (default the last 24 hours) by
/// outcome, event type, response code and hour or day.
#[utoipa::path(
    get,
    path = "/api/v1/app/{app_id}/analytics",
    operation_id = "v1.application.analytics",
    tag = "Application",
    params(AppPath, AnalyticsParams),
    responses((status = 200, description = "OK", body = AnalyticsOut), ReadErrors)
)]
pub async fn analytics(st: Data, _who: Caller, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let app = find_app(&st, &req).await?;
    let q = query(&req);
    let p = AnalyticsParams::parse(&q)?;
    let until = p.until.unwrap_or_else(now_ms);
    let since = p.since.unwrap_or(until - DAY);
    if since >= until {
        return Err(ApiError::invalid(
            &["query", "since"],
            "since must be before until",
        ));
    }
    if until - since > MAX_WINDOW {
        return Err(ApiError::invalid(
            &["query", "since"],
            "the window is longer than 366 days",
        ));
    }
    let (interval, bucket) = match p.interval {
        None if until - since <= 2 * DAY => ("hour", HOUR),
        None | Some(Interval::Day) => ("day", DAY),
        Some(Interval::Hour) if until - since <= MAX_HOURLY_WINDOW => ("hour", HOUR),
        Some(Interval::Hour) => {
            return Err(ApiError::invalid(
                &["query", "interval"],
                "hourly buckets cover at most 31 days; use interval=day",
            ))
        }
    };
    let endpoint = match p.endpoint_id {
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
    let a = st
        .store
        .analytics(&app.id, endpoint, since, until, bucket)
        .await?;
    Ok(json(
        StatusCode::OK,
        &AnalyticsOut {
            since: format_ms(since),
            until: format_ms(until),
            interval,
            total: Counts {
                success: a.success,
                fail: a.fail,
            },
            event_types: a
                .event_types
                .into_iter()
                .map(|(event_type, success, fail)| EventTypeCounts {
                    event_type,
                    success,
                    fail,
                })
                .collect(),
            status_codes: a
                .status_codes
                .into_iter()
                .map(|(code, count)| StatusCodeCount { code, count })
                .collect(),
            buckets: a
                .buckets
                .into_iter()
                .map(|(start, success, fail)| Bucket {
                    start: format_ms(start),
                    success,
                    fail,
                })
                .collect(),
        },
    ))
}
