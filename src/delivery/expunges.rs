//! Content deletions a delivery must not miss: a delivery claimed before a message's content
//! was deleted (here, or on another node) checks, before it is sent, that its own message's
//! was not. Only a deletion that may be of its message costs it a read of the database.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// How many of the latest deletions are remembered by message; a delivery claimed before
/// older ones checks the database.
const KEPT: usize = 1024;

/// Content deletions so far, and the messages of the latest.
#[derive(Default)]
pub struct Expunges {
    count: AtomicU64,
    /// (number, message) of the latest deletions, oldest first; `None`: any message's content
    /// may have been deleted (signals from the other nodes were missed).
    recent: Mutex<VecDeque<(u64, Option<Arc<str>>)>>,
}

impl Expunges {
    /// How many deletions so far: read before claiming.
    pub fn seen(&self) -> u64 {
        self.count.load(Ordering::Acquire)
    }

    /// One more deletion: of `msg`'s content, or (`None`) of any message's.
    pub fn note(&self, msg: Option<&str>) {
        let mut recent = self
            .recent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let n = self.count.load(Ordering::Relaxed) + 1;
        recent.push_back((n, msg.map(Arc::from)));
        if recent.len() > KEPT {
            recent.pop_front();
        }
        self.count.store(n, Ordering::Release);
    }

    /// Whether a deletion after the first `seen` may have been of `msg`'s content.
    pub fn may_touch(&self, seen: u64, msg: &str) -> bool {
        if self.count.load(Ordering::Acquire) == seen {
            return false;
        }
        let recent = self
            .recent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match recent.front() {
            Some(&(first, _)) if first <= seen + 1 => recent
                .iter()
                .rev()
                .take_while(|(n, _)| *n > seen)
                .any(|(_, m)| m.as_deref().is_none_or(|m| m == msg)),
            // Some of those since `seen` are forgotten.
            _ => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_deletion_since_the_claim_of_the_same_message_or_of_any_touches_it() {
        let x = Expunges::default();
        x.note(Some("msg_old"));
        let seen = x.seen();
        assert!(!x.may_touch(seen, "msg_old"), "deleted before the claim");
        x.note(Some("msg_a"));
        x.note(Some("msg_b"));
        assert!(x.may_touch(seen, "msg_a"));
        assert!(x.may_touch(seen, "msg_b"));
        assert!(!x.may_touch(seen, "msg_c"));
        assert!(!x.may_touch(x.seen(), "msg_a"), "claimed after");
        x.note(None);
        assert!(x.may_touch(seen, "msg_c"), "signals were missed");
    }

    #[test]
    fn a_claim_older_than_what_is_remembered_checks() {
        let x = Expunges::default();
        let seen = x.seen();
        for i in 0..=KEPT {
            x.note(Some(&format!("msg_{i}")));
        }
        assert!(x.may_touch(seen, "msg_other"), "msg_0 is forgotten");
        assert!(!x.may_touch(1, "msg_other"), "all since the first are kept");
    }
}
