//! The real `hookbox` binary as a child process.

use std::io::BufRead;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The binary under test: `TEST_HOOKBOX_BIN` when set, else the one cargo built. (With a
/// target dir shared by several checkouts, `target/debug/hookbox` may be another checkout's
/// build; point `TEST_HOOKBOX_BIN` at `target/debug/deps/hookbox-<hash>` then.)
pub fn bin() -> PathBuf {
    std::env::var_os("TEST_HOOKBOX_BIN").map_or_else(
        || PathBuf::from(env!("CARGO_BIN_EXE_hookbox")),
        PathBuf::from,
    )
}

/// Creates an API token on `dir` with `hookbox token create`; returns it.
pub fn create_token(dir: &Path) -> String {
    let out = Command::new(bin())
        .args(["token", "create", "--name", "t", "--data-dir"])
        .arg(dir)
        .output()
        .expect("hookbox token create runs");
    assert!(out.status.success(), "token create: {out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// A running `hookbox serve`. Dropping it kills the process, so a failing test leaves no
/// server behind.
pub struct Server {
    pub child: Child,
    /// `http://127.0.0.1:PORT/api/v1`
    pub api: String,
    pub log: PathBuf,
}

impl Server {
    /// Starts the binary on `data_dir` with a free port; stderr goes to `log`.
    pub async fn start(data_dir: &Path, log: PathBuf) -> Server {
        Self::start_with_env(data_dir, log, &[]).await
    }

    /// [`Server::start`] with these environment variables set.
    pub async fn start_with_env(data_dir: &Path, log: PathBuf, env: &[(&str, &str)]) -> Server {
        Self::start_with_args(data_dir, log, env, &["--allow-destination", "127.0.0.0/8"]).await
    }

    /// Starts the binary on `data_dir` with a free port, these environment variables and
    /// these extra `serve` arguments (no destination is allowed unless they say so).
    pub async fn start_with_args(
        data_dir: &Path,
        log: PathBuf,
        env: &[(&str, &str)],
        args: &[&str],
    ) -> Server {
        let stderr = std::fs::File::create(&log).unwrap();
        let mut child = Command::new(bin())
            // Not under a service manager, whatever runs the tests.
            .env_remove("JOURNAL_STREAM")
            .envs(env.iter().copied())
            .arg("serve")
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("hookbox serve spawns");
        let stdout = child.stdout.take().unwrap();
        let mut server = Server {
            child,
            api: String::new(),
            log,
        };
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            // Reads to the end (the process's death) so the server never writes to a closed
            // or full pipe.
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let url = line
                    .strip_prefix("hookbox listening on ")
                    .and_then(|rest| rest.split_whitespace().next());
                // Lines before it (a first start's token) are skipped.
                if let Some(url) = url {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(url.to_owned());
                    }
                }
            }
        });
        match tokio::time::timeout(Duration::from_secs(30), rx).await {
            Ok(Ok(url)) => server.api = format!("{url}/api/v1"),
            other => panic!(
                "hookbox serve did not print its address ({other:?}); exit: {:?}; stderr:\n{}",
                server.child.try_wait(),
                server.stderr()
            ),
        }
        server
    }

    /// `kill -9`, after checking the server had not died on its own.
    pub fn kill_9(mut self) {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!(
                "the server died before it was killed ({status}); stderr:\n{}",
                self.stderr()
            );
        }
        self.child.kill().unwrap();
        let status = self.child.wait().unwrap();
        assert_eq!(status.signal(), Some(9), "killed by SIGKILL: {status}");
    }

    /// `kill -NAME` (`HUP`, `TERM`, `STOP`, `CONT`…) to the server's process.
    pub fn signal(&self, name: &str) {
        let pid = self.child.id();
        let status = std::process::Command::new("kill")
            .args([format!("-{name}"), pid.to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{name} {pid}: {status}");
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
