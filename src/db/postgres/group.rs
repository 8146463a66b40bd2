//! Group commit for ingest on PostgreSQL: concurrent messages (ingest's common case, without
//! an `Idempotency-Key`) are stored together, in one transaction of two statements, as the
//! SQLite writer groups its jobs. A commit costs PostgreSQL far more than the rows it writes,
//! so this is what lets one database take several thousand messages a second.
//!
//! Requests queue here; a group starts as soon as one of the few group slots is free and takes
//! every request queued by then (up to [`MAX_GROUP`]). At low load each request goes alone, at
//! once; under load the groups grow while the slots are busy committing. Should a group fail,
//! its messages are stored again one by one, so that one message's error is its own.

use super::messages::{self, Bracket, GroupMember, GroupOutcome, Progress};
use super::{HandTx, Inner, PgStore};
use crate::db::outbox::IngestRequest;
use crate::db::{DbError, DbResult};
use crate::domain::model::Message;
use std::sync::{Arc, Weak};
use tokio::sync::{mpsc, oneshot, Semaphore};

/// The most messages one transaction stores.
pub const MAX_GROUP: usize = 64;

/// A message waiting to be stored with others.
pub struct Job {
    pub msg: Message,
    /// Its application, by id or uid.
    pub app_key: String,
    /// Only this endpoint (send-example), regardless of its filters.
    pub only_endpoint: Option<String>,
    /// How long the payload is kept, when the request says.
    pub keep_ms: Option<i64>,
    pub default_keep_ms: i64,
    pub due_at: i64,
    pub lease_until: i64,
    /// Whether this node takes a delivery to this endpoint now.
    pub claim: Box<dyn FnMut(&str) -> bool + Send>,
}

/// A job and where its answer goes.
pub struct Queued {
    job: Job,
    reply: oneshot::Sender<DbResult<GroupOutcome>>,
}

impl Job {
    fn member(&mut self) -> GroupMember<'_> {
        GroupMember {
            app_key: &self.app_key,
            req: IngestRequest {
                msg: &self.msg,
                only_endpoint: self.only_endpoint.as_deref(),
                idempotency: None,
                response: (0, ""),
                lease_until: self.lease_until,
                due_at: self.due_at,
                expires_at: 0,
                filter_input: Default::default(),
            },
            keep_ms: self.keep_ms,
            default_keep_ms: self.default_keep_ms,
            claim: &mut *self.claim,
        }
    }
}

/// Where ingest hands its messages.
pub struct Grouper {
    jobs: mpsc::UnboundedSender<Queued>,
}

impl Grouper {
    /// Starts grouping for `store` on `runtime`, with at most `slots` groups being stored at
    /// once. It ends when the store is dropped.
    pub fn start(runtime: &tokio::runtime::Handle, store: Weak<Inner>, slots: usize) -> Grouper {
        let (jobs, mut queue) = mpsc::unbounded_channel::<Queued>();
        let slots = Arc::new(Semaphore::new(slots.max(1)));
        runtime.spawn(async move {
            loop {
                let Ok(slot) = slots.clone().acquire_owned().await else {
                    return;
                };
                let Some(first) = queue.recv().await else {
                    return;
                };
                let mut group = vec![first];
                while group.len() < MAX_GROUP {
                    match queue.try_recv() {
                        Ok(job) => group.push(job),
                        Err(_) => break,
                    }
                }
                let Some(inner) = store.upgrade() else {
                    return;
                };
                tokio::spawn(async move {
                    store_group(&PgStore(inner), group).await;
                    drop(slot);
                });
            }
        });
        Grouper { jobs }
    }

    /// Queues `job`; its answer comes on the receiver (closed without one if the grouper
    /// has stopped).
    pub fn send(&self, job: Job) -> oneshot::Receiver<DbResult<GroupOutcome>> {
        let (reply, answer) = oneshot::channel();
        let _ = self.jobs.send(Queued { job, reply });
        answer
    }
}

/// Stores `group` in one transaction and answers each job. When one of its statements fails,
/// each job is stored alone (the error is one message's); without a connection, or when the
/// commit fails, every job gets the error.
pub async fn store_group(store: &PgStore, mut group: Vec<Queued>) {
    // A caller that has gone was never answered: its message is not stored.
    group.retain(|q| !q.reply.is_closed());
    if group.is_empty() {
        return;
    }
    let node = store.node();
    match try_group(store, &mut group, &node).await {
        Ok(outcomes) => {
            for (q, outcome) in group.into_iter().zip(outcomes) {
                let _ = q.reply.send(Ok(outcome));
            }
        }
        Err(Failed::Statement(e)) if group.len() > 1 => {
            tracing::debug!(error = %e, messages = group.len(), "an ingest group failed; storing its messages one by one");
            for mut q in group {
                let stored = store
                    .write(async |tx| {
                        let mut member = [q.job.member()];
                        messages::ingest_group(tx, &mut member, &node, &mut Bracket::Caller).await
                    })
                    .await
                    .map(|mut o| o.pop().unwrap_or(GroupOutcome::NoApp));
                let _ = q.reply.send(stored);
            }
        }
        Err(Failed::Statement(e) | Failed::Store(e)) => {
            let shared = e.again();
            let mut e = Some(e);
            for q in group {
                let e = e.take().unwrap_or_else(|| shared.again());
                let _ = q.reply.send(Err(e));
            }
        }
    }
}

/// Why a group was not stored.
enum Failed {
    /// One of its statements failed on a working connection: a message may be the cause.
    Statement(DbError),
    /// No connection, a connection that broke, or a failed commit: no message is the cause.
    Store(DbError),
}

async fn try_group(
    store: &PgStore,
    group: &mut [Queued],
    node: &str,
) -> Result<Vec<GroupOutcome>, Failed> {
    let c = store
        .pool
        .get()
        .await
        .map_err(|e| Failed::Store(e.into()))?;
    // BEGIN goes with the first statement and COMMIT with the last: a group takes two round
    // trips to the database, not four (once its statements are prepared on this connection).
    let c = HandTx::new(c);
    let mut bracket = Bracket::Own(Progress::Open);
    let mut members: Vec<GroupMember<'_>> = group.iter_mut().map(|q| q.job.member()).collect();
    let stored = messages::ingest_group(c.client(), &mut members, node, &mut bracket).await;
    drop(members);
    let e = match stored {
        Ok(outcomes) => {
            c.done();
            return Ok(outcomes);
        }
        Err(e) => e,
    };
    if bracket != Bracket::Own(Progress::Open) {
        // Committed, or the COMMIT failed: the transaction has ended either way (the pool
        // drops a connection that broke), and no message is the cause.
        c.done();
        return Err(Failed::Store(e));
    }
    // A server shutting down (or a connection that broke) fails every message alike.
    let broken = c.client().is_closed() || matches!(e, DbError::Unreachable(_));
    c.rollback().await;
    Err(if broken {
        Failed::Store(e)
    } else {
        Failed::Statement(e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Ingested;
    use crate::domain::crypto::MainKey;
    use crate::domain::model::{AppId, MsgId};

    /// A store on a fresh database with application `app_1` (uid `shop`, payloads kept
    /// 5,000 ms) and its endpoints `ep_0` (disabled) and `ep_1`; `None` without a cluster.
    async fn store() -> Option<PgStore> {
        let (pool, url) = super::super::tests::fresh_database().await?;
        pool.get()
            .await
            .unwrap()
            .batch_execute(
                "INSERT INTO applications (id, uid, name, retention_ms, created_at, updated_at) \
                     VALUES ('app_1', 'shop', 'a', 5000, 0, 0); \
                 INSERT INTO endpoints (id, app_id, url, disabled, created_at, updated_at) \
                     VALUES ('ep_0', 'app_1', 'http://127.0.0.1:9/', TRUE, 0, 0), \
                            ('ep_1', 'app_1', 'http://127.0.0.1:9/', FALSE, 0, 0);",
            )
            .await
            .unwrap();
        Some(PgStore::open(&url, 8, MainKey::generate()).await.unwrap())
    }

    fn job(app_key: &str, event_id: Option<&str>) -> Job {
        Job {
            msg: Message {
                id: MsgId::generate(),
                app_id: AppId::from(""),
                event_type: "a.b".into(),
                event_id: event_id.map(str::to_owned),
                payload: Some(Arc::from(r#"{"n": 1.50}"#)),
                channels: None,
                tags: None,
                created_at: 1000,
            },
            app_key: app_key.into(),
            only_endpoint: None,
            keep_ms: None,
            default_keep_ms: 60_000,
            due_at: 1000,
            lease_until: 31_000,
            claim: Box::new(|_| true),
        }
    }

    /// Stores `jobs` as one group; their answers in order.
    async fn group(store: &PgStore, jobs: Vec<Job>) -> Vec<DbResult<GroupOutcome>> {
        let (queued, answers): (Vec<_>, Vec<_>) = jobs
            .into_iter()
            .map(|job| {
                let (reply, answer) = oneshot::channel();
                (Queued { job, reply }, answer)
            })
            .unzip();
        store_group(store, queued).await;
        let mut out = Vec::new();
        for a in answers {
            out.push(a.await.unwrap());
        }
        out
    }

    async fn count(store: &PgStore, sql: &str) -> i64 {
        let c = store.pool.get().await.unwrap();
        c.query_one(sql, &[]).await.unwrap().get(0)
    }

    #[tokio::test]
    async fn the_ingest_statement_is_planned_once_and_finds_rows_by_key() {
        let Some(store) = store().await else {
            return;
        };
        // One connection, so that every group prepares and plans on it.
        let one = PgStore::open(&store.url, 1, (*store.main_key).clone())
            .await
            .unwrap();
        for _ in 0..8 {
            let out = group(&one, vec![job("app_1", None)]).await;
            assert!(matches!(out[..], [Ok(GroupOutcome::Stored(..))]));
        }
        let mut c = one.pool.get().await.unwrap();
        let (generic, custom, plan) = super::super::tests::keyed_plan(
            &mut c,
            "WITH input AS MATERIALIZED",
            "'{app_1}', '{msg_x}', '{a.b}', '{NULL}', '{\"{}\"}', '{NULL}', '{NULL}', '{0}', \
             '{NULL}', '{0}'",
        )
        .await;
        assert_eq!((generic, custom), (8, 0), "one plan, made once and kept");
        assert!(!plan.contains("Seq Scan"), "{plan}");
        // Each application and its endpoints looked up by key.
        for lookup in [
            "Index Cond: (id = i_2.app_key)",
            "Index Cond: (uid = i_2.app_key)",
            "Index Cond: (app_id = app.app_id)",
        ] {
            assert!(plan.contains(lookup), "{lookup} in {plan}");
        }
    }

    #[tokio::test]
    async fn a_group_answers_each_message_on_its_own() {
        let Some(store) = store().await else {
            return;
        };
        let earlier = job("app_1", Some("evt-0"));
        group(&store, vec![earlier]).await;

        let mut by_uid = job("shop", None);
        by_uid.keep_ms = Some(100);
        let out = group(
            &store,
            vec![
                job("app_1", Some("evt-1")),
                job("nobody", None),
                job("app_1", Some("evt-0")),
                by_uid,
                job("app_1", Some("evt-1")),
            ],
        )
        .await;
        let kinds: Vec<&str> = out
            .iter()
            .map(|o| match o {
                Ok(GroupOutcome::Stored(..)) => "stored",
                Ok(GroupOutcome::NoApp) => "no app",
                Ok(GroupOutcome::Conflict) => "conflict",
                Err(_) => "error",
            })
            .collect();
        // The same eventId again, stored before or earlier in the group: a conflict for that
        // message alone.
        assert_eq!(
            kinds,
            ["stored", "no app", "conflict", "stored", "conflict"]
        );
        let Ok(GroupOutcome::Stored(
            Ingested::Created {
                claimed, unclaimed, ..
            },
            app,
        )) = &out[3]
        else {
            unreachable!()
        };
        assert_eq!(app.as_str(), "app_1", "found by its uid");
        // The disabled endpoint's delivery is stored as skipped, not sent.
        assert_eq!(claimed.len(), 1);
        assert_eq!((claimed[0].endpoint_id.as_str(), *unclaimed), ("ep_1", 0));
        assert_eq!(count(&store, "SELECT count(*) FROM messages").await, 3);
        assert_eq!(count(&store, "SELECT count(*) FROM deliveries").await, 6);
        assert_eq!(
            count(
                &store,
                "SELECT count(*) FROM deliveries \
                 WHERE endpoint_id = 'ep_1' AND status = 1 AND lease_owner IS NOT NULL"
            )
            .await,
            3
        );
        // Payloads kept as the request says, else as the application says; kept byte-exact.
        assert_eq!(
            count(&store, "SELECT sum(expires_at)::BIGINT FROM messages").await,
            6000 + 6000 + 1100
        );
        assert_eq!(
            count(
                &store,
                r#"SELECT count(*) FROM messages WHERE payload = '{"n": 1.50}'"#
            )
            .await,
            3
        );
    }

    #[tokio::test]
    async fn when_a_group_fails_its_messages_are_stored_one_by_one() {
        let Some(store) = store().await else {
            return;
        };
        let first = job("app_1", None);
        let mut same_id = job("app_1", None);
        same_id.msg.id = first.msg.id.clone();
        let out = group(&store, vec![first, job("app_1", None), same_id]).await;
        assert!(matches!(out[0], Ok(GroupOutcome::Stored(..))));
        assert!(matches!(out[1], Ok(GroupOutcome::Stored(..))));
        assert!(
            matches!(out[2], Err(DbError::Postgres(_))),
            "the message whose id is taken fails alone"
        );
        assert_eq!(count(&store, "SELECT count(*) FROM messages").await, 2);
        assert_eq!(count(&store, "SELECT count(*) FROM deliveries").await, 4);
    }

    #[tokio::test]
    async fn when_a_group_s_commit_fails_every_message_gets_the_error_and_none_is_stored() {
        let Some(store) = store().await else {
            return;
        };
        // A check PostgreSQL makes only at COMMIT, failing for messages of type `x.fail`.
        store
            .pool
            .get()
            .await
            .unwrap()
            .batch_execute(
                "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
                     IF NEW.event_type = 'x.fail' THEN RAISE EXCEPTION 'refused at commit'; \
                     END IF; RETURN NULL; END $$; \
                 CREATE CONSTRAINT TRIGGER refuse AFTER INSERT ON messages \
                     DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION refuse();",
            )
            .await
            .unwrap();
        let mut refused = job("app_1", None);
        refused.msg.event_type = "x.fail".into();
        let out = group(
            &store,
            vec![job("app_1", None), refused, job("app_1", None)],
        )
        .await;
        for o in &out {
            assert!(
                matches!(o, Err(DbError::Postgres(e)) if e.contains("refused at commit")),
                "every message is answered with the commit's error"
            );
        }
        assert_eq!(count(&store, "SELECT count(*) FROM messages").await, 0);
        assert_eq!(count(&store, "SELECT count(*) FROM deliveries").await, 0);
        // The connections are fine afterwards.
        let out = group(&store, vec![job("app_1", None)]).await;
        assert!(matches!(out[..], [Ok(GroupOutcome::Stored(..))]));
    }

    #[tokio::test]
    async fn messages_queued_while_the_group_slot_is_busy_share_one_transaction() {
        let Some(store) = store().await else {
            return;
        };
        let grouper = Grouper::start(
            &tokio::runtime::Handle::current(),
            Arc::downgrade(&store.0),
            1,
        );
        // This test's runtime has one thread: all five are queued before the grouper runs.
        let answers: Vec<_> = (0..5).map(|_| grouper.send(job("app_1", None))).collect();
        for a in answers {
            assert!(matches!(a.await.unwrap(), Ok(GroupOutcome::Stored(..))));
        }
        assert_eq!(count(&store, "SELECT count(*) FROM messages").await, 5);
        assert_eq!(
            count(&store, "SELECT count(DISTINCT xmin::TEXT) FROM messages").await,
            1,
            "one transaction"
        );
    }

    #[tokio::test]
    async fn a_message_whose_caller_has_gone_before_its_group_starts_is_not_stored() {
        let Some(store) = store().await else {
            return;
        };
        let (mut queued, mut answers) = (Vec::new(), Vec::new());
        for _ in 0..3 {
            let (reply, answer) = oneshot::channel();
            queued.push(Queued {
                job: job("app_1", None),
                reply,
            });
            answers.push(answer);
        }
        let gone = answers.remove(1);
        drop(gone);
        store_group(&store, queued).await;
        for a in answers {
            assert!(matches!(a.await.unwrap(), Ok(GroupOutcome::Stored(..))));
        }
        assert_eq!(count(&store, "SELECT count(*) FROM messages").await, 2);
    }
}
