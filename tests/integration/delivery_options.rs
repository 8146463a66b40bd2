//! Per-endpoint delivery options (legacy signature, TLS verification), HTTPS-only mode and
//! URLs sent as given.

use crate::support::{signature_valid, TestApp, TestReceiver};
use serde_json::json;
use std::time::Duration;

/// `sha256=` + hex(HMAC-SHA256(decoded whsec_ key, body)), computed without hookbox's code.
fn legacy_expected(secret: &str, body: &[u8]) -> String {
    use base64::Engine;
    use hmac::Mac;
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.trim_start_matches("whsec_"))
        .unwrap();
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

async fn app_with_event_type(app: &TestApp) -> String {
    let a = app.create_app("shop").await;
    app.create_event_type("order.created").await;
    a
}

#[tokio::test]
async fn legacy_signature_header_carries_the_hex_hmac_of_the_body_when_the_endpoint_opts_in() {
    let app = TestApp::spawn().await;
    let legacy = TestReceiver::start().await;
    let plain = TestReceiver::start().await;
    let a = app_with_event_type(&app).await;
    let (ep, secret) = app
        .create_endpoint(
            &a,
            json!({ "url": format!("{}/hook", legacy.url), "legacySignature": true }),
        )
        .await;
    let (plain_ep, _) = app
        .create_endpoint(&a, json!({ "url": format!("{}/hook", plain.url) }))
        .await;
    let shown = app.get(&format!("/app/{a}/endpoint/{ep}"), 200).await;
    assert_eq!(shown["legacySignature"], true);
    let shown = app.get(&format!("/app/{a}/endpoint/{plain_ep}"), 200).await;
    assert_eq!(shown["legacySignature"], false);

    let msg = app
        .send(
            &a,
            "order.created",
            json!({ "total": 12.50, "note": "café" }),
        )
        .await;
    let r = legacy.wait_for_count(1, Duration::from_secs(5)).await[0].clone();
    assert_eq!(
        r.header("x-webhook-signature-256"),
        Some(legacy_expected(&secret, &r.body).as_str())
    );
    // The Standard Webhooks headers are still there.
    assert!(signature_valid(
        &secret,
        &msg,
        r.header("webhook-timestamp").unwrap(),
        &r.body,
        r.header("webhook-signature").unwrap()
    ));
    let p = plain.wait_for_count(1, Duration::from_secs(5)).await[0].clone();
    assert_eq!(p.header("x-webhook-signature-256"), None);

    // Opting out applies to the next delivery.
    app.call(
        "PATCH",
        &format!("/app/{a}/endpoint/{ep}"),
        Some(json!({ "legacySignature": false })),
        200,
    )
    .await;
    app.send(&a, "order.created", json!({ "n": 2 })).await;
    let r = legacy.wait_for_count(2, Duration::from_secs(5)).await[1].clone();
    assert_eq!(r.header("x-webhook-signature-256"), None);
}

#[tokio::test]
async fn custom_headers_cannot_replace_the_legacy_signature_header() {
    let app = TestApp::spawn().await;
    let a = app_with_event_type(&app).await;
    app.post(
        &format!("/app/{a}/endpoint"),
        json!({
            "url": "https://127.0.0.1:9/hook",
            "headers": { "X-Webhook-Signature-256": "sha256=forged" }
        }),
        422,
    )
    .await;
}

#[tokio::test]
async fn https_only_mode_refuses_http_endpoint_urls_with_422() {
    let app = TestApp::spawn_with(|cfg| cfg.delivery.https_only = true).await;
    let a = app_with_event_type(&app).await;
    let err = app
        .post(
            &format!("/app/{a}/endpoint"),
            json!({ "url": "http://127.0.0.1:9/hook" }),
            422,
        )
        .await;
    assert_eq!(err["detail"][0]["loc"], json!(["body", "url"]), "{err}");
    let (ep, _) = app
        .create_endpoint(&a, json!({ "url": "https://127.0.0.1:9/hook" }))
        .await;
    app.call(
        "PATCH",
        &format!("/app/{a}/endpoint/{ep}"),
        Some(json!({ "url": "http://127.0.0.1:9/other" })),
        422,
    )
    .await;
    app.call(
        "PUT",
        &format!("/app/{a}/endpoint/{ep}"),
        Some(json!({ "url": "http://127.0.0.1:9/other" })),
        422,
    )
    .await;
    let shown = app.get(&format!("/app/{a}/endpoint/{ep}"), 200).await;
    assert_eq!(shown["url"], "https://127.0.0.1:9/hook");
}

#[tokio::test]
async fn delivery_to_an_http_url_that_predates_https_only_mode_is_refused_and_recorded() {
    let app = TestApp::spawn().await;
    let rx = TestReceiver::start().await;
    let a = app_with_event_type(&app).await;
    app.create_endpoint(&a, json!({ "url": format!("{}/hook", rx.url) }))
        .await;
    let app = app.restart_with(|cfg| cfg.delivery.https_only = true).await;
    let msg = app.send(&a, "order.created", json!({ "n": 1 })).await;
    let attempts = app.wait_attempts(&a, &msg, 1, Duration::from_secs(5)).await;
    let first = &attempts[0];
    assert_eq!(first["status"], 2, "{first:#?}");
    assert_eq!(first["responseStatusCode"], 0);
    assert!(
        first["error"]
            .as_str()
            .unwrap_or_default()
            .contains("https"),
        "{first:#?}"
    );
    assert_eq!(rx.count(), 0, "nothing reached the http URL");
}

#[tokio::test]
async fn endpoint_url_query_string_is_sent_exactly_as_given() {
    let app = TestApp::spawn().await;
    let rx = TestReceiver::start().await;
    let a = app_with_event_type(&app).await;
    let url = format!("{}/hook?a=1&b=%20x", rx.url);
    let (ep, _) = app.create_endpoint(&a, json!({ "url": url })).await;
    let shown = app.get(&format!("/app/{a}/endpoint/{ep}"), 200).await;
    assert_eq!(shown["url"], url);
    app.send(&a, "order.created", json!({})).await;
    let got = rx.wait_for_count(1, Duration::from_secs(5)).await;
    assert_eq!(got[0].path, "/hook?a=1&b=%20x");
}

#[tokio::test]
async fn verify_ssl_defaults_to_true_and_can_be_turned_off_per_endpoint() {
    let app = TestApp::spawn().await;
    let rx = TestReceiver::start().await;
    let a = app_with_event_type(&app).await;
    let (checked, _) = app
        .create_endpoint(&a, json!({ "url": "https://127.0.0.1:9/hook" }))
        .await;
    let shown = app.get(&format!("/app/{a}/endpoint/{checked}"), 200).await;
    assert_eq!(shown["verifySsl"], true);
    let (unchecked, _) = app
        .create_endpoint(
            &a,
            json!({ "url": format!("{}/hook", rx.url), "verifySsl": false }),
        )
        .await;
    let shown = app
        .get(&format!("/app/{a}/endpoint/{unchecked}"), 200)
        .await;
    assert_eq!(shown["verifySsl"], false);
    // Its requests go through the client that skips verification: plain HTTP still works.
    app.send(&a, "order.created", json!({})).await;
    rx.wait_for_count(1, Duration::from_secs(5)).await;
    let patched = app
        .call(
            "PATCH",
            &format!("/app/{a}/endpoint/{unchecked}"),
            Some(json!({ "verifySsl": true })),
            200,
        )
        .await;
    assert_eq!(patched["verifySsl"], true);
}

/// A real HTTPS receiver with a self-signed certificate for 127.0.0.1 (Python's `ssl` module,
/// certificate made by rcgen); answers every POST with 200. Killed on drop.
struct SelfSignedReceiver {
    child: std::process::Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for SelfSignedReceiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const TLS_SERVER: &str = r#"
import http.server, ssl, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(200)
        self.send_header("content-length", "2")
        self.end_headers()
        self.wfile.write(b"ok")
    def log_message(self, *a):
        pass
srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[1], sys.argv[2])
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
print(srv.server_address[1], flush=True)
srv.serve_forever()
"#;

impl SelfSignedReceiver {
    fn start() -> SelfSignedReceiver {
        use std::io::BufRead;
        let dir = tempfile::tempdir().unwrap();
        let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).unwrap();
        let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        std::fs::write(&cert_path, cert.cert.pem()).unwrap();
        std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
        let mut child = std::process::Command::new("python3")
            .args(["-c", TLS_SERVER])
            .arg(&cert_path)
            .arg(&key_path)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python3 runs");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port: u16 = line.trim().parse().expect("the server prints its port");
        SelfSignedReceiver {
            child,
            url: format!("https://127.0.0.1:{port}/hook"),
            _dir: dir,
        }
    }
}

#[tokio::test]
async fn a_self_signed_https_receiver_is_refused_unless_verify_ssl_is_off() {
    let app = TestApp::spawn_with(|cfg| cfg.delivery.retry_schedule = vec![Duration::ZERO]).await;
    let tls = SelfSignedReceiver::start();
    let a = app_with_event_type(&app).await;
    let (strict, _) = app.create_endpoint(&a, json!({ "url": tls.url })).await;
    let msg = app.send(&a, "order.created", json!({})).await;
    let attempts = app
        .wait_attempts(&a, &msg, 1, Duration::from_secs(10))
        .await;
    assert_eq!(attempts[0]["endpointId"], strict.as_str());
    assert_eq!(attempts[0]["status"], 2, "{attempts:?}");
    assert_eq!(attempts[0]["responseStatusCode"], 0);
    let error = attempts[0]["error"].as_str().unwrap_or_default();
    assert!(error.contains("certificate"), "{attempts:?}");
    // The same receiver, with verification off for this endpoint: delivered over TLS.
    app.call(
        "PATCH",
        &format!("/app/{a}/endpoint/{strict}"),
        Some(json!({ "verifySsl": false })),
        200,
    )
    .await;
    let msg = app.send(&a, "order.created", json!({})).await;
    let attempts = app
        .wait_attempts(&a, &msg, 1, Duration::from_secs(10))
        .await;
    assert_eq!(attempts[0]["status"], 0, "{attempts:?}");
    assert_eq!(attempts[0]["responseStatusCode"], 200);
    assert_eq!(attempts[0]["response"], "ok");
}

/// HMAC-SHA256 of `parts` under the decoded bytes of a `whsec_` secret, computed without
/// hookbox's code.
fn hmac_of(secret: &str, parts: &[&[u8]]) -> Vec<u8> {
    use base64::Engine;
    use hmac::Mac;
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.trim_start_matches("whsec_"))
        .unwrap();
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().to_vec()
}

#[tokio::test]
async fn signature_headers_in_other_senders_styles_verify_with_plain_hmac() {
    use base64::Engine;
    let app = TestApp::spawn().await;
    let rx = TestReceiver::start().await;
    let a = app_with_event_type(&app).await;
    let mut secrets = Vec::new();
    for (style, name) in [
        ("github", "X-Hub-Signature-256"),
        ("stripe", "Stripe-Signature"),
        ("hex", "X-Signature"),
        ("base64", "X-Signature-B64"),
    ] {
        let (ep, secret) = app
            .create_endpoint(
                &a,
                json!({
                    "url": format!("{}/{style}", rx.url),
                    "signatureHeader": { "name": name, "format": style, "eventIdHeader": "X-Event-Id" }
                }),
            )
            .await;
        let got = app.get(&format!("/app/{a}/endpoint/{ep}"), 200).await;
        assert_eq!(got["signatureHeader"]["format"], style, "{got}");
        secrets.push((style, name, secret));
    }
    let m = app.send(&a, "order.created", json!({ "n": 1 })).await;
    let got = rx.wait_for_count(4, Duration::from_secs(10)).await;
    for (style, name, secret) in &secrets {
        let r = got.iter().find(|r| r.path == format!("/{style}")).unwrap();
        let value = r
            .header(name)
            .unwrap_or_else(|| panic!("{style}: no {name}"));
        let body = r.body.as_slice();
        let expected = match *style {
            "github" => format!("sha256={}", hex::encode(hmac_of(secret, &[body]))),
            "hex" => hex::encode(hmac_of(secret, &[body])),
            "base64" => base64::engine::general_purpose::STANDARD.encode(hmac_of(secret, &[body])),
            _ => {
                let ts = r.header("webhook-timestamp").unwrap();
                format!(
                    "t={ts},v1={}",
                    hex::encode(hmac_of(secret, &[ts.as_bytes(), b".", body]))
                )
            }
        };
        assert_eq!(value, expected, "{style}");
        assert_eq!(r.header("x-event-id"), Some(m.as_str()), "{style}");
        // The Standard Webhooks signature is still there.
        assert!(
            signature_valid(
                secret,
                r.header("webhook-id").unwrap(),
                r.header("webhook-timestamp").unwrap(),
                body,
                r.header("webhook-signature").unwrap()
            ),
            "{style}"
        );
    }
}

#[tokio::test]
async fn a_stripe_style_header_carries_both_secrets_during_a_rotation() {
    let app = TestApp::spawn().await;
    let rx = TestReceiver::start().await;
    let a = app_with_event_type(&app).await;
    let (ep, old) = app
        .create_endpoint(
            &a,
            json!({ "url": rx.url, "signatureHeader": { "name": "Stripe-Signature", "format": "stripe" } }),
        )
        .await;
    app.post(
        &format!("/app/{a}/endpoint/{ep}/secret/rotate"),
        json!({}),
        200,
    )
    .await;
    let new = app
        .get(&format!("/app/{a}/endpoint/{ep}/secret"), 200)
        .await["key"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(new, old);
    app.send(&a, "order.created", json!({})).await;
    let got = rx.wait_for_count(1, Duration::from_secs(10)).await;
    let value = got[0].header("stripe-signature").unwrap();
    let ts = got[0].header("webhook-timestamp").unwrap();
    let v1: Vec<&str> = value
        .split(',')
        .filter_map(|p| p.strip_prefix("v1="))
        .collect();
    assert!(value.starts_with(&format!("t={ts},")), "{value}");
    for secret in [&old, &new] {
        let expected = hex::encode(hmac_of(secret, &[ts.as_bytes(), b".", &got[0].body]));
        assert!(
            v1.contains(&expected.as_str()),
            "{value} lacks a v1 for {secret}"
        );
    }
}

#[tokio::test]
async fn a_signature_header_must_be_a_free_header_name() {
    let app = TestApp::spawn().await;
    let a = app_with_event_type(&app).await;
    for (sig, headers, loc) in [
        (
            json!({ "name": "webhook-signature", "format": "hex" }),
            json!(null),
            json!(["body", "signatureHeader", "name"]),
        ),
        (
            json!({ "name": "x".repeat(257), "format": "hex" }),
            json!(null),
            json!(["body", "signatureHeader", "name"]),
        ),
        (
            json!({ "name": "bad name", "format": "hex" }),
            json!(null),
            json!(["body", "signatureHeader", "name"]),
        ),
        (
            json!({ "name": "X-Sig", "format": "hex" }),
            json!({ "x-sig": "mine" }),
            json!(["body", "signatureHeader", "name"]),
        ),
        (
            json!({ "name": "X-Sig", "format": "hex", "eventIdHeader": "x-sig" }),
            json!(null),
            json!(["body", "signatureHeader", "eventIdHeader"]),
        ),
    ] {
        let e = app
            .post(
                &format!("/app/{a}/endpoint"),
                json!({ "url": "http://127.0.0.1:9/", "signatureHeader": sig, "headers": headers }),
                422,
            )
            .await;
        assert_eq!(e["detail"][0]["loc"], loc, "{sig}: {e}");
    }
    let (ep, _) = app
        .create_endpoint(
            &a,
            json!({ "url": "http://127.0.0.1:9/", "signatureHeader": { "name": "X-Sig", "format": "github" } }),
        )
        .await;
    // Custom headers cannot take its place later either.
    let e = app
        .call(
            "PUT",
            &format!("/app/{a}/endpoint/{ep}/headers"),
            Some(json!({ "headers": { "X-Sig": "forged" } })),
            422,
        )
        .await;
    assert_eq!(e["detail"][0]["loc"], json!(["body", "headers"]), "{e}");
    let v = app
        .call(
            "PATCH",
            &format!("/app/{a}/endpoint/{ep}"),
            Some(json!({ "signatureHeader": null })),
            200,
        )
        .await;
    assert!(v["signatureHeader"].is_null(), "{v}");
}

#[tokio::test]
async fn the_console_sets_a_signature_header_and_shows_it() {
    let app = TestApp::spawn().await;
    let a = app_with_event_type(&app).await;
    let (ep, _) = app
        .create_endpoint(&a, json!({ "url": "http://127.0.0.1:9/" }))
        .await;
    let mut c = crate::support::console::Console::first_admin(&app).await;
    let settings = format!("/admin/apps/{a}/endpoints/{ep}/settings");
    let base = [("url", "http://127.0.0.1:9/"), ("all_events", "1")];
    let r = c
        .submit(
            &settings,
            &[base.as_slice(), &[("signature_format", "github")]].concat(),
        )
        .await;
    assert_eq!(r.status, 422);
    assert!(r.body.contains("name the header"), "{}", r.body);
    let r = c
        .submit(
            &settings,
            &[
                base.as_slice(),
                &[
                    ("signature_format", "github"),
                    ("signature_name", "X-Hub-Signature-256"),
                    ("event_id_header", "X-GitHub-Delivery"),
                ],
            ]
            .concat(),
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let v = app.get(&format!("/app/{a}/endpoint/{ep}"), 200).await;
    assert_eq!(
        v["signatureHeader"],
        json!({ "name": "X-Hub-Signature-256", "format": "github", "eventIdHeader": "X-GitHub-Delivery" })
    );
    let overview = c.page(&format!("/admin/apps/{a}/endpoints/{ep}")).await;
    assert!(
        overview.contains("X-Hub-Signature-256") && overview.contains("GitHub style"),
        "{overview}"
    );
    let form = c.page(&settings).await;
    assert!(form.contains("value=\"github\" selected"), "{form}");
    // Choosing none removes it.
    c.submit(&settings, &base).await;
    let v = app.get(&format!("/app/{a}/endpoint/{ep}"), 200).await;
    assert!(v["signatureHeader"].is_null(), "{v}");
}
