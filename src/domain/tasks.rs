//! Background tasks: a bulk replay of an endpoint's messages, worked through in batches in
//! the order the messages were taken, its progress kept with each batch.

use serde::{Deserialize, Serialize};

/// How many messages one step of a task looks at.
pub const BATCH: usize = 500;

/// What a task does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskKind {
    /// A bulk replay, worked through in steps.
    Replay,
    /// The endpoint's failed deliveries in a window given a fresh retry schedule (done when
    /// asked, stored finished).
    Recover,
    /// The messages of a window the endpoint never got, queued (done when asked, stored
    /// finished).
    ReplayMissing,
}

impl TaskKind {
    pub const ALL: [TaskKind; 3] = [TaskKind::Replay, TaskKind::Recover, TaskKind::ReplayMissing];

    /// As stored.
    pub const fn stored(self) -> &'static str {
        match self {
            TaskKind::Replay => "endpoint.replay",
            TaskKind::Recover => "endpoint.recover",
            TaskKind::ReplayMissing => "endpoint.replay-missing",
        }
    }

    pub fn from_stored(s: &str) -> Option<TaskKind> {
        Self::ALL.into_iter().find(|k| k.stored() == s)
    }

    /// Svix's name for it: a replay of missing messages is an `endpoint.replay` there too.
    pub const fn api_name(self) -> &'static str {
        match self {
            TaskKind::Replay | TaskKind::ReplayMissing => "endpoint.replay",
            TaskKind::Recover => "endpoint.recover",
        }
    }

    /// The kinds Svix's name `name` covers (none when it names no kind hookbox runs).
    pub fn with_api_name(name: &str) -> Vec<TaskKind> {
        Self::ALL
            .into_iter()
            .filter(|k| k.api_name() == name)
            .collect()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskStatus {
    Running,
    Finished,
    Failed,
}

impl TaskStatus {
    pub const ALL: [TaskStatus; 3] = [
        TaskStatus::Running,
        TaskStatus::Finished,
        TaskStatus::Failed,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            TaskStatus::Running => "running",
            TaskStatus::Finished => "finished",
            TaskStatus::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<TaskStatus> {
        Self::ALL.into_iter().find(|t| t.name() == s)
    }
}

/// How a message's delivery to the endpoint ended, to replay only those.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Succeeded,
    Failed,
}

/// Which messages of the endpoint's application a replay sends again: those taken in
/// `[since, until)`, of these event types, in this channel, whose delivery to the endpoint
/// ended so, whose last attempt got a status of this class (2 for 2xx, …). The endpoint's
/// own event types, channels and payload filter apply too; messages whose content is gone
/// are left out.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplaySpec {
    pub since: i64,
    pub until: Option<i64>,
    pub event_types: Option<Vec<String>>,
    pub channel: Option<String>,
    pub outcome: Option<Outcome>,
    pub status_code_class: Option<u16>,
}

impl ReplaySpec {
    /// As stored (JSON).
    pub fn stored(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// From its stored form; `None` when it does not read.
    pub fn from_stored(s: &str) -> Option<ReplaySpec> {
        serde_json::from_str(s).ok()
    }
}

/// A bulk replay and how far it got: `done` of `total` messages looked at (counted when it
/// started), `queued` of them sent again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    pub id: String,
    pub kind: TaskKind,
    pub app_id: String,
    pub endpoint_id: String,
    pub status: TaskStatus,
    pub spec: ReplaySpec,
    pub total: i64,
    pub done: i64,
    pub queued: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Task {
    /// How far along, in percent (a finished task is at 100 even if more messages came in
    /// the window meanwhile).
    pub fn percent(&self) -> i64 {
        match self.status {
            TaskStatus::Running if self.total > 0 => (self.done * 100 / self.total).min(99),
            TaskStatus::Running => 0,
            _ => 100,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_round_trip_and_progress_is_in_percent() {
        let spec = ReplaySpec {
            since: 5,
            until: Some(9),
            event_types: Some(vec!["a.b".into()]),
            channel: Some("eu".into()),
            outcome: Some(Outcome::Failed),
            status_code_class: Some(5),
        };
        assert_eq!(ReplaySpec::from_stored(&spec.stored()), Some(spec.clone()));
        let mut t = Task {
            id: "qtask_1".into(),
            kind: TaskKind::Replay,
            app_id: "app_1".into(),
            endpoint_id: "ep_1".into(),
            status: TaskStatus::Running,
            spec,
            total: 10_000,
            done: 2_500,
            queued: 2_000,
            created_at: 0,
            updated_at: 0,
        };
        assert_eq!(t.percent(), 25);
        t.done = 10_000;
        assert_eq!(t.percent(), 99, "running is never 100");
        t.status = TaskStatus::Finished;
        assert_eq!(t.percent(), 100);
        for s in [
            TaskStatus::Running,
            TaskStatus::Finished,
            TaskStatus::Failed,
        ] {
            assert_eq!(TaskStatus::parse(s.name()), Some(s));
        }
        for k in TaskKind::ALL {
            assert_eq!(TaskKind::from_stored(k.stored()), Some(k));
            assert!(TaskKind::with_api_name(k.api_name()).contains(&k));
        }
    }
}
