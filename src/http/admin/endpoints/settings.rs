//! Adding an endpoint, its settings tab, and deleting it.

use super::*;

/// The endpoint form as shown: values, checkboxes and errors next to each field.
#[derive(Default)]
pub struct Fields {
    pub groups: Vec<Group>,
    pub all_events: bool,
    pub url: String,
    pub description: String,
    pub channels: String,
    pub rate_limit: String,
    /// Custom headers, one `Name: value` per line.
    pub headers: String,
    pub headers_error: Option<String>,
    /// Verify the receiver's TLS certificate (on unless turned off).
    pub verify_ssl: bool,
    /// Also send `X-Webhook-Signature-256: sha256=<hex>`.
    pub legacy_signature: bool,
    pub url_error: Option<String>,
    pub events_error: Option<String>,
    pub channels_error: Option<String>,
    pub rate_error: Option<String>,
    pub error: Option<String>,
}

impl Fields {
    /// The form filled in from an endpoint (or empty, for a new one).
    async fn of(st: &Data, app: &App, ep: Option<&Endpoint>) -> Result<Fields, ConsoleError> {
        let checked = ep.and_then(|e| e.filter_types.clone()).unwrap_or_default();
        Ok(Fields {
            groups: groups(catalog(st, app).await?, &checked),
            all_events: ep.is_none_or(|e| e.filter_types.is_none()),
            url: ep.map(|e| e.url.clone()).unwrap_or_default(),
            description: ep.map(|e| e.description.clone()).unwrap_or_default(),
            channels: ep
                .and_then(|e| e.channels.as_ref())
                .map(|c| c.join(", "))
                .unwrap_or_default(),
            rate_limit: ep
                .and_then(|e| e.rate_limit)
                .map(|r| r.to_string())
                .unwrap_or_default(),
            headers: ep
                .map(|e| {
                    e.headers
                        .iter()
                        .map(|(k, v)| format!("{k}: {}", crate::domain::headers::shown(k, v)))
                        .collect::<Vec<_>>()
                        .join("\n")
                })
                .unwrap_or_default(),
            verify_ssl: ep.is_none_or(|e| e.verify_ssl),
            legacy_signature: ep.is_some_and(|e| e.legacy_signature),
            ..Fields::default()
        })
    }
}

/// A submitted endpoint form, checked by the rules the API applies (`EndpointInput`).
struct Submitted {
    events: Vec<String>,
    all_events: bool,
    channels: Vec<String>,
    rate_raw: String,
    rate_error: Option<String>,
    url: String,
    description: String,
    headers_raw: String,
    headers: Result<std::collections::BTreeMap<String, String>, String>,
    verify_ssl: bool,
    legacy_signature: bool,
}

/// `Name: value` lines (blank lines ignored) as a header map.
fn parse_headers(raw: &str) -> Result<std::collections::BTreeMap<String, String>, String> {
    raw.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (k, v) = l
                .split_once(':')
                .ok_or_else(|| format!("`{l}` is not `Name: value`"))?;
            Ok((k.trim().to_owned(), v.trim().to_owned()))
        })
        .collect()
}

impl Submitted {
    fn parse(form: &crate::http::admin::Form) -> Submitted {
        let events = form.all("events");
        let rate_raw = form.get("rate_limit").to_owned();
        let rate_ok = rate_raw.is_empty() || rate_raw.parse::<u32>().is_ok_and(|r| r > 0);
        Submitted {
            all_events: form.get("all_events") == "1" || events.is_empty(),
            events,
            channels: form
                .get("channels")
                .split([',', ' ', '\n'])
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(str::to_owned)
                .collect(),
            rate_error: (!rate_ok)
                .then(|| "a whole number of messages per second, at least 1".to_owned()),
            rate_raw,
            url: form.get("url").to_owned(),
            description: form.get("description").to_owned(),
            headers: parse_headers(form.get("headers")),
            headers_raw: form.get("headers").to_owned(),
            verify_ssl: form.get("verify_ssl") == "1",
            legacy_signature: form.get("legacy_signature") == "1",
        }
    }

    /// A new endpoint from the form, or the form with its errors.
    async fn validate(self, st: &Data, app: &App) -> Result<(Endpoint, SigningKey), Fields> {
        let input = EndpointInput {
            url: self.url.clone(),
            description: self.description.clone(),
            throttle_rate: self.rate_raw.parse().ok(),
            event_types: (!self.all_events).then(|| self.events.clone()),
            channels: (!self.channels.is_empty()).then(|| self.channels.clone()),
            headers: self.headers.clone().ok(),
            legacy_signature: self.legacy_signature,
            verify_ssl: Some(self.verify_ssl),
            ..EndpointInput::default()
        };
        let failure = match (
            self.rate_error.is_none() && self.headers.is_ok(),
            input
                .parse(&st.store, app, st.cfg.delivery.https_only)
                .await,
        ) {
            (true, Ok(ok)) => return Ok(ok),
            (_, Err(Rejected::Invalid(e))) => Some(Ok(e)),
            (_, Err(Rejected::Db(e))) => {
                Some(Err(crate::http::error::ApiError::from(e).to_string()))
            }
            (false, Ok(_)) => None,
        };
        let invalid = failure.as_ref().and_then(|f| f.as_ref().ok());
        let located = |field: &str| invalid.and_then(|e| field_error(e, field));
        let url_error = located("url");
        let events_error = located("filterTypes");
        let channels_error = located("channels");
        let headers_error = self.headers.err().or_else(|| located("headers"));
        let placed = url_error.is_some()
            || events_error.is_some()
            || channels_error.is_some()
            || headers_error.is_some();
        let error = match failure {
            Some(Ok(_)) if placed => None,
            Some(Ok(e)) => Some(e.msg),
            Some(Err(other)) => Some(other),
            None => None,
        };
        let groups = match catalog(st, app).await {
            Ok(types) => groups(types, &self.events),
            Err(_) => Vec::new(),
        };
        Err(Fields {
            groups,
            all_events: self.all_events,
            url: self.url,
            description: self.description,
            channels: self.channels.join(", "),
            rate_limit: self.rate_raw,
            headers: self.headers_raw,
            headers_error,
            verify_ssl: self.verify_ssl,
            legacy_signature: self.legacy_signature,
            url_error,
            events_error,
            channels_error,
            rate_error: self.rate_error,
            error,
        })
    }
}

#[derive(Template)]
#[template(path = "admin/endpoints/new.html")]
struct NewPage {
    chrome: Chrome,
    app: App,
    f: Fields,
}

pub async fn new_form(
    st: Data,
    admin: Admin,
    req: HttpRequest,
) -> Result<HttpResponse, ConsoleError> {
    let app = find_app(&st, &req).await?;
    let f = Fields::of(&st, &app, None).await?;
    page(&NewPage {
        chrome: admin.chrome("apps"),
        app,
        f,
    })
}

pub async fn create(
    st: Data,
    req: HttpRequest,
    Posted { admin, form }: Posted,
) -> Result<HttpResponse, ConsoleError> {
    let app = find_app(&st, &req).await?;
    match Submitted::parse(&form).validate(&st, &app).await {
        Ok((ep, key)) => {
            let id = ep.id.clone();
            service::create(&st.store, &st.dispatcher, ep, key).await?;
            Ok(redirect(&format!(
                "{}/apps/{}/endpoints/{id}?ok=endpoint-created",
                admin.root(),
                app.id
            )))
        }
        Err(f) => page_with(
            StatusCode::UNPROCESSABLE_ENTITY,
            &NewPage {
                chrome: admin.chrome("apps"),
                app,
                f,
            },
        ),
    }
}

#[derive(Template)]
#[template(path = "admin/endpoints/edit.html")]
struct EditPage {
    chrome: Chrome,
    head: Head,
    f: Fields,
}

pub async fn edit_form(
    st: Data,
    admin: Admin,
    req: HttpRequest,
) -> Result<HttpResponse, ConsoleError> {
    let (head, _) = find_endpoint(&st, &req, "settings").await?;
    let f = Fields::of(&st, &head.app, Some(&head.ep)).await?;
    page(&EditPage {
        chrome: admin.chrome("apps"),
        head,
        f,
    })
}

/// Saves URL, description, event types, channels and rate limit (the rest is kept).
pub async fn update(
    st: Data,
    req: HttpRequest,
    Posted { admin, form }: Posted,
) -> Result<HttpResponse, ConsoleError> {
    let (head, _) = find_endpoint(&st, &req, "settings").await?;
    match Submitted::parse(&form).validate(&st, &head.app).await {
        Ok((valid, _)) => {
            let mut ep = head.ep.clone();
            ep.url = valid.url;
            ep.description = valid.description;
            ep.filter_types = valid.filter_types;
            ep.channels = valid.channels;
            ep.rate_limit = valid.rate_limit;
            // Credentials were shown redacted: sent back unchanged, they stay as stored.
            ep.headers = crate::domain::headers::keep_redacted(valid.headers, &head.ep.headers);
            ep.verify_ssl = valid.verify_ssl;
            ep.legacy_signature = valid.legacy_signature;
            ep.updated_at = now_ms();
            service::update(&st.store, &st.dispatcher, ep).await?;
            Ok(redirect(&format!("{}?ok=endpoint-saved", head.base)))
        }
        Err(f) => page_with(
            StatusCode::UNPROCESSABLE_ENTITY,
            &EditPage {
                chrome: admin.chrome("apps"),
                head,
                f,
            },
        ),
    }
}

#[derive(Template)]
#[template(path = "admin/endpoints/delete.html")]
struct DeletePage {
    chrome: Chrome,
    head: Head,
}

pub async fn confirm_delete(
    st: Data,
    admin: Admin,
    req: HttpRequest,
) -> Result<HttpResponse, ConsoleError> {
    let (head, _) = find_endpoint(&st, &req, "settings").await?;
    page(&DeletePage {
        chrome: admin.chrome("apps"),
        head,
    })
}

pub async fn delete(
    st: Data,
    req: HttpRequest,
    Posted { admin, .. }: Posted,
) -> Result<HttpResponse, ConsoleError> {
    let (head, _) = find_endpoint(&st, &req, "settings").await?;
    service::delete(&st.store, &st.dispatcher, head.app.clone(), &head.ep).await?;
    Ok(redirect(&format!(
        "{}/apps/{}/webhooks?ok=endpoint-deleted",
        admin.root(),
        head.app.id
    )))
}
