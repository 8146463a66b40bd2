//! Telling the other nodes: `NOTIFY` on one channel, sent after commit (PostgreSQL delivers
//! a notification only when its transaction commits), and a listener per node that hands
//! each payload to the node.

use super::super::DbResult;
use deadpool_postgres::GenericClient;
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, NoTls};

/// The channel every node listens on.
pub const CHANNEL: &str = "hookbox";

/// Sends `payload` to every listening node once the caller's transaction commits (at once
/// outside a transaction).
pub async fn notify(c: &impl GenericClient, payload: &str) -> DbResult<()> {
    c.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &payload])
        .await?;
    Ok(())
}

/// What one node tells the others.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Signal {
    /// Work fell due that this node did not claim: look for it.
    Wake,
    /// An endpoint changed (URL, secret, headers, disabled, deleted): forget what is cached
    /// of it.
    Endpoint(String),
    /// A token was revoked: forget the cached token checks.
    Tokens,
    /// An endpoint answered "slow down" (429, 502, 503, 504): every node pauses it.
    SlowDown(String),
    /// A message's content was deleted (`None`: some message's): its deliveries claimed
    /// before are checked before they are sent.
    Expunged(Option<String>),
    /// Signals may have been missed (the listening connection was lost): look for due work
    /// and forget everything cached. Never sent; made by the listening node itself.
    Resync,
}

impl Signal {
    fn encode(&self) -> String {
        match self {
            Signal::Wake => "wake".into(),
            Signal::Endpoint(id) => format!("endpoint:{id}"),
            Signal::Tokens => "tokens".into(),
            Signal::SlowDown(id) => format!("slow:{id}"),
            Signal::Expunged(None) => "expunged".into(),
            Signal::Expunged(Some(msg_id)) => format!("expunged:{msg_id}"),
            Signal::Resync => "resync".into(),
        }
    }

    fn decode(s: &str) -> Option<Signal> {
        match s {
            "wake" => Some(Signal::Wake),
            "tokens" => Some(Signal::Tokens),
            "expunged" => Some(Signal::Expunged(None)),
            _ => {
                if let Some(msg_id) = s.strip_prefix("expunged:") {
                    return Some(Signal::Expunged(Some(msg_id.to_owned())));
                }
                if let Some(id) = s.strip_prefix("slow:") {
                    return Some(Signal::SlowDown(id.to_owned()));
                }
                s.strip_prefix("endpoint:")
                    .map(|id| Signal::Endpoint(id.to_owned()))
            }
        }
    }
}

/// Signals for the other nodes, coalesced: any number of the same signal between two sends
/// become one `NOTIFY`, sent on its own connection after the work it announces has committed
/// (never inside an ingest transaction, which would hold its commit up). Each payload names
/// the sending node, whose own listener ignores it.
#[derive(Default)]
pub struct Outgoing {
    pending: std::sync::Mutex<std::collections::BTreeSet<Signal>>,
    ready: tokio::sync::Notify,
}

impl Outgoing {
    /// Queues `s` for the next send (cheap; call it after the commit it announces).
    pub fn send(&self, s: Signal) {
        let added = self
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(s);
        if added {
            self.ready.notify_one();
        }
    }

    /// Waits until something is queued.
    pub async fn ready(&self) {
        self.ready.notified().await;
    }

    /// Sends what is queued, one `NOTIFY` per distinct signal, as node `node`; how many.
    pub async fn flush(&self, c: &impl GenericClient, node: &str) -> DbResult<usize> {
        let signals = std::mem::take(
            &mut *self
                .pending
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        let mut sent = 0;
        for s in &signals {
            if let Err(e) = notify(c, &format!("{node}|{}", s.encode())).await {
                // Not lost: the next flush tries again.
                for s in signals {
                    self.send(s);
                }
                return Err(e);
            }
            sent += 1;
        }
        Ok(sent)
    }
}

/// A payload heard from another node: its signal, `None` for this node's own and for what
/// this version does not know.
pub fn heard(payload: &str, node: &str) -> Option<Signal> {
    let (from, signal) = payload.split_once('|')?;
    if from == node {
        return None;
    }
    Signal::decode(signal)
}

/// A node's subscription to [`CHANNEL`], on a connection of its own.
pub struct Listener {
    /// Keeps the connection open.
    _client: tokio_postgres::Client,
    payloads: mpsc::UnboundedReceiver<String>,
}

impl Listener {
    /// Connects to `url` and listens; notifications committed from now on are received.
    pub async fn start(url: &str) -> DbResult<Listener> {
        let cfg = super::connection_config(url)?;
        let (client, mut connection) = cfg.connect(NoTls).await?;
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

    #[test]
    fn every_signal_a_node_sends_is_heard_as_itself() {
        for s in [
            Signal::Wake,
            Signal::Endpoint("ep_1".into()),
            Signal::Tokens,
            Signal::SlowDown("ep_2".into()),
            Signal::Expunged(None),
            Signal::Expunged(Some("msg_3".into())),
        ] {
            assert_eq!(Signal::decode(&s.encode()), Some(s));
        }
    }

    #[tokio::test]
    async fn other_nodes_hear_what_was_committed_and_nothing_that_was_rolled_back() {
        let Some((pool, url)) = super::super::tests::fresh_database().await else {
            return;
        };
        let mut node_b = Listener::start(&url).await.unwrap();
        let mut c = pool.get().await.unwrap();
        // Inside a transaction: nothing until it commits; a rolled-back one says nothing.
        let tx = c.transaction().await.unwrap();
        notify(&tx, "rolled-back").await.unwrap();
        tx.rollback().await.unwrap();
        let tx = c.transaction().await.unwrap();
        notify(&tx, "endpoint:ep_1").await.unwrap();
        notify(&tx, "wake").await.unwrap();
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
    async fn many_signals_between_two_sends_make_one_notification_each() {
        let Some((pool, url)) = super::super::tests::fresh_database().await else {
            return;
        };
        let mut node_b = Listener::start(&url).await.unwrap();
        let c = pool.get().await.unwrap();
        let out = Outgoing::default();
        assert_eq!(
            out.flush(&c, "a").await.unwrap(),
            0,
            "nothing asked, nothing sent"
        );
        for _ in 0..100 {
            out.send(Signal::Wake);
            out.send(Signal::Endpoint("ep_1".into()));
        }
        assert_eq!(out.flush(&c, "a").await.unwrap(), 2);
        assert_eq!(out.flush(&c, "a").await.unwrap(), 0);
        notify(&c, "a|tokens").await.unwrap();
        let mut heard_b = Vec::new();
        for _ in 0..3 {
            let payload = tokio::time::timeout(Duration::from_secs(10), node_b.next())
                .await
                .expect("heard within 10 s")
                .unwrap();
            heard_b.push(heard(&payload, "b"));
            assert_eq!(heard(&payload, "a"), None, "a node ignores its own signals");
        }
        assert_eq!(
            heard_b,
            [
                Some(Signal::Wake),
                Some(Signal::Endpoint("ep_1".into())),
                Some(Signal::Tokens)
            ]
        );
    }
}
