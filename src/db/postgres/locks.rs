//! Work done once per cluster (the retention purge, the auto-disable sweep, the bootstrap
//! token and setup link, the operator application): whoever takes the chore's advisory lock
//! for its transaction does it; the other nodes skip it that round.

use super::super::DbResult;
use deadpool_postgres::GenericClient;

/// A once-per-cluster chore, each with its own advisory lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chore {
    /// Retention purges and the auto-disable sweep.
    Housekeeping,
    /// The bootstrap token, the setup link and hookbox's own application, at start.
    Bootstrap,
}

impl Chore {
    const fn key(self) -> i64 {
        // "hookbox" in the high bytes, the chore in the low ones.
        let base = 0x686f_6f6b_626f_7800;
        match self {
            Chore::Housekeeping => base | 0x10,
            Chore::Bootstrap => base | 0x11,
        }
    }
}

/// Takes `chore` for the caller's transaction, without waiting: `false` when another node
/// holds it (that node does the work).
pub async fn take(c: &impl GenericClient, chore: Chore) -> DbResult<bool> {
    Ok(
        c.query_one("SELECT pg_try_advisory_xact_lock($1)", &[&chore.key()])
            .await?
            .get(0),
    )
}

/// Takes `chore` for the caller's transaction, waiting while another node holds it (so
/// that node's work is visible here once it commits).
pub async fn wait(c: &impl GenericClient, chore: Chore) -> DbResult<()> {
    c.execute("SELECT pg_advisory_xact_lock($1)", &[&chore.key()])
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_node_at_a_time_does_a_chore_and_the_next_round_is_open_again() {
        let Some((pool, _)) = super::super::tests::fresh_database().await else {
            return;
        };
        let (mut a, mut b) = (pool.get().await.unwrap(), pool.get().await.unwrap());
        let ta = a.transaction().await.unwrap();
        let tb = b.transaction().await.unwrap();
        assert!(take(&ta, Chore::Housekeeping).await.unwrap());
        assert!(
            !take(&tb, Chore::Housekeeping).await.unwrap(),
            "b skips this round"
        );
        assert!(
            take(&tb, Chore::Bootstrap).await.unwrap(),
            "another chore is free"
        );
        ta.commit().await.unwrap();
        tb.rollback().await.unwrap();
        let tb = b.transaction().await.unwrap();
        assert!(
            take(&tb, Chore::Housekeeping).await.unwrap(),
            "released at commit"
        );
        tb.commit().await.unwrap();
    }
}
