//! The systemd notification protocol (sd_notify): READY=1, STATUS=, WATCHDOG=1, written
//! as datagrams to `$NOTIFY_SOCKET` (a path, or `@name` in the abstract namespace).
//! Without `$NOTIFY_SOCKET` (not started by systemd) every call does nothing.

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

/// Sends one notification; failures are logged, never fatal.
pub fn send(state: &str) {
    let Some(target) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let target = target.to_string_lossy().to_string();
    let result = UnixDatagram::unbound().and_then(|socket| {
        if let Some(name) = target.strip_prefix('@') {
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
            socket.send_to_addr(state.as_bytes(), &addr)
        } else {
            socket.send_to(state.as_bytes(), &target)
        }
    });
    if let Err(e) = result {
        log::debug!("sd_notify to {target}: {e}");
    }
}

/// Half of the watchdog interval systemd asked for (`$WATCHDOG_USEC`), if it is meant
/// for this process (`$WATCHDOG_PID` unset or ours).
pub fn watchdog_period() -> Option<Duration> {
    if let Ok(pid) = std::env::var("WATCHDOG_PID") {
        if pid.trim() != std::process::id().to_string() {
            return None;
        }
    }
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.trim().parse().ok()?;
    (usec > 0).then(|| Duration::from_micros(usec / 2))
}
