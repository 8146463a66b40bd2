//! Applications: list, create, delete (after a confirmation page).

use super::{page, page_with, path, redirect, when, Admin, Chrome, ConsoleError, Posted};
use crate::db::{App, DbError, PageQuery};
use crate::http::Data;
use crate::service::apps::AppInput;
use crate::service::input::FieldError;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;

const PAGE: usize = 50;

pub struct AppRow {
    pub id: String,
    pub uid: String,
    pub name: String,
    pub endpoints: i64,
    pub created: String,
}

#[derive(Template)]
#[template(path = "admin/apps/list.html")]
struct ListPage {
    chrome: Chrome,
    apps: Vec<AppRow>,
    next: Option<String>,
    first_page: bool,
    name: String,
    uid: String,
    name_error: Option<String>,
    uid_error: Option<String>,
}

async fn rows(
    st: &Data,
    after: Option<String>,
) -> Result<(Vec<AppRow>, Option<String>), ConsoleError> {
    let q = PageQuery {
        limit: PAGE,
        after,
        before: None,
        descending: false,
    };
    let page = st
        .store
        .apps_with_endpoint_counts(&q, crate::operational::APP_UID)
        .await?;
    let next = page.next_key(|(a, _)| a.id.to_string());
    let rows = page
        .items
        .into_iter()
        .map(|(a, endpoints)| AppRow {
            endpoints,
            created: when(a.created_at),
            uid: a.uid.unwrap_or_default(),
            id: a.id.into(),
            name: a.name,
        })
        .collect();
    Ok((rows, next))
}

pub async fn list(st: Data, admin: Admin, req: HttpRequest) -> Result<HttpResponse, ConsoleError> {
    let q = crate::http::extract::Query::parse(req.query_string());
    let after = q
        .str("after")
        .filter(|a| crate::domain::validate::is_valid_uid(a))
        .map(str::to_owned);
    let first_page = after.is_none();
    let (apps, next) = rows(&st, after).await?;
    let chrome = admin.chrome_with_notice("apps", &req);
    page(&ListPage {
        chrome,
        apps,
        next,
        first_page,
        name: String::new(),
        uid: String::new(),
        name_error: None,
        uid_error: None,
    })
}

/// The message of a validation error about `field` (the API's `loc`), if it is about it.
pub(super) fn field_error(e: &FieldError, field: &str) -> Option<String> {
    e.at(field).map(str::to_owned)
}

pub async fn create(
    st: Data,
    Posted { admin, form }: Posted,
) -> Result<HttpResponse, ConsoleError> {
    let name = form.get("name").to_owned();
    let uid = form.get("uid").to_owned();
    let input = AppInput {
        name: name.clone(),
        uid: (!uid.is_empty()).then(|| uid.clone()),
        ..AppInput::default()
    };
    let result = match input.parse() {
        Ok(app) => match crate::service::apps::create(&st.store, app.clone()).await {
            Ok(_) => {
                return Ok(redirect(&format!(
                    "/admin/apps/{}/webhooks?ok=app-created",
                    app.id
                )))
            }
            Err(DbError::Conflict(m)) => (None, Some(m)),
            Err(e) => return Err(e.into()),
        },
        Err(e) => (field_error(&e, "name"), field_error(&e, "uid")),
    };
    let (apps, next) = rows(&st, None).await?;
    page_with(
        StatusCode::UNPROCESSABLE_ENTITY,
        &ListPage {
            chrome: admin.chrome("apps"),
            apps,
            next,
            first_page: true,
            name,
            uid,
            name_error: result.0,
            uid_error: result.1,
        },
    )
}

/// The application named in the path (by id or uid).
pub(super) async fn find_app(st: &Data, req: &HttpRequest) -> Result<App, ConsoleError> {
    let key = path(req, "app_id")?;
    st.store
        .app(key)
        .await?
        .ok_or(ConsoleError::NotFound("application"))
}

pub async fn open(st: Data, _admin: Admin, req: HttpRequest) -> Result<HttpResponse, ConsoleError> {
    let app = find_app(&st, &req).await?;
    Ok(redirect(&format!("/admin/apps/{}/webhooks", app.id)))
}

/// `GET /admin/operational`: the endpoints that receive hookbox's operational webhooks are
/// those of its own application (made at start), managed on the same pages as any
/// application's.
pub async fn operational(st: Data, _admin: Admin) -> Result<HttpResponse, ConsoleError> {
    Ok(redirect(&format!(
        "/admin/apps/{}/webhooks",
        st.operational_app_id
    )))
}

/// The application in the path, unless it is hookbox's own (not renamed nor deleted).
pub(super) async fn user_app(st: &Data, req: &HttpRequest) -> Result<App, ConsoleError> {
    Some(find_app(st, req).await?)
        .filter(|a| !a.is_operational())
        .ok_or(ConsoleError::NotFound("application"))
}

#[derive(Template)]
#[template(path = "admin/apps/delete.html")]
struct DeletePage {
    chrome: Chrome,
    app: App,
    endpoints: i64,
}

pub async fn confirm_delete(
    st: Data,
    admin: Admin,
    req: HttpRequest,
) -> Result<HttpResponse, ConsoleError> {
    let app = user_app(&st, &req).await?;
    let endpoints = st.store.count_endpoints(&app.id).await?;
    page(&DeletePage {
        chrome: admin.chrome("apps"),
        app,
        endpoints,
    })
}

pub async fn delete(
    st: Data,
    req: HttpRequest,
    _post: Posted,
) -> Result<HttpResponse, ConsoleError> {
    let app = user_app(&st, &req).await?;
    crate::service::apps::delete(&st.store, &st.dispatcher, &app).await?;
    Ok(redirect("/admin/apps?ok=app-deleted"))
}

#[derive(Template)]
#[template(path = "admin/apps/settings.html")]
struct SettingsPage {
    chrome: Chrome,
    app: App,
    name: String,
    uid: String,
    retention: String,
    name_error: Option<String>,
    uid_error: Option<String>,
    retention_error: Option<String>,
}

/// `GET /admin/apps/{app}/settings`: rename, uid, payload retention, delete.
pub async fn settings(
    st: Data,
    admin: Admin,
    req: HttpRequest,
) -> Result<HttpResponse, ConsoleError> {
    let app = user_app(&st, &req).await?;
    page(&SettingsPage {
        chrome: admin.chrome_with_notice("apps", &req),
        name: app.name.clone(),
        uid: app.uid.clone().unwrap_or_default(),
        retention: app
            .retention_ms
            .map_or_else(String::new, |ms| (ms / 86_400_000).to_string()),
        app,
        name_error: None,
        uid_error: None,
        retention_error: None,
    })
}

/// `POST /admin/apps/{app}/settings`: saves the name, uid and retention.
pub async fn rename(
    st: Data,
    req: HttpRequest,
    Posted { admin, form }: Posted,
) -> Result<HttpResponse, ConsoleError> {
    let app = user_app(&st, &req).await?;
    let (name, uid, retention) = (
        form.get("name").to_owned(),
        form.get("uid").to_owned(),
        form.get("retention").to_owned(),
    );
    let days = match retention.as_str() {
        "" => Ok(None),
        d => d.parse::<u32>().map(Some).map_err(|_| {
            "Enter a whole number of days from 1 to 3650, or leave it empty.".to_owned()
        }),
    };
    // Validated by the same rules as the API's.
    let checked = days.clone().ok().map(|days| {
        AppInput {
            name: name.clone(),
            uid: (!uid.is_empty()).then(|| uid.clone()),
            retention_days: days,
            ..AppInput::default()
        }
        .parse()
    });
    let mut errors = (None, None, days.err());
    if let Some(Ok(fresh)) = checked {
        let edited = crate::service::apps::edit(&st.store, &app.id, |stored| {
            stored.name = fresh.name.clone();
            stored.uid = fresh.uid.clone();
            stored.retention_ms = fresh.retention_ms;
            Ok::<_, DbError>(())
        });
        match edited.await {
            Ok(_) => {
                return Ok(redirect(&format!(
                    "/admin/apps/{}/settings?ok=app-saved",
                    app.id
                )))
            }
            Err(DbError::Conflict(m)) => errors.1 = Some(m),
            Err(e) => return Err(e.into()),
        }
    } else if let Some(Err(e)) = checked {
        errors = (
            field_error(&e, "name"),
            field_error(&e, "uid"),
            field_error(&e, "payloadRetentionPeriod"),
        );
    }
    page_with(
        StatusCode::UNPROCESSABLE_ENTITY,
        &SettingsPage {
            chrome: admin.chrome("apps"),
            app,
            name,
            uid,
            retention,
            name_error: errors.0,
            uid_error: errors.1,
            retention_error: errors.2,
        },
    )
}
