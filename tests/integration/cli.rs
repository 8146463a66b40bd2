//! The command line itself.

use crate::support::server::bin;
use std::process::Command;

#[test]
fn version_names_the_release_and_the_commit_it_was_built_from() {
    let out = Command::new(bin()).arg("--version").output().unwrap();
    assert!(out.status.success());
    let commit = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map_or_else(
            || "unknown".to_owned(),
            |o| String::from_utf8(o.stdout).unwrap().trim().to_owned(),
        );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim(),
        format!("hookbox {} (commit {commit})", env!("CARGO_PKG_VERSION"))
    );
}
