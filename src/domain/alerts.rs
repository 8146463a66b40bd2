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
}

/// How long the alerts about messages that ran out of retries gather before one is sent.
pub const GROUP_WINDOW_MS: i64 = 5 * 60_000;

impl Rule {
    pub const ALL: [Rule; 2] = [Rule::EndpointDisabled, Rule::MessagesExhausted];

    /// The rule's name, as stored and as the API and forms take it.
    pub const fn name(self) -> &'static str {
        match self {
            Rule::EndpointDisabled => "endpoint.disabled",
            Rule::MessagesExhausted => "message.exhausted",
        }
    }

    /// What the rule tells, for forms and lists.
    pub const fn label(self) -> &'static str {
        match self {
            Rule::EndpointDisabled => "An endpoint was disabled (410 Gone, or failing too long)",
            Rule::MessagesExhausted => {
                "Messages ran out of retries (at most one alert per endpoint every 5 minutes)"
            }
        }
    }

    pub fn parse(name: &str) -> Option<Rule> {
        Rule::ALL.into_iter().find(|r| r.name() == name)
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
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => Ok(()),
            _ => Err(format!(
                "`{address}` is not an http(s) URL (a Slack-compatible chat webhook)"
            )),
        },
    }
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

    #[test]
    fn addresses_are_checked_for_their_channel() {
        assert!(check_address(Channel::Email, "ops@example.com").is_ok());
        assert!(check_address(Channel::Email, "not an address").is_err());
        assert!(check_address(Channel::Chat, "https://hooks.slack.com/services/T/B/x").is_ok());
        assert!(check_address(Channel::Chat, "ftp://x").is_err());
    }
}
