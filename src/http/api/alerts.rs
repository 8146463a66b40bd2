//! hookbox: an application's alert recipients (who is told by email or chat when its
//! webhooks fail) and the alerts sent to them.
//!
//! `GET|POST /api/v1/app/{app_id}/alert-recipient`,
//! `DELETE /api/v1/app/{app_id}/alert-recipient/{recipient_id}`,
//! `GET /api/v1/app/{app_id}/alert`.

use super::openapi::{AppPath, ReadErrors, RecipientPath, WriteErrors};
use super::{body, find_app, json};
use crate::db::{Notification, Recipient};
use crate::domain::alerts::{rules_of, Channel};
use crate::domain::time::format_ms;
use crate::http::auth::Caller;
use crate::http::error::{ApiError, HttpErrorOut};
use crate::http::Data;
use crate::service::alerts::{self as service, NotAdded, RecipientInput};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AlertRecipientIn {
    /// An email address, or the URL of a Slack-compatible chat webhook (Slack, Mattermost,
    /// Rocket.Chat, Discord's `/slack` URLs), which gets each alert as `{"text": …}`.
    #[schema(
        min_length = 3,
        max_length = 1000,
        example = "ops@example.com",
        pattern = r"^([A-Za-z0-9_%+-]{1,20}(\.[A-Za-z0-9_%+-]{1,20}){0,3}@[A-Za-z0-9]([A-Za-z0-9-]{0,18}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,18}[A-Za-z0-9])?){0,5}|https?://[A-Za-z0-9]([A-Za-z0-9-]{0,18}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,18}[A-Za-z0-9])?){0,5}(:[1-9][0-9]{0,3})?(/[A-Za-z0-9._~/-]*)?)$"
    )]
    pub address: String,
    /// The alerts it gets (default: all).
    #[schema(min_items = 1)]
    pub rules: Option<Vec<AlertRule>>,
}

/// An alert rule. `endpoint.disabled`: an endpoint was disabled by hookbox (410 Gone, or
/// failing for `delivery.auto_disable_after`), not by its owner. `message.exhausted`:
/// messages ran out of retries (one alert per endpoint every 5 minutes). `endpoint.failing`:
/// an endpoint's attempts fail or time out past `alerts.error_rate`/`alerts.timeout_rate`
/// over `alerts.window`. `endpoint.unauthorized`: it keeps answering 401/403 (check the
/// signing secret). `endpoint.recovered`: it delivers again after one of those alerts.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
pub enum AlertRule {
    #[serde(rename = "endpoint.disabled")]
    EndpointDisabled,
    #[serde(rename = "message.exhausted")]
    MessageExhausted,
    #[serde(rename = "endpoint.failing")]
    EndpointFailing,
    #[serde(rename = "endpoint.unauthorized")]
    EndpointUnauthorized,
    #[serde(rename = "endpoint.recovered")]
    EndpointRecovered,
}

impl AlertRule {
    fn name(self) -> &'static str {
        use crate::domain::alerts::Rule;
        match self {
            AlertRule::EndpointDisabled => Rule::EndpointDisabled,
            AlertRule::MessageExhausted => Rule::MessagesExhausted,
            AlertRule::EndpointFailing => Rule::EndpointFailing,
            AlertRule::EndpointUnauthorized => Rule::EndpointUnauthorized,
            AlertRule::EndpointRecovered => Rule::EndpointRecovered,
        }
        .name()
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AlertRecipientOut {
    pub id: String,
    /// `email` or `chat`.
    #[schema(pattern = "^(email|chat)$")]
    pub channel: String,
    pub address: String,
    pub rules: Vec<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ListAlertRecipientOut {
    pub data: Vec<AlertRecipientOut>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AlertOut {
    pub id: i64,
    pub channel: String,
    pub address: String,
    /// The rule, or `test`.
    pub rule: String,
    pub endpoint_id: Option<String>,
    /// `pending`, `sent` or `failed` (its retries ran out).
    #[schema(pattern = "^(pending|sent|failed)$")]
    pub status: String,
    pub attempts: u32,
    /// The server's last answer, or the last error.
    pub result: Option<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub sent_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ListAlertOut {
    pub data: Vec<AlertOut>,
}

fn recipient_out(r: Recipient) -> AlertRecipientOut {
    AlertRecipientOut {
        rules: rules_of(&r.rules)
            .into_iter()
            .map(|r| r.name().to_owned())
            .collect(),
        id: r.id,
        channel: r.channel,
        address: r.address,
        created_at: format_ms(r.created_at),
    }
}

pub fn alert_out(n: Notification) -> AlertOut {
    AlertOut {
        id: n.id,
        channel: n.channel,
        address: n.address,
        rule: n.rule,
        endpoint_id: n.endpoint_id,
        status: n.status.name().to_owned(),
        attempts: n.attempts,
        result: n.result,
        created_at: format_ms(n.created_at),
        sent_at: n.sent_at.map(format_ms),
    }
}

/// hookbox: who hears about this application's failing webhooks.
#[utoipa::path(
    get,
    path = "/api/v1/app/{app_id}/alert-recipient",
    operation_id = "v1.application.alert-recipient.list",
    tag = "Alerts",
    params(AppPath),
    responses((status = 200, description = "OK", body = ListAlertRecipientOut), ReadErrors)
)]
pub async fn list(st: Data, _who: Caller, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let app = find_app(&st, &req).await?;
    let data = st
        .store
        .alert_recipients(Some(app.id.to_string()))
        .await?
        .into_iter()
        .map(recipient_out)
        .collect();
    Ok(json(StatusCode::OK, &ListAlertRecipientOut { data }))
}

/// hookbox: tell someone (by email, or in a chat) when this application's webhooks fail.
#[utoipa::path(
    post,
    path = "/api/v1/app/{app_id}/alert-recipient",
    operation_id = "v1.application.alert-recipient.create",
    tag = "Alerts",
    params(AppPath),
    request_body = AlertRecipientIn,
    responses(
        (status = 201, description = "Created", body = AlertRecipientOut),
        (status = 409, description = "The address gets alerts already, or the application has \
            as many recipients as it may", body = HttpErrorOut),
        WriteErrors
    )
)]
pub async fn create(
    st: Data,
    _who: Caller,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let app = find_app(&st, &req).await?;
    let input: AlertRecipientIn = body(&st, payload).await?;
    let rules: Option<Vec<String>> = input
        .rules
        .map(|rs| rs.into_iter().map(|r| r.name().to_owned()).collect());
    let parsed = RecipientInput::parse(
        Some(Channel::of_address(&input.address).name()),
        &input.address,
        rules.as_deref(),
    )
    .map_err(|e| ApiError::invalid(&["body", &e.loc.join(".")], e.msg))?;
    match service::add(&st.store, Some(&app.id), parsed, "api", st.now()).await {
        Ok(r) => Ok(json(StatusCode::CREATED, &recipient_out(r))),
        Err(NotAdded::Invalid(e)) => Err(ApiError::invalid(&["body", &e.loc.join(".")], e.msg)),
        Err(NotAdded::Taken(detail)) => Err(ApiError::Conflict {
            code: "conflict",
            detail,
        }),
        Err(NotAdded::Db(e)) => Err(e.into()),
    }
}

/// hookbox: stop telling a recipient about this application's webhooks.
#[utoipa::path(
    delete,
    path = "/api/v1/app/{app_id}/alert-recipient/{recipient_id}",
    operation_id = "v1.application.alert-recipient.delete",
    tag = "Alerts",
    params(AppPath, RecipientPath),
    responses((status = 204, description = "Deleted"), ReadErrors)
)]
pub async fn delete(
    st: Data,
    _who: Caller,
    path: RecipientPath,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let app = find_app(&st, &req).await?;
    if service::remove(&st.store, Some(&app.id), &path.recipient_id).await? {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(ApiError::NotFound("alert recipient"))
    }
}

/// hookbox: the alerts sent (or being sent) to this application's recipients, newest first
/// (the last 100).
#[utoipa::path(
    get,
    path = "/api/v1/app/{app_id}/alert",
    operation_id = "v1.application.alert.list",
    tag = "Alerts",
    params(AppPath),
    responses((status = 200, description = "OK", body = ListAlertOut), ReadErrors)
)]
pub async fn sent(st: Data, _who: Caller, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let app = find_app(&st, &req).await?;
    let data = st
        .store
        .notifications(Some(app.id.to_string()), 100)
        .await?
        .into_iter()
        .map(alert_out)
        .collect();
    Ok(json(StatusCode::OK, &ListAlertOut { data }))
}
