//! A tenant's armed timers in deadline order. Each call has at most one timer of each kind;
//! its deadlines live on the call's entry and this set mirrors them exactly (arming replaces,
//! disarming removes), so the first entry is the tenant's next deadline.

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::rules::TimerKind;

/// `(deadline epoch ms, kind, call key)`, ordered by deadline.
#[derive(Default)]
pub(crate) struct Timers(BTreeSet<(i64, TimerKind, Arc<str>)>);

impl Timers {
    /// Arms `kind` for the call at `deadline`, replacing the `previous` deadline if any.
    pub fn arm(&mut self, key: &Arc<str>, kind: TimerKind, previous: Option<i64>, deadline: i64) {
        self.disarm(key, kind, previous);
        self.0.insert((deadline, kind, key.clone()));
    }

    /// Cancels `kind` for the call if it was armed at `deadline`.
    pub fn disarm(&mut self, key: &Arc<str>, kind: TimerKind, deadline: Option<i64>) {
        if let Some(d) = deadline {
            self.0.remove(&(d, kind, key.clone()));
        }
    }

    /// Removes and returns the earliest timer due strictly before `t`.
    pub fn pop_before(&mut self, t: i64) -> Option<(i64, TimerKind, Arc<str>)> {
        if self.0.first()?.0 >= t {
            return None;
        }
        self.0.pop_first()
    }

    /// The earliest deadline.
    pub fn next(&self) -> Option<i64> {
        self.0.first().map(|t| t.0)
    }

    /// Number of armed timers.
    pub fn len(&self) -> usize {
        self.0.len()
    }
}
