//! An endpoint's Testing tab: send a test event and see the answer inline.

use super::logs::code;
use super::*;

/// What a test send got back, shown inline.
pub struct TestResult {
    pub ok: bool,
    pub event_type: String,
    pub code: String,
    pub duration_ms: i64,
    pub body: String,
    pub error: Option<String>,
    pub attempt_link: String,
}

#[derive(Template)]
#[template(path = "admin/endpoints/testing.html")]
struct TestingPage {
    chrome: Chrome,
    head: Head,
    types: Vec<TypeOption>,
    selected: String,
    /// The payload to send: empty means the event type's example.
    payload: String,
    error: Option<String>,
    payload_error: Option<String>,
    result: Option<TestResult>,
}

/// An event type offered for a test send, with the example it sends by default.
pub struct TypeOption {
    pub name: String,
    pub example: String,
}

async fn type_options(st: &Data, app: &App) -> Result<Vec<TypeOption>, ConsoleError> {
    Ok(catalog(st, app)
        .await?
        .into_iter()
        .map(|t| TypeOption {
            example: service::example_payload(&t, 0),
            name: t.name,
        })
        .collect())
}

pub async fn testing(
    st: Data,
    admin: Admin,
    req: HttpRequest,
) -> Result<HttpResponse, ConsoleError> {
    admin.may_change()?;
    let (head, _) = find_endpoint(&st, &req, "testing").await?;
    let types = type_options(&st, &head.app).await?;
    page(&TestingPage {
        chrome: admin.chrome("apps"),
        selected: types.first().map(|t| t.name.clone()).unwrap_or_default(),
        head,
        types,
        payload: String::new(),
        error: None,
        payload_error: None,
        result: None,
    })
}

/// Sends an event to this endpoint now (the event type's example, or the payload given),
/// waits for the answer and shows it; the message and the attempt (trigger "test") are
/// recorded.
pub async fn send_test(
    st: Data,
    req: HttpRequest,
    Posted { admin, form }: Posted,
) -> Result<HttpResponse, ConsoleError> {
    let (head, _) = find_endpoint(&st, &req, "testing").await?;
    let types = type_options(&st, &head.app).await?;
    let name = form.get("event_type").to_owned();
    // Browsers send a textarea's line breaks as CRLF; send the payload with the LF the page
    // showed (JSON has no raw line breaks inside strings, so only whitespace changes).
    let text = form.get("payload").replace("\r\n", "\n");
    let et = if crate::domain::validate::is_valid_event_type(&name) {
        st.store.event_type(&name).await?
    } else {
        None
    };
    let et = et.filter(|t| !t.archived);
    let payload = match text.as_str() {
        "" => Ok(et.as_ref().map(|t| service::example_payload(t, 0))),
        t if t.len() > st.cfg.api.max_payload_bytes => Err(format!(
            "The payload is larger than {} bytes.",
            st.cfg.api.max_payload_bytes
        )),
        t => match serde_json::from_str::<&serde_json::value::RawValue>(t) {
            Ok(_) if too_deep(t) => Err(format!(
                "The payload nests more than {MAX_JSON_DEPTH} levels of arrays and objects."
            )),
            Ok(v) if v.get().trim_start().starts_with('{') => Ok(Some(t.to_owned())),
            Ok(_) => Err("The payload must be a JSON object.".to_owned()),
            Err(e) => Err(format!("This is not valid JSON: {e}.")),
        },
    };
    let (Some(et), Ok(Some(payload))) = (&et, &payload) else {
        return page_with(
            StatusCode::UNPROCESSABLE_ENTITY,
            &TestingPage {
                chrome: admin.chrome("apps"),
                head,
                types,
                selected: name,
                payload: text,
                error: et
                    .is_none()
                    .then(|| "Choose an event type from the event catalog.".into()),
                payload_error: payload.err(),
                result: None,
            },
        );
    };
    let outcome = service::send_test(
        &st.store,
        &st.dispatcher,
        st.cfg.retention.payload,
        &head.app,
        &head.ep,
        &et.name,
        payload.as_str().into(),
    )
    .await?
    .ok_or(ConsoleError::NotFound("endpoint"))?;
    let record = outcome.record;
    // The operator may know what an internal name resolves to; a portal user may not.
    let error = match outcome.refused_detail {
        Some(detail) if admin.portal.is_none() => Some(detail),
        _ => record.error,
    };
    // The header's status badge counts this attempt too.
    let health = st
        .store
        .endpoint_health(&head.ep.id, now_ms() - DAY)
        .await?;
    let head = Head {
        badge: badge(&head.ep, &health),
        ..head
    };
    let attempt_link = format!(
        "{}/attempts/{}/{}",
        head.base, record.msg_id, record.attempt_id
    );
    let result = TestResult {
        ok: record.succeeded,
        event_type: et.name.clone(),
        code: code(record.status_code),
        duration_ms: record.duration_ms,
        body: record.response,
        error,
        attempt_link,
    };
    page(&TestingPage {
        chrome: admin.chrome("apps"),
        head,
        types,
        selected: et.name.clone(),
        payload: text,
        error: None,
        payload_error: None,
        result: Some(result),
    })
}
