//! API tokens.

use super::{Store, Token};
use crate::db::postgres::{self, locks};
use crate::db::sqlite::tokens;
use crate::db::DbResult;
use crate::domain::ids;

impl Store {
    /// The id of the active token with this hash, its last use noted.
    pub async fn token_by_hash(&self, hash: &str, now: i64) -> DbResult<Option<String>> {
        let h = hash.to_owned();
        match self {
            Store::Postgres(pg) => {
                let id = pg
                    .read(async |c| postgres::tokens::find_active(c, hash).await)
                    .await?;
                if let Some(id) = &id {
                    let _ = pg
                        .read(async |c| postgres::tokens::touch(c, id, now).await)
                        .await;
                }
                Ok(id)
            }
            Store::Sqlite(db) => {
                let id = db.read(move |c| tokens::find_active(c, &h)).await?;
                if let Some(id) = &id {
                    let touched = id.clone();
                    // Noting the use is best effort: it must not refuse a valid token.
                    let _ = db.write(move |c| tokens::touch(c, &touched, now)).await;
                }
                Ok(id)
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
    pub async fn revoke_token(&self, id_or_name: &str, now: i64) -> DbResult<usize> {
        let key = id_or_name.to_owned();
        match self {
            Store::Sqlite(db) => db.write(move |c| tokens::revoke(c, &key, now)).await,
            Store::Postgres(pg) => {
                let n = pg
                    .read(async |c| postgres::tokens::revoke(c, id_or_name, now).await)
                    .await?;
                if n > 0 {
                    pg.tell_peers(postgres::Signal::Tokens);
                }
                Ok(n)
            }
        }
    }
}
