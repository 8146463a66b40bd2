//! Settings → Webhooks: an application's endpoints, adding one, and each endpoint's pages
//! (overview with signing secret and enable/disable, message logs, attempt detail, resend).

use super::apps::{field_error, find_app};
use super::{
    admin, admin_post, page, page_with, path, percent, redirect, root_of, when, Chrome,
    ConsoleError,
};
use crate::db::admin::{self as admin_db, Health};
use crate::db::apps::App;
use crate::db::attempts::{self, AttemptFilter};
use crate::db::endpoints::{self as ep_db, Endpoint};
use crate::db::{deliveries, event_types, messages, PageQuery};
use crate::domain::signing::SigningKey;
use crate::domain::time::now_ms;
use crate::domain::validate::{too_deep, MAX_JSON_DEPTH};
use crate::http::api::{validated_new, EndpointIn};
use crate::http::error::ApiError;
use crate::http::extract::Query;
use crate::http::Data;
use crate::service::endpoints as service;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;

const DAY: i64 = 24 * 3_600_000;
const LOG_PAGE: usize = 25;

/// A status badge: label and CSS class.
pub struct Badge {
    pub label: &'static str,
    pub class: &'static str,
}

fn badge(ep: &Endpoint, h: &Health) -> Badge {
    let (label, class) = match service::status(ep, h) {
        service::Status::Disabled => ("Disabled", "badge-warn"),
        service::Status::Failing => ("Failing", "badge-bad"),
        service::Status::Unknown => ("No recent attempts", "badge-muted"),
        service::Status::Healthy => ("Healthy", "badge-ok"),
    };
    Badge { label, class }
}

pub struct EndpointRow {
    pub id: String,
    pub url: String,
    pub description: String,
    pub badge: Badge,
    pub rate: String,
}

#[derive(Template)]
#[template(path = "admin/endpoints/list.html")]
struct ListPage {
    chrome: Chrome,
    app: App,
    endpoints: Vec<EndpointRow>,
}

pub async fn list(st: Data, req: HttpRequest) -> Result<HttpResponse, ConsoleError> {
    let admin = admin(&st, &req).await?;
    let app = find_app(&st, &req).await?;
    let app_id = app.id.clone();
    let since = now_ms() - DAY;
    let main_key = st.db.main_key.clone();
    let (eps, health) = st
        .db
        .read(move |c| {
            let mut eps = ep_db::all_in_app(c, &main_key, &app_id)?;
            eps.sort_by(|a, b| a.id.cmp(&b.id));
            let ids: Vec<String> = eps.iter().map(|e| e.id.clone()).collect();
            Ok((eps, admin_db::health(c, &ids, since)?))
        })
        .await?;
    let endpoints = eps
        .into_iter()
        .map(|ep| {
            let h = health.get(&ep.id).copied().unwrap_or_default();
            EndpointRow {
                badge: badge(&ep, &h),
                rate: percent(h.success_rate()),
                id: ep.id,
                url: ep.url,
                description: ep.description,
            }
        })
        .collect();
    let chrome = admin.chrome_with_notice("apps", &req);
    page(&ListPage {
        chrome,
        app,
        endpoints,
    })
}

/// Event types for the checkboxes, grouped by their group (or the part of the name before
/// the first `.` or `:`).
pub struct Group<T = TypeBox> {
    pub name: String,
    pub types: Vec<T>,
}

pub struct TypeBox {
    pub name: String,
    pub description: String,
    pub checked: bool,
}

/// An event type's group, or the part of its name before the first `.` or `:`.
pub(super) fn group_of(t: &event_types::EventType) -> String {
    t.group_name
        .clone()
        .filter(|g| !g.is_empty())
        .unwrap_or_else(|| {
            t.name
                .split(['.', ':'])
                .next()
                .filter(|p| p.len() < t.name.len())
                .unwrap_or("other")
                .to_owned()
        })
}

/// Event types grouped (see `group_of`), groups by name, each type made a row by `row`.
pub(super) fn grouped<T>(
    types: Vec<event_types::EventType>,
    row: impl Fn(event_types::EventType) -> T,
) -> Vec<Group<T>> {
    let mut out: Vec<Group<T>> = Vec::new();
    for t in types {
        let group = group_of(&t);
        let r = row(t);
        match out.iter_mut().find(|g| g.name == group) {
            Some(g) => g.types.push(r),
            None => out.push(Group {
                name: group,
                types: vec![r],
            }),
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

fn groups(types: Vec<event_types::EventType>, checked: &[String]) -> Vec<Group> {
    grouped(types, |t| TypeBox {
        checked: checked.contains(&t.name),
        name: t.name,
        description: t.description,
    })
}

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

/// A submitted endpoint form, validated by the API's own rules (`validated_new`).
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
    fn parse(form: &super::Form) -> Submitted {
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
        let input = EndpointIn {
            url: self.url.clone(),
            description: self.description.clone(),
            uid: None,
            throttle_rate: self.rate_raw.parse().ok(),
            disabled: false,
            event_types: (!self.all_events).then(|| self.events.clone()),
            channels: (!self.channels.is_empty()).then(|| self.channels.clone()),
            secret: None,
            metadata: None,
            headers: self.headers.clone().ok(),
            legacy_signature: self.legacy_signature,
            verify_ssl: Some(self.verify_ssl),
        };
        let failure = match (
            self.rate_error.is_none() && self.headers.is_ok(),
            validated_new(st, app, input).await,
        ) {
            (true, Ok(ok)) => return Ok(ok),
            (_, Err(e)) => e,
            (false, Ok(_)) => ApiError::Validation(Vec::new()),
        };
        let url_error = field_error(&failure, "url");
        let events_error = field_error(&failure, "filterTypes");
        let channels_error = field_error(&failure, "channels");
        let headers_error = self
            .headers
            .err()
            .or_else(|| field_error(&failure, "headers"));
        let placed = url_error.is_some()
            || events_error.is_some()
            || channels_error.is_some()
            || headers_error.is_some();
        let error = match &failure {
            ApiError::Validation(_) if placed => None,
            ApiError::Validation(items) => items.first().map(|i| i.msg.clone()),
            other => Some(other.to_string()),
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

/// The event types an endpoint of `app` can subscribe to: the catalog's, or for hookbox's
/// own application the operational events.
async fn catalog(st: &Data, app: &App) -> Result<Vec<event_types::EventType>, ConsoleError> {
    if app.is_operational() {
        return Ok(crate::operational::event_types());
    }
    all_event_types(st, false).await
}

/// Every event type of the catalog (archived ones too, if asked), by name.
pub(super) async fn all_event_types(
    st: &Data,
    include_archived: bool,
) -> Result<Vec<event_types::EventType>, ConsoleError> {
    let q = PageQuery {
        limit: 10_000,
        ..PageQuery::default()
    };
    Ok(st
        .db
        .read(move |c| event_types::list(c, &q, include_archived))
        .await?
        .items)
}

pub async fn new_form(st: Data, req: HttpRequest) -> Result<HttpResponse, ConsoleError> {
    let admin = admin(&st, &req).await?;
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
    body: web::Bytes,
) -> Result<HttpResponse, ConsoleError> {
    let (admin, form) = admin_post(&st, &req, &body).await?;
    let app = find_app(&st, &req).await?;
    match Submitted::parse(&form).validate(&st, &app).await {
        Ok((ep, key)) => {
            let id = ep.id.clone();
            service::create(&st.db, &st.dispatcher, ep, key).await?;
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

pub async fn edit_form(st: Data, req: HttpRequest) -> Result<HttpResponse, ConsoleError> {
    let admin = admin(&st, &req).await?;
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
    body: web::Bytes,
) -> Result<HttpResponse, ConsoleError> {
    let (admin, form) = admin_post(&st, &req, &body).await?;
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
            service::update(&st.db, &st.dispatcher, ep).await?;
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

pub async fn confirm_delete(st: Data, req: HttpRequest) -> Result<HttpResponse, ConsoleError> {
    let admin = admin(&st, &req).await?;
    let (head, _) = find_endpoint(&st, &req, "settings").await?;
    page(&DeletePage {
        chrome: admin.chrome("apps"),
        head,
    })
}

pub async fn delete(
    st: Data,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ConsoleError> {
    let (admin, _) = admin_post(&st, &req, &body).await?;
    let (head, _) = find_endpoint(&st, &req, "settings").await?;
    service::delete(&st.db, &st.dispatcher, head.app.clone(), &head.ep).await?;
    Ok(redirect(&format!(
        "{}/apps/{}/webhooks?ok=endpoint-deleted",
        admin.root(),
        head.app.id
    )))
}

/// What every endpoint page shows at the top.
pub struct Head {
    pub app: App,
    pub ep: Endpoint,
    pub badge: Badge,
    pub tab: &'static str,
    pub base: String,
}

async fn find_endpoint(
    st: &Data,
    req: &HttpRequest,
    tab: &'static str,
) -> Result<(Head, Health), ConsoleError> {
    let app = find_app(st, req).await?;
    let key = path(req, "endpoint_id")?.to_owned();
    let app_id = app.id.clone();
    let since = now_ms() - DAY;
    let main_key = st.db.main_key.clone();
    let (ep, health) = st
        .db
        .read(move |c| {
            let Some(ep) = ep_db::get(c, &main_key, &app_id, &key)? else {
                return Ok(None);
            };
            let h = admin_db::health(c, std::slice::from_ref(&ep.id), since)?
                .remove(&ep.id)
                .unwrap_or_default();
            Ok(Some((ep, h)))
        })
        .await?
        .ok_or(ConsoleError::NotFound("endpoint"))?;
    let base = format!("{}/apps/{}/endpoints/{}", root_of(req), app.id, ep.id);
    Ok((
        Head {
            badge: badge(&ep, &health),
            app,
            ep,
            tab,
            base,
        },
        health,
    ))
}

#[derive(Template)]
#[template(path = "admin/endpoints/overview.html")]
struct OverviewPage {
    chrome: Chrome,
    head: Head,
    rate: String,
    stats: deliveries::Stats,
    disabled_since: String,
    failing_since: String,
    last_attempt: String,
    last_success: String,
    created: String,
    skipped: i64,
    secret: Option<String>,
    /// (form value, label) of each grace period offered when rotating.
    grace_choices: Vec<(&'static str, String)>,
    activity: admin_db::Activity,
    bars: Vec<super::dashboard::Bar>,
    chart_w: i64,
    chart_h: i64,
}

async fn overview_page(
    st: &Data,
    (head, health): (Head, Health),
    chrome: Chrome,
    secret: Option<String>,
) -> Result<HttpResponse, ConsoleError> {
    let id = head.ep.id.clone();
    let now = now_ms();
    let (stats, skipped, activity, times) = st
        .db
        .read(move |c| {
            Ok((
                deliveries::stats(c, &id, None, None)?,
                deliveries::count_skipped(c, &id)?,
                admin_db::endpoint_activity(c, &id, now - DAY)?,
                admin_db::endpoint_times(c, &id)?,
            ))
        })
        .await?;
    page(&OverviewPage {
        chrome,
        rate: percent(health.success_rate()),
        stats,
        disabled_since: head.ep.disabled_at.map_or_else(String::new, when),
        failing_since: times.failing_since.map_or_else(String::new, when),
        last_attempt: times.last_attempt.map_or_else(|| "never".to_owned(), when),
        last_success: times.last_success.map_or_else(|| "never".to_owned(), when),
        created: when(head.ep.created_at),
        skipped,
        secret,
        grace_choices: GRACE_CHOICES
            .iter()
            .map(|&(value, label, hours)| {
                let label = match hours {
                    None => format!("{} (default)", span(st.cfg.api.rotation_grace)),
                    Some(_) => label.to_owned(),
                };
                (value, label)
            })
            .collect(),
        bars: super::dashboard::bars(&activity, now),
        activity,
        chart_w: super::dashboard::CHART_W,
        chart_h: super::dashboard::CHART_H,
        head,
    })
}

pub async fn overview(st: Data, req: HttpRequest) -> Result<HttpResponse, ConsoleError> {
    let admin = admin(&st, &req).await?;
    let chrome = admin.chrome_with_notice("apps", &req);
    let found = find_endpoint(&st, &req, "overview").await?;
    overview_page(&st, found, chrome, None).await
}

/// A duration for people: `24 hours`, `3 days`, `90 minutes`.
fn span(d: std::time::Duration) -> String {
    let mins = d.as_secs() / 60;
    let plural = |n: u64, unit: &str| format!("{n} {unit}{}", if n == 1 { "" } else { "s" });
    if mins >= 72 * 60 && mins.is_multiple_of(24 * 60) {
        plural(mins / (24 * 60), "day")
    } else if mins >= 120 && mins.is_multiple_of(60) {
        plural(mins / 60, "hour")
    } else if mins > 0 {
        plural(mins, "minute")
    } else {
        plural(d.as_secs(), "second")
    }
}

/// Shows the current signing secret (a POST, so it never sits in a URL or a cache).
pub async fn reveal_secret(
    st: Data,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ConsoleError> {
    let (admin, _) = admin_post(&st, &req, &body).await?;
    let found = find_endpoint(&st, &req, "overview").await?;
    let id = found.0.ep.id.clone();
    let main_key = st.db.main_key.clone();
    let secret = st
        .db
        .read(move |c| ep_db::secrets(c, &main_key, &id, now_ms()))
        .await?
        .into_iter()
        .find(|s| s.expires_at.is_none())
        .map(|s| s.secret)
        .ok_or(ConsoleError::NotFound("signing secret"))?;
    overview_page(&st, found, admin.chrome("apps"), Some(secret)).await
}

/// Grace periods offered when rotating: (form value, label, hours; None = the server's default).
pub const GRACE_CHOICES: [(&str, &str, Option<i64>); 6] = [
    ("default", "the default", None),
    ("0", "none: stop at once", Some(0)),
    ("1h", "1 hour", Some(1)),
    ("24h", "24 hours", Some(24)),
    ("3d", "3 days", Some(72)),
    ("7d", "7 days", Some(168)),
];

/// A new current secret; the old one keeps signing for the chosen grace period.
pub async fn rotate_secret(
    st: Data,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ConsoleError> {
    let (_, form) = admin_post(&st, &req, &body).await?;
    let (head, _) = find_endpoint(&st, &req, "overview").await?;
    let choice = match form.get("grace") {
        "" => "default",
        c => c,
    };
    let Some(&(_, _, hours)) = GRACE_CHOICES.iter().find(|(v, _, _)| *v == choice) else {
        return Err(ConsoleError::BadRequest(
            "Choose how long the current secret keeps signing.".into(),
        ));
    };
    let grace = hours.map_or(st.cfg.api.rotation_grace, |h| {
        std::time::Duration::from_secs(u64::try_from(h).unwrap_or(0) * 3600)
    });
    let secret = SigningKey::generate().to_secret_string();
    service::rotate_secret(&st.db, &st.dispatcher, &head.ep.id, secret, grace).await?;
    Ok(redirect(&format!("{}?ok=rotated", head.base)))
}

pub async fn disable(
    st: Data,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ConsoleError> {
    let (admin, _) = admin_post(&st, &req, &body).await?;
    let (head, _) = find_endpoint(&st, &req, "overview").await?;
    if !head.ep.disabled {
        let reason = if admin.portal.is_some() {
            "disabled in the customer portal".to_owned()
        } else {
            format!("disabled in the console by {}", admin.username)
        };
        service::disable(&st.db, &st.dispatcher, &head.ep.id, reason).await?;
    }
    Ok(redirect(&format!("{}?ok=disabled", head.base)))
}

#[derive(Template)]
#[template(path = "admin/endpoints/enable.html")]
struct EnablePage {
    chrome: Chrome,
    head: Head,
    skipped: i64,
    disabled_since: String,
}

pub async fn confirm_enable(st: Data, req: HttpRequest) -> Result<HttpResponse, ConsoleError> {
    let admin = admin(&st, &req).await?;
    let (head, _) = find_endpoint(&st, &req, "overview").await?;
    if !head.ep.disabled {
        return Ok(redirect(&head.base));
    }
    let id = head.ep.id.clone();
    let skipped = st
        .db
        .read(move |c| deliveries::count_skipped(c, &id))
        .await?;
    page(&EnablePage {
        chrome: admin.chrome("apps"),
        disabled_since: head.ep.disabled_at.map_or_else(String::new, when),
        head,
        skipped,
    })
}

/// Enables the endpoint and, when asked, queues what it missed while disabled.
pub async fn enable(
    st: Data,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ConsoleError> {
    let (_, form) = admin_post(&st, &req, &body).await?;
    let (head, _) = find_endpoint(&st, &req, "overview").await?;
    let replay = form.get("replay") == "1";
    service::enable(&st.db, &st.dispatcher, &head.ep, replay).await?;
    let ok = if replay { "replayed" } else { "enabled" };
    Ok(redirect(&format!("{}?ok={ok}", head.base)))
}

pub struct LogRow {
    pub id: String,
    pub msg_id: String,
    pub ok: bool,
    pub time: String,
    pub event_type: String,
    pub code: String,
    pub duration: i64,
    pub trigger: &'static str,
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

fn trigger(t: i64) -> &'static str {
    match t {
        0 => "scheduled",
        1 => "manual",
        _ => "test",
    }
}

fn code(status: i64) -> String {
    if status == 0 {
        "no response".to_owned()
    } else {
        status.to_string()
    }
}

pub async fn logs(st: Data, req: HttpRequest) -> Result<HttpResponse, ConsoleError> {
    let admin = admin(&st, &req).await?;
    let (head, _) = find_endpoint(&st, &req, "logs").await?;
    let q = Query::parse(req.query_string());
    let (filter, status) = match q.str("status") {
        Some("succeeded") => ("succeeded", Some(deliveries::SUCCESS)),
        Some("failed") => ("failed", Some(deliveries::FAIL)),
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
    let f = AttemptFilter {
        endpoint_id: Some(head.ep.id.clone()),
        status,
        messages: crate::db::messages::MessageFilter {
            event_types: (!event_type.is_empty()).then(|| vec![event_type.clone()]),
            ..Default::default()
        },
        ..AttemptFilter::default()
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
    ]
    .into_iter()
    .map(|(label, s)| (label, link(s, None), s == filter))
    .collect();
    let newest = link(filter, None);
    let types = match &head.ep.filter_types {
        Some(t) => t.clone(),
        None => catalog(&st, &head.app)
            .await?
            .into_iter()
            .map(|t| t.name)
            .collect(),
    };
    let p = PageQuery {
        limit: LOG_PAGE,
        after,
        before: None,
        descending: true,
    };
    let found = st.db.read(move |c| attempts::list(c, &f, &p)).await?;
    let older = found
        .next_key(|a| a.id.clone())
        .map(|k| link(filter, Some(&k)));
    let rows = found
        .items
        .into_iter()
        .map(|a| LogRow {
            ok: a.status == deliveries::SUCCESS,
            time: when(a.created_at),
            event_type: a.msg.map(|m| m.event_type).unwrap_or_default(),
            code: code(a.response_status_code),
            duration: a.response_duration_ms,
            trigger: trigger(a.trigger_type),
            id: a.id,
            msg_id: a.msg_id,
        })
        .collect();
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
    a: attempts::Attempt,
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

pub async fn attempt(st: Data, req: HttpRequest) -> Result<HttpResponse, ConsoleError> {
    let admin = admin(&st, &req).await?;
    let (head, _) = find_endpoint(&st, &req, "logs").await?;
    let msg_id = path(&req, "msg_id")?.to_owned();
    let attempt_id = path(&req, "attempt_id")?.to_owned();
    let a = st
        .db
        .read(move |c| attempts::get(c, &msg_id, &attempt_id))
        .await?
        .filter(|a| a.endpoint_id == head.ep.id)
        .ok_or(ConsoleError::NotFound("attempt"))?;
    let msg = a.msg.clone();
    page(&AttemptPage {
        chrome: admin.chrome("apps"),
        head,
        ok: a.status == deliveries::SUCCESS,
        time: when(a.created_at),
        code: code(a.response_status_code),
        trigger: trigger(a.trigger_type),
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
    body: web::Bytes,
) -> Result<HttpResponse, ConsoleError> {
    admin_post(&st, &req, &body).await?;
    let (head, _) = find_endpoint(&st, &req, "logs").await?;
    let msg_key = path(&req, "msg_id")?.to_owned();
    let app_id = head.app.id.clone();
    let msg = st
        .db
        .read(move |c| messages::get(c, &app_id, &msg_key))
        .await?
        .ok_or(ConsoleError::NotFound("message"))?;
    let max = st.cfg.retry_schedule().max_attempts();
    service::resend(&st.db, &st.dispatcher, max, &msg.id, &head.ep)
        .await
        .map_err(|e| match e {
            service::ResendError::Disabled => ConsoleError::BadRequest(
                "This endpoint is disabled: enable it before resending messages to it.".into(),
            ),
            service::ResendError::Db(e) => e.into(),
        })?;
    Ok(redirect(&format!("{}/logs?ok=resent", head.base)))
}

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

pub async fn testing(st: Data, req: HttpRequest) -> Result<HttpResponse, ConsoleError> {
    let admin = admin(&st, &req).await?;
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
    body: web::Bytes,
) -> Result<HttpResponse, ConsoleError> {
    let (admin, form) = admin_post(&st, &req, &body).await?;
    let (head, _) = find_endpoint(&st, &req, "testing").await?;
    let types = type_options(&st, &head.app).await?;
    let name = form.get("event_type").to_owned();
    // Browsers send a textarea's line breaks as CRLF; send the payload with the LF the page
    // showed (JSON has no raw line breaks inside strings, so only whitespace changes).
    let text = form.get("payload").replace("\r\n", "\n");
    let et = if crate::domain::validate::is_valid_event_type(&name) {
        let n = name.clone();
        st.db.read(move |c| event_types::get(c, &n)).await?
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
        &st.db,
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
    let (id, since) = (head.ep.id.clone(), now_ms() - DAY);
    let health = st
        .db
        .read(move |c| Ok(admin_db::health(c, std::slice::from_ref(&id), since)?.remove(&id)))
        .await?
        .unwrap_or_default();
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

#[cfg(test)]
mod tests {
    use super::span;
    use std::time::Duration;

    #[test]
    fn grace_periods_read_naturally() {
        assert_eq!(span(Duration::from_secs(24 * 3600)), "24 hours");
        assert_eq!(span(Duration::from_secs(3 * 24 * 3600)), "3 days");
        assert_eq!(span(Duration::from_secs(60)), "1 minute");
        assert_eq!(span(Duration::from_secs(90 * 60)), "90 minutes");
        assert_eq!(span(Duration::from_secs(5)), "5 seconds");
    }
}
