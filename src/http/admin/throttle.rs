//! Login throttling, and the key that binds login forms to this server.

use super::*;

/// Password checks per client address and username within `LOGIN_WINDOW` (a success clears
/// them); also the failures per username after which its logins are slowed down.
const LOGIN_FAILURES: usize = 5;
/// Password checks per client address, whatever the usernames, within `LOGIN_WINDOW`.
const LOGIN_CHECKS_PER_CLIENT: usize = 20;
const LOGIN_WINDOW: Duration = Duration::from_secs(60);
/// The wait before each password check for a username that keeps failing.
pub(super) const LOGIN_SLOWDOWN: Duration = Duration::from_secs(1);

/// The console's own state: login throttling, a hash to verify against for unknown users,
/// and the key that binds login forms to this server.
pub struct Console {
    /// Password checks per client and username within `LOGIN_WINDOW`, counted before the
    /// check (so attempts that arrive at once cannot all be evaluated).
    attempts: Mutex<HashMap<(IpAddr, String), Vec<Instant>>>,
    /// Password checks per client, whatever the username, within `LOGIN_WINDOW`.
    per_client: Mutex<HashMap<IpAddr, Vec<Instant>>>,
    /// Failed logins per username within `LOGIN_WINDOW`, from any client, and the turn its
    /// checks take one at a time once it keeps failing.
    failures: Mutex<HashMap<String, Failures>>,
    pub(super) dummy_hash: String,
    login_key: [u8; 32],
}

#[derive(Default)]
struct Failures {
    times: Vec<Instant>,
    turn: Arc<tokio::sync::Mutex<()>>,
}

fn locked<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn recent(times: &mut Vec<Instant>) -> usize {
    times.retain(|t| t.elapsed() < LOGIN_WINDOW);
    times.len()
}

/// Drops keys with nothing recent once a map is big.
fn prune<K: std::hash::Hash + Eq, V>(
    map: &mut HashMap<K, V>,
    times: impl Fn(&mut V) -> &mut Vec<Instant>,
) {
    if map.len() > 100_000 {
        map.retain(|_, v| recent(times(v)) > 0);
    }
}

impl Console {
    pub fn new(main_key: &crate::domain::crypto::MainKey) -> Console {
        Console {
            attempts: Mutex::default(),
            per_client: Mutex::default(),
            failures: Mutex::default(),
            // Logins for unknown users verify against this, so they take as long as others.
            dummy_hash: crate::domain::password::hash("not a real password").unwrap_or_default(),
            login_key: main_key.derive("hookbox login form"),
        }
    }

    /// Counts a password check by `client` for `username`; `false` (and not counted) when
    /// the client has had `LOGIN_FAILURES` checks for that username, or `LOGIN_CHECKS_PER_CLIENT`
    /// in all, within the window.
    pub(super) fn begin_login(&self, client: IpAddr, username: &str) -> bool {
        let mut attempts = locked(&self.attempts);
        let mut per_client = locked(&self.per_client);
        prune(&mut attempts, |v| v);
        prune(&mut per_client, |v| v);
        let mine = attempts.entry((client, username.to_owned())).or_default();
        let all = per_client.entry(client).or_default();
        if recent(mine) >= LOGIN_FAILURES || recent(all) >= LOGIN_CHECKS_PER_CLIENT {
            return false;
        }
        mine.push(Instant::now());
        all.push(Instant::now());
        true
    }

    /// The turn to wait for before checking a password for `username`: none, unless it has
    /// failed `LOGIN_FAILURES` times within the window (from anywhere); then its checks run
    /// one at a time, each after `LOGIN_SLOWDOWN`. Slowed down, never refused: others'
    /// failures must not lock the user out.
    pub(super) fn turn(&self, username: &str) -> Option<Arc<tokio::sync::Mutex<()>>> {
        let mut map = locked(&self.failures);
        let f = map.get_mut(username)?;
        (recent(&mut f.times) >= LOGIN_FAILURES).then(|| f.turn.clone())
    }

    pub(super) fn failed(&self, username: &str) {
        let mut map = locked(&self.failures);
        prune(&mut map, |f| &mut f.times);
        map.entry(username.to_owned())
            .or_default()
            .times
            .push(Instant::now());
    }

    pub(super) fn succeeded(&self, client: IpAddr, username: &str) {
        locked(&self.attempts).remove(&(client, username.to_owned()));
        if let Some(f) = locked(&self.failures).get_mut(username) {
            f.times.clear();
        }
    }

    /// The login form's hidden value for the anti-forgery cookie `token`: a MAC under a
    /// server key, so that whoever can plant the cookie still cannot make a matching form.
    pub(super) fn login_form_value(&self, token: &str) -> String {
        use hmac::Mac;
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&self.login_key)
            .expect("HMAC takes any key length");
        mac.update(token.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }
}
