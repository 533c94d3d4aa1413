//! Login throttling: after `max_failures` failed logins inside a sliding window, further
//! attempts are refused (429 with `Retry-After`) until the oldest of those failures leaves
//! the window. The identity issue sets 5 failures in 15 minutes, counted per account and per
//! client address (OWASP Authentication Cheat Sheet, "Protect Against Automated Attacks";
//! NIST SP 800-63B §5.2.2 rate limiting).
//!
//! Keys are opaque strings built by the caller: `user:<id>` for an account that exists (or
//! `email:<lowercased address>` for one that does not) and `addr:<client ip>`. An account key is counted whether or not the account exists, and
//! the answer is the same either way, so the throttle does not tell whether it exists.
//!
//! Why not `governor`: its GCRA limiter spends a cell on every check, so it limits attempts,
//! not failures; a user who logs in successfully would use up their own allowance, and
//! "clear the account's count on success" has no counterpart. Here only
//! [`LoginThrottle::record_failure`] counts and [`LoginThrottle::check`] is free.
//!
//! Memory: each key keeps at most `max_failures` timestamps (the newest ones; older ones
//! cannot change the answer) and is dropped once they have all left the window. When more
//! than `max_keys` keys are held, the throttle forgets the keys whose newest failure is the
//! oldest, down to 7/8 of `max_keys` (so the sweep runs once per `max_keys / 8` new keys,
//! not on every failure). An attacker who spreads failures over more than `max_keys` keys
//! within a window can thereby reset other keys' counts: size `max_keys` well above the
//! keys one window sees in normal use (each key costs about 100 bytes plus its timestamps).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

/// Sliding-window counters of failed logins per key. Cheap to clone: clones share one
/// table (an `Arc<Mutex<…>>`). Times are milliseconds since the Unix epoch, passed in by the
/// caller so tests control the clock.
#[derive(Clone, Debug)]
pub struct LoginThrottle {
    inner: Arc<Mutex<HashMap<String, VecDeque<i64>>>>,
    /// Serialises [`LoginThrottle::begin`]'s check-then-count.
    attempts: Arc<Mutex<()>>,
    max_failures: usize,
    window_ms: i64,
    max_keys: usize,
}

impl LoginThrottle {
    /// A throttle that refuses a key once it has `max_failures` failures (at least 1; the
    /// issue's value is 5) within the last `window_ms` milliseconds (at least 1; the issue's
    /// value is 900,000, 15 minutes), holding at most about `max_keys` keys (at least 1).
    /// Values under 1 are taken as 1.
    pub fn new(max_failures: usize, window_ms: i64, max_keys: usize) -> LoginThrottle {
        LoginThrottle {
            inner: Arc::new(Mutex::new(HashMap::new())),
            attempts: Arc::new(Mutex::new(())),
            max_failures: max_failures.max(1),
            window_ms: window_ms.max(1),
            max_keys: max_keys.max(1),
        }
    }

    /// The table; a panic elsewhere while it was held leaves only counters, which stay usable.
    fn table(&self) -> MutexGuard<'_, HashMap<String, VecDeque<i64>>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Drops the failures of `times` that have left the window at `now_ms`: a failure at `t`
    /// counts while `now_ms < t + window_ms`.
    fn prune(times: &mut VecDeque<i64>, window_ms: i64, now_ms: i64) {
        while times
            .front()
            .is_some_and(|&t| t.saturating_add(window_ms) <= now_ms)
        {
            times.pop_front();
        }
    }

    /// Whether a login attempt under `keys` may proceed at `now_ms`. Call it before checking
    /// the password (and before looking up the account, so refused attempts cost nothing).
    ///
    /// Errors: `Err(retry_after_s)` when any key has `max_failures` or more failures in the
    /// window; `retry_after_s` (at least 1) is the number of seconds, rounded up, until enough
    /// of them leave the window for every key to be allowed again: for the `Retry-After`
    /// header (RFC 9110 §10.2.3).
    pub fn check(&self, keys: &[&str], now_ms: i64) -> Result<(), u64> {
        let mut table = self.table();
        let mut wait_ms: i64 = 0;
        for key in keys {
            let Some(times) = table.get_mut(*key) else {
                continue;
            };
            Self::prune(times, self.window_ms, now_ms);
            if times.is_empty() {
                table.remove(*key);
                continue;
            }
            if times.len() >= self.max_failures {
                // Allowed again once only `max_failures - 1` remain: when the failure at
                // index `len - max_failures` leaves the window.
                let t = times[times.len() - self.max_failures];
                wait_ms = wait_ms.max(t.saturating_add(self.window_ms).saturating_sub(now_ms));
            }
        }
        if wait_ms > 0 {
            let secs = (wait_ms as u64).div_ceil(1000);
            Err(secs.max(1))
        } else {
            Ok(())
        }
    }

    /// Counts one failed login at `now_ms` under each of `keys` (the account key and the
    /// address key): a wrong password, or an email with no account.
    pub fn record_failure(&self, keys: &[&str], now_ms: i64) {
        let mut table = self.table();
        for key in keys {
            let times = table.entry((*key).to_owned()).or_default();
            Self::prune(times, self.window_ms, now_ms);
            times.push_back(now_ms);
            while times.len() > self.max_failures {
                times.pop_front();
            }
        }
        if table.len() > self.max_keys {
            self.evict(&mut table, now_ms);
        }
    }

    /// Starts a login attempt: checks `keys` and, in the same step, counts the attempt as a
    /// failure under each of them, so that concurrent attempts cannot all pass the check
    /// before any of them has failed. A successful attempt then calls
    /// [`LoginThrottle::succeeded`] to take its count back.
    ///
    /// Errors: as [`LoginThrottle::check`] (nothing is counted then).
    pub fn begin(&self, keys: &[&str], now_ms: i64) -> Result<(), u64> {
        // One lock for both steps: another attempt cannot slip between them.
        let _serial = self.attempts.lock().unwrap_or_else(|e| e.into_inner());
        self.check(keys, now_ms)?;
        self.record_failure(keys, now_ms);
        Ok(())
    }

    /// Ends an attempt begun at `begun_ms` that succeeded: the account's failures are cleared
    /// (its owner is back), and the attempt's own count is taken back from the other keys.
    pub fn succeeded(&self, account_key: &str, other_keys: &[&str], begun_ms: i64) {
        self.table().remove(account_key);
        self.abandoned(other_keys, begun_ms);
    }

    /// Takes back the count of an attempt begun at `begun_ms` that never checked a password
    /// (the server was too busy): it neither failed nor succeeded.
    pub fn abandoned(&self, keys: &[&str], begun_ms: i64) {
        let mut table = self.table();
        for key in keys {
            if let Some(times) = table.get_mut(*key) {
                if let Some(i) = times.iter().rposition(|&t| t == begun_ms) {
                    times.remove(i);
                }
            }
        }
    }

    /// Clears the failures of `account_key` after a successful login (the owner is back).
    /// The address keys are left as they are: one good password from an address does not
    /// excuse its failures against other accounts.
    pub fn record_success(&self, account_key: &str) {
        self.table().remove(account_key);
    }

    /// Number of keys held (for metrics and tests).
    pub fn len(&self) -> usize {
        self.table().len()
    }

    /// True when no key is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets keys with no failure left in the window, then, if still over `max_keys`, the
    /// keys whose newest failure is the oldest, down to 7/8 of `max_keys`.
    fn evict(&self, table: &mut HashMap<String, VecDeque<i64>>, now_ms: i64) {
        table.retain(|_, times| {
            Self::prune(times, self.window_ms, now_ms);
            !times.is_empty()
        });
        if table.len() <= self.max_keys {
            return;
        }
        let keep = self.max_keys - self.max_keys / 8;
        let mut newest: Vec<i64> = table
            .values()
            .map(|t| t.back().copied().unwrap_or(i64::MIN))
            .collect();
        let drop = table.len() - keep;
        // The `drop`-th oldest newest-failure: keys at or below it go (ties may take a few
        // more keys, never fewer).
        let (_, cut, _) = newest.select_nth_unstable(drop - 1);
        let cut = *cut;
        table.retain(|_, times| times.back().copied().unwrap_or(i64::MIN) > cut);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: i64 = 15 * 60 * 1000;
    const T0: i64 = 1_760_000_000_000;

    fn throttle() -> LoginThrottle {
        LoginThrottle::new(5, WINDOW, 10_000)
    }

    const ACCOUNT: &str = "account:*:alice@example.com";
    const ADDR: &str = "addr:192.0.2.1";

    #[test]
    fn five_failures_refuse_the_sixth_attempt_with_retry_after() {
        let t = throttle();
        for i in 0..5 {
            assert_eq!(
                t.check(&[ACCOUNT, ADDR], T0 + i * 1000),
                Ok(()),
                "attempt {i}"
            );
            t.record_failure(&[ACCOUNT, ADDR], T0 + i * 1000);
        }
        // Sixth attempt at T0 + 5 s: the first failure (T0) leaves at T0 + 900 s.
        assert_eq!(t.check(&[ACCOUNT, ADDR], T0 + 5_000), Err(895));
        // Either key alone is refused too.
        assert_eq!(t.check(&[ACCOUNT], T0 + 5_000), Err(895));
        assert_eq!(t.check(&[ADDR], T0 + 5_000), Err(895));
        // Rounded up: 0.5 s before it leaves is still 1 s.
        assert_eq!(t.check(&[ACCOUNT], T0 + WINDOW - 500), Err(1));
        assert_eq!(t.check(&[ACCOUNT], T0 + WINDOW - 1500), Err(2));
    }

    #[test]
    fn four_failures_do_not_refuse() {
        let t = throttle();
        for i in 0..4 {
            t.record_failure(&[ACCOUNT], T0 + i);
        }
        assert_eq!(t.check(&[ACCOUNT], T0 + 10), Ok(()));
    }

    #[test]
    fn the_window_slides() {
        let t = throttle();
        // Failures at 0, 60, 120, 180, 240 s.
        for i in 0..5 {
            t.record_failure(&[ACCOUNT], T0 + i * 60_000);
        }
        assert!(t.check(&[ACCOUNT], T0 + WINDOW - 1).is_err());
        // The first leaves at exactly T0 + WINDOW: four remain.
        assert_eq!(t.check(&[ACCOUNT], T0 + WINDOW), Ok(()));
        // One more failure makes five in the window again, until the one at 60 s leaves.
        t.record_failure(&[ACCOUNT], T0 + WINDOW);
        assert_eq!(t.check(&[ACCOUNT], T0 + WINDOW), Err(60));
        assert_eq!(t.check(&[ACCOUNT], T0 + WINDOW + 60_000), Ok(()));
        // Long after, everything is forgotten and the key itself goes.
        assert_eq!(t.check(&[ACCOUNT], T0 + 10 * WINDOW), Ok(()));
        assert!(t.is_empty());
    }

    #[test]
    fn failures_beyond_the_limit_extend_the_wait_to_the_newest_five() {
        let t = throttle();
        // Concurrent attempts can record more than five; the answer is decided by the newest
        // five, here those at 10..=14 s.
        for i in 0..15 {
            t.record_failure(&[ACCOUNT], T0 + i * 1000);
        }
        assert_eq!(t.check(&[ACCOUNT], T0 + 15_000), Err(895));
        assert_eq!(t.check(&[ACCOUNT], T0 + WINDOW + 9_999), Err(1));
        assert_eq!(t.check(&[ACCOUNT], T0 + WINDOW + 10_000), Ok(()));
    }

    #[test]
    fn success_clears_the_account_but_not_the_address() {
        let t = throttle();
        for i in 0..5 {
            t.record_failure(&[ACCOUNT, ADDR], T0 + i);
        }
        t.record_success(ACCOUNT);
        assert_eq!(t.check(&[ACCOUNT], T0 + 10), Ok(()));
        assert!(t.check(&[ADDR], T0 + 10).is_err());
        assert!(t.check(&[ACCOUNT, ADDR], T0 + 10).is_err());
    }

    #[test]
    fn distinct_keys_are_independent() {
        let t = throttle();
        for i in 0..5 {
            t.record_failure(&["account:*:bob@example.com", "addr:198.51.100.7"], T0 + i);
        }
        assert_eq!(t.check(&[ACCOUNT, ADDR], T0 + 10), Ok(()));
        assert!(t.check(&["account:*:bob@example.com"], T0 + 10).is_err());
        assert!(t.check(&["addr:198.51.100.7"], T0 + 10).is_err());
        // The longest wait over the keys is the answer.
        let u = throttle();
        for i in 0..5 {
            u.record_failure(&[ACCOUNT], T0 + i * 1000);
            u.record_failure(&[ADDR], T0 + 100_000 + i * 1000);
        }
        assert_eq!(u.check(&[ACCOUNT, ADDR], T0 + 200_000), Err(800));
    }

    #[test]
    fn clones_share_the_table() {
        let t = throttle();
        let u = t.clone();
        for i in 0..5 {
            u.record_failure(&[ACCOUNT], T0 + i);
        }
        assert!(t.check(&[ACCOUNT], T0 + 10).is_err());
    }

    #[test]
    fn each_key_keeps_at_most_max_failures_timestamps() {
        let t = throttle();
        for i in 0..1000 {
            t.record_failure(&[ACCOUNT], T0 + i);
        }
        assert_eq!(t.table()[ACCOUNT].len(), 5);
    }

    #[test]
    fn memory_is_capped_by_dropping_the_stalest_keys() {
        let t = LoginThrottle::new(5, WINDOW, 80);
        // A victim with four failures early on, then a spray of 100 addresses.
        for i in 0..4 {
            t.record_failure(&[ACCOUNT], T0 + i);
        }
        for i in 0..100 {
            t.record_failure(&[&format!("addr:10.0.0.{i}")], T0 + 1_000 + i);
            assert!(t.len() <= 80, "held {} keys after {i}", t.len());
        }
        // The stalest keys went first: the victim's, then the earliest addresses.
        let table = t.table();
        assert!(!table.contains_key(ACCOUNT));
        assert!(!table.contains_key("addr:10.0.0.0"));
        assert!(table.contains_key("addr:10.0.0.99"));
        assert!(table.len() >= 70);
    }

    #[test]
    fn expired_keys_are_dropped_before_live_ones() {
        let t = LoginThrottle::new(5, WINDOW, 3);
        t.record_failure(&["old:1", "old:2", "old:3"], T0);
        t.record_failure(&["live"], T0 + WINDOW + 1);
        let table = t.table();
        assert_eq!(table.len(), 1);
        assert!(table.contains_key("live"));
    }

    #[test]
    fn no_keys_or_unknown_keys_are_allowed() {
        let t = throttle();
        assert_eq!(t.check(&[], T0), Ok(()));
        assert_eq!(t.check(&["never:seen"], T0), Ok(()));
        assert!(t.is_empty());
    }

    #[test]
    fn begun_attempts_count_at_once_and_a_success_takes_its_count_back() {
        let t = LoginThrottle::new(5, 60_000, 100);
        let keys = ["user:a", "addr:1"];
        // Five attempts in flight together exhaust the allowance before any of them fails.
        for i in 0..5 {
            assert!(t.begin(&keys, 1000 + i).is_ok());
        }
        assert!(
            t.begin(&keys, 1010).is_err(),
            "the sixth concurrent attempt is refused"
        );
        let t = LoginThrottle::new(5, 60_000, 100);
        t.begin(&keys, 2000).unwrap();
        t.begin(&["user:b", "addr:1"], 2001).unwrap();
        t.succeeded("user:a", &["addr:1"], 2000);
        let table = t.table();
        assert!(!table.contains_key("user:a"));
        assert_eq!(
            table["addr:1"].len(),
            1,
            "only the success's own count is taken back"
        );
        assert_eq!(table["user:b"].len(), 1);
    }
}
