//! Use cases, one function each, shared by the API and the console: each applies its own
//! effects (waking the dispatcher, dropping cached endpoint details, operational events), so
//! no handler has to remember them.

pub mod alerts;
pub mod apps;
pub mod endpoint_input;
pub mod endpoints;
pub mod event_types;
pub mod input;
pub mod logins;
pub mod messages;
pub mod portal;
pub mod sessions;
pub mod tasks;
pub mod tokens;

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

/// Whose turn it is to change a row, by key, on this node.
static TURNS: LazyLock<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>> =
    LazyLock::new(Mutex::default);

/// This node's turn to change the row named `key`, held until dropped: changes made here to
/// one row wait for each other, rather than each reading it and all but one then finding it
/// changed when they write (and trying again, up to a limit). Changes from other nodes are
/// still caught by the write's check.
pub(crate) struct Turn {
    key: String,
    held: Option<tokio::sync::OwnedMutexGuard<()>>,
}

pub(crate) async fn turn(key: String) -> Turn {
    let lock = TURNS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .entry(key.clone())
        .or_default()
        .clone();
    Turn {
        key,
        held: Some(lock.lock_owned().await),
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        drop(self.held.take());
        let mut turns = TURNS.lock().unwrap_or_else(PoisonError::into_inner);
        // No one else holds or waits for it: forgotten.
        if turns
            .get(&self.key)
            .is_some_and(|l| Arc::strong_count(l) == 1)
        {
            turns.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn changes_of_one_row_take_turns_and_their_turns_are_forgotten_after() {
        let first = super::turn("turn test a".into()).await;
        let waiting = tokio::spawn(super::turn("turn test a".into()));
        // Another row's turn is not held up.
        drop(super::turn("turn test b".into()).await);
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        drop(first);
        drop(waiting.await.unwrap());
        let turns = super::TURNS.lock().unwrap();
        assert!(!turns.contains_key("turn test a") && !turns.contains_key("turn test b"));
    }
}
