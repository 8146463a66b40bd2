//! The outbound HTTP client: pooled, no redirects, bounded in time and in what it reads.

use super::ssrf::{Guard, GuardedResolver};
use super::targets::Target;
use crate::config::DeliveryConfig;
use crate::domain::retry::parse_retry_after;
use crate::domain::signing::signature_header;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Clone)]
pub struct Sender {
    clients: Clients,
    /// The same for the delivery threads: a pooled connection is served by the runtime that
    /// opened it, so theirs stay off the HTTP workers (see `dispatcher`).
    offloaded: Clients,
    guard: Arc<Guard>,
    excerpt_bytes: usize,
    max_retry_after: Duration,
    svix_headers: bool,
    https_only: bool,
    user_agent: String,
}

#[derive(Clone)]
struct Clients {
    checked: reqwest::Client,
    /// For endpoints with `verify_ssl` off: accepts any certificate.
    insecure: reqwest::Client,
}

/// What came back from one request.
#[derive(Debug, Clone)]
pub struct Sent {
    /// The HTTP status, or `None` when there was no response.
    pub status: Option<u16>,
    /// The first bytes of the response body (lossy UTF-8).
    pub body: String,
    pub retry_after: Option<Duration>,
    pub error: Option<String>,
    pub duration: Duration,
    /// The headers sent, one `name: value` per line (empty when nothing was sent).
    pub request_headers: String,
    /// The response's headers, one `name: value` per line, at most `HEADERS_KEPT` bytes.
    pub response_headers: String,
    /// For the operator only: why a destination was refused (what the host resolved to).
    /// `error` says no more than [`REFUSED`], so API and portal users learn nothing of
    /// internal names.
    pub refused_detail: Option<String>,
}

/// What callers are told about a destination the SSRF guard refused.
pub const REFUSED: &str = "destination refused: private or reserved address";

/// How much of a response's headers the attempt log keeps.
pub const HEADERS_KEPT: usize = 4096;

/// Headers as `name: value` lines, cut at `limit` bytes (on a line boundary).
fn header_lines<'a>(headers: impl Iterator<Item = (&'a str, &'a [u8])>, limit: usize) -> String {
    let mut out = String::with_capacity(512);
    for (k, v) in headers {
        let v = String::from_utf8_lossy(v);
        if out.len() + k.len() + v.len() + 3 > limit {
            break;
        }
        out.push_str(k);
        out.push_str(": ");
        out.push_str(&v);
        out.push('\n');
    }
    out
}

impl Sent {
    pub fn is_success(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

impl Sender {
    pub fn new(cfg: &DeliveryConfig, guard: Guard) -> anyhow::Result<Sender> {
        let guard = Arc::new(guard);
        let env_proxy = [
            "HTTP_PROXY",
            "HTTPS_PROXY",
            "ALL_PROXY",
            "http_proxy",
            "https_proxy",
            "all_proxy",
        ]
        .into_iter()
        .find(|v| std::env::var_os(v).is_some());
        if let (Some(var), None) = (env_proxy, &cfg.proxy_addr) {
            tracing::warn!(
                variable = var,
                "a proxy is set in the environment but deliveries do not use it (it would bypass \
                 the destination checks); set delivery.proxy_addr (HOOKBOX_PROXY_ADDR) to send \
                 them through a proxy"
            );
        }
        let proxy = cfg
            .proxy_addr
            .as_deref()
            .map(reqwest::Proxy::all)
            .transpose()?;
        let builder = || {
            let b = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .connect_timeout(cfg.connect_timeout)
                .timeout(cfg.request_timeout)
                // Endpoints often share a host: keep as many idle connections as may be in flight.
                .pool_max_idle_per_host(cfg.max_in_flight)
                .pool_idle_timeout(Duration::from_secs(60))
                .tcp_nodelay(true)
                .user_agent(cfg.user_agent.clone())
                // Proxies from the environment (`HTTP_PROXY`, …) would resolve names out of
                // the guard's sight: only the configured one is used.
                .no_proxy();
            match &proxy {
                // Every connection goes to the proxy, which resolves the endpoints' names
                // and decides what they may reach; literal addresses are checked in `send`.
                Some(p) => b.proxy(p.clone()),
                None => b.dns_resolver(Arc::new(GuardedResolver(guard.clone()))),
            }
        };
        let clients = || -> reqwest::Result<Clients> {
            Ok(Clients {
                checked: builder().build()?,
                insecure: builder().danger_accept_invalid_certs(true).build()?,
            })
        };
        Ok(Sender {
            clients: clients()?,
            offloaded: clients()?,
            guard,
            excerpt_bytes: cfg.response_excerpt_bytes,
            max_retry_after: cfg.max_retry_after,
            svix_headers: cfg.svix_headers,
            https_only: cfg.https_only,
            user_agent: cfg.user_agent.clone(),
        })
    }

    /// POSTs a JSON `body` (a chat alert) to `url` through the same guards as deliveries;
    /// the status and the first bytes of the answer, or why nothing came back.
    pub async fn post_json(&self, url: &str, body: String) -> Result<(u16, String), String> {
        let parsed = url::Url::parse(url).map_err(|e| format!("invalid URL {url}: {e}"))?;
        if self.https_only && parsed.scheme() != "https" {
            return Err("destination refused: this server only sends to https URLs".into());
        }
        if let Err(detail) = self.check_literal_host(&parsed) {
            tracing::warn!(url = %url, detail = %detail, "destination refused");
            return Err(REFUSED.to_owned());
        }
        let res = self
            .clients
            .checked
            .post(parsed)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| describe(&e).0)?;
        let status = res.status().as_u16();
        // At most the first 512 bytes of the answer are read.
        let mut res = res;
        let mut body = Vec::new();
        while body.len() < 512 {
            match res.chunk().await {
                Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                _ => break,
            }
        }
        body.truncate(512);
        Ok((status, excerpt_text(&body)))
    }

    /// Signs and POSTs `body` to the target.
    pub async fn send(&self, target: &Target, msg_id: &str, body: &Arc<str>, now_ms: i64) -> Sent {
        let started = Instant::now();
        let fail = |(error, refused_detail): (String, Option<String>), request_headers: String| {
            if let Some(detail) = &refused_detail {
                tracing::warn!(url = %target.url, detail = %detail, "destination refused");
            }
            Sent {
                status: None,
                body: String::new(),
                retry_after: None,
                error: Some(error),
                duration: started.elapsed(),
                request_headers,
                response_headers: String::new(),
                refused_detail,
            }
        };
        let url = match &target.parsed {
            Some(u) => u.clone(),
            None => {
                return fail(
                    (format!("invalid URL: {}", target.url), None),
                    String::new(),
                )
            }
        };
        if self.https_only && url.scheme() != "https" {
            return fail(
                (
                    "destination refused: this server only delivers to https URLs (delivery.https_only)"
                        .to_owned(),
                    None,
                ),
                String::new(),
            );
        }
        if let Err(detail) = self.check_literal_host(&url) {
            return fail((REFUSED.to_owned(), Some(detail)), String::new());
        }
        let ts = now_ms.div_euclid(1000);
        let signature = signature_header(target.keys_at(now_ms), msg_id, ts, body.as_bytes());
        let clients = if ON_DELIVERY_THREADS.get() {
            &self.offloaded
        } else {
            &self.clients
        };
        let client = if target.verify_ssl {
            &clients.checked
        } else {
            &clients.insecure
        };
        let ts = ts.to_string();
        let mut headers: Vec<(&str, &str)> = target
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        headers.extend([
            ("content-type", "application/json"),
            ("webhook-id", msg_id),
            ("webhook-timestamp", ts.as_str()),
            ("webhook-signature", signature.as_str()),
        ]);
        if self.svix_headers {
            headers.extend([
                ("svix-id", msg_id),
                ("svix-timestamp", ts.as_str()),
                ("svix-signature", signature.as_str()),
            ]);
        }
        let legacy = if target.legacy_signature {
            target
                .current_key()
                .and_then(|key| key.legacy_sign(body.as_bytes()))
        } else {
            None
        };
        if let Some(l) = &legacy {
            headers.push(("x-webhook-signature-256", l.as_str()));
        }
        // In another sender's style, for receivers written for it.
        let styled = target.signature_header.as_ref().and_then(|h| {
            let key = target.current_key()?;
            let value = h.format.value(
                key,
                target.keys_at(now_ms),
                now_ms.div_euclid(1000),
                body.as_bytes(),
            )?;
            Some((h, value))
        });
        if let Some((h, value)) = &styled {
            headers.push((h.name.as_str(), value.as_str()));
            if let Some(id_header) = &h.event_id_header {
                headers.push((id_header.as_str(), msg_id));
            }
        }
        let mut req = client.post(url);
        if let Some(secs) = target.policy.timeout_secs {
            req = req.timeout(Duration::from_secs(u64::from(secs)));
        }
        for (k, v) in &headers {
            req = req.header(*k, *v);
        }
        // The attempt log keeps the headers sent, credentials redacted (`Bearer ***`): the
        // endpoint's own headers come first in `headers`, the shown form stands for them.
        let request_headers = header_lines(
            std::iter::once(("user-agent", self.user_agent.as_bytes()))
                .chain(
                    target
                        .headers_shown
                        .iter()
                        .map(|(k, v)| (k.as_str(), v.as_bytes())),
                )
                .chain(
                    headers[target.headers.len()..]
                        .iter()
                        .map(|(k, v)| (*k, v.as_bytes())),
                ),
            usize::MAX,
        );
        // The body shares the message's bytes: no copy per delivery.
        let bytes = bytes::Bytes::from_owner(SharedText(body.clone()));
        let mut resp = match req.body(bytes).send().await {
            Ok(r) => r,
            Err(e) => return fail(describe(&e), request_headers),
        };
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, now_ms, self.max_retry_after));
        let response_headers = header_lines(
            resp.headers()
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_bytes())),
            HEADERS_KEPT,
        );
        let mut excerpt = Vec::new();
        let mut error = None;
        while excerpt.len() < self.excerpt_bytes {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    let room = self.excerpt_bytes - excerpt.len();
                    excerpt.extend_from_slice(&chunk[..chunk.len().min(room)]);
                }
                Ok(None) => break,
                Err(e) => {
                    error = Some(format!("reading the response body: {}", describe(&e).0));
                    break;
                }
            }
        }
        Sent {
            status: Some(status),
            body: excerpt_text(&excerpt),
            retry_after,
            error,
            duration: started.elapsed(),
            request_headers,
            response_headers,
            refused_detail: None,
        }
    }

    /// reqwest does not resolve IP-literal hosts (nor any host, through a proxy), so those
    /// are checked here; `localhost` is taken for the loopback address it names.
    fn check_literal_host(&self, u: &reqwest::Url) -> Result<(), String> {
        let ip = match u.host() {
            Some(url::Host::Ipv4(ip)) => std::net::IpAddr::V4(ip),
            Some(url::Host::Ipv6(ip)) => std::net::IpAddr::V6(ip),
            Some(url::Host::Domain(d))
                if {
                    let d = d.strip_suffix('.').unwrap_or(d).to_ascii_lowercase();
                    d == "localhost" || d.ends_with(".localhost")
                } =>
            {
                std::net::Ipv4Addr::LOCALHOST.into()
            }
            _ => return Ok(()),
        };
        self.guard.check(ip).map_err(|kind| {
            format!(
                "destination refused: {} is a {kind} address; allow it with --allow-destination",
                u.host_str().unwrap_or_default()
            )
        })
    }
}

/// Shared text as the bytes of a request body.
struct SharedText(Arc<str>);

impl AsRef<[u8]> for SharedText {
    fn as_ref(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

/// An error with its causes, so the attempt log says what really happened; a destination
/// the guard refused is only [`REFUSED`], with the details apart (for the operator).
fn describe(e: &reqwest::Error) -> (String, Option<String>) {
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        if let Some(r) = cause.downcast_ref::<super::ssrf::Refused>() {
            return (REFUSED.to_owned(), Some(r.to_string()));
        }
        source = cause.source();
    }
    (full_chain(e), None)
}

fn full_chain(e: &reqwest::Error) -> String {
    let mut s = if e.is_timeout() {
        crate::domain::delivery::TIMED_OUT.to_owned()
    } else if e.is_connect() {
        "connection failed".to_owned()
    } else {
        "request failed".to_owned()
    };
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        source = cause.source();
    }
    s
}

thread_local! {
    /// Set on the delivery threads, whose requests use their own connections.
    static ON_DELIVERY_THREADS: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Marks the current thread as one of the delivery threads.
pub(super) fn mark_delivery_thread() {
    ON_DELIVERY_THREADS.set(true);
}

/// The excerpt of a response body as text: invalid UTF-8 and NUL bytes (which PostgreSQL's
/// text cannot hold) each become U+FFFD.
fn excerpt_text(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    crate::domain::replace_nul(&text).unwrap_or_else(|| text.into_owned())
}

#[cfg(test)]
mod tests {
    use super::header_lines;

    #[test]
    fn header_lines_are_cut_on_a_line_boundary() {
        let h = [
            ("a", b"1".as_slice()),
            ("bb", b"22".as_slice()),
            ("c", b"\xff".as_slice()),
        ];
        assert_eq!(
            header_lines(h.into_iter(), usize::MAX),
            "a: 1\nbb: 22\nc: \u{fffd}\n"
        );
        assert_eq!(header_lines(h.into_iter(), 12), "a: 1\nbb: 22\n");
        assert_eq!(header_lines(h.into_iter(), 11), "a: 1\n");
    }
}
