//! One integration test binary: it runs the real `assent` binary on fixture roots and
//! on this machine.

#[path = "../../platform/tests/support/bus.rs"]
mod bus_support;
mod cellular;
mod clock;
#[path = "../../collector/tests/support/mod.rs"]
mod collector_support;
mod consent;
mod daemon;
mod dev_run;
mod fault_proxy;
mod live;
mod nginx;
mod nspawn;
mod preview;
mod reliability;
mod stalled_collector;
mod sync;
mod systemd;
mod util;
