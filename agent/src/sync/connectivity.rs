//! Connectivity: whether sending can be attempted now, and a watcher that notices when
//! that changes without polling.
//!
//! The watcher subscribes to the NETLINK_ROUTE multicast groups for links, addresses and
//! routes and uses each message only as a trigger: after a short debounce it re-reads
//! the whole state (interfaces and default routes, through the `platform` network
//! reader). A lost message (ENOBUFS on an overrun socket) therefore needs no special
//! repair beyond the same full re-read.

use crate::config::Config;
use assent_platform::Root;
use nix::sys::socket::{
    bind, recv, socket, AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType,
};
use serde::Serialize;
use smol::Async;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Duration;

// Multicast groups from <linux/rtnetlink.h>.
const RTMGRP_LINK: u32 = 0x1;
const RTMGRP_IPV4_IFADDR: u32 = 0x10;
const RTMGRP_IPV4_ROUTE: u32 = 0x40;
const RTMGRP_IPV6_IFADDR: u32 = 0x100;
const RTMGRP_IPV6_ROUTE: u32 = 0x400;

/// How long a burst of netlink messages may last before the state is re-read.
pub const DEBOUNCE: Duration = Duration::from_millis(300);

/// Whether the device can reach the network, and over what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Connectivity {
    /// A non-loopback interface is up and a default route exists.
    pub online: bool,
    /// The interface carrying the default route.
    pub route_interface: Option<String>,
    /// Whether that interface is metered (cellular, ppp, or listed in the config).
    pub metered: bool,
}

impl Connectivity {
    /// Reads the current state under `root` (`/` on a device).
    pub fn read(root: &Root, config: &Config) -> Connectivity {
        let network = assent_platform::network::read(root);
        let interfaces = network.interfaces.present().cloned().unwrap_or_default();
        let route = network
            .default_route_ipv4
            .present()
            .cloned()
            .flatten()
            .or_else(|| network.default_route_ipv6.present().cloned().flatten());
        let is_up = |name: &str| {
            interfaces.iter().any(|i| {
                i.name == name
                    && i.kind.present().map(String::as_str) != Some("loopback")
                    // ppp and some tunnels report "unknown" while passing traffic.
                    && matches!(i.operstate.present().map(String::as_str), Some("up" | "unknown"))
            })
        };
        let route_interface = route.map(|r| r.interface).filter(|name| is_up(name));
        let metered = route_interface.as_ref().is_some_and(|name| {
            interfaces.iter().any(|i| &i.name == name && i.metered)
                || config.sync.metered_interfaces.contains(name)
        });
        Connectivity {
            online: route_interface.is_some(),
            route_interface,
            metered,
        }
    }
}

/// A NETLINK_ROUTE socket subscribed to link, address and route changes.
#[derive(Debug)]
pub struct RouteWatcher {
    socket: Async<OwnedFd>,
    buffer: Vec<u8>,
}

impl RouteWatcher {
    pub fn open() -> Result<RouteWatcher, String> {
        let fd = socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
            SockProtocol::NetlinkRoute,
        )
        .map_err(|e| format!("netlink socket: {e}"))?;
        let groups = RTMGRP_LINK
            | RTMGRP_IPV4_IFADDR
            | RTMGRP_IPV6_IFADDR
            | RTMGRP_IPV4_ROUTE
            | RTMGRP_IPV6_ROUTE;
        bind(fd.as_raw_fd(), &NetlinkAddr::new(0, groups))
            .map_err(|e| format!("netlink bind: {e}"))?;
        let socket = Async::new(fd).map_err(|e| format!("netlink socket: {e}"))?;
        Ok(RouteWatcher {
            socket,
            buffer: vec![0; 32 * 1024],
        })
    }

    /// Waits for the next change (or a lost-message overrun), then for the burst to
    /// settle. The caller re-reads the state afterwards.
    pub async fn changed(&mut self) -> Result<(), String> {
        self.receive().await?;
        // Drain whatever else arrives within the debounce window.
        loop {
            let more = self.receive().or_timeout(DEBOUNCE).await;
            match more {
                Some(Ok(())) => continue,
                Some(Err(e)) => return Err(e),
                None => return Ok(()),
            }
        }
    }

    async fn receive(&mut self) -> Result<(), String> {
        let buffer = &mut self.buffer;
        let received = self
            .socket
            .read_with(|fd| {
                recv(fd.as_raw_fd(), buffer, MsgFlags::empty()).map_err(std::io::Error::from)
            })
            .await;
        match received {
            Ok(n) => {
                log::trace!("netlink: {n} bytes of route/link/address change");
                Ok(())
            }
            // The kernel dropped messages: a full re-read follows anyway.
            Err(e) if e.raw_os_error() == Some(nix::errno::Errno::ENOBUFS as i32) => {
                log::debug!("netlink overrun (ENOBUFS): re-reading the whole state");
                Ok(())
            }
            Err(e) => Err(format!("netlink: {e}")),
        }
    }
}

/// `future.or_timeout(d)`: `None` when `d` passes first.
trait OrTimeout: std::future::Future + Sized {
    async fn or_timeout(self, limit: Duration) -> Option<Self::Output> {
        use smol::future::FutureExt;
        async { Some(self.await) }
            .or(async {
                smol::Timer::after(limit).await;
                None
            })
            .await
    }
}

impl<F: std::future::Future> OrTimeout for F {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn config() -> Config {
        Config::parse(Path::new("/etc/assent/assent.toml"), "").unwrap()
    }

    fn fixture(name: &str) -> Root {
        Root::at(format!(
            "{}/../tests/fixtures/roots/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
    }

    #[test]
    fn a_fixture_with_an_ethernet_default_route_is_online_and_unmetered() {
        let c = Connectivity::read(&fixture("rpi4-raspios64"), &config());
        assert_eq!(c.route_interface.as_deref(), Some("eth0"));
        assert!(c.online && !c.metered);
    }

    #[test]
    fn a_listed_interface_is_metered() {
        let mut config = config();
        config.sync.metered_interfaces = vec!["eth0".into()];
        let c = Connectivity::read(&fixture("rpi4-raspios64"), &config);
        assert!(c.metered);
    }
}
