use crate::support::TestApp;
use serde_json::json;

#[tokio::test]
async fn application_crud_follows_svix_shapes() {
    let app = TestApp::spawn().await;
    let created = app
        .post(
            "/app",
            json!({ "name": "Acme", "uid": "acme", "metadata": { "plan": "pro" } }),
            201,
        )
        .await;
    let id = created["id"].as_str().unwrap();
    assert!(id.starts_with("app_"));
    for key in ["id", "name", "metadata", "createdAt", "updatedAt"] {
        assert!(!created[key].is_null(), "{key} missing: {created}");
    }
    assert!(created["createdAt"].as_str().unwrap().ends_with('Z'));

    // Both the id and the uid find it, with or without a trailing slash.
    assert_eq!(app.get(&format!("/app/{id}"), 200).await["uid"], "acme");
    assert_eq!(app.get("/app/acme/", 200).await["id"], id);

    let patched = app
        .call(
            "PATCH",
            "/app/acme",
            Some(json!({ "name": "Acme Inc" })),
            200,
        )
        .await;
    assert_eq!(patched["name"], "Acme Inc");
    assert_eq!(patched["metadata"]["plan"], "pro");

    let put = app
        .call("PUT", "/app/acme", Some(json!({ "name": "Acme 2" })), 200)
        .await;
    assert_eq!(put["name"], "Acme 2");
    assert_eq!(put["metadata"], json!({}));

    app.call("DELETE", "/app/acme", None, 204).await;
    let err = app.get("/app/acme", 404).await;
    assert_eq!(err["code"], "not_found");
}

#[tokio::test]
async fn duplicate_uid_conflicts_unless_get_if_exists() {
    let app = TestApp::spawn().await;
    let first = app
        .post("/app", json!({ "name": "A", "uid": "dup" }), 201)
        .await;
    let err = app
        .post("/app", json!({ "name": "B", "uid": "dup" }), 409)
        .await;
    assert_eq!(err["code"], "conflict");
    let again = app
        .post(
            "/app?get_if_exists=true",
            json!({ "name": "B", "uid": "dup" }),
            200,
        )
        .await;
    assert_eq!(again["id"], first["id"]);
    assert_eq!(again["name"], "A");
}

#[tokio::test]
async fn put_creates_an_application_under_the_path_uid() {
    let app = TestApp::spawn().await;
    let v = app
        .call("PUT", "/app/new-uid", Some(json!({ "name": "New" })), 201)
        .await;
    assert_eq!(v["uid"], "new-uid");
    assert_eq!(app.get("/app/new-uid", 200).await["id"], v["id"]);

    // Another uid in the body would make something a repeat of the PUT does not find.
    let e = app
        .call(
            "PUT",
            "/app/other",
            Some(json!({ "name": "Other", "uid": "elsewhere" })),
            409,
        )
        .await;
    assert!(
        e["detail"].as_str().unwrap().contains("leave uid out"),
        "{e}"
    );
    app.get("/app/elsewhere", 404).await;
    for status in [201, 200, 200] {
        let same = json!({ "name": "Other", "uid": "other" });
        app.call("PUT", "/app/other", Some(same), status).await;
    }
    // An existing application may be given a new uid.
    let moved = json!({ "name": "Other", "uid": "moved" });
    let v = app.call("PUT", "/app/other", Some(moved), 200).await;
    assert_eq!(v["uid"], "moved");

    // Endpoints alike.
    let url = "http://127.0.0.1:9/h";
    let e = app
        .call(
            "PUT",
            "/app/moved/endpoint/ep-a",
            Some(json!({ "url": url, "uid": "ep-b" })),
            409,
        )
        .await;
    assert!(
        e["detail"].as_str().unwrap().contains("leave uid out"),
        "{e}"
    );
    let v = app
        .call(
            "PUT",
            "/app/moved/endpoint/ep-a",
            Some(json!({ "url": url })),
            201,
        )
        .await;
    assert_eq!(v["uid"], "ep-a");
}

#[tokio::test]
async fn application_input_errors_are_422_with_location() {
    let app = TestApp::spawn().await;
    let v = app.post("/app", json!({ "name": 5 }), 422).await;
    assert_eq!(v["detail"][0]["loc"], json!(["body", "name"]));
    let v = app
        .post("/app", json!({ "name": "x", "uid": "has space" }), 422)
        .await;
    assert_eq!(v["detail"][0]["loc"], json!(["body", "uid"]));
    let v = app.post("/app", json!({}), 422).await;
    assert!(
        v["detail"][0]["msg"].as_str().unwrap().contains("name"),
        "{v}"
    );
    // An application created with a message or a portal link: a bad field is located in
    // `application`, or in the path when it came from there (the uid, by default).
    let msg = json!({ "eventType": "a.b", "payload": {} });
    for path in ["/app/new-app/msg", "/auth/app-portal-access/new-app"] {
        let mut body = msg.clone();
        body["application"] = json!({ "name": "x", "uid": "has space" });
        let v = app.post(path, body, 422).await;
        assert_eq!(
            v["detail"][0]["loc"],
            json!(["body", "application", "uid"]),
            "{path}: {v}"
        );
    }
    for path in ["/app/_hookbox-x/msg", "/auth/app-portal-access/_hookbox-x"] {
        let mut body = msg.clone();
        body["application"] = json!({ "name": "x" });
        let v = app.post(path, body, 422).await;
        assert_eq!(
            v["detail"][0]["loc"],
            json!(["path", "app_id"]),
            "{path}: {v}"
        );
    }
    let (status, body) = app.raw("POST", "/app", b"{\"name\": ".to_vec()).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("generic_error"));
    assert_eq!(
        app.get("/app?limit=0", 422).await["detail"][0]["loc"],
        json!(["query", "limit"])
    );
    // Nothing was written by any of them.
    assert_eq!(app.get("/app", 200).await["data"], json!([]));
}

#[tokio::test]
async fn every_route_but_health_needs_a_valid_token() {
    let app = TestApp::spawn().await;
    let client = reqwest::Client::new();
    let r = client
        .get(format!("{}/app", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["code"], "authentication_failed");
    let r = client
        .get(format!("{}/app", app.base))
        .bearer_auth("hbx_wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    for path in ["/health", "/health/", "/health/ping"] {
        for method in [reqwest::Method::GET, reqwest::Method::HEAD] {
            let r = client
                .request(method.clone(), format!("{}{path}", app.base))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 204, "{method} {path}");
        }
    }
}

#[tokio::test]
async fn applications_paginate_forwards_and_backwards() {
    let app = TestApp::spawn().await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(app.create_app(&format!("app {i}")).await);
    }
    let p1 = app.get("/app?limit=2", 200).await;
    assert_eq!(p1["done"], false);
    let got: Vec<&str> = p1["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert_eq!(got, [ids[0].as_str(), ids[1].as_str()]);
    let it = p1["iterator"].as_str().unwrap();
    let p2 = app.get(&format!("/app?limit=2&iterator={it}"), 200).await;
    let got: Vec<&str> = p2["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert_eq!(got, [ids[2].as_str(), ids[3].as_str()]);
    let p3 = app
        .get(
            &format!("/app?limit=2&iterator={}", p2["iterator"].as_str().unwrap()),
            200,
        )
        .await;
    assert_eq!(p3["done"], true);
    assert_eq!(p3["data"].as_array().unwrap().len(), 1);
    // Back from page 2 gives page 1 again.
    let back = app
        .get(
            &format!(
                "/app?limit=2&iterator={}",
                p2["prevIterator"].as_str().unwrap()
            ),
            200,
        )
        .await;
    let got: Vec<&str> = back["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert_eq!(got, [ids[0].as_str(), ids[1].as_str()]);
    let desc = app.get("/app?limit=1&order=descending", 200).await;
    assert_eq!(desc["data"][0]["id"], ids[4].as_str());
}

#[tokio::test]
async fn unknown_routes_and_methods_get_json_errors() {
    let app = TestApp::spawn().await;
    let v = app.get("/nothing-here", 404).await;
    assert_eq!(v["code"], "not_found");
    let v = app.call("DELETE", "/app", None, 405).await;
    assert_eq!(v["code"], "method_not_allowed");
}
