//! One typed configuration: defaults → `hookbox.toml` → `HOOKBOX_*` environment → flags.
//!
//! Longer than most files because every setting is here once, with its default, its
//! environment variable and its check; splitting them would scatter one table.

use crate::domain::retry::RetrySchedule;
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where the database and key files live.
    pub data_dir: PathBuf,
    /// A PostgreSQL database (`postgres://USER[:PASS]@HOST:PORT/DB`) that several hookbox
    /// nodes share. Unset: SQLite in the data dir.
    pub database_url: Option<String>,
    /// Address the HTTP server listens on.
    pub listen: String,
    /// Subnets deliveries may reach even though they are private or loopback.
    pub allow_destinations: Vec<IpNet>,
    /// Reverse proxies (subnets) whose `X-Forwarded-For`/`Forwarded` headers are believed for
    /// the client's address, scheme and host. Empty: forwarded headers are ignored.
    pub trusted_proxies: Vec<IpNet>,
    /// The address people reach hookbox at (`https://hooks.example.com`): portal links are
    /// built on it. Unset: on the host the request came to.
    pub public_url: Option<String>,
    /// `text` or `json`.
    pub log_format: String,
    /// PEM certificate chain: with `tls_key`, the listener speaks HTTPS. Both files are read
    /// again on SIGHUP and when either changes (a renewal), without a restart.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// On SIGTERM/SIGINT, how long requests and deliveries in flight may take to finish.
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
    /// How long an idle client connection stays open for its next request (`0s`: one request
    /// per connection). Longer than the idle timeouts of common clients and proxies (nginx,
    /// cloud load balancers: 60 s), so that none sends a request on a connection hookbox is
    /// closing at that moment.
    #[serde(with = "humantime_serde")]
    pub keep_alive: Duration,
    /// A request not answered within this (its database is frozen, or far too slow) gets 503
    /// rather than holding its client: whether a change it asked for was made is then unknown.
    #[serde(with = "humantime_serde")]
    pub answer_timeout: Duration,
    /// File holding the main key (base64 of 32 bytes) that encrypts endpoint secrets.
    /// Unset: `hookbox.key` in the data dir, created on first start.
    pub main_key_file: Option<PathBuf>,
    /// The main key itself, from `HOOKBOX_MAIN_KEY` only; never printed.
    #[serde(skip)]
    pub main_key: Option<HiddenKey>,
    /// Whether the first start makes an API token to print: not when stdout is a service
    /// manager's journal, where it would be kept for anyone who reads the logs.
    #[serde(skip)]
    pub bootstrap_token: bool,
    pub database: DatabaseConfig,
    pub delivery: DeliveryConfig,
    pub api: ApiConfig,
    pub retention: RetentionConfig,
    pub smtp: SmtpConfig,
    pub alerts: AlertsConfig,
    pub tasks: TasksConfig,
}

/// Background tasks (bulk replays).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TasksConfig {
    /// Whether this node works through them (`false` leaves them to other nodes sharing the
    /// database; on one node they would wait).
    pub run: bool,
}

impl Default for TasksConfig {
    fn default() -> Self {
        TasksConfig { run: true }
    }
}

/// The SMTP server alert emails go through. Without `host`, no email is sent (alerts wait,
/// and the Notifications page says why).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmtpConfig {
    pub host: Option<String>,
    /// Default: 25 with `tls = "none"`, 587 with `starttls`, 465 with `tls`.
    pub port: Option<u16>,
    /// `none`, `starttls` (required, not opportunistic) or `tls` (implicit, port 465).
    pub tls: String,
    pub username: Option<String>,
    /// The password, from `HOOKBOX_SMTP_PASSWORD` only; never shown.
    #[serde(skip)]
    pub password: Option<HiddenKey>,
    /// A file holding the password (its first line).
    pub password_file: Option<PathBuf>,
    /// The sender: `hookbox@example.com` or `Hookbox <hookbox@example.com>`.
    pub from: Option<String>,
    /// How long connecting to and talking with the server may take.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
}

impl Default for SmtpConfig {
    fn default() -> Self {
        SmtpConfig {
            host: None,
            port: None,
            tls: "starttls".into(),
            username: None,
            password: None,
            password_file: None,
            from: None,
            timeout: Duration::from_secs(30),
        }
    }
}

impl SmtpConfig {
    /// The password, from the environment or the password file.
    pub fn password(&self) -> anyhow::Result<Option<String>> {
        use anyhow::Context;
        if let Some(p) = &self.password {
            return Ok(Some(p.expose().to_owned()));
        }
        let Some(file) = &self.password_file else {
            return Ok(None);
        };
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("while reading smtp.password_file {}", file.display()))?;
        Ok(Some(text.lines().next().unwrap_or_default().to_owned()))
    }
}

/// Who hears about failing webhooks besides the recipients set in the console.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertsConfig {
    /// Operator addresses that get every alert (managed as code: they replace the previous
    /// configuration's at each start).
    pub emails: Vec<String>,
    /// A Slack-compatible chat webhook URL (Slack, Mattermost, Rocket.Chat, Discord's
    /// `/slack` URLs) that gets every alert as `{"text": …}`.
    pub chat_url: Option<String>,
    /// An endpoint is failing when this share (percent) of its attempts over `window` failed
    /// (0: never)…
    pub error_rate: u8,
    /// …or timed out (0: never)…
    pub timeout_rate: u8,
    /// …out of at least this many attempts.
    pub min_attempts: u32,
    /// How far back attempts count for those rates.
    #[serde(with = "humantime_serde")]
    pub window: Duration,
    /// After an alert about an endpoint, how long the same rule keeps quiet about it.
    #[serde(with = "humantime_serde")]
    pub cooldown: Duration,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        let t = crate::domain::alerts::Thresholds::default();
        AlertsConfig {
            emails: Vec::new(),
            chat_url: None,
            error_rate: t.error_percent.try_into().unwrap_or_default(),
            timeout_rate: t.timeout_percent.try_into().unwrap_or_default(),
            min_attempts: t.min_attempts.try_into().unwrap_or_default(),
            window: Duration::from_millis(t.window_ms.unsigned_abs()),
            cooldown: Duration::from_millis(t.cooldown_ms.unsigned_abs()),
        }
    }
}

impl AlertsConfig {
    pub fn thresholds(&self) -> crate::domain::alerts::Thresholds {
        crate::domain::alerts::Thresholds {
            min_attempts: i64::from(self.min_attempts),
            error_percent: i64::from(self.error_rate),
            timeout_percent: i64::from(self.timeout_rate),
            window_ms: crate::domain::time::duration_ms(self.window),
            cooldown_ms: crate::domain::time::duration_ms(self.cooldown),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionConfig {
    /// How long message payloads and response bodies are kept (per application and per
    /// message too: `payloadRetentionPeriod`). Counts of deliveries are kept for good.
    #[serde(with = "humantime_serde")]
    pub payload: Duration,
    /// How often the purge runs.
    #[serde(with = "humantime_serde")]
    pub sweep_interval: Duration,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            payload: Duration::from_secs(30 * 24 * 3600),
            sweep_interval: Duration::from_secs(300),
        }
    }
}

/// A key given in the environment: shown by neither `Debug` nor `check-config`.
#[derive(Clone, PartialEq, Eq)]
pub struct HiddenKey(String);

impl HiddenKey {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for HiddenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HiddenKey(..)")
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `full` (durable against power loss) or `normal`.
    pub synchronous: String,
    pub readers: usize,
    /// Most callers' work committed in one transaction.
    pub max_batch: usize,
    /// Largest size of the database file in MiB (`0`: no limit but the disk's). Past it,
    /// writes are refused as on a full disk (503) until data is purged or the limit raised.
    pub max_size_mib: u64,
    /// PostgreSQL: connections each node keeps at most.
    pub pool_size: usize,
    /// PostgreSQL: how often a node tells the others it is alive.
    #[serde(with = "humantime_serde")]
    pub heartbeat_interval: Duration,
    /// PostgreSQL: a node silent for this long is taken for dead, and the deliveries it had
    /// claimed are sent by the others.
    #[serde(with = "humantime_serde")]
    pub node_timeout: Duration,
}

/// An endpoint's share of requests in flight when `max_in_flight_per_endpoint` is unset.
pub const DEFAULT_IN_FLIGHT_PER_ENDPOINT: usize = 64;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeliveryConfig {
    /// Delay before each attempt: the first is normally `0s`.
    #[serde(with = "humantime_serde_vec")]
    pub retry_schedule: Vec<Duration>,
    /// ± fraction of random jitter on each delay.
    pub retry_jitter: f64,
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Longest `Retry-After` honoured.
    #[serde(with = "humantime_serde")]
    pub max_retry_after: Duration,
    /// Requests in flight at once, over all endpoints.
    pub max_in_flight: usize,
    /// Requests in flight at once to one endpoint, a hard cap. Unset, an endpoint's share is
    /// [`DEFAULT_IN_FLIGHT_PER_ENDPOINT`], and one that answers quickly is lent more places
    /// while the node has request slots to spare (see `delivery::pacing`).
    pub max_in_flight_per_endpoint: Option<usize>,
    /// Deliveries held in memory (claimed) at once; the rest wait in the database.
    pub max_queued: usize,
    pub max_queued_per_endpoint: usize,
    /// Bytes of each response body kept in the attempt log.
    pub response_excerpt_bytes: usize,
    /// An endpoint whose every attempt has failed for this long is disabled (`0s`: never).
    #[serde(with = "humantime_serde")]
    pub auto_disable_after: Duration,
    /// Also send `svix-id`, `svix-timestamp`, `svix-signature`.
    pub svix_headers: bool,
    pub user_agent: String,
    /// Endpoint URLs must be `https://`; deliveries to older `http://` URLs are refused.
    pub https_only: bool,
    /// How long an endpoint pauses after it answers 429, 502, 503 or 504; each further such
    /// answer doubles the pause (up to `max_slow_down_pause`), each success halves it.
    #[serde(with = "humantime_serde")]
    pub slow_down_pause: Duration,
    #[serde(with = "humantime_serde")]
    pub max_slow_down_pause: Duration,
    /// The clock deliveries are scheduled by (tests move it forward; not configurable).
    #[serde(skip)]
    pub clock: crate::domain::time::Clock,
    /// How long a delivery waits out a database it cannot read its endpoint from (an outage,
    /// a failover) before it is released, to be claimed again later (not configurable; tests
    /// shorten it).
    #[serde(skip)]
    pub db_patience: Duration,
    /// Messages being stored at once beyond which ingest counts as saturating the HTTP
    /// workers, and deliveries run on their own threads (not configurable; tests lower it).
    #[serde(skip)]
    pub busy_ingest: usize,
    /// An HTTP proxy (`http://host:port`) that every delivery goes through, e.g. for a static
    /// egress address. Proxies in the environment (`HTTP_PROXY`, …) are never used. With a
    /// proxy, the proxy resolves host names and decides what they may reach; hookbox still
    /// refuses URLs whose host is a private or reserved IP address, or `localhost`.
    pub proxy_addr: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    /// Largest message payload, in bytes.
    pub max_payload_bytes: usize,
    /// How long `Idempotency-Key` responses are replayed.
    #[serde(with = "humantime_serde")]
    pub idempotency_ttl: Duration,
    /// Grace period of a rotated secret when the caller names none.
    #[serde(with = "humantime_serde")]
    pub rotation_grace: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("./hookbox-data"),
            database_url: None,
            listen: "127.0.0.1:8080".into(),
            allow_destinations: Vec::new(),
            trusted_proxies: Vec::new(),
            public_url: None,
            log_format: "text".into(),
            tls_cert: None,
            tls_key: None,
            shutdown_grace: Duration::from_secs(10),
            keep_alive: Duration::from_secs(75),
            answer_timeout: Duration::from_secs(30),
            main_key_file: None,
            main_key: None,
            bootstrap_token: true,
            database: DatabaseConfig::default(),
            delivery: DeliveryConfig::default(),
            api: ApiConfig::default(),
            retention: RetentionConfig::default(),
            smtp: SmtpConfig::default(),
            alerts: AlertsConfig::default(),
            tasks: TasksConfig::default(),
        }
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            synchronous: "full".into(),
            readers: 4,
            max_batch: 2000,
            max_size_mib: 0,
            pool_size: 8,
            heartbeat_interval: Duration::from_secs(5),
            node_timeout: Duration::from_secs(20),
        }
    }
}

impl DeliveryConfig {
    /// An endpoint's share of requests in flight: the cap a user set, else the default.
    pub fn in_flight_share(&self) -> usize {
        self.max_in_flight_per_endpoint
            .unwrap_or(DEFAULT_IN_FLIGHT_PER_ENDPOINT)
    }
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            retry_schedule: [0, 5, 300, 1800, 7200, 18_000, 36_000]
                .map(Duration::from_secs)
                .to_vec(),
            retry_jitter: 0.2,
            request_timeout: Duration::from_secs(15),
            connect_timeout: Duration::from_secs(5),
            max_retry_after: Duration::from_secs(3600),
            max_in_flight: 256,
            max_in_flight_per_endpoint: None,
            max_queued: 20_000,
            max_queued_per_endpoint: 5_000,
            response_excerpt_bytes: 4096,
            auto_disable_after: Duration::from_secs(24 * 3600),
            svix_headers: false,
            user_agent: concat!("hookbox/", env!("CARGO_PKG_VERSION")).into(),
            https_only: false,
            slow_down_pause: Duration::from_secs(1),
            max_slow_down_pause: Duration::from_secs(60),
            proxy_addr: None,
            clock: crate::domain::time::Clock::default(),
            db_patience: Duration::from_secs(60),
            // 32 per core: at 16 per core (whbench at concurrency 32 on two cores) a worker's
            // queue is short enough for its deliveries; at 128 per core they fell behind.
            busy_ingest: 32 * std::thread::available_parallelism().map_or(1, usize::from),
        }
    }
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            max_payload_bytes: 1024 * 1024,
            idempotency_ttl: Duration::from_secs(24 * 3600),
            rotation_grace: Duration::from_secs(24 * 3600),
        }
    }
}

/// Values given on the command line (or their `HOOKBOX_*` variables, read by clap).
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    pub listen: Option<String>,
    pub allow_destinations: Vec<IpNet>,
    pub config_file: Option<PathBuf>,
}

/// A yes or no from the environment variable `name`: `1`, `true`, `yes`, `on` or `0`,
/// `false`, `no`, `off`, in any case; anything else is an error naming the variable.
fn env_bool(name: &str, v: &str, default: bool) -> anyhow::Result<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        // Set to nothing (as compose files may): as if unset.
        "" => Ok(default),
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => anyhow::bail!("{name}: `{v}` is not true or false (1/0, yes/no, on/off)"),
    }
}

/// Environment variables read by `Config::load` beside the ones clap reads.
const ENV_KEYS: &[&str] = &[
    "HOOKBOX_DATA_DIR",
    "HOOKBOX_LISTEN",
    "HOOKBOX_ALLOW_DESTINATIONS",
    "HOOKBOX_CONFIG",
    "HOOKBOX_LOG",
    "HOOKBOX_LOG_FORMAT",
    "HOOKBOX_SHUTDOWN_GRACE",
    "HOOKBOX_KEEP_ALIVE",
    "HOOKBOX_ANSWER_TIMEOUT",
    "HOOKBOX_SYNCHRONOUS",
    "HOOKBOX_RETRY_SCHEDULE",
    "HOOKBOX_REQUEST_TIMEOUT",
    "HOOKBOX_MAX_PAYLOAD_BYTES",
    "HOOKBOX_SVIX_HEADERS",
    "HOOKBOX_HTTPS_ONLY",
    "HOOKBOX_MAIN_KEY",
    "HOOKBOX_MAIN_KEY_FILE",
    "HOOKBOX_TRUSTED_PROXIES",
    "HOOKBOX_PUBLIC_URL",
    "HOOKBOX_PROXY_ADDR",
    "HOOKBOX_DATABASE_URL",
    "HOOKBOX_TLS_CERT",
    "HOOKBOX_TLS_KEY",
];

impl Config {
    /// `https` when the listener serves a certificate (`tls_cert` and `tls_key`), else `http`.
    pub fn scheme(&self) -> &'static str {
        if self.tls_cert.is_some() && self.tls_key.is_some() {
            "https"
        } else {
            "http"
        }
    }

    /// Builds the effective configuration from every layer.
    pub fn load(o: &Overrides) -> anyhow::Result<Config> {
        let env: Vec<(String, String)> = std::env::vars()
            .filter(|(k, _)| k.starts_with("HOOKBOX_"))
            .collect();
        Self::load_from(o, &env)
    }

    pub fn load_from(o: &Overrides, env: &[(String, String)]) -> anyhow::Result<Config> {
        use anyhow::Context;
        let data_dir = o
            .data_dir
            .clone()
            .unwrap_or_else(|| Config::default().data_dir);
        let file = o
            .config_file
            .clone()
            .unwrap_or_else(|| data_dir.join("hookbox.toml"));
        let mut file_data_dir = None;
        let mut cfg: Config = match std::fs::read_to_string(&file) {
            Ok(text) => {
                let cfg: Config = toml::from_str(&text)
                    .with_context(|| format!("while parsing {}", file.display()))?;
                if text
                    .parse::<toml::Table>()
                    .is_ok_and(|t| t.contains_key("data_dir"))
                {
                    file_data_dir = Some(cfg.data_dir.clone());
                }
                cfg
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && o.config_file.is_none() => {
                Config::default()
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                anyhow::bail!("config file {} does not exist", file.display())
            }
            // Unreadable (permissions): said as such, not taken for absent.
            Err(e) => return Err(e).with_context(|| format!("while reading {}", file.display())),
        };
        for (k, v) in env {
            match k.as_str() {
                "HOOKBOX_LOG_FORMAT" => cfg.log_format = v.clone(),
                "HOOKBOX_SHUTDOWN_GRACE" => {
                    cfg.shutdown_grace = humantime::parse_duration(v)
                        .context("while reading HOOKBOX_SHUTDOWN_GRACE")?;
                }
                "HOOKBOX_KEEP_ALIVE" => {
                    cfg.keep_alive =
                        humantime::parse_duration(v).context("while reading HOOKBOX_KEEP_ALIVE")?;
                }
                "HOOKBOX_ANSWER_TIMEOUT" => {
                    cfg.answer_timeout = humantime::parse_duration(v)
                        .context("while reading HOOKBOX_ANSWER_TIMEOUT")?;
                }
                "HOOKBOX_SYNCHRONOUS" => cfg.database.synchronous = v.clone(),
                "HOOKBOX_RETRY_SCHEDULE" => {
                    cfg.delivery.retry_schedule =
                        parse_durations(v).context("while reading HOOKBOX_RETRY_SCHEDULE")?;
                }
                "HOOKBOX_REQUEST_TIMEOUT" => {
                    cfg.delivery.request_timeout = humantime::parse_duration(v)
                        .context("while reading HOOKBOX_REQUEST_TIMEOUT")?;
                }
                "HOOKBOX_MAX_PAYLOAD_BYTES" => {
                    cfg.api.max_payload_bytes = v
                        .parse()
                        .context("while reading HOOKBOX_MAX_PAYLOAD_BYTES")?;
                }
                "HOOKBOX_SVIX_HEADERS" => cfg.delivery.svix_headers = env_bool(k, v, false)?,
                "HOOKBOX_HTTPS_ONLY" => cfg.delivery.https_only = env_bool(k, v, false)?,
                "HOOKBOX_MAIN_KEY" => cfg.main_key = Some(HiddenKey::new(v.clone())),
                "HOOKBOX_MAIN_KEY_FILE" => cfg.main_key_file = Some(PathBuf::from(v)),
                "HOOKBOX_DATABASE_URL" => cfg.database_url = Some(v.clone()),
                "HOOKBOX_TRUSTED_PROXIES" => {
                    cfg.trusted_proxies = v
                        .split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::parse)
                        .collect::<Result<_, _>>()
                        .context("while reading HOOKBOX_TRUSTED_PROXIES (comma-separated CIDRs)")?;
                }
                "HOOKBOX_PUBLIC_URL" => cfg.public_url = Some(v.clone()),
                "HOOKBOX_TLS_CERT" => {
                    cfg.tls_cert = Some(PathBuf::from(v)).filter(|p| !p.as_os_str().is_empty())
                }
                "HOOKBOX_TLS_KEY" => {
                    cfg.tls_key = Some(PathBuf::from(v)).filter(|p| !p.as_os_str().is_empty())
                }
                "HOOKBOX_PROXY_ADDR" => cfg.delivery.proxy_addr = Some(v.clone()),
                "HOOKBOX_SMTP_HOST" => cfg.smtp.host = Some(v.clone()).filter(|h| !h.is_empty()),
                "HOOKBOX_SMTP_PORT" => {
                    cfg.smtp.port = Some(v.parse().context("while reading HOOKBOX_SMTP_PORT")?);
                }
                "HOOKBOX_SMTP_TLS" => cfg.smtp.tls = v.clone(),
                "HOOKBOX_SMTP_USERNAME" => cfg.smtp.username = Some(v.clone()),
                "HOOKBOX_SMTP_PASSWORD" => cfg.smtp.password = Some(HiddenKey::new(v.clone())),
                "HOOKBOX_SMTP_PASSWORD_FILE" => cfg.smtp.password_file = Some(PathBuf::from(v)),
                "HOOKBOX_SMTP_FROM" => cfg.smtp.from = Some(v.clone()),
                "HOOKBOX_ALERT_EMAILS" => {
                    cfg.alerts.emails = v
                        .split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect();
                }
                "HOOKBOX_ALERT_CHAT_URL" => {
                    cfg.alerts.chat_url = Some(v.clone()).filter(|u| !u.is_empty());
                }
                "HOOKBOX_TASKS_RUN" => cfg.tasks.run = env_bool(k, v, true)?,
                k if !ENV_KEYS.contains(&k) && !k.ends_with("_FILE") => {
                    tracing::warn!(
                        variable = k,
                        "unknown HOOKBOX_ environment variable ignored (misspelled?)"
                    );
                }
                _ => {}
            }
        }
        // --data-dir (HOOKBOX_DATA_DIR), else a config file's (given with --config: the data
        // dir's own is read from there, and cannot send hookbox elsewhere).
        cfg.data_dir = match (&o.data_dir, file_data_dir) {
            (None, Some(d)) if o.config_file.is_some() => d,
            (_, Some(d)) if o.config_file.is_none() && d != data_dir => anyhow::bail!(
                "{}: data_dir cannot be set in the data dir's own hookbox.toml (it is read from \
                 there): give --data-dir or HOOKBOX_DATA_DIR, or the file with --config",
                file.display()
            ),
            _ => data_dir,
        };
        if let Some(url) = &o.database_url {
            cfg.database_url = Some(url.clone());
        }
        cfg.database_url = cfg.database_url.filter(|u| !u.trim().is_empty());
        if let Some(l) = &o.listen {
            cfg.listen = l.clone();
        }
        cfg.allow_destinations
            .extend(o.allow_destinations.iter().copied());
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks every rule and reports all violations at once.
    pub fn validate(&self) -> anyhow::Result<()> {
        let mut errors = Vec::new();
        if self.listen.parse::<std::net::SocketAddr>().is_err() {
            errors.push(format!("listen: `{}` is not an ADDR:PORT", self.listen));
        }
        if !["full", "normal"].contains(&self.database.synchronous.to_ascii_lowercase().as_str()) {
            errors.push("database.synchronous: must be `full` or `normal`".into());
        }
        if self.delivery.retry_schedule.is_empty() {
            errors.push("delivery.retry_schedule: needs at least one entry".into());
        }
        if !(0.0..1.0).contains(&self.delivery.retry_jitter) {
            errors.push("delivery.retry_jitter: must be in [0, 1)".into());
        }
        if self.delivery.max_in_flight == 0 || self.delivery.max_in_flight_per_endpoint == Some(0) {
            errors.push("delivery.max_in_flight*: must be at least 1".into());
        }
        if self.delivery.slow_down_pause > self.delivery.max_slow_down_pause {
            errors.push(
                "delivery.slow_down_pause: must not exceed delivery.max_slow_down_pause".into(),
            );
        }
        if self.delivery.max_queued == 0 || self.delivery.max_queued_per_endpoint == 0 {
            errors.push("delivery.max_queued*: must be at least 1".into());
        }
        if !["text", "json"].contains(&self.log_format.as_str()) {
            errors.push("log_format: must be `text` or `json`".into());
        }
        if self.main_key.is_some() && self.main_key_file.is_some() {
            errors.push(
                "main_key_file: set either HOOKBOX_MAIN_KEY or a main key file, not both".into(),
            );
        }
        if let Some(k) = &self.main_key {
            if crate::domain::crypto::MainKey::from_base64(k.expose()).is_err() {
                errors.push("HOOKBOX_MAIN_KEY: must be base64 of exactly 32 bytes".into());
            }
        }
        if self.keep_alive > Duration::from_secs(24 * 3600) {
            errors.push("keep_alive: at most 24h (0s: one request per connection)".into());
        }
        if !(Duration::from_secs(1)..=Duration::from_secs(3600)).contains(&self.answer_timeout) {
            errors.push("answer_timeout: between 1s and 1h".into());
        }
        // Durations a timer is set to: none so long that it overflows, none zero where that
        // would make a loop spin or every request fail at once.
        const SECOND: Duration = Duration::from_secs(1);
        const DAY: Duration = Duration::from_secs(24 * 3600);
        let ranges: [(&str, Duration, Duration, Duration); 8] = [
            ("shutdown_grace", self.shutdown_grace, Duration::ZERO, DAY),
            (
                "delivery.request_timeout",
                self.delivery.request_timeout,
                SECOND,
                Duration::from_secs(300),
            ),
            (
                "delivery.connect_timeout",
                self.delivery.connect_timeout,
                SECOND,
                Duration::from_secs(300),
            ),
            (
                "retention.sweep_interval",
                self.retention.sweep_interval,
                SECOND,
                DAY,
            ),
            (
                "api.idempotency_ttl",
                self.api.idempotency_ttl,
                SECOND,
                30 * DAY,
            ),
            (
                "alerts.cooldown",
                self.alerts.cooldown,
                Duration::ZERO,
                30 * DAY,
            ),
            (
                "smtp.timeout",
                self.smtp.timeout,
                SECOND,
                Duration::from_secs(300),
            ),
            (
                "delivery.retry_schedule",
                self.delivery
                    .retry_schedule
                    .iter()
                    .copied()
                    .max()
                    .unwrap_or_default(),
                Duration::ZERO,
                7 * DAY,
            ),
        ];
        for (name, value, min, max) in ranges {
            if !(min..=max).contains(&value) {
                errors.push(format!(
                    "{name}: between {} and {}",
                    humantime::format_duration(min),
                    humantime::format_duration(max)
                ));
            }
        }
        if self.api.max_payload_bytes == 0 {
            errors.push("api.max_payload_bytes: must be at least 1".into());
        }
        if let Some(u) = &self.database_url {
            match url::Url::parse(u) {
                Ok(p) if matches!(p.scheme(), "postgres" | "postgresql") => {}
                _ => errors.push(format!(
                    "database_url: `{}` is not a postgres://USER[:PASS]@HOST:PORT/DB URL",
                    hide_password(u)
                )),
            }
            if self.database.pool_size < 2 {
                errors.push("database.pool_size: must be at least 2".into());
            }
            if self.database.heartbeat_interval.is_zero()
                || self.database.node_timeout < self.database.heartbeat_interval * 2
            {
                errors.push(
                    "database.node_timeout: must be at least twice database.heartbeat_interval \
                     (which must not be 0s)"
                        .into(),
                );
            }
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            errors.push(
                "tls_cert and tls_key: set both (PEM certificate chain and its private key) or neither"
                    .into(),
            );
        }
        for (name, path) in [("tls_cert", &self.tls_cert), ("tls_key", &self.tls_key)] {
            if let Some(p) = path.as_ref().filter(|p| p.is_relative()) {
                errors.push(format!(
                    "{name}: `{}` must be an absolute path (it is read again later, from whatever directory the server runs in)",
                    p.display()
                ));
            }
        }
        if let Some(u) = &self.public_url {
            match url::Url::parse(u) {
                Ok(p) if matches!(p.scheme(), "http" | "https") && p.host_str().is_some() => {}
                _ => errors.push(format!(
                    "public_url: `{u}` is not an http(s) URL like https://hooks.example.com"
                )),
            }
        }
        if !["none", "starttls", "tls"].contains(&self.smtp.tls.as_str()) {
            errors.push(format!(
                "smtp.tls: `{}` must be `none`, `starttls` or `tls`",
                self.smtp.tls
            ));
        }
        if let Some(from) = &self.smtp.from {
            if from.parse::<lettre::message::Mailbox>().is_err() {
                errors.push(format!(
                    "smtp.from: `{from}` is not an address like hookbox@example.com or \
                     `Hookbox <hookbox@example.com>`"
                ));
            }
        }
        if self.smtp.password.is_some() && self.smtp.password_file.is_some() {
            errors.push("smtp.password_file: set either HOOKBOX_SMTP_PASSWORD or a file".into());
        }
        for e in &self.alerts.emails {
            if e.parse::<lettre::Address>().is_err() {
                errors.push(format!("alerts.emails: `{e}` is not an email address"));
            }
        }
        for (name, rate) in [
            ("error_rate", self.alerts.error_rate),
            ("timeout_rate", self.alerts.timeout_rate),
        ] {
            if rate > 100 {
                errors.push(format!(
                    "alerts.{name}: {rate} is not a share of attempts (0 to 100 percent)"
                ));
            }
        }
        if self.alerts.window < Duration::from_secs(60) {
            errors.push(
                "alerts.window: at least a minute (attempts are counted by the minute)".into(),
            );
        }
        if let Some(u) = &self.alerts.chat_url {
            match url::Url::parse(u) {
                Ok(p) if matches!(p.scheme(), "http" | "https") && p.host_str().is_some() => {}
                // Its path is the webhook's token: not shown.
                _ => errors.push(format!(
                    "alerts.chat_url: `{}` is not an http(s) URL",
                    crate::alerts::hide_url_path(u)
                )),
            }
        }
        if let Some(u) = &self.delivery.proxy_addr {
            match url::Url::parse(u) {
                Ok(p) if matches!(p.scheme(), "http" | "https") && p.host_str().is_some() => {}
                _ => errors.push(format!(
                    "delivery.proxy_addr: `{}` is not an http(s) proxy URL like http://proxy:3128",
                    hide_password(u)
                )),
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            anyhow::bail!("invalid configuration:\n  {}", errors.join("\n  "))
        }
    }

    pub fn db_path(&self) -> PathBuf {
        self.data_dir.join("hookbox.db")
    }

    pub fn retry_schedule(&self) -> RetrySchedule {
        RetrySchedule {
            delays: self.delivery.retry_schedule.clone(),
            jitter: self.delivery.retry_jitter,
        }
    }

    /// The effective configuration as TOML, for `check-config`: the main key itself is
    /// never shown, only where it comes from.
    pub fn to_toml(&self) -> String {
        let mut shown = self.clone();
        // Nor is the database's password.
        if let Some(url) = &mut shown.database_url {
            *url = hide_password(url);
        }
        // A proxy's password is not shown either.
        if let Some(addr) = &mut shown.delivery.proxy_addr {
            if let Ok(mut u) = url::Url::parse(addr) {
                if u.password().is_some() {
                    let _ = u.set_password(Some("hidden"));
                    *addr = u.to_string();
                }
            }
        }
        // A chat webhook's URL carries its token.
        if let Some(u) = &mut shown.alerts.chat_url {
            *u = crate::alerts::hide_url_path(u);
        }
        let body =
            toml::to_string_pretty(&shown).unwrap_or_else(|e| format!("# cannot render: {e}"));
        let smtp_password = if self.smtp.password.is_some() {
            "set (HOOKBOX_SMTP_PASSWORD), hidden"
        } else if self.smtp.password_file.is_some() {
            "from smtp.password_file, hidden"
        } else {
            "none"
        };
        let per_endpoint = match self.delivery.max_in_flight_per_endpoint {
            Some(cap) => format!("a hard cap of {cap}"),
            None if self.delivery.max_in_flight > 2 * DEFAULT_IN_FLIGHT_PER_ENDPOINT => format!(
                "a share of {DEFAULT_IN_FLIGHT_PER_ENDPOINT}, more lent to an endpoint that \
                 answers quickly (max_in_flight_per_endpoint unset)"
            ),
            None => format!(
                "a share of {DEFAULT_IN_FLIGHT_PER_ENDPOINT}; max_in_flight leaves none to lend \
                 (max_in_flight_per_endpoint unset)"
            ),
        };
        format!(
            "# main key: {}\n# smtp password: {smtp_password}\n\
             # requests in flight per endpoint: {per_endpoint}\n{body}",
            crate::main_key::source(self)
        )
    }

    /// Whether the state lives in a shared PostgreSQL database.
    pub fn on_postgres(&self) -> bool {
        self.database_url.is_some()
    }

    pub fn ensure_data_dir(&self) -> anyhow::Result<&Path> {
        use anyhow::Context;
        let mut dir = std::fs::DirBuilder::new();
        dir.recursive(true);
        // Only its owner may enter it: it holds the database and, by default, the main key.
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut dir, 0o700);
        dir.create(&self.data_dir)
            .with_context(|| format!("while creating data dir {}", self.data_dir.display()))?;
        #[cfg(unix)]
        if let Ok(meta) = std::fs::metadata(&self.data_dir) {
            use std::os::unix::fs::PermissionsExt;
            if meta.permissions().mode() & 0o077 != 0 {
                tracing::warn!(
                    dir = %self.data_dir.display(),
                    "the data dir can be entered by group or others; `chmod 700` it (it holds the database and, by default, the main key)"
                );
            }
        }
        Ok(&self.data_dir)
    }
}

/// `0s,5s,5m` → durations.
pub fn parse_durations(s: &str) -> anyhow::Result<Vec<Duration>> {
    s.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|p| {
            humantime::parse_duration(p.trim()).map_err(|e| anyhow::anyhow!("`{}`: {e}", p.trim()))
        })
        .collect()
}

mod humantime_serde_vec {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(v: &[Duration], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(v.iter().map(|d| humantime::format_duration(*d).to_string()))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Duration>, D::Error> {
        let v = Vec::<String>::deserialize(d)?;
        v.iter()
            .map(|s| humantime::parse_duration(s).map_err(serde::de::Error::custom))
            .collect()
    }
}

/// `url` with its password, if any, replaced by `hidden`.
fn hide_password(url: &str) -> String {
    let Ok(mut u) = url::Url::parse(url) else {
        return "(not a URL)".to_owned();
    };
    if u.password().is_some() {
        let _ = u.set_password(Some("hidden"));
    }
    // libpq's URLs also take the password as a query parameter.
    if u.query_pairs().any(|(k, _)| k == "password") {
        let pairs: Vec<(String, String)> = u
            .query_pairs()
            .map(|(k, v)| {
                let v = if k == "password" { "hidden".into() } else { v };
                (k.into_owned(), v.into_owned())
            })
            .collect();
        u.query_pairs_mut().clear().extend_pairs(pairs);
    }
    u.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_url_is_shown_without_its_password_wherever_it_is_given() {
        assert_eq!(
            hide_password("postgres://hb:s3cret%40x@db:5432/hookbox"),
            "postgres://hb:hidden@db:5432/hookbox"
        );
        let shown = hide_password(
            "postgres://hb:s3cret@db/hookbox?application_name=hb&password=QueryPw123&sslmode=require",
        );
        assert!(
            !shown.contains("s3cret") && !shown.contains("QueryPw123"),
            "{shown}"
        );
        assert!(shown.contains("application_name=hb"), "{shown}");
        assert!(shown.contains("sslmode=require"), "{shown}");
        let shown = hide_password("postgres:///hookbox?host=127.0.0.1&user=hb&password=KwPw555");
        assert!(!shown.contains("KwPw555"), "{shown}");
        assert!(shown.contains("user=hb"), "{shown}");
        assert_eq!(
            hide_password("postgres://hb@db/hookbox"),
            "postgres://hb@db/hookbox"
        );
        assert_eq!(hide_password("not a url"), "(not a URL)");
    }

    #[test]
    fn layers_apply_in_order_file_then_env_then_flags() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("hookbox.toml"),
            "listen = \"127.0.0.1:9000\"\n[delivery]\nretry_schedule = [\"0s\", \"1s\"]\n",
        )
        .unwrap();
        let o = Overrides {
            data_dir: Some(dir.path().into()),
            ..Default::default()
        };
        let cfg = Config::load_from(&o, &[]).unwrap();
        assert_eq!(cfg.listen, "127.0.0.1:9000");
        assert_eq!(
            cfg.delivery.retry_schedule,
            vec![Duration::ZERO, Duration::from_secs(1)]
        );

        let env = vec![("HOOKBOX_RETRY_SCHEDULE".to_string(), "0s,2s,3m".to_string())];
        let o2 = Overrides {
            listen: Some("127.0.0.1:9001".into()),
            ..o
        };
        let cfg = Config::load_from(&o2, &env).unwrap();
        assert_eq!(cfg.listen, "127.0.0.1:9001");
        assert_eq!(cfg.delivery.retry_schedule[2], Duration::from_secs(180));
    }

    #[test]
    fn validate_lists_every_error() {
        let mut cfg = Config {
            listen: "nope".into(),
            ..Config::default()
        };
        cfg.delivery.retry_schedule.clear();
        let err = cfg.validate().unwrap_err().to_string();
        assert!(err.contains("listen"), "{err}");
        assert!(err.contains("retry_schedule"), "{err}");
    }

    #[test]
    fn alert_thresholds_are_read_and_checked() {
        let cfg: Config = toml::from_str(
            "[alerts]\nerror_rate = 25\nmin_attempts = 4\nwindow = \"5m\"\ncooldown = \"2h\"",
        )
        .unwrap();
        let t = cfg.alerts.thresholds();
        assert_eq!(
            (t.error_percent, t.timeout_percent, t.min_attempts),
            (25, 50, 4)
        );
        assert_eq!((t.window_ms, t.cooldown_ms), (300_000, 7_200_000));
        let mut bad = Config::default();
        bad.alerts.error_rate = 150;
        bad.alerts.window = Duration::from_secs(10);
        let err = bad.validate().unwrap_err().to_string();
        assert!(err.contains("alerts.error_rate"), "{err}");
        assert!(err.contains("alerts.window"), "{err}");
    }

    #[test]
    fn https_only_can_be_switched_on_from_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let o = Overrides {
            data_dir: Some(dir.path().into()),
            ..Default::default()
        };
        assert!(!Config::load_from(&o, &[]).unwrap().delivery.https_only);
        let env = vec![("HOOKBOX_HTTPS_ONLY".to_string(), "true".to_string())];
        assert!(Config::load_from(&o, &env).unwrap().delivery.https_only);
    }

    #[test]
    fn idle_connections_are_kept_longer_than_proxies_keep_theirs_unless_configured() {
        let dir = tempfile::tempdir().unwrap();
        let o = Overrides {
            data_dir: Some(dir.path().into()),
            ..Default::default()
        };
        // nginx and the common cloud load balancers drop idle upstream connections at 60 s.
        let default = Config::load_from(&o, &[]).unwrap().keep_alive;
        assert!(default > Duration::from_secs(60), "{default:?}");
        let env = vec![("HOOKBOX_KEEP_ALIVE".to_string(), "3s".to_string())];
        let cfg = Config::load_from(&o, &env).unwrap();
        assert_eq!(cfg.keep_alive, Duration::from_secs(3));
        let env = vec![("HOOKBOX_KEEP_ALIVE".to_string(), "soon".to_string())];
        let err = format!("{:#}", Config::load_from(&o, &env).unwrap_err());
        assert!(err.contains("HOOKBOX_KEEP_ALIVE"), "{err}");
        // A timer that far away would overflow on every connection.
        let env = vec![(
            "HOOKBOX_KEEP_ALIVE".to_string(),
            "300000000000years".to_string(),
        )];
        let err = format!("{:#}", Config::load_from(&o, &env).unwrap_err());
        assert!(err.contains("keep_alive"), "{err}");
    }

    fn in_dir(dir: &std::path::Path) -> Overrides {
        Overrides {
            data_dir: Some(dir.into()),
            ..Default::default()
        }
    }

    fn env(k: &str, v: &str) -> Vec<(String, String)> {
        vec![(k.to_string(), v.to_string())]
    }

    #[test]
    fn yes_and_no_are_read_in_any_spelling_and_anything_else_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let o = in_dir(dir.path());
        for yes in ["TRUE", "on", "Yes", "1"] {
            let cfg = Config::load_from(&o, &env("HOOKBOX_HTTPS_ONLY", yes)).unwrap();
            assert!(cfg.delivery.https_only, "{yes}");
        }
        let cfg = Config::load_from(&o, &env("HOOKBOX_TASKS_RUN", "OFF")).unwrap();
        assert!(!cfg.tasks.run);
        // Set to nothing: the default.
        let cfg = Config::load_from(&o, &env("HOOKBOX_TASKS_RUN", "")).unwrap();
        assert!(cfg.tasks.run);
        let err = format!(
            "{:#}",
            Config::load_from(&o, &env("HOOKBOX_HTTPS_ONLY", "maybe")).unwrap_err()
        );
        assert!(err.contains("HOOKBOX_HTTPS_ONLY: `maybe`"), "{err}");
    }

    #[test]
    fn durations_out_of_their_range_are_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let o = in_dir(dir.path());
        for (file, named) in [
            (
                "[retention]\nsweep_interval = \"0s\"",
                "retention.sweep_interval",
            ),
            (
                "[delivery]\nrequest_timeout = \"0s\"",
                "delivery.request_timeout",
            ),
            ("shutdown_grace = \"300000000000years\"", "shutdown_grace"),
            (
                "[delivery]\nretry_schedule = [\"5s\", \"8d\"]",
                "delivery.retry_schedule",
            ),
            ("[api]\nidempotency_ttl = \"0s\"", "api.idempotency_ttl"),
        ] {
            std::fs::write(dir.path().join("hookbox.toml"), file).unwrap();
            let err = format!("{:#}", Config::load_from(&o, &[]).unwrap_err());
            assert!(err.contains(&format!("{named}: between")), "{file}: {err}");
        }
    }

    #[test]
    fn an_invalid_proxy_or_chat_url_is_refused_without_showing_its_secret() {
        let dir = tempfile::tempdir().unwrap();
        let o = in_dir(dir.path());
        for (k, v) in [
            ("HOOKBOX_PROXY_ADDR", "socks5://user:pw-SECRET@proxy:1080"),
            (
                "HOOKBOX_ALERT_CHAT_URL",
                "ftp://hooks.example.com/services/SECRET",
            ),
        ] {
            let err = format!("{:#}", Config::load_from(&o, &env(k, v)).unwrap_err());
            assert!(err.contains("not an http(s)"), "{err}");
            assert!(!err.contains("SECRET"), "{err}");
        }
    }

    #[test]
    fn data_dir_is_taken_from_a_config_file_given_with_config_but_not_from_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = dir.path().join("elsewhere");
        let text = format!("data_dir = {:?}\n", elsewhere.display().to_string());
        // The data dir's own file cannot send hookbox to another one.
        std::fs::write(dir.path().join("hookbox.toml"), &text).unwrap();
        let err = format!(
            "{:#}",
            Config::load_from(&in_dir(dir.path()), &[]).unwrap_err()
        );
        assert!(err.contains("data_dir cannot be set"), "{err}");
        // A file given with --config can, unless --data-dir says otherwise.
        let file = dir.path().join("given.toml");
        std::fs::write(&file, &text).unwrap();
        let given = Overrides {
            config_file: Some(file.clone()),
            ..Default::default()
        };
        assert_eq!(Config::load_from(&given, &[]).unwrap().data_dir, elsewhere);
        let both = Overrides {
            config_file: Some(file),
            data_dir: Some(dir.path().into()),
            ..Default::default()
        };
        assert_eq!(Config::load_from(&both, &[]).unwrap().data_dir, dir.path());
    }

    #[test]
    fn requests_are_answered_within_the_answer_timeout_as_configured() {
        let dir = tempfile::tempdir().unwrap();
        let o = Overrides {
            data_dir: Some(dir.path().into()),
            ..Default::default()
        };
        let default = Config::load_from(&o, &[]).unwrap().answer_timeout;
        assert_eq!(default, Duration::from_secs(30));
        let env = vec![("HOOKBOX_ANSWER_TIMEOUT".to_string(), "2s".to_string())];
        let cfg = Config::load_from(&o, &env).unwrap();
        assert_eq!(cfg.answer_timeout, Duration::from_secs(2));
        std::fs::write(
            dir.path().join("hookbox.toml"),
            "answer_timeout = \"45s\"\n",
        )
        .unwrap();
        let cfg = Config::load_from(&o, &[]).unwrap();
        assert_eq!(cfg.answer_timeout, Duration::from_secs(45));
        for bad in ["0s", "2h"] {
            let env = vec![("HOOKBOX_ANSWER_TIMEOUT".to_string(), bad.to_string())];
            let err = format!("{:#}", Config::load_from(&o, &env).unwrap_err());
            assert!(err.contains("answer_timeout: between 1s and 1h"), "{err}");
        }
    }

    #[test]
    fn smtp_and_alert_settings_come_from_the_environment_and_the_password_is_never_printed() {
        let dir = tempfile::tempdir().unwrap();
        let o = Overrides {
            data_dir: Some(dir.path().into()),
            ..Default::default()
        };
        let var = |k: &str, v: &str| (k.to_string(), v.to_string());
        let env = vec![
            var("HOOKBOX_SMTP_HOST", "smtp.example.com"),
            var("HOOKBOX_SMTP_PORT", "2525"),
            var("HOOKBOX_SMTP_TLS", "tls"),
            var("HOOKBOX_SMTP_USERNAME", "hookbox"),
            var("HOOKBOX_SMTP_PASSWORD", "s3cret-pa55"),
            var("HOOKBOX_SMTP_FROM", "Hookbox <hookbox@example.com>"),
            var(
                "HOOKBOX_ALERT_EMAILS",
                "ops@example.com, oncall@example.com",
            ),
            var("HOOKBOX_ALERT_CHAT_URL", "https://chat.example.com/hooks/x"),
            var("HOOKBOX_TASKS_RUN", "false"),
        ];
        assert!(Config::default().tasks.run);
        let cfg = Config::load_from(&o, &env).unwrap();
        assert!(!cfg.tasks.run);
        assert_eq!(cfg.smtp.host.as_deref(), Some("smtp.example.com"));
        assert_eq!(cfg.smtp.port, Some(2525));
        assert_eq!(cfg.smtp.tls, "tls");
        assert_eq!(cfg.smtp.password().unwrap().as_deref(), Some("s3cret-pa55"));
        assert_eq!(cfg.alerts.emails, ["ops@example.com", "oncall@example.com"]);
        let shown = cfg.to_toml();
        assert!(!shown.contains("s3cret-pa55"), "{shown}");
        assert!(!format!("{cfg:?}").contains("s3cret-pa55"));
        assert!(
            shown.contains("smtp password: set (HOOKBOX_SMTP_PASSWORD), hidden"),
            "{shown}"
        );
        assert!(shown.contains("smtp.example.com") && shown.contains("oncall@example.com"));
        assert!(
            !shown.contains("/hooks/x"),
            "the chat URL's token is hidden: {shown}"
        );

        let file = dir.path().join("smtp-password");
        std::fs::write(&file, "from-a-file\n").unwrap();
        let env = vec![var("HOOKBOX_SMTP_PASSWORD_FILE", file.to_str().unwrap())];
        let cfg = Config::load_from(&o, &env).unwrap();
        assert_eq!(cfg.smtp.password().unwrap().as_deref(), Some("from-a-file"));

        for (k, v, says) in [
            ("HOOKBOX_SMTP_TLS", "ssl", "smtp.tls"),
            ("HOOKBOX_SMTP_FROM", "not an address", "smtp.from"),
            (
                "HOOKBOX_ALERT_EMAILS",
                "ops@example.com,nope",
                "alerts.emails",
            ),
            (
                "HOOKBOX_ALERT_CHAT_URL",
                "chat.example.com",
                "alerts.chat_url",
            ),
        ] {
            let err = format!("{:#}", Config::load_from(&o, &[var(k, v)]).unwrap_err());
            assert!(err.contains(says), "{k}={v}: {err}");
        }
    }

    #[test]
    fn main_key_from_env_is_read_but_never_printed() {
        let dir = tempfile::tempdir().unwrap();
        let o = Overrides {
            data_dir: Some(dir.path().into()),
            ..Default::default()
        };
        let key = crate::domain::crypto::MainKey::generate().to_base64();
        let env = vec![("HOOKBOX_MAIN_KEY".to_string(), key.clone())];
        let cfg = Config::load_from(&o, &env).unwrap();
        assert_eq!(cfg.main_key.as_ref().unwrap().expose(), key);
        assert!(!cfg.to_toml().contains(&key), "{}", cfg.to_toml());
        assert!(cfg.to_toml().contains("# main key: HOOKBOX_MAIN_KEY"));
        assert!(!format!("{cfg:?}").contains(&key));

        let bad = vec![("HOOKBOX_MAIN_KEY".to_string(), "c2hvcnQ=".to_string())];
        let err = Config::load_from(&o, &bad).unwrap_err().to_string();
        assert!(
            err.contains("HOOKBOX_MAIN_KEY") && !err.contains("c2hvcnQ="),
            "{err}"
        );
    }

    #[test]
    fn a_database_url_comes_from_the_environment_or_a_flag_and_its_password_is_never_printed() {
        let dir = tempfile::tempdir().unwrap();
        let o = Overrides {
            data_dir: Some(dir.path().into()),
            ..Default::default()
        };
        let url = "postgres://hookbox:s3cret-pw@db.internal:5432/hookbox";
        let env = vec![("HOOKBOX_DATABASE_URL".to_string(), url.to_string())];
        let cfg = Config::load_from(&o, &env).unwrap();
        assert_eq!(cfg.database_url.as_deref(), Some(url));
        assert!(cfg.on_postgres());
        let shown = cfg.to_toml();
        assert!(!shown.contains("s3cret-pw"), "{shown}");
        assert!(
            shown.contains("postgres://hookbox:hidden@db.internal:5432/hookbox"),
            "{shown}"
        );
        // A flag wins over the environment; an empty value means SQLite.
        let flagged = Overrides {
            database_url: Some("postgres://other@h/db".into()),
            ..o.clone()
        };
        let cfg = Config::load_from(&flagged, &env).unwrap();
        assert_eq!(cfg.database_url.as_deref(), Some("postgres://other@h/db"));
        let empty = vec![("HOOKBOX_DATABASE_URL".to_string(), String::new())];
        assert!(!Config::load_from(&o, &empty).unwrap().on_postgres());
        // Not a PostgreSQL URL: refused, without echoing a password.
        let bad = vec![(
            "HOOKBOX_DATABASE_URL".to_string(),
            "mysql://u:pw123456@h/db".to_string(),
        )];
        let err = Config::load_from(&o, &bad).unwrap_err().to_string();
        assert!(
            err.contains("database_url") && !err.contains("pw123456"),
            "{err}"
        );
    }

    #[test]
    fn default_schedule_is_seven_attempts() {
        let d = Config::default().delivery.retry_schedule;
        assert_eq!(d.len(), 7);
        assert_eq!(d[6], Duration::from_secs(10 * 3600));
    }

    #[test]
    fn check_config_says_how_many_requests_one_endpoint_may_have_in_flight() {
        let mut cfg = Config::default();
        let shown = cfg.to_toml();
        assert!(
            shown.contains("# requests in flight per endpoint: a share of 64, more lent"),
            "{shown}"
        );
        assert!(!shown.contains("max_in_flight_per_endpoint ="), "{shown}");
        cfg.delivery.max_in_flight_per_endpoint = Some(10);
        let shown = cfg.to_toml();
        assert!(
            shown.contains("# requests in flight per endpoint: a hard cap of 10\n"),
            "{shown}"
        );
        assert!(shown.contains("max_in_flight_per_endpoint = 10"), "{shown}");
        cfg.delivery.max_in_flight_per_endpoint = None;
        cfg.delivery.max_in_flight = 128;
        assert!(
            cfg.to_toml()
                .contains("a share of 64; max_in_flight leaves none to lend"),
            "{shown}"
        );
    }
}
