//! Request parsing with Svix-shaped errors: JSON bodies (bounded, with the failing field's
//! location), query parameters, pagination.

use super::error::{ApiError, ValidationItem};
use crate::db::PageQuery;
use crate::domain::time::parse_datetime;
use crate::domain::validate::{nested_too_deep, MAX_JSON_DEPTH};
use actix_web::web;
use futures_util::StreamExt;
use serde::de::DeserializeOwned;

/// Reads the whole body, refusing more than `limit` bytes.
pub async fn read_body(mut payload: web::Payload, limit: usize) -> Result<web::Bytes, ApiError> {
    let mut buf = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk
            .map_err(|e| ApiError::BadRequest(format!("cannot read the request body: {e}")))?;
        if buf.len() + chunk.len() > limit {
            return Err(ApiError::PayloadTooLarge(format!(
                "request body is larger than {limit} bytes"
            )));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

/// Parses a JSON body into `T`; type errors name the field that failed.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::Validation(vec![ValidationItem {
            loc: vec!["body".into()],
            msg: "a JSON request body is required".into(),
            kind: "missing".into(),
        }]));
    }
    // Syntax first, so a truncated or non-UTF-8 body is a 400 whatever its shape.
    if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
        return Err(ApiError::BadRequest(format!("invalid JSON body: {e}")));
    }
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ApiError::Validation(vec![ValidationItem {
            loc: vec!["body".into()],
            msg: "the request body must be a JSON object".into(),
            kind: "type_error".into(),
        }]));
    }
    // Every field's value may nest `MAX_JSON_DEPTH` levels (the body's own object is one more).
    if let Some(path) = nested_too_deep(bytes, MAX_JSON_DEPTH + 1) {
        let mut loc = vec!["body".to_owned()];
        loc.extend(path.into_iter().next());
        return Err(ApiError::Validation(vec![ValidationItem {
            loc,
            msg: format!("nested more than {MAX_JSON_DEPTH} levels of arrays and objects deep"),
            kind: "value_error".into(),
        }]));
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize::<_, T>(de) {
        Ok(v) => Ok(v),
        Err(e) => {
            let path = e.path().to_string();
            let inner = e.into_inner();
            if inner.is_syntax() || inner.is_eof() || inner.is_io() {
                return Err(ApiError::BadRequest(format!("invalid JSON body: {inner}")));
            }
            let mut loc = vec!["body".to_owned()];
            if path != "." {
                loc.extend(path.split('.').map(str::to_owned));
            }
            // serde's message ends with " at line L column C"; the location says it better.
            let msg = inner.to_string();
            let msg = msg.split(" at line ").next().unwrap_or(&msg).to_owned();
            Err(ApiError::Validation(vec![ValidationItem {
                loc,
                msg,
                kind: "type_error".into(),
            }]))
        }
    }
}

/// Query parameters, repeated keys kept.
pub struct Query(Vec<(String, String)>);

impl Query {
    pub fn parse(query_string: &str) -> Query {
        Query(
            url::form_urlencoded::parse(query_string.as_bytes())
                .into_owned()
                .collect(),
        )
    }

    pub fn str(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn bool(&self, key: &str, default: bool) -> Result<bool, ApiError> {
        match self.str(key) {
            None => Ok(default),
            Some("true" | "True" | "1") => Ok(true),
            Some("false" | "False" | "0") => Ok(false),
            Some(v) => Err(ApiError::invalid(
                &["query", key],
                format!("`{v}` is not a boolean"),
            )),
        }
    }

    pub fn int(&self, key: &str) -> Result<Option<i64>, ApiError> {
        self.str(key)
            .map(|v| {
                v.parse::<i64>().map_err(|_| {
                    ApiError::invalid(&["query", key], format!("`{v}` is not an integer"))
                })
            })
            .transpose()
    }

    pub fn datetime(&self, key: &str) -> Result<Option<i64>, ApiError> {
        self.str(key)
            .map(|v| {
                parse_datetime(v).ok_or_else(|| {
                    ApiError::invalid(&["query", key], format!("`{v}` is not a date-time"))
                })
            })
            .transpose()
    }

    /// Comma-joined or repeated values.
    pub fn list(&self, key: &str) -> Option<Vec<String>> {
        let v: Vec<String> = self
            .0
            .iter()
            .filter(|(k, _)| k == key || k == &format!("{key}[]"))
            .flat_map(|(_, v)| v.split(','))
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        (!v.is_empty()).then_some(v)
    }
}

/// The Svix list envelope.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListOut<O> {
    data: Vec<O>,
    iterator: Option<String>,
    prev_iterator: Option<String>,
    done: bool,
}

/// The Svix list envelope of a page. Items are serialized as they are (no detour through
/// `serde_json::Value`, which refuses deeply nested payloads).
pub fn list_out<T, O: serde::Serialize>(
    page: crate::db::Page<T>,
    q: &PageQuery,
    key: impl Fn(&T) -> String,
    out: impl Fn(T) -> O,
) -> ListOut<O> {
    let first = page.items.first().map(&key);
    let last = page.items.last().map(&key);
    // Paging backwards, `done` says there is nothing before; the forward iterator still works.
    let done = if q.before.is_some() { false } else { page.done };
    let iterator = if q.before.is_some() && page.items.is_empty() {
        q.before.clone()
    } else {
        last
    };
    ListOut {
        data: page.items.into_iter().map(out).collect(),
        iterator,
        prev_iterator: first.map(|f| format!("-{f}")),
        done,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct In {
        name: String,
        nested: Option<Nested>,
    }
    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Nested {
        count: u32,
    }

    #[test]
    fn json_errors_name_the_field_and_syntax_errors_are_400() {
        match parse_json::<In>(br#"{"name": "a", "nested": {"count": "x"}}"#) {
            Err(ApiError::Validation(items)) => {
                assert_eq!(items[0].loc, ["body", "nested", "count"])
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse_json::<In>(b"{not json"),
            Err(ApiError::BadRequest(_))
        ));
        assert!(matches!(
            parse_json::<In>(b""),
            Err(ApiError::Validation(_))
        ));
        assert!(matches!(
            parse_json::<In>(b"{}"),
            Err(ApiError::Validation(_))
        ));
    }

    #[test]
    fn query_lists_accept_commas_and_repeats() {
        let q = Query::parse("event_types=a.b,c.d&event_types=e&iterator=-msg_1&limit=10");
        assert_eq!(q.list("event_types").unwrap(), ["a.b", "c.d", "e"]);
    }
}
