//! One integration test binary: it runs the real `assent` (and `assent-collector`)
//! binaries on fixture roots and on this machine. The harness is `assent-testkit`.

/// Cellular modems on a private system bus with a fake ModemManager.
mod cellular;
/// A wall clock that jumps (libfaketime): 1970 boots, NTP corrections.
mod clock;
/// Consent, config and identity through the CLI; raw identifiers never leave.
mod consent;
/// The control socket as a settings screen uses it, as real users and groups.
mod control;
/// The daemon as a process: systemd notification, connectivity in a network namespace,
/// the events socket under load and SIGKILL.
mod daemon;
/// `make run` as a new user meets it, and `make help`.
mod dev_run;
/// A new user's first hour: withdrawal reaches the collector at once, errors that guide,
/// output a person reads.
mod first_hour;
/// Package inventories of 3,000 packages under small buffers, rebuilt by the collector.
mod inventory;
/// Live values on this machine against tools we did not write.
mod live;
/// Agents syncing through Debian's nginx in front of the collector.
mod nginx;
/// The shipped unit under a real systemd (a Debian 12 root booted by systemd-nspawn).
mod nspawn;
/// `collect --preview` on the fixture roots, against golden files.
mod preview;
/// Staged upgrades: the v2 agent against a v1-only collector (`max_protocol = 1`).
mod protocol_fallback;
/// Fault-matrix rows no other module covers.
mod reliability;
/// A collector that never answers or trickles: the stage timeouts fire, nothing lost.
mod stalled_collector;
/// Sync end to end: real collector, real TLS, fault proxy, SIGKILL.
mod sync;
/// The systemd unit: verification and exposure score.
mod systemd;
