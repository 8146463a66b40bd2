//! Settings → Webhooks: an application's endpoints (this file: the list, the header every
//! endpoint page shares, the event-type grouping) and each endpoint's pages, a file each.

mod logs;
mod overview;
mod replay;
mod settings;
mod testing;

pub use logs::{attempt, logs, resend};
pub use overview::{
    confirm_enable, disable, enable, overview, reveal_secret, rotate_secret, unblock,
};
pub use replay::{replay, start_replay, TaskRow};
pub use settings::{confirm_delete, create, delete, edit_form, new_form, update};
pub use testing::{send_test, testing};

use super::apps::{field_error, find_app};
use super::{
    page, page_with, path, percent, redirect, root_of, when, Admin, Chrome, ConsoleError, Posted,
};
use crate::db::{App, AttemptFilter, Endpoint, EventType, Health, PageQuery};
use crate::domain::signing::SigningKey;
use crate::domain::time::now_ms;
use crate::domain::validate::{too_deep, MAX_JSON_DEPTH};
use crate::http::extract::Query;
use crate::http::Data;
use crate::service::endpoint_input::EndpointInput;
use crate::service::endpoints as service;
use crate::service::input::Rejected;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
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

pub async fn list(st: Data, admin: Admin, req: HttpRequest) -> Result<HttpResponse, ConsoleError> {
    let app = find_app(&st, &req).await?;
    let since = now_ms() - DAY;
    let (eps, health) = st.store.endpoints_with_health(&app.id, since).await?;
    let endpoints = eps
        .into_iter()
        .map(|ep| {
            let h = health.get(&ep.id).copied().unwrap_or_default();
            EndpointRow {
                badge: badge(&ep, &h),
                rate: percent(h.success_rate()),
                id: ep.id.into(),
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
pub(super) fn group_of(t: &EventType) -> String {
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
pub(super) fn grouped<T>(types: Vec<EventType>, row: impl Fn(EventType) -> T) -> Vec<Group<T>> {
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

fn groups(types: Vec<EventType>, checked: &[String]) -> Vec<Group> {
    grouped(types, |t| TypeBox {
        checked: checked.contains(&t.name),
        name: t.name,
        description: t.description,
    })
}

/// The event types an endpoint receives, to choose among in its pages: those it subscribes
/// to, else every one it can.
async fn received_types(st: &Data, head: &Head) -> Result<Vec<String>, ConsoleError> {
    Ok(match &head.ep.filter_types {
        Some(t) => t.clone(),
        None => catalog(st, &head.app)
            .await?
            .into_iter()
            .map(|t| t.name)
            .collect(),
    })
}

/// The event types an endpoint of `app` can subscribe to: the catalog's, or for hookbox's
/// own application the operational events.
async fn catalog(st: &Data, app: &App) -> Result<Vec<EventType>, ConsoleError> {
    if app.is_operational() {
        return Ok(crate::operational::event_types());
    }
    all_event_types(st, false).await
}

/// Every event type of the catalog (archived ones too, if asked), by name.
pub(super) async fn all_event_types(
    st: &Data,
    include_archived: bool,
) -> Result<Vec<EventType>, ConsoleError> {
    let q = PageQuery {
        limit: 10_000,
        ..PageQuery::default()
    };
    Ok(st.store.event_types(&q, include_archived).await?.items)
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
    let key = path(req, "endpoint_id")?;
    let since = now_ms() - DAY;
    let (ep, health) = st
        .store
        .endpoint_with_health(&app.id, key, since)
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
