//! `assent`: the device agent as a library; `main.rs` only calls [`cli::main`]. The
//! modules are grouped by subsystem, and each folder's `mod.rs` says what it owns and
//! what it never does. The map is `ARCHITECTURE.md`.
//!
//! Only `cli` prints; everything else returns values or logs through `log`.

#![forbid(unsafe_code)]

pub mod cli;
pub mod collect;
pub mod config;
pub mod consent;
pub mod control;
pub mod daemon;
pub mod events;
pub mod local;
pub mod sync;
pub mod unix;
pub mod worker;
