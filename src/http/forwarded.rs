//! Who is asking, and where they reached hookbox: the client's address, the scheme and the
//! host. `Forwarded` and `X-Forwarded-*` headers are believed only when the TCP peer is one
//! of `trusted_proxies`; from anyone else they are ignored, since anyone can send them.

use super::Data;
use actix_web::http::header::{self, HeaderMap};
use actix_web::HttpRequest;
use ipnet::IpNet;
use std::net::{IpAddr, Ipv4Addr};

fn trusted(req: &HttpRequest) -> &[IpNet] {
    req.app_data::<Data>()
        .map_or(&[], |st| st.cfg.trusted_proxies.as_slice())
}

fn peer(req: &HttpRequest) -> IpAddr {
    req.peer_addr()
        .map_or(Ipv4Addr::UNSPECIFIED.into(), |a| a.ip())
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

/// The `param` of each element of the `Forwarded` headers, in order (`None` where an element
/// lacks it).
fn forwarded_params<'a>(headers: &'a HeaderMap, param: &'a str) -> Vec<Option<&'a str>> {
    list(headers, "forwarded")
        .map(|element| {
            element.split(';').find_map(|pair| {
                let (k, v) = pair.trim().split_once('=')?;
                k.trim()
                    .eq_ignore_ascii_case(param)
                    .then(|| v.trim().trim_matches('"'))
            })
        })
        .collect()
}

/// `192.0.2.1`, `192.0.2.1:80`, `[2001:db8::1]`, `[2001:db8::1]:80` or `2001:db8::1`.
fn parse_node(s: &str) -> Option<IpAddr> {
    if let Some(rest) = s.strip_prefix('[') {
        return rest.split(']').next()?.parse().ok();
    }
    s.parse().ok().or_else(|| {
        s.rsplit_once(':')?
            .0
            .parse::<Ipv4Addr>()
            .ok()
            .map(IpAddr::V4)
    })
}

/// The client's address: the TCP peer, or, when the peer is a trusted proxy, the nearest
/// address in the forwarding chain that is not a trusted proxy.
pub fn client_ip(req: &HttpRequest) -> IpAddr {
    chain_client(peer(req), req.headers(), trusted(req))
}

fn chain_client(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    if !is_trusted(peer, trusted) {
        return peer;
    }
    let fors = forwarded_params(headers, "for");
    let chain: Vec<&str> = if fors.iter().any(Option::is_some) {
        fors.into_iter().flatten().collect()
    } else {
        list(headers, "x-forwarded-for").collect()
    };
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

/// Whether the client reached hookbox over TLS (as a trusted proxy says).
pub fn is_https(req: &HttpRequest) -> bool {
    if req.app_config().secure() {
        return true;
    }
    if !is_trusted(peer(req), trusted(req)) {
        return false;
    }
    let headers = req.headers();
    let proto = forwarded_params(headers, "proto")
        .into_iter()
        .flatten()
        .next_back()
        .or_else(|| list(headers, "x-forwarded-proto").last());
    proto.is_some_and(|p| p.eq_ignore_ascii_case("https"))
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
        .then(|| {
            forwarded_params(headers, "host")
                .into_iter()
                .flatten()
                .next()
                .or_else(|| list(headers, "x-forwarded-host").next())
        })
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

    #[test]
    fn the_client_is_the_nearest_untrusted_hop() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let proxy: IpAddr = "10.0.0.2".parse().unwrap();
        let h = headers(&[("x-forwarded-for", "198.51.100.1, 203.0.113.7, 10.0.0.9")]);
        assert_eq!(
            chain_client(proxy, &h, &trusted),
            "203.0.113.7".parse::<IpAddr>().unwrap()
        );
        // From an untrusted peer, the headers mean nothing.
        let stranger: IpAddr = "192.0.2.5".parse().unwrap();
        assert_eq!(chain_client(stranger, &h, &trusted), stranger);
        // `Forwarded` wins over `X-Forwarded-For`, with ports and IPv6 brackets.
        let h = headers(&[
            (
                "forwarded",
                "for=\"[2001:db8::1]:4711\";proto=https, for=10.1.1.1:80",
            ),
            ("x-forwarded-for", "198.51.100.1"),
        ]);
        assert_eq!(
            chain_client(proxy, &h, &trusted),
            "2001:db8::1".parse::<IpAddr>().unwrap()
        );
        // An unknown hop stops the walk at the last proxy.
        let h = headers(&[("x-forwarded-for", "203.0.113.7, unknown, 10.0.0.9")]);
        assert_eq!(
            chain_client(proxy, &h, &trusted),
            "10.0.0.9".parse::<IpAddr>().unwrap()
        );
        // No header: the proxy itself.
        assert_eq!(chain_client(proxy, &HeaderMap::new(), &trusted), proxy);
    }
}
