//! The command line: argument parsing (`args.rs`, argh), what each command does
//! (`commands/`, one file per group of subcommands), how results are shown
//! (`render.rs`) and every exit status (`exit.rs`). The only module that prints: the
//! rest of the agent returns values and errors, and logs.
//!
//! Never holds state between commands, and never talks to the daemon except through
//! the control socket (`control::request`) or the events socket (`events::emit`).
#![allow(clippy::print_stderr)]

/// Writes a line to stdout. A reader that went away (`assent ... | head`) is not an
/// error worth a panic: the first failed write is remembered and decides the exit status.
macro_rules! out {
    ($($arg:tt)*) => { $crate::cli::write_stdout(format_args!("{}\n", format_args!($($arg)*))) };
}

/// Like `out!` without the newline.
macro_rules! out_raw {
    ($($arg:tt)*) => { $crate::cli::write_stdout(format_args!($($arg)*)) };
}

mod args;
mod commands;
pub mod exit;
mod render;

use crate::unix::logger;
use args::{Args, Command};
use exit::{Exit, Failure};
use std::process::ExitCode;

thread_local! {
    static STDOUT_ERROR: std::cell::RefCell<Option<std::io::ErrorKind>> =
        const { std::cell::RefCell::new(None) };
}

pub(crate) fn write_stdout(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let failed = STDOUT_ERROR.with(|e| e.borrow().is_some());
    if failed {
        return;
    }
    if let Err(e) = std::io::stdout().lock().write_fmt(args) {
        STDOUT_ERROR.with(|slot| *slot.borrow_mut() = Some(e.kind()));
    }
}

pub fn main() -> ExitCode {
    let code = run();
    use std::io::Write;
    let flushed = std::io::stdout().lock().flush();
    let error = STDOUT_ERROR
        .with(|e| *e.borrow())
        .or(flushed.err().map(|e| e.kind()));
    match error {
        // The reader closed the pipe: stop quietly, as the SIGPIPE default would.
        Some(std::io::ErrorKind::BrokenPipe) => ExitCode::from(Exit::BrokenPipe),
        Some(kind) => {
            eprintln!("assent: cannot write to standard output: {kind}");
            ExitCode::from(Exit::IoError)
        }
        None => code,
    }
}

fn run() -> ExitCode {
    logger::init(log::LevelFilter::Warn);
    let args = match parse_args() {
        Ok(args) => args,
        Err(code) => return code,
    };
    if args.version {
        out!("assent {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    let result = match args.command {
        Some(Command::Collect(c)) => commands::collect::collect(c),
        Some(Command::CheckConfig(c)) => commands::check_config::check_config(c),
        Some(Command::Consent(c)) => commands::consent::consent(c),
        Some(Command::ResetId(c)) => commands::owner::reset_id(c),
        Some(Command::Sync(c)) => commands::sync::sync(c),
        Some(Command::Run(c)) => commands::daemon::run_daemon(c),
        Some(Command::Status(c)) => commands::daemon::status(c),
        Some(Command::Export(c)) => commands::owner::export(c),
        Some(Command::Erase(c)) => commands::owner::erase(c.config, c.remote, false),
        Some(Command::Forget(c)) => commands::owner::erase(c.config, true, true),
        Some(Command::Emit(c)) => commands::daemon::emit(c),
        Some(Command::Control(c)) => commands::daemon::control_request(c),
        None => Err(Failure::usage(
            "no command given; run `assent --help` to see them",
        )),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            let message = f.message.trim_end();
            if logger::journald() {
                // Under journald a line without a `<N>` prefix is logged at info.
                for line in message.lines() {
                    eprintln!("<3>{line}");
                }
            } else {
                eprintln!("{message}");
            }
            ExitCode::from(f.code)
        }
    }
}

/// The command line, parsed. Not `argh::from_env`, which exits 1 on a usage error:
/// `--help` prints to stdout and exits 0, every usage error exits 64 (EX_USAGE).
fn parse_args() -> Result<Args, ExitCode> {
    use argh::FromArgs;
    let mut words = Vec::new();
    for arg in std::env::args_os().skip(1) {
        match arg.into_string() {
            Ok(word) => words.push(word),
            Err(arg) => {
                eprintln!("assent: argument {arg:?} is not valid UTF-8");
                return Err(ExitCode::from(Exit::Usage));
            }
        }
    }
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    match Args::from_args(&["assent"], &words) {
        Ok(args) => Ok(args),
        Err(argh::EarlyExit {
            output,
            status: Ok(()),
        }) => {
            out_raw!("{output}");
            Err(ExitCode::SUCCESS)
        }
        Err(argh::EarlyExit {
            output,
            status: Err(()),
        }) => {
            eprintln!("assent: {}", output.trim_end());
            eprintln!("run `assent --help` to see the commands and their flags");
            Err(ExitCode::from(Exit::Usage))
        }
    }
}
