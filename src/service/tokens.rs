//! API tokens: shown once when created, stored only as a hash, revocable.

use crate::db::{DbResult, Store};
use crate::domain::secrets;

/// What a token's name must be, as the console and `hookbox token create` say.
pub const NAME_RULE: &str = "name the token (1 to 128 characters), e.g. after what uses it";

/// Whether `name` may name a token: 1 to 128 characters, not only blanks (nor NUL).
pub fn name_ok(name: &str) -> bool {
    !name.trim().is_empty() && name.chars().count() <= 128 && !name.contains('\0')
}

/// A new API token named `name`: returns the token itself (never stored).
pub async fn create(store: &Store, name: &str, now: i64) -> DbResult<String> {
    let token = secrets::generate_token();
    store
        .create_token(name, &secrets::hash_secret(&token), now)
        .await?;
    Ok(token)
}

/// Revokes the active tokens with this id or name; how many.
pub async fn revoke(store: &Store, id_or_name: &str, now: i64) -> DbResult<usize> {
    store.revoke_token(id_or_name, now).await
}

/// The id of the active token with this hash, its last use noted.
pub async fn check(store: &Store, hash: &str, now: i64) -> DbResult<Option<String>> {
    store.token_by_hash(hash, now).await
}
