//! One-off commands (`hookbox token …`, `hookbox admin …`) on the database file, which may
//! run while a server uses it: SQLite's locking and the busy timeout serialize the writers.

use super::{admin, open_direct, tokens, DbResult};
use crate::db::Token;
use crate::domain::ids;
use std::path::Path;

/// Stores a new API token (by its hash); returns its id.
pub fn create_token(path: &Path, name: &str, hash: &str, now: i64) -> DbResult<String> {
    let conn = open_direct(path)?;
    let id = ids::new_id(ids::TOKEN);
    tokens::insert(&conn, &id, name, hash, now)?;
    Ok(id)
}

pub fn list_tokens(path: &Path) -> DbResult<Vec<Token>> {
    tokens::list(&open_direct(path)?)
}

/// Revokes the active tokens with this id or name; how many.
pub fn revoke_token(path: &Path, id: &str, now: i64) -> DbResult<usize> {
    tokens::revoke(&open_direct(path)?, id, now)
}

/// Creates a console admin; a taken name is a conflict.
pub fn create_admin(path: &Path, username: &str, hash: &str, now: i64) -> DbResult<String> {
    admin::insert_user(&open_direct(path)?, username, hash, now)
}

/// Sets an admin's password and ends their sessions; `false` when there is no such admin.
pub fn set_admin_password(path: &Path, username: &str, hash: &str, now: i64) -> DbResult<bool> {
    admin::set_password(&open_direct(path)?, username, hash, now)
}
