//! The dashboard: the last 24 hours at a glance, with an hourly bar chart (server-side SVG).

use super::{page, percent, Admin, Chrome, ConsoleError};
use crate::db::{Activity, Dashboard, Totals};
use crate::domain::time::now_ms;
use crate::http::Data;
use actix_web::HttpResponse;
use askama::Template;

const HOUR: i64 = 3_600_000;
pub const CHART_H: i64 = 120;
const BAR_W: i64 = 20;
/// Width of the 24-hour chart in SVG units.
pub const CHART_W: i64 = 24 * (BAR_W + 4);

/// One hour's bar: successes stacked under failures, in SVG units.
pub struct Bar {
    pub x: i64,
    pub ok_y: i64,
    pub ok_h: i64,
    pub fail_y: i64,
    pub fail_h: i64,
    pub title: String,
}

#[derive(Template)]
#[template(path = "admin/dashboard.html")]
struct DashboardPage {
    chrome: Chrome,
    totals: Totals,
    activity: Activity,
    success_rate: String,
    bars: Vec<Bar>,
    chart_w: i64,
    chart_h: i64,
    troubled: Vec<TroubledRow>,
    failures: Vec<FailureRow>,
}

/// A disabled or failing endpoint, as listed.
pub struct TroubledRow {
    pub link: String,
    pub app_name: String,
    pub url: String,
    pub disabled: bool,
    pub reason: String,
    pub since: String,
}

/// A recent failed attempt, as listed.
pub struct FailureRow {
    pub link: String,
    pub url: String,
    pub event_type: String,
    pub outcome: String,
    pub time: String,
}

/// Bars for the 24 hours ending with the one holding `now` (empty hours are zero-height).
pub fn bars(a: &Activity, now: i64) -> Vec<Bar> {
    let last = now.div_euclid(HOUR) * HOUR;
    let max = a
        .hourly
        .iter()
        .map(|(_, ok, bad)| ok + bad)
        .max()
        .unwrap_or(0)
        .max(1);
    (0..24)
        .map(|i| {
            let hour = last - (23 - i) * HOUR;
            let (ok, bad) = a
                .hourly
                .iter()
                .find(|(h, _, _)| *h == hour)
                .map_or((0, 0), |(_, ok, bad)| (*ok, *bad));
            let ok_h = ok * CHART_H / max;
            let fail_h = bad * CHART_H / max;
            Bar {
                x: i * (BAR_W + 4),
                ok_y: CHART_H - ok_h,
                ok_h,
                fail_y: CHART_H - ok_h - fail_h,
                fail_h,
                title: format!(
                    "{}: {ok} succeeded, {bad} failed",
                    super::when(hour).trim_end_matches(":00 UTC").to_owned() + " UTC"
                ),
            }
        })
        .collect()
}

pub async fn show(st: Data, admin: Admin) -> Result<HttpResponse, ConsoleError> {
    let now = now_ms();
    let Dashboard {
        totals,
        activity,
        troubled,
        failures,
    } = st
        .store
        .dashboard(crate::operational::APP_UID, now - 24 * HOUR)
        .await?;
    let troubled = troubled
        .into_iter()
        .map(|t| TroubledRow {
            link: format!("/admin/apps/{}/endpoints/{}", t.app_id, t.endpoint_id),
            app_name: t.app_name,
            url: t.url,
            disabled: t.disabled,
            reason: t.disabled_reason.unwrap_or_default(),
            since: t.since.map_or_else(String::new, super::when),
        })
        .collect();
    let failures = failures
        .into_iter()
        .map(|f| FailureRow {
            link: format!(
                "/admin/apps/{}/endpoints/{}/attempts/{}/{}",
                f.app_id, f.endpoint_id, f.msg_id, f.attempt_id
            ),
            url: f.url,
            event_type: f.event_type,
            outcome: match (f.status_code, f.error) {
                (0, Some(e)) => e,
                (0, None) => "no response".to_owned(),
                (code, _) => format!("HTTP {code}"),
            },
            time: super::when(f.at),
        })
        .collect();
    let rate = crate::domain::delivery::success_rate(activity.succeeded, activity.failed);
    page(&DashboardPage {
        chrome: admin.chrome("dashboard"),
        totals,
        bars: bars(&activity, now),
        activity,
        success_rate: percent(rate),
        chart_w: CHART_W,
        chart_h: CHART_H,
        troubled,
        failures,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_cover_24_hours_scaled_to_the_busiest() {
        let now = 100 * HOUR + 5;
        let a = Activity {
            succeeded: 6,
            failed: 2,
            hourly: vec![(100 * HOUR, 4, 0), (99 * HOUR, 2, 2)],
        };
        let b = bars(&a, now);
        assert_eq!(b.len(), 24);
        assert_eq!(b[23].ok_h, CHART_H);
        assert_eq!(b[22].ok_h + b[22].fail_h, CHART_H);
        assert_eq!(b[0].ok_h + b[0].fail_h, 0);
    }
}
