//! Who is asking, and where they reached hookbox: the client's address, the scheme and the
//! host. `X-Forwarded-For`, `X-Forwarded-Proto` and `X-Forwarded-Host` are believed only when
//! the TCP peer is one of `trusted_proxies`; from anyone else they are ignored, since anyone
//! can send them. (The `Forwarded` header is not read: most proxies append to
//! `X-Forwarded-For` but pass a client's own `Forwarded` through untouched.)

use super::Data;
use actix_web::http::header::{self, HeaderMap};
use actix_web::HttpRequest;
use ipnet::IpNet;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicBool, Ordering};

fn trusted(req: &HttpRequest) -> &[IpNet] {
    req.app_data::<Data>()
        .map_or(&[], |st| st.cfg.trusted_proxies.as_slice())
}

fn peer(req: &HttpRequest) -> IpAddr {
    req.peer_addr()
        .map_or(Ipv4Addr::UNSPECIFIED.into(), |a| a.ip().to_canonical())
}

fn is_trusted(ip: IpAddr, trusted: &[IpNet]) -> bool {
    trusted.iter().any(|net| net.contains(&ip))
}

/// The values of every `name` header, split at commas, in order.
fn list<'a>(headers: &'a HeaderMap, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    headers
        .get_all(name)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
}

/// The last value of `name`: the one the nearest proxy set.
fn last<'a>(headers: &'a HeaderMap, name: &'a str) -> Option<&'a str> {
    list(headers, name).filter(|v| !v.is_empty()).last()
}

/// `192.0.2.1`, `192.0.2.1:80`, `[2001:db8::1]`, `[2001:db8::1]:80` or `2001:db8::1`.
fn parse_node(s: &str) -> Option<IpAddr> {
    let ip = if let Some(rest) = s.strip_prefix('[') {
        rest.split(']').next()?.parse().ok()?
    } else {
        s.parse().ok().or_else(|| {
            s.rsplit_once(':')?
                .0
                .parse::<Ipv4Addr>()
                .ok()
                .map(IpAddr::V4)
        })?
    };
    Some(IpAddr::to_canonical(&ip))
}

/// The client's address: the TCP peer, or, when the peer is a trusted proxy, the nearest
/// address in `X-Forwarded-For` that is not a trusted proxy.
pub fn client_ip(req: &HttpRequest) -> IpAddr {
    let peer = peer(req);
    let trusted = trusted(req);
    if !is_trusted(peer, trusted) && req.headers().contains_key("x-forwarded-for") {
        warn_untrusted_once(peer);
    }
    chain_client(peer, req.headers(), trusted)
}

/// Says once per process that forwarded headers come from a peer that is not trusted: behind
/// a proxy that is not in `trusted_proxies`, every client has the proxy's address.
fn warn_untrusted_once(peer: IpAddr) {
    static WARNED: AtomicBool = AtomicBool::new(false);
    if !WARNED.swap(true, Ordering::Relaxed) {
        tracing::warn!(
            %peer,
            "X-Forwarded-For came from a peer that is not in trusted_proxies and was ignored; \
             behind a reverse proxy, add its address to trusted_proxies so that clients are \
             told apart"
        );
    }
}

fn chain_client(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    if !is_trusted(peer, trusted) {
        return peer;
    }
    let chain: Vec<&str> = list(headers, "x-forwarded-for").collect();
    let mut client = peer;
    for hop in chain.iter().rev() {
        match parse_node(hop) {
            Some(ip) => {
                client = ip;
                if !is_trusted(ip, trusted) {
                    break;
                }
            }
            // An obfuscated or unknown hop: the last known proxy stands for the client.
            None => break,
        }
    }
    client
}

/// Whether the client reached hookbox over TLS: `public_url` is `https://`, or a trusted
/// proxy says so.
pub fn is_https(req: &HttpRequest) -> bool {
    if req.app_config().secure() {
        return true;
    }
    let public_https = req.app_data::<Data>().is_some_and(|st| {
        st.cfg
            .public_url
            .as_deref()
            .is_some_and(|u| u.starts_with("https://"))
    });
    if public_https {
        return true;
    }
    is_trusted(peer(req), trusted(req))
        && last(req.headers(), "x-forwarded-proto").is_some_and(|p| p.eq_ignore_ascii_case("https"))
}

/// Where people reach hookbox, as `scheme://host[:port]` without a trailing slash:
/// `public_url` when configured; else the host a trusted proxy forwarded; else the request's
/// `Host`.
pub fn public_base(req: &HttpRequest) -> String {
    if let Some(url) = req
        .app_data::<Data>()
        .and_then(|st| st.cfg.public_url.clone())
    {
        return url.trim_end_matches('/').to_owned();
    }
    let headers = req.headers();
    let forwarded_host = is_trusted(peer(req), trusted(req))
        .then(|| last(headers, "x-forwarded-host"))
        .flatten();
    let host = forwarded_host
        .map(str::to_owned)
        .or_else(|| {
            headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_owned)
        })
        .or_else(|| req.app_data::<Data>().map(|st| st.cfg.listen.clone()))
        .unwrap_or_default();
    let scheme = if is_https(req) { "https" } else { "http" };
    format!("{scheme}://{host}")
}

/// The absolute address of a portal link's token (see [`public_base`]).
pub fn portal_link_url(req: &HttpRequest, token: &str) -> String {
    format!(
        "{}{}{token}",
        public_base(req),
        crate::service::portal::OPEN_PATH
    )
}

/// What login throttling counts a client by: its IPv4 address, or the /64 of its IPv6
/// address (one host usually holds a whole /64).
pub fn throttle_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(bits.into())
        }
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::{HeaderName, HeaderValue};

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(HeaderName::from_static(k), HeaderValue::from_static(v));
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_client_is_the_nearest_untrusted_hop() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let proxy = ip("10.0.0.2");
        let h = headers(&[("x-forwarded-for", "198.51.100.1, 203.0.113.7, 10.0.0.9")]);
        assert_eq!(chain_client(proxy, &h, &trusted), ip("203.0.113.7"));
        // From an untrusted peer, the headers mean nothing.
        let stranger = ip("192.0.2.5");
        assert_eq!(chain_client(stranger, &h, &trusted), stranger);
        // A client's own `Forwarded` is not read; ports, brackets and v4-mapped forms are.
        let h = headers(&[
            ("forwarded", "for=192.0.2.99"),
            ("x-forwarded-for", "[::ffff:198.51.100.1]:4711, 10.1.1.1:80"),
        ]);
        assert_eq!(chain_client(proxy, &h, &trusted), ip("198.51.100.1"));
        // An unknown hop stops the walk at the last proxy.
        let h = headers(&[("x-forwarded-for", "203.0.113.7, unknown, 10.0.0.9")]);
        assert_eq!(chain_client(proxy, &h, &trusted), ip("10.0.0.9"));
        // No header: the proxy itself.
        assert_eq!(chain_client(proxy, &HeaderMap::new(), &trusted), proxy);
    }

    #[test]
    fn ipv6_clients_are_throttled_by_their_64() {
        assert_eq!(
            throttle_key(ip("2001:db8:1:2:aaaa::1")),
            throttle_key(ip("2001:db8:1:2:bbbb::9"))
        );
        assert_ne!(
            throttle_key(ip("2001:db8:1:2::1")),
            throttle_key(ip("2001:db8:1:3::1"))
        );
        assert_eq!(throttle_key(ip("::ffff:192.0.2.1")), ip("192.0.2.1"));
    }
}
