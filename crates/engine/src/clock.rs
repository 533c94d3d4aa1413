//! The engine's time source, injected so live timers are tested without waiting on the wall
//! clock: [`TimeSource::System`] in production, [`TimeSource::manual`] in tests, which moves
//! only when the test advances it.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use switchboard_core::time::now_ms;

/// Where the engine reads "now" (epoch ms) and how it waits for a deadline.
#[derive(Clone, Debug)]
pub enum TimeSource {
    /// The wall clock (UTC).
    System,
    /// A clock that moves only by [`ManualClock::advance`] / [`ManualClock::set`].
    Manual(Arc<ManualClock>),
}

/// A test clock: epoch ms that move only when told.
#[derive(Debug)]
pub struct ManualClock {
    now: watch::Sender<i64>,
}

impl ManualClock {
    /// The current time, epoch ms.
    pub fn now_ms(&self) -> i64 {
        *self.now.borrow()
    }

    /// Moves the clock forward by `ms` milliseconds (waking whatever waits for a deadline).
    pub fn advance(&self, ms: i64) {
        self.now.send_modify(|t| *t += ms);
    }

    /// Sets the clock to `ms` (epoch ms).
    pub fn set(&self, ms: i64) {
        self.now.send_replace(ms);
    }
}

impl TimeSource {
    /// A manual clock starting at `start_ms` (epoch ms), and its handle.
    pub fn manual(start_ms: i64) -> (TimeSource, Arc<ManualClock>) {
        let c = Arc::new(ManualClock {
            now: watch::Sender::new(start_ms),
        });
        (TimeSource::Manual(c.clone()), c)
    }

    /// Now, epoch ms.
    pub fn now_ms(&self) -> i64 {
        match self {
            TimeSource::System => now_ms(),
            TimeSource::Manual(c) => c.now_ms(),
        }
    }

    /// Resolves once the clock reads at least `deadline_ms` (epoch ms). `None` waits forever.
    pub async fn sleep_until(&self, deadline_ms: Option<i64>) {
        match (self, deadline_ms) {
            (_, None) => std::future::pending().await,
            (TimeSource::System, Some(d)) => {
                let wait = d.saturating_sub(now_ms()).max(0) as u64;
                tokio::time::sleep(Duration::from_millis(wait)).await
            }
            (TimeSource::Manual(c), Some(d)) => {
                let mut rx = c.now.subscribe();
                let _ = rx.wait_for(|t| *t >= d).await;
            }
        }
    }
}
