//! One integration test binary: it runs the real `assent` binary on fixture roots and
//! on this machine.

mod clock;
#[path = "../../collector/tests/support/mod.rs"]
mod collector_support;
mod consent;
mod control;
mod daemon;
mod fault_proxy;
mod live;
mod preview;
mod reliability;
mod sync;
mod systemd;
mod util;
