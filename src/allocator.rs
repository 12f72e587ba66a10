//! When freed memory goes back to the kernel. The `bankml` binary allocates with mimalloc (see
//! `src/main.rs`); this module holds its policy, so that a job can hand memory back at the one
//! step where it matters and the command line sets the rest once at start.
//!
//! Why it matters: the kernel zeroes every page it hands out again, so giving memory back all
//! the time costs CPU (a third of the 10M daily benchmark's CPU was `clear_page` with
//! mimalloc's defaults), and never giving it back makes a run's peak the sum of phases that
//! never overlap (a cold daily benchmark's two feature builds: the second starts on top of
//! the first's high-water mark).
//!
//! In the library's own tests mimalloc is not the global allocator: these calls then act on
//! an allocator that holds nothing, which is harmless.

/// mimalloc's option number for "purge freed memory after this many ms" (its `mimalloc.h`,
/// v3; `libmimalloc-sys` exports no constant for it).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// A delay no batch run reaches (a day, in ms): freed memory is marked for the kernel but kept
/// until [`return_freed_memory`] asks for it. With "never" (-1) mimalloc does not even mark
/// what was freed, and a later request could return nothing.
const HELD_UNTIL_ASKED_MS: libc::c_long = 24 * 60 * 60 * 1000;

/// A command that runs one piece of work and exits keeps the pages it freed for its next
/// allocation, in 4 KiB pages. Measured on the 10M daily benchmark (side by side, same code):
/// with mimalloc's defaults — purge freed memory after a delay, transparent huge pages on its
/// arenas — a third of the CPU was the kernel zeroing pages again (`clear_page`, mostly 2 MiB at
/// a time); with glibc's malloc a fifth. The daemon, which lives for months and idles between
/// runs, gives memory back ([`give_freed_memory_back`]); its runs are `bankml run` children,
/// which call this themselves.
///
/// Training keeps mimalloc's purging: its buffers come and go in phases (the design, XGBoost's
/// matrix, the holdout) and keeping every freed page raised `train --model churn`'s peak at 1M
/// from 1.21 to 1.84 GiB, a risk where 10M already peaks at 11 GiB.
pub fn tune_for_batch_work(trains: bool) {
    if !trains {
        set_purge_delay(HELD_UNTIL_ASKED_MS);
    }
    // SAFETY: PR_SET_THP_DISABLE takes plain integers and touches no memory of ours; failing
    // (an old kernel) leaves huge pages on, which is only slower.
    unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
}

/// The daemon lives for months and is idle between requests and runs: what it frees goes back
/// to the kernel at once, as glibc's malloc did. With mimalloc's delayed purge nothing is
/// purged while no one allocates, and the daemon stayed at 900 MiB after loading the 1M
/// bank's champions and snapshot for its first prediction (434 MiB with glibc).
pub fn give_freed_memory_back() {
    set_purge_delay(0);
}

/// For the end of `main`: the kernel takes the whole address space back when the process
/// exits, so mimalloc's own clean-up at exit must not purge first. It did (a forced
/// collection of the main thread's heap, which purges every arena page still held): 3.6 % of a
/// warm 1M daily benchmark's CPU samples went to those `madvise` calls, on the run's last,
/// single-threaded step. With purging turned off the collection leaves the pages in place.
pub fn skip_purge_at_exit() {
    set_purge_delay(-1);
}

/// mimalloc's purge delay in ms: 0 purges freed memory at once, a negative delay never.
fn set_purge_delay(ms: libc::c_long) {
    // SAFETY: sets one integer option of the allocator; any value is valid for this option.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, ms) };
}

/// Hands what has been freed so far back to the kernel now: for the step between two phases
/// whose peaks would otherwise stack. The next phase's pages are faulted in and zeroed once
/// more: measured ~0.25 s per GiB at a million clients, ~1 s per GiB at ten million (where
/// the kernel also has to reclaim page cache to find them). Every worker thread — polars' and
/// rayon's — collects its own heap: mimalloc keeps a thread's emptied pages with that thread,
/// and most of a build's memory is allocated and freed on the workers.
pub fn return_freed_memory() {
    let collect = || {
        // SAFETY: a forced collection of the calling thread's allocator heap and of the
        // shared arenas; it touches no memory of ours and may be called on any thread.
        unsafe { libmimalloc_sys::mi_collect(true) };
    };
    polars_core::runtime::THREAD_POOL.broadcast(|_| collect());
    rayon::broadcast(|_| collect());
    collect();
}
