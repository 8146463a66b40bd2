//! Sending alerts: the notifier takes what is due from the alerts outbox (queued with the
//! changes they tell of, or by "Send test notification"), writes each message and sends it by
//! email (SMTP) or to a Slack-compatible chat webhook, and records the outcome: sent with the
//! server's answer, retried later, or given up. Every node runs one; on PostgreSQL each alert
//! is claimed by one node.

use crate::config::Config;
use crate::db::{Notification, Sent, Store};
use crate::delivery::client::Sender;
use crate::domain::alerts::{retry_delay_ms, Channel, Rule, MAX_ATTEMPTS};
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
const BATCH: usize = 16;
/// How long a claimed alert stays with the node sending it (past it, another node may).
const LEASE_MS: i64 = 5 * 60_000;
/// How often the outbox is looked at when nothing woke the notifier.
const POLL: Duration = Duration::from_secs(1);

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
    link: Option<String>,
    to: &'a str,
}

#[derive(Template)]
#[template(path = "alerts/endpoint_disabled.html")]
struct DisabledHtml<'a> {
    f: &'a DisabledFacts,
    instance: &'a str,
    link: Option<String>,
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

/// An alert as it is sent: subject, plain text, HTML.
struct Written {
    subject: String,
    text: String,
    html: String,
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

    /// Sends what is due until `cancel`.
    pub async fn run(self, cancel: CancellationToken) {
        loop {
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

    pub fn wake(&self) {
        self.0.wake.notify_one();
    }

    /// One round: claims what is due by the notifier's clock and sends it; how many.
    pub async fn run_once(&self) -> crate::db::DbResult<usize> {
        let now = self.0.clock.now_ms();
        let due = self
            .0
            .store
            .claim_notifications(now, BATCH, now + LEASE_MS)
            .await?;
        let n = due.len();
        for alert in due {
            let sent = self.send(&alert).await;
            self.0
                .store
                .finish_notification(alert.id, sent, self.0.clock.now_ms())
                .await?;
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
        let id = self
            .0
            .store
            .queue_notification(app_id, channel.name(), address, TEST_RULE, "{}".into(), now)
            .await?;
        // Claimed like any alert, so no other round sends it meanwhile.
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
        self.0
            .store
            .finish_notification(id, sent, self.0.clock.now_ms())
            .await?;
        Ok(shown)
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
                tracing::info!(to = %alert.address, rule = %alert.rule, answer = %answer, "alert sent");
                Sent::Delivered { answer }
            }
            Err((error, retry)) => {
                tracing::warn!(to = %alert.address, rule = %alert.rule, error = %error, retry, "alert not sent");
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
            TEST_RULE => Ok(Written {
                subject: format!("[hookbox {i}] Test notification"),
                text: TestText { instance: i, to }
                    .render()
                    .map_err(|e| e.to_string())?,
                html: TestHtml { instance: i, to }
                    .render()
                    .map_err(|e| e.to_string())?,
            }),
            r if r == Rule::EndpointDisabled.name() => {
                let f: DisabledFacts =
                    serde_json::from_str(&alert.data).map_err(|e| e.to_string())?;
                // Operators get the console page; an application's own recipients, who have
                // no console, are pointed at their portal.
                let link = alert.app_id.is_none().then(|| {
                    format!(
                        "{}/admin/apps/{}/endpoints/{}",
                        self.0.base_url, f.app_id, f.endpoint_id
                    )
                });
                Ok(Written {
                    subject: format!(
                        "[hookbox {i}] Endpoint disabled: {} ({})",
                        f.url, f.app_name
                    ),
                    text: DisabledText {
                        f: &f,
                        instance: i,
                        link: link.clone(),
                        to,
                    }
                    .render()
                    .map_err(|e| e.to_string())?,
                    html: DisabledHtml {
                        f: &f,
                        instance: i,
                        link,
                        to,
                    }
                    .render()
                    .map_err(|e| e.to_string())?,
                })
            }
            other => Err(format!("unknown alert `{other}`")),
        }
    }

    /// `Err((error, worth retrying))`.
    async fn email(&self, to: &str, w: Written) -> Result<String, (String, bool)> {
        let Mail::Ready {
            transport, from, ..
        } = &self.0.mail
        else {
            let Mail::Unavailable(problem) = &self.0.mail else {
                unreachable!()
            };
            return Err((problem.clone(), true));
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
        let text = format!("*{}*\n{}", w.subject, w.text);
        let body = serde_json::json!({ "text": text }).to_string();
        match self.0.chat.post_json(url, body).await {
            Ok((status, answer)) if (200..300).contains(&status) => {
                Ok(format!("{status} {}", answer.trim()))
            }
            Ok((status, answer)) => Err((
                format!("chat webhook answered {status}: {}", answer.trim()),
                true,
            )),
            Err(e) => Err((format!("chat webhook: {e}"), true)),
        }
    }
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
