#![cfg(unix)]
//! Built-in HTTPS with the real binary: a client trusting the certificate's CA completes the
//! API quick start; a renewed certificate is served after SIGHUP, or once the files change,
//! by the same process; files that do not load leave the served certificate in place.

use crate::support::server::{create_token, Server};
use crate::support::{wait_for, TestReceiver};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// A certificate authority that signs certificates for 127.0.0.1.
struct Ca {
    issuer: Issuer<'static, KeyPair>,
    der: Vec<u8>,
}

impl Ca {
    fn new() -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let key = KeyPair::generate().unwrap();
        let der = params.self_signed(&key).unwrap().der().to_vec();
        Ca {
            issuer: Issuer::new(params, key),
            der,
        }
    }

    /// Writes a new certificate and key (new key pair each time) to these paths, each by a
    /// rename as a renewal does; returns the certificate's DER.
    fn issue(&self, cert: &Path, key: &Path) -> Vec<u8> {
        let params =
            CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
        let pair = KeyPair::generate().unwrap();
        let issued = params.signed_by(&pair, &self.issuer).unwrap();
        let replace = |path: &Path, text: String| {
            let tmp = path.with_extension("new");
            std::fs::write(&tmp, text).unwrap();
            std::fs::rename(&tmp, path).unwrap();
        };
        replace(cert, issued.pem());
        replace(key, pair.serialize_pem());
        issued.der().to_vec()
    }
}

/// The certificate the server presents to a new connection.
async fn served(client: &reqwest::Client, api: &str) -> Option<Vec<u8>> {
    let resp = client.get(format!("{api}/health")).send().await.ok()?;
    resp.extensions()
        .get::<reqwest::tls::TlsInfo>()?
        .peer_certificate()
        .map(<[u8]>::to_vec)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_serves_the_api_and_a_renewed_certificate_without_a_restart() {
    let (dir, tls) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (cert, key) = (
        tls.path().join("hookbox.crt"),
        tls.path().join("hookbox.key"),
    );
    let ca = Ca::new();
    let first = ca.issue(&cert, &key);
    let token = create_token(dir.path());
    let mut server = Server::start_with_env(
        dir.path(),
        dir.path().join("server.log"),
        &[
            ("HOOKBOX_TLS_CERT", cert.to_str().unwrap()),
            ("HOOKBOX_TLS_KEY", key.to_str().unwrap()),
        ],
    )
    .await;
    assert!(
        server.api.starts_with("https://127.0.0.1:"),
        "{}",
        server.api
    );
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.der.clone().into()).unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut tls_client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    // A resumed session shows the certificate of the session it resumes.
    tls_client.resumption = rustls::client::Resumption::disabled();
    let client = reqwest::Client::builder()
        .use_preconfigured_tls(tls_client)
        .tls_info(true)
        // A new connection per request: each sees the certificate served at that moment.
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    assert_eq!(served(&client, &server.api).await, Some(first.clone()));

    // The quick start, over HTTPS.
    let receiver = TestReceiver::start().await;
    let call = |method: reqwest::Method, path: &str, body: Value| {
        client
            .request(method, format!("{}{path}", server.api))
            .bearer_auth(&token)
            .json(&body)
            .send()
    };
    let app: Value = call(reqwest::Method::POST, "/app", json!({"name": "Shop"}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let app = app["id"].as_str().unwrap().to_owned();
    let ep = call(
        reqwest::Method::POST,
        &format!("/app/{app}/endpoint"),
        json!({"url": format!("{}/hook", receiver.url)}),
    )
    .await
    .unwrap();
    assert_eq!(ep.status(), 201);
    let msg = call(
        reqwest::Method::POST,
        &format!("/app/{app}/msg"),
        json!({"eventType": "order.created", "payload": {"order": 7}}),
    )
    .await
    .unwrap();
    assert_eq!(msg.status(), 202);
    let got = receiver.wait_for_count(1, Duration::from_secs(10)).await;
    assert_eq!(got[0].json()["order"], 7);

    // Over TLS the console's cookies are Secure.
    let base = server.api.trim_end_matches("/api/v1");
    let login = client
        .get(format!("{base}/admin/login"))
        .send()
        .await
        .unwrap();
    let cookie = login.headers()["set-cookie"].to_str().unwrap();
    assert!(cookie.contains("; Secure"), "{cookie}");
    // Plain HTTP on that port gets no answer.
    let plain = reqwest::Client::new()
        .get(format!(
            "{}/health",
            server.api.replacen("https", "http", 1)
        ))
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    assert!(!plain.is_ok_and(|r| r.status().is_success()));

    // A renewal, then SIGHUP: the same process serves the new certificate.
    let second = ca.issue(&cert, &key);
    server.signal("HUP");
    assert!(
        wait_for(Duration::from_secs(4), || async {
            server
                .stderr()
                .contains("TLS certificate reloaded (SIGHUP)")
        })
        .await,
        "the renewed certificate is reloaded on SIGHUP; log:\n{}",
        server.stderr()
    );
    assert_eq!(served(&client, &server.api).await, Some(second.clone()));

    // Files that do not load: the error is logged and the last good certificate stays.
    std::fs::write(&cert, "not a certificate").unwrap();
    server.signal("HUP");
    assert!(
        wait_for(Duration::from_secs(4), || async {
            server
                .stderr()
                .contains("TLS certificate not reloaded (SIGHUP)")
        })
        .await,
        "{}",
        server.stderr()
    );
    assert_eq!(served(&client, &server.api).await, Some(second));

    // A renewal alone (no signal) is seen when the files are next looked at.
    let third = ca.issue(&cert, &key);
    assert!(
        wait_for(hookbox::tls::CHECK_EVERY * 3, || async {
            served(&client, &server.api).await.as_ref() == Some(&third)
        })
        .await,
        "the renewed certificate is served once the files changed; log:\n{}",
        server.stderr()
    );
    assert!(server
        .stderr()
        .contains("TLS certificate reloaded (the files changed)"));
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "one process throughout"
    );
}

#[tokio::test]
async fn serve_refuses_a_key_that_is_not_the_certificates() {
    let (dir, tls) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let ca = Ca::new();
    let (cert, key) = (tls.path().join("a.crt"), tls.path().join("a.key"));
    ca.issue(&cert, &key);
    let (other_cert, other_key) = (tls.path().join("b.crt"), tls.path().join("b.key"));
    ca.issue(&other_cert, &other_key);
    // Runs hookbox with these arguments and TLS files; whether it succeeded, and its stderr.
    let run = |args: &[&str], tls: &[(&str, &Path)]| {
        let out = Command::new(crate::support::server::bin())
            .args(args)
            .arg("--data-dir")
            .arg(dir.path())
            .envs(tls.iter().copied())
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let check = |cert: &Path, key: &Path| {
        run(
            &["check-config"],
            &[("HOOKBOX_TLS_CERT", cert), ("HOOKBOX_TLS_KEY", key)],
        )
    };
    let (ok, err) = run(
        &["serve", "--listen", "127.0.0.1:0"],
        &[("HOOKBOX_TLS_CERT", &cert), ("HOOKBOX_TLS_KEY", &other_key)],
    );
    assert!(
        !ok && err.contains("is the key the certificate's?"),
        "{err}"
    );
    let (ok, err) = run(&["check-config"], &[("HOOKBOX_TLS_CERT", &cert)]);
    assert!(
        !ok && err.contains("tls_cert and tls_key: set both"),
        "{err}"
    );
    // check-config loads the pair, as serve would.
    let (ok, err) = check(&cert, &other_key);
    assert!(
        !ok && err.contains("is the key the certificate's?"),
        "{err}"
    );
    let (ok, err) = check(Path::new("a.crt"), Path::new("a.key"));
    assert!(!ok && err.contains("must be an absolute path"), "{err}");
    let (ok, err) = check(&cert, &key);
    assert!(ok, "{err}");
}

#[tokio::test]
async fn sighup_without_a_certificate_leaves_the_server_running() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), dir.path().join("server.log")).await;
    server.signal("HUP");
    assert!(
        wait_for(Duration::from_secs(4), || async {
            server.stderr().contains("SIGHUP: nothing to reload")
        })
        .await,
        "{}",
        server.stderr()
    );
    assert!(server.child.try_wait().unwrap().is_none());
    let health = reqwest::get(format!("{}/health", server.api))
        .await
        .unwrap();
    assert!(health.status().is_success());
}
