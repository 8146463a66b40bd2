#![allow(dead_code)] // Each test uses part of the harness.
//! Test harness: the real server on 127.0.0.1:0 with its own SQLite file, a real receiver.

pub mod console;
pub mod faulty;
pub mod proxy;
pub mod receiver;
#[cfg(unix)]
pub mod server;
pub mod smtp;
pub mod storage;

use hookbox::app::Application;
use hookbox::config::Config;
use serde_json::{json, Value};
use std::future::Future;
use std::time::{Duration, Instant};

pub use receiver::TestReceiver;

pub struct TestApp {
    pub base: String,
    /// `http://127.0.0.1:PORT`, for the console.
    pub root: String,
    pub token: String,
    /// The first admin's setup token, while no admin exists.
    pub setup_token: Option<String>,
    pub client: reqwest::Client,
    pub dir: tempfile::TempDir,
    /// The clock deliveries are scheduled by, and the dispatcher, for tests that move the one
    /// and step the other.
    pub clock: hookbox::domain::time::Clock,
    pub dispatcher: hookbox::delivery::Dispatcher,
    /// The alert sender, for tests that step it.
    pub notifier: hookbox::alerts::Notifier,
    /// The background task runner, for tests that step it.
    pub tasks: hookbox::tasks::Tasks,
    handle: actix_web::dev::ServerHandle,
    running: tokio::task::JoinHandle<anyhow::Result<()>>,
}

/// The storage the suite runs on: `HOOKBOX_TEST_BACKEND`, SQLite (in each test's own data
/// dir) when unset. Every test builds its server through [`test_config`], so a second backend
/// runs the whole suite unchanged once it is listed here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    /// A database of its own per test (per data dir) on the cluster at `HOOKBOX_TEST_PG_URL`.
    Postgres,
}

/// The main key every PostgreSQL test server uses (on PostgreSQL it must be configured).
pub const PG_TEST_MAIN_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

impl Backend {
    pub fn from_env() -> Backend {
        match std::env::var("HOOKBOX_TEST_BACKEND").as_deref() {
            Err(_) | Ok("" | "sqlite") => Backend::Sqlite,
            Ok("postgres") => Backend::Postgres,
            Ok(other) => {
                panic!("HOOKBOX_TEST_BACKEND={other}: the backends are: sqlite, postgres")
            }
        }
    }

    /// Points `cfg` at this backend's storage for a test whose data dir is `dir`.
    fn configure(self, cfg: &mut Config, dir: &std::path::Path) {
        cfg.data_dir = dir.to_path_buf();
        match self {
            Backend::Sqlite => {}
            Backend::Postgres => {
                cfg.database_url = Some(pg_database_for(dir));
                cfg.main_key = Some(hookbox::config::HiddenKey::new(PG_TEST_MAIN_KEY));
                cfg.database.pool_size = 4;
            }
        }
    }
}

/// The URL of the database of the test whose data dir is `dir`: created on first use, its
/// name kept in the data dir so that a restart finds the same database.
pub fn pg_database_for(dir: &std::path::Path) -> String {
    let admin = std::env::var("HOOKBOX_TEST_PG_URL")
        .expect("HOOKBOX_TEST_BACKEND=postgres needs HOOKBOX_TEST_PG_URL (scripts/test sets it)");
    let base = admin
        .rsplit_once('/')
        .expect("a postgres:// URL")
        .0
        .to_owned();
    let marker = dir.join("pg-database");
    if let Ok(name) = std::fs::read_to_string(&marker) {
        return format!("{base}/{}", name.trim());
    }
    let name = format!("hookbox_{}", ulid::Ulid::new().to_string().to_lowercase());
    let sql = format!("CREATE DATABASE {name}");
    // Tests call this from inside their runtime: connect on a thread of its own.
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let (client, conn) = tokio_postgres::connect(&admin, tokio_postgres::NoTls)
                .await
                .expect("the test cluster answers");
            let conn = tokio::spawn(conn);
            client.batch_execute(&sql).await.expect("CREATE DATABASE");
            drop(client);
            let _ = conn.await;
        });
    })
    .join()
    .unwrap();
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(&marker, &name).unwrap();
    format!("{base}/{name}")
}

/// A config for tests: a temp data dir on the suite's backend, port 0, loopback allowed, a
/// fast retry schedule.
pub fn test_config(dir: &std::path::Path) -> Config {
    let mut cfg = Config {
        data_dir: dir.to_path_buf(),
        listen: "127.0.0.1:0".into(),
        ..Config::default()
    };
    Backend::from_env().configure(&mut cfg, dir);
    cfg.allow_destinations = vec!["127.0.0.0/8".parse().unwrap()];
    cfg.delivery.retry_schedule = [0, 300, 600].map(Duration::from_millis).to_vec();
    cfg.delivery.retry_jitter = 0.0;
    cfg.delivery.request_timeout = Duration::from_secs(2);
    cfg
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        Self::spawn_with(|_| {}).await
    }

    /// Starts a server whose config `tweak` may change.
    pub async fn spawn_with(tweak: impl FnOnce(&mut Config)) -> TestApp {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = test_config(dir.path());
        tweak(&mut cfg);
        Self::start(cfg, dir).await
    }

    pub async fn start(cfg: Config, dir: tempfile::TempDir) -> TestApp {
        Self::start_with_token(cfg, dir, None).await
    }

    /// Stops the server, then starts it again on the same data dir (and with the same token)
    /// with a config that `tweak` may change.
    pub async fn restart_with(self, tweak: impl FnOnce(&mut Config)) -> TestApp {
        let token = self.token.clone();
        let dir = self.stop().await;
        let mut cfg = test_config(dir.path());
        tweak(&mut cfg);
        Self::start_with_token(cfg, dir, Some(token)).await
    }

    async fn start_with_token(
        cfg: Config,
        dir: tempfile::TempDir,
        token: Option<String>,
    ) -> TestApp {
        let clock = cfg.delivery.clock.clone();
        let app = Application::build(cfg).await.expect("server builds");
        let token = token.unwrap_or_else(|| {
            app.bootstrap_token()
                .expect("an empty data dir gets a bootstrap token")
                .to_owned()
        });
        let root = format!("http://127.0.0.1:{}", app.port());
        let base = format!("{root}/api/v1");
        let setup_token = app.setup_token().map(str::to_owned);
        let dispatcher = app.dispatcher();
        let notifier = app.notifier();
        let tasks = app.tasks();
        let handle = app.server_handle();
        let running = tokio::spawn(app.run_until_stopped());
        TestApp {
            base,
            root,
            token,
            setup_token,
            client: reqwest::Client::new(),
            dir,
            clock,
            dispatcher,
            notifier,
            tasks,
            handle,
            running,
        }
    }

    /// Waits (with a deadline) until the dispatcher holds nothing: every delivery it was
    /// handed has been sent and its result written. A receiver counts a request before its
    /// result is written, so a test reads statuses or attempts after a receiver's count only
    /// once this returns.
    pub async fn settled(&self) {
        let idle = wait_for(Duration::from_secs(10), || async { self.dispatcher.idle() }).await;
        assert!(idle, "the dispatcher still holds deliveries");
    }

    /// Proves that nothing more will be sent within `ahead`: once the dispatcher holds
    /// nothing ([`TestApp::settled`]), moves the clock `ahead` and steps the dispatcher,
    /// which must find nothing due. Moves the clock for good: call it last.
    pub async fn assert_nothing_due_within(&self, ahead: Duration) {
        self.settled().await;
        self.clock.advance(ahead);
        let due = self
            .dispatcher
            .run_once()
            .await
            .expect("the dispatcher steps");
        assert_eq!(due, 0, "{due} deliveries were due within {ahead:?}");
    }

    /// Stops the server and waits for its shutdown (background tasks and the data dir lock
    /// included).
    pub async fn stop(self) -> tempfile::TempDir {
        self.handle.stop(true).await;
        self.running
            .await
            .expect("server task completes")
            .expect("server stops cleanly");
        self.dir
    }

    /// Sends a request and asserts the status; returns the JSON body (or null).
    pub async fn call(&self, method: &str, path: &str, body: Option<Value>, expect: u16) -> Value {
        let mut req = self
            .client
            .request(method.parse().unwrap(), format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request is sent");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        assert_eq!(status, expect, "{method} {path} answered {status}: {text}");
        if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{method} {path}: not JSON ({e}): {text}"))
        }
    }

    pub async fn get(&self, path: &str, expect: u16) -> Value {
        self.call("GET", path, None, expect).await
    }

    pub async fn post(&self, path: &str, body: Value, expect: u16) -> Value {
        self.call("POST", path, Some(body), expect).await
    }

    /// Sends raw bytes with a content type; returns status and body text.
    /// POSTs `body` to `path` with `key` as its `Idempotency-Key`: the status and the
    /// answer (`null` when it is not JSON).
    pub async fn post_keyed(&self, path: &str, body: Value, key: &str) -> (u16, Value) {
        let resp = self
            .client
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .header("idempotency-key", key)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    pub async fn raw(&self, method: &str, path: &str, body: Vec<u8>) -> (u16, String) {
        let resp = self
            .client
            .request(method.parse().unwrap(), format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap())
    }

    pub async fn create_app(&self, name: &str) -> String {
        let v = self.post("/app", json!({ "name": name }), 201).await;
        v["id"].as_str().unwrap().to_owned()
    }

    pub async fn create_event_type(&self, name: &str) {
        self.post(
            "/event-type",
            json!({ "name": name, "description": format!("{name} happened") }),
            201,
        )
        .await;
    }

    /// Creates an endpoint; returns (endpoint id, signing secret).
    pub async fn create_endpoint(&self, app: &str, body: Value) -> (String, String) {
        let ep = self.post(&format!("/app/{app}/endpoint"), body, 201).await;
        let id = ep["id"].as_str().unwrap().to_owned();
        let secret = self
            .get(&format!("/app/{app}/endpoint/{id}/secret"), 200)
            .await;
        (id, secret["key"].as_str().unwrap().to_owned())
    }

    pub async fn send(&self, app: &str, event_type: &str, payload: Value) -> String {
        let m = self
            .post(
                &format!("/app/{app}/msg"),
                json!({ "eventType": event_type, "payload": payload }),
                202,
            )
            .await;
        m["id"].as_str().unwrap().to_owned()
    }

    /// The delivery of message `m` of application `a` at endpoint `ep`, as the message's
    /// endpoint list shows it.
    pub async fn delivery(&self, a: &str, m: &str, ep: &str) -> Value {
        let list = self.get(&format!("/app/{a}/msg/{m}/endpoint"), 200).await;
        list["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["id"] == ep)
            .cloned()
            .unwrap_or_else(|| panic!("{m} has no delivery to {ep}: {list}"))
    }

    /// Attempts recorded for a message, oldest first.
    pub async fn attempts(&self, app: &str, msg: &str) -> Vec<Value> {
        let v = self
            .get(&format!("/app/{app}/attempt/msg/{msg}"), 200)
            .await;
        let mut a = v["data"].as_array().unwrap().clone();
        a.reverse();
        a
    }

    /// Waits until a message has at least `n` attempts recorded.
    pub async fn wait_attempts(
        &self,
        app: &str,
        msg: &str,
        n: usize,
        within: Duration,
    ) -> Vec<Value> {
        let deadline = Instant::now() + within;
        loop {
            let last = self.attempts(app, msg).await;
            if last.len() >= n {
                return last;
            }
            assert!(
                Instant::now() < deadline,
                "expected {n} attempts for {msg} within {within:?}, saw {}: {last:#?}",
                last.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Polls `cond` until it holds or `within` passes; true when it held.
pub async fn wait_for<F, Fut>(within: Duration, mut cond: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    loop {
        if cond().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Verifies a Standard Webhooks signature header independently of hookbox's own code:
/// true when one of its `v1,` entries matches `secret`.
pub fn signature_valid(secret: &str, id: &str, ts: &str, body: &[u8], header: &str) -> bool {
    use base64::Engine;
    use hmac::Mac;
    let b64 = base64::engine::general_purpose::STANDARD;
    let key = b64.decode(secret.trim_start_matches("whsec_")).unwrap();
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{ts}.").as_bytes());
    mac.update(body);
    let expected = format!("v1,{}", b64.encode(mac.finalize().into_bytes()));
    header.split(' ').any(|s| s == expected)
}
