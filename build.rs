//! Records the commit the binary is built from (`hookbox --version`): `HOOKBOX_COMMIT` when
//! set (a build outside a git checkout can pass it), else `git rev-parse` when this package
//! is the top of its own checkout, else "unknown".

use std::path::Path;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    (out.status.success() && !text.trim().is_empty()).then(|| text.trim().to_owned())
}

fn main() {
    println!("cargo:rerun-if-env-changed=HOOKBOX_COMMIT");
    let manifest = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
    // Not another repository's commit (a source tree unpacked inside one).
    let own_checkout = git(&["rev-parse", "--show-toplevel"]).is_some_and(|top| {
        Path::new(&top).canonicalize().ok() == Path::new(&manifest).canonicalize().ok()
    });
    let given = std::env::var("HOOKBOX_COMMIT")
        .ok()
        .filter(|c| !c.trim().is_empty());
    // Where the commit came from, for the test of `--version`.
    let source = if given.is_some() { "given" } else { "git" };
    let commit = given
        .or_else(|| {
            own_checkout
                .then(|| git(&["rev-parse", "--short=12", "HEAD"]))
                .flatten()
        })
        .unwrap_or_else(|| "unknown".to_owned());
    // A commit, checkout or reset moves HEAD's reflog (and HEAD or the branch's ref): run
    // again then. Only paths that exist are named (a missing one would mean "always").
    if own_checkout {
        if let Some(dir) = git(&["rev-parse", "--git-dir"]) {
            let common = git(&["rev-parse", "--git-common-dir"]).unwrap_or_else(|| dir.clone());
            let mut watched = vec![format!("{dir}/HEAD"), format!("{dir}/logs/HEAD")];
            if let Some(head) = git(&["symbolic-ref", "-q", "HEAD"]) {
                watched.push(format!("{common}/{head}"));
            }
            watched.push(format!("{common}/packed-refs"));
            for path in watched.iter().filter(|p| Path::new(p).exists()) {
                println!("cargo:rerun-if-changed={path}");
            }
        }
    }
    println!("cargo:rustc-env=HOOKBOX_COMMIT={commit}");
    println!("cargo:rustc-env=HOOKBOX_COMMIT_SOURCE={source}");
}
