//! The service's notion of "now": the system clock, or a manual one that tests move by hand.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use chrono::{DateTime, Utc};

#[derive(Debug, Clone, Default)]
pub enum Clock {
    #[default]
    System,
    /// Milliseconds since the epoch, moved only by [`Clock::advance`].
    Manual(Arc<AtomicI64>),
}

impl Clock {
    pub fn manual(start: DateTime<Utc>) -> Clock {
        Clock::Manual(Arc::new(AtomicI64::new(start.timestamp_millis())))
    }

    pub fn now_ms(&self) -> i64 {
        match self {
            Clock::System => Utc::now().timestamp_millis(),
            Clock::Manual(ms) => ms.load(Ordering::SeqCst),
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(self.now_ms()).expect("the clock is within chrono's range")
    }

    /// Moves a manual clock forward; a no-op on the system clock.
    pub fn advance(&self, by: std::time::Duration) {
        if let Clock::Manual(ms) = self {
            ms.fetch_add(by.as_millis() as i64, Ordering::SeqCst);
        }
    }
}

/// A duration in whole milliseconds, the unit of every stored time.
pub fn millis(duration: std::time::Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}
