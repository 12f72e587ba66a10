//! The engine: when jobs run (scheduler) and how (runner, run history). This session lands
//! the schedule computation; the loop, runner and history arrive with the daemon.

pub mod schedule;
