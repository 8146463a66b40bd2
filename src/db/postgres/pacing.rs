//! Pacing shared by the nodes: an endpoint's `throttleRate` holds for the cluster, reserved
//! send by send in the database (GCRA: one theoretical arrival time per endpoint), and the
//! periodic chores go to one node per round.

use super::super::DbResult;
use deadpool_postgres::GenericClient;

/// Reserves a send to `endpoint_id` at `rate` messages per second; returns how long (µs) to
/// wait before it goes. Up to one second of sends goes at once (a burst of `rate`), then one
/// every `1/rate` s, whichever node sends. Times are the database's clock (`now_us: None`,
/// what nodes use, whose own clocks may differ) or `now_us` (tests).
pub async fn reserve_send(
    c: &impl GenericClient,
    endpoint_id: &str,
    rate: u32,
    now_us: Option<i64>,
) -> DbResult<i64> {
    let interval = 1_000_000 / i64::from(rate.max(1));
    let stmt = c
        .prepare_cached(
            "WITH now AS (SELECT COALESCE($3::BIGINT, \
                 (EXTRACT(EPOCH FROM clock_timestamp()) * 1000000)::BIGINT) AS us) \
             INSERT INTO endpoint_pacing (endpoint_id, tat_us) \
                 SELECT $1, now.us + $2::BIGINT FROM now \
             ON CONFLICT (endpoint_id) DO UPDATE \
                 SET tat_us = GREATEST(endpoint_pacing.tat_us, EXCLUDED.tat_us - $2::BIGINT) \
                     + $2::BIGINT \
             RETURNING tat_us - (SELECT us FROM now)",
        )
        .await?;
    let ahead: i64 = c
        .query_one(&stmt, &[&endpoint_id, &interval, &now_us])
        .await?
        .get(0);
    // The burst: a second's worth of sends ahead of the arrival time may go now.
    Ok((ahead - 1_000_000).max(0))
}

/// Takes this round of chore `name` when no node took one within the last `every_ms`
/// (as of `now`, else the database's clock): `true` for the one node that does it.
pub async fn take_turn(
    c: &impl GenericClient,
    name: &str,
    now: Option<i64>,
    every_ms: i64,
) -> DbResult<bool> {
    let stmt = c
        .prepare_cached(
            "WITH now AS (SELECT COALESCE($2::BIGINT, \
                 (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT) AS ms) \
             INSERT INTO chores (name, last_run) SELECT $1, now.ms FROM now \
             ON CONFLICT (name) DO UPDATE SET last_run = EXCLUDED.last_run \
                 WHERE chores.last_run <= EXCLUDED.last_run - $3::BIGINT \
             RETURNING name",
        )
        .await?;
    Ok(c.query_opt(&stmt, &[&name, &now, &every_ms])
        .await?
        .is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn nodes_reserving_sends_to_one_endpoint_share_its_rate() {
        let Some((pool, _)) = super::super::tests::fresh_database().await else {
            return;
        };
        let c = pool.get().await.unwrap();
        c.batch_execute(
            "INSERT INTO applications (id, name, created_at, updated_at) VALUES ('app_1', 'a', 1, 1);
             INSERT INTO endpoints (id, app_id, url, created_at, updated_at)
                 VALUES ('ep_1', 'app_1', 'http://127.0.0.1:9/', 1, 1);",
        )
        .await
        .unwrap();
        // 60 sends reserved at once (by any nodes), at 10/s: the first 10 go now (the burst),
        // then one every 100 ms, whichever node asked.
        let now = 5_000_000_000;
        let mut waits = Vec::new();
        for _ in 0..60 {
            waits.push(reserve_send(&c, "ep_1", 10, Some(now)).await.unwrap());
        }
        waits.sort_unstable();
        assert_eq!(waits.iter().filter(|w| **w == 0).count(), 10);
        for (i, w) in waits.iter().enumerate().skip(10) {
            assert_eq!(*w, (i as i64 - 9) * 100_000, "send {i}");
        }
        // Later, the spacing starts again from then.
        let later = now + 60_000_000;
        assert_eq!(reserve_send(&c, "ep_1", 10, Some(later)).await.unwrap(), 0);
        // On the database's clock (what nodes use), a fresh endpoint's first send waits not.
        c.batch_execute(
            "INSERT INTO endpoints (id, app_id, url, created_at, updated_at)
                 VALUES ('ep_2', 'app_1', 'http://127.0.0.1:9/', 1, 1);",
        )
        .await
        .unwrap();
        assert_eq!(reserve_send(&c, "ep_2", 10, None).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn one_node_per_round_takes_a_chore() {
        let Some((pool, _)) = super::super::tests::fresh_database().await else {
            return;
        };
        let c = pool.get().await.unwrap();
        assert!(take_turn(&c, "sweep", Some(1_000), 300).await.unwrap());
        assert!(!take_turn(&c, "sweep", Some(1_100), 300).await.unwrap());
        assert!(!take_turn(&c, "sweep", Some(1_299), 300).await.unwrap());
        assert!(take_turn(&c, "sweep", Some(1_300), 300).await.unwrap());
        assert!(take_turn(&c, "other", Some(1_300), 300).await.unwrap());
    }
}
