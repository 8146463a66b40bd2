//! Work done once per cluster at start (the bootstrap token, the setup link, the operator
//! application): nodes take the chore's advisory lock for the transaction that does it, one
//! after the other, each seeing what the previous one committed.

use super::super::DbResult;
use deadpool_postgres::GenericClient;

/// A once-per-cluster chore, each with its own advisory lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chore {
    /// The bootstrap token, the setup link and hookbox's own application, at start.
    Bootstrap,
}

impl Chore {
    const fn key(self) -> i64 {
        // "hookbox" in the high bytes, the chore in the low ones.
        let base = 0x686f_6f6b_626f_7800;
        match self {
            Chore::Bootstrap => base | 0x11,
        }
    }
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
    async fn a_chore_is_held_for_its_transaction_and_free_once_it_commits() {
        let Some((pool, _)) = super::super::tests::fresh_database().await else {
            return;
        };
        let (mut a, b) = (pool.get().await.unwrap(), pool.get().await.unwrap());
        let free = async |c: &deadpool_postgres::Client| -> bool {
            c.query_one(
                "SELECT pg_try_advisory_lock($1), pg_advisory_unlock_all()",
                &[&Chore::Bootstrap.key()],
            )
            .await
            .unwrap()
            .get(0)
        };
        let ta = a.transaction().await.unwrap();
        wait(&ta, Chore::Bootstrap).await.unwrap();
        assert!(!free(&b).await, "held while a's transaction runs");
        ta.commit().await.unwrap();
        assert!(free(&b).await, "released at commit");
    }
}
