//! Request and response bodies, camelCase as Svix's. Each derives its OpenAPI schema
//! (`ToSchema`) under Svix's name, so the served document describes what is parsed and sent.

use crate::db::{App, Attempt, Endpoint, EventType, Message};
use crate::domain::time::format_ms;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// Distinguishes a field set to `null` (`Some(None)`) from one left out (`None`).
pub fn nullable<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// An optional whole number, also written as a float (`5.0`: JSON Schema counts it as an
/// integer, and some JSON encoders write numbers so).
pub fn whole<'de, T: TryFrom<u64>, D: Deserializer<'de>>(d: D) -> Result<Option<T>, D::Error> {
    use serde::de::Error;
    let Some(n) = Option::<serde_json::Number>::deserialize(d)? else {
        return Ok(None);
    };
    let v = n.as_u64().or_else(|| {
        n.as_f64()
            .filter(|f| f.fract() == 0.0 && (0.0..=9.0e15).contains(f))
            .map(|f| f as u64)
    });
    v.and_then(|v| T::try_from(v).ok())
        .map(Some)
        .ok_or_else(|| D::Error::custom(format!("`{n}` is not a whole number in range")))
}

/// [`whole`] for a field where `null` and leaving it out differ (see [`nullable`]).
pub fn nullable_whole<'de, T: TryFrom<u64>, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    whole(d).map(Some)
}

/// Header names (RFC 9110 tokens) and values (visible ASCII, spaces and tabs).
const HEADER_NAME: &str = r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$";
const HEADER_VALUE: &str = r"^[\t\x20-\x7e]*$";

fn header_map(nullable_values: bool) -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
    let value_type = if nullable_values {
        SchemaType::from_iter([Type::String, Type::Null])
    } else {
        SchemaType::Type(Type::String)
    };
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .additional_properties(Some(
            ObjectBuilder::new()
                .schema_type(value_type)
                .pattern(Some(HEADER_VALUE)),
        ))
        .property_names(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(HEADER_NAME)),
        ))
        .build()
}

/// The schema of a header map.
pub fn headers_schema() -> utoipa::openapi::schema::Object {
    header_map(false)
}

fn optional_headers_schema() -> utoipa::openapi::schema::Object {
    let mut o = header_map(false);
    o.schema_type = utoipa::openapi::schema::SchemaType::from_iter([
        utoipa::openapi::schema::Type::Object,
        utoipa::openapi::schema::Type::Null,
    ]);
    o
}

fn headers_patch_schema() -> utoipa::openapi::schema::Object {
    header_map(true)
}

pub type Metadata = BTreeMap<String, String>;

pub use crate::domain::time::DAY_MS;

mod apps;
mod endpoints;
mod event_types;
mod messages;

pub use apps::*;
pub use endpoints::*;
pub use event_types::*;
pub use messages::*;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_stored_payload_reads_back_verbatim_however_deep() {
        // Deeper than serde_json's own parsing limit (128): stored before depth was checked.
        let deep = format!("{{\"x\": {}1{}}}", "[".repeat(300), "]".repeat(300));
        let m = Message {
            id: "msg_1".into(),
            app_id: "app_1".into(),
            event_type: "t".into(),
            event_id: None,
            payload: Some(std::sync::Arc::from(deep.as_str())),
            channels: None,
            tags: None,
            created_at: 0,
        };
        let text = message_text(&m, true);
        assert!(text.contains(&deep), "{text}");
        let listed = serde_json::to_string(&crate::http::extract::list_out(
            crate::db::Page {
                items: vec![m],
                done: true,
            },
            &crate::db::PageQuery::default(),
            |m: &Message| m.id.to_string(),
            |m| message_json(&m, true),
        ))
        .unwrap();
        assert!(listed.contains(&deep));
    }
}
