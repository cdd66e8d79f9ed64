//! One integration test binary: it runs the real `assent` binary on fixture roots and
//! on this machine.

#[path = "../../collector/tests/support/mod.rs"]
mod collector_support;
mod clock;
mod consent;
mod daemon;
mod fault_proxy;
mod live;
mod preview;
mod sync;
mod systemd;
mod util;
