//! Bearer-token authentication against hashed API tokens.

use super::error::ApiError;
use crate::db::{tokens, Db};
use crate::domain::time::now_ms;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a token check is trusted before the database is asked again (so a token revoked
/// from another process stops working within this time).
const CACHE_TTL: Duration = Duration::from_secs(5);
const CACHE_MAX: usize = 10_000;

pub use crate::domain::secrets::{generate_token, hash_secret as hash_token};

/// Who made a request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub token_id: String,
}

#[derive(Default)]
pub struct TokenCache {
    map: Mutex<HashMap<String, (Option<String>, Instant)>>,
}

impl TokenCache {
    /// Checks an `Authorization` header value.
    pub async fn authenticate(&self, db: &Db, header: Option<&str>) -> Result<Caller, ApiError> {
        let header = header.ok_or(ApiError::Unauthorized("missing Authorization header"))?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .ok_or(ApiError::Unauthorized(
                "Authorization must be `Bearer <token>`",
            ))?
            .trim();
        let hash = hash_token(token);
        let cached = self
            .lock()
            .get(&hash)
            .filter(|(_, at)| at.elapsed() < CACHE_TTL)
            .map(|(id, _)| id.clone());
        let id = match cached {
            Some(id) => id,
            None => {
                let h = hash.clone();
                let id = db.read(move |c| tokens::find_active(c, &h)).await?;
                if let Some(id) = &id {
                    let touched = id.clone();
                    let _ = db
                        .write(move |c| tokens::touch(c, &touched, now_ms()))
                        .await;
                }
                let mut map = self.lock();
                if map.len() >= CACHE_MAX {
                    map.clear();
                }
                map.insert(hash, (id.clone(), Instant::now()));
                id
            }
        };
        id.map(|token_id| Caller { token_id })
            .ok_or(ApiError::Unauthorized("invalid or revoked token"))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Option<String>, Instant)>> {
        self.map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
