//! Applications.

use super::*;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationIn {
    #[schema(
        min_length = 1,
        max_length = 256,
        pattern = r"\S",
        example = "My first application"
    )]
    pub name: String,
    /// Optional unique identifier for the application (`_hookbox…` is reserved).
    #[schema(min_length = 1, max_length = 256, pattern = r"^[a-zA-Z0-9\-_.]+$")]
    pub uid: Option<String>,
    /// Maximum messages per second to send to this application's endpoints.
    #[serde(default, alias = "rateLimit", deserialize_with = "whole")]
    #[schema(maximum = 4294967295_u64, format = "uint32")]
    pub throttle_rate: Option<u32>,
    #[schema(value_type = Option<BTreeMap<String, String>>)]
    pub metadata: Option<Metadata>,
    /// Days message payloads are kept (hookbox extension; default: the server's setting).
    #[serde(default, deserialize_with = "whole")]
    #[schema(minimum = 1, maximum = 3650)]
    pub payload_retention_period: Option<u32>,
}

impl From<ApplicationIn> for crate::service::apps::AppInput {
    fn from(a: ApplicationIn) -> Self {
        crate::service::apps::AppInput {
            name: a.name,
            uid: a.uid,
            throttle_rate: a.throttle_rate,
            metadata: a.metadata,
            retention_days: a.payload_retention_period,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Default, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationPatch {
    #[schema(min_length = 1, max_length = 256, pattern = r"\S")]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 256, pattern = r"^[a-zA-Z0-9\-_.]+$")]
    pub uid: Option<Option<String>>,
    #[serde(default, alias = "rateLimit", deserialize_with = "nullable_whole")]
    #[schema(value_type = Option<u32>, maximum = 4294967295_u64, format = "uint32")]
    pub throttle_rate: Option<Option<u32>>,
    #[schema(value_type = Option<BTreeMap<String, String>>)]
    pub metadata: Option<Metadata>,
    #[serde(default, deserialize_with = "nullable_whole")]
    #[schema(value_type = Option<u32>, minimum = 1, maximum = 3650)]
    pub payload_retention_period: Option<Option<u32>>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationOut {
    #[schema(example = "app_1srOrx2ZWZBpBUvZwXKQmoEYga2")]
    pub id: String,
    #[schema(required)]
    pub uid: Option<String>,
    pub name: String,
    /// The same as `throttleRate` (older Svix name).
    #[schema(required)]
    pub rate_limit: Option<i64>,
    #[schema(required)]
    pub throttle_rate: Option<i64>,
    /// Days message payloads are kept; `null` means the server's setting.
    #[schema(required)]
    pub payload_retention_period: Option<i64>,
    #[schema(value_type = BTreeMap<String, String>)]
    pub metadata: serde_json::Map<String, serde_json::Value>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

impl From<App> for ApplicationOut {
    fn from(a: App) -> Self {
        ApplicationOut {
            id: a.id.into(),
            uid: a.uid,
            name: a.name,
            rate_limit: a.rate_limit,
            throttle_rate: a.rate_limit,
            payload_retention_period: a.retention_ms.map(|ms| ms / DAY_MS),
            metadata: a.metadata,
            created_at: format_ms(a.created_at),
            updated_at: format_ms(a.updated_at),
        }
    }
}
