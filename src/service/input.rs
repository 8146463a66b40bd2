//! What is wrong with an input, shared by every use case: a field and why. The API answers it
//! as a 422 located in the body (`["body", "url"]`); the console shows it next to the field.

use std::fmt;

/// A field that breaks a rule: where (`["schemas", "1"]`, say) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub loc: Vec<String>,
    pub msg: String,
}

impl FieldError {
    pub fn new(loc: &[&str], msg: impl Into<String>) -> FieldError {
        FieldError {
            loc: loc.iter().map(|s| (*s).to_owned()).collect(),
            msg: msg.into(),
        }
    }

    /// The message when the error is about `field` (the last part of its location).
    pub fn at(&self, field: &str) -> Option<&str> {
        (self.loc.last().map(String::as_str) == Some(field)).then_some(self.msg.as_str())
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.loc.join("."), self.msg)
    }
}

/// Why an input was not taken: a field breaks a rule, or storage failed while checking it.
#[derive(Debug)]
pub enum Rejected {
    Invalid(FieldError),
    Db(crate::db::DbError),
}

impl From<FieldError> for Rejected {
    fn from(e: FieldError) -> Self {
        Rejected::Invalid(e)
    }
}

impl From<crate::db::DbError> for Rejected {
    fn from(e: crate::db::DbError) -> Self {
        Rejected::Db(e)
    }
}

/// A time window from `since` until `until` (open-ended without one): one that ends before
/// it starts, or where it starts, holds nothing and is refused, as the analytics refuse it.
pub fn check_window(since: i64, until: Option<i64>) -> Result<(), FieldError> {
    match until {
        Some(until) if until <= since => Err(FieldError::new(&["until"], "must be after since")),
        _ => Ok(()),
    }
}

/// Free text that is stored as given (a name, a description): anything but the NUL
/// character, which no PostgreSQL text can hold.
pub fn check_text(loc: &[&str], text: &str) -> Result<(), FieldError> {
    if text.contains('\0') {
        return Err(FieldError::new(
            loc,
            "must not contain the NUL character (\\u0000)",
        ));
    }
    Ok(())
}

/// A PUT that creates takes the uid in its path: another one in its body is refused, since
/// a repeat of the PUT would not find what the first one made.
pub fn check_created_uid(path_key: &str, uid: Option<&str>) -> Result<(), crate::db::DbError> {
    match uid {
        Some(u) if u != path_key => Err(crate::db::DbError::Conflict(format!(
            "nothing exists under `{path_key}` to change: to create it, leave uid out or give `{path_key}`"
        ))),
        _ => Ok(()),
    }
}

/// A uid (of an application or an endpoint), when given: 1 to 256 of `[a-zA-Z0-9-_.]`.
pub fn check_uid(uid: Option<&str>) -> Result<(), FieldError> {
    match uid {
        Some(u) if !crate::domain::validate::is_valid_uid(u) => Err(FieldError::new(
            &["uid"],
            "uid must match [a-zA-Z0-9-_.]{1,256}",
        )),
        Some(u) if crate::domain::validate::only_dots(u) => Err(FieldError::new(
            &["uid"],
            "a uid of dots only cannot be used in a URL: add a letter or digit",
        )),
        _ => Ok(()),
    }
}

/// String metadata as stored (a JSON object of strings).
pub fn metadata_map(
    m: Option<std::collections::BTreeMap<String, String>>,
) -> serde_json::Map<String, serde_json::Value> {
    m.unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, serde_json::Value::String(v)))
        .collect()
}
