//! One integration test binary: it runs the real `assent` (and `assent-collector`)
//! binaries on fixture roots and on this machine. The harness is `assent-testkit`.

/// A wall clock that jumps (libfaketime): 1970 boots, NTP corrections.
mod clock;
/// Consent, config and identity through the CLI; raw identifiers never leave.
mod consent;
/// The control socket as a settings screen uses it, as real users and groups.
mod control;
/// The daemon as a process: systemd notification, connectivity in a network namespace,
/// the events socket under load and SIGKILL.
mod daemon;
/// Live values on this machine against tools we did not write.
mod live;
/// `collect --preview` on the fixture roots, against golden files.
mod preview;
/// Fault-matrix rows no other module covers.
mod reliability;
/// Sync end to end: real collector, real TLS, fault proxy, SIGKILL.
mod sync;
/// The systemd unit: verification and exposure score.
mod systemd;
