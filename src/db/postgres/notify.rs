//! Telling the other nodes: `NOTIFY` on one channel, sent after commit (PostgreSQL delivers
//! a notification only when its transaction commits), and a listener per node that hands
//! each payload to the node.

use super::super::DbResult;
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, GenericClient, NoTls};

/// The channel every node listens on.
pub const CHANNEL: &str = "hookbox";

/// Sends `payload` to every listening node once the caller's transaction commits (at once
/// outside a transaction).
pub async fn notify(c: &impl GenericClient, payload: &str) -> DbResult<()> {
    c.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &payload])
        .await?;
    Ok(())
}

/// Wake-ups for the other nodes, coalesced: any number of [`Wakeups::request`]s between two
/// sends become one `NOTIFY`, sent on its own connection after the work it announces has
/// committed (never inside an ingest transaction, which would hold its commit up).
#[derive(Clone, Default)]
pub struct Wakeups {
    pending: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Wakeups {
    /// Asks for a wake-up of the other nodes (cheap; call it after each commit).
    pub fn request(&self) {
        self.pending
            .store(true, std::sync::atomic::Ordering::Release);
    }

    /// Sends one `wake` if any was asked for since the last send; whether one was sent.
    pub async fn flush(&self, c: &impl GenericClient) -> DbResult<bool> {
        if !self
            .pending
            .swap(false, std::sync::atomic::Ordering::AcqRel)
        {
            return Ok(false);
        }
        if let Err(e) = notify(c, WAKE).await {
            // Not lost: the next flush tries again.
            self.request();
            return Err(e);
        }
        Ok(true)
    }
}

/// The payload that wakes other nodes' schedulers.
pub const WAKE: &str = "wake";

/// A node's subscription to [`CHANNEL`], on a connection of its own.
pub struct Listener {
    /// Keeps the connection open.
    _client: tokio_postgres::Client,
    payloads: mpsc::UnboundedReceiver<String>,
}

impl Listener {
    /// Connects to `url` and listens; notifications committed from now on are received.
    pub async fn start(url: &str) -> DbResult<Listener> {
        let (client, mut connection) = tokio_postgres::connect(url, NoTls).await?;
        let (tx, payloads) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
            while let Some(message) = messages.next().await {
                match message {
                    Ok(AsyncMessage::Notification(n)) => {
                        if tx.send(n.payload().to_owned()).is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "the notification connection ended");
                        return;
                    }
                }
            }
        });
        client.batch_execute(&format!("LISTEN {CHANNEL}")).await?;
        Ok(Listener {
            _client: client,
            payloads,
        })
    }

    /// The next payload; `None` once the connection has ended.
    pub async fn next(&mut self) -> Option<String> {
        self.payloads.recv().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn other_nodes_hear_what_was_committed_and_nothing_that_was_rolled_back() {
        let Some((pool, url)) = super::super::tests::fresh_database().await else {
            return;
        };
        let mut node_b = Listener::start(&url).await.unwrap();
        let mut c = pool.get().await.unwrap();
        // Inside a transaction: nothing until it commits; a rolled-back one says nothing.
        let tx = c.transaction().await.unwrap();
        notify(&*tx, "rolled-back").await.unwrap();
        tx.rollback().await.unwrap();
        let tx = c.transaction().await.unwrap();
        notify(&*tx, "endpoint:ep_1").await.unwrap();
        notify(&*tx, "wake").await.unwrap();
        tx.commit().await.unwrap();
        // Notifications arrive in commit order: the first heard is the committed one.
        for expected in ["endpoint:ep_1", "wake"] {
            let heard = tokio::time::timeout(Duration::from_secs(10), node_b.next())
                .await
                .expect("heard within 10 s");
            assert_eq!(heard.as_deref(), Some(expected));
        }
    }

    #[tokio::test]
    async fn many_wake_up_requests_between_two_sends_make_one_notification() {
        let Some((pool, url)) = super::super::tests::fresh_database().await else {
            return;
        };
        let mut node_b = Listener::start(&url).await.unwrap();
        let c = pool.get().await.unwrap();
        let wakeups = Wakeups::default();
        assert!(
            !wakeups.flush(&**c).await.unwrap(),
            "nothing asked, nothing sent"
        );
        for _ in 0..100 {
            wakeups.request();
        }
        assert!(wakeups.flush(&**c).await.unwrap());
        assert!(!wakeups.flush(&**c).await.unwrap());
        notify(&**c, "marker").await.unwrap();
        for expected in [WAKE, "marker"] {
            let heard = tokio::time::timeout(Duration::from_secs(10), node_b.next())
                .await
                .expect("heard within 10 s");
            assert_eq!(heard.as_deref(), Some(expected));
        }
    }
}
