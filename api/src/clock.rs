//! The registry's clock. Use cases read the present from the [`Clock`] in the
//! application state, never from the system clock directly, so that a test can move
//! time forward (a listing's expiry, a deadline, a token's end) instead of sleeping.

use chrono::{DateTime, Duration, Utc};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// The system clock plus an offset that only tests change (zero in production).
#[derive(Clone, Debug, Default)]
pub struct Clock {
    offset_micros: Arc<AtomicI64>,
}

impl Clock {
    pub fn system() -> Self {
        Self::default()
    }

    /// The current instant at storage precision (microseconds).
    pub fn now(&self) -> DateTime<Utc> {
        let offset = Duration::microseconds(self.offset_micros.load(Ordering::Relaxed));
        crate::domain::truncate_instant(Utc::now() + offset)
    }

    /// Moves this clock (and every clone of it) forward by `by`. For tests.
    pub fn advance(&self, by: Duration) {
        let micros = by.num_microseconds().unwrap_or(i64::MAX);
        self.offset_micros.fetch_add(micros, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_the_offset() {
        let clock = Clock::system();
        let other = clock.clone();
        let before = other.now();
        clock.advance(Duration::days(400));
        let after = other.now();
        assert!(after - before >= Duration::days(400));
        assert!(after - before < Duration::days(401));
    }
}
