//! A request id for every HTTP request: taken from the caller's `x-request-id` (or the Svix
//! SDKs' `svix-req-id`) when it is sane, generated otherwise, sent back in `x-request-id`,
//! and recorded on a `request` span so that every log line of the request carries it.

use super::Data;
use crate::domain::ids;
use actix_web::dev::{Service, ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use std::future::Future;
use std::time::Instant;
use tracing::Instrument;

pub const HEADER: &str = "x-request-id";
const INCOMING: [&str; 2] = [HEADER, "svix-req-id"];
const MAX_LEN: usize = 128;

/// The caller's request id, if one of the accepted headers holds a sane one: 1 to 128
/// characters from `[A-Za-z0-9._:-]`, so it is safe to log and to send back.
pub fn incoming(headers: &HeaderMap) -> Option<&str> {
    INCOMING.iter().find_map(|name| {
        let v = headers.get(*name)?.to_str().ok()?;
        is_sane(v).then_some(v)
    })
}

pub fn is_sane(id: &str) -> bool {
    (1..=MAX_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

/// Counts a request in flight until dropped (also when the client goes away mid-request).
struct InFlight(Data);

impl InFlight {
    fn new(st: &Data) -> InFlight {
        st.metrics.requests_in_flight.inc();
        InFlight(st.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.metrics.requests_in_flight.dec();
    }
}

/// The outermost middleware (for `App::wrap_fn`): runs the request inside its span, counts
/// it in flight and adds the `x-request-id` header to the response. Handlers' errors are
/// responses by then and get it too; only an error from a middleware itself (none of ours
/// fails) would reach actix without it.
pub fn traced<S, B>(
    st: &Data,
    req: ServiceRequest,
    srv: &S,
) -> impl Future<Output = Result<ServiceResponse<B>, actix_web::Error>>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
{
    let id = incoming(req.headers()).map_or_else(|| ids::new_id(ids::REQUEST), str::to_owned);
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %req.method(),
        path = %loggable_path(req.match_info().as_str()),
    );
    let in_flight = InFlight::new(st);
    let started = Instant::now();
    let fut = span.in_scope(|| srv.call(req));
    async move {
        let _in_flight = in_flight;
        let mut res = fut.await?;
        // The id is sane (checked above) or generated, so always a valid header value.
        if let Ok(v) = HeaderValue::from_str(&id) {
            res.headers_mut().insert(HeaderName::from_static(HEADER), v);
        }
        tracing::debug!(
            target: "hookbox::access",
            status = res.status().as_u16(),
            elapsed_ms = started.elapsed().as_secs_f64() * 1e3,
            "request finished"
        );
        Ok(res)
    }
    .instrument(span)
}

/// Where a path carries a secret (a portal link's token), the secret is left out.
fn loggable_path(path: &str) -> std::borrow::Cow<'_, str> {
    const OPEN: &str = crate::service::portal::OPEN_PATH;
    match path.find(OPEN) {
        Some(at) => format!("{}***", &path[..at + OPEN.len()]).into(),
        None => path.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn portal_link_tokens_are_left_out_of_logged_paths() {
        assert_eq!(loggable_path("/portal/open/abcDEF123"), "/portal/open/***");
        assert_eq!(loggable_path("/api/v1/app"), "/api/v1/app");
    }

    #[test]
    fn sane_ids_are_short_and_plain() {
        assert!(is_sane("req_01JABC"));
        assert!(is_sane("6a1b2c3d-0000-4000-8000-000000000000"));
        assert!(is_sane("1234567890"));
        assert!(!is_sane(""));
        assert!(!is_sane("has space"));
        assert!(!is_sane("line\nbreak"));
        assert!(!is_sane("quote\""));
        assert!(!is_sane(&"a".repeat(MAX_LEN + 1)));
    }

    #[test]
    fn x_request_id_wins_over_svix_req_id_and_bad_ones_are_skipped() {
        let mut h = HeaderMap::new();
        h.insert(
            HeaderName::from_static("svix-req-id"),
            HeaderValue::from_static("42"),
        );
        assert_eq!(incoming(&h), Some("42"));
        h.insert(
            HeaderName::from_static(HEADER),
            HeaderValue::from_static("abc"),
        );
        assert_eq!(incoming(&h), Some("abc"));
        h.insert(
            HeaderName::from_static(HEADER),
            HeaderValue::from_static("not sane!"),
        );
        assert_eq!(incoming(&h), Some("42"));
    }
}
