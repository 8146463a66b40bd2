//! The browser harness: chromedriver with headless Chromium, the real `hookbox` binary with
//! an admin and an API token made by its CLI, a receiver, and helpers that act like a person
//! using the console (`click_link`, `click_button`, `fill`, `check`, `screenshot`, …).
//!
//! Every process is killed when the [`Console`] is dropped, so a failing test leaves nothing
//! running.

use crate::support::server::{self, Server};
use crate::support::TestReceiver;
use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const USERNAME: &str = "admin";
pub const PASSWORD: &str = "a long browser test password";
/// How long a page, an element or an outcome may take to show up.
pub const WAIT: Duration = Duration::from_secs(15);

/// The browser and its driver.
struct Tools {
    chromium: PathBuf,
    chromedriver: PathBuf,
}

fn env_path(var: &str, default: &str) -> PathBuf {
    std::env::var_os(var).map_or_else(|| PathBuf::from(default), PathBuf::from)
}

/// The tools, or `None` when `HOOKBOX_SKIP_BROWSER_TESTS=1` asks to skip; panics when they are
/// missing otherwise (a browser test that cannot run must not pass quietly).
fn tools(test: &str) -> Option<Tools> {
    if std::env::var("HOOKBOX_SKIP_BROWSER_TESTS").as_deref() == Ok("1") {
        eprintln!("SKIPPED browser test `{test}`: HOOKBOX_SKIP_BROWSER_TESTS=1");
        return None;
    }
    let tools = Tools {
        chromium: env_path("HOOKBOX_CHROMIUM", "/usr/bin/chromium"),
        chromedriver: env_path("HOOKBOX_CHROMEDRIVER", "/usr/bin/chromedriver"),
    };
    for (what, path) in [
        ("Chromium", &tools.chromium),
        ("chromedriver", &tools.chromedriver),
    ] {
        assert!(
            path.is_file(),
            "the browser tests need {what} at {} (Debian: `apt-get install chromium \
             chromium-driver`, which scripts/test does; or set HOOKBOX_CHROMIUM / \
             HOOKBOX_CHROMEDRIVER). Set HOOKBOX_SKIP_BROWSER_TESTS=1 to skip these tests.",
            path.display()
        );
    }
    Some(tools)
}

/// `target/screenshots/`: under `CARGO_TARGET_DIR` when set, else the target dir this test
/// binary was built in (`<target>/debug/deps/browser-…`).
pub fn screenshot_dir() -> PathBuf {
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => Path::new(env!("CARGO_MANIFEST_DIR")).join(dir),
        None => std::env::current_exe()
            .ok()
            .and_then(|exe| exe.ancestors().nth(3).map(Path::to_path_buf))
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target")),
    };
    target.join("screenshots")
}

/// A port nobody listens on right now.
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// A running chromedriver in its own process group, so that killing the group also ends
/// the Chromium it started.
struct Driver {
    child: Child,
    url: String,
    log: PathBuf,
}

impl Driver {
    async fn start(tools: &Tools, dir: &Path) -> Driver {
        let port = free_port();
        let log = dir.join("chromedriver.log");
        let child = Command::new(&tools.chromedriver)
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("{} does not start: {e}", tools.chromedriver.display()));
        let driver = Driver {
            child,
            url: format!("http://127.0.0.1:{port}"),
            log,
        };
        let http = reqwest::Client::new();
        let deadline = Instant::now() + WAIT;
        loop {
            let ready = http.get(format!("{}/status", driver.url)).send().await;
            if ready.is_ok_and(|r| r.status().is_success()) {
                return driver;
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver did not answer on {}; its log:\n{}",
                driver.url,
                driver.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // The whole group (chromedriver and its Chromium), then the driver itself.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A new Chromium session through `driver`, with its own profile (so its own cookies).
async fn new_session(chromium: &Path, driver: &Driver, profile: &Path) -> Client {
    let caps = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": chromium,
            "args": [
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--window-size=1280,900",
                format!("--user-data-dir={}", profile.display()),
            ],
        },
    });
    // Both of rustls's crypto back ends are compiled in (reqwest brings ring), so one
    // must be chosen before fantoccini builds its connector.
    let _ = rustls::crypto::ring::default_provider().install_default();
    ClientBuilder::rustls()
        .expect("a rustls connector")
        .capabilities(caps.as_object().unwrap().clone())
        .connect(&driver.url)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "no Chromium session ({e}); chromedriver's log:\n{}",
                driver.log()
            )
        })
}

/// Runs `hookbox ARGS --data-dir DIR` to completion with `stdin`; returns its stdout.
fn hookbox_cli(dir: &Path, args: &[&str], stdin: &str) -> String {
    let mut cmd = Command::new(server::bin());
    cmd.args(args).arg("--data-dir").arg(dir);
    // On the suite's backend: the test's own PostgreSQL database, when it runs there.
    if let Some(url) = crate::support::storage::postgres_url(dir) {
        cmd.args(["--database-url", &url])
            .env("HOOKBOX_MAIN_KEY", crate::support::PG_TEST_MAIN_KEY);
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("hookbox runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "hookbox {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The HTTP API, with the token the CLI made.
pub struct Api {
    /// `http://127.0.0.1:PORT/api/v1`
    pub base: String,
    pub token: String,
    http: reqwest::Client,
}

impl Api {
    /// Sends a request with `token`; returns the status and the JSON body (or null).
    pub async fn call_as(
        &self,
        token: &str,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(method.parse().unwrap(), format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("the API answers");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn expect(&self, method: &str, path: &str, body: Option<Value>, status: u16) -> Value {
        let (got, v) = self.call_as(&self.token, method, path, body).await;
        assert_eq!(got, status, "{method} {path} answered {got}: {v}");
        v
    }

    pub async fn get(&self, path: &str) -> Value {
        self.expect("GET", path, None, 200).await
    }

    pub async fn post(&self, path: &str, body: Value, status: u16) -> Value {
        self.expect("POST", path, Some(body), status).await
    }

    pub async fn create_event_type(&self, name: &str, description: &str) {
        let body = json!({ "name": name, "description": description });
        self.post("/event-type", body, 201).await;
    }

    /// Sends a message; returns its id.
    pub async fn send(&self, app: &str, event_type: &str, payload: Value) -> String {
        let body = json!({ "eventType": event_type, "payload": payload });
        let m = self.post(&format!("/app/{app}/msg"), body, 202).await;
        m["id"].as_str().unwrap().to_owned()
    }
}

/// One console session in a fresh Chromium against a fresh hookbox. Fields drop in order:
/// the browser session, then chromedriver and Chromium, then hookbox, then the temp dir.
pub struct Console {
    pub browser: Client,
    /// `http://127.0.0.1:PORT`
    pub root: String,
    pub api: Api,
    pub receiver: TestReceiver,
    /// Names screenshots `NN-name.png` in the order they are taken.
    test: &'static str,
    shots: usize,
    chromium: PathBuf,
    driver: Driver,
    server: Server,
    dir: tempfile::TempDir,
}

impl Console {
    /// Everything started, no one logged in yet; `None` when browser tests are skipped.
    pub async fn start(test: &'static str) -> Option<Console> {
        Self::start_with_env(test, &[]).await
    }

    /// [`Console::start`] with the server given these environment variables too.
    pub async fn start_with_env(test: &'static str, extra: &[(&str, &str)]) -> Option<Console> {
        let tools = tools(test)?;
        forget_screenshots(test);
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        hookbox_cli(
            &data,
            &["admin", "create", "--username", USERNAME],
            &format!("{PASSWORD}\n"),
        );
        let token = hookbox_cli(&data, &["token", "create", "--name", "browser-test"], "")
            .trim()
            .to_owned();
        let log = dir.path().join("hookbox.log");
        let server = match crate::support::storage::postgres_url(&data) {
            Some(url) => {
                let mut env = vec![("HOOKBOX_MAIN_KEY", crate::support::PG_TEST_MAIN_KEY)];
                env.extend_from_slice(extra);
                let args = [
                    "--allow-destination",
                    "127.0.0.0/8",
                    "--database-url",
                    url.as_str(),
                ];
                Server::start_with_args(&data, log, &env, &args).await
            }
            None => Server::start_with_env(&data, log, extra).await,
        };
        let root = server.api.trim_end_matches("/api/v1").to_owned();
        let api = Api {
            base: server.api.clone(),
            token,
            http: reqwest::Client::new(),
        };
        let receiver = TestReceiver::start().await;
        let driver = Driver::start(&tools, dir.path()).await;
        let browser = new_session(
            &tools.chromium,
            &driver,
            &dir.path().join("chromium-profile"),
        )
        .await;
        Some(Console {
            browser,
            root,
            api,
            receiver,
            test,
            shots: 0,
            chromium: tools.chromium,
            driver,
            server,
            dir,
        })
    }

    /// Ends the browser session cleanly (the processes are killed on drop either way).
    pub async fn finish(self) {
        let Console { browser, .. } = self;
        let _ = browser.close().await;
    }

    /// Another browser, as someone else would use on another computer: its own Chromium
    /// profile, so none of this one's cookies. `swap_browser` makes the helpers drive it.
    pub async fn new_browser(&self, name: &str) -> Client {
        let profile = self.dir.path().join(format!("chromium-profile-{name}"));
        new_session(&self.chromium, &self.driver, &profile).await
    }

    /// Makes the helpers drive `other` (and leaves the browser they drove in `other`).
    pub fn swap_browser(&mut self, other: &mut Client) {
        std::mem::swap(&mut self.browser, other);
    }

    /// Opens an address someone handed over (a link on this server, or another site).
    pub async fn open_url(&self, url: &str) {
        self.browser
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("opening {url}: {e}"));
    }

    /// Opens a console page by path: only for where a person would type or paste a link
    /// (the start page, a link someone sent).
    pub async fn open(&self, path: &str) {
        self.browser
            .goto(&format!("{}{path}", self.root))
            .await
            .unwrap_or_else(|e| panic!("opening {path}: {e}"));
    }

    /// The path (and query) of the page shown.
    pub async fn path(&self) -> String {
        let url = self.browser.current_url().await.unwrap();
        match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        }
    }

    /// The visible text of the whole page.
    pub async fn page_text(&self) -> String {
        match self.browser.find(Locator::Css("body")).await {
            Ok(body) => body.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    /// Context for a failed assertion: where the browser is and what it shows.
    pub async fn context(&self) -> String {
        format!(
            "at {}; the page says:\n{}\n--- hookbox stderr (tail):\n{}",
            self.path().await,
            self.page_text().await,
            tail(&self.server.stderr(), 20)
        )
    }

    /// Waits for an element; panics with the page's text when it never shows up.
    pub async fn find(&self, locator: Locator<'_>) -> Element {
        match self
            .browser
            .wait()
            .at_most(WAIT)
            .every(Duration::from_millis(50))
            .for_element(locator)
            .await
        {
            Ok(e) => e,
            Err(e) => panic!("no {locator:?} ({e}) {}", self.context().await),
        }
    }

    /// The displayed elements matching `locator` (right now, without waiting).
    pub async fn displayed(&self, locator: Locator<'_>) -> Vec<Element> {
        let mut shown = Vec::new();
        for e in self.browser.find_all(locator).await.unwrap_or_default() {
            if e.is_displayed().await.unwrap_or(false) {
                shown.push(e);
            }
        }
        shown
    }

    /// The one displayed element matching `locator`, waiting for it.
    async fn the(&self, locator: Locator<'_>, what: &str) -> Element {
        let deadline = Instant::now() + WAIT;
        loop {
            let mut shown = self.displayed(locator).await;
            match shown.len() {
                1 => return shown.pop().unwrap(),
                0 if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                n => panic!("{n} visible {what} (want one) {}", self.context().await),
            }
        }
    }

    /// The text of the element with this id (trimmed).
    pub async fn text_of(&self, id: &str) -> String {
        let e = self.find(Locator::Id(id)).await;
        e.text().await.unwrap().trim().to_owned()
    }

    /// The page's `<h1>`.
    pub async fn heading(&self) -> String {
        let e = self.find(Locator::Css("h1")).await;
        e.text().await.unwrap().trim().to_owned()
    }

    /// The confirmation shown after an action (`role="status"`), or "" when none.
    pub async fn notice(&self) -> String {
        let mut all = Vec::new();
        for e in self.displayed(Locator::Css("[role=status]")).await {
            all.push(e.text().await.unwrap_or_default());
        }
        all.join("\n")
    }

    /// Asserts the page's text contains `want`.
    pub async fn assert_shows(&self, want: &str) {
        let text = self.page_text().await;
        assert!(
            text.contains(want),
            "`{want}` not shown {}",
            self.context().await
        );
    }

    /// The value of a definition list entry (`<dt>label</dt><dd>value</dd>`).
    pub async fn prop(&self, label: &str) -> String {
        let xpath = format!("//dt[normalize-space()='{label}']/following-sibling::dd[1]");
        let e = self.find(Locator::XPath(&xpath)).await;
        e.text().await.unwrap().trim().to_owned()
    }

    /// Clicks `element` and waits for the page it leads to to load.
    pub async fn click_and_wait(&self, element: &Element, what: &str) {
        self.mark_page().await;
        element
            .click()
            .await
            .unwrap_or_else(|e| panic!("clicking {what}: {e}"));
        self.wait_for_new_page(&format!("clicking {what}")).await;
    }

    /// Presses Enter in the form field named `name` (submitting its form as the browser
    /// does) and waits for the next page.
    pub async fn press_enter_in(&self, name: &str) {
        let field = self.field(name).await;
        self.mark_page().await;
        field.send_keys("\u{E007}").await.unwrap();
        self.wait_for_new_page(&format!("Enter in `{name}`")).await;
    }

    /// A mark on the current page: gone once another page has replaced it.
    async fn mark_page(&self) {
        self.browser
            .execute("window.__hookboxOldPage = true;", vec![])
            .await
            .unwrap();
    }

    /// Waits until the page marked by `mark_page` has been replaced.
    async fn wait_for_new_page(&self, what: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            let loaded = self
                .browser
                .execute(
                    "return window.__hookboxOldPage === undefined \
                     && document.readyState === 'complete';",
                    vec![],
                )
                .await;
            if matches!(loaded, Ok(Value::Bool(true))) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{what} led to no new page {}",
                self.context().await
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Follows the visible link with exactly this text (several are fine when they all lead
    /// to the same place, like a menu entry and a breadcrumb).
    pub async fn click_link(&self, text: &str) {
        let deadline = Instant::now() + WAIT;
        let mut links = self.displayed(Locator::LinkText(text)).await;
        while links.is_empty() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
            links = self.displayed(Locator::LinkText(text)).await;
        }
        let mut targets = BTreeSet::new();
        for l in &links {
            targets.insert(l.attr("href").await.unwrap().unwrap_or_default());
        }
        assert!(
            targets.len() == 1,
            "want visible links `{text}` to one place, found {targets:?} {}",
            self.context().await
        );
        self.click_and_wait(&links[0], &format!("the link `{text}`"))
            .await;
    }

    /// Presses the visible button with this text, which submits its form, and waits for the
    /// next page.
    pub async fn click_button(&self, text: &str) {
        let button = self.button(text).await;
        self.click_and_wait(&button, &format!("the button `{text}`"))
            .await;
    }

    /// The visible button with this text.
    pub async fn button(&self, text: &str) -> Element {
        let xpath = format!("//button[normalize-space()='{text}']");
        self.the(Locator::XPath(&xpath), &format!("buttons `{text}`"))
            .await
    }

    /// Opens the `<details>` whose summary has this text (a click, no page load).
    pub async fn expand(&self, summary: &str) {
        let xpath = format!("//summary[normalize-space()='{summary}']");
        self.expand_at(&xpath, summary).await;
    }

    /// Opens the `<details>` of the summary matching `xpath`.
    pub async fn expand_at(&self, xpath: &str, what: &str) {
        let s = self
            .the(Locator::XPath(xpath), &format!("summaries `{what}`"))
            .await;
        s.click().await.unwrap();
    }

    /// The visible form field named `name` (input, textarea or select).
    pub async fn field(&self, name: &str) -> Element {
        let css = format!("input[name='{name}'], textarea[name='{name}'], select[name='{name}']");
        self.the(Locator::Css(&css), &format!("fields `{name}`"))
            .await
    }

    /// Types `value` into the field named `name`, replacing what it held.
    pub async fn fill(&self, name: &str, value: &str) {
        let f = self.field(name).await;
        f.clear().await.unwrap();
        f.send_keys(value).await.unwrap();
    }

    /// Sets the checkbox `name`=`value` to `on` by clicking it when it differs.
    pub async fn check(&self, name: &str, value: &str, on: bool) {
        let css = format!("input[type=checkbox][name='{name}'][value='{value}']");
        let b = self
            .the(Locator::Css(&css), &format!("checkboxes {name}={value}"))
            .await;
        if b.is_selected().await.unwrap() != on {
            b.click().await.unwrap();
        }
        assert_eq!(
            b.is_selected().await.unwrap(),
            on,
            "checkbox {name}={value}"
        );
    }

    /// Whether the checkbox `name`=`value` is checked.
    pub async fn is_checked(&self, name: &str, value: &str) -> bool {
        let css = format!("input[type=checkbox][name='{name}'][value='{value}']");
        self.find(Locator::Css(&css))
            .await
            .is_selected()
            .await
            .unwrap()
    }

    /// Chooses the option with this value in the select named `name`.
    pub async fn select(&self, name: &str, value: &str) {
        let s = self.field(name).await;
        s.select_by_value(value).await.unwrap();
    }

    /// Logs in through the login form (the browser must be on it).
    pub async fn log_in(&self) {
        self.fill("username", USERNAME).await;
        self.fill("password", PASSWORD).await;
        self.click_button("Log in").await;
        assert_eq!(
            self.heading().await,
            "Dashboard",
            "{}",
            self.context().await
        );
    }

    /// Opens the console's start page and logs in.
    pub async fn open_and_log_in(&self) {
        self.open("/admin").await;
        self.log_in().await;
    }

    /// Saves a full-page PNG as `target/screenshots/<test>-NN-<name>.png`.
    pub async fn screenshot(&mut self, name: &str) {
        self.shots += 1;
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).unwrap();
        // Grow the window to the page's height so that the picture shows all of it.
        let (w, h) = self.browser.get_window_size().await.unwrap();
        let sizes = self
            .browser
            .execute(
                "return [document.documentElement.scrollHeight, window.innerHeight];",
                vec![],
            )
            .await
            .unwrap();
        let page_h = sizes[0].as_u64().unwrap_or(h);
        let inner_h = sizes[1].as_u64().unwrap_or(h);
        let grow = page_h > inner_h;
        if grow {
            let full = u32::try_from(page_h + (h - inner_h.min(h))).unwrap_or(4000);
            let full = full.min(4000);
            self.browser
                .set_window_size(u32::try_from(w).unwrap(), full)
                .await
                .unwrap();
        }
        let png = self.browser.screenshot().await.unwrap();
        if grow {
            self.browser
                .set_window_size(u32::try_from(w).unwrap(), u32::try_from(h).unwrap())
                .await
                .unwrap();
        }
        let file = dir.join(format!("{}-{:02}-{name}.png", self.test, self.shots));
        std::fs::write(&file, png).unwrap();
    }

    /// Creates an application through the Applications page; the browser ends on its
    /// Webhooks page.
    pub async fn create_app(&self, name: &str, uid: &str) {
        self.click_link("Applications").await;
        self.fill("name", name).await;
        self.fill("uid", uid).await;
        self.click_button("Create application").await;
        assert_eq!(self.heading().await, "Webhooks", "{}", self.context().await);
        assert_eq!(self.notice().await, "Application created.");
    }

    /// Adds an endpoint for the given event types through Add Endpoint (from an app's
    /// Webhooks page); the browser ends on its overview. Returns the endpoint's id.
    pub async fn add_endpoint(&self, url: &str, description: &str, events: &[&str]) -> String {
        self.click_link("Add Endpoint").await;
        self.fill_endpoint_form(url, description, events).await;
        self.click_button("Create").await;
        assert_eq!(
            self.notice().await,
            "Endpoint added.",
            "{}",
            self.context().await
        );
        self.prop("Endpoint ID").await
    }

    /// Fills in the Add Endpoint form: URL, description, only `events` chosen.
    pub async fn fill_endpoint_form(&self, url: &str, description: &str, events: &[&str]) {
        assert_eq!(self.heading().await, "Add Endpoint");
        self.fill("url", url).await;
        self.fill("description", description).await;
        self.check("all_events", "1", false).await;
        for e in events {
            self.check("events", e, true).await;
        }
    }
}

/// Removes the screenshots an earlier run of `test` left, so that none is stale.
fn forget_screenshots(test: &str) {
    let Ok(entries) = std::fs::read_dir(screenshot_dir()) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with(&format!("{test}-")) && name.ends_with(".png") {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
