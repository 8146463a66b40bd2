//! Ingest on PostgreSQL: a message, its deliveries and its idempotency record in the caller's
//! transaction, safe when several nodes take the same request at once.

use super::super::outbox::IngestRequest;
use super::super::{DbError, DbResult, Ingested};
use crate::domain::model::DeliveryStatus;
use tokio_postgres::error::SqlState;
use tokio_postgres::Transaction;

/// Stores a message and its deliveries (the outbox) and the idempotency record in `tx`.
/// Deliveries that `claim(endpoint_id)` takes are leased to node `owner`.
///
/// The idempotency record is inserted first: a second node with the same key waits on it
/// (PostgreSQL's unique index) and, once the first commits, answers with the stored response
/// instead of storing the message again. The same `eventId` twice is a conflict (409).
pub async fn ingest(
    tx: &Transaction<'_>,
    req: &IngestRequest<'_>,
    owner: &str,
    claim: &mut (dyn FnMut(&str) -> bool + Send),
) -> DbResult<Ingested> {
    let m = req.msg;
    if let Some(key) = req.idempotency {
        let status = i32::from(req.response.0);
        let inserted = tx
            .execute(
                "INSERT INTO idempotency_keys (token_id, path, key, status_code, body, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                &[&key.token_id, &key.path, &key.key, &status, &req.response.1, &m.created_at],
            )
            .await?;
        if inserted == 0 {
            let row = tx
                .query_one(
                    "SELECT status_code, body FROM idempotency_keys \
                     WHERE token_id = $1 AND path = $2 AND key = $3",
                    &[&key.token_id, &key.path, &key.key],
                )
                .await?;
            let status: i32 = row.get(0);
            return Ok(Ingested::Replayed {
                status: u16::try_from(status).unwrap_or(500),
                body: row.get(1),
            });
        }
    }
    let to_json = |v: &Option<Vec<String>>| v.as_ref().map(super::super::to_json);
    tx.execute(
        "INSERT INTO messages (id, app_id, event_type, event_id, payload, channels, tags, \
         created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        &[
            &m.id.as_str(),
            &m.app_id.as_str(),
            &m.event_type,
            &m.event_id,
            &m.payload.as_deref(),
            &to_json(&m.channels),
            &to_json(&m.tags),
            &m.created_at,
            &req.expires_at,
        ],
    )
    .await
    .map_err(|e| {
        if e.code() == Some(&SqlState::UNIQUE_VIOLATION) {
            DbError::Conflict(
                "a message with this eventId already exists in this application".into(),
            )
        } else {
            e.into()
        }
    })?;

    let endpoints = tx
        .query(
            "SELECT id, filter_types, channels, disabled FROM endpoints WHERE app_id = $1",
            &[&m.app_id.as_str()],
        )
        .await?;
    let mut claimed = Vec::new();
    let mut unclaimed = 0;
    for row in endpoints {
        let endpoint_id: String = row.get(0);
        if !req.wants(&endpoint_id, row.get(1), row.get(2)) {
            continue;
        }
        let disabled: bool = row.get(3);
        let (status, take) = if disabled {
            (SKIPPED, false)
        } else {
            (PENDING, claim(&endpoint_id))
        };
        let (lease, lease_owner) = if take {
            (Some(req.lease_until), Some(owner))
        } else {
            (None, None)
        };
        let id: i64 = tx
            .query_one(
                "INSERT INTO deliveries (msg_id, endpoint_id, status, next_attempt_at, lease_until, \
                 lease_owner, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7) \
                 RETURNING id",
                &[
                    &m.id.as_str(),
                    &endpoint_id,
                    &status,
                    &req.due_at,
                    &lease,
                    &lease_owner,
                    &m.created_at,
                ],
            )
            .await?
            .get(0);
        if take {
            claimed.push(req.claimed(id, endpoint_id));
        } else if !disabled {
            unclaimed += 1;
        }
    }
    Ok(Ingested::Created { claimed, unclaimed })
}

// The stored codes of the delivery states ingest writes.
const PENDING: i16 = DeliveryStatus::Pending.code() as i16;
const SKIPPED: i16 = DeliveryStatus::Skipped.code() as i16;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::IdempotencyKey;
    use crate::domain::model::{AppId, Message, MsgId};
    use std::sync::Arc;

    /// A fresh, migrated database on the test cluster with application `app_1` and `eps`
    /// endpoints (`ep_0`… ; `ep_0` disabled when `first_disabled`); `None` without a cluster.
    async fn database(eps: usize, first_disabled: bool) -> Option<deadpool_postgres::Pool> {
        let (pool, _) = super::super::tests::fresh_database().await?;
        let c = pool.get().await.unwrap();
        c.batch_execute(
            "INSERT INTO applications (id, name, created_at, updated_at) VALUES ('app_1', 'a', 0, 0)",
        )
        .await
        .unwrap();
        for i in 0..eps {
            let disabled = first_disabled && i == 0;
            c.execute(
                "INSERT INTO endpoints (id, app_id, url, disabled, created_at, updated_at) \
                 VALUES ($1, 'app_1', 'http://127.0.0.1:9/', $2, 0, 0)",
                &[&format!("ep_{i}"), &disabled],
            )
            .await
            .unwrap();
        }
        Some(pool)
    }

    fn message(event_id: Option<&str>) -> Message {
        Message {
            id: MsgId::generate(),
            app_id: AppId::from("app_1"),
            event_type: "a.b".into(),
            event_id: event_id.map(str::to_owned),
            payload: Some(Arc::from(r#"{"n": 1.50, "s": "é"}"#)),
            channels: None,
            tags: None,
            created_at: 1000,
        }
    }

    async fn ingest_one(
        pool: &deadpool_postgres::Pool,
        msg: &Message,
        key: Option<&IdempotencyKey>,
        take: bool,
    ) -> DbResult<Ingested> {
        let mut c = pool.get().await.unwrap();
        let tx = c.transaction().await?;
        let body = format!("{{\"id\":\"{}\"}}", msg.id);
        let req = IngestRequest {
            msg,
            only_endpoint: None,
            idempotency: key,
            response: (202, &body),
            lease_until: 31_000,
            due_at: 1000,
            expires_at: 99_000,
        };
        let out = ingest(&tx, &req, "node_a", &mut |_| take).await?;
        tx.commit().await?;
        Ok(out)
    }

    #[tokio::test]
    async fn the_same_idempotency_key_sent_to_several_nodes_at_once_stores_one_message() {
        let Some(pool) = database(1, false).await else {
            return;
        };
        let key = IdempotencyKey {
            token_id: "tok_1".into(),
            path: "/api/v1/app/app_1/msg".into(),
            key: "k-1".into(),
        };
        let runs: Vec<_> = (0..4)
            .map(|_| {
                let (pool, key) = (pool.clone(), key.clone());
                tokio::spawn(
                    async move { ingest_one(&pool, &message(None), Some(&key), false).await },
                )
            })
            .collect();
        let mut created = Vec::new();
        let mut replayed = Vec::new();
        for run in runs {
            match run.await.unwrap().unwrap() {
                Ingested::Created { .. } => created.push(()),
                Ingested::Replayed { status, body } => replayed.push((status, body)),
            }
        }
        assert_eq!((created.len(), replayed.len()), (1, 3));
        let c = pool.get().await.unwrap();
        let stored: String = c
            .query_one("SELECT id FROM messages", &[])
            .await
            .unwrap()
            .get(0);
        for (status, body) in replayed {
            assert_eq!(status, 202);
            assert_eq!(
                body,
                format!("{{\"id\":\"{stored}\"}}"),
                "the first answer, replayed"
            );
        }
    }

    #[tokio::test]
    async fn the_same_event_id_twice_is_a_conflict_and_payloads_stay_byte_exact() {
        let Some(pool) = database(1, false).await else {
            return;
        };
        ingest_one(&pool, &message(Some("evt-1")), None, false)
            .await
            .unwrap();
        let again = ingest_one(&pool, &message(Some("evt-1")), None, false).await;
        assert!(matches!(again, Err(DbError::Conflict(_))));
        let c = pool.get().await.unwrap();
        let payload: String = c
            .query_one("SELECT payload FROM messages", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(payload, r#"{"n": 1.50, "s": "é"}"#);
    }

    #[tokio::test]
    async fn claimed_deliveries_are_leased_to_the_node_and_disabled_endpoints_skipped() {
        let Some(pool) = database(3, true).await else {
            return;
        };
        let Ingested::Created { claimed, unclaimed } =
            ingest_one(&pool, &message(None), None, true).await.unwrap()
        else {
            panic!("not created")
        };
        assert_eq!((claimed.len(), unclaimed), (2, 0));
        let c = pool.get().await.unwrap();
        let rows: Vec<(String, i16, Option<String>)> = c
            .query(
                "SELECT endpoint_id, status, lease_owner FROM deliveries ORDER BY endpoint_id",
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
        assert_eq!(
            rows,
            [
                ("ep_0".into(), SKIPPED, None),
                ("ep_1".into(), PENDING, Some("node_a".into())),
                ("ep_2".into(), PENDING, Some("node_a".into())),
            ]
        );
    }
}
