//! Console login checks, counted in the database so that the limits hold for the whole
//! cluster (and across restarts). The rules are `service::logins`.

use super::Store;
use crate::db::postgres;
use crate::db::sqlite::logins;
use crate::db::DbResult;

impl Store {
    /// Forgets login checks made before `since`; then, when each scope has had fewer checks
    /// than its limit since, counts one more in each. Whether it did.
    pub async fn count_login_check(
        &self,
        scopes: Vec<(String, usize)>,
        since: i64,
        now: i64,
    ) -> DbResult<bool> {
        match self {
            Store::Sqlite(db) => {
                db.write(move |c| logins::count_in(c, &scopes, since, now))
                    .await
            }
            Store::Postgres(pg) => {
                pg.write(async |tx| postgres::logins::count_in(tx, &scopes, since, now).await)
                    .await
            }
        }
    }

    /// Notes a login check in `scope` at `now`.
    pub async fn note_login_check(&self, scope: String, now: i64) -> DbResult<()> {
        match self {
            Store::Sqlite(db) => db.write(move |c| logins::note(c, &scope, now)).await,
            Store::Postgres(pg) => {
                pg.read(async |c| postgres::logins::note(c, &scope, now).await)
                    .await
            }
        }
    }

    /// Login checks in `scope` since `since`.
    pub async fn login_checks(&self, scope: String, since: i64) -> DbResult<usize> {
        match self {
            Store::Sqlite(db) => db.read(move |c| logins::count(c, &scope, since)).await,
            Store::Postgres(pg) => {
                pg.read(async |c| postgres::logins::count(c, &scope, since).await)
                    .await
            }
        }
    }

    /// Forgets every login check in `scopes`.
    pub async fn forget_login_checks(&self, scopes: Vec<String>) -> DbResult<()> {
        match self {
            Store::Sqlite(db) => db.write(move |c| logins::forget(c, &scopes)).await,
            Store::Postgres(pg) => {
                pg.read(async |c| postgres::logins::forget(c, &scopes).await)
                    .await
            }
        }
    }

    /// Takes the next login turn of `username`, `gap_ms` after the last one taken, unless it
    /// is more than `max_wait_ms` away; how many ms until it comes (`None`: no turn).
    pub async fn take_login_turn(
        &self,
        username: String,
        now: i64,
        gap_ms: i64,
        max_wait_ms: i64,
    ) -> DbResult<Option<i64>> {
        match self {
            Store::Sqlite(db) => {
                db.write(move |c| logins::take_turn(c, &username, now, gap_ms, max_wait_ms))
                    .await
            }
            Store::Postgres(pg) => {
                pg.read(async |c| {
                    postgres::logins::take_turn(c, &username, now, gap_ms, max_wait_ms).await
                })
                .await
            }
        }
    }
}
