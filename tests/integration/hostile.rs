//! A corpus of hostile requests against every route: always a 4xx or a 2xx, never a 5xx; the
//! process keeps answering; and a rejected request writes nothing.

use crate::support::TestApp;
use serde_json::{json, Value};

const HOSTILE_STRINGS: &[&str] = &[
    "'; DROP TABLE applications; --",
    "\" OR 1=1 --",
    "<script>alert(1)</script>",
    "{{7*7}}${7*7}",
    "\u{0}nul",
    "\u{202e}rtl\u{200b}zero-width",
    "😀🔥𝕳𝖔𝖔𝖐",
    "../../etc/passwd",
    "%00%2e%2e%2f",
    "",
    " ",
];

/// Counts of every table: "nothing was written" means these did not change.
// Reads the database behind the server's back: only every table's count (many no API lists)
// proves "nothing written".
fn snapshot(app: &TestApp) -> Vec<(String, i64)> {
    crate::support::storage::table_counts(app.dir.path())
        .into_iter()
        // Token use is recorded on reads too, attempts (and the endpoints' health counts) are
        // written by the dispatcher in the background, incidents by the alert checks (every
        // 30 s), and nodes note their heartbeats: none is a write of the request's making.
        .filter(|(t, _)| {
            ![
                "api_tokens",
                "attempts",
                "endpoint_health",
                "alert_incidents",
                "nodes",
            ]
            .contains(&t.as_str())
        })
        .collect()
}

/// Every string field of `v` replaced, one at a time, by `with`.
fn string_variants(v: &Value, with: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                if child.is_string() || child.is_number() || child.is_boolean() {
                    let mut copy = v.clone();
                    copy[k] = with.clone();
                    out.push(copy);
                }
                for inner in string_variants(child, with) {
                    let mut copy = v.clone();
                    copy[k] = inner;
                    out.push(copy);
                }
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                for inner in string_variants(child, with) {
                    let mut copy = v.clone();
                    copy[i] = inner;
                    out.push(copy);
                }
            }
        }
        _ => {}
    }
    out
}

struct Ids {
    app: String,
    ep: String,
    msg: String,
}

fn routes(ids: &Ids) -> Vec<(&'static str, String, Option<Value>)> {
    let (a, e, m) = (&ids.app, &ids.ep, &ids.msg);
    let ep_body = json!({ "url": "http://127.0.0.1:9/h", "description": "d", "uid": "u1", "filterTypes": ["a.b"],
                          "channels": ["c"], "throttleRate": 5, "metadata": { "k": "v" }, "headers": { "X-A": "b" }, "legacySignature": true, "verifySsl": true });
    vec![
        (
            "POST",
            "/app".into(),
            Some(json!({ "name": "n", "uid": "x1", "throttleRate": 1, "metadata": { "k": "v" } })),
        ),
        ("PUT", format!("/app/{a}"), Some(json!({ "name": "n" }))),
        (
            "PATCH",
            format!("/app/{a}"),
            Some(json!({ "name": "n", "uid": "y1" })),
        ),
        (
            "POST",
            "/event-type".into(),
            Some(
                json!({ "name": "e.f", "description": "d", "groupName": "g", "schemas": { "1": {} } }),
            ),
        ),
        (
            "PUT",
            "/event-type/a.b".into(),
            Some(json!({ "description": "d", "archived": false })),
        ),
        (
            "PATCH",
            "/event-type/a.b".into(),
            Some(json!({ "description": "d", "deprecated": true })),
        ),
        ("POST", format!("/app/{a}/endpoint"), Some(ep_body.clone())),
        (
            "PUT",
            format!("/app/{a}/endpoint/{e}"),
            Some(ep_body.clone()),
        ),
        (
            "PATCH",
            format!("/app/{a}/endpoint/{e}"),
            Some(json!({ "url": "http://127.0.0.1:9/p", "description": "d" })),
        ),
        (
            "PUT",
            format!("/app/{a}/endpoint/{e}/headers"),
            Some(json!({ "headers": { "X-A": "b" } })),
        ),
        (
            "PATCH",
            format!("/app/{a}/endpoint/{e}/headers"),
            Some(json!({ "headers": { "X-B": "c" }, "deleteHeaders": ["X-A"] })),
        ),
        (
            "POST",
            format!("/app/{a}/endpoint/{e}/secret/rotate"),
            Some(json!({ "key": "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD" })),
        ),
        (
            "POST",
            format!("/app/{a}/endpoint/{e}/send-example"),
            Some(json!({ "eventType": "a.b", "exampleIndex": 0 })),
        ),
        (
            "POST",
            format!("/app/{a}/endpoint/{e}/recover"),
            Some(json!({ "since": "2024-01-01T00:00:00Z" })),
        ),
        (
            "POST",
            format!("/app/{a}/endpoint/{e}/replay-missing"),
            Some(json!({ "since": "2024-01-01T00:00:00Z" })),
        ),
        (
            "POST",
            format!("/app/{a}/msg"),
            Some(
                json!({ "eventType": "a.b", "payload": { "k": "v" }, "eventId": "ev1",
                                                       "channels": ["c"], "tags": ["t"] }),
            ),
        ),
        (
            "POST",
            format!("/app/{a}/msg/{m}/endpoint/{e}/resend"),
            None,
        ),
        ("GET", "/app".into(), None),
        ("GET", format!("/app/{a}"), None),
        ("GET", "/event-type".into(), None),
        ("GET", format!("/app/{a}/endpoint"), None),
        ("GET", format!("/app/{a}/endpoint/{e}/stats"), None),
        ("GET", format!("/app/{a}/endpoint/{e}/health"), None),
        (
            "POST",
            format!("/app/{a}/endpoint/{e}/test"),
            Some(json!({ "eventType": "a.b", "payload": { "k": "v" } })),
        ),
        ("GET", format!("/app/{a}/endpoint/{e}/msg"), None),
        ("GET", format!("/app/{a}/msg"), None),
        ("GET", format!("/app/{a}/msg/{m}/endpoint"), None),
        ("GET", format!("/app/{a}/attempt/endpoint/{e}"), None),
        ("GET", format!("/app/{a}/attempt/msg/{m}"), None),
        ("GET", format!("/app/{a}/analytics"), None),
        (
            "POST",
            format!("/auth/app-portal-access/{a}"),
            Some(json!({ "expiry": 3600, "readOnly": false, "application": { "name": "n" } })),
        ),
    ]
}

struct Checker<'a> {
    app: &'a TestApp,
    sent: usize,
}

impl Checker<'_> {
    /// Sends one request; asserts no 5xx, and no write when it was refused.
    async fn send(&mut self, method: &str, path: &str, body: Vec<u8>, auth: Option<&str>) -> u16 {
        let before = snapshot(self.app);
        let mut req = self
            .app
            .client
            .request(method.parse().unwrap(), format!("{}{path}", self.app.base));
        if let Some(t) = auth {
            req = req.bearer_auth(t);
        }
        if !body.is_empty() {
            req = req
                .header("content-type", "application/json")
                .body(body.clone());
        }
        let resp = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: no answer ({e})"));
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        let shown = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
        assert!(status < 500, "{method} {path} {shown}: {status} {text}");
        if status >= 400 {
            assert!(
                !text.is_empty(),
                "{method} {path}: {status} with an empty body"
            );
            assert_eq!(
                snapshot(self.app),
                before,
                "{method} {path} {shown}: refused ({status}) but wrote"
            );
        }
        self.sent += 1;
        status
    }
}

#[tokio::test]
async fn hostile_requests_get_a_clear_4xx_and_write_nothing() {
    let app = TestApp::spawn().await;
    app.create_event_type("a.b").await;
    let a = app.create_app("victim").await;
    let (ep, _) = app
        .create_endpoint(&a, json!({ "url": "http://127.0.0.1:9/" }))
        .await;
    let msg = app.send(&a, "a.b", json!({})).await;
    let ids = Ids { app: a, ep, msg };
    let token = app.token.clone();
    let mut check = Checker { app: &app, sent: 0 };
    let deep = format!("{}1{}", "[".repeat(5000), "]".repeat(5000));
    let huge = vec![b'{'; 10 * 1024 * 1024];

    for (method, path, body) in routes(&ids) {
        // Authentication: none, or wrong.
        assert_eq!(
            check.send(method, &path, vec![], None).await,
            401,
            "{method} {path} without a token"
        );
        assert_eq!(
            check.send(method, &path, vec![], Some("hbx_nope")).await,
            401
        );
        // Bad ids in every path segment that holds one.
        for bad in ["a b", "..", &"x".repeat(300), "%F0%9F%98%80", "a%00b"] {
            let mangled = path.replacen(&ids.app, bad, 1);
            if mangled != path {
                check.send(method, &mangled, vec![], Some(&token)).await;
            }
        }
        // Hostile query strings.
        for q in [
            "limit=99999999999999999999",
            "iterator=%00",
            "order=%27",
            "before=9999-99-99",
            "with_content=maybe",
        ] {
            check
                .send(method, &format!("{path}?{q}"), vec![], Some(&token))
                .await;
        }
        let Some(body) = body else { continue };
        for raw in [
            b"{".to_vec(),
            b"null".to_vec(),
            b"[]".to_vec(),
            b"\"text\"".to_vec(),
            b"{\"a\": \xff\xfe}".to_vec(),
            deep.clone().into_bytes(),
            huge.clone(),
        ] {
            // The rotation body is optional, and `null` says so as well as no body.
            if raw == b"null" && path.ends_with("/secret/rotate") {
                continue;
            }
            let status = check.send(method, &path, raw, Some(&token)).await;
            assert!((400..500).contains(&status), "{method} {path}: {status}");
        }
        // Deep nesting inside an unknown field is ignored like any unknown field.
        check
            .send(
                method,
                &path,
                format!("{{\"x\": {deep}}}").into_bytes(),
                Some(&token),
            )
            .await;
        let mut variants = Vec::new();
        for s in HOSTILE_STRINGS {
            variants.extend(string_variants(&body, &json!(s)));
        }
        for weird in [
            json!(1e300),
            json!(-1),
            json!(18446744073709551616u128),
            json!([]),
            json!({}),
            json!(null),
            json!(true),
        ] {
            variants.extend(string_variants(&body, &weird));
        }
        variants.push(json!({ "long": "x".repeat(100_000) }));
        for v in variants {
            check
                .send(method, &path, serde_json::to_vec(&v).unwrap(), Some(&token))
                .await;
        }
    }
    println!("hostile corpus: {} requests", check.sent);
    // Still alive and well.
    app.get("/health", 204).await;
    assert!(check.sent > 500);
}

/// PostgreSQL text cannot hold NUL: names and descriptions with one are refused on both
/// backends alike, with a 422 that names the field, and nothing is written.
#[tokio::test]
async fn text_with_a_nul_character_is_refused_with_the_field_named() {
    let app = TestApp::spawn().await;
    app.create_event_type("a.b").await;
    let a = app.create_app("victim").await;
    let (e, _) = app
        .create_endpoint(&a, json!({ "url": "http://127.0.0.1:9/" }))
        .await;
    let nul = "x\u{0}y";
    let url = "http://127.0.0.1:9/h";
    let cases = [
        ("POST", "/app".to_owned(), json!({ "name": nul }), "name"),
        ("PUT", format!("/app/{a}"), json!({ "name": nul }), "name"),
        ("PATCH", format!("/app/{a}"), json!({ "name": nul }), "name"),
        (
            "POST",
            "/event-type".into(),
            json!({ "name": "e.f", "description": nul }),
            "description",
        ),
        (
            "POST",
            "/event-type".into(),
            json!({ "name": "e.f", "description": "d", "groupName": nul }),
            "groupName",
        ),
        (
            "PUT",
            "/event-type/a.b".into(),
            json!({ "description": nul }),
            "description",
        ),
        (
            "PATCH",
            "/event-type/a.b".into(),
            json!({ "description": nul }),
            "description",
        ),
        (
            "POST",
            format!("/app/{a}/endpoint"),
            json!({ "url": url, "description": nul }),
            "description",
        ),
        (
            "PUT",
            format!("/app/{a}/endpoint/{e}"),
            json!({ "url": url, "description": nul }),
            "description",
        ),
        (
            "PATCH",
            format!("/app/{a}/endpoint/{e}"),
            json!({ "description": nul }),
            "description",
        ),
        (
            "POST",
            format!("/app/{a}/endpoint"),
            json!({ "url": format!("{url}{nul}") }),
            "url",
        ),
        (
            "PATCH",
            format!("/app/{a}/endpoint/{e}"),
            json!({ "url": format!("{url}{nul}") }),
            "url",
        ),
        (
            "PATCH",
            format!("/app/{a}/endpoint/{e}"),
            json!({ "filter": format!("payload.a == \"{nul}\"") }),
            "filter",
        ),
        (
            "POST",
            format!("/app/{a}/alert-recipient"),
            json!({ "address": format!("{url}{nul}") }),
            "address",
        ),
        // Looked up, not stored: no event type has such a name.
        (
            "POST",
            format!("/app/{a}/endpoint/{e}/test"),
            json!({ "eventType": nul }),
            "eventType",
        ),
        // In an application given inside another body: located there.
        (
            "POST",
            "/auth/app-portal-access/new-app".into(),
            json!({ "application": { "name": nul } }),
            "application.name",
        ),
        (
            "POST",
            "/app/new-app/msg".into(),
            json!({ "eventType": "a.b", "payload": {}, "application": { "name": nul } }),
            "application.name",
        ),
    ];
    for (method, path, body, field) in cases {
        let before = snapshot(&app);
        let got = app.call(method, &path, Some(body), 422).await;
        let loc: Vec<&str> = ["body"].into_iter().chain(field.split('.')).collect();
        assert_eq!(
            got["detail"][0]["loc"],
            json!(loc),
            "{method} {path}: {got}"
        );
        assert_eq!(snapshot(&app), before, "{method} {path}: refused but wrote");
    }
}
