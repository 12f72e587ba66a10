//! Wall time for the scheduler, behind a trait: the daemon reads the system clock, tests read a
//! clock that moves with tokio's paused time, so a simulated year runs in seconds.

use chrono::{DateTime, Utc};

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// `start` plus the real time passed since it was made: a backfilled run's clock, at its
/// snapshot's date, with true durations.
pub struct StartingAt {
    start: DateTime<Utc>,
    origin: std::time::Instant,
}

impl StartingAt {
    pub fn new(start: DateTime<Utc>) -> StartingAt {
        StartingAt {
            start,
            origin: std::time::Instant::now(),
        }
    }
}

impl Clock for StartingAt {
    fn now(&self) -> DateTime<Utc> {
        self.start + chrono::Duration::from_std(self.origin.elapsed()).unwrap_or(chrono::Duration::zero())
    }
}

/// `start` plus the time tokio says has passed: under `tokio::time::pause()` it advances only
/// as the runtime's timers do.
pub struct TokioClock {
    start: DateTime<Utc>,
    origin: tokio::time::Instant,
}

impl TokioClock {
    pub fn new(start: DateTime<Utc>) -> TokioClock {
        TokioClock {
            start,
            origin: tokio::time::Instant::now(),
        }
    }
}

impl Clock for TokioClock {
    fn now(&self) -> DateTime<Utc> {
        let elapsed = tokio::time::Instant::now().duration_since(self.origin);
        self.start + chrono::Duration::from_std(elapsed).unwrap_or(chrono::Duration::zero())
    }
}
