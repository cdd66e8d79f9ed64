//! One integration test binary: it runs the real `assent` binary on fixture roots and
//! on this machine.

mod consent;
mod live;
mod preview;
mod util;
