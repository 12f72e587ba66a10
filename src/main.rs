//! The `bankml` command line: the edge where errors become messages and exit codes.

mod cli;

use clap::Parser;
use std::process::ExitCode;

/// mimalloc, not glibc's malloc: glibc gives every large column (10M values are 80 MB) its own
/// `mmap` and returns it on free, so the kernel zeroes fresh pages again and again — a fifth of
/// the 10M daily benchmark's CPU was `clear_page`.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's option number for "purge freed memory after this many ms" (its `mimalloc.h`,
/// v3; `libmimalloc-sys` exports no constant for it).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// A command that runs one piece of work and exits keeps the pages it freed for its next
/// allocation, in 4 KiB pages. Measured on the 10M daily benchmark (side by side, same code):
/// with mimalloc's defaults — purge freed memory after a delay, transparent huge pages on its
/// arenas — a third of the CPU was the kernel zeroing pages again (`clear_page`, mostly 2 MiB at
/// a time); with glibc's malloc a fifth. The daemon, which lives for months and idles between
/// runs, gives memory back (`give_freed_memory_back`); its runs are `bankml run` children,
/// which call this themselves.
///
/// Training keeps mimalloc's purging: its buffers come and go in phases (the design, XGBoost's
/// matrix, the holdout) and keeping every freed page raised `train --model churn`'s peak at 1M
/// from 1.21 to 1.84 GiB, a risk where 10M already peaks at 11 GiB.
fn tune_allocator_for_batch_work(trains: bool) {
    if !trains {
        // SAFETY: sets one integer option of the allocator; any value is valid for this option.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
    }
    // SAFETY: PR_SET_THP_DISABLE takes plain integers and touches no memory of ours; failing
    // (an old kernel) leaves huge pages on, which is only slower.
    unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
}

/// The daemon lives for months and is idle between requests and runs: what it frees goes back
/// to the kernel at once, as glibc's malloc did. With mimalloc's delayed purge nothing is
/// purged while no one allocates, and the daemon stayed at 900 MiB after loading the 1M
/// bank's champions and snapshot for its first prediction (434 MiB with glibc).
fn give_freed_memory_back() {
    // SAFETY: sets one integer option of the allocator; any value is valid for this option.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0) };
}

/// Commands whose output is the point — a listing someone pipes into `head` or `grep` — end
/// quietly when the reader goes away, as `ls` does: Rust ignores SIGPIPE, so the next
/// `println!` panicked with "failed printing to stdout: Broken pipe" and exit code 101. The
/// commands that do work (a run, a training, the daemon) keep ignoring it: their reader
/// leaving must not stop the work half-way; they print a summary only at the end.
fn ends_quietly_on_a_closed_pipe(command: &cli::Command) -> bool {
    use cli::Command::*;
    match command {
        Runs(_) | Alerts(_) | Models(_) | Evaluate(_) | ValidateConfig => true,
        Daemon(_) | Run(_) | Backfill(_) | Generate(_) | Features(_) | Train(_) | Bucketize(_) | Worker(_)
        | Score(_) | Bench(_) => false,
    }
}

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    if ends_quietly_on_a_closed_pipe(&args.command) {
        // SAFETY: restores the default disposition of one signal before any thread exists.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    }
    match &args.command {
        cli::Command::Daemon(_) => give_freed_memory_back(),
        cli::Command::Train(_) | cli::Command::Worker(_) => tune_allocator_for_batch_work(true),
        cli::Command::Run(run) => tune_allocator_for_batch_work(run.trains()),
        _ => tune_allocator_for_batch_work(false),
    }
    cli::init_logging(
        args.verbose,
        matches!(args.command, cli::Command::Daemon(_)),
        args.log_format,
    );
    match cli::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            let code = cli::exit_code(&error);
            eprintln!("error: {error:#}");
            ExitCode::from(code)
        }
    }
}
