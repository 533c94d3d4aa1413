//! The tenants the engine has loaded, each in a [`Slot`], and the schedule of their next live
//! timer deadlines (so the timer task visits only tenants with a timer due).
//!
//! A slot is created when its tenant is first used and is never replaced: a stale tenant's
//! state is reloaded in place, under its own lock.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use switchboard_core::TenantId;
use tokio::sync::Notify;

use crate::tenant::TenantState;

/// One loaded tenant.
pub(crate) struct Slot {
    /// The tenant's live state; every command takes this lock.
    pub state: Mutex<TenantState>,
    /// Set by the writer when a commit of this tenant failed: memory may be ahead of the store
    /// until the state is reloaded.
    stale: AtomicBool,
    /// The tenant's last durable sequence number.
    committed: AtomicI64,
    /// Serialises reloads.
    pub reload: tokio::sync::Mutex<()>,
}

impl Slot {
    pub fn new(state: TenantState) -> Self {
        let committed = state.head().last_seq;
        Slot {
            state: Mutex::new(state),
            stale: AtomicBool::new(false),
            committed: AtomicI64::new(committed),
            reload: tokio::sync::Mutex::new(()),
        }
    }

    pub fn is_stale(&self) -> bool {
        self.stale.load(Ordering::Acquire)
    }

    /// Marks the tenant stale; true when it was not stale before.
    pub fn mark_stale(&self) -> bool {
        !self.stale.swap(true, Ordering::AcqRel)
    }

    /// Puts a freshly loaded state in place and clears the stale mark.
    pub fn replace(&self, fresh: TenantState) {
        let committed = fresh.head().last_seq;
        let mut st = self.state.lock().expect("tenant lock");
        *st = fresh;
        self.committed.store(committed, Ordering::Release);
        if self.stale.swap(false, Ordering::AcqRel) {
            metrics::gauge!(switchboard_core::telemetry::STALE_TENANTS).decrement(1.0);
        }
    }

    pub fn committed(&self) -> i64 {
        self.committed.load(Ordering::Acquire)
    }

    pub fn set_committed(&self, seq: i64) {
        self.committed.fetch_max(seq, Ordering::AcqRel);
    }
}

/// Loaded tenants and the live-timer schedule.
#[derive(Default)]
pub(crate) struct Registry {
    slots: RwLock<HashMap<TenantId, Arc<Slot>>>,
    /// Serialises first loads, so a tenant is loaded once.
    pub loading: tokio::sync::Mutex<()>,
    next_epoch: AtomicU64,
    schedule: Mutex<Schedule>,
    /// Woken when a deadline earlier than the timer task's next one is scheduled.
    pub wake: Notify,
}

#[derive(Default)]
struct Schedule {
    due: BTreeSet<(i64, TenantId)>,
    by_tenant: HashMap<TenantId, i64>,
}

impl Registry {
    pub fn get(&self, id: &TenantId) -> Option<Arc<Slot>> {
        self.slots.read().expect("registry lock").get(id).cloned()
    }

    /// Inserts a slot unless one exists (then returns the existing one).
    pub fn insert(&self, id: TenantId, slot: Slot) -> Arc<Slot> {
        self.slots
            .write()
            .expect("registry lock")
            .entry(id)
            .or_insert_with(|| Arc::new(slot))
            .clone()
    }

    pub fn epoch(&self) -> u64 {
        self.next_epoch.fetch_add(1, Ordering::Relaxed) + 1
    }

    pub fn len(&self) -> usize {
        self.slots.read().expect("registry lock").len()
    }

    pub fn stale_count(&self) -> usize {
        self.slots
            .read()
            .expect("registry lock")
            .values()
            .filter(|s| s.is_stale())
            .count()
    }

    /// Records the tenant's next live deadline (`None`: nothing to fire by wall clock).
    pub fn schedule(&self, id: TenantId, next: Option<i64>) {
        let mut s = self.schedule.lock().expect("schedule lock");
        let old = s.by_tenant.get(&id).copied();
        if old == next {
            return;
        }
        if let Some(o) = old {
            s.due.remove(&(o, id));
            s.by_tenant.remove(&id);
        }
        if let Some(n) = next {
            let earliest = s.due.first().map(|d| d.0);
            s.due.insert((n, id));
            s.by_tenant.insert(id, n);
            if earliest.is_none_or(|e| n < e) {
                self.wake.notify_one();
            }
        }
    }

    /// The earliest scheduled deadline.
    pub fn next_due(&self) -> Option<i64> {
        self.schedule
            .lock()
            .expect("schedule lock")
            .due
            .first()
            .map(|d| d.0)
    }

    /// Removes and returns the tenants whose deadline is at or before `now`.
    pub fn take_due(&self, now: i64) -> Vec<TenantId> {
        let mut s = self.schedule.lock().expect("schedule lock");
        let mut out = Vec::new();
        while let Some(&(d, id)) = s.due.first() {
            if d > now {
                break;
            }
            s.due.pop_first();
            s.by_tenant.remove(&id);
            out.push(id);
        }
        out
    }
}
