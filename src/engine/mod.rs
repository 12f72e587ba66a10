//! The engine: when jobs run (scheduler, with the schedule computation in `schedule`), how
//! (runner: timeout, retries, overlap, catch-up; each attempt a child process) and what
//! happened (run history in SQLite).

pub mod clock;
pub mod history;
pub mod process;
pub mod runner;
pub mod scheduler;
