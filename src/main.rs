//! The `bankml` command line: the edge where errors become messages and exit codes.

mod cli;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
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
