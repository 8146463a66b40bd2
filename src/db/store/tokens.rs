//! API tokens.

use super::{Store, Token};
use crate::db::postgres::{self, locks};
use crate::db::sqlite::tokens;
use crate::db::DbResult;
use crate::domain::ids;

/// How often a token in use has its last use noted.
const TOUCH_EVERY_MS: i64 = 60_000;

impl Store {
    /// The id of the active token with this hash, its last use noted (at most once a
    /// minute: a token's "last used" is that precise, and requests do not queue on the write).
    pub async fn token_by_hash(&self, hash: &str, now: i64) -> DbResult<Option<String>> {
        let h = hash.to_owned();
        let since = now - TOUCH_EVERY_MS;
        let stale = |last: Option<i64>| last.is_none_or(|at| at < since);
        match self {
            Store::Postgres(pg) => {
                let found = pg
                    .read(async |c| postgres::tokens::find_active(c, hash).await)
                    .await?;
                if let Some((id, last)) = &found {
                    if stale(*last) {
                        let _ = pg
                            .read(async |c| postgres::tokens::touch(c, id, now, since).await)
                            .await;
                    }
                }
                Ok(found.map(|(id, _)| id))
            }
            Store::Sqlite(db) => {
                let found = db.read(move |c| tokens::find_active(c, &h)).await?;
                if let Some((id, last)) = &found {
                    if stale(*last) {
                        let touched = id.clone();
                        // Noting the use is best effort: it must not refuse a valid token.
                        let _ = db
                            .write(move |c| tokens::touch(c, &touched, now, since))
                            .await;
                    }
                }
                Ok(found.map(|(id, _)| id))
            }
        }
    }

    pub async fn tokens(&self) -> DbResult<Vec<Token>> {
        match self {
            Store::Sqlite(db) => db.read(tokens::list).await,
            Store::Postgres(pg) => pg.read(async |c| postgres::tokens::list(c).await).await,
        }
    }

    /// Stores a new token (by its hash); returns its id.
    pub async fn create_token(&self, name: &str, hash: &str, now: i64) -> DbResult<String> {
        let (id, name, hash) = (ids::new_id(ids::TOKEN), name.to_owned(), hash.to_owned());
        match self {
            Store::Postgres(pg) => {
                pg.read(async |c| postgres::tokens::insert(c, &id, &name, &hash, now).await)
                    .await?;
                Ok(id)
            }
            Store::Sqlite(db) => {
                db.write(move |c| tokens::insert(c, &id, &name, &hash, now).map(|()| id))
                    .await
            }
        }
    }

    /// A new token named `name` when no token is active (a first start); `None` otherwise.
    pub async fn create_first_token(
        &self,
        name: &str,
        hash: &str,
        now: i64,
    ) -> DbResult<Option<String>> {
        let (id, name, hash) = (ids::new_id(ids::TOKEN), name.to_owned(), hash.to_owned());
        match self {
            Store::Postgres(pg) => {
                // Nodes starting together: one creates it, the others then see it.
                pg.write(async |tx| {
                    locks::wait(tx, locks::Chore::Bootstrap).await?;
                    if postgres::tokens::count_active(tx).await? > 0 {
                        return Ok(None);
                    }
                    postgres::tokens::insert(tx, &id, &name, &hash, now).await?;
                    Ok(Some(id))
                })
                .await
            }
            Store::Sqlite(db) => {
                db.write(move |c| {
                    if tokens::count_active(c)? > 0 {
                        return Ok(None);
                    }
                    tokens::insert(c, &id, &name, &hash, now).map(|()| Some(id))
                })
                .await
            }
        }
    }

    /// Revokes the active tokens with this id or name; how many.
    /// Revokes the token `id` if it is active; how many (0 or 1).
    pub async fn revoke_token(&self, id: &str, now: i64) -> DbResult<usize> {
        let key = id.to_owned();
        match self {
            Store::Sqlite(db) => db.write(move |c| tokens::revoke(c, &key, now)).await,
            Store::Postgres(pg) => {
                let n = pg
                    .read(async |c| postgres::tokens::revoke(c, id, now).await)
                    .await?;
                if n > 0 {
                    pg.tell_peers(postgres::Signal::Tokens);
                }
                Ok(n)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000_000;

    async fn last_used(store: &Store) -> Option<i64> {
        store.tokens().await.unwrap()[0].last_used_at
    }

    /// A token's use is noted at most once a minute, whichever store finds it.
    async fn noted_once_a_minute(stores: &[Store]) {
        let a = &stores[0];
        let b = stores.last().unwrap();
        let id = a.create_token("t", "h", NOW).await.unwrap();
        assert_eq!(last_used(a).await, None);
        assert_eq!(a.token_by_hash("h", NOW).await.unwrap(), Some(id.clone()));
        assert_eq!(last_used(a).await, Some(NOW));
        assert_eq!(
            b.token_by_hash("h", NOW + 59_000).await.unwrap(),
            Some(id.clone())
        );
        assert_eq!(last_used(a).await, Some(NOW), "noted again within a minute");
        b.token_by_hash("h", NOW + 61_000).await.unwrap();
        assert_eq!(last_used(a).await, Some(NOW + 61_000));
    }

    #[tokio::test]
    async fn a_token_s_use_is_noted_at_most_once_a_minute_on_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        noted_once_a_minute(&[Store::sqlite_for_tests(dir.path())]).await;
    }

    #[tokio::test]
    async fn a_token_s_use_is_noted_at_most_once_a_minute_by_all_nodes() {
        let Some((_, url)) = crate::db::pg_tests::fresh_database().await else {
            return;
        };
        noted_once_a_minute(&crate::db::pg_tests::nodes(&url, 2).await).await;
    }
}
