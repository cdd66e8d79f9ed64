//! `assent`: the device agent's binary. Glue only: the command line and everything it
//! runs live in the library (`lib.rs`).

#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    assent::cli::main()
}
