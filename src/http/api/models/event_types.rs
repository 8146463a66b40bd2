//! Event types.

use super::*;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventTypeIn {
    #[schema(
        max_length = 256,
        pattern = r"^[a-zA-Z0-9\-_.:]+$",
        example = "user.signup"
    )]
    pub name: String,
    #[schema(max_length = 8192, example = "A user has signed up")]
    pub description: String,
    #[serde(default)]
    pub archived: bool,
    #[serde(default)]
    pub deprecated: bool,
    /// JSON schemas of the payload by version (at most 256 KiB).
    #[schema(value_type = Option<BTreeMap<String, Object>>)]
    pub schemas: Option<serde_json::Map<String, serde_json::Value>>,
    /// Feature flags (stored and returned).
    #[schema(inline, value_type = Option<Vec<FeatureFlag>>, max_items = 64)]
    pub feature_flags: Option<Vec<String>>,
    /// One feature flag (Svix's older field), when `featureFlags` is absent.
    #[schema(max_length = 256, min_length = 1, pattern = r"^[a-zA-Z0-9\-_.]+$")]
    pub feature_flag: Option<String>,
    #[schema(max_length = 256)]
    pub group_name: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventTypeUpdate {
    #[schema(max_length = 8192)]
    pub description: String,
    #[serde(default)]
    pub archived: bool,
    #[serde(default)]
    pub deprecated: bool,
    #[schema(value_type = Option<BTreeMap<String, Object>>)]
    pub schemas: Option<serde_json::Map<String, serde_json::Value>>,
    /// Feature flags (stored and returned).
    #[schema(inline, value_type = Option<Vec<FeatureFlag>>, max_items = 64)]
    pub feature_flags: Option<Vec<String>>,
    /// One feature flag (Svix's older field), when `featureFlags` is absent.
    #[schema(max_length = 256, min_length = 1, pattern = r"^[a-zA-Z0-9\-_.]+$")]
    pub feature_flag: Option<String>,
    #[schema(max_length = 256)]
    pub group_name: Option<String>,
}

#[derive(Debug, Deserialize, Default, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventTypePatch {
    #[schema(max_length = 8192)]
    pub description: Option<String>,
    pub archived: Option<bool>,
    pub deprecated: Option<bool>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<BTreeMap<String, Object>>)]
    pub schemas: Option<Option<serde_json::Map<String, serde_json::Value>>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(inline, value_type = Option<Vec<FeatureFlag>>, max_items = 64)]
    pub feature_flags: Option<Option<Vec<String>>>,
    /// One feature flag (Svix's older field), when `featureFlags` is absent; `null` removes
    /// them.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, max_length = 256, min_length = 1, pattern = r"^[a-zA-Z0-9\-_.]+$")]
    pub feature_flag: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, max_length = 256)]
    pub group_name: Option<Option<String>>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventTypeOut {
    pub name: String,
    pub description: String,
    pub archived: bool,
    pub deprecated: bool,
    /// `null` when listed with `with_content=false`.
    #[schema(required, value_type = Option<BTreeMap<String, Object>>)]
    pub schemas: Option<serde_json::Value>,
    #[schema(required)]
    pub group_name: Option<String>,
    #[schema(required)]
    pub feature_flags: Option<Vec<String>>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

impl EventTypeOut {
    pub fn new(e: EventType, with_content: bool) -> Self {
        EventTypeOut {
            name: e.name,
            description: e.description,
            archived: e.archived,
            deprecated: e.deprecated,
            schemas: if with_content { e.schemas } else { None },
            group_name: e.group_name,
            feature_flags: e.feature_flags,
            created_at: format_ms(e.created_at),
            updated_at: format_ms(e.updated_at),
        }
    }
}

/// A feature flag.
#[derive(ToSchema)]
#[schema(
    min_length = 1,
    max_length = 256,
    pattern = r"^[a-zA-Z0-9\-_.]+$",
    example = "cool-new-feature"
)]
pub struct FeatureFlag(#[allow(dead_code)] String);
