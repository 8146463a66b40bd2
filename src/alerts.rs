//! Sending alerts: the notifier takes what is due from the alerts outbox (queued with the
//! changes they tell of, or by "Send test notification"), writes each message and sends it by
//! email (SMTP) or to a Slack-compatible chat webhook, and records the outcome: sent with the
//! server's answer, retried later, or given up. Every node runs one; on PostgreSQL each alert
//! is claimed by one node.

use crate::config::Config;
use crate::db::{Notification, Sent, Store};
use crate::delivery::client::Sender;
use crate::domain::alerts::{retry_delay_ms, Channel, Evaluated, Rule, Thresholds, MAX_ATTEMPTS};
use crate::domain::time::Clock;
use askama::Template;
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The rule name of a test notification.
pub const TEST_RULE: &str = "test";
/// Alerts claimed per round.
const BATCH: usize = 4;
/// How often the outbox is looked at when nothing woke the notifier.
const POLL: Duration = Duration::from_secs(1);
/// How often the endpoints' health is looked at (by one node).
const EVALUATE_EVERY: Duration = Duration::from_secs(30);

#[derive(Clone)]
pub struct Notifier(Arc<Inner>);

struct Inner {
    store: Store,
    mail: Mail,
    chat: Sender,
    /// Where console links point (`public_url`, else the address the server listens on).
    base_url: String,
    /// Which hookbox an alert comes from.
    instance: String,
    clock: Clock,
    /// How long a claimed alert stays with this node: long enough for a round's sends at
    /// their SMTP timeout (past it, another node may send them).
    lease_ms: i64,
    thresholds: Thresholds,
    wake: tokio::sync::Notify,
}

enum Mail {
    Ready {
        transport: Box<AsyncSmtpTransport<Tokio1Executor>>,
        from: Mailbox,
        server: String,
    },
    /// Why no email can be sent (shown with every email alert that waits).
    Unavailable(String),
}

/// The facts of an `endpoint.disabled` alert (see `db::outbox::alerts::disabled_data`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DisabledFacts {
    app_id: String,
    app_name: String,
    endpoint_id: String,
    endpoint_uid: Option<String>,
    url: String,
    reason: String,
    disabled_at: String,
    skipped: i64,
}

#[derive(Template)]
#[template(path = "alerts/endpoint_disabled.txt")]
struct DisabledText<'a> {
    f: &'a DisabledFacts,
    instance: &'a str,
    link: Link,
    to: &'a str,
}

#[derive(Template)]
#[template(path = "alerts/endpoint_disabled.html")]
struct DisabledHtml<'a> {
    f: &'a DisabledFacts,
    instance: &'a str,
    link: Link,
    to: &'a str,
}

/// The facts of a `message.exhausted` alert (see `db::outbox::alerts::exhausted_data`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExhaustedFacts {
    app_id: String,
    app_name: String,
    endpoint_id: String,
    endpoint_uid: Option<String>,
    url: String,
    count: i64,
    event_types: std::collections::BTreeMap<String, i64>,
    first_at: String,
    last_at: String,
    last_status_code: i64,
}

#[derive(Template)]
#[template(path = "alerts/messages_exhausted.txt")]
struct ExhaustedText<'a> {
    f: &'a ExhaustedFacts,
    event_types: String,
    instance: &'a str,
    link: Link,
    to: &'a str,
}

#[derive(Template)]
#[template(path = "alerts/messages_exhausted.html")]
struct ExhaustedHtml<'a> {
    f: &'a ExhaustedFacts,
    event_types: String,
    instance: &'a str,
    link: Link,
    to: &'a str,
}

/// The facts of an `endpoint.failing` or `endpoint.unauthorized` alert (see
/// `db::outbox::alerts::failing_data`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct FailingFacts {
    app_id: String,
    app_name: String,
    endpoint_id: String,
    endpoint_uid: Option<String>,
    url: String,
    problem: String,
    attempts: i64,
    failures: i64,
    timeouts: i64,
    rejected: i64,
    window_minutes: i64,
    since: String,
}

impl FailingFacts {
    /// The window, as in "in the last …": `minute` or `15 minutes`.
    fn window(&self) -> String {
        match self.window_minutes {
            1 => "minute".to_owned(),
            w => format!("{w} minutes"),
        }
    }

    /// The subject's headline, the first line, and what to do.
    fn told(&self, instance: &str) -> (&'static str, String, &'static str) {
        let (app, n, w) = (&self.app_name, self.attempts, self.window());
        match self.problem.as_str() {
            "rejecting" => (
                "Endpoint rejects deliveries (401/403), check the signing secret",
                format!(
                    "A webhook endpoint of \"{app}\" keeps answering 401/403 on {instance}: \
                     {} of {n} attempts in the last {w}.",
                    self.rejected
                ),
                "Its receiver is probably rejecting the signature: check the signing secret. \
                 The receiver must verify with the endpoint's current secret (shown on the \
                 endpoint's page), and accept the webhook-id, webhook-timestamp and \
                 webhook-signature headers.",
            ),
            "timing_out" => (
                "Endpoint timing out",
                format!(
                    "Attempts to a webhook endpoint of \"{app}\" are timing out on {instance}: \
                     {} of {n} in the last {w}.",
                    self.timeouts
                ),
                "Its receiver answers too slowly, or not at all: it should answer at once and \
                 do slow work afterwards.",
            ),
            _ => (
                "Endpoint failing",
                format!(
                    "Attempts to a webhook endpoint of \"{app}\" are failing on {instance}: \
                     {} of {n} in the last {w}.",
                    self.failures
                ),
                "Its receiver is down, unreachable, or answering errors.",
            ),
        }
    }
}

#[derive(Template)]
#[template(path = "alerts/endpoint_failing.txt")]
struct FailingText<'a> {
    f: &'a FailingFacts,
    what: &'a str,
    advice: &'a str,
    instance: &'a str,
    link: Link,
    to: &'a str,
}

#[derive(Template)]
#[template(path = "alerts/endpoint_failing.html")]
struct FailingHtml<'a> {
    f: &'a FailingFacts,
    what: &'a str,
    advice: &'a str,
    instance: &'a str,
    link: Link,
    to: &'a str,
}

/// The facts of an `endpoint.recovered` alert (see `db::outbox::alerts::recovered_data`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RecoveredFacts {
    app_id: String,
    app_name: String,
    endpoint_id: String,
    endpoint_uid: Option<String>,
    url: String,
    incidents: Vec<EndedIncident>,
    resolved_at: String,
}

#[derive(Debug, Deserialize)]
struct EndedIncident {
    rule: String,
    since: String,
}

impl EndedIncident {
    fn what(&self) -> &'static str {
        Rule::parse(&self.rule).map_or("failing", Rule::state)
    }
}

#[derive(Template)]
#[template(path = "alerts/endpoint_recovered.txt")]
struct RecoveredText<'a> {
    f: &'a RecoveredFacts,
    instance: &'a str,
    link: Link,
    to: &'a str,
}

#[derive(Template)]
#[template(path = "alerts/endpoint_recovered.html")]
struct RecoveredHtml<'a> {
    f: &'a RecoveredFacts,
    instance: &'a str,
    link: Link,
    to: &'a str,
}

#[derive(Template)]
#[template(path = "alerts/test.txt")]
struct TestText<'a> {
    instance: &'a str,
    to: &'a str,
}

#[derive(Template)]
#[template(path = "alerts/test.html")]
struct TestHtml<'a> {
    instance: &'a str,
    to: &'a str,
}

/// Where an alert points to fix what it tells of.
#[derive(Debug, Clone)]
struct Link {
    url: String,
    /// In the webhooks portal (which needs a live portal session).
    portal: bool,
}

/// An alert as it is sent: subject, plain text, HTML.
struct Written {
    subject: String,
    text: String,
    html: String,
}

impl Written {
    /// An alert from its subject and its two templates.
    fn new(subject: String, text: impl Template, html: impl Template) -> Result<Written, String> {
        Ok(Written {
            subject,
            text: text.render().map_err(|e| e.to_string())?,
            html: html.render().map_err(|e| e.to_string())?,
        })
    }
}

impl Notifier {
    /// A notifier for `cfg`'s SMTP server (a setting that cannot work is logged and shown,
    /// never fatal: email alerts then wait) and chat webhooks through `chat`.
    pub fn new(cfg: &Config, store: Store, chat: Sender, base_url: String) -> Notifier {
        let mail = match mail(cfg) {
            Ok(m) => m,
            Err(problem) => {
                if cfg.smtp.host.is_some() {
                    tracing::error!(problem = %problem, "email alerts cannot be sent");
                }
                Mail::Unavailable(problem)
            }
        };
        let instance = url::Url::parse(&base_url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .filter(|h| cfg.public_url.is_some() && !h.is_empty())
            .unwrap_or_else(crate::db::hostname);
        Notifier(Arc::new(Inner {
            store,
            mail,
            chat,
            base_url: base_url.trim_end_matches('/').to_owned(),
            instance,
            clock: cfg.delivery.clock.clone(),
            lease_ms: crate::domain::time::duration_ms(
                cfg.smtp.timeout.max(cfg.delivery.request_timeout) * 8 * BATCH as u32,
            )
            .max(5 * 60_000),
            thresholds: cfg.alerts.thresholds(),
            wake: tokio::sync::Notify::new(),
        }))
    }

    /// The SMTP server alerts go through, or why there is none, for the Notifications page.
    pub fn smtp_status(&self) -> Result<String, String> {
        match &self.0.mail {
            Mail::Ready { server, .. } => Ok(server.clone()),
            Mail::Unavailable(problem) => Err(problem.clone()),
        }
    }

    /// Sends what is due until `cancel`, starting with what a previous run was sending when
    /// it stopped.
    pub async fn run(self, cancel: CancellationToken) {
        match self.0.store.release_alert_leases().await {
            Ok(n) if n > 0 => {
                tracing::info!(alerts = n, "sending again the alerts of a previous run")
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "cannot release old alert leases"),
        }
        let mut evaluated = tokio::time::Instant::now();
        loop {
            if evaluated.elapsed() >= EVALUATE_EVERY {
                evaluated = tokio::time::Instant::now();
                self.evaluate_in_turn().await;
            }
            // Stopping mid-send leaves the alert leased: it is sent once the lease ends.
            let round = tokio::select! {
                () = cancel.cancelled() => return,
                r = self.run_once() => r,
            };
            match round {
                Ok(n) if n >= BATCH => continue,
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "cannot read the alerts to send"),
            }
            tokio::select! {
                () = cancel.cancelled() => return,
                () = self.0.wake.notified() => {}
                () = tokio::time::sleep(POLL) => {}
            }
        }
    }

    /// Looks at the endpoints' health, when it is this node's turn.
    async fn evaluate_in_turn(&self) {
        let every = crate::domain::time::duration_ms(EVALUATE_EVERY);
        match self.0.store.take_turn("alerts", every).await {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => {
                tracing::warn!(error = %e, "cannot take the alerts round");
                return;
            }
        }
        if let Err(e) = self.evaluate().await {
            tracing::warn!(error = %e, "cannot look at the endpoints' health for alerts");
        }
    }

    /// One look at the endpoints' attempts over the alerts' window, by the notifier's clock:
    /// opens and ends incidents and queues their alerts (sent by the next round).
    pub async fn evaluate(&self) -> crate::db::DbResult<Evaluated> {
        let now = self.0.clock.now_ms();
        let done = self.0.store.evaluate_alerts(now, self.0.thresholds).await?;
        if done.opened + done.resolved > 0 {
            tracing::info!(
                opened = done.opened,
                resolved = done.resolved,
                alerts = done.queued,
                "endpoint incidents"
            );
        }
        if done.queued > 0 {
            self.wake();
        }
        Ok(done)
    }

    pub fn wake(&self) {
        self.0.wake.notify_one();
    }

    /// One round: claims what is due by the notifier's clock and sends it; how many.
    pub async fn run_once(&self) -> crate::db::DbResult<usize> {
        let now = self.0.clock.now_ms();
        let lease_until = now + self.0.lease_ms;
        let due = self
            .0
            .store
            .claim_notifications(now, BATCH, lease_until)
            .await?;
        let n = due.len();
        for alert in due {
            let sent = self.send(&alert).await;
            self.finish(alert.id, lease_until, sent).await?;
        }
        Ok(n)
    }

    /// Sends a test notification to `address` now, as any alert (it is logged like one);
    /// the server's answer, or the error.
    pub async fn send_test(
        &self,
        app_id: Option<String>,
        channel: Channel,
        address: &str,
    ) -> crate::db::DbResult<Result<String, String>> {
        let now = self.0.clock.now_ms();
        // Leased to this request from the start: no round sends it meanwhile.
        let lease_until = now + self.0.lease_ms;
        let id = self
            .0
            .store
            .queue_notification(
                app_id,
                channel.name(),
                address,
                TEST_RULE,
                "{}".into(),
                now,
                lease_until,
            )
            .await?;
        let Some(alert) = self.0.store.notification(id).await? else {
            return Ok(Err("the notification was not stored".into()));
        };
        let sent = self.send(&alert).await;
        let shown = match &sent {
            Sent::Delivered { answer } => Ok(answer.clone()),
            Sent::Failed { error, .. } => Err(error.clone()),
        };
        // A test is tried once: not retried in the background.
        let sent = match sent {
            Sent::Failed { error, .. } => Sent::Failed { error, next: None },
            s => s,
        };
        self.finish(id, lease_until, sent).await?;
        Ok(shown)
    }

    /// Records what became of an alert; says so when its lease had ended meanwhile.
    async fn finish(&self, id: i64, lease_until: i64, sent: Sent) -> crate::db::DbResult<()> {
        let kept = self
            .0
            .store
            .finish_notification(id, lease_until, sent, self.0.clock.now_ms())
            .await?;
        if !kept {
            tracing::warn!(
                alert = id,
                "an alert took longer to send than its lease: another round may send it again"
            );
        }
        Ok(())
    }

    /// One attempt at sending `alert`.
    async fn send(&self, alert: &Notification) -> Sent {
        let attempts = alert.attempts + 1;
        let next =
            (attempts < MAX_ATTEMPTS).then(|| self.0.clock.now_ms() + retry_delay_ms(attempts));
        let written = match self.write(alert) {
            Ok(w) => w,
            Err(e) => {
                return Sent::Failed {
                    error: format!("cannot write the alert: {e}"),
                    next: None,
                }
            }
        };
        let outcome = match Channel::parse(&alert.channel) {
            Some(Channel::Email) => self.email(&alert.address, written).await,
            Some(Channel::Chat) => self.chat(&alert.address, written).await,
            None => Err((format!("unknown channel `{}`", alert.channel), false)),
        };
        match outcome {
            Ok(answer) => {
                tracing::info!(to = %shown_address(alert), rule = %alert.rule, answer = %answer, "alert sent");
                Sent::Delivered { answer }
            }
            Err((error, retry)) => {
                tracing::warn!(to = %shown_address(alert), rule = %alert.rule, error = %error, retry, "alert not sent");
                Sent::Failed {
                    error,
                    next: if retry { next } else { None },
                }
            }
        }
    }

    fn write(&self, alert: &Notification) -> Result<Written, String> {
        let i = self.0.instance.as_str();
        let to = alert.address.as_str();
        match alert.rule.as_str() {
            TEST_RULE => Written::new(
                format!("[hookbox {i}] Test notification"),
                TestText { instance: i, to },
                TestHtml { instance: i, to },
            ),
            r if r == Rule::EndpointDisabled.name() => {
                let f: DisabledFacts =
                    serde_json::from_str(&alert.data).map_err(|e| e.to_string())?;
                let link = self.endpoint_link(alert, &f.app_id, &f.endpoint_id, "");
                Written::new(
                    format!(
                        "[hookbox {i}] Endpoint disabled: {} ({})",
                        f.url, f.app_name
                    ),
                    DisabledText {
                        f: &f,
                        instance: i,
                        link: link.clone(),
                        to,
                    },
                    DisabledHtml {
                        f: &f,
                        instance: i,
                        link,
                        to,
                    },
                )
            }
            r if r == Rule::MessagesExhausted.name() => {
                let f: ExhaustedFacts =
                    serde_json::from_str(&alert.data).map_err(|e| e.to_string())?;
                let link = self.endpoint_link(alert, &f.app_id, &f.endpoint_id, "/logs");
                let event_types = f
                    .event_types
                    .iter()
                    .map(|(t, n)| format!("{t} ({n})"))
                    .collect::<Vec<_>>()
                    .join(", ");
                let what = if f.count == 1 {
                    "1 message".to_owned()
                } else {
                    format!("{} messages", f.count)
                };
                Written::new(
                    format!(
                        "[hookbox {i}] {what} ran out of retries: {} ({})",
                        f.url, f.app_name
                    ),
                    ExhaustedText {
                        f: &f,
                        event_types: event_types.clone(),
                        instance: i,
                        link: link.clone(),
                        to,
                    },
                    ExhaustedHtml {
                        f: &f,
                        event_types,
                        instance: i,
                        link,
                        to,
                    },
                )
            }
            r if r == Rule::EndpointFailing.name() || r == Rule::EndpointUnauthorized.name() => {
                let f: FailingFacts =
                    serde_json::from_str(&alert.data).map_err(|e| e.to_string())?;
                let link = self.endpoint_link(alert, &f.app_id, &f.endpoint_id, "");
                let (headline, what, advice) = f.told(i);
                Written::new(
                    format!("[hookbox {i}] {headline}: {} ({})", f.url, f.app_name),
                    FailingText {
                        f: &f,
                        what: &what,
                        advice,
                        instance: i,
                        link: link.clone(),
                        to,
                    },
                    FailingHtml {
                        f: &f,
                        what: &what,
                        advice,
                        instance: i,
                        link,
                        to,
                    },
                )
            }
            r if r == Rule::EndpointRecovered.name() => {
                let f: RecoveredFacts =
                    serde_json::from_str(&alert.data).map_err(|e| e.to_string())?;
                let link = self.endpoint_link(alert, &f.app_id, &f.endpoint_id, "");
                Written::new(
                    format!(
                        "[hookbox {i}] Endpoint recovered: {} ({})",
                        f.url, f.app_name
                    ),
                    RecoveredText {
                        f: &f,
                        instance: i,
                        link: link.clone(),
                        to,
                    },
                    RecoveredHtml {
                        f: &f,
                        instance: i,
                        link,
                        to,
                    },
                )
            }
            other => Err(format!("unknown alert `{other}`")),
        }
    }

    /// A page (`page`: after the endpoint's path) of an alert's endpoint: in the console for
    /// operators; in the webhooks portal for an application's own recipients, who have no
    /// console.
    fn endpoint_link(
        &self,
        alert: &Notification,
        app_id: &str,
        endpoint_id: &str,
        page: &str,
    ) -> Link {
        let portal = alert.app_id.is_some();
        let root = if portal { "/portal" } else { "/admin" };
        Link {
            url: format!(
                "{}{root}/apps/{app_id}/endpoints/{endpoint_id}{page}",
                self.0.base_url
            ),
            portal,
        }
    }

    /// `Err((error, worth retrying))`.
    async fn email(&self, to: &str, w: Written) -> Result<String, (String, bool)> {
        let (transport, from) = match &self.0.mail {
            Mail::Ready {
                transport, from, ..
            } => (transport, from),
            Mail::Unavailable(problem) => return Err((problem.clone(), true)),
        };
        let to: Mailbox = to
            .parse()
            .map_err(|e| (format!("`{to}` is not an email address: {e}"), false))?;
        let msg = lettre::Message::builder()
            .from(from.clone())
            .to(to)
            .subject(w.subject)
            .multipart(MultiPart::alternative_plain_html(w.text, w.html))
            .map_err(|e| (format!("cannot build the email: {e}"), false))?;
        match transport.send(msg).await {
            Ok(r) => Ok(format!(
                "{} {}",
                r.code(),
                r.message().collect::<Vec<_>>().join(" ")
            )),
            Err(e) => Err((format!("SMTP: {e}"), !e.is_permanent())),
        }
    }

    async fn chat(&self, url: &str, w: Written) -> Result<String, (String, bool)> {
        let text = format!("*{}*\n{}", slack_escape(&w.subject), slack_escape(&w.text));
        let body = serde_json::json!({ "text": text }).to_string();
        match self.0.chat.post_json(url, body).await {
            Ok((status, answer)) if (200..300).contains(&status) => {
                Ok(format!("{status} {}", answer.trim()))
            }
            // A client error other than a timeout or a rate limit (Slack: 403 invalid_token,
            // 404 no_service for a removed webhook) is the same the next time.
            Ok((status, answer)) => Err((
                format!("chat webhook answered {status}: {}", answer.trim()),
                !(400..500).contains(&status) || status == 408 || status == 429,
            )),
            // A URL hookbox refuses to send to stays refused until it is configured otherwise.
            Err(e) => {
                let again = !e.starts_with("destination refused") && !e.starts_with("invalid URL");
                Err((format!("chat webhook: {e}"), again))
            }
        }
    }
}

/// Where an alert goes, as logs show it: a chat webhook's URL is a secret (its path is the
/// token), so only its host is shown.
fn shown_address(alert: &Notification) -> String {
    if alert.channel == Channel::Chat.name() {
        hide_url_path(&alert.address)
    } else {
        alert.address.clone()
    }
}

/// A URL with its path and query replaced by `…` (chat webhook URLs carry their token there).
pub fn hide_url_path(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => format!("{}://{}/…", u.scheme(), u.host_str().unwrap_or_default()),
        Err(_) => "(an invalid URL)".into(),
    }
}

/// Text for Slack-compatible chats: `&`, `<` and `>` escaped, so names and URLs in an alert
/// cannot make links or mentions.
fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The SMTP transport `cfg` describes, or why there is none.
fn mail(cfg: &Config) -> Result<Mail, String> {
    let s = &cfg.smtp;
    let host = s
        .host
        .clone()
        .ok_or_else(|| "no SMTP server is configured (smtp.host, HOOKBOX_SMTP_HOST)".to_owned())?;
    let from: Mailbox = s
        .from
        .as_deref()
        .ok_or_else(|| "no sender is configured (smtp.from, HOOKBOX_SMTP_FROM)".to_owned())?
        .parse()
        .map_err(|e| format!("smtp.from: {e}"))?;
    type T = AsyncSmtpTransport<Tokio1Executor>;
    let (builder, port, mode) = match s.tls.as_str() {
        "none" => (T::builder_dangerous(&host), s.port.unwrap_or(25), "no TLS"),
        "tls" => (
            T::relay(&host).map_err(|e| format!("smtp: {e}"))?,
            s.port.unwrap_or(465),
            "TLS",
        ),
        _ => (
            T::starttls_relay(&host).map_err(|e| format!("smtp: {e}"))?,
            s.port.unwrap_or(587),
            "STARTTLS",
        ),
    };
    let mut builder = builder.port(port).timeout(Some(s.timeout));
    let password = s.password().map_err(|e| format!("{e:#}"))?;
    if let (Some(user), Some(password)) = (&s.username, password) {
        builder = builder.credentials(Credentials::new(user.clone(), password));
    }
    Ok(Mail::Ready {
        transport: Box::new(builder.build()),
        server: format!("{host}:{port} ({mode}), from {from}"),
        from,
    })
}

/// The recipients `cfg` names (`alerts.emails`, `alerts.chat_url`): every rule, for every
/// application.
pub fn configured_recipients(cfg: &Config, now: i64) -> Vec<crate::db::Recipient> {
    let all = crate::domain::alerts::stored_rules(&Rule::ALL);
    let emails = cfg
        .alerts
        .emails
        .iter()
        .map(|e| (Channel::Email, e.clone()));
    let chat = cfg
        .alerts
        .chat_url
        .iter()
        .map(|u| (Channel::Chat, u.clone()));
    emails
        .chain(chat)
        .map(|(channel, address)| crate::db::Recipient {
            id: crate::domain::ids::new_id(crate::domain::ids::RECIPIENT),
            app_id: None,
            channel: channel.name().into(),
            address,
            rules: all.clone(),
            source: "config".into(),
            created_at: now,
        })
        .collect()
}
