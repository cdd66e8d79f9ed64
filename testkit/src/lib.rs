//! The test harness every test crate uses (not published): real processes and real
//! peers, never mocks.
//!
//! - [`fixtures`]: the workspace, committed fixture roots, [`MaterializedRoot`] (the
//!   garbage root with what git cannot hold), [`run_ok`], [`sqlite`] (the `sqlite3` tool
//!   on a database file).
//! - [`binaries`]: the real `assent` binary (under `ASSENT_TEST_RUNNER`, e.g. qemu).
//! - [`bus`]: a private system bus with the fake ModemManager on it.
//! - [`collector`]: a throw-away PKI, a running `assent-collector`, HTTPS clients.
//! - [`pg`]: the PostgreSQL test cluster (`ASSENT_TEST_PG`), a database per test,
//!   [`on_both_backends!`] for suites that run on SQLite and PostgreSQL.
//! - [`fault_proxy`]: a TLS-terminating proxy that injects faults.
//! - [`device`]: a device (config and state directory) and its running daemon.
//! - [`packages`]: a generated root with thousands of dpkg packages.
//!
//! Panicking is how a harness fails a test, so `unwrap`, `expect` and `panic!` are
//! allowed here as in tests.

#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// Harness types hold processes, sockets and TLS sessions; tests never print them.
#![allow(missing_debug_implementations)]

pub mod binaries;
pub mod bus;
pub mod collector;
pub mod device;
pub mod fault_proxy;
pub mod fixtures;
pub mod packages;
pub mod pg;

pub use binaries::{assent, binary_path};
pub use device::{Daemon, Device};
pub use fixtures::{fixture_root, run_ok, sqlite, workspace, MaterializedRoot, FIXTURES};
