//! An endpoint's message logs, an attempt's detail, and resend.

use super::*;

pub struct LogRow {
    pub id: String,
    pub msg_id: String,
    pub ok: bool,
    pub time: String,
    pub event_type: String,
    pub code: String,
    pub duration: i64,
    pub trigger: &'static str,
    /// A message the endpoint's payload filter did not take (no attempt): why.
    pub filtered: Option<String>,
}

#[derive(Template)]
#[template(path = "admin/endpoints/logs.html")]
struct LogsPage {
    chrome: Chrome,
    head: Head,
    rows: Vec<LogRow>,
    filter: &'static str,
    /// The event type filtered on ("" for all) and the choices.
    event_type: String,
    types: Vec<String>,
    /// (label, link, current) for each status filter, keeping the event type.
    status_links: Vec<(&'static str, String, bool)>,
    newest: String,
    older: Option<String>,
    first_page: bool,
}

pub(super) fn code(status: i64) -> String {
    if status == 0 {
        "no response".to_owned()
    } else {
        status.to_string()
    }
}

pub async fn logs(st: Data, admin: Admin, req: HttpRequest) -> Result<HttpResponse, ConsoleError> {
    let (head, _) = find_endpoint(&st, &req, "logs").await?;
    let q = Query::parse(req.query_string());
    let (filter, status) = match q.str("status") {
        Some("succeeded") => (
            "succeeded",
            Some(crate::domain::model::DeliveryStatus::Success),
        ),
        Some("failed") => ("failed", Some(crate::domain::model::DeliveryStatus::Failed)),
        Some("filtered") => (
            "filtered",
            Some(crate::domain::model::DeliveryStatus::Filtered),
        ),
        _ => ("all", None),
    };
    let after = q
        .str("after")
        .filter(|a| crate::domain::validate::is_valid_uid(a))
        .map(str::to_owned);
    let first_page = after.is_none();
    let event_type = q
        .str("event_type")
        .filter(|t| crate::domain::validate::is_valid_event_type(t))
        .unwrap_or_default()
        .to_owned();
    let messages = crate::db::MessageFilter {
        event_types: (!event_type.is_empty()).then(|| vec![event_type.clone()]),
        ..Default::default()
    };
    // Links keep the other filter: `?status=…&event_type=…`.
    let link = |status: &str, after: Option<&str>| {
        let mut qs = url::form_urlencoded::Serializer::new(String::new());
        if status != "all" {
            qs.append_pair("status", status);
        }
        if !event_type.is_empty() {
            qs.append_pair("event_type", &event_type);
        }
        if let Some(a) = after {
            qs.append_pair("after", a);
        }
        match qs.finish() {
            q if q.is_empty() => format!("{}/logs", head.base),
            q => format!("{}/logs?{q}", head.base),
        }
    };
    let status_links = [
        ("All", "all"),
        ("Succeeded", "succeeded"),
        ("Failed", "failed"),
        ("Filtered", "filtered"),
    ]
    .into_iter()
    .map(|(label, s)| (label, link(s, None), s == filter))
    .collect();
    let newest = link(filter, None);
    let types = received_types(&st, &head).await?;
    let p = PageQuery {
        limit: LOG_PAGE,
        after,
        before: None,
        descending: true,
    };
    let (rows, older) = if filter == "filtered" {
        // Filtered messages have no attempt: their deliveries are listed.
        let found = st
            .store
            .endpoint_messages(&head.ep.id, status, messages, &p)
            .await?;
        let older = found
            .next_key(|d| d.msg.id.to_string())
            .map(|k| link(filter, Some(&k)));
        let rows = found
            .items
            .into_iter()
            .map(|d| LogRow {
                ok: false,
                time: when(d.msg.created_at),
                event_type: d.msg.event_type,
                code: String::new(),
                duration: 0,
                trigger: "scheduled",
                id: String::new(),
                msg_id: d.msg.id.into(),
                filtered: Some(d.filter_error.map_or_else(
                    || "the filter does not take it".to_owned(),
                    |why| format!("the filter cannot tell: {why}"),
                )),
            })
            .collect();
        (rows, older)
    } else {
        let f = AttemptFilter {
            endpoint_id: Some(head.ep.id.clone()),
            status,
            messages,
            ..AttemptFilter::default()
        };
        let found = st.store.attempts(f, &p).await?;
        let older = found
            .next_key(|a| a.id.to_string())
            .map(|k| link(filter, Some(&k)));
        let rows = found
            .items
            .into_iter()
            .map(|a| LogRow {
                ok: a.status == crate::domain::model::DeliveryStatus::Success,
                time: when(a.created_at),
                event_type: a.msg.map(|m| m.event_type).unwrap_or_default(),
                code: code(a.response_status_code),
                duration: a.response_duration_ms,
                trigger: a.trigger.name(),
                id: a.id.into(),
                msg_id: a.msg_id.into(),
                filtered: None,
            })
            .collect();
        (rows, older)
    };
    let chrome = admin.chrome_with_notice("apps", &req);
    page(&LogsPage {
        chrome,
        head,
        rows,
        filter,
        event_type,
        types,
        status_links,
        newest,
        older,
        first_page,
    })
}

#[derive(Template)]
#[template(path = "admin/endpoints/attempt.html")]
struct AttemptPage {
    chrome: Chrome,
    head: Head,
    a: crate::db::Attempt,
    ok: bool,
    time: String,
    code: String,
    trigger: &'static str,
    event_type: String,
    request_body: String,
}

/// Pretty-prints JSON for reading; anything else is shown as it is.
fn pretty(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| body.to_owned())
}

pub async fn attempt(
    st: Data,
    admin: Admin,
    req: HttpRequest,
) -> Result<HttpResponse, ConsoleError> {
    let (head, _) = find_endpoint(&st, &req, "logs").await?;
    let msg_id = path(&req, "msg_id")?;
    let attempt_id = path(&req, "attempt_id")?;
    let a = st
        .store
        .attempt(msg_id, attempt_id)
        .await?
        .filter(|a| a.endpoint_id == head.ep.id)
        .ok_or(ConsoleError::NotFound("attempt"))?;
    let msg = a.msg.clone();
    page(&AttemptPage {
        chrome: admin.chrome("apps"),
        head,
        ok: a.status == crate::domain::model::DeliveryStatus::Success,
        time: when(a.created_at),
        code: code(a.response_status_code),
        trigger: a.trigger.name(),
        event_type: msg
            .as_ref()
            .map(|m| m.event_type.clone())
            .unwrap_or_default(),
        request_body: msg.and_then(|m| m.payload).map_or_else(
            || "(the payload has been purged by the retention policy)".to_owned(),
            |p| pretty(&p),
        ),
        a,
    })
}

/// Sends a message to this endpoint once more, now.
pub async fn resend(
    st: Data,
    req: HttpRequest,
    _post: Posted,
) -> Result<HttpResponse, ConsoleError> {
    let (head, _) = find_endpoint(&st, &req, "logs").await?;
    let msg_key = path(&req, "msg_id")?;
    let msg = st
        .store
        .message(&head.app.id, msg_key)
        .await?
        .ok_or(ConsoleError::NotFound("message"))?;
    let server = st.cfg.retry_schedule();
    service::resend(&st.store, &st.dispatcher, &server, &msg, &head.ep)
        .await
        .map_err(|e| match e {
            service::ResendError::Disabled => ConsoleError::BadRequest(
                "This endpoint is disabled: enable it before resending messages to it.".into(),
            ),
            service::ResendError::ContentGone => ConsoleError::BadRequest(
                "This message's payload was deleted or has expired: it cannot be sent again."
                    .into(),
            ),
            service::ResendError::NotFor => ConsoleError::NotFound("delivery of this message"),
            service::ResendError::Db(e) => e.into(),
        })?;
    Ok(redirect(&format!("{}/logs?ok=resent", head.base)))
}
