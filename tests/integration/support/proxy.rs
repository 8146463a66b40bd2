//! A TCP proxy in front of a server (the test database) whose connections a test can cut, to
//! play a database that goes away and comes back.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

pub struct Proxy {
    /// Where clients connect: `127.0.0.1:PORT`.
    pub addr: SocketAddr,
    cut: Arc<AtomicBool>,
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
        let upstream = upstream.to_owned();
        let accepting = tokio::spawn({
            let (cut, links) = (cut.clone(), links.clone());
            async move {
                while let Ok((mut client, _)) = listener.accept().await {
                    if cut.load(Ordering::SeqCst) {
                        // Accepted and closed at once: the client's handshake finds no server.
                        drop(client);
                        continue;
                    }
                    let upstream = upstream.clone();
                    let link = tokio::spawn(async move {
                        if let Ok(mut server) = TcpStream::connect(&upstream).await {
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
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
            links,
            accepting,
        }
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
