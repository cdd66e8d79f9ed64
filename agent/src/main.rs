//! `assent`: the device agent. This binary is glue: it parses the command line, then
//! calls the `platform` readers (and, later, the consent, store and sync layers).
//!
//! Only `cli` prints; everything else returns values or logs through `log`.

mod buffer;
mod cli;
mod collect;
mod config;
mod connectivity;
mod consent;
mod control;
mod daemon;
mod fsutil;
mod identity;
mod logger;
mod notify;
mod outbox;
mod owner;
mod preview;
mod sync;

fn main() -> std::process::ExitCode {
    cli::main()
}
