//! API tokens: shown once when created, stored only as a hash, revocable.

use crate::db::{DbResult, Store, Token};
use crate::domain::secrets;

/// What a token's name must be, as the console and `hookbox token create` say.
const NAME_RULE: &str = "name the token (1 to 128 characters), e.g. after what uses it";

/// Whether `name` may name a token: 1 to 128 characters, not only blanks, nor the NUL
/// character (which no PostgreSQL text can hold). `Err`: what is wrong, to show the user.
pub fn check_name(name: &str) -> Result<(), &'static str> {
    if name.contains('\0') {
        Err("a token's name must not contain the NUL character (\\u0000)")
    } else if name.chars().any(char::is_control) {
        // `token list` shows one token a line, its fields apart by tabs.
        Err("a token's name must not contain tabs, line breaks or other control characters")
    } else if name.trim().is_empty() || name.chars().count() > 128 {
        Err(NAME_RULE)
    } else {
        Ok(())
    }
}

/// A new API token named `name`: returns the token itself (never stored).
pub async fn create(store: &Store, name: &str, now: i64) -> DbResult<String> {
    let token = secrets::generate_token();
    store
        .create_token(name, &secrets::hash_secret(&token), now)
        .await?;
    Ok(token)
}

/// Revokes the token `id` if it is active; how many (0 or 1).
pub async fn revoke(store: &Store, id: &str, now: i64) -> DbResult<usize> {
    store.revoke_token(id, now).await
}

/// The active token `id_or_name` names, out of `tokens`: the one with that id, else the one
/// active token with that name. A name that several active tokens share picks none (revoking
/// all of them could cut off what still uses one): the answer says their ids.
pub fn pick<'a>(tokens: &'a [Token], id_or_name: &str) -> Result<&'a Token, String> {
    // An id names its token alone, revoked or not (a name may look like an id).
    if let Some(t) = tokens.iter().find(|t| t.id == id_or_name) {
        return match t.revoked_at {
            None => Ok(t),
            Some(_) => Err(format!("token {id_or_name} is already revoked")),
        };
    }
    let active = || tokens.iter().filter(|t| t.revoked_at.is_none());
    let named: Vec<&Token> = active().filter(|t| t.name == id_or_name).collect();
    match named.as_slice() {
        [] => Err(format!("no active token named or with id `{id_or_name}`")),
        [one] => Ok(one),
        several => Err(format!(
            "{} active tokens are named `{id_or_name}`: revoke one by id ({})",
            several.len(),
            several
                .iter()
                .map(|t| t.id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// The id of the active token with this hash, its last use noted.
pub async fn check(store: &Store, hash: &str, now: i64) -> DbResult<Option<String>> {
    store.token_by_hash(hash, now).await
}
