//! The OpenAPI document: committed beside the code, served without a token, and every route it
//! describes exists.

use crate::support::TestApp;
use hookbox::http::api::openapi::document_json;
use serde_json::Value;

const REGENERATE: &str = "cargo run --quiet -- openapi > openapi.json";

#[test]
fn committed_openapi_json_matches_the_generated_document() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.json");
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    let generated = document_json();
    if committed == generated {
        return;
    }
    let line = committed
        .lines()
        .zip(generated.lines())
        .position(|(a, b)| a != b)
        .unwrap_or_else(|| committed.lines().count().min(generated.lines().count()));
    let show = |text: &str| text.lines().nth(line).unwrap_or("(end of file)").to_owned();
    panic!(
        "openapi.json is out of date with the API's code (first difference at line {}:\n  \
         committed: {}\n  generated: {}\n).\nRegenerate it from the repository root with \
         `{REGENERATE}`, check the diff, and commit it.",
        line + 1,
        show(&committed),
        show(&generated),
    );
}

#[tokio::test]
async fn openapi_document_is_served_as_json_without_a_token() {
    let app = TestApp::spawn().await;
    let resp = app
        .client
        .get(format!("{}/openapi.json", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let ct = resp.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(ct.starts_with("application/json"), "{ct}");
    assert_eq!(resp.text().await.unwrap(), document_json());
}

/// Each documented operation reaches a handler: without a token it is refused with 401 (or
/// answered, when it needs none), never 404 for an unknown route or 405.
#[tokio::test]
async fn every_documented_operation_is_routed() {
    let app = TestApp::spawn().await;
    let doc: Value = serde_json::from_str(&document_json()).unwrap();
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let open = op["security"].as_array().is_some_and(|s| {
                s.iter()
                    .any(|r| r.as_object().is_some_and(|o| o.is_empty()))
            });
            let url = format!("{}{}", app.root, fill_params(path));
            let resp = app
                .client
                .request(method.to_uppercase().parse().unwrap(), &url)
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            let body = resp.text().await.unwrap();
            if open {
                assert!(status < 300, "{method} {path}: {status} {body}");
            } else {
                assert_eq!(status, 401, "{method} {path}: {body}");
            }
            checked += 1;
        }
    }
    assert!(checked > 40, "only {checked} operations documented");
}

fn fill_params(path: &str) -> String {
    path.split('/')
        .map(|seg| if seg.starts_with('{') { "x" } else { seg })
        .collect::<Vec<_>>()
        .join("/")
}

#[test]
fn every_schema_reference_resolves() {
    fn walk(v: &Value, doc: &Value, missing: &mut Vec<String>) {
        match v {
            Value::Object(o) => {
                if let Some(Value::String(r)) = o.get("$ref") {
                    let pointer = r.trim_start_matches('#');
                    if doc.pointer(pointer).is_none() {
                        missing.push(r.clone());
                    }
                }
                o.values().for_each(|x| walk(x, doc, missing));
            }
            Value::Array(a) => a.iter().for_each(|x| walk(x, doc, missing)),
            _ => {}
        }
    }
    let doc: Value = serde_json::from_str(&document_json()).unwrap();
    let mut missing = Vec::new();
    walk(&doc, &doc, &mut missing);
    missing.sort();
    missing.dedup();
    assert!(missing.is_empty(), "unresolved references: {missing:?}");
}
