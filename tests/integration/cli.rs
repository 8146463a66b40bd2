//! The command line itself.

use crate::support::server::bin;
use std::process::Command;

#[test]
fn version_names_the_release_and_the_commit_it_was_built_from() {
    let out = Command::new(bin()).arg("--version").output().unwrap();
    assert!(out.status.success());
    // A build given `HOOKBOX_COMMIT` names it; any other names the checkout's HEAD.
    let given = (env!("HOOKBOX_COMMIT_SOURCE") == "given").then_some(env!("HOOKBOX_COMMIT"));
    let commit = given.map(str::to_owned).unwrap_or_else(|| {
        Command::new("git")
            .args(["rev-parse", "--short=12", "HEAD"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map_or_else(
                || "unknown".to_owned(),
                |o| String::from_utf8(o.stdout).unwrap().trim().to_owned(),
            )
    });
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim(),
        format!("hookbox {} (commit {commit})", env!("CARGO_PKG_VERSION"))
    );
}

fn token_names(dir: &std::path::Path) -> Vec<String> {
    let out = Command::new(bin())
        .args(["token", "list", "--data-dir"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.split('\t').nth(1).map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn a_first_start_under_systemd_writes_no_api_token_to_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    let server = crate::support::server::Server::start_with_env(
        dir.path(),
        dir.path().join("server.log"),
        &[("JOURNAL_STREAM", "8:12345")],
    )
    .await;
    drop(server);
    assert!(token_names(dir.path()).is_empty());

    let other = tempfile::tempdir().unwrap();
    let server =
        crate::support::server::Server::start(other.path(), other.path().join("server.log")).await;
    drop(server);
    assert_eq!(token_names(other.path()), ["bootstrap"]);
}

#[test]
fn a_token_needs_a_name_of_1_to_128_characters() {
    let dir = tempfile::tempdir().unwrap();
    for bad in [String::new(), "   ".into(), "x".repeat(129)] {
        let out = Command::new(bin())
            .args(["token", "create", "--data-dir"])
            .arg(dir.path())
            .args(["--name", &bad])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{bad:?} was taken");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("1 to 128 characters"), "{err}");
    }
    assert!(token_names(dir.path()).is_empty());
    let ok = Command::new(bin())
        .args(["token", "create", "--data-dir"])
        .arg(dir.path())
        .args(["--name", &"x".repeat(128)])
        .output()
        .unwrap();
    assert!(ok.status.success(), "{ok:?}");
}
