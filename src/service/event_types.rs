//! The event catalog: its rules, written once for the API and the console.

use crate::db::{DbResult, EventType, Store};
use crate::domain::validate::is_valid_event_type;
use serde_json::Value;

pub const MAX_DESCRIPTION_CHARS: usize = 8192;
pub const MAX_GROUP_CHARS: usize = 256;
pub const MAX_SCHEMAS_BYTES: usize = 256 * 1024;
pub const MAX_FEATURE_FLAGS: usize = 64;

pub use super::input::FieldError;

fn field(loc: &[&str], msg: impl Into<String>) -> FieldError {
    FieldError::new(loc, msg)
}

pub fn check_name(name: &str) -> Result<(), FieldError> {
    if crate::domain::validate::only_dots(name) && !name.is_empty() {
        Err(field(
            &["name"],
            "a name of dots only cannot be used in a URL: add a letter or digit",
        ))
    } else if is_valid_event_type(name) {
        Ok(())
    } else {
        Err(field(
            &["name"],
            "use 1 to 256 letters, digits and - _ . : (for example invoice.paid)",
        ))
    }
}

/// Lengths are counted in characters, as the API documents them.
pub fn check_description(description: &str) -> Result<(), FieldError> {
    if description.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(field(
            &["description"],
            format!("the description is longer than {MAX_DESCRIPTION_CHARS} characters"),
        ));
    }
    super::input::check_text(&["description"], description)
}

pub fn check_group(group: Option<&str>) -> Result<(), FieldError> {
    if group.is_some_and(|g| g.chars().count() > MAX_GROUP_CHARS) {
        return Err(field(
            &["groupName"],
            format!("the group name is longer than {MAX_GROUP_CHARS} characters"),
        ));
    }
    group.map_or(Ok(()), |g| super::input::check_text(&["groupName"], g))
}

/// Feature flags: at most `MAX_FEATURE_FLAGS`, each 1 to 256 of `[a-zA-Z0-9-_.]`.
pub fn check_feature_flags(flags: Option<&[String]>) -> Result<(), FieldError> {
    let flags = flags.unwrap_or_default();
    if flags.len() > MAX_FEATURE_FLAGS {
        return Err(field(
            &["featureFlags"],
            format!("at most {MAX_FEATURE_FLAGS} feature flags"),
        ));
    }
    if let Some(i) = flags
        .iter()
        .position(|f| !crate::domain::validate::is_valid_uid(f))
    {
        return Err(field(
            &["featureFlags", &i.to_string()],
            "a feature flag is 1 to 256 of a-z A-Z 0-9 - _ .",
        ));
    }
    Ok(())
}

/// Schemas by version: each a JSON object, all together at most `MAX_SCHEMAS_BYTES`.
pub fn check_schemas(schemas: &serde_json::Map<String, Value>) -> Result<(), FieldError> {
    if let Some(version) = schemas.keys().find(|k| !schemas[k.as_str()].is_object()) {
        return Err(field(
            &["schemas", version],
            "a schema must be a JSON object",
        ));
    }
    if serde_json::to_string(schemas).map_or(0, |t| t.len()) > MAX_SCHEMAS_BYTES {
        return Err(field(&["schemas"], "the schemas are larger than 256 KiB"));
    }
    Ok(())
}

/// Every rule on an event type's fields.
pub fn check(t: &EventType) -> Result<(), FieldError> {
    check_name(&t.name)?;
    check_description(&t.description)?;
    check_group(t.group_name.as_deref())?;
    check_feature_flags(t.feature_flags.as_deref())?;
    if let Some(Value::Object(s)) = &t.schemas {
        check_schemas(s)?;
    }
    Ok(())
}

/// Stores a new event type, or brings back an archived one of that name (keeping when it
/// was first created), as Svix does. `None` when a live one has the name.
pub async fn create(store: &Store, t: EventType) -> DbResult<Option<EventType>> {
    store.create_event_type(t).await
}

/// Stores `make(existing)` under `name`, replacing what is there; `true` when it is new.
pub async fn put(
    store: &Store,
    name: &str,
    make: impl FnOnce(Option<&EventType>) -> EventType + Send + 'static,
) -> DbResult<(bool, EventType)> {
    store.put_event_type(name, make).await
}

/// Applies `change` to the event type `name`; `None` when there is none.
pub async fn change(
    store: &Store,
    name: &str,
    change: impl FnOnce(&mut EventType) + Send + 'static,
) -> DbResult<Option<EventType>> {
    store.change_event_type(name, change).await
}

/// Archives (hides from new subscriptions) or, with `expunge`, deletes an event type;
/// `false` when there is none.
pub async fn remove(store: &Store, name: &str, expunge: bool, now: i64) -> DbResult<bool> {
    if expunge {
        return store.expunge_event_type(name).await;
    }
    Ok(change(store, name, move |e| {
        e.archived = true;
        e.updated_at = now;
    })
    .await?
    .is_some())
}

/// Stores a changed event type (checked with [`check`] first).
pub async fn update(store: &Store, e: EventType) -> DbResult<()> {
    store.update_event_type(e).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_are_characters_and_the_group_is_capped() {
        let long = "é".repeat(MAX_DESCRIPTION_CHARS);
        assert!(
            check_description(&long).is_ok(),
            "8192 characters, 16384 bytes"
        );
        assert!(check_description(&format!("{long}x")).is_err());
        assert!(check_group(Some(&"ü".repeat(MAX_GROUP_CHARS))).is_ok());
        let err = check_group(Some(&"g".repeat(MAX_GROUP_CHARS + 1))).unwrap_err();
        assert_eq!(err.loc, ["groupName"]);
        let mut s = serde_json::Map::new();
        s.insert("1".into(), Value::Bool(true));
        assert_eq!(check_schemas(&s).unwrap_err().loc, ["schemas", "1"]);
    }
}
