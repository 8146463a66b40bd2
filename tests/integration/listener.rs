//! How the HTTP listener treats client connections.

use crate::support::TestApp;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends one `GET` on `conn` and reads its answer's head (the ping has no body).
async fn ping(conn: &mut TcpStream) -> String {
    conn.write_all(b"GET /api/v1/health/ping HTTP/1.1\r\nhost: hookbox\r\n\r\n")
        .await
        .unwrap();
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(10), conn.read(&mut buf))
            .await
            .expect("an answer within 10 s")
            .unwrap();
        assert!(
            n > 0,
            "closed before answering: {}",
            String::from_utf8_lossy(&head)
        );
        head.extend_from_slice(&buf[..n]);
    }
    String::from_utf8(head).unwrap().to_ascii_lowercase()
}

/// Waits for the server to close `conn`; returns how long that took.
async fn closed_after(conn: &mut TcpStream) -> Duration {
    let start = Instant::now();
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(20), conn.read(&mut buf))
        .await
        .expect("the connection closed within 20 s")
        .unwrap_or(0);
    assert_eq!(
        n,
        0,
        "unexpected bytes: {}",
        String::from_utf8_lossy(&buf[..n])
    );
    start.elapsed()
}

#[tokio::test]
async fn an_idle_connection_is_closed_after_the_configured_keep_alive() {
    let app = TestApp::spawn_with(|c| c.keep_alive = Duration::from_secs(1)).await;
    let addr = app.root.trim_start_matches("http://");
    let mut conn = TcpStream::connect(addr).await.unwrap();
    let head = ping(&mut conn).await;
    assert!(head.starts_with("http/1.1 204"), "{head}");
    assert!(!head.contains("connection: close"), "{head}");
    // Kept for a second, not the HTTP library's own default of five.
    let idle = closed_after(&mut conn).await;
    assert!(idle < Duration::from_secs(3), "closed after {idle:?}");
}

#[tokio::test]
async fn a_keep_alive_of_zero_answers_one_request_per_connection() {
    let app = TestApp::spawn_with(|c| c.keep_alive = Duration::ZERO).await;
    let addr = app.root.trim_start_matches("http://");
    let mut conn = TcpStream::connect(addr).await.unwrap();
    let head = ping(&mut conn).await;
    assert!(head.contains("connection: close"), "{head}");
    let idle = closed_after(&mut conn).await;
    assert!(idle < Duration::from_secs(1), "closed after {idle:?}");
}
