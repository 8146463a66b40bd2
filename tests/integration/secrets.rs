//! Endpoint signing secrets at rest (DESIGN.md §3): stored only encrypted under the main key,
//! still signing after restarts and main key rotation, and refused with a wrong key.

use crate::support::{signature_valid, test_config, TestApp, TestReceiver};
use base64::Engine;
use hookbox::app::Application;
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;

/// Everything the database holds, as raw bytes.
fn raw_database(dir: &Path) -> Vec<u8> {
    crate::support::storage::stored_bytes(dir)
}

/// Asserts that neither `secret` nor its base64 body appears in the database files.
fn assert_not_stored(dir: &Path, secret: &str) {
    let bytes = raw_database(dir);
    let body = secret.strip_prefix("whsec_").unwrap();
    for needle in [secret, body] {
        assert!(
            !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
            "`{needle}` is stored in plaintext"
        );
    }
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Asserts that the delivery `r` is signed with `secret`.
fn assert_signed_with(r: &crate::support::receiver::Received, secret: &str) {
    let ok = signature_valid(
        secret,
        r.header("webhook-id").unwrap(),
        r.header("webhook-timestamp").unwrap(),
        &r.body,
        r.header("webhook-signature").unwrap(),
    );
    assert!(ok, "delivery not signed with {secret}: {:?}", r.headers);
}

#[tokio::test]
async fn secrets_are_stored_only_encrypted_and_deliveries_verify_with_the_api_secret() {
    let app = TestApp::spawn().await;
    let rx = TestReceiver::start().await;
    let a = app.create_app("acme").await;
    app.create_event_type("invoice.paid").await;
    let (ep1, s1) = app
        .create_endpoint(&a, json!({ "url": rx.url, "description": "one" }))
        .await;
    let given = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let (_, s2) = app
        .create_endpoint(&a, json!({ "url": rx.url, "secret": given }))
        .await;
    assert_eq!(s2, given);

    // A rotation through an SDK carries an Idempotency-Key: its replay must not keep the
    // new secret in plaintext either.
    let rotate = || {
        app.client
            .post(format!("{}/app/{a}/endpoint/{ep1}/secret/rotate", app.base))
            .bearer_auth(&app.token)
            .header("idempotency-key", "rotate-1")
            .json(&json!({}))
            .send()
    };
    let first: Value = rotate().await.unwrap().json().await.unwrap();
    let replay: Value = rotate().await.unwrap().json().await.unwrap();
    let rotated = first["key"].as_str().unwrap().to_owned();
    assert_eq!(replay["key"], first["key"]);
    let current = app
        .get(&format!("/app/{a}/endpoint/{ep1}/secret"), 200)
        .await;
    assert_eq!(current["key"], rotated.as_str());

    app.send(&a, "invoice.paid", json!({ "n": 1 })).await;
    let got = rx.wait_for_count(2, Duration::from_secs(5)).await;
    for r in &got {
        if r.header("webhook-signature").unwrap().contains(' ') {
            // The rotated endpoint: signed with the new and the old secret (grace period).
            assert_signed_with(r, &rotated);
            assert_signed_with(r, &s1);
        } else {
            assert_signed_with(r, given);
        }
    }

    let dir = app.stop().await;
    for secret in [&s1, &s2, &rotated] {
        assert_not_stored(dir.path(), secret);
    }
    // The key file hookbox made (on PostgreSQL the key comes from configuration).
    #[cfg(unix)]
    if crate::support::storage::postgres_url(dir.path()).is_none() {
        assert_eq!(mode(&dir.path().join("hookbox.key")), 0o600);
    }
}

#[cfg(unix)]
#[tokio::test]
async fn a_key_file_readable_by_others_or_malformed_is_refused_at_start() {
    crate::sqlite_only!(
        "the main key file in the data dir (on PostgreSQL the key comes from configuration)"
    );
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("hookbox.key");
    std::fs::write(
        &key,
        format!(
            "{}\n",
            base64::engine::general_purpose::STANDARD.encode([1u8; 32])
        ),
    )
    .unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o640)).unwrap();
    let err = Application::build(test_config(dir.path()))
        .await
        .err()
        .expect("start is refused");
    let err = format!("{err:#}");
    assert!(
        err.contains("hookbox.key") && err.contains("chmod 600"),
        "{err}"
    );

    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::write(&key, "not a key\n").unwrap();
    let err = Application::build(test_config(dir.path()))
        .await
        .err()
        .expect("start is refused");
    let err = format!("{err:#}");
    assert!(
        err.contains("hookbox.key") && err.contains("malformed"),
        "{err}"
    );
}

#[tokio::test]
async fn a_missing_key_file_is_not_replaced_when_secrets_are_encrypted() {
    crate::sqlite_only!(
        "the main key file in the data dir (on PostgreSQL the key comes from configuration)"
    );
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("hookbox.db");
    hookbox::db::migrate(&db).unwrap();
    let sealed = hookbox::domain::crypto::MainKey::generate()
        .seal("ep_1", "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD");
    let c = rusqlite::Connection::open(&db).unwrap();
    c.execute_batch(&format!(
        "INSERT INTO applications (id, name, created_at, updated_at) VALUES ('app_1', 'A', 1, 1);
         INSERT INTO endpoints (id, app_id, url, created_at, updated_at) \
            VALUES ('ep_1', 'app_1', 'http://127.0.0.1:9/', 1, 1);
         INSERT INTO endpoint_secrets (endpoint_id, secret, created_at) VALUES ('ep_1', '{sealed}', 1);"
    ))
    .unwrap();
    drop(c);
    let err = Application::build(test_config(dir.path()))
        .await
        .err()
        .expect("start is refused");
    let err = format!("{err:#}");
    assert!(err.contains("key file") && err.contains("missing"), "{err}");
    assert!(!dir.path().join("hookbox.key").exists());

    // With the wrong key given, start is refused too, naming where the key came from.
    let mut wrong = test_config(dir.path());
    wrong.main_key = Some(hookbox::config::HiddenKey::new(
        base64::engine::general_purpose::STANDARD.encode([8u8; 32]),
    ));
    let err = Application::build(wrong)
        .await
        .err()
        .expect("start is refused");
    let err = format!("{err:#}");
    assert!(
        err.contains("does not decrypt with the main key") && err.contains("HOOKBOX_MAIN_KEY"),
        "{err}"
    );
}

#[cfg(unix)]
mod real_binary {
    use super::{assert_not_stored, assert_signed_with, mode, raw_database};
    use crate::support::server::{bin, Server};
    use crate::support::TestReceiver;
    use serde_json::{json, Value};
    use std::path::Path;
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    async fn call(server: &Server, token: &str, method: &str, path: &str, body: Value) -> Value {
        let resp = reqwest::Client::new()
            .request(method.parse().unwrap(), format!("{}{path}", server.api))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "{method} {path}: {resp:?}");
        resp.json().await.unwrap_or(Value::Null)
    }

    fn hookbox(args: &[&str], dir: &Path) -> std::process::Output {
        Command::new(bin())
            .args(args)
            .arg("--data-dir")
            .arg(dir)
            .env_remove("HOOKBOX_MAIN_KEY")
            .env_remove("HOOKBOX_MAIN_KEY_FILE")
            .output()
            .unwrap()
    }

    /// Sends one message and checks that delivery `n` (1-based) is signed with `secret`.
    /// Application `acme` with endpoint `ep` at the receiver.
    async fn acme_with_endpoint(server: &Server, token: &str, rx: &TestReceiver) {
        call(
            server,
            token,
            "POST",
            "/app",
            json!({ "name": "Acme", "uid": "acme" }),
        )
        .await;
        call(
            server,
            token,
            "POST",
            "/app/acme/endpoint",
            json!({ "url": rx.url, "uid": "ep" }),
        )
        .await;
    }

    async fn delivery_is_signed(server: &Server, token: &str, rx: &TestReceiver, n: usize) {
        call(
            server,
            token,
            "POST",
            "/app/acme/msg",
            json!({ "eventType": "invoice.paid", "payload": { "n": n } }),
        )
        .await;
        let got = rx.wait_for_count(n, Duration::from_secs(5)).await;
        let secret = call(
            server,
            token,
            "GET",
            "/app/acme/endpoint/ep/secret",
            json!(null),
        )
        .await;
        assert_signed_with(&got[n - 1], secret["key"].as_str().unwrap());
    }

    #[tokio::test]
    async fn restarts_and_main_key_rotation_keep_signing_and_the_old_key_stops_working() {
        let rx = TestReceiver::start().await;
        let data = tempfile::tempdir().unwrap();
        let dir = data.path();
        let token = token(dir);

        let server = Server::start(dir, dir.join("1.log")).await;
        acme_with_endpoint(&server, &token, &rx).await;
        delivery_is_signed(&server, &token, &rx, 1).await;
        let key_file = dir.join("hookbox.key");
        assert_eq!(mode(&key_file), 0o600);
        let old_key = std::fs::read(&key_file).unwrap();
        server.kill_9();

        let server = Server::start(dir, dir.join("2.log")).await;
        delivery_is_signed(&server, &token, &rx, 2).await;
        server.kill_9();

        let out = hookbox(&["rotate-main-key"], dir);
        assert!(out.status.success(), "{out:?}");
        let stdout = String::from_utf8(out.stdout).unwrap();
        assert!(
            stdout.contains("re-encrypted 1 endpoint secret"),
            "{stdout}"
        );
        let new_key = std::fs::read(&key_file).unwrap();
        assert_ne!(new_key, old_key);
        assert_eq!(mode(&key_file), 0o600);
        assert!(!dir.join("hookbox.key.new").exists());

        let server = Server::start(dir, dir.join("3.log")).await;
        delivery_is_signed(&server, &token, &rx, 3).await;
        server.kill_9();

        // The old key no longer opens the secrets: the server refuses to start.
        std::fs::write(&key_file, &old_key).unwrap();
        let mut child = Command::new(bin())
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir)
            .env_remove("HOOKBOX_MAIN_KEY")
            .env_remove("HOOKBOX_MAIN_KEY_FILE")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("the server started with the old main key");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let mut stderr = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
        assert!(!status.success());
        assert!(
            stderr.contains("does not decrypt with the main key"),
            "{stderr}"
        );
    }

    fn token(dir: &Path) -> String {
        let out = hookbox(&["token", "create", "--name", "t"], dir);
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    fn stored_secret(dir: &Path) -> String {
        let c = rusqlite::Connection::open(dir.join("hookbox.db")).unwrap();
        c.query_row("SELECT secret FROM endpoint_secrets", [], |r| r.get(0))
            .unwrap()
    }

    #[tokio::test]
    async fn plaintext_secrets_of_an_older_database_are_encrypted_on_the_next_start() {
        crate::sqlite_only!(
            "secrets stored in plaintext by versions older than PostgreSQL support"
        );
        let rx = TestReceiver::start().await;
        let data = tempfile::tempdir().unwrap();
        let dir = data.path();
        let out = hookbox(&["migrate"], dir);
        assert!(out.status.success(), "{out:?}");
        // What an older version stored: the secret in plaintext.
        let secret = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
        // A rotation response kept for Idempotency-Key replays, also in plaintext.
        let replayed = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let c = rusqlite::Connection::open(dir.join("hookbox.db")).unwrap();
        c.execute_batch(&format!(
            "INSERT INTO applications (id, uid, name, created_at, updated_at) \
                VALUES ('app_1', 'acme', 'Acme', 1, 1);
             INSERT INTO endpoints (id, app_id, uid, url, created_at, updated_at) \
                VALUES ('ep_1', 'app_1', 'ep', '{}', 1, 1);
             INSERT INTO endpoint_secrets (endpoint_id, secret, created_at) \
                VALUES ('ep_1', '{secret}', 1);
             INSERT INTO idempotency_keys (token_id, path, key, status_code, body, created_at) \
                VALUES ('tok_1', '/api/v1/app/acme/endpoint/ep/secret/rotate', 'k', 200, \
                        '{{\"key\":\"{replayed}\"}}', 1);",
            rx.url
        ))
        .unwrap();
        drop(c);
        assert!(raw_database(dir)
            .windows(secret.len())
            .any(|w| w == secret.as_bytes()));
        let token = token(dir);

        let server = Server::start(dir, dir.join("1.log")).await;
        let got = call(
            &server,
            &token,
            "GET",
            "/app/acme/endpoint/ep/secret",
            json!(null),
        )
        .await;
        assert_eq!(got["key"], secret);
        delivery_is_signed(&server, &token, &rx, 1).await;
        server.kill_9();
        assert_not_stored(dir, secret);
        assert_not_stored(dir, replayed);
        let sealed = stored_secret(dir);
        assert!(sealed.starts_with("v1:"), "{sealed}");

        // The next start has nothing left to encrypt: the stored value is left as it is.
        let server = Server::start(dir, dir.join("2.log")).await;
        delivery_is_signed(&server, &token, &rx, 2).await;
        server.kill_9();
        assert_eq!(stored_secret(dir), sealed);
    }

    #[tokio::test]
    async fn a_main_key_from_the_environment_is_used_instead_of_a_key_file() {
        use base64::Engine;
        let rx = TestReceiver::start().await;
        let data = tempfile::tempdir().unwrap();
        let dir = data.path();
        let token = token(dir);
        let key = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
        let env = [("HOOKBOX_MAIN_KEY", key.as_str())];
        let server = Server::start_with_env(dir, dir.join("1.log"), &env).await;
        acme_with_endpoint(&server, &token, &rx).await;
        delivery_is_signed(&server, &token, &rx, 1).await;
        let secret = call(
            &server,
            &token,
            "GET",
            "/app/acme/endpoint/ep/secret",
            json!(null),
        )
        .await;
        server.kill_9();
        assert!(!dir.join("hookbox.key").exists());
        assert_not_stored(dir, secret["key"].as_str().unwrap());

        let server = Server::start_with_env(dir, dir.join("2.log"), &env).await;
        delivery_is_signed(&server, &token, &rx, 2).await;
        server.kill_9();
    }

    #[test]
    fn rotating_a_main_key_from_the_environment_prints_the_new_key_and_writes_no_file() {
        use base64::Engine;
        let data = tempfile::tempdir().unwrap();
        let dir = data.path();
        let b64 = base64::engine::general_purpose::STANDARD;
        let old = b64.encode([3u8; 32]);
        let out = hookbox(&["migrate"], dir);
        assert!(out.status.success(), "{out:?}");
        let out = Command::new(bin())
            .args(["rotate-main-key", "--data-dir"])
            .arg(dir)
            .env("HOOKBOX_MAIN_KEY", &old)
            .env_remove("HOOKBOX_MAIN_KEY_FILE")
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let stdout = String::from_utf8(out.stdout).unwrap();
        assert!(stdout.contains("HOOKBOX_MAIN_KEY"), "{stdout}");
        let new = stdout
            .lines()
            .map(str::trim)
            .find(|l| b64.decode(l).is_ok_and(|b| b.len() == 32))
            .expect("the new key is printed");
        assert_ne!(new, old);
        assert!(!dir.join("hookbox.key").exists());

        let out = Command::new(bin())
            .args(["check-config", "--data-dir"])
            .arg(dir)
            .env("HOOKBOX_MAIN_KEY", new)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        assert!(!String::from_utf8_lossy(&out.stdout).contains(new));
    }
}

/// A data dir whose database holds one secret sealed under `key` (in `hookbox.key`).
#[cfg(unix)]
fn sealed_data_dir(key: &hookbox::domain::crypto::MainKey) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("hookbox.db");
    hookbox::db::migrate(&db).unwrap();
    let sealed = key.seal("ep_1", "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD");
    let c = rusqlite::Connection::open(&db).unwrap();
    c.execute_batch(&format!(
        "INSERT INTO applications (id, name, created_at, updated_at) VALUES ('app_1', 'A', 1, 1);
         INSERT INTO endpoints (id, app_id, url, created_at, updated_at) \
            VALUES ('ep_1', 'app_1', 'http://127.0.0.1:9/', 1, 1);
         INSERT INTO endpoint_secrets (endpoint_id, secret, created_at) VALUES ('ep_1', '{sealed}', 1);"
    ))
    .unwrap();
    hookbox::main_key::write_key_file(&dir.path().join("hookbox.key"), key).unwrap();
    dir
}

#[cfg(unix)]
#[test]
fn a_rotation_interrupted_after_its_commit_is_finished_at_the_next_start() {
    crate::sqlite_only!("main key rotation, which works on SQLite only");
    use hookbox::domain::crypto::MainKey;
    let (old, new) = (MainKey::generate(), MainKey::generate());
    let dir = sealed_data_dir(&old);
    let key_file = dir.path().join("hookbox.key");
    // The crash window: the database is re-encrypted, the key file not yet replaced.
    hookbox::main_key::write_key_file(&dir.path().join("hookbox.key.new"), &new).unwrap();
    hookbox::db::reseal_secrets(&dir.path().join("hookbox.db"), &old, &new).unwrap();

    let (key, _) = hookbox::main_key::load_or_create(&test_config(dir.path())).unwrap();
    assert_eq!(key, new);
    assert_eq!(hookbox::main_key::read_key_file(&key_file).unwrap(), new);
    assert_eq!(mode(&key_file), 0o600);
    assert!(!dir.path().join("hookbox.key.new").exists());
}

#[cfg(unix)]
#[test]
fn a_rotation_interrupted_before_its_commit_is_discarded_at_the_next_start() {
    crate::sqlite_only!("main key rotation, which works on SQLite only");
    use hookbox::domain::crypto::MainKey;
    let (old, new) = (MainKey::generate(), MainKey::generate());
    let dir = sealed_data_dir(&old);
    hookbox::main_key::write_key_file(&dir.path().join("hookbox.key.new"), &new).unwrap();

    let (key, _) = hookbox::main_key::load_or_create(&test_config(dir.path())).unwrap();
    assert_eq!(key, old);
    assert!(!dir.path().join("hookbox.key.new").exists());
}
