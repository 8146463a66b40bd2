//! A real HTTP receiver on 127.0.0.1:0 that records what it gets and answers as told.

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub at: Instant,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The Standard Webhooks headers: (webhook-id, webhook-timestamp, webhook-signature).
    pub fn signed(&self) -> (&str, &str, &str) {
        let h = |n| self.header(n).unwrap_or_else(|| panic!("no {n} header"));
        (
            h("webhook-id"),
            h("webhook-timestamp"),
            h("webhook-signature"),
        )
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// How to answer one request.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub delay: Duration,
}

impl Reply {
    pub fn status(status: u16) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: String::new(),
            delay: Duration::ZERO,
        }
    }

    pub fn header(mut self, k: &str, v: &str) -> Reply {
        self.headers.push((k.into(), v.into()));
        self
    }

    pub fn body(mut self, b: &str) -> Reply {
        self.body = b.into();
        self
    }

    pub fn delay(mut self, d: Duration) -> Reply {
        self.delay = d;
        self
    }
}

#[derive(Default)]
struct Inner {
    received: Vec<Received>,
    script: VecDeque<Reply>,
    default: Option<Reply>,
}

#[derive(Clone)]
pub struct TestReceiver {
    pub url: String,
    inner: Arc<Mutex<Inner>>,
    handle: actix_web::dev::ServerHandle,
}

impl TestReceiver {
    pub async fn start() -> TestReceiver {
        let inner = Arc::new(Mutex::new(Inner {
            default: Some(Reply::status(200).body("ok")),
            ..Inner::default()
        }));
        let state = inner.clone();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = HttpServer::new(move || {
            let state = state.clone();
            // Any payload hookbox may send (its largest, and then some).
            App::new()
                .app_data(web::PayloadConfig::new(16 * 1024 * 1024))
                .default_service(web::to(move |req: HttpRequest, body: web::Bytes| {
                    let state = state.clone();
                    async move { answer(&state, &req, body).await }
                }))
        })
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        TestReceiver {
            url: format!("http://127.0.0.1:{port}"),
            inner,
            handle,
        }
    }

    /// The next requests are answered with these replies, in order, then the default.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.lock().script.extend(replies);
    }

    /// Every request not scripted gets this reply.
    pub fn set_default(&self, reply: Reply) {
        self.lock().default = Some(reply);
    }

    pub fn received(&self) -> Vec<Received> {
        self.lock().received.clone()
    }

    pub fn count(&self) -> usize {
        self.lock().received.len()
    }

    pub async fn wait_for_count(&self, n: usize, within: Duration) -> Vec<Received> {
        let ok = super::wait_for(within, || async { self.count() >= n }).await;
        let got = self.received();
        assert!(
            ok,
            "expected {n} requests within {within:?}, got {}",
            got.len()
        );
        got
    }

    pub async fn stop(&self) {
        self.handle.stop(false).await;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap()
    }
}

async fn answer(state: &Mutex<Inner>, req: &HttpRequest, body: web::Bytes) -> HttpResponse {
    let reply = {
        let mut s = state.lock().unwrap();
        s.received.push(Received {
            path: req.uri().to_string(),
            headers: req
                .headers()
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_owned(),
                        v.to_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect(),
            body: body.to_vec(),
            at: Instant::now(),
        });
        let next = s.script.pop_front();
        next.or_else(|| s.default.clone()).unwrap()
    };
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let mut r = HttpResponse::build(actix_web::http::StatusCode::from_u16(reply.status).unwrap());
    for (k, v) in &reply.headers {
        r.insert_header((k.as_str(), v.as_str()));
    }
    r.body(reply.body)
}
