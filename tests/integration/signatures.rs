//! Standard Webhooks `v1a` signatures: ed25519 under a `whsk_` secret key, verified by
//! receivers with the `whpk_` public key (here with ring, an implementation independent of
//! hookbox's).

use crate::support::{TestApp, TestReceiver};
use base64::Engine;
use serde_json::{json, Value};
use std::time::Duration;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// The public keys whose signatures among the `v1a,` entries of `header` verify
/// `{id}.{timestamp}.{body}`, out of `keys` (`whpk_…`).
fn verifying(keys: &[&str], id: &str, ts: &str, body: &[u8], header: &str) -> Vec<String> {
    let signed = [id.as_bytes(), b".", ts.as_bytes(), b".", body].concat();
    let sigs: Vec<Vec<u8>> = header
        .split(' ')
        .filter_map(|e| e.strip_prefix("v1a,"))
        .map(|s| B64.decode(s).unwrap())
        .collect();
    keys.iter()
        .filter(|k| {
            let raw = B64.decode(k.strip_prefix("whpk_").unwrap()).unwrap();
            let pk = ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, raw);
            sigs.iter().any(|s| pk.verify(&signed, s).is_ok())
        })
        .map(|k| (*k).to_owned())
        .collect()
}

async fn public_key(app: &TestApp, a: &str, ep: &str) -> String {
    let v = app
        .get(&format!("/app/{a}/endpoint/{ep}/secret"), 200)
        .await;
    v["key"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn v1a_endpoints_sign_with_ed25519_and_rotation_keeps_both_keys_verifying() {
    let app = TestApp::spawn().await;
    let rx = TestReceiver::start().await;
    let a = app.create_app("shop").await;
    let ep = app
        .post(
            &format!("/app/{a}/endpoint"),
            json!({ "url": format!("{}/hook", rx.url), "signatureVersion": "v1a" }),
            201,
        )
        .await;
    assert_eq!(ep["signatureVersion"], "v1a");
    let ep = ep["id"].as_str().unwrap().to_owned();
    let first = public_key(&app, &a, &ep).await;
    assert!(first.starts_with("whpk_") && first.len() == 49, "{first}");

    let m = app.send(&a, "a.b", json!({ "n": 1 })).await;
    let got = rx.wait_for_count(1, Duration::from_secs(5)).await[0].clone();
    let (id, ts, sig) = got.signed();
    assert_eq!(id, m);
    assert!(sig.starts_with("v1a,") && !sig.contains(' '), "{sig}");
    assert_eq!(
        verifying(&[&first], id, ts, &got.body, sig),
        std::slice::from_ref(&first)
    );
    // No HMAC signature of any kind goes with it.
    assert_eq!(got.header("x-webhook-signature-256"), None);

    // Rotation makes a new key pair and shows its public key; the old one keeps signing
    // for the grace period.
    let rotated = app
        .post(
            &format!("/app/{a}/endpoint/{ep}/secret/rotate"),
            json!({ "gracePeriodSeconds": 3600 }),
            200,
        )
        .await;
    let second = rotated["key"].as_str().unwrap().to_owned();
    assert!(second.starts_with("whpk_") && second != first, "{second}");
    assert_eq!(public_key(&app, &a, &ep).await, second);
    app.send(&a, "a.b", json!({ "n": 2 })).await;
    let got = rx.wait_for_count(2, Duration::from_secs(5)).await[1].clone();
    let (id, ts, sig) = got.signed();
    assert_eq!(sig.matches("v1a,").count(), 2, "{sig}");
    assert_eq!(
        verifying(&[&first, &second], id, ts, &got.body, sig),
        [first.clone(), second.clone()],
        "both keys verify during the grace period"
    );
    // A signature made with another key does not verify.
    let other = "whpk_11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";
    assert!(verifying(&[other], id, ts, &got.body, sig).is_empty());
}

#[tokio::test]
async fn a_given_whsk_secret_key_signs_and_only_its_public_key_is_shown() {
    let app = TestApp::spawn().await;
    let rx = TestReceiver::start().await;
    let a = app.create_app("shop").await;
    // RFC 8032's first key, as its 32-byte seed.
    let ep = app
        .post(
            &format!("/app/{a}/endpoint"),
            json!({
                "url": format!("{}/hook", rx.url),
                "secret": "whsk_nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=",
            }),
            201,
        )
        .await;
    assert_eq!(ep["signatureVersion"], "v1a");
    let ep = ep["id"].as_str().unwrap().to_owned();
    let shown = public_key(&app, &a, &ep).await;
    assert_eq!(shown, "whpk_11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=");
    app.send(&a, "a.b", json!({ "n": 1 })).await;
    let got = rx.wait_for_count(1, Duration::from_secs(5)).await[0].clone();
    let (id, ts, sig) = got.signed();
    assert_eq!(
        verifying(&[&shown], id, ts, &got.body, sig),
        std::slice::from_ref(&shown)
    );

    // The console shows the public key too, never the secret key.
    let mut c = crate::support::console::Console::first_admin(&app).await;
    let page = c
        .submit(&format!("/admin/apps/{a}/endpoints/{ep}/secret"), &[])
        .await;
    assert!(page.body.contains(&shown), "{}", page.body);
    assert!(!page.body.contains("whsk_"), "{}", page.body);
    assert!(page.body.contains("Public key"), "{}", page.body);
}

#[tokio::test]
async fn hmac_only_options_and_mismatched_keys_are_refused_for_v1a() {
    let app = TestApp::spawn().await;
    let a = app.create_app("shop").await;
    let url = "http://127.0.0.1:9/hook";
    let refused = |body: Value, field: &'static str| {
        let app = &app;
        let a = a.clone();
        async move {
            let e = app.post(&format!("/app/{a}/endpoint"), body, 422).await;
            assert_eq!(e["detail"][0]["loc"][1], field, "{e}");
        }
    };
    refused(
        json!({ "url": url, "signatureVersion": "v1a", "legacySignature": true }),
        "legacySignature",
    )
    .await;
    refused(
        json!({ "url": url, "signatureVersion": "v1a",
                "signatureHeader": { "name": "X-Sig", "format": "hex" } }),
        "signatureHeader",
    )
    .await;
    refused(
        json!({ "url": url, "signatureVersion": "v1a", "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" }),
        "secret",
    )
    .await;
    refused(json!({ "url": url, "secret": "whsk_AAAA" }), "secret").await;
    let list = app.get(&format!("/app/{a}/endpoint"), 200).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 0);

    let ep = app
        .post(
            &format!("/app/{a}/endpoint"),
            json!({ "url": url, "signatureVersion": "v1a" }),
            201,
        )
        .await;
    let path = format!("/app/{a}/endpoint/{}", ep["id"].as_str().unwrap());
    let e = app
        .call(
            "PATCH",
            &path,
            Some(json!({ "legacySignature": true })),
            422,
        )
        .await;
    assert_eq!(e["detail"][0]["loc"][1], "legacySignature", "{e}");
    let put = json!({ "url": url, "signatureVersion": "v1" });
    let e = app.call("PUT", &path, Some(put), 409).await;
    assert_eq!(e["code"], "signature_version_mismatch", "{e}");
    let patch = json!({ "description": "changed", "signatureVersion": "v1" });
    let e = app.call("PATCH", &path, Some(patch), 409).await;
    assert_eq!(e["code"], "signature_version_mismatch", "{e}");
    assert_eq!(
        app.get(&path, 200).await["description"],
        "",
        "nothing changed"
    );
    let patch = json!({ "signatureVersion": "v1a" });
    app.call("PATCH", &path, Some(patch), 200).await;
    let rotate = json!({ "key": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" });
    let e = app
        .post(&format!("{path}/secret/rotate"), rotate, 409)
        .await;
    assert_eq!(e["code"], "signature_version_mismatch", "{e}");
    let shown = app.get(&path, 200).await;
    assert_eq!(
        (
            shown["legacySignature"].clone(),
            shown["signatureVersion"].clone()
        ),
        (json!(false), json!("v1a"))
    );
    // A v1 endpoint keeps whsec_ secrets.
    let (v1, secret) = app.create_endpoint(&a, json!({ "url": url })).await;
    assert!(secret.starts_with("whsec_"));
    let shown = app.get(&format!("/app/{a}/endpoint/{v1}"), 200).await;
    assert_eq!(shown["signatureVersion"], "v1");
    let rotate = json!({ "key": "whsk_nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=" });
    app.post(
        &format!("/app/{a}/endpoint/{v1}/secret/rotate"),
        rotate,
        409,
    )
    .await;
}

#[tokio::test]
async fn the_console_adds_a_v1a_endpoint_and_keeps_hmac_styles_off_it() {
    let app = TestApp::spawn().await;
    let a = app.create_app("shop").await;
    let mut c = crate::support::console::Console::first_admin(&app).await;
    let new = format!("/admin/apps/{a}/webhooks/new");
    let form = c.page(&new).await;
    assert!(form.contains(r#"<option value="v1a""#), "{form}");
    let base = [
        ("url", "http://127.0.0.1:9/hook"),
        ("all_events", "1"),
        ("signature_version", "v1a"),
    ];
    let r = c
        .submit(
            &new,
            &[base.as_slice(), &[("legacy_signature", "1")]].concat(),
        )
        .await;
    assert_eq!(r.status, 422);
    assert!(r.body.contains("needs a v1 (HMAC) endpoint"), "{}", r.body);
    let r = c.submit(&new, &base).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let list = app.get(&format!("/app/{a}/endpoint"), 200).await;
    let ep = &list["data"][0];
    assert_eq!(ep["signatureVersion"], "v1a", "{list}");
    let id = ep["id"].as_str().unwrap();
    assert!(public_key(&app, &a, id).await.starts_with("whpk_"));

    // Its settings keep it v1a and refuse the legacy signature there too.
    let settings = format!("/admin/apps/{a}/endpoints/{id}/settings");
    let form = c.page(&settings).await;
    assert!(form.contains("ed25519 (<code>v1a</code>)"), "{form}");
    let r = c
        .submit(
            &settings,
            &[
                ("url", "http://127.0.0.1:9/hook"),
                ("all_events", "1"),
                ("signature_version", "v1a"),
                ("version_fixed", "1"),
                ("legacy_signature", "1"),
            ],
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    // Rotating in the console makes a new key pair.
    let before = public_key(&app, &a, id).await;
    c.submit(
        &format!("/admin/apps/{a}/endpoints/{id}/secret/rotate"),
        &[("grace", "1h")],
    )
    .await;
    let after = public_key(&app, &a, id).await;
    assert!(after.starts_with("whpk_") && after != before, "{after}");
}
