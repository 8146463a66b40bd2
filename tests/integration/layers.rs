//! The layers keep to their places (DESIGN §6): reads `src/` and fails on a line that crosses
//! a boundary.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out.sort();
    out
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `file:line: text` under `dir` (relative to `src/`) that mentions one of `needles`,
/// comments aside.
fn mentions(dir: &str, needles: &[&str]) -> Vec<String> {
    let root = src();
    let mut hits = Vec::new();
    for file in rust_files(&root.join(dir)) {
        let text = std::fs::read_to_string(&file).unwrap();
        let name = file.strip_prefix(&root).unwrap().display().to_string();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            if needles.iter().any(|w| code.contains(w)) {
                hits.push(format!("{name}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    hits
}

#[test]
fn the_domain_is_pure() {
    let hits = mentions(
        "domain",
        &[
            "rusqlite",
            "tokio",
            "reqwest",
            "actix",
            "std::fs",
            "std::net::Tcp",
            "crate::db",
            "crate::http",
            "crate::service",
            "crate::delivery",
        ],
    );
    assert!(
        hits.is_empty(),
        "I/O or outer layers in src/domain:\n{hits:#?}"
    );
}

#[test]
fn services_know_nothing_of_http() {
    let hits = mentions("service", &["crate::http", "actix", "rusqlite"]);
    assert!(
        hits.is_empty(),
        "src/service reaches into HTTP or SQLite:\n{hits:#?}"
    );
}

#[test]
fn the_api_and_the_console_do_not_call_each_other() {
    let hits = mentions("http/api", &["http::admin", "super::admin"]);
    assert!(hits.is_empty(), "the API uses the console:\n{hits:#?}");
    let hits = mentions("http/admin", &["http::api", "super::api"]);
    assert!(
        hits.is_empty(),
        "the console uses the API's handlers:\n{hits:#?}"
    );
}

#[test]
fn database_drivers_stay_in_storage() {
    let root = src();
    let mut hits = Vec::new();
    for file in rust_files(&root) {
        let name = file.strip_prefix(&root).unwrap().display().to_string();
        if name.starts_with("db/") {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            let driver = ["rusqlite", "Connection", "tokio_postgres", "deadpool"]
                .iter()
                .any(|w| code.contains(w));
            if driver {
                hits.push(format!("{name}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    assert!(
        hits.is_empty(),
        "a database driver outside src/db:\n{hits:#?}"
    );
}

#[test]
fn sql_lives_in_the_backends_and_the_store_is_the_way_in() {
    let root = src();
    let mut hits = Vec::new();
    for file in rust_files(&root) {
        let name = file.strip_prefix(&root).unwrap().display().to_string();
        if name.starts_with("db/sqlite/") || name.starts_with("db/postgres/") {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            let sql = [
                "SELECT ",
                "INSERT INTO",
                "DELETE FROM",
                "UPDATE ",
                "PRAGMA ",
            ]
            .iter()
            .any(|w| code.contains(&format!("\"{w}")));
            // Work run on the writer thread or a reader: only the SQLite backend does that.
            let outside = !name.starts_with("db/");
            let closure =
                outside && (code.contains(".write(move |") || code.contains(".read(move |"));
            let backend = outside && code.contains("db::sqlite");
            if sql || closure || backend {
                hits.push(format!("{name}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    assert!(
        hits.is_empty(),
        "SQL outside a backend (src/db/sqlite, src/db/postgres), or storage reached around the Store:\n{hits:#?}"
    );
}

#[test]
fn handlers_read_through_the_store_and_change_through_services() {
    // A Store method that changes something, by its name.
    const CHANGES: &[&str] = &[
        "create_",
        "update_",
        "put_",
        "change_",
        "delete_",
        "disable_",
        "enable_",
        "revoke_",
        "touch_",
        "end_",
        "keep_",
        "record_",
        "rotate_",
        "resend",
        "recover_",
        "replay_",
        "ingest",
        "claim_",
        "release_",
        "purge_",
        "get_or_create",
        "app_or_create",
        "replace_",
        "expunge_",
        "token_by_hash",
        "ensure_",
    ];
    let root = src();
    let mut hits = Vec::new();
    for file in rust_files(&root.join("http")) {
        let name = file.strip_prefix(&root).unwrap().display().to_string();
        let text: String = std::fs::read_to_string(&file)
            .unwrap()
            .lines()
            .map(|l| l.split("//").next().unwrap_or_default().trim())
            .collect();
        for (at, _) in text.match_indices("store.") {
            let method: String = text[at + "store.".len()..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if CHANGES.iter().any(|p| method.starts_with(p)) {
                hits.push(format!("{name}: store.{method}"));
            }
        }
    }
    assert!(
        hits.is_empty(),
        "handlers changing state without a service:\n{hits:#?}"
    );
}
