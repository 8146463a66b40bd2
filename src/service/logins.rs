//! Console login throttling, counted in the store so that it holds for the whole cluster
//! (whichever node a login reaches) and across restarts. Per client address and username,
//! and per client whatever the usernames, checks are refused past a limit within a window
//! (a success clears the former); a username that keeps failing, from anywhere, is slowed
//! down (its checks run one at a time, a second apart, refused when booked more than
//! `MAX_WAIT` ahead). A browser its admin logged in from skips that queue (the console's
//! known-browser cookie), so that others' failures cannot lock its owner out.

use crate::db::{DbResult, Store};
use std::net::IpAddr;
use std::time::Duration;

/// Password checks per client address and username within `WINDOW` (a success clears
/// them); also the failures per username after which its checks are slowed down.
pub const FAILURES: usize = 5;
/// Password checks per client address, whatever the usernames, within `WINDOW`.
pub const CHECKS_PER_CLIENT: usize = 20;
pub const WINDOW: Duration = Duration::from_secs(60);
/// The gap between the checks of a username that keeps failing.
pub const SLOWDOWN: Duration = Duration::from_secs(1);
/// The longest a check waits for its turn; past it (the username's checks are booked that
/// far ahead, by others failing fast) it is refused, to try again a little later.
pub const MAX_WAIT: Duration = Duration::from_secs(15);

fn window_start(now: i64) -> i64 {
    now - crate::domain::time::duration_ms(WINDOW)
}

fn client_scope(client: IpAddr) -> String {
    format!("client {client}")
}

fn pair_scope(client: IpAddr, username: &str) -> String {
    format!("client {client} user {username}")
}

fn failures_scope(username: &str) -> String {
    format!("failed {username}")
}

/// Counts a password check by `client` for `username` at `now`; `false` (and not counted)
/// when the client has had `FAILURES` checks for that username, or `CHECKS_PER_CLIENT` in
/// all, within the window.
pub async fn begin(store: &Store, client: IpAddr, username: &str, now: i64) -> DbResult<bool> {
    store
        .count_login_check(
            vec![
                (client_scope(client), CHECKS_PER_CLIENT),
                (pair_scope(client, username), FAILURES),
            ],
            window_start(now),
            now,
        )
        .await
}

/// How long to wait before checking a password for `username`: nothing, unless it has
/// failed `FAILURES` times within the window (from anywhere); then its checks take turns,
/// `SLOWDOWN` apart. `None` when the next turn is more than `MAX_WAIT` away (the check is
/// refused for now).
pub async fn wait_for_turn(store: &Store, username: &str, now: i64) -> DbResult<Option<Duration>> {
    let failed = store
        .login_checks(failures_scope(username), window_start(now))
        .await?;
    if failed < FAILURES {
        return Ok(Some(Duration::ZERO));
    }
    let wait = store
        .take_login_turn(
            username.to_owned(),
            now,
            crate::domain::time::duration_ms(SLOWDOWN),
            crate::domain::time::duration_ms(MAX_WAIT),
        )
        .await?;
    Ok(wait.map(|w| Duration::from_millis(u64::try_from(w).unwrap_or(0))))
}

/// Notes a failed check for `username`.
pub async fn failed(store: &Store, username: &str, now: i64) -> DbResult<()> {
    store.note_login_check(failures_scope(username), now).await
}

/// Clears what `client` and `username` had counted against them.
pub async fn succeeded(store: &Store, client: IpAddr, username: &str) -> DbResult<()> {
    store
        .forget_login_checks(vec![pair_scope(client, username), failures_scope(username)])
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000_000;

    fn client(n: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, n])
    }

    /// Two nodes' stores on one fresh PostgreSQL database; `None` without a test cluster.
    async fn two_nodes() -> Option<(Store, Store)> {
        let (_, url) = crate::db::pg_tests::fresh_database().await?;
        let mut nodes = crate::db::pg_tests::nodes(&url, 2).await;
        Some((nodes.remove(0), nodes.remove(0)))
    }

    #[tokio::test]
    async fn checks_counted_on_one_node_are_refused_on_another_until_the_window_ends() {
        let Some((a, b)) = two_nodes().await else {
            return;
        };
        for _ in 0..FAILURES {
            assert!(begin(&a, client(1), "admin", NOW).await.unwrap());
            failed(&a, "admin", NOW).await.unwrap();
        }
        assert!(!begin(&b, client(1), "admin", NOW + 1).await.unwrap());
        // Another username from that client, or that username from another client, may try.
        assert!(begin(&b, client(1), "other", NOW + 1).await.unwrap());
        assert!(begin(&b, client(2), "admin", NOW + 1).await.unwrap());
        // Once the window has passed, the client may try again.
        let later = NOW + crate::domain::time::duration_ms(WINDOW) + 1;
        assert!(begin(&b, client(1), "admin", later).await.unwrap());
    }

    #[tokio::test]
    async fn a_client_trying_many_usernames_is_refused_on_every_node() {
        let Some((a, b)) = two_nodes().await else {
            return;
        };
        for i in 0..CHECKS_PER_CLIENT {
            let node = if i % 2 == 0 { &a } else { &b };
            assert!(begin(node, client(1), &format!("user{i}"), NOW)
                .await
                .unwrap());
        }
        assert!(!begin(&a, client(1), "fresh", NOW).await.unwrap());
        assert!(!begin(&b, client(1), "fresh", NOW).await.unwrap());
    }

    #[tokio::test]
    async fn a_username_that_keeps_failing_is_checked_a_second_apart_whichever_node() {
        let Some((a, b)) = two_nodes().await else {
            return;
        };
        for i in 0..FAILURES {
            assert_eq!(
                wait_for_turn(&a, "admin", NOW).await.unwrap(),
                Some(Duration::ZERO)
            );
            failed(if i % 2 == 0 { &a } else { &b }, "admin", NOW)
                .await
                .unwrap();
        }
        // Three checks at once on two nodes: one after another, a second apart.
        let waits = [
            wait_for_turn(&a, "admin", NOW).await.unwrap(),
            wait_for_turn(&b, "admin", NOW).await.unwrap(),
            wait_for_turn(&a, "admin", NOW).await.unwrap(),
        ];
        assert_eq!(waits, [1, 2, 3].map(|s| Some(Duration::from_secs(s))));
        // Later, the turn starts from then; a success clears the failures.
        assert_eq!(
            wait_for_turn(&b, "admin", NOW + 10_000).await.unwrap(),
            Some(SLOWDOWN)
        );
        // Booked more than MAX_WAIT ahead: refused, and no turn is taken.
        let mut last = None;
        for _ in 0..20 {
            last = wait_for_turn(&a, "admin", NOW + 10_000).await.unwrap();
        }
        assert_eq!(last, None);
        assert_eq!(
            wait_for_turn(&a, "admin", NOW + 10_000 + 20_000)
                .await
                .unwrap(),
            Some(SLOWDOWN)
        );
        succeeded(&b, client(1), "admin").await.unwrap();
        assert_eq!(
            wait_for_turn(&a, "admin", NOW + 40_000).await.unwrap(),
            Some(Duration::ZERO)
        );
    }
}
