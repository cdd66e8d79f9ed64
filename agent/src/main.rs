//! `assent`: the device agent. This binary is glue: it parses the command line, then
//! calls the `platform` readers (and, later, the consent, store and sync layers).
//!
//! Only `cli` prints; everything else returns values or logs through `log`.

mod cli;
// The operator config. Not used by the binary yet: `check-config` and the daemon are
// wired to it next; until then it is exercised by its tests.
#[allow(dead_code)]
mod config;
mod logger;
mod preview;

fn main() -> std::process::ExitCode {
    cli::main()
}
