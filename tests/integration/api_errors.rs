//! Bad input on every route: a clear 4xx in Svix's shapes, never a 5xx.

use crate::support::TestApp;
use serde_json::{json, Value};

#[tokio::test]
async fn unknown_ids_are_404_on_every_route() {
    let app = TestApp::spawn().await;
    let a = app.create_app("x").await;
    let (ep, _) = app
        .create_endpoint(&a, json!({ "url": "http://127.0.0.1:9/" }))
        .await;
    let m = app.send(&a, "x.y", json!({})).await;
    let cases: Vec<(&str, String, Option<Value>)> = vec![
        ("GET", "/app/app_nope".into(), None),
        ("PATCH", "/app/app_nope".into(), Some(json!({}))),
        ("DELETE", "/app/app_nope".into(), None),
        ("GET", "/event-type/nope.nope".into(), None),
        ("PATCH", "/event-type/nope.nope".into(), Some(json!({}))),
        ("DELETE", "/event-type/nope.nope".into(), None),
        ("GET", "/app/app_nope/endpoint".into(), None),
        (
            "POST",
            "/app/app_nope/endpoint".into(),
            Some(json!({ "url": "http://127.0.0.1:9/" })),
        ),
        ("GET", format!("/app/{a}/endpoint/ep_nope"), None),
        (
            "PUT",
            format!("/app/{a}/endpoint/ep_nope/headers"),
            Some(json!({ "headers": {} })),
        ),
        ("GET", format!("/app/{a}/endpoint/ep_nope/secret"), None),
        (
            "POST",
            format!("/app/{a}/endpoint/ep_nope/secret/rotate"),
            Some(json!({})),
        ),
        ("GET", format!("/app/{a}/endpoint/ep_nope/stats"), None),
        (
            "POST",
            format!("/app/{a}/endpoint/ep_nope/recover"),
            Some(json!({ "since": "2024-01-01T00:00:00Z" })),
        ),
        ("GET", format!("/app/{a}/msg/msg_nope"), None),
        ("GET", format!("/app/{a}/msg/msg_nope/endpoint"), None),
        ("GET", format!("/app/{a}/msg/{m}/attempt/atmpt_nope"), None),
        (
            "POST",
            format!("/app/{a}/msg/msg_nope/endpoint/{ep}/resend"),
            Some(json!({})),
        ),
        (
            "POST",
            format!("/app/{a}/msg/{m}/endpoint/ep_nope/resend"),
            Some(json!({})),
        ),
        ("GET", format!("/app/{a}/attempt/endpoint/ep_nope"), None),
        ("GET", format!("/app/{a}/attempt/msg/msg_nope"), None),
        (
            "GET",
            format!("/app/{a}/attempt/msg/{m}?endpoint_id=ep_nope"),
            None,
        ),
    ];
    for (method, path, body) in cases {
        let v = app.call(method, &path, body, 404).await;
        assert_eq!(v["code"], "not_found", "{method} {path}: {v}");
        assert!(
            v["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{method} {path}: {v}"
        );
    }
}

#[tokio::test]
async fn malformed_input_is_422_or_400_on_every_route() {
    let app = TestApp::spawn().await;
    let a = app.create_app("x").await;
    let (ep, _) = app
        .create_endpoint(&a, json!({ "url": "http://127.0.0.1:9/" }))
        .await;
    let e = format!("/app/{a}/endpoint/{ep}");
    let cases: Vec<(&str, String, Value, &str)> = vec![
        ("PUT", format!("/app/{a}"), json!({ "name": "" }), "name"),
        (
            "PATCH",
            format!("/app/{a}"),
            json!({ "uid": "bad uid" }),
            "uid",
        ),
        (
            "PATCH",
            format!("/app/{a}"),
            json!({ "throttleRate": -1 }),
            "throttleRate",
        ),
        (
            "PUT",
            "/event-type/a.b".into(),
            json!({ "description": 5 }),
            "description",
        ),
        (
            "PATCH",
            "/event-type/a.b".into(),
            json!({ "archived": "yes" }),
            "archived",
        ),
        ("PUT", e.clone(), json!({ "url": "nope" }), "url"),
        ("PATCH", e.clone(), json!({ "url": "gopher://x" }), "url"),
        (
            "PATCH",
            e.clone(),
            json!({ "filterTypes": ["no.such"] }),
            "filterTypes",
        ),
        (
            "PUT",
            format!("{e}/headers"),
            json!({ "headers": { "bad header": "x" } }),
            "headers",
        ),
        (
            "PATCH",
            format!("{e}/headers"),
            json!({ "headers": { "x-ok": "line\nbreak" } }),
            "headers",
        ),
        (
            "POST",
            format!("{e}/secret/rotate"),
            json!({ "key": "not-base64!" }),
            "key",
        ),
        (
            "POST",
            format!("{e}/recover"),
            json!({ "since": "last week" }),
            "since",
        ),
        ("POST", format!("{e}/replay-missing"), json!({}), "since"),
        (
            "POST",
            format!("{e}/recover"),
            json!({ "since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z" }),
            "until",
        ),
        (
            "POST",
            format!("{e}/replay-missing"),
            json!({ "since": "2026-01-02T00:00:00Z", "until": "2026-01-02T00:00:00Z" }),
            "until",
        ),
        (
            "POST",
            format!("{e}/send-example"),
            json!({ "eventType": 5 }),
            "eventType",
        ),
        // Valid characters, but no URL path can hold them (`..` is "the parent folder").
        ("PATCH", format!("/app/{a}"), json!({ "uid": ".." }), "uid"),
        (
            "POST",
            "/app".into(),
            json!({ "name": "n", "uid": "." }),
            "uid",
        ),
        (
            "POST",
            format!("/app/{a}/endpoint"),
            json!({ "url": "http://127.0.0.1:9/", "uid": "..." }),
            "uid",
        ),
        ("PATCH", e.clone(), json!({ "uid": ".." }), "uid"),
        (
            "POST",
            "/event-type".into(),
            json!({ "name": "..", "description": "d" }),
            "name",
        ),
    ];
    for (method, path, body, field) in cases {
        let v = app.call(method, &path, Some(body.clone()), 422).await;
        let loc = &v["detail"][0]["loc"];
        let text = loc.to_string();
        assert!(
            text.contains(field)
                || v["detail"][0]["msg"]
                    .as_str()
                    .unwrap_or_default()
                    .contains(field),
            "{method} {path} {body}: expected `{field}` in {v}"
        );
    }
    for q in ["limit=abc", "limit=1000", "order=sideways", "iterator="] {
        let status = app
            .client
            .get(format!("{}/app?{q}", app.base))
            .bearer_auth(&app.token)
            .send()
            .await
            .unwrap()
            .status();
        assert!(
            status == 422 || (q == "iterator=" && status == 200),
            "{q}: {status}"
        );
    }
    for path in [
        format!("/app/{a}/msg?before=yesterday"),
        format!("/app/{a}/attempt/endpoint/{ep}?status_code_class=700"),
    ] {
        app.get(&path, 422).await;
    }
    let (status, body) = app.raw("PATCH", &e, b"[1, 2".to_vec()).await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = app
        .raw("POST", &format!("/app/{a}/msg"), b"\xff\xfe".to_vec())
        .await;
    assert_eq!(status, 400, "{body}");
}

/// Requests that the OpenAPI document allows are accepted; what it rules out is refused.
#[tokio::test]
async fn input_is_judged_as_the_openapi_document_describes_it() {
    let app = TestApp::spawn().await;
    // JSON Schema counts 5.0 as an integer.
    let a = app
        .post(
            "/app",
            json!({ "name": "x", "throttleRate": 5.0, "payloadRetentionPeriod": 2.0 }),
            201,
        )
        .await;
    assert_eq!(a["throttleRate"], 5);
    let a = a["id"].as_str().unwrap().to_owned();
    app.post("/app", json!({ "name": "x", "throttleRate": 5.5 }), 422)
        .await;
    // Lengths count characters, not bytes.
    app.post("/app", json!({ "name": "é".repeat(256) }), 201)
        .await;
    app.post("/app", json!({ "name": "é".repeat(257) }), 422)
        .await;
    let (ep, _) = app
        .create_endpoint(&a, json!({ "url": "http://127.0.0.1:9/" }))
        .await;
    let base = format!("/app/{a}/endpoint/{ep}");
    // Header values are visible ASCII.
    let bad = json!({ "headers": { "x-a": "caf\u{e9}" } });
    app.call("PUT", &format!("{base}/headers"), Some(bad.clone()), 422)
        .await;
    app.call("PATCH", &format!("{base}/headers"), Some(bad), 422)
        .await;
    // The rotation body is optional, `null` included.
    let (status, body) = app
        .raw("POST", &format!("{base}/secret/rotate"), b"null".to_vec())
        .await;
    assert_eq!(status, 200, "{body}");
    // Status filters name a status.
    app.get(&format!("{base}/msg?status=7"), 422).await;
    app.get(&format!("/app/{a}/attempt/endpoint/{ep}?status=-1"), 422)
        .await;
    app.get(&format!("{base}/msg?status=2"), 200).await;
    // Iterators are ids or names: up to 256 of their characters.
    let long = "x".repeat(256);
    app.get(&format!("/app?iterator={long}"), 200).await;
    app.get(&format!("/app?iterator={long}x"), 422).await;
    app.get("/app?iterator=%C3%A9", 422).await;
    // Event type schemas are JSON objects.
    app.post(
        "/event-type",
        json!({ "name": "a.b", "description": "d", "schemas": { "1": 5 } }),
        422,
    )
    .await;
}
