//! Adding an endpoint, its settings tab, and deleting it.

use super::*;
use crate::domain::model::DeliveryPolicy;
use crate::domain::signing::{HeaderFormat, SignatureHeader, SignatureVersion};

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
    /// One message at a time, in the order accepted.
    pub ordered: bool,
    /// This endpoint's retry schedule ("5s, 5m, 30m"; `none`: no retry; empty: the server's).
    pub retry_schedule: String,
    /// Its request timeout ("10s"; empty: the server's).
    pub timeout: String,
    /// Its auto-disable period ("2days", `0`: never; empty: the server's).
    pub auto_disable_after: String,
    /// A signature header in another sender's style: its format (empty: none), name and
    /// event-id header.
    pub signature_format: String,
    pub signature_name: String,
    pub event_id_header: String,
    pub signature_error: Option<String>,
    /// The styles to choose from: name and what the value looks like.
    pub styles: Vec<(&'static str, &'static str)>,
    /// The server's settings, shown where the endpoint has none of its own.
    pub server_schedule: String,
    pub server_timeout: String,
    pub server_auto_disable: String,
    pub retry_error: Option<String>,
    pub timeout_error: Option<String>,
    pub auto_disable_error: Option<String>,
    pub url_error: Option<String>,
    pub events_error: Option<String>,
    pub channels_error: Option<String>,
    pub rate_error: Option<String>,
    pub error: Option<String>,
    /// The payload filter as typed (empty: none), and why it was refused.
    pub filter: String,
    pub filter_error: Option<String>,
    /// "Test this filter" against an example payload of an event type, or against a recent
    /// message (its id; empty: the example).
    pub filter_example: String,
    pub filter_event_type: String,
    pub filter_message: String,
    /// Recent messages of the application to test against: id and what it was.
    pub recent: Vec<(String, String)>,
    /// `v1` or `v1a` signatures, and whether that is fixed (an existing endpoint).
    pub signature_version: String,
    pub version_fixed: bool,
    /// What the filter did with the test message: its box's class (`notice`, `warning`,
    /// `alert`) and text.
    pub filter_test: Option<(&'static str, String)>,
}

/// Seconds as the console shows them: `5m`, `2h`, `1day`.
fn shown_secs(secs: u32) -> String {
    humantime::format_duration(std::time::Duration::from_secs(u64::from(secs))).to_string()
}

/// A duration typed in a form (`30s`, `5m`, `2h`, `0`), in whole seconds.
fn form_secs(raw: &str) -> Result<u32, String> {
    let raw = raw.trim();
    if raw == "0" {
        return Ok(0);
    }
    let d = humantime::parse_duration(raw)
        .map_err(|_| format!("`{raw}` is not a duration like 30s, 5m or 2h"))?;
    u32::try_from(d.as_secs()).map_err(|_| format!("`{raw}` is too long"))
}

/// A retry schedule typed in a form: empty for the server's, `none` for no retry, else
/// comma-separated durations.
fn form_schedule(raw: &str) -> Result<Option<Vec<u32>>, String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    if raw.eq_ignore_ascii_case("none") {
        return Ok(Some(Vec::new()));
    }
    raw.split(',')
        .map(form_secs)
        .collect::<Result<_, _>>()
        .map(Some)
}

impl Fields {
    /// The server's delivery settings, as hints next to the endpoint's own, and the
    /// signature styles to choose from.
    fn with_server(mut self, d: &crate::config::DeliveryConfig) -> Fields {
        self.styles = HeaderFormat::ALL
            .iter()
            .map(|f| (f.name(), f.label()))
            .collect();
        self.server_schedule = d
            .retry_schedule
            .iter()
            .skip(1)
            .map(|w| humantime::format_duration(*w).to_string())
            .collect::<Vec<_>>()
            .join(", ");
        self.server_timeout = humantime::format_duration(d.request_timeout).to_string();
        self.server_auto_disable = if d.auto_disable_after.is_zero() {
            "never".into()
        } else {
            humantime::format_duration(d.auto_disable_after).to_string()
        };
        self
    }
}

impl Fields {
    /// The form filled in from an endpoint (or empty, for a new one).
    async fn of(st: &Data, app: &App, ep: Option<&Endpoint>) -> Result<Fields, ConsoleError> {
        let checked = ep.and_then(|e| e.filter_types.clone()).unwrap_or_default();
        let types = catalog(st, app).await?;
        Ok(Fields {
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
            ordered: ep.is_some_and(|e| e.ordered),
            retry_schedule: ep
                .and_then(|e| e.policy.retry_schedule.as_ref())
                .map(|s| {
                    if s.is_empty() {
                        "none".to_owned()
                    } else {
                        s.iter()
                            .map(|w| shown_secs(*w))
                            .collect::<Vec<_>>()
                            .join(", ")
                    }
                })
                .unwrap_or_default(),
            signature_format: ep
                .and_then(|e| e.signature_header.as_ref())
                .map(|h| h.format.name().to_owned())
                .unwrap_or_default(),
            signature_name: ep
                .and_then(|e| e.signature_header.as_ref())
                .map(|h| h.name.clone())
                .unwrap_or_default(),
            event_id_header: ep
                .and_then(|e| e.signature_header.as_ref())
                .and_then(|h| h.event_id_header.clone())
                .unwrap_or_default(),
            timeout: ep
                .and_then(|e| e.policy.timeout_secs)
                .map(shown_secs)
                .unwrap_or_default(),
            auto_disable_after: ep
                .and_then(|e| e.policy.auto_disable_after_secs)
                .map(|a| {
                    if a == 0 {
                        "0".to_owned()
                    } else {
                        shown_secs(a)
                    }
                })
                .unwrap_or_default(),
            filter: ep.and_then(|e| e.filter.clone()).unwrap_or_default(),
            signature_version: ep
                .map(|e| e.signature_version)
                .unwrap_or_default()
                .name()
                .to_owned(),
            version_fixed: ep.is_some(),
            ..Fields::default()
        }
        .with_server(&st.cfg.delivery)
        .with_catalog(st, app, types, &checked)
        .await)
    }

    /// The event types to choose from (`checked` ticked), and the filter tester's choices:
    /// recent messages of `app`, and an example payload of the first of the `checked` event
    /// types (or of the catalog's), unless one was typed.
    async fn with_catalog(
        mut self,
        st: &Data,
        app: &App,
        types: Vec<EventType>,
        checked: &[String],
    ) -> Fields {
        let page = PageQuery {
            limit: 10,
            after: None,
            before: None,
            descending: true,
        };
        if let Ok(p) = st.store.messages(&app.id, Default::default(), &page).await {
            self.recent = p
                .items
                .into_iter()
                .map(|m| {
                    let when = crate::domain::time::format_ms(m.created_at);
                    let label = format!("{} · {} · {when}", m.id, m.event_type);
                    (m.id.to_string(), label)
                })
                .collect();
        }
        if self.filter_example.is_empty() {
            let et = types
                .iter()
                .find(|t| checked.contains(&t.name))
                .or(types.first());
            self.filter_event_type = et.map(|t| t.name.clone()).unwrap_or_default();
            self.filter_example =
                et.map_or_else(|| "{}".to_owned(), |t| service::example_payload(t, 0));
        }
        self.groups = groups(types, checked);
        self
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
    ordered: bool,
    /// The delivery policy as typed: schedule, timeout, auto-disable.
    policy_raw: (String, String, String),
    /// The signature header as typed: format, name, event-id header.
    signature_raw: (String, String, String),
    signature: Result<Option<SignatureHeader>, String>,
    schedule: Result<Option<Vec<u32>>, String>,
    timeout: Result<Option<u32>, String>,
    auto_disable: Result<Option<u32>, String>,
    filter: String,
    /// `v1` or `v1a` as chosen (kept as it was for an existing endpoint), and whether it is
    /// fixed.
    signature_version: String,
    version_fixed: bool,
    /// The filter tester's example payload, its event type, and the recent message chosen.
    filter_example: String,
    filter_event_type: String,
    filter_message: String,
    /// "Test this filter" was pressed: nothing is saved.
    testing: bool,
}

/// A signature header chosen in a form: none without a format; else it needs a name.
fn form_signature(
    format: &str,
    name: &str,
    event_id_header: &str,
) -> Result<Option<SignatureHeader>, String> {
    if format.is_empty() {
        return Ok(None);
    }
    let format = HeaderFormat::parse(format).ok_or_else(|| format!("unknown style `{format}`"))?;
    let name = name.trim();
    if name.is_empty() {
        return Err("name the header it goes in (for example X-Hub-Signature-256)".into());
    }
    let id = event_id_header.trim();
    Ok(Some(SignatureHeader {
        name: name.to_owned(),
        format,
        event_id_header: (!id.is_empty()).then(|| id.to_owned()),
    }))
}

/// An optional duration typed in a form (empty: none).
fn form_optional_secs(raw: &str) -> Result<Option<u32>, String> {
    if raw.trim().is_empty() {
        Ok(None)
    } else {
        form_secs(raw).map(Some)
    }
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
            ordered: form.get("ordered") == "1",
            schedule: form_schedule(form.get("retry_schedule")),
            timeout: form_optional_secs(form.get("timeout")),
            auto_disable: form_optional_secs(form.get("auto_disable_after")),
            signature: form_signature(
                form.get("signature_format"),
                form.get("signature_name"),
                form.get("event_id_header"),
            ),
            signature_raw: (
                form.get("signature_format").to_owned(),
                form.get("signature_name").to_owned(),
                form.get("event_id_header").to_owned(),
            ),
            policy_raw: (
                form.get("retry_schedule").to_owned(),
                form.get("timeout").to_owned(),
                form.get("auto_disable_after").to_owned(),
            ),
            filter: form.get("filter").to_owned(),
            signature_version: form.get("signature_version").to_owned(),
            version_fixed: form.get("version_fixed") == "1",
            filter_example: form.get("filter_example").to_owned(),
            filter_event_type: form.get("filter_event_type").trim().to_owned(),
            filter_message: form.get("filter_message").to_owned(),
            testing: form.get("action") == "test-filter",
        }
    }

    /// The form as typed, without errors.
    fn as_typed(&self) -> Fields {
        Fields {
            all_events: self.all_events,
            url: self.url.clone(),
            description: self.description.clone(),
            channels: self.channels.join(", "),
            rate_limit: self.rate_raw.clone(),
            headers: self.headers_raw.clone(),
            verify_ssl: self.verify_ssl,
            legacy_signature: self.legacy_signature,
            ordered: self.ordered,
            retry_schedule: self.policy_raw.0.clone(),
            timeout: self.policy_raw.1.clone(),
            auto_disable_after: self.policy_raw.2.clone(),
            signature_format: self.signature_raw.0.clone(),
            signature_name: self.signature_raw.1.clone(),
            event_id_header: self.signature_raw.2.clone(),
            filter: self.filter.clone(),
            signature_version: self.signature_version.clone(),
            version_fixed: self.version_fixed,
            filter_example: self.filter_example.clone(),
            filter_event_type: self.filter_event_type.clone(),
            filter_message: self.filter_message.clone(),
            ..Fields::default()
        }
    }

    /// The form as typed, with what its filter does with the chosen message ("Test this
    /// filter"); nothing is saved.
    async fn tested(self, st: &Data, app: &App) -> Fields {
        use crate::domain::filter::Verdict;
        let mut f = self.as_typed();
        let chosen = if self.filter_message.is_empty() {
            let example = serde_json::from_str::<serde_json::Value>(&self.filter_example);
            match example {
                Ok(_) => Ok(None),
                Err(e) => Err(format!("The example payload is not JSON: {e}")),
            }
        } else {
            match st.store.message(&app.id, &self.filter_message).await {
                Ok(Some(m)) if m.payload.is_some() => Ok(Some(m)),
                Ok(Some(_)) => Err("That message's content was deleted.".to_owned()),
                Ok(None) => Err("No such message in this application.".to_owned()),
                Err(e) => Err(crate::http::error::ApiError::from(e).to_string()),
            }
        };
        let outcome = chosen.map(|m| match &m {
            Some(m) => service::test_filter(
                &self.filter,
                &m.event_type,
                m.payload.as_deref().unwrap_or("{}"),
                m.channels.as_deref(),
                m.tags.as_deref(),
            ),
            None => service::test_filter(
                &self.filter,
                &self.filter_event_type,
                &self.filter_example,
                None,
                None,
            ),
        });
        f.filter_test = Some(match outcome {
            Ok(Verdict::Takes) => ("notice", "Sent: the filter takes this message.".to_owned()),
            Ok(Verdict::Leaves) => (
                "warning",
                "Filtered out: the filter does not take this message.".to_owned(),
            ),
            Ok(Verdict::CannotTell(why)) => (
                "alert",
                format!("Filtered out: the filter cannot tell for this message ({why})."),
            ),
            Ok(Verdict::DoesNotCompile(why)) => {
                f.filter_error = Some(why);
                ("alert", "The filter does not compile.".to_owned())
            }
            Err(why) => ("alert", why),
        });
        let types = catalog(st, app).await.unwrap_or_default();
        f.with_server(&st.cfg.delivery)
            .with_catalog(st, app, types, &self.events)
            .await
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
            ordered: self.ordered,
            verify_ssl: Some(self.verify_ssl),
            policy: DeliveryPolicy {
                retry_schedule: self.schedule.clone().unwrap_or_default(),
                timeout_secs: self.timeout.clone().unwrap_or_default(),
                auto_disable_after_secs: self.auto_disable.clone().unwrap_or_default(),
            },
            signature_header: self.signature.clone().unwrap_or_default(),
            filter: Some(self.filter.clone()),
            signature_version: SignatureVersion::parse(&self.signature_version),
            ..EndpointInput::default()
        };
        let typed = self.schedule.is_ok()
            && self.timeout.is_ok()
            && self.auto_disable.is_ok()
            && self.signature.is_ok();
        let failure = match (
            self.rate_error.is_none() && self.headers.is_ok() && typed,
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
        let typed = self.as_typed();
        let invalid = failure.as_ref().and_then(|f| f.as_ref().ok());
        let located = |field: &str| invalid.and_then(|e| field_error(e, field));
        let url_error = located("url");
        let events_error = located("filterTypes");
        let channels_error = located("channels");
        let headers_error = self.headers.err().or_else(|| located("headers"));
        let retry_error = self.schedule.err().or_else(|| located("retrySchedule"));
        let timeout_error = self.timeout.err().or_else(|| located("timeoutSeconds"));
        let auto_disable_error = self
            .auto_disable
            .err()
            .or_else(|| located("autoDisableAfterSeconds"));
        let filter_error = located("filter");
        let signature_error = self
            .signature
            .err()
            .or_else(|| located("name"))
            .or_else(|| located("eventIdHeader"))
            .or_else(|| located("signatureHeader"))
            .or_else(|| located("legacySignature"));
        let placed = signature_error.is_some()
            || filter_error.is_some()
            || url_error.is_some()
            || events_error.is_some()
            || channels_error.is_some()
            || headers_error.is_some()
            || retry_error.is_some()
            || timeout_error.is_some()
            || auto_disable_error.is_some();
        let error = match failure {
            Some(Ok(_)) if placed => None,
            Some(Ok(e)) => Some(e.msg),
            Some(Err(other)) => Some(other),
            None => None,
        };
        let types = catalog(st, app).await.unwrap_or_default();
        Err(Fields {
            headers_error,
            retry_error,
            timeout_error,
            auto_disable_error,
            signature_error,
            filter_error,
            url_error,
            events_error,
            channels_error,
            rate_error: self.rate_error,
            error,
            ..typed
        }
        .with_server(&st.cfg.delivery)
        .with_catalog(st, app, types, &self.events)
        .await)
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
    admin.may_change()?;
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
    let submitted = Submitted::parse(&form);
    if submitted.testing {
        let f = submitted.tested(&st, &app).await;
        return page(&NewPage {
            chrome: admin.chrome("apps"),
            app,
            f,
        });
    }
    match submitted.validate(&st, &app).await {
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
    admin.may_change()?;
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
    let submitted = Submitted::parse(&form);
    if submitted.testing {
        let f = submitted.tested(&st, &head.app).await;
        return page(&EditPage {
            chrome: admin.chrome("apps"),
            head,
            f,
        });
    }
    match submitted.validate(&st, &head.app).await {
        Ok((valid, _)) => {
            // The form's fields replace what is stored; the rest (enabled or not, its state)
            // is kept as stored when the change is made.
            service::edit(&st.store, &st.dispatcher, &head.app.id, &head.ep.id, |ep| {
                let valid = valid.clone();
                ep.url = valid.url;
                ep.description = valid.description;
                ep.filter_types = valid.filter_types;
                ep.channels = valid.channels;
                ep.rate_limit = valid.rate_limit;
                // Credentials were shown redacted: sent back unchanged, they stay as stored.
                ep.headers = crate::domain::headers::keep_redacted(valid.headers, &ep.headers);
                ep.verify_ssl = valid.verify_ssl;
                ep.legacy_signature = valid.legacy_signature;
                ep.ordered = valid.ordered;
                ep.policy = valid.policy;
                ep.signature_header = valid.signature_header;
                ep.filter = valid.filter;
                Ok::<_, ConsoleError>(())
            })
            .await?
            .ok_or(ConsoleError::NotFound("endpoint"))?;
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
    admin.may_change()?;
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
