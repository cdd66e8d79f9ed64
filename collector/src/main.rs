//! The `assent-collector` binary: glue between the command line and the library. Only
//! `cli` prints; everything else returns values or logs through `log`.

mod cli;
mod logger;

fn main() -> std::process::ExitCode {
    cli::main()
}
