//! `assent`: the device agent. This binary is glue: it parses the command line, then
//! runs one of the commands or the daemon over the library-like modules below and the
//! `platform`, `store` and `wire` crates.
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
mod emit;
mod events;
mod fsutil;
mod identity;
mod logger;
mod notify;
mod outbox;
mod owner;
mod preview;
mod sync;
mod worker;

fn main() -> std::process::ExitCode {
    cli::main()
}
