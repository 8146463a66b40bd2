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
    token_rows(dir).into_iter().map(|r| r.1).collect()
}

/// `hookbox token list` as (id, name, state) rows.
fn token_rows(dir: &std::path::Path) -> Vec<(String, String, String)> {
    let out = Command::new(bin())
        .args(["token", "list", "--data-dir"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f[0].to_owned(), f[1].to_owned(), f[2].to_owned())
        })
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

/// `hookbox token ARGS --data-dir DIR`: whether it succeeded, and what it printed.
fn token_cli(dir: &std::path::Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(bin())
        .arg("token")
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn token_revoke_by_name_takes_the_one_active_token_of_that_name_only() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["ci", "ci", "deploy"] {
        let (ok, out) = token_cli(dir.path(), &["create", "--name", name]);
        assert!(ok, "{out}");
    }
    let rows = token_rows(dir.path());
    let ci: Vec<&str> = rows
        .iter()
        .filter(|r| r.1 == "ci")
        .map(|r| r.0.as_str())
        .collect();
    // Two active tokens share the name: neither is revoked, and the answer says their ids.
    let (ok, out) = token_cli(dir.path(), &["revoke", "ci"]);
    assert!(!ok, "{out}");
    assert!(out.contains(ci[0]) && out.contains(ci[1]), "{out}");
    assert!(token_rows(dir.path()).iter().all(|r| r.2 == "active"));
    // By id: that one alone; then the name picks the one left.
    let (ok, out) = token_cli(dir.path(), &["revoke", ci[0]]);
    assert!(ok && out.contains(ci[0]), "{out}");
    let (ok, out) = token_cli(dir.path(), &["revoke", "ci"]);
    assert!(ok && out.contains(ci[1]), "{out}");
    let states: Vec<(String, String)> = token_rows(dir.path())
        .into_iter()
        .map(|r| (r.1, r.2))
        .collect();
    assert_eq!(
        states,
        [("ci", "revoked"), ("ci", "revoked"), ("deploy", "active")]
            .map(|(n, s)| (n.to_owned(), s.to_owned()))
    );
    let (ok, out) = token_cli(dir.path(), &["revoke", "ci"]);
    assert!(!ok && out.contains("no active token"), "{out}");
    // A name that looks like another token's id: the id names that token alone, even once
    // it is revoked.
    let (ok, out) = token_cli(dir.path(), &["create", "--name", ci[0]]);
    assert!(ok, "{out}");
    let (ok, out) = token_cli(dir.path(), &["revoke", ci[0]]);
    assert!(!ok && out.contains("already revoked"), "{out}");
    let active = token_rows(dir.path())
        .into_iter()
        .filter(|r| r.2 == "active")
        .count();
    assert_eq!(active, 2, "deploy and the token named like an id");
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
    // A tab or a line break would break `token list`'s one line per token.
    for bad in ["a\tb", "a\nb"] {
        let out = Command::new(bin())
            .args(["token", "create", "--data-dir"])
            .arg(dir.path())
            .args(["--name", bad])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{bad:?} was taken");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("control characters"), "{err}");
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

/// `hookbox --help` lists the server's options before any command: given there, they hold for
/// the command that follows as they do after it (a `--database-url` before `token create`
/// once fell back to SQLite in ./hookbox-data without a word).
#[test]
fn the_server_s_options_hold_before_the_command_as_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let url = "postgres://hb:s3cret@127.0.0.1:1/hookbox";
    let check = |args: &[&str]| {
        let out = Command::new(bin())
            .args(args)
            .env_remove("HOOKBOX_DATABASE_URL")
            .env_remove("HOOKBOX_LISTEN")
            .env_remove("HOOKBOX_ALLOW_DESTINATIONS")
            .env("HOOKBOX_DATA_DIR", dir.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let flags = [
        "--database-url",
        url,
        "--listen",
        "127.0.0.1:9931",
        "--allow-destination",
        "10.9.0.0/16",
    ];
    let before = check(&[&flags[..], &["check-config"]].concat());
    let after = check(&[&["check-config"], &flags[..]].concat());
    assert_eq!(before, after);
    for shown in [
        "database_url = \"postgres://hb:hidden@127.0.0.1:1/hookbox\"",
        "listen = \"127.0.0.1:9931\"",
        "10.9.0.0/16",
    ] {
        assert!(before.contains(shown), "{shown} in:\n{before}");
    }
}

/// Listing or revoking tokens only reads what is there: pointed at a database without
/// hookbox's tables (a wrong database name in the URL), they say so and write nothing,
/// where they used to create the whole schema in it.
#[test]
fn token_list_and_revoke_refuse_a_database_without_hookbox_s_tables_and_create_none() {
    crate::postgres_only!("only PostgreSQL takes a database URL");
    let dir = tempfile::tempdir().unwrap();
    let url = crate::support::pg_database_for(dir.path());
    for args in [&["list"][..], &["revoke", "ci"][..]] {
        let out = Command::new(bin())
            .arg("token")
            .args(args)
            .args(["--database-url", &url])
            .env("RUST_BACKTRACE", "0")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}: {out:?}");
        assert!(err.contains("holds no hookbox tables"), "{args:?}: {err}");
    }
    let tables = crate::support::storage::pg_query(
        &url,
        "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'",
    );
    assert_eq!(tables[0].get::<_, i64>(0), 0, "nothing was created");
}

/// `hookbox healthcheck` asks the server on its own address, never through a proxy the
/// environment names (a host-wide `HTTP_PROXY` made a healthy server look down).
#[tokio::test]
async fn healthcheck_asks_the_server_itself_whatever_proxy_the_environment_names() {
    let dir = tempfile::tempdir().unwrap();
    let server =
        crate::support::server::Server::start(dir.path(), dir.path().join("server.log")).await;
    let addr = server
        .api
        .trim_start_matches("http://")
        .trim_end_matches("/api/v1")
        .to_owned();
    for proxy in [None, Some("http://127.0.0.1:1")] {
        let mut cmd = Command::new(bin());
        cmd.args(["healthcheck", "--data-dir"])
            .arg(dir.path())
            .args(["--listen", &addr]);
        if let Some(p) = proxy {
            cmd.env("HTTP_PROXY", p)
                .env("http_proxy", p)
                .env("ALL_PROXY", p);
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{proxy:?}: {out:?}");
    }
}

/// `rotate-main-key` on a data dir with no database (a mistyped path) refuses, and makes
/// nothing there: it had created a database and a key, and reported them re-encrypted.
#[test]
fn rotating_the_main_key_of_a_data_dir_without_a_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let typo = dir.path().join("typo");
    let out = Command::new(bin())
        .args(["rotate-main-key", "--data-dir"])
        .arg(&typo)
        .output()
        .unwrap();
    assert!(!out.status.success(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no hookbox database"), "{err}");
    assert!(!typo.exists());
}
