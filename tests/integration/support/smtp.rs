//! A real SMTP server on 127.0.0.1 (Python's aiosmtpd, `tests/smtp/sink.py`, in the
//! virtualenv `scripts/test` makes: `HOOKBOX_TEST_SMTP_PYTHON`) that records what it accepts.

use serde::Deserialize;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One message the server accepted.
#[derive(Debug, Clone, Deserialize)]
pub struct Mail {
    pub from: String,
    pub to: Vec<String>,
    pub subject: String,
    pub header_from: String,
    pub text: String,
    pub html: String,
}

pub struct SmtpSink {
    child: Child,
    pub port: u16,
    got: Arc<Mutex<Vec<Mail>>>,
}

/// The interpreter with aiosmtpd; `None` (the test is skipped) only when
/// `HOOKBOX_TEST_SKIP_SMTP=1` says so.
fn python() -> Option<String> {
    match std::env::var("HOOKBOX_TEST_SMTP_PYTHON") {
        Ok(p) if !p.is_empty() => Some(p),
        _ if std::env::var("HOOKBOX_TEST_SKIP_SMTP").as_deref() == Ok("1") => None,
        _ => panic!(
            "HOOKBOX_TEST_SMTP_PYTHON is not set: run the tests with scripts/test (or skip the \
             SMTP tests with HOOKBOX_TEST_SKIP_SMTP=1)"
        ),
    }
}

/// A port nothing listens on (for now).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl SmtpSink {
    /// An SMTP server on `port`, accepting every message (or answering every DATA with
    /// `fail`); `None` when the SMTP tests are skipped.
    pub fn start(port: u16, fail: Option<&str>) -> Option<SmtpSink> {
        let python = python()?;
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/smtp/sink.py");
        let mut cmd = Command::new(python);
        cmd.arg(script).arg("--port").arg(port.to_string());
        if let Some(f) = fail {
            cmd.arg("--fail").arg(f);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the SMTP test server starts");
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        stderr.read_line(&mut line).unwrap();
        assert!(line.contains("listening"), "SMTP test server: {line}");
        let got = Arc::new(Mutex::new(Vec::new()));
        let stdout = child.stdout.take().unwrap();
        let sink = got.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(m) = serde_json::from_str::<Mail>(&line) {
                    sink.lock().unwrap().push(m);
                }
            }
        });
        Some(SmtpSink { child, port, got })
    }

    pub fn received(&self) -> Vec<Mail> {
        self.got.lock().unwrap().clone()
    }

    /// Waits until `n` messages have arrived (or `within` has passed); what arrived.
    pub async fn wait_for(&self, n: usize, within: Duration) -> Vec<Mail> {
        super::wait_for(within, || async { self.received().len() >= n }).await;
        self.received()
    }

    /// Stops the server (its port is free again).
    pub fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
