//! Bearer-token authentication against hashed API tokens.

use super::error::ApiError;
use crate::db::Store;
use crate::domain::time::now_ms;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a token check is trusted before the database is asked again (so a token revoked
/// from another process stops working within this time).
const CACHE_TTL: Duration = Duration::from_secs(5);
const CACHE_MAX: usize = 10_000;

pub use crate::domain::secrets::{generate_token, hash_secret as hash_token};

/// Who made a request: an extractor that answers 401 unless the request carries a live API
/// token (`Authorization: Bearer …`). Handlers name it first, so it is checked before their
/// body is read.
#[derive(Debug, Clone)]
pub struct Caller {
    pub token_id: String,
}

impl actix_web::FromRequest for Caller {
    type Error = ApiError;
    type Future = futures_util::future::Either<
        futures_util::future::Ready<Result<Caller, ApiError>>,
        futures_util::future::LocalBoxFuture<'static, Result<Caller, ApiError>>,
    >;

    fn from_request(req: &actix_web::HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        use futures_util::future::{ready, Either};
        let Some(st) = req.app_data::<super::Data>().cloned() else {
            return Either::Left(ready(Err(ApiError::Internal("no server state".into()))));
        };
        let header = req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        // A token seen lately is answered from memory, without a task or a copy.
        match st.tokens.cached(header) {
            Ok(known) => Either::Left(ready(known)),
            Err(hash) => Either::Right(Box::pin(async move {
                st.tokens.authenticate(&st.store, hash).await
            })),
        }
    }
}

/// The token of an `Authorization: Bearer …` header.
fn bearer(header: Option<&str>) -> Result<&str, ApiError> {
    let header = header.ok_or(ApiError::Unauthorized("missing Authorization header"))?;
    Ok(header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))
        .ok_or(ApiError::Unauthorized(
            "Authorization must be `Bearer <token>`",
        ))?
        .trim())
}

fn caller(token_id: Option<String>) -> Result<Caller, ApiError> {
    token_id
        .map(|token_id| Caller { token_id })
        .ok_or(ApiError::Unauthorized("invalid or revoked token"))
}

#[derive(Default)]
pub struct TokenCache {
    map: Mutex<HashMap<String, (Option<String>, Instant)>>,
    /// Shorter than `CACHE_TTL` when set (nodes sharing a database).
    ttl: Option<Duration>,
}

impl TokenCache {
    /// A cache whose answers are trusted for `ttl` rather than `CACHE_TTL`.
    pub fn with_ttl(ttl: Duration) -> TokenCache {
        TokenCache {
            ttl: Some(ttl),
            ..TokenCache::default()
        }
    }

    /// Forgets every answer (a token was revoked).
    pub fn clear(&self) {
        self.lock().clear();
    }

    /// What is known of an `Authorization` header value without reading the database: a
    /// malformed one is refused, a token seen within `CACHE_TTL` answered. `Err(hash)`: the
    /// database must be asked about the token with this hash ([`TokenCache::authenticate`]).
    pub fn cached(&self, header: Option<&str>) -> Result<Result<Caller, ApiError>, String> {
        let token = match bearer(header) {
            Ok(t) => t,
            Err(e) => return Ok(Err(e)),
        };
        let hash = hash_token(token);
        let known = self
            .lock()
            .get(&hash)
            .filter(|(_, at)| at.elapsed() < self.ttl.unwrap_or(CACHE_TTL))
            .map(|(id, _)| id.clone());
        match known {
            Some(id) => Ok(caller(id)),
            None => Err(hash),
        }
    }

    /// Asks the database about the token with this hash (not in the cache) and remembers the
    /// answer.
    pub async fn authenticate(&self, store: &Store, hash: String) -> Result<Caller, ApiError> {
        let id = crate::service::tokens::check(store, &hash, now_ms()).await?;
        let mut map = self.lock();
        if map.len() >= CACHE_MAX {
            map.clear();
        }
        map.insert(hash, (id.clone(), Instant::now()));
        drop(map);
        caller(id)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Option<String>, Instant)>> {
        self.map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
