//! The `bankml` command line: the edge where errors become messages and exit codes.

mod cli;

use clap::Parser;
use std::process::ExitCode;

/// mimalloc, not glibc's malloc: glibc gives every large column (10M values are 80 MB) its own
/// `mmap` and returns it on free, so the kernel zeroes fresh pages again and again — a fifth of
/// the 10M daily benchmark's CPU was `clear_page`. When freed memory goes back: `allocator`.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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

/// XGBoost's OpenMP reads its wait policy once, when the process loads it — before `main`, so
/// setting it here would be too late (`models::boosted::OPENMP_SLEEPS_WHEN_IDLE` says why it
/// matters). The commands that train, or serve beside the jobs (the daemon), therefore start
/// once more with it set, unless the caller chose a policy. Job attempts get it from the runner
/// (`engine::process`). If the restart cannot happen, the command runs as it is.
fn restart_with_passive_openmp(command: &cli::Command) {
    use bankml::models::boosted::OPENMP_SLEEPS_WHEN_IDLE;
    use std::os::unix::process::CommandExt;
    let trains_or_serves = matches!(
        command,
        cli::Command::Train(_) | cli::Command::Worker(_) | cli::Command::Daemon(_)
    );
    let (variable, value) = OPENMP_SLEEPS_WHEN_IDLE;
    if !trains_or_serves || std::env::var_os(variable).is_some() {
        return;
    }
    let Ok(program) = std::env::current_exe() else {
        return;
    };
    let mut args = std::env::args_os();
    let name = args.next().unwrap_or_else(|| program.clone().into_os_string());
    // `exec` replaces this process (same pid, same files) and returns only if it failed.
    let _failed = std::process::Command::new(&program)
        .arg0(name)
        .args(args)
        .env(variable, value)
        .exec();
}

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    restart_with_passive_openmp(&args.command);
    if ends_quietly_on_a_closed_pipe(&args.command) {
        // SAFETY: restores the default disposition of one signal before any thread exists.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    }
    match &args.command {
        cli::Command::Daemon(_) => bankml::allocator::give_freed_memory_back(),
        cli::Command::Train(_) | cli::Command::Worker(_) => bankml::allocator::tune_for_batch_work(true),
        cli::Command::Run(run) => bankml::allocator::tune_for_batch_work(run.trains()),
        _ => bankml::allocator::tune_for_batch_work(false),
    }
    cli::init_logging(
        args.verbose,
        matches!(args.command, cli::Command::Daemon(_)),
        args.log_format,
    );
    let code = match cli::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            let code = cli::exit_code(&error);
            eprintln!("error: {error:#}");
            ExitCode::from(code)
        }
    };
    bankml::allocator::skip_purge_at_exit();
    code
}
