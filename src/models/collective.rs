//! XGBoost's collective — a tracker and its workers, who train one model together — over
//! `xgboost_lib-sys`'s bindings (the `xgb` crate wraps none of it), wrapped here once.
//!
//! A training run sees its fellow workers only through [`Peers`]: sums and gathers. The
//! single-process run is [`Solo`] (rank 0 of 1, every operation the identity), so one code
//! path trains both ways and one worker through the tracker gives the in-process model.
//!
//! XGBoost keeps the communicator in a thread-local: every call of a worker — its matrices,
//! its booster, these sums — must come from the thread that joined. [`Communicator`] is
//! therefore neither `Send` nor `Sync`, and [`Communicator::join`] checks the world size the
//! tracker reports, since a call from another thread would silently train alone.

use serde::Deserialize;
use std::ffi::{CStr, CString, c_int};
use std::marker::PhantomData;
use std::time::Duration;
use xgboost_lib_sys as sys;

#[derive(Debug, thiserror::Error)]
pub enum CollectiveError {
    #[error("XGBoost's collective: {0}")]
    Xgboost(String),
    #[error("worker {rank} of {world} cannot join the tracker at {tracker}: {message}")]
    Join {
        rank: usize,
        world: usize,
        tracker: String,
        message: String,
    },
    #[error(
        "the tracker put this worker at rank {got_rank} of {got_world}, expected rank {rank} of {world} (every worker must be started with the same --workers)"
    )]
    World {
        rank: usize,
        world: usize,
        got_rank: usize,
        got_world: usize,
    },
    #[error("{0}")]
    Disagreement(String),
}

type Result<T> = std::result::Result<T, CollectiveError>;

fn check(code: c_int) -> Result<()> {
    if code == 0 {
        Ok(())
    } else {
        Err(CollectiveError::Xgboost(super::quantile::last_error()))
    }
}

/// XGBoost's own messages ("Task 000001 got rank 1", connection retries), which it prints
/// on the terminal of whoever runs it, go to bankml's log instead: at `-v` they show with
/// the rest.
fn log_through_tracing() {
    unsafe extern "C" fn forward(message: *const std::ffi::c_char) {
        if message.is_null() {
            return;
        }
        // SAFETY: XGBoost passes a NUL-terminated message, valid during the call.
        let text = unsafe { CStr::from_ptr(message) }.to_string_lossy();
        tracing::info!(target: "bankml::xgboost", "{}", text.trim_end());
    }
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: `forward` is a plain function that lives as long as the process.
        unsafe { sys::XGBRegisterLogCallback(Some(forward)) };
    });
}

fn c_json(value: &serde_json::Value) -> Result<CString> {
    CString::new(value.to_string()).map_err(|_| CollectiveError::Xgboost("a NUL byte in a configuration".into()))
}

/// What a training run needs of its fellow workers.
pub trait Peers: std::fmt::Debug {
    /// This worker's place, 0 to `world() - 1`; rank 0 writes the model.
    fn rank(&self) -> usize;
    fn world(&self) -> usize;
    /// Element-wise sums over every worker, in place (each worker gets the same result).
    fn sum(&self, values: &mut [f64]) -> Result<()>;
    /// As [`Peers::sum`], for counts.
    fn sum_counts(&self, values: &mut [u64]) -> Result<()>;
    /// Every worker's `mine`, in rank order (each worker gets them all).
    fn gather(&self, mine: &[u8]) -> Result<Vec<Vec<u8>>>;
    /// Leaves the group: what XGBoost does after this on this thread is this process's alone
    /// (rank 0 finishing the run's statistics), and the operations above fail.
    fn leave(&self) -> Result<()>;

    /// Every worker's outcome of a step, so that all fail together, with the failing workers
    /// named, instead of the others waiting on them: `Err` when any worker's was.
    fn agree(&self, step: &str, outcome: std::result::Result<(), String>) -> Result<()> {
        let mine = match &outcome {
            Ok(()) => Vec::new(),
            Err(why) => why.clone().into_bytes(),
        };
        let all = self.gather(&mine)?;
        let failed: Vec<String> = all
            .iter()
            .enumerate()
            .filter(|(_, why)| !why.is_empty())
            .map(|(rank, why)| format!("worker {rank}: {}", String::from_utf8_lossy(why)))
            .collect();
        if failed.is_empty() {
            Ok(())
        } else {
            Err(CollectiveError::Disagreement(format!(
                "{step} failed on {}",
                failed.join("; ")
            )))
        }
    }
}

/// One process training alone: rank 0 of 1.
#[derive(Debug)]
pub struct Solo;

impl Peers for Solo {
    fn rank(&self) -> usize {
        0
    }
    fn world(&self) -> usize {
        1
    }
    fn sum(&self, _: &mut [f64]) -> Result<()> {
        Ok(())
    }
    fn sum_counts(&self, _: &mut [u64]) -> Result<()> {
        Ok(())
    }
    fn gather(&self, mine: &[u8]) -> Result<Vec<Vec<u8>>> {
        Ok(vec![mine.to_vec()])
    }
    fn leave(&self) -> Result<()> {
        Ok(())
    }
}

/// Where workers find the tracker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackerAddress {
    pub host: String,
    pub port: u16,
}

/// XGBoost's rabit tracker, running in the background of this process until dropped.
pub struct Tracker {
    handle: sys::TrackerHandle,
}

impl Drop for Tracker {
    fn drop(&mut self) {
        // SAFETY: the handle came from XGTrackerCreate and is freed once. Freeing a tracker
        // whose workers have not finished shuts its connections, which is what a failed run wants.
        unsafe { sys::XGTrackerFree(self.handle) };
    }
}

impl Tracker {
    /// A tracker for `workers` workers listening on `host:port` (port 0: any free one), sorting
    /// them by task id (so a worker's rank is its task id); network waits give up after `timeout`.
    pub fn start(workers: usize, host: &str, port: u16, timeout: Duration) -> Result<Tracker> {
        log_through_tracing();
        let config = c_json(&serde_json::json!({
            "dmlc_communicator": "rabit",
            "n_workers": workers,
            "host": host,
            "port": port,
            "sortby": 1,
            "timeout": timeout.as_secs().max(1),
        }))?;
        let mut handle: sys::TrackerHandle = std::ptr::null_mut();
        // SAFETY: a NUL-terminated JSON config; `handle` receives a new tracker.
        check(unsafe { sys::XGTrackerCreate(config.as_ptr(), &mut handle) })?;
        let tracker = Tracker { handle };
        let unused = c_json(&serde_json::json!({}))?;
        // SAFETY: a live tracker; the config is unused by XGBoost but must be valid JSON.
        check(unsafe { sys::XGTrackerRun(tracker.handle, unused.as_ptr()) })?;
        Ok(tracker)
    }

    /// The address the tracker listens on, as XGBoost tells its workers.
    pub fn address(&self) -> Result<TrackerAddress> {
        #[derive(Deserialize)]
        struct Args {
            dmlc_tracker_uri: String,
            dmlc_tracker_port: u16,
        }
        let mut out: *const std::ffi::c_char = std::ptr::null();
        // SAFETY: a live, running tracker; XGBoost returns a thread-local string.
        check(unsafe { sys::XGTrackerWorkerArgs(self.handle, &mut out) })?;
        // SAFETY: NUL-terminated, valid until the next call on this thread.
        let text = unsafe { CStr::from_ptr(out) }.to_string_lossy().into_owned();
        let args: Args = serde_json::from_str(&text)
            .map_err(|e| CollectiveError::Xgboost(format!("the tracker's worker arguments {text}: {e}")))?;
        Ok(TrackerAddress {
            host: args.dmlc_tracker_uri,
            port: args.dmlc_tracker_port,
        })
    }

    /// Waits until every worker has finished with the tracker.
    pub fn wait(self) -> Result<()> {
        let unused = c_json(&serde_json::json!({}))?;
        // SAFETY: a live tracker that was run.
        check(unsafe { sys::XGTrackerWaitFor(self.handle, unused.as_ptr()) })
    }
}

/// How many connection attempts XGBoost makes within `timeout`: it pauses 2·k seconds before
/// attempt k, so n attempts take n·(n − 1) seconds.
fn attempts_within(timeout: Duration) -> u64 {
    let seconds = timeout.as_secs();
    (1..=64u64).take_while(|n| n * (n - 1) <= seconds).last().unwrap_or(1)
}

/// XGBoost's data types and operations for `XGCommunicatorAllreduce`
/// (`ArrayInterfaceHandler::Type` and `collective::Op` in its source).
const KIND_F64: c_int = 2;
const KIND_U64: c_int = 11;
const OP_SUM: c_int = 2;

/// This process's membership of a group of workers, on this thread (see the module's doc).
#[derive(Debug)]
pub struct Communicator {
    rank: usize,
    world: usize,
    left: std::cell::Cell<bool>,
    /// XGBoost's communicator is thread-local: not `Send`, not `Sync`.
    _this_thread: PhantomData<*const ()>,
}

impl Drop for Communicator {
    fn drop(&mut self) {
        let _ = self.leave();
    }
}

impl Communicator {
    /// Joins the tracker at `tracker` as task `rank` of `world`, waiting up to `timeout` for
    /// the others; fails unless the tracker agrees on both.
    pub fn join(tracker: &TrackerAddress, rank: usize, world: usize, timeout: Duration) -> Result<Communicator> {
        log_through_tracing();
        let config = c_json(&serde_json::json!({
            "dmlc_communicator": "rabit",
            "dmlc_tracker_uri": tracker.host,
            "dmlc_tracker_port": tracker.port,
            // Zero-padded: the tracker sorts task ids as text.
            "dmlc_task_id": format!("{rank:06}"),
            // Connecting is retried with growing pauses (0, 2, 4 … s) within the timeout:
            // pods and processes start in any order, and the tracker may not listen yet.
            "dmlc_retry": attempts_within(timeout),
            "dmlc_timeout": timeout.as_secs().max(1),
        }))?;
        // SAFETY: a NUL-terminated JSON config.
        if unsafe { sys::XGCommunicatorInit(config.as_ptr()) } != 0 {
            return Err(CollectiveError::Join {
                rank,
                world,
                tracker: format!("{}:{}", tracker.host, tracker.port),
                message: super::quantile::last_error(),
            });
        }
        // SAFETY: plain queries of this thread's communicator.
        let (got_rank, got_world) = unsafe { (sys::XGCommunicatorGetRank(), sys::XGCommunicatorGetWorldSize()) };
        let joined = Communicator {
            rank: got_rank.max(0) as usize,
            world: got_world.max(0) as usize,
            left: std::cell::Cell::new(false),
            _this_thread: PhantomData,
        };
        if joined.rank != rank || joined.world != world {
            return Err(CollectiveError::World {
                rank,
                world,
                got_rank: joined.rank,
                got_world: joined.world,
            });
        }
        Ok(joined)
    }

    /// Fails once the group was left.
    fn present(&self) -> Result<()> {
        if self.left.get() {
            Err(CollectiveError::Xgboost("this worker has left the group".into()))
        } else {
            Ok(())
        }
    }

    fn broadcast(&self, buffer: &mut [u8], root: usize) -> Result<()> {
        self.present()?;
        if buffer.is_empty() {
            return Ok(());
        }
        // SAFETY: `buffer` is valid for its length; the communicator is this thread's.
        check(unsafe { sys::XGCommunicatorBroadcast(buffer.as_mut_ptr().cast(), buffer.len(), root as c_int) })
    }
}

impl Peers for Communicator {
    fn rank(&self) -> usize {
        self.rank
    }

    fn world(&self) -> usize {
        self.world
    }

    fn sum(&self, values: &mut [f64]) -> Result<()> {
        self.present()?;
        if values.is_empty() {
            return Ok(());
        }
        // SAFETY: `values` is valid for its length, of the type named; this thread's communicator.
        check(unsafe { sys::XGCommunicatorAllreduce(values.as_mut_ptr().cast(), values.len(), KIND_F64, OP_SUM) })
    }

    fn sum_counts(&self, values: &mut [u64]) -> Result<()> {
        self.present()?;
        if values.is_empty() {
            return Ok(());
        }
        // SAFETY: as in `sum`.
        check(unsafe { sys::XGCommunicatorAllreduce(values.as_mut_ptr().cast(), values.len(), KIND_U64, OP_SUM) })
    }

    /// Each worker's length summed into its own slot, then each worker's bytes broadcast from it.
    fn gather(&self, mine: &[u8]) -> Result<Vec<Vec<u8>>> {
        let mut lengths = vec![0u64; self.world];
        lengths[self.rank] = mine.len() as u64;
        self.sum_counts(&mut lengths)?;
        let mut all = Vec::with_capacity(self.world);
        for (root, length) in lengths.into_iter().enumerate() {
            let mut buffer = if root == self.rank {
                mine.to_vec()
            } else {
                vec![0u8; length as usize]
            };
            self.broadcast(&mut buffer, root)?;
            all.push(buffer);
        }
        Ok(all)
    }

    fn leave(&self) -> Result<()> {
        if self.left.replace(true) {
            return Ok(());
        }
        // SAFETY: joined on this thread (the type cannot leave it); finalized once.
        check(unsafe { sys::XGCommunicatorFinalize() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two workers on two threads (each its own thread-local communicator) through a tracker
    /// of this process: sums and gathers as if by hand.
    #[test]
    fn two_workers_sum_and_gather_through_a_tracker() {
        let tracker = Tracker::start(2, "127.0.0.1", 0, Duration::from_secs(30)).unwrap();
        let address = tracker.address().unwrap();
        let workers: Vec<_> = (0..2)
            .map(|rank| {
                let address = address.clone();
                std::thread::spawn(move || {
                    let peers = Communicator::join(&address, rank, 2, Duration::from_secs(30)).unwrap();
                    let mut values = [rank as f64 + 0.5, 10.0 * rank as f64];
                    peers.sum(&mut values).unwrap();
                    let mut counts = [rank as u64 + 1];
                    peers.sum_counts(&mut counts).unwrap();
                    let mine = vec![b'a' + rank as u8; rank + 1];
                    let all = peers.gather(&mine).unwrap();
                    let refused = peers.agree("the check", if rank == 1 { Err("no".into()) } else { Ok(()) });
                    (peers.rank(), values, counts, all, refused.map_err(|e| e.to_string()))
                })
            })
            .collect();
        for handle in workers {
            let (rank, values, counts, all, refused) = handle.join().unwrap();
            assert!(rank < 2);
            assert_eq!(values, [2.0, 10.0]);
            assert_eq!(counts, [3]);
            assert_eq!(all, vec![b"a".to_vec(), b"bb".to_vec()]);
            assert_eq!(refused, Err("the check failed on worker 1: no".to_string()));
        }
        tracker.wait().unwrap();
    }

    #[test]
    fn connection_attempts_fit_in_the_timeout() {
        assert_eq!(attempts_within(Duration::from_secs(1)), 1);
        assert_eq!(attempts_within(Duration::from_secs(60)), 8);
        assert_eq!(attempts_within(Duration::from_secs(300)), 17);
    }

    #[test]
    fn alone_every_operation_is_the_identity() {
        let mut values = [1.5, 2.5];
        Solo.sum(&mut values).unwrap();
        assert_eq!(values, [1.5, 2.5]);
        assert_eq!(Solo.gather(b"x").unwrap(), vec![b"x".to_vec()]);
        assert!(Solo.agree("step", Ok(())).is_ok());
        assert_eq!(
            Solo.agree("step", Err("why".into())).unwrap_err().to_string(),
            "step failed on worker 0: why"
        );
    }
}
