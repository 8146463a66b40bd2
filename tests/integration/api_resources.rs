use crate::support::{TestApp, TestReceiver};
use serde_json::json;
use std::time::Duration;

fn ids(v: &serde_json::Value, key: &str) -> Vec<String> {
    v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x[key].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn event_types_are_created_listed_updated_and_archived() {
    let app = TestApp::spawn().await;
    let e = app
        .post(
            "/event-type",
            json!({ "name": "invoice.paid", "description": "Paid", "groupName": "invoice" }),
            201,
        )
        .await;
    for key in [
        "name",
        "description",
        "deprecated",
        "createdAt",
        "updatedAt",
    ] {
        assert!(!e[key].is_null(), "{key}: {e}");
    }
    let dup = app
        .post(
            "/event-type",
            json!({ "name": "invoice.paid", "description": "again" }),
            409,
        )
        .await;
    assert_eq!(dup["code"], "event_type_exists");
    app.create_event_type("user:created").await;
    app.create_event_type("a_first").await;
    assert_eq!(
        ids(&app.get("/event-type", 200).await, "name"),
        ["a_first", "invoice.paid", "user:created"]
    );

    let p = app
        .call(
            "PATCH",
            "/event-type/invoice.paid",
            Some(json!({ "description": "Invoice paid" })),
            200,
        )
        .await;
    assert_eq!(p["description"], "Invoice paid");
    assert_eq!(p["groupName"], "invoice");
    let created = app
        .call(
            "PUT",
            "/event-type/new.one",
            Some(json!({ "description": "New" })),
            201,
        )
        .await;
    assert_eq!(created["name"], "new.one");
    app.call(
        "PUT",
        "/event-type/new.one",
        Some(json!({ "description": "Newer" })),
        200,
    )
    .await;

    app.call("DELETE", "/event-type/a_first", None, 204).await;
    assert_eq!(app.get("/event-type/a_first", 200).await["archived"], true);
    assert!(!ids(&app.get("/event-type", 200).await, "name").contains(&"a_first".to_owned()));
    assert!(ids(
        &app.get("/event-type?include_archived=true", 200).await,
        "name"
    )
    .contains(&"a_first".to_owned()));
    // Creating an archived type again brings it back.
    let back = app
        .post(
            "/event-type",
            json!({ "name": "a_first", "description": "back" }),
            201,
        )
        .await;
    assert_eq!(back["archived"], false);
    assert_eq!(back["description"], "back");
    app.call("DELETE", "/event-type/a_first?expunge=true", None, 204)
        .await;
    app.get("/event-type/a_first", 404).await;

    let bad = app
        .post(
            "/event-type",
            json!({ "name": "has space", "description": "x" }),
            422,
        )
        .await;
    assert_eq!(bad["detail"][0]["loc"], json!(["body", "name"]));
    app.post("/event-type", json!({ "name": "no.description" }), 422)
        .await;
}

#[tokio::test]
async fn feature_flags_are_kept_and_checked_like_ids() {
    let app = TestApp::spawn().await;
    let e = app
        .post(
            "/event-type",
            json!({ "name": "beta.thing", "description": "d", "featureFlags": ["beta-1", "v2.x"] }),
            201,
        )
        .await;
    assert_eq!(e["featureFlags"], json!(["beta-1", "v2.x"]));
    let one = json!({ "name": "beta.one", "description": "d", "featureFlag": "solo" });
    let e = app.post("/event-type", one, 201).await;
    assert_eq!(e["featureFlags"], json!(["solo"]));
    let many: Vec<String> = (0..65).map(|i| format!("f{i}")).collect();
    let refused = [
        (
            "POST",
            "/event-type",
            json!({ "name": "x.y", "description": "d", "featureFlags": ["ok", "has space"] }),
            json!(["body", "featureFlags", "1"]),
        ),
        (
            "POST",
            "/event-type",
            json!({ "name": "x.y", "description": "d", "featureFlags": [""] }),
            json!(["body", "featureFlags", "0"]),
        ),
        (
            "POST",
            "/event-type",
            json!({ "name": "x.y", "description": "d", "featureFlags": many }),
            json!(["body", "featureFlags"]),
        ),
        (
            "PUT",
            "/event-type/beta.thing",
            json!({ "description": "d", "featureFlag": "a/b" }),
            json!(["body", "featureFlag"]),
        ),
        (
            "PATCH",
            "/event-type/beta.thing",
            json!({ "featureFlag": "a b" }),
            json!(["body", "featureFlag"]),
        ),
        // Checked even beside featureFlags, which wins.
        (
            "POST",
            "/event-type",
            json!({ "name": "x.y", "description": "d", "featureFlags": [], "featureFlag": "×" }),
            json!(["body", "featureFlag"]),
        ),
        (
            "PATCH",
            "/event-type/beta.thing",
            json!({ "featureFlags": ["é"] }),
            json!(["body", "featureFlags", "0"]),
        ),
    ];
    for (method, path, body, loc) in refused {
        let e = app.call(method, path, Some(body), 422).await;
        assert_eq!(e["detail"][0]["loc"], loc, "{method} {path}: {e}");
    }
    app.get("/event-type/x.y", 404).await;
    let kept = app.get("/event-type/beta.thing", 200).await;
    assert_eq!(kept["featureFlags"], json!(["beta-1", "v2.x"]), "{kept}");
    // PATCH takes either field; null removes them.
    let one = json!({ "featureFlag": "solo" });
    let p = app
        .call("PATCH", "/event-type/beta.thing", Some(one), 200)
        .await;
    assert_eq!(p["featureFlags"], json!(["solo"]), "{p}");
    let none = json!({ "featureFlags": null });
    let p = app
        .call("PATCH", "/event-type/beta.thing", Some(none), 200)
        .await;
    assert!(p["featureFlags"].is_null(), "{p}");
}

#[tokio::test]
async fn endpoints_have_svix_shapes_and_full_crud() {
    let app = TestApp::spawn().await;
    let a = app.create_app("x").await;
    app.create_event_type("a.b").await;
    let ep = app
        .post(
            &format!("/app/{a}/endpoint"),
            json!({ "url": "http://127.0.0.1:9/hook", "uid": "my-ep", "filterTypes": ["a.b"], "description": "d", "version": 1 }),
            201,
        )
        .await;
    for key in [
        "id",
        "url",
        "description",
        "metadata",
        "createdAt",
        "updatedAt",
    ] {
        assert!(!ep[key].is_null(), "{key}: {ep}");
    }
    assert_eq!(ep["version"], 1);
    assert_eq!(ep["filterTypes"], json!(["a.b"]));
    assert_eq!(ep["eventTypes"], json!(["a.b"]));
    let id = ep["id"].as_str().unwrap();
    assert_eq!(
        app.get(&format!("/app/{a}/endpoint/my-ep"), 200).await["id"],
        id
    );

    let second = app
        .post(
            &format!("/app/{a}/endpoint"),
            json!({ "url": "http://127.0.0.1:9/org/" }),
            201,
        )
        .await;
    // Endpoints list newest first.
    assert_eq!(
        ids(&app.get(&format!("/app/{a}/endpoint"), 200).await, "id"),
        [second["id"].as_str().unwrap(), id]
    );

    let p = app
        .call(
            "PATCH",
            &format!("/app/{a}/endpoint/{id}"),
            Some(json!({ "uid": null, "description": "e" })),
            200,
        )
        .await;
    assert!(p["uid"].is_null());
    assert_eq!(p["description"], "e");
    assert_eq!(p["url"], "http://127.0.0.1:9/hook");
    let put = app
        .call(
            "PUT",
            &format!("/app/{a}/endpoint/{id}"),
            Some(json!({ "url": "http://127.0.0.1:9/v2" })),
            200,
        )
        .await;
    assert_eq!(put["url"], "http://127.0.0.1:9/v2");
    assert!(
        put["filterTypes"].is_null(),
        "PUT replaces the filter: {put}"
    );

    app.call("DELETE", &format!("/app/{a}/endpoint/{id}"), None, 204)
        .await;
    let err = app.get(&format!("/app/{a}/endpoint/{id}"), 404).await;
    assert_eq!(err["code"], "not_found");

    for (body, field) in [
        (json!({ "url": "ftp://x" }), "url"),
        (json!({ "url": "not a url" }), "url"),
        (
            json!({ "url": "https://x.com", "channels": ["bad channel"] }),
            "channels",
        ),
        (json!({ "url": "https://x.com", "uid": "a/b" }), "uid"),
    ] {
        let v = app.post(&format!("/app/{a}/endpoint"), body, 422).await;
        assert_eq!(v["detail"][0]["loc"], json!(["body", field]), "{v}");
    }
    app.get("/app/nope/endpoint", 404).await;
}

/// Changes to one endpoint that arrive together all land: each PATCH changes only what it
/// names, on the endpoint as stored when it is made (they used to read, change and write
/// the whole endpoint, so one overwrote what the other had just changed).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_patches_of_one_endpoint_all_land() {
    let app = TestApp::spawn().await;
    let a = app.create_app("busy").await;
    let (ep, _) = app
        .create_endpoint(&a, json!({ "url": "https://example.com/hook" }))
        .await;
    let path = format!("/app/{a}/endpoint/{ep}");
    let patches = [
        json!({ "description": "D" }),
        json!({ "rateLimit": 7 }),
        json!({ "metadata": { "m": "1" } }),
        json!({ "timeoutSeconds": 9 }),
        json!({ "retrySchedule": [1] }),
        json!({ "channels": ["eu"] }),
        json!({ "uid": "busy-ep" }),
        json!({ "url": "https://example.com/other" }),
    ];
    let sent = patches.iter().map(|body| {
        let (app, path) = (&app, &path);
        async move { app.call("PATCH", path, Some(body.clone()), 200).await }
    });
    futures_util::future::join_all(sent).await;
    let got = app.get(&path, 200).await;
    assert_eq!(got["description"], "D", "{got}");
    assert_eq!(got["rateLimit"], 7, "{got}");
    assert_eq!(got["metadata"], json!({ "m": "1" }), "{got}");
    assert_eq!(got["timeoutSeconds"], 9, "{got}");
    assert_eq!(got["retrySchedule"], json!([1]), "{got}");
    assert_eq!(got["channels"], json!(["eu"]), "{got}");
    assert_eq!(got["uid"], "busy-ep", "{got}");
    assert_eq!(got["url"], "https://example.com/other", "{got}");

    // Headers merged at once, more than an edit tries again: every one is kept (on one
    // node, changes of one endpoint take turns).
    let merges = (0..60).map(|n| {
        let (app, path) = (&app, format!("{path}/headers"));
        async move {
            let body = json!({ "headers": { format!("X-H{n}"): n.to_string() } });
            app.call("PATCH", &path, Some(body), 204).await
        }
    });
    futures_util::future::join_all(merges).await;
    let headers = app.get(&format!("{path}/headers"), 200).await;
    let names: Vec<&String> = headers["headers"].as_object().unwrap().keys().collect();
    assert_eq!(names.len(), 60, "{headers}");
}

/// The answer to a change that disables or enables an endpoint is the endpoint as stored,
/// `updatedAt` included (disabling used to move it once more after the answer was made).
#[tokio::test]
async fn a_patch_that_disables_or_enables_answers_the_endpoint_as_stored() {
    let app = TestApp::spawn().await;
    let a = app.create_app("toggled").await;
    let (ep, _) = app
        .create_endpoint(&a, json!({ "url": "https://example.com/hook" }))
        .await;
    let path = format!("/app/{a}/endpoint/{ep}");
    for disabled in [true, false, true] {
        // Several changes within one millisecond are where the stored time moved on.
        for _ in 0..3 {
            let body = json!({ "disabled": disabled, "description": "x" });
            let answered = app.call("PATCH", &path, Some(body), 200).await;
            let stored = app.get(&path, 200).await;
            assert_eq!(answered["disabled"], disabled, "{answered}");
            assert_eq!(
                answered["updatedAt"], stored["updatedAt"],
                "{answered} / {stored}"
            );
        }
    }
}

/// As for endpoints: changes to one application that arrive together all land.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_patches_of_one_application_all_land() {
    let app = TestApp::spawn().await;
    let a = app.create_app("many").await;
    let path = format!("/app/{a}");
    let patches = [
        json!({ "name": "Renamed" }),
        json!({ "throttleRate": 11 }),
        json!({ "metadata": { "k": "v" } }),
        json!({ "payloadRetentionPeriod": 3 }),
        json!({ "uid": "many-2" }),
    ];
    let sent = patches.iter().map(|body| {
        let (app, path) = (&app, &path);
        async move { app.call("PATCH", path, Some(body.clone()), 200).await }
    });
    futures_util::future::join_all(sent).await;
    let got = app.get(&path, 200).await;
    assert_eq!(got["name"], "Renamed", "{got}");
    assert_eq!(got["throttleRate"], 11, "{got}");
    assert_eq!(got["metadata"], json!({ "k": "v" }), "{got}");
    assert_eq!(got["uid"], "many-2", "{got}");
    assert_eq!(got["payloadRetentionPeriod"], 3, "{got}");
}

#[tokio::test]
async fn messages_list_newest_first_filter_and_paginate_both_ways() {
    let app = TestApp::spawn().await;
    let a = app.create_app("x").await;
    let mut sent = Vec::new();
    for i in 0..5 {
        let t = if i % 2 == 0 { "even.one" } else { "odd.one" };
        sent.push(app.send(&a, t, json!({ "i": i })).await);
    }
    let all = app.get(&format!("/app/{a}/msg"), 200).await;
    let mut newest_first = sent.clone();
    newest_first.reverse();
    assert_eq!(ids(&all, "id"), newest_first);

    let p1 = app.get(&format!("/app/{a}/msg?limit=2"), 200).await;
    assert_eq!(ids(&p1, "id"), newest_first[..2]);
    let p2 = app
        .get(
            &format!(
                "/app/{a}/msg?limit=2&iterator={}",
                p1["iterator"].as_str().unwrap()
            ),
            200,
        )
        .await;
    assert_eq!(ids(&p2, "id"), newest_first[2..4]);
    let back = app
        .get(
            &format!(
                "/app/{a}/msg?limit=2&iterator={}",
                p2["prevIterator"].as_str().unwrap()
            ),
            200,
        )
        .await;
    assert_eq!(ids(&back, "id"), newest_first[..2]);

    let even = app
        .get(&format!("/app/{a}/msg?event_types=even.one"), 200)
        .await;
    assert_eq!(even["data"].as_array().unwrap().len(), 3);
    let both = app
        .get(&format!("/app/{a}/msg?event_types=even.one,odd.one"), 200)
        .await;
    assert_eq!(both["data"].as_array().unwrap().len(), 5);

    let bare = app
        .get(&format!("/app/{a}/msg/{}?with_content=false", sent[0]), 200)
        .await;
    assert_eq!(bare["payload"], json!({}));
    assert_eq!(
        app.get(&format!("/app/{a}/msg/{}", sent[0]), 200).await["payload"],
        json!({ "i": 0 })
    );
    let future = (chrono::Utc::now() + chrono::Duration::hours(1)).format("%Y-%m-%dT%H:%M:%S");
    // A datetime without an offset is UTC.
    assert_eq!(
        app.get(&format!("/app/{a}/msg?after={future}"), 200).await["data"],
        json!([])
    );
    assert_eq!(
        app.get(&format!("/app/{a}/msg?before={future}"), 200).await["data"]
            .as_array()
            .unwrap()
            .len(),
        5
    );
    app.get(&format!("/app/{a}/msg/msg_nope"), 404).await;
}

#[tokio::test]
async fn message_input_errors_are_clear_and_write_nothing() {
    let app = TestApp::spawn_with(|c| c.api.max_payload_bytes = 1000).await;
    let a = app.create_app("x").await;
    let path = format!("/app/{a}/msg");
    for (body, field) in [
        (json!({ "eventType": "a.b", "payload": [1] }), "payload"),
        (json!({ "eventType": "a.b", "payload": "text" }), "payload"),
        (
            json!({ "eventType": "bad type!", "payload": {} }),
            "eventType",
        ),
        (
            json!({ "eventType": "a.b", "payload": {}, "eventId": "has space" }),
            "eventId",
        ),
        (
            json!({ "eventType": "a.b", "payload": {}, "channels": ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k"] }),
            "channels",
        ),
        (
            json!({ "eventType": "a.b", "payload": {}, "deliverAt": "tomorrow" }),
            "deliverAt",
        ),
    ] {
        let v = app.post(&path, body, 422).await;
        assert_eq!(v["detail"][0]["loc"], json!(["body", field]), "{v}");
    }
    let v = app.post(&path, json!({ "payload": {} }), 422).await;
    assert!(
        v["detail"][0]["msg"]
            .as_str()
            .unwrap()
            .contains("eventType"),
        "{v}"
    );
    let big = "x".repeat(2000);
    let v = app
        .post(
            &path,
            json!({ "eventType": "a.b", "payload": { "big": big } }),
            413,
        )
        .await;
    assert_eq!(v["code"], "payload_too_large");
    let (status, _) = app.raw("POST", &path, vec![b'{'; 200_000]).await;
    assert_eq!(status, 413);
    let (status, body) = app
        .raw(
            "POST",
            &path,
            b"{\"eventType\": \"a\xff\", \"payload\": {}}".to_vec(),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let deep = format!(
        "{{\"eventType\": \"a.b\", \"payload\": {}{}}}",
        "{\"a\":".repeat(200),
        "}".repeat(200)
    );
    let (status, body) = app.raw("POST", &path, deep.into_bytes()).await;
    assert!(status == 400 || status == 422, "{status} {body}");
    assert_eq!(app.get(&path, 200).await["data"], json!([]));
    app.post(
        "/app/nope/msg",
        json!({ "eventType": "a.b", "payload": {} }),
        404,
    )
    .await;
}

#[tokio::test]
async fn a_message_can_create_its_application() {
    let app = TestApp::spawn().await;
    let m = app
        .post(
            "/app/tenant-7/msg",
            json!({ "eventType": "a.b", "payload": {}, "application": { "name": "Tenant 7" } }),
            202,
        )
        .await;
    let created = app.get("/app/tenant-7", 200).await;
    assert_eq!(created["name"], "Tenant 7");
    assert_eq!(
        app.get(
            &format!("/app/tenant-7/msg/{}", m["id"].as_str().unwrap()),
            200
        )
        .await["id"],
        m["id"]
    );
}

/// The application a message (or a portal link) creates is the one its path names: a uid of
/// its own that differs is refused as Svix refuses it, and nothing is created under either.
#[tokio::test]
async fn an_application_whose_uid_is_not_the_path_s_is_422_and_creates_nothing() {
    let app = TestApp::spawn().await;
    let body = json!({
        "eventType": "a.b",
        "payload": {},
        "application": { "name": "Auto", "uid": "different" }
    });
    let err = app.post("/app/auto-2/msg", body, 422).await;
    assert_eq!(
        err["detail"][0]["type"], "application_uid_mismatch",
        "{err}"
    );
    assert_eq!(
        err["detail"][0]["loc"],
        json!(["body", "application", "uid"]),
        "{err}"
    );
    let err = app
        .post(
            "/auth/app-portal-access/portal-2",
            json!({ "application": { "name": "P", "uid": "other" } }),
            422,
        )
        .await;
    assert_eq!(
        err["detail"][0]["type"], "application_uid_mismatch",
        "{err}"
    );
    for uid in ["auto-2", "different", "portal-2", "other"] {
        app.get(&format!("/app/{uid}"), 404).await;
    }
    // The same uid as the path is what it means anyway.
    app.post(
        "/app/auto-3/msg",
        json!({ "eventType": "a.b", "payload": {}, "application": { "name": "A", "uid": "auto-3" } }),
        202,
    )
    .await;
    assert_eq!(app.get("/app/auto-3", 200).await["uid"], "auto-3");
}

#[tokio::test]
async fn a_raw_payload_is_refused_rather_than_sent_as_the_empty_payload_beside_it() {
    let app = TestApp::spawn().await;
    let a = app.create_app("raw").await;
    let err = app
        .post(
            &format!("/app/{a}/msg"),
            json!({ "eventType": "a.b", "payload": {}, "transformationsParams": {
                "rawPayload": "hello=1&b=2",
                "headers": { "content-type": "application/x-www-form-urlencoded" } } }),
            422,
        )
        .await;
    assert!(err.to_string().contains("rawPayload"), "{err}");
    assert_eq!(
        app.get(&format!("/app/{a}/msg"), 200).await["data"],
        json!([])
    );
    // Other transformation parameters are ignored, as before.
    app.post(
        &format!("/app/{a}/msg"),
        json!({ "eventType": "a.b", "payload": {}, "transformationsParams": { "x": 1 } }),
        202,
    )
    .await;
}

#[tokio::test]
async fn a_message_cannot_create_an_application_under_a_reserved_uid() {
    let app = TestApp::spawn().await;
    let err = app
        .post(
            "/app/_hookbox_x/msg",
            json!({ "eventType": "a.b", "payload": {}, "application": { "name": "sneak" } }),
            422,
        )
        .await;
    assert!(err.to_string().contains("reserved"), "{err}");
    app.get("/app/_hookbox_x", 404).await;
}

#[tokio::test]
async fn attempts_stats_and_endpoint_messages_report_deliveries() {
    let app = TestApp::spawn().await;
    let rx = TestReceiver::start().await;
    let a = app.create_app("x").await;
    app.create_event_type("a.b").await;
    let (ep, _) = app.create_endpoint(&a, json!({ "url": rx.url })).await;
    let m = app.send(&a, "a.b", json!({ "k": 1 })).await;
    let attempts = app.wait_attempts(&a, &m, 1, Duration::from_secs(5)).await;
    let at = attempts[0]["id"].as_str().unwrap();
    for key in [
        "id",
        "msgId",
        "endpointId",
        "url",
        "response",
        "responseStatusCode",
        "responseDurationMs",
        "status",
        "statusText",
        "triggerType",
        "timestamp",
    ] {
        assert!(!attempts[0][key].is_null(), "{key}: {}", attempts[0]);
    }
    let one = app
        .get(&format!("/app/{a}/msg/{m}/attempt/{at}"), 200)
        .await;
    assert_eq!(one["msgId"], m.as_str());
    app.get(&format!("/app/{a}/msg/{m}/attempt/atmpt_nope"), 404)
        .await;

    let by_ep = app
        .get(
            &format!("/app/{a}/attempt/endpoint/{ep}?with_msg=true"),
            200,
        )
        .await;
    assert_eq!(by_ep["data"][0]["msg"]["payload"], json!({ "k": 1 }));
    assert_eq!(
        app.get(&format!("/app/{a}/attempt/endpoint/{ep}?status=2"), 200)
            .await["data"],
        json!([])
    );
    assert_eq!(
        app.get(
            &format!("/app/{a}/attempt/endpoint/{ep}?status_code_class=200"),
            200
        )
        .await["data"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        app.get(
            &format!("/app/{a}/attempt/endpoint/{ep}?status_code_class=400"),
            200
        )
        .await["data"],
        json!([])
    );

    let msgs = app.get(&format!("/app/{a}/endpoint/{ep}/msg"), 200).await;
    assert_eq!(msgs["data"][0]["id"], m.as_str());
    assert_eq!(msgs["data"][0]["statusText"], "success");
    let eps = app.get(&format!("/app/{a}/msg/{m}/endpoint"), 200).await;
    assert_eq!(eps["data"][0]["id"], ep.as_str());
    assert_eq!(eps["data"][0]["status"], 0);
    let stats = app.get(&format!("/app/{a}/endpoint/{ep}/stats"), 200).await;
    assert_eq!(stats["success"], 1);
}

#[tokio::test]
async fn send_example_goes_only_to_that_endpoint() {
    let app = TestApp::spawn().await;
    let rx = TestReceiver::start().await;
    let a = app.create_app("x").await;
    app.post(
        "/event-type",
        json!({ "name": "a.b", "description": "d", "schemas": { "1": { "type": "object", "examples": [{ "hello": "world" }] } } }),
        201,
    )
    .await;
    let (ep, _) = app
        .create_endpoint(&a, json!({ "url": format!("{}/one", rx.url) }))
        .await;
    app.create_endpoint(&a, json!({ "url": format!("{}/two", rx.url) }))
        .await;
    let m = app
        .post(
            &format!("/app/{a}/endpoint/{ep}/send-example"),
            json!({ "eventType": "a.b" }),
            200,
        )
        .await;
    assert_eq!(m["payload"], json!({ "hello": "world" }));
    let got = rx.wait_for_count(1, Duration::from_secs(5)).await;
    app.assert_nothing_due_within(Duration::from_secs(5)).await;
    assert_eq!(rx.count(), 1);
    assert_eq!(got[0].path, "/one");
    assert_eq!(got[0].json(), json!({ "hello": "world" }));
    app.post(
        &format!("/app/{a}/endpoint/{ep}/send-example"),
        json!({ "eventType": "nope" }),
        422,
    )
    .await;
}

#[tokio::test]
async fn endpoint_messages_show_skipped_deliveries_as_canceled_and_filter_by_that_status() {
    let app = TestApp::spawn().await;
    let a = app.create_app("x").await;
    app.create_event_type("a.b").await;
    let (ep, _) = app
        .create_endpoint(
            &a,
            json!({ "url": "http://127.0.0.1:9/hook", "disabled": true }),
        )
        .await;
    let m = app.send(&a, "a.b", json!({ "k": 1 })).await;
    let all = app.get(&format!("/app/{a}/endpoint/{ep}/msg"), 200).await;
    assert_eq!(all["data"][0]["id"], m.as_str());
    assert_eq!(all["data"][0]["status"], 4);
    assert_eq!(all["data"][0]["statusText"], "canceled");
    let canceled = app
        .get(&format!("/app/{a}/endpoint/{ep}/msg?status=4"), 200)
        .await;
    assert_eq!(canceled["data"], all["data"]);
    for other in 0..4 {
        let none = app
            .get(&format!("/app/{a}/endpoint/{ep}/msg?status={other}"), 200)
            .await;
        assert_eq!(none["data"], json!([]), "status={other}");
    }
}

/// `HEAD` is answered as `GET` is, without the body (RFC 9110: a general-purpose server
/// supports both); it was a 405 everywhere but the health checks.
#[tokio::test]
async fn head_answers_as_get_without_the_body() {
    let app = TestApp::spawn().await;
    app.create_app("listed").await;
    for path in ["/app", "/event-type", "/openapi.json"] {
        let url = format!("{}{path}", app.base);
        let get = app
            .client
            .get(&url)
            .bearer_auth(&app.token)
            .send()
            .await
            .unwrap();
        let (status, body) = (get.status(), get.bytes().await.unwrap());
        let head = app
            .client
            .head(&url)
            .bearer_auth(&app.token)
            .send()
            .await
            .unwrap();
        assert_eq!(head.status(), status, "{path}");
        assert_eq!(
            head.headers()["content-length"].to_str().unwrap(),
            body.len().to_string(),
            "{path}"
        );
        assert!(head.bytes().await.unwrap().is_empty(), "{path}");
    }
    // Without a token, as GET: 401. A route that only takes POST: 405.
    let head = app
        .client
        .head(format!("{}/app", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 401);
    let head = app
        .client
        .head(format!("{}/auth/app-portal-access/listed", app.base))
        .bearer_auth(&app.token)
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 405);
}
