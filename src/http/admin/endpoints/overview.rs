//! An endpoint's overview: health, signing secret (reveal, rotate), disable and enable.

use super::*;

#[derive(Template)]
#[template(path = "admin/endpoints/overview.html")]
struct OverviewPage {
    chrome: Chrome,
    head: Head,
    rate: String,
    stats: crate::db::Stats,
    disabled_since: String,
    failing_since: String,
    last_attempt: String,
    last_success: String,
    created: String,
    skipped: i64,
    secret: Option<String>,
    /// (form value, label) of each grace period offered when rotating.
    grace_choices: Vec<(&'static str, String)>,
    activity: crate::db::Activity,
    bars: Vec<crate::http::admin::dashboard::Bar>,
    chart_w: i64,
    chart_h: i64,
    /// An ordered endpoint's line, when messages wait in it.
    line: Option<Line>,
}

/// What an ordered endpoint's line shows: the message first in it and how many wait.
struct Line {
    msg_id: String,
    /// It failed and holds the others back (else it is on its way).
    held: bool,
    since: String,
    attempts: u32,
    next_attempt: String,
    /// Waiting behind it.
    behind: i64,
}

impl Line {
    fn of(h: crate::db::LaneHead) -> Line {
        Line {
            held: h.held(),
            since: h.since.map_or_else(String::new, when),
            next_attempt: h.next_attempt_at.map_or_else(String::new, when),
            attempts: h.attempts,
            behind: h.waiting - 1,
            msg_id: h.msg_id,
        }
    }
}

async fn overview_page(
    st: &Data,
    (head, health): (Head, Health),
    chrome: Chrome,
    secret: Option<String>,
) -> Result<HttpResponse, ConsoleError> {
    let now = now_ms();
    let crate::db::EndpointSummary {
        stats,
        skipped,
        activity,
        times,
    } = st.store.endpoint_summary(&head.ep.id, now - DAY).await?;
    let line = if head.ep.ordered {
        st.store.lane_head(&head.ep.id).await?.map(Line::of)
    } else {
        None
    };
    page(&OverviewPage {
        line,
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
        bars: crate::http::admin::dashboard::bars(&activity, now),
        activity,
        chart_w: crate::http::admin::dashboard::CHART_W,
        chart_h: crate::http::admin::dashboard::CHART_H,
        head,
    })
}

pub async fn overview(
    st: Data,
    admin: Admin,
    req: HttpRequest,
) -> Result<HttpResponse, ConsoleError> {
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
    Posted { admin, .. }: Posted,
) -> Result<HttpResponse, ConsoleError> {
    let found = find_endpoint(&st, &req, "overview").await?;
    let secret = st
        .store
        .endpoint_secrets(&found.0.ep.id, now_ms())
        .await?
        .into_iter()
        .find(|s| s.expires_at.is_none())
        .map(|s| service::shown_secret(&s.secret))
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
    Posted { form, .. }: Posted,
) -> Result<HttpResponse, ConsoleError> {
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
    let secret = SigningKey::generate_for(head.ep.signature_version).to_secret_string();
    service::rotate_secret(&st.store, &st.dispatcher, &head.ep.id, secret, grace).await?;
    Ok(redirect(&format!("{}?ok=rotated", head.base)))
}

pub async fn disable(
    st: Data,
    req: HttpRequest,
    Posted { admin, .. }: Posted,
) -> Result<HttpResponse, ConsoleError> {
    let (head, _) = find_endpoint(&st, &req, "overview").await?;
    if !head.ep.disabled {
        let reason = if admin.portal.is_some() {
            "disabled in the customer portal".to_owned()
        } else {
            format!("disabled in the console by {}", admin.username)
        };
        service::disable(&st.store, &st.dispatcher, &head.ep.id, reason).await?;
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

pub async fn confirm_enable(
    st: Data,
    admin: Admin,
    req: HttpRequest,
) -> Result<HttpResponse, ConsoleError> {
    admin.may_change()?;
    let (head, _) = find_endpoint(&st, &req, "overview").await?;
    if !head.ep.disabled {
        return Ok(redirect(&head.base));
    }
    let skipped = st.store.count_skipped(&head.ep.id).await?;
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
    Posted { form, .. }: Posted,
) -> Result<HttpResponse, ConsoleError> {
    let (head, _) = find_endpoint(&st, &req, "overview").await?;
    let replay = form.get("replay") == "1";
    service::enable(&st.store, &st.dispatcher, &head.ep, replay).await?;
    let ok = if replay { "replayed" } else { "enabled" };
    Ok(redirect(&format!("{}?ok={ok}", head.base)))
}

/// Skip, or Retry now, the message that holds an ordered endpoint's line.
pub async fn unblock(
    st: Data,
    req: HttpRequest,
    Posted { form, .. }: Posted,
) -> Result<HttpResponse, ConsoleError> {
    let (head, _) = find_endpoint(&st, &req, "overview").await?;
    let (what, ok) = match form.get("action") {
        "skip" => (crate::db::Unblock::Skip, "skipped"),
        "retry" => (crate::db::Unblock::RetryNow, "retrying"),
        _ => return Err(ConsoleError::BadRequest("Choose Skip or Retry now.".into())),
    };
    let msg_id = form.get("msg_id");
    let done = service::unblock(&st.store, &st.dispatcher, &head.ep.id, msg_id, what).await?;
    let ok = if done { ok } else { "line-moved" };
    Ok(redirect(&format!("{}?ok={ok}", head.base)))
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
