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
mod emit;
mod events;
mod fsutil;
mod identity;
mod logger;
mod outbox;
mod preview;
mod sync;

fn main() -> std::process::ExitCode {
    cli::main()
}
