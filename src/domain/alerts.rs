//! Alerts: who hears what when webhooks fail. Pure rules and names; the sending is
//! `crate::alerts`, the storing `db`.

/// What an alert is about. Each recipient picks the rules it gets (all by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rule {
    /// An endpoint was disabled by hookbox (it answered 410 Gone, or failed for
    /// `auto_disable_after`), not by its owner.
    EndpointDisabled,
    /// Messages to an endpoint ran out of retries: one alert per endpoint per
    /// [`GROUP_WINDOW_MS`], telling how many and of which event types.
    MessagesExhausted,
    /// An endpoint's attempts fail, or time out, past the [`Thresholds`] over their window.
    EndpointFailing,
    /// An endpoint keeps answering 401 or 403: its receiver probably rejects the signature.
    EndpointUnauthorized,
    /// An endpoint delivered again after one of the alerts above (the incident is closed).
    EndpointRecovered,
}

/// How long the alerts about messages that ran out of retries gather before one is sent.
pub const GROUP_WINDOW_MS: i64 = 5 * 60_000;

impl Rule {
    pub const ALL: [Rule; 5] = [
        Rule::EndpointDisabled,
        Rule::MessagesExhausted,
        Rule::EndpointFailing,
        Rule::EndpointUnauthorized,
        Rule::EndpointRecovered,
    ];

    /// The rule's name, as stored and as the API and forms take it.
    pub const fn name(self) -> &'static str {
        match self {
            Rule::EndpointDisabled => "endpoint.disabled",
            Rule::MessagesExhausted => "message.exhausted",
            Rule::EndpointFailing => "endpoint.failing",
            Rule::EndpointUnauthorized => "endpoint.unauthorized",
            Rule::EndpointRecovered => "endpoint.recovered",
        }
    }

    /// What the rule tells, for forms and lists.
    pub const fn label(self) -> &'static str {
        match self {
            Rule::EndpointDisabled => "An endpoint was disabled (410 Gone, or failing too long)",
            Rule::MessagesExhausted => {
                "Messages ran out of retries (at most one alert per endpoint every 5 minutes)"
            }
            Rule::EndpointFailing => {
                "An endpoint's attempts keep failing or timing out (by default: half of 10 or \
                 more attempts over 15 minutes)"
            }
            Rule::EndpointUnauthorized => {
                "An endpoint keeps answering 401/403 (its receiver probably rejects the signature)"
            }
            Rule::EndpointRecovered => "An endpoint delivers again after one of these alerts",
        }
    }

    pub fn parse(name: &str) -> Option<Rule> {
        Rule::ALL.into_iter().find(|r| r.name() == name)
    }

    /// What an endpoint was during an incident of this rule ("failing since …").
    pub const fn state(self) -> &'static str {
        match self {
            Rule::EndpointDisabled => "disabled",
            Rule::EndpointUnauthorized => "answering 401/403",
            Rule::MessagesExhausted => "losing messages",
            Rule::EndpointFailing | Rule::EndpointRecovered => "failing",
        }
    }
}

/// How an alert reaches its recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Email,
    /// A Slack-compatible chat webhook: a POST of `{"text": …}`.
    Chat,
}

impl Channel {
    pub const fn name(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Chat => "chat",
        }
    }

    /// The channel an address is for: a URL is a chat webhook's, anything else an email
    /// address.
    pub fn of_address(address: &str) -> Channel {
        let a = address.trim_start();
        if a.starts_with("http://") || a.starts_with("https://") {
            Channel::Chat
        } else {
            Channel::Email
        }
    }

    pub fn parse(name: &str) -> Option<Channel> {
        [Channel::Email, Channel::Chat]
            .into_iter()
            .find(|c| c.name() == name)
    }
}

/// Where an alert stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Pending,
    Sent,
    /// Its retries ran out.
    GaveUp,
}

impl Status {
    pub const fn code(self) -> i64 {
        match self {
            Status::Pending => 0,
            Status::Sent => 1,
            Status::GaveUp => 2,
        }
    }

    pub fn from_code(code: i64) -> Status {
        match code {
            1 => Status::Sent,
            2 => Status::GaveUp,
            _ => Status::Pending,
        }
    }

    pub const fn name(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Sent => "sent",
            Status::GaveUp => "failed",
        }
    }
}

/// Attempts an alert gets before it is given up, and the wait before each retry: 30 s,
/// doubling, at most an hour (about a day in all).
pub const MAX_ATTEMPTS: u32 = 30;

pub fn retry_delay_ms(attempts: u32) -> i64 {
    let doublings = attempts.saturating_sub(1).min(7);
    (30_000_i64 << doublings).min(3_600_000)
}

/// A recipient's rules from their stored form (comma-separated names; unknown names, from a
/// newer version, are kept out).
pub fn rules_of(stored: &str) -> Vec<Rule> {
    stored.split(',').filter_map(Rule::parse).collect()
}

/// Rules in their stored form.
pub fn stored_rules(rules: &[Rule]) -> String {
    rules.iter().map(|r| r.name()).collect::<Vec<_>>().join(",")
}

/// Checks a recipient's address for its channel: an email address, or an http(s) URL.
pub fn check_address(channel: Channel, address: &str) -> Result<(), String> {
    match channel {
        Channel::Email => address
            .parse::<lettre::Address>()
            .map(|_| ())
            .map_err(|_| format!("`{address}` is not an email address")),
        Channel::Chat => match url::Url::parse(address) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && host_is_a_name(&u) => Ok(()),
            _ => Err(format!(
                "`{address}` is not an http(s) URL (a Slack-compatible chat webhook)"
            )),
        },
    }
}

/// A URL's host is an IP address or a DNS name (letters, digits, dots and hyphens): the URL
/// parser takes more (`*`, `!`, …), which no chat service's host has.
fn host_is_a_name(u: &url::Url) -> bool {
    match u.host() {
        Some(url::Host::Domain(d)) => d
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-'),
        Some(_) => true,
        None => false,
    }
}

/// When the alerts about error rates, timeouts and 401/403 answers fire (`[alerts]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    /// Attempts over the window below which an error or timeout rate says nothing.
    pub min_attempts: i64,
    /// Share of failed attempts (percent) that makes an endpoint failing; 0 turns it off.
    pub error_percent: i64,
    /// Share of attempts that timed out (percent) that makes an endpoint failing; 0 turns it
    /// off.
    pub timeout_percent: i64,
    /// How far back attempts count.
    pub window_ms: i64,
    /// After an alert about an endpoint, how long the same rule keeps quiet about it.
    pub cooldown_ms: i64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            min_attempts: 10,
            error_percent: 50,
            timeout_percent: 50,
            window_ms: 15 * 60_000,
            cooldown_ms: 60 * 60_000,
        }
    }
}

/// How long an incident that ended is kept (the console lists them).
pub const INCIDENTS_KEPT_MS: i64 = 30 * 24 * 3_600_000;

/// 401/403 answers over the window that make an endpoint "unauthorized" (when they are at
/// least half of its attempts).
pub const REJECTED_MIN: i64 = 3;

/// An endpoint's attempts over a stretch of time, as its alerts judge them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Health {
    pub attempts: i64,
    pub failures: i64,
    pub timeouts: i64,
    /// Answered 401 or 403.
    pub rejected: i64,
    pub last_success_at: Option<i64>,
    pub last_failure_at: Option<i64>,
}

/// The minute (its first millisecond) that health counts of an attempt at `at` go into.
pub fn minute_of(at: i64) -> i64 {
    at - at.rem_euclid(60_000)
}

impl Health {
    /// Counts one attempt at `at`: `ok`, else its answer's status (0: none) and error.
    pub fn count(&mut self, ok: bool, status_code: i64, timed_out: bool, at: i64) {
        self.attempts += 1;
        if ok {
            self.last_success_at = self.last_success_at.max(Some(at));
            return;
        }
        self.failures += 1;
        self.timeouts += i64::from(timed_out);
        self.rejected += i64::from(matches!(status_code, 401 | 403));
        self.last_failure_at = self.last_failure_at.max(Some(at));
    }

    /// What is wrong, the most telling first; `None` when nothing crosses a threshold.
    pub fn problem(&self, t: &Thresholds) -> Option<Problem> {
        if self.rejected >= REJECTED_MIN && self.rejected * 2 >= self.attempts {
            return Some(Problem::Rejecting);
        }
        if self.attempts < t.min_attempts.max(1) {
            return None;
        }
        let crosses = |n: i64, percent: i64| percent > 0 && n * 100 >= percent * self.attempts;
        if crosses(self.timeouts, t.timeout_percent) {
            Some(Problem::TimingOut)
        } else if crosses(self.failures, t.error_percent) {
            Some(Problem::Failing)
        } else {
            None
        }
    }

    /// Whether its latest attempt succeeded, after `since`.
    pub fn delivered_since(&self, since: i64) -> bool {
        match self.last_success_at {
            Some(ok) => ok > since && Some(ok) >= self.last_failure_at,
            None => false,
        }
    }
}

/// What is wrong with an endpoint's attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    /// 401/403 answers: "check the signing secret".
    Rejecting,
    TimingOut,
    Failing,
}

impl Problem {
    pub const fn rule(self) -> Rule {
        match self {
            Problem::Rejecting => Rule::EndpointUnauthorized,
            Problem::TimingOut | Problem::Failing => Rule::EndpointFailing,
        }
    }

    pub const fn name(self) -> &'static str {
        match self {
            Problem::Rejecting => "rejecting",
            Problem::TimingOut => "timing_out",
            Problem::Failing => "failing",
        }
    }
}

/// An incident not resolved yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenIncident {
    pub id: i64,
    pub endpoint_id: String,
    pub rule: Rule,
    pub opened_at: i64,
    /// Its alert was queued (else it is quiet, within the cooldown of an earlier one).
    pub alerted: bool,
}

/// What one look at the endpoints' health changes.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Incidents to open: endpoint, what is wrong, and whether to alert now (else it is
    /// within the cooldown of the rule's last alert about the endpoint).
    pub open: Vec<(String, Problem, bool)>,
    /// Quiet incidents whose cooldown has ended: their alert is queued now.
    pub alert: Vec<i64>,
    /// Incidents that ended, by endpoint, each with whether it had been alerted (only those
    /// are told "recovered").
    pub resolve: Vec<(String, Vec<(OpenIncident, bool)>)>,
}

/// Decides, at `now`, which incidents open and which end, from each endpoint's `health` over
/// the window, the `open` incidents, the endpoints that are `disabled` now, and when each
/// endpoint's rules last alerted (`last_alerted`: endpoint and rule name to time).
///
/// An endpoint has at most one incident about its attempts at a time, and none while it is
/// disabled. Each incident alerts once: at once, or (begun within the cooldown of an earlier
/// alert of its rule about the endpoint) once the cooldown is over, if it still holds. An
/// incident ends when the endpoint, enabled, delivers again and its attempts no longer cross
/// its threshold; no incident begins for the endpoint in that same look.
pub fn plan(
    health: &std::collections::BTreeMap<String, Health>,
    open: &[OpenIncident],
    disabled: &std::collections::BTreeSet<String>,
    last_alerted: &std::collections::BTreeMap<(String, String), i64>,
    now: i64,
    t: &Thresholds,
) -> Plan {
    let quiet = |endpoint: &str, rule: Rule| {
        last_alerted
            .get(&(endpoint.to_owned(), rule.name().to_owned()))
            .is_some_and(|at| *at > now - t.cooldown_ms)
    };
    let none = Health::default();
    let mut plan = Plan::default();
    let mut resolved: std::collections::BTreeMap<String, Vec<(OpenIncident, bool)>> =
        std::collections::BTreeMap::new();
    for i in open {
        let h = health.get(&i.endpoint_id).unwrap_or(&none);
        let off = disabled.contains(&i.endpoint_id);
        let holds = h.problem(t).map(Problem::rule) == Some(i.rule);
        let ended =
            !off && h.delivered_since(i.opened_at) && (i.rule == Rule::EndpointDisabled || !holds);
        if ended {
            resolved
                .entry(i.endpoint_id.clone())
                .or_default()
                .push((i.clone(), i.alerted));
        } else if !i.alerted && !off && holds && !quiet(&i.endpoint_id, i.rule) {
            plan.alert.push(i.id);
        }
    }
    for (endpoint, h) in health {
        if disabled.contains(endpoint) || resolved.contains_key(endpoint) {
            continue;
        }
        let Some(problem) = h.problem(t) else {
            continue;
        };
        // An incident that says it was disabled stays open, once it is enabled again, until
        // it delivers: it does not hold back what its attempts show meanwhile.
        let busy = open
            .iter()
            .any(|i| &i.endpoint_id == endpoint && i.rule != Rule::EndpointDisabled);
        if !busy {
            let loud = !quiet(endpoint, problem.rule());
            plan.open.push((endpoint.clone(), problem, loud));
        }
    }
    plan.resolve = resolved.into_iter().collect();
    plan
}

/// What one look at the endpoints' health did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Evaluated {
    pub opened: usize,
    pub resolved: usize,
    /// Alerts queued (one per recipient).
    pub queued: usize,
}

/// Whether a recipient with `rules` hears that an endpoint recovered from incidents of
/// `about`: it gets "recovered" and one of those rules.
pub fn hears_recovery(rules: &[Rule], about: &[Rule]) -> bool {
    rules.contains(&Rule::EndpointRecovered) && about.iter().any(|r| rules.contains(r))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_and_channels_keep_their_names() {
        for r in Rule::ALL {
            assert_eq!(Rule::parse(r.name()), Some(r));
        }
        assert_eq!(rules_of(&stored_rules(&Rule::ALL)), Rule::ALL.to_vec());
        assert_eq!(
            rules_of("endpoint.disabled,from.the.future"),
            [Rule::EndpointDisabled]
        );
        assert_eq!(Channel::parse("chat"), Some(Channel::Chat));
        assert_eq!(Channel::parse("pager"), None);
        for s in [Status::Pending, Status::Sent, Status::GaveUp] {
            assert_eq!(Status::from_code(s.code()), s);
        }
    }

    #[test]
    fn retries_back_off_to_an_hour() {
        assert_eq!(retry_delay_ms(1), 30_000);
        assert_eq!(retry_delay_ms(2), 60_000);
        assert_eq!(retry_delay_ms(20), 3_600_000);
        let total: i64 = (1..MAX_ATTEMPTS).map(retry_delay_ms).sum();
        assert!((20 * 3_600_000..30 * 3_600_000).contains(&total), "{total}");
    }

    fn health(ok: i64, failed: i64, status: i64, timed_out: bool) -> Health {
        let mut h = Health::default();
        for i in 0..failed {
            h.count(false, status, timed_out, 1_000 + i);
        }
        for i in 0..ok {
            h.count(true, 200, false, 2_000 + i);
        }
        h
    }

    #[test]
    fn thresholds_tell_what_is_wrong() {
        let t = Thresholds::default();
        assert_eq!(health(5, 5, 500, false).problem(&t), Some(Problem::Failing));
        assert_eq!(health(6, 4, 500, false).problem(&t), None);
        // Too few attempts to say.
        assert_eq!(health(0, 9, 500, false).problem(&t), None);
        assert_eq!(health(2, 8, 0, true).problem(&t), Some(Problem::TimingOut));
        // 401/403 are told apart from the start.
        assert_eq!(
            health(3, 3, 401, false).problem(&t),
            Some(Problem::Rejecting)
        );
        assert_eq!(health(0, 2, 403, false).problem(&t), None);
        assert_eq!(health(4, 3, 401, false).problem(&t), None);
        let off = Thresholds {
            error_percent: 0,
            ..t
        };
        assert_eq!(health(0, 20, 500, false).problem(&off), None);
    }

    #[test]
    fn counts_remember_the_latest_success_and_failure() {
        let h = health(1, 2, 500, false);
        assert_eq!((h.attempts, h.failures), (3, 2));
        assert_eq!(h.last_failure_at, Some(1_001));
        assert!(h.delivered_since(1_500));
        assert!(!h.delivered_since(2_000));
        assert!(!health(0, 2, 500, false).delivered_since(0));
        assert_eq!(minute_of(125_000), 120_000);
    }

    fn incident(id: i64, rule: Rule, alerted: bool) -> OpenIncident {
        OpenIncident {
            id,
            endpoint_id: "ep".into(),
            rule,
            opened_at: 500,
            alerted,
        }
    }

    #[test]
    fn an_incident_opens_once_and_ends_when_the_endpoint_delivers_again() {
        use std::collections::{BTreeMap, BTreeSet};
        let t = Thresholds::default();
        let (none, on) = (BTreeMap::new(), BTreeSet::new());
        let failing = BTreeMap::from([("ep".to_owned(), health(0, 10, 500, false))]);
        let p = plan(&failing, &[], &on, &none, 10_000, &t);
        assert_eq!(p.open, [("ep".to_owned(), Problem::Failing, true)]);
        // Open already: nothing more.
        let open = [incident(1, Rule::EndpointFailing, true)];
        assert_eq!(
            plan(&failing, &open, &on, &none, 10_000, &t),
            Plan::default()
        );
        // Delivered again, but half of the window still failed: still open.
        let flapping = BTreeMap::from([("ep".to_owned(), health(9, 10, 500, false))]);
        assert_eq!(
            plan(&flapping, &open, &on, &none, 10_000, &t),
            Plan::default()
        );
        let better = BTreeMap::from([("ep".to_owned(), health(11, 10, 500, false))]);
        let p = plan(&better, &open, &on, &none, 10_000, &t);
        assert_eq!(
            p.resolve,
            [("ep".to_owned(), vec![(open[0].clone(), true)])]
        );
        assert!(p.open.is_empty());
        // Now answering 401: that incident ends, and the next look opens the other.
        let rejecting = BTreeMap::from([("ep".to_owned(), health(1, 3, 401, false))]);
        let p = plan(&rejecting, &open, &on, &none, 10_000, &t);
        assert_eq!(p.resolve.len(), 1);
        assert!(p.open.is_empty());
        assert_eq!(
            plan(&rejecting, &[], &on, &none, 10_000, &t).open,
            [("ep".to_owned(), Problem::Rejecting, true)]
        );
    }

    #[test]
    fn a_disabled_endpoint_has_no_other_incident_and_recovers_once_enabled_and_delivering() {
        use std::collections::{BTreeMap, BTreeSet};
        let t = Thresholds::default();
        let none = BTreeMap::new();
        let (on, off) = (BTreeSet::new(), BTreeSet::from(["ep".to_owned()]));
        let disabled = [incident(2, Rule::EndpointDisabled, true)];
        let failing = BTreeMap::from([("ep".to_owned(), health(0, 10, 500, false))]);
        let delivered = BTreeMap::from([("ep".to_owned(), health(1, 0, 500, false))]);
        // While disabled: nothing opens, and a delivery still in flight ends nothing.
        assert_eq!(
            plan(&failing, &disabled, &off, &none, 10_000, &t),
            Plan::default()
        );
        assert_eq!(
            plan(&delivered, &disabled, &off, &none, 10_000, &t),
            Plan::default()
        );
        // Enabled and still failing: told so; the incident stays open until it delivers.
        let p = plan(&failing, &disabled, &on, &none, 10_000, &t);
        assert_eq!(p.open, [("ep".to_owned(), Problem::Failing, true)]);
        assert!(p.resolve.is_empty());
        let p = plan(&delivered, &disabled, &on, &none, 10_000, &t);
        assert_eq!(
            p.resolve,
            [("ep".to_owned(), vec![(disabled[0].clone(), true)])]
        );
    }

    #[test]
    fn within_the_cooldown_an_incident_is_quiet_until_it_ends() {
        use std::collections::{BTreeMap, BTreeSet};
        let t = Thresholds::default();
        let on = BTreeSet::new();
        let failing = BTreeMap::from([("ep".to_owned(), health(0, 10, 500, false))]);
        let alerted = BTreeMap::from([(("ep".to_owned(), "endpoint.failing".to_owned()), 9_000)]);
        let p = plan(&failing, &[], &on, &alerted, 10_000, &t);
        assert_eq!(p.open, [("ep".to_owned(), Problem::Failing, false)]);
        // Another rule is not held back.
        let rejecting = BTreeMap::from([("ep".to_owned(), health(0, 10, 401, false))]);
        let p = plan(&rejecting, &[], &on, &alerted, 10_000, &t);
        assert_eq!(p.open, [("ep".to_owned(), Problem::Rejecting, true)]);
        // A quiet incident that lasts past the cooldown alerts then, if it still holds.
        let quiet = [incident(3, Rule::EndpointFailing, false)];
        assert!(plan(&failing, &quiet, &on, &alerted, 10_000, &t)
            .alert
            .is_empty());
        let later = 9_000 + t.cooldown_ms + 1;
        assert_eq!(plan(&failing, &quiet, &on, &alerted, later, &t).alert, [3]);
        let idle = BTreeMap::new();
        assert!(plan(&idle, &quiet, &on, &alerted, later, &t)
            .alert
            .is_empty());
        // It ends without "recovered".
        let better = BTreeMap::from([("ep".to_owned(), health(11, 10, 500, false))]);
        let p = plan(&better, &quiet, &on, &alerted, 10_000, &t);
        assert_eq!(
            p.resolve,
            [("ep".to_owned(), vec![(quiet[0].clone(), false)])]
        );
    }

    #[test]
    fn recovery_is_told_to_those_who_heard_of_the_incident() {
        let all = Rule::ALL;
        assert!(hears_recovery(&all, &[Rule::EndpointFailing]));
        assert!(!hears_recovery(
            &[Rule::EndpointRecovered, Rule::EndpointDisabled],
            &[Rule::EndpointFailing]
        ));
        assert!(!hears_recovery(
            &[Rule::EndpointFailing],
            &[Rule::EndpointFailing]
        ));
    }

    #[test]
    fn addresses_are_checked_for_their_channel() {
        assert!(check_address(Channel::Email, "ops@example.com").is_ok());
        assert!(check_address(Channel::Email, "not an address").is_err());
        assert!(check_address(Channel::Chat, "https://hooks.slack.com/services/T/B/x").is_ok());
        assert!(check_address(Channel::Chat, "ftp://x").is_err());
        assert!(check_address(Channel::Chat, "https://G*").is_err());
        assert!(check_address(Channel::Chat, "http://10.0.0.7:8065/hooks/x").is_ok());
    }
}
