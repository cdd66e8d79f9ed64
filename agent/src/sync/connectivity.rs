//! Connectivity: whether sending can be attempted now, and a watcher that notices when
//! that changes without polling.
//!
//! The watcher subscribes to the NETLINK_ROUTE multicast groups for links, addresses and
//! routes and uses each message only as a trigger: after a short debounce it re-reads
//! the whole state. A lost message (ENOBUFS on an overrun socket) therefore needs no
//! special repair beyond the same full re-read.
//!
//! The state is this module's own minimal link and route check: the default routes in
//! `/proc/net/route` and `/proc/net/ipv6_route`, then the route interface's `operstate`,
//! `type`, `uevent` and `wireless/` in `/sys/class/net`, parsed with the platform's pure
//! parsers. It never calls the `network` category reader (which also reads addresses,
//! hardware addresses and DNS): that reader runs only when `network` consent is active.

use crate::config::Config;
use assent_platform::network;
use assent_platform::read::{ATTRIBUTE_LIMIT, TEXT_LIMIT};
use assent_platform::{Field, Root};
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
        let route_interface = default_route_interface(root).filter(|name| link_is_up(root, name));
        let metered = route_interface.as_ref().is_some_and(|name| {
            link_kind(root, name).is_some_and(|kind| matches!(kind.as_str(), "cellular" | "ppp"))
                || config.sync.metered_interfaces.contains(name)
        });
        Connectivity {
            online: route_interface.is_some(),
            route_interface,
            metered,
        }
    }
}

/// The interface of the IPv4 default route with the lowest metric, else of the IPv6 one.
fn default_route_interface(root: &Root) -> Option<String> {
    let ipv4 = root
        .read("/proc/net/route", TEXT_LIMIT)
        .ok()
        .and_then(|bytes| network::parse_route(&bytes).ok())
        .and_then(|routes| network::default_ipv4(&routes));
    let route = ipv4.or_else(|| {
        root.read("/proc/net/ipv6_route", TEXT_LIMIT)
            .ok()
            .and_then(|bytes| network::parse_ipv6_route(&bytes).ok())
            .and_then(|routes| network::default_ipv6(&routes))
    })?;
    // A name from a file under a test root must not walk out of `/sys/class/net`.
    let name = route.interface;
    let plain = !name.is_empty() && name != "." && name != ".." && !name.contains('/');
    plain.then_some(name)
}

/// One attribute of an interface, bounded.
fn link_attribute(root: &Root, name: &str, attribute: &str) -> Option<Vec<u8>> {
    root.read(
        &format!("/sys/class/net/{name}/{attribute}"),
        ATTRIBUTE_LIMIT,
    )
    .ok()
}

/// Up, or (ppp and some tunnels while passing traffic) `unknown`, and not loopback.
fn link_is_up(root: &Root, name: &str) -> bool {
    let state = link_attribute(root, name, "operstate")
        .and_then(|bytes| network::parse_operstate(&bytes).ok());
    matches!(state.as_deref(), Some("up" | "unknown"))
        && link_kind(root, name).as_deref() != Some("loopback")
}

/// The interface kind, named as the `network` category names it.
fn link_kind(root: &Root, name: &str) -> Option<String> {
    let devtype = link_attribute(root, name, "uevent")
        .and_then(|bytes| network::parse_uevent_devtype(&bytes).ok().flatten());
    let wireless = root
        .join(&format!("/sys/class/net/{name}/wireless"))
        .is_dir();
    let arphrd = match link_attribute(root, name, "type") {
        Some(bytes) => Field::from_parse(network::parse_arphrd(&bytes)),
        None => Field::Absent,
    };
    network::classify(devtype.as_deref(), wireless, arphrd)
        .present()
        .cloned()
}

/// A failure of the NETLINK_ROUTE watcher, at the step that failed.
#[derive(Debug)]
pub struct NetlinkError {
    /// `netlink socket`, `netlink bind` or `netlink`.
    pub step: &'static str,
    pub source: std::io::Error,
}

impl std::fmt::Display for NetlinkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.step, self.source)
    }
}

impl std::error::Error for NetlinkError {}

fn netlink_error(step: &'static str) -> impl FnOnce(std::io::Error) -> NetlinkError {
    move |source| NetlinkError { step, source }
}

/// A NETLINK_ROUTE socket subscribed to link, address and route changes.
#[derive(Debug)]
pub struct RouteWatcher {
    socket: Async<OwnedFd>,
    buffer: Vec<u8>,
}

impl RouteWatcher {
    pub fn open() -> Result<RouteWatcher, NetlinkError> {
        let fd = socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
            SockProtocol::NetlinkRoute,
        )
        .map_err(|e| netlink_error("netlink socket")(e.into()))?;
        let groups = RTMGRP_LINK
            | RTMGRP_IPV4_IFADDR
            | RTMGRP_IPV6_IFADDR
            | RTMGRP_IPV4_ROUTE
            | RTMGRP_IPV6_ROUTE;
        bind(fd.as_raw_fd(), &NetlinkAddr::new(0, groups))
            .map_err(|e| netlink_error("netlink bind")(e.into()))?;
        let socket = Async::new(fd).map_err(netlink_error("netlink socket"))?;
        Ok(RouteWatcher {
            socket,
            buffer: vec![0; 32 * 1024],
        })
    }

    /// Waits for the next change (or a lost-message overrun), then for the burst to
    /// settle. The caller re-reads the state afterwards.
    pub async fn changed(&mut self) -> Result<(), NetlinkError> {
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

    async fn receive(&mut self) -> Result<(), NetlinkError> {
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
            Err(e) => Err(netlink_error("netlink")(e)),
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
    fn the_link_check_agrees_with_the_network_reader_and_follows_the_link() {
        let root = fixture("x86-gateway");
        let c = Connectivity::read(&root, &config());
        let network = assent_platform::network::read(&root);
        // The same answer the full `network` reader gives for this root.
        let route = network
            .default_route_ipv4
            .present()
            .cloned()
            .flatten()
            .map(|r| r.interface);
        assert_eq!(c.route_interface, route);
        let via = network
            .interfaces
            .present()
            .unwrap()
            .iter()
            .find(|i| Some(&i.name) == c.route_interface.as_ref())
            .unwrap();
        assert_eq!(c.metered, via.metered);
        assert!(c.online);

        let dir = tempfile::tempdir().unwrap();
        let sys = dir.path().join("sys/class/net/eth0");
        std::fs::create_dir_all(&sys).unwrap();
        std::fs::create_dir_all(dir.path().join("proc/net")).unwrap();
        std::fs::write(
            dir.path().join("proc/net/route"),
            "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU\tWindow\tIRTT\n\
             eth0\t00000000\t0100A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n",
        )
        .unwrap();
        std::fs::write(sys.join("type"), "1\n").unwrap();
        std::fs::write(sys.join("operstate"), "down\n").unwrap();
        let root = Root::at(dir.path());
        assert!(!Connectivity::read(&root, &config()).online);
        std::fs::write(sys.join("operstate"), "up\n").unwrap();
        let up = Connectivity::read(&root, &config());
        assert_eq!(up.route_interface.as_deref(), Some("eth0"));
        assert!(up.online && !up.metered);
        std::fs::write(sys.join("uevent"), "DEVTYPE=wwan\nINTERFACE=eth0\n").unwrap();
        let cellular = Connectivity::read(&root, &config());
        assert!(cellular.online && cellular.metered, "{cellular:?}");
        std::fs::remove_file(sys.join("uevent")).unwrap();
        std::fs::write(sys.join("type"), "772\n").unwrap();
        assert!(!Connectivity::read(&root, &config()).online, "loopback");
    }

    #[test]
    fn a_listed_interface_is_metered() {
        let mut config = config();
        config.sync.metered_interfaces = vec!["eth0".into()];
        let c = Connectivity::read(&fixture("rpi4-raspios64"), &config);
        assert!(c.metered);
    }
}
