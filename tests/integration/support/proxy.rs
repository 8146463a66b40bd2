//! A TCP proxy in front of a server (the test database) whose connections a test can cut, to
//! play a database that goes away and comes back, or freeze, to play one that stops
//! answering while its host's kernel still acknowledges every packet.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub struct Proxy {
    /// Where clients connect: `127.0.0.1:PORT`.
    pub addr: SocketAddr,
    cut: Arc<AtomicBool>,
    frozen: watch::Sender<bool>,
    links: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accepting: JoinHandle<()>,
}

impl Proxy {
    /// Forwards every connection made to [`Proxy::addr`] to `upstream` (`HOST:PORT`).
    pub async fn start(upstream: &str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let cut = Arc::new(AtomicBool::new(false));
        let links: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let (frozen, thawed) = watch::channel(false);
        let upstream = upstream.to_owned();
        let accepting = tokio::spawn({
            let (cut, links) = (cut.clone(), links.clone());
            async move {
                while let Ok((client, _)) = listener.accept().await {
                    if cut.load(Ordering::SeqCst) {
                        // Accepted and closed at once: the client's handshake finds no server.
                        drop(client);
                        continue;
                    }
                    let (upstream, thawed) = (upstream.clone(), thawed.clone());
                    let link = tokio::spawn(async move {
                        if let Ok(server) = TcpStream::connect(&upstream).await {
                            let (from_client, to_client) = client.into_split();
                            let (from_server, to_server) = server.into_split();
                            tokio::join!(
                                pump(from_client, to_server, thawed.clone()),
                                pump(from_server, to_client, thawed),
                            );
                        }
                    });
                    let mut links = links.lock().unwrap();
                    if cut.load(Ordering::SeqCst) {
                        // Cut while this one was being accepted.
                        link.abort();
                    } else {
                        links.retain(|l| !l.is_finished());
                        links.push(link);
                    }
                }
            }
        });
        Proxy {
            addr,
            cut,
            frozen,
            links,
            accepting,
        }
    }

    /// Holds every byte in either direction (what is sent is still read and acknowledged)
    /// until [`Proxy::thaw`]: a server that stopped answering.
    pub fn freeze(&self) {
        self.frozen.send_replace(true);
    }

    /// Passes what was held, and everything after it.
    pub fn thaw(&self) {
        self.frozen.send_replace(false);
    }

    /// Breaks every open connection and refuses new ones until [`Proxy::restore`]; returns
    /// once no byte can pass any more.
    pub async fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        let links: Vec<JoinHandle<()>> = self.links.lock().unwrap().drain(..).collect();
        for link in &links {
            link.abort();
        }
        for link in links {
            let _ = link.await;
        }
    }

    /// Lets connections through again.
    pub fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accepting.abort();
        self.cut.store(true, Ordering::SeqCst);
        for link in self.links.lock().unwrap().drain(..) {
            link.abort();
        }
    }
}

/// Copies `from` to `to`, holding what it read while the proxy is frozen.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut thawed: watch::Receiver<bool>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if thawed.wait_for(|frozen| !frozen).await.is_err()
            || to.write_all(&buf[..n]).await.is_err()
        {
            break;
        }
    }
    let _ = to.shutdown().await;
}
