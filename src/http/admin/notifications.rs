//! Settings → Notifications: who hears about failing webhooks (the operator's recipients,
//! about every application), the SMTP server alerts go through, a test notification that
//! shows the server's answer, and the log of what was sent.

use super::*;
use crate::db::{Notification, Recipient};
use crate::domain::alerts::{rules_of, Channel, Rule};
use crate::domain::time::now_ms;
use crate::service::alerts::{self as service, NotAdded, RecipientInput};

pub struct RecipientRow {
    pub id: String,
    pub channel: &'static str,
    pub address: String,
    pub rules: String,
    /// From configuration (`alerts.emails`, `alerts.chat_url`): changed there, not here.
    pub from_config: bool,
}

pub struct LogRow {
    pub when: String,
    pub to: String,
    pub channel: String,
    pub rule: String,
    pub app: String,
    pub status: &'static str,
    pub attempts: u32,
    pub result: String,
}

pub struct IncidentRow {
    pub state: &'static str,
    pub url: String,
    pub link: String,
    pub since: String,
    /// When it ended (`None`: still open).
    pub resolved: Option<String>,
    /// Its alert was sent (else it was kept quiet, within the cooldown of an earlier one).
    pub alerted: bool,
}

fn incident_row(root: &str, i: crate::db::Incident) -> IncidentRow {
    IncidentRow {
        state: Rule::parse(&i.rule).map_or("failing", Rule::state),
        link: format!("{root}/apps/{}/endpoints/{}", i.app_id, i.endpoint_id),
        url: i.url,
        since: when(i.opened_at),
        resolved: i.resolved_at.map(when),
        alerted: i.alerted_at.is_some(),
    }
}

pub struct RuleBox {
    pub name: &'static str,
    pub label: &'static str,
    pub checked: bool,
}

#[derive(Template)]
#[template(path = "admin/notifications.html")]
struct NotificationsPage {
    chrome: Chrome,
    smtp: Result<String, String>,
    recipients: Vec<RecipientRow>,
    incidents: Vec<IncidentRow>,
    log: Vec<LogRow>,
    /// Where the add form posts (and `{action}/{id}/remove` removes).
    action: String,
    /// The add form, as posted (when it was refused).
    address: String,
    rules: Vec<RuleBox>,
    address_error: Option<String>,
    /// The test form: its address, and the server's answer (or error).
    test_address: String,
    test_result: Option<Result<String, String>>,
}

fn recipient_row(r: Recipient) -> RecipientRow {
    RecipientRow {
        channel: if r.channel == Channel::Chat.name() {
            "chat"
        } else {
            "email"
        },
        rules: rules_of(&r.rules)
            .iter()
            .map(|r| r.label())
            .collect::<Vec<_>>()
            .join("; "),
        from_config: r.source == "config",
        id: r.id,
        address: r.address,
    }
}

fn log_row(n: Notification) -> LogRow {
    LogRow {
        when: when(n.created_at),
        to: n.address,
        channel: n.channel,
        rule: n.rule,
        app: n.app_id.unwrap_or_else(|| "operator".into()),
        status: n.status.name(),
        attempts: n.attempts,
        result: n.result.unwrap_or_default(),
    }
}

fn rule_boxes(checked: &[Rule]) -> Vec<RuleBox> {
    Rule::ALL
        .iter()
        .map(|r| RuleBox {
            name: r.name(),
            label: r.label(),
            checked: checked.contains(r),
        })
        .collect()
}

impl NotificationsPage {
    async fn new(st: &Data, chrome: Chrome) -> Result<NotificationsPage, ConsoleError> {
        let root = chrome.root;
        Ok(NotificationsPage {
            chrome,
            smtp: st.notifier.smtp_status(),
            recipients: st
                .store
                .alert_recipients(None)
                .await?
                .into_iter()
                .map(recipient_row)
                .collect(),
            incidents: st
                .store
                .alert_incidents(None, 50)
                .await?
                .into_iter()
                .map(|i| incident_row(root, i))
                .collect(),
            log: st
                .store
                .notifications(None, 100)
                .await?
                .into_iter()
                .map(log_row)
                .collect(),
            action: "/admin/notifications/recipients".into(),
            address: String::new(),
            rules: rule_boxes(&Rule::ALL),
            address_error: None,
            test_address: String::new(),
            test_result: None,
        })
    }
}

pub async fn show(st: Data, admin: Admin, req: HttpRequest) -> Result<HttpResponse, ConsoleError> {
    let chrome = admin.chrome_with_notice("notifications", &req);
    page(&NotificationsPage::new(&st, chrome).await?)
}

/// The rules ticked in a posted recipient form.
fn posted_rules(form: &Form) -> Vec<Rule> {
    Rule::ALL
        .into_iter()
        .filter(|r| form.get(&format!("rule:{}", r.name())) == "on")
        .collect()
}

/// Adds the recipient a form describes (the channel follows from the address).
async fn add_posted(
    st: &Data,
    app_id: Option<&str>,
    form: &Form,
    source: &str,
) -> Result<Result<(), String>, ConsoleError> {
    let rules: Vec<String> = posted_rules(form)
        .iter()
        .map(|r| r.name().to_owned())
        .collect();
    let address = form.get("address");
    let channel = Channel::of_address(address);
    let input = match RecipientInput::parse(Some(channel.name()), address, Some(&rules)) {
        Ok(i) => i,
        Err(e) => return Ok(Err(e.msg)),
    };
    match service::add(&st.store, app_id, input, source, now_ms()).await {
        Ok(_) => Ok(Ok(())),
        Err(NotAdded::Invalid(e)) => Ok(Err(e.msg)),
        Err(NotAdded::Taken(why)) => Ok(Err(why)),
        Err(NotAdded::Db(e)) => Err(e.into()),
    }
}

pub async fn add(st: Data, Posted { admin, form }: Posted) -> Result<HttpResponse, ConsoleError> {
    match add_posted(&st, None, &form, "console").await? {
        Ok(()) => Ok(redirect("/admin/notifications?ok=recipient-added")),
        Err(msg) => {
            let mut p = NotificationsPage::new(&st, admin.chrome("notifications")).await?;
            p.rules = rule_boxes(&posted_rules(&form));
            p.address = form.get("address").to_owned();
            p.address_error = Some(msg);
            page_with(StatusCode::UNPROCESSABLE_ENTITY, &p)
        }
    }
}

pub async fn remove(
    st: Data,
    req: HttpRequest,
    _post: Posted,
) -> Result<HttpResponse, ConsoleError> {
    let id = super::path(&req, "recipient_id")?;
    if !service::remove(&st.store, None, id).await? {
        return Err(ConsoleError::NotFound("recipient"));
    }
    Ok(redirect("/admin/notifications?ok=recipient-removed"))
}

/// Sends a test notification now and shows the server's answer.
pub async fn test(st: Data, Posted { admin, form }: Posted) -> Result<HttpResponse, ConsoleError> {
    let address = form.get("test_address").trim().to_owned();
    let channel = Channel::of_address(&address);
    let result = match crate::domain::alerts::check_address(channel, &address) {
        Err(e) => Err(e),
        Ok(()) => st.notifier.send_test(None, channel, &address).await?,
    };
    let mut p = NotificationsPage::new(&st, admin.chrome("notifications")).await?;
    p.test_address = address;
    p.test_result = Some(result);
    page(&p)
}

/// An application's Alerts page: its own recipients (the customer's, in the portal: "Email me
/// when an endpoint fails") and what was sent to them.
#[derive(Template)]
#[template(path = "admin/apps/alerts.html")]
struct AppAlertsPage {
    chrome: Chrome,
    app: crate::db::App,
    recipients: Vec<RecipientRow>,
    incidents: Vec<IncidentRow>,
    log: Vec<LogRow>,
    /// Where the add form posts (and `{action}/{id}/remove` removes).
    action: String,
    address: String,
    rules: Vec<RuleBox>,
    address_error: Option<String>,
}

impl AppAlertsPage {
    async fn new(st: &Data, chrome: Chrome, app: crate::db::App) -> Result<Self, ConsoleError> {
        let id = app.id.to_string();
        let chrome_root = chrome.root;
        Ok(AppAlertsPage {
            chrome,
            recipients: st
                .store
                .alert_recipients(Some(id.clone()))
                .await?
                .into_iter()
                .map(recipient_row)
                .collect(),
            incidents: st
                .store
                .alert_incidents(Some(id.clone()), 20)
                .await?
                .into_iter()
                .map(|i| incident_row(chrome_root, i))
                .collect(),
            log: st
                .store
                .notifications(Some(id), 50)
                .await?
                .into_iter()
                .map(log_row)
                .collect(),
            action: format!("{}/apps/{}/alerts", chrome_root, app.id),
            app,
            address: String::new(),
            rules: rule_boxes(&Rule::ALL),
            address_error: None,
        })
    }
}

pub async fn app_page(
    st: Data,
    admin: Admin,
    req: HttpRequest,
) -> Result<HttpResponse, ConsoleError> {
    admin.may_change()?;
    let app = super::apps::find_app(&st, &req).await?;
    let chrome = admin.chrome_with_notice("apps", &req);
    page(&AppAlertsPage::new(&st, chrome, app).await?)
}

pub async fn app_add(
    st: Data,
    req: HttpRequest,
    Posted { admin, form }: Posted,
) -> Result<HttpResponse, ConsoleError> {
    let app = super::apps::find_app(&st, &req).await?;
    let source = if admin.portal.is_some() {
        "portal"
    } else {
        "console"
    };
    match add_posted(&st, Some(&app.id), &form, source).await? {
        Ok(()) => Ok(redirect(&format!(
            "{}/apps/{}/alerts?ok=recipient-added",
            admin.root(),
            app.id
        ))),
        Err(msg) => {
            let mut p = AppAlertsPage::new(&st, admin.chrome("apps"), app).await?;
            p.rules = rule_boxes(&posted_rules(&form));
            p.address = form.get("address").to_owned();
            p.address_error = Some(msg);
            page_with(StatusCode::UNPROCESSABLE_ENTITY, &p)
        }
    }
}

pub async fn app_remove(
    st: Data,
    req: HttpRequest,
    Posted { admin, .. }: Posted,
) -> Result<HttpResponse, ConsoleError> {
    let app = super::apps::find_app(&st, &req).await?;
    let id = super::path(&req, "recipient_id")?;
    if !service::remove(&st.store, Some(&app.id), id).await? {
        return Err(ConsoleError::NotFound("recipient"));
    }
    Ok(redirect(&format!(
        "{}/apps/{}/alerts?ok=recipient-removed",
        admin.root(),
        app.id
    )))
}
