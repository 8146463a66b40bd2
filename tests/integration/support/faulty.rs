//! A raw TCP server that misbehaves in chosen ways, for fault-injection tests.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Debug, Clone, Copy)]
pub enum Fault {
    /// Reads the request, then waits this long before sending anything.
    SlowHeaders(Duration),
    /// Sends `200` headers promising a body, then one byte per interval.
    SlowBody(Duration),
    /// Sends half a status line and resets the connection.
    ResetMidResponse,
    /// Sends `200` and a chunked body that never ends.
    EndlessBody,
}

pub struct FaultyServer {
    pub url: String,
    pub connections: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl FaultyServer {
    pub async fn start(fault: Fault) -> FaultyServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let connections = Arc::new(AtomicUsize::new(0));
        let count = connections.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(serve(stream, fault));
            }
        });
        FaultyServer {
            url,
            connections,
            task,
        }
    }
}

impl Drop for FaultyServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads until the end of the request headers and the body they announce.
async fn read_request(stream: &mut TcpStream) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let Ok(n) = stream.read(&mut chunk).await else {
            return;
        };
        if n == 0 {
            return;
        }
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf);
        if let Some(end) = text.find("\r\n\r\n") {
            let len = text[..end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                })
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                return;
            }
        }
    }
}

async fn serve(mut stream: TcpStream, fault: Fault) {
    read_request(&mut stream).await;
    match fault {
        Fault::SlowHeaders(d) => {
            tokio::time::sleep(d).await;
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                .await;
        }
        Fault::SlowBody(every) => {
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n")
                .await;
            for _ in 0..1000 {
                if stream.write_all(b"x").await.is_err() {
                    return;
                }
                tokio::time::sleep(every).await;
            }
        }
        Fault::ResetMidResponse => {
            let _ = stream.write_all(b"HTTP/1.1 2").await;
            let _ = stream.set_zero_linger();
            drop(stream);
        }
        Fault::EndlessBody => {
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
                .await;
            let chunk = format!("400\r\n{}\r\n", "y".repeat(0x400));
            // Bounded so a broken client cannot keep the test running: 64 MiB at most.
            for _ in 0..65_536 {
                if stream.write_all(chunk.as_bytes()).await.is_err() {
                    return;
                }
            }
        }
    }
}
