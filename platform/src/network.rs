//! The `network` category: interface names and kinds, link state, IP addresses, the
//! default routes and the DNS servers.
//!
//! This module never reads an interface's `address` file and never reports a MAC address
//! or any other hardware identifier: IPv6 addresses whose interface identifier is derived
//! from the MAC (modified EUI-64, `ff:fe` in the middle) have that identifier zeroed.
//! The raw identifiers belong to [`crate::device_id`] alone.
//!
//! IP addresses come from `getifaddrs` on the live system. Under a fixture root they come
//! from files so output is deterministic: IPv6 from `/proc/net/if_inet6`, IPv4 from the
//! `/32 host LOCAL` leaves of `/proc/net/fib_trie`, attributed to the interface whose
//! `/proc/net/route` subnet holds them (loopback addresses to the loopback interface). An
//! address no subnet or several interfaces' subnets hold is left out.

use crate::field::{parse_line, parse_u64, truncate_for_reason};
use crate::read::{read_bounded, ReadError, ATTRIBUTE_LIMIT, DIR_ENTRY_LIMIT, TEXT_LIMIT};
use crate::{Field, Root};
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

/// What the `network` category reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Network {
    /// Every entry of `/sys/class/net`, sorted by name.
    pub interfaces: Field<Vec<Interface>>,
    /// The IPv4 default route with the lowest metric; `None` when there is none.
    pub default_route_ipv4: Field<Option<DefaultRoute>>,
    /// The IPv6 default route (`::/0`) with the lowest metric; `None` when there is none.
    pub default_route_ipv6: Field<Option<DefaultRoute>>,
    /// The DNS servers the system resolver uses.
    pub dns: Field<Dns>,
    /// Cellular modems from ModemManager (filled in by `crate::read`, so that the
    /// connectivity watcher's reads stay off the bus).
    pub modems: Field<Vec<crate::cellular::Modem>>,
}

/// One network interface, without its MAC address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interface {
    /// The interface name; bytes that are not UTF-8 are replaced by U+FFFD.
    pub name: String,
    /// `ethernet`, `wifi`, `cellular`, `ppp`, `loopback`, `bridge`, `vlan`, `bond`, `can`,
    /// `virtual` or `other:<ARPHRD number>`.
    pub kind: Field<String>,
    /// Whether the interface has a `device` link (backed by hardware).
    pub physical: bool,
    /// Whether traffic on it is likely paid by volume (cellular and ppp links).
    pub metered: bool,
    /// RFC 2863 operational state as sysfs names it (`up`, `down`, `dormant`, ...).
    pub operstate: Field<String>,
    /// Whether the physical link is there; a link that is administratively down reports
    /// no carrier.
    pub carrier: Field<bool>,
    pub mtu_bytes: Field<u32>,
    pub ipv4_addresses: Field<Vec<Ipv4Address>>,
    pub ipv6_addresses: Field<Vec<Ipv6Address>>,
}

/// An IPv4 address with its prefix length.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Ipv4Address {
    pub address: Ipv4Addr,
    pub prefix_length: u8,
}

/// An IPv6 address with its prefix length.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Ipv6Address {
    /// The address; when `interface_id_hidden`, its last 64 bits are zero.
    pub address: Ipv6Addr,
    pub prefix_length: u8,
    /// The interface identifier was a modified EUI-64 built from the MAC address and
    /// was zeroed so that the MAC cannot be read back from it.
    pub interface_id_hidden: bool,
}

/// A default route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DefaultRoute {
    pub interface: String,
    /// The next hop; `None` for a route straight onto the link (ppp, cellular).
    pub gateway: Option<IpAddr>,
    pub metric: u32,
}

/// The DNS configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dns {
    /// The upstream servers, in resolv.conf order.
    pub servers: Vec<IpAddr>,
    /// `Some("systemd-resolved")` when resolv.conf points at the resolved stub and the
    /// servers come from `/run/systemd/resolve/resolv.conf`.
    pub resolver: Option<String>,
}

/// The most DNS servers kept from one file.
const MAX_DNS_SERVERS: usize = 16;
/// The most addresses kept from one address table.
const MAX_ADDRESSES: usize = 4096;

const RTF_UP: u32 = 0x0001;
const RTF_REJECT: u32 = 0x0200;

/// Reads the `network` category under `root`.
pub fn read(root: &Root) -> Network {
    let (default_route_ipv4, routes) = match root.read("/proc/net/route", TEXT_LIMIT) {
        Ok(bytes) => match parse_route(&bytes) {
            Ok(routes) => (
                Field::Present(default_ipv4(&routes)),
                Field::Present(routes),
            ),
            Err(e) => (Field::Malformed(e.clone()), Field::Malformed(e)),
        },
        Err(e) => (Field::from_read_error(e.clone()), Field::from_read_error(e)),
    };
    let default_route_ipv6 = Field::from_file(root, "/proc/net/ipv6_route", TEXT_LIMIT, |b| {
        parse_ipv6_route(b).map(|routes| default_ipv6(&routes))
    });
    let interfaces = match list_interfaces(root) {
        Ok(list) => Field::Present(read_interfaces(root, list, routes)),
        Err(e) => Field::from_read_error(e),
    };
    Network {
        interfaces,
        default_route_ipv4,
        default_route_ipv6,
        dns: read_dns(root),
        modems: Field::Absent,
    }
}

/// An entry of `/sys/class/net`: its (lossy) name and its host path.
#[derive(Debug, Clone)]
pub(crate) struct SysInterface {
    pub(crate) name: String,
    pub(crate) dir: PathBuf,
}

/// Lists `/sys/class/net`, keeping names that are not UTF-8 (lossily) and skipping
/// regular files such as `bonding_masters`.
pub(crate) fn list_interfaces(root: &Root) -> Result<Vec<SysInterface>, ReadError> {
    let mut list = Vec::new();
    for entry in std::fs::read_dir(root.join("/sys/class/net"))?.take(DIR_ENTRY_LIMIT) {
        let Ok(entry) = entry else { continue };
        let dir = entry.path();
        if dir.is_file() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        list.push(SysInterface { name, dir });
    }
    crate::read::sort_by(&mut list, |a, b| a.name < b.name);
    Ok(list)
}

/// Reads one attribute file of an interface directory.
pub(crate) fn read_attribute(iface: &SysInterface, name: &str) -> Result<Vec<u8>, ReadError> {
    read_bounded(&iface.dir.join(name), ATTRIBUTE_LIMIT)
}

/// Whether the interface has a `device` link, i.e. is backed by hardware.
pub(crate) fn is_physical(iface: &SysInterface) -> bool {
    std::fs::symlink_metadata(iface.dir.join("device")).is_ok_and(|m| m.file_type().is_symlink())
}

fn read_interfaces(
    root: &Root,
    list: Vec<SysInterface>,
    routes: Field<Vec<RouteEntry>>,
) -> Vec<Interface> {
    let mut interfaces: Vec<Interface> = list
        .into_iter()
        .map(|iface| {
            let devtype = match read_attribute(&iface, "uevent") {
                Ok(bytes) => parse_uevent_devtype(&bytes).ok().flatten(),
                Err(_) => None,
            };
            let wireless = iface.dir.join("wireless").is_dir();
            let arphrd = field_of(read_attribute(&iface, "type"), parse_arphrd);
            let kind = classify(devtype.as_deref(), wireless, arphrd);
            let metered = matches!(kind.present().map(String::as_str), Some("cellular" | "ppp"));
            Interface {
                physical: is_physical(&iface),
                metered,
                kind,
                operstate: field_of(read_attribute(&iface, "operstate"), parse_operstate),
                carrier: carrier_from(read_attribute(&iface, "carrier")),
                mtu_bytes: field_of(read_attribute(&iface, "mtu"), parse_mtu),
                ipv4_addresses: Field::Absent,
                ipv6_addresses: Field::Absent,
                name: iface.name,
            }
        })
        .collect();
    if root.is_live() {
        attach_live_addresses(&mut interfaces);
    } else {
        attach_file_addresses(root, &mut interfaces, routes);
    }
    interfaces
}

fn field_of<T>(
    read: Result<Vec<u8>, ReadError>,
    parse: impl FnOnce(&[u8]) -> Result<T, String>,
) -> Field<T> {
    match read {
        Ok(bytes) => Field::from_parse(parse(&bytes)),
        Err(e) => Field::from_read_error(e),
    }
}

/// The IPv4 and IPv6 addresses of one interface.
type InterfaceAddresses = (Vec<Ipv4Address>, Vec<Ipv6Address>);

fn attach_live_addresses(interfaces: &mut [Interface]) {
    let addresses = match nix::ifaddrs::getifaddrs() {
        Ok(list) => {
            // A list, not a map: a BTreeMap instantiation costs kilobytes of flash.
            let mut by_name: Vec<(String, InterfaceAddresses)> = Vec::new();
            for entry in list.take(MAX_ADDRESSES) {
                let (Some(address), Some(netmask)) = (entry.address, entry.netmask) else {
                    continue;
                };
                let at = match by_name.iter().position(|(n, _)| *n == entry.interface_name) {
                    Some(at) => at,
                    None => {
                        by_name.push((entry.interface_name, Default::default()));
                        by_name.len() - 1
                    }
                };
                let slot = &mut by_name[at].1;
                if let (Some(a), Some(m)) = (address.as_sockaddr_in(), netmask.as_sockaddr_in()) {
                    slot.0.push(Ipv4Address {
                        address: a.ip(),
                        prefix_length: prefix_of_mask(u32::from(m.ip()).to_be_bytes().as_ref()),
                    });
                } else if let (Some(a), Some(m)) =
                    (address.as_sockaddr_in6(), netmask.as_sockaddr_in6())
                {
                    slot.1.push(ipv6_address(
                        a.ip(),
                        prefix_of_mask(m.ip().octets().as_ref()),
                    ));
                }
            }
            Ok(by_name)
        }
        Err(errno) => Err(format!(
            "getifaddrs failed: {}",
            errno.desc().to_lowercase()
        )),
    };
    for iface in interfaces {
        match &addresses {
            Ok(by_name) => {
                let (mut v4, mut v6) = by_name
                    .iter()
                    .find(|(n, _)| *n == iface.name)
                    .map(|(_, a)| a.clone())
                    .unwrap_or_default();
                crate::read::sort_by(&mut v4, |a, b| a < b);
                crate::read::sort_by(&mut v6, |a, b| a < b);
                iface.ipv4_addresses = Field::Present(v4);
                iface.ipv6_addresses = Field::Present(v6);
            }
            Err(reason) => {
                iface.ipv4_addresses = Field::Malformed(reason.clone());
                iface.ipv6_addresses = Field::Malformed(reason.clone());
            }
        }
    }
}

fn attach_file_addresses(
    root: &Root,
    interfaces: &mut [Interface],
    routes: Field<Vec<RouteEntry>>,
) {
    let inet6 = Field::from_file(root, "/proc/net/if_inet6", TEXT_LIMIT, parse_if_inet6);
    let local4 = Field::from_file(root, "/proc/net/fib_trie", TEXT_LIMIT, parse_fib_trie_local);
    let loopbacks: Vec<String> = interfaces
        .iter()
        .filter(|i| i.kind.present().is_some_and(|k| k == "loopback"))
        .map(|i| i.name.clone())
        .collect();
    let attributed: Field<Vec<(String, Ipv4Address)>> = match (local4, routes) {
        (Field::Present(local), Field::Present(routes)) => Field::Present(
            local
                .iter()
                .filter_map(|a| attribute_ipv4(*a, &routes, &loopbacks))
                .collect(),
        ),
        (Field::Present(_), other) => other.map(|_| Vec::new()),
        (other, _) => other.map(|_| Vec::new()),
    };
    for iface in interfaces.iter_mut() {
        iface.ipv4_addresses = match &attributed {
            Field::Present(list) => {
                let mut v: Vec<Ipv4Address> = list
                    .iter()
                    .filter(|(name, _)| *name == iface.name)
                    .map(|(_, a)| a.clone())
                    .collect();
                crate::read::sort_by(&mut v, |a, b| a < b);
                Field::Present(v)
            }
            other => other.clone().map(|_| Vec::new()),
        };
        iface.ipv6_addresses = match &inet6 {
            Field::Present(list) => {
                let mut v: Vec<Ipv6Address> = list
                    .iter()
                    .filter(|(name, _)| *name == iface.name)
                    .map(|(_, a)| a.clone())
                    .collect();
                crate::read::sort_by(&mut v, |a, b| a < b);
                Field::Present(v)
            }
            other => other.clone().map(|_| Vec::new()),
        };
    }
}

/// Finds the interface an IPv4 address of the local table belongs to: the loopback
/// interface for 127/8, else the one interface whose most specific directly connected
/// subnet holds it. Ambiguous or unknown addresses give `None`.
fn attribute_ipv4(
    address: Ipv4Addr,
    routes: &[RouteEntry],
    loopbacks: &[String],
) -> Option<(String, Ipv4Address)> {
    if address.is_loopback() {
        let [name] = loopbacks else { return None };
        return Some((
            name.clone(),
            Ipv4Address {
                address,
                prefix_length: 8,
            },
        ));
    }
    let bits = u32::from(address);
    let mut best: Option<(u8, &str)> = None;
    let mut ambiguous = false;
    for route in routes {
        if route.flags & RTF_UP == 0 || route.gateway != Ipv4Addr::UNSPECIFIED {
            continue;
        }
        let Some(prefix) = contiguous_prefix(route.mask) else {
            continue;
        };
        if prefix == 0 || bits & u32::from(route.mask) != u32::from(route.destination) {
            continue;
        }
        match best {
            Some((p, name)) if p == prefix && name != route.interface => ambiguous = true,
            Some((p, _)) if p >= prefix => {}
            _ => {
                best = Some((prefix, &route.interface));
                ambiguous = false;
            }
        }
    }
    match best {
        Some((prefix_length, name)) if !ambiguous => Some((
            name.to_string(),
            Ipv4Address {
                address,
                prefix_length,
            },
        )),
        _ => None,
    }
}

fn contiguous_prefix(mask: Ipv4Addr) -> Option<u8> {
    let m = u32::from(mask);
    let ones = m.leading_ones();
    (m.count_ones() == ones).then_some(ones as u8)
}

/// Counts the leading one bits of a netmask.
fn prefix_of_mask(mask: &[u8]) -> u8 {
    let mut n: u32 = 0;
    for byte in mask {
        n += byte.leading_ones();
        if *byte != 0xff {
            break;
        }
    }
    u8::try_from(n).unwrap_or(u8::MAX)
}

/// Builds an [`Ipv6Address`], zeroing a MAC-derived (modified EUI-64) interface id.
pub fn ipv6_address(address: Ipv6Addr, prefix_length: u8) -> Ipv6Address {
    let mut octets = address.octets();
    let eui64 = octets[11] == 0xff && octets[12] == 0xfe;
    if eui64 {
        for b in &mut octets[8..] {
            *b = 0;
        }
    }
    Ipv6Address {
        address: Ipv6Addr::from(octets),
        prefix_length,
        interface_id_hidden: eui64,
    }
}

/// Finds `DEVTYPE=` in a sysfs `uevent` file. Other lines may hold anything.
pub fn parse_uevent_devtype(bytes: &[u8]) -> Result<Option<String>, String> {
    for line in bytes.split(|b| *b == b'\n') {
        if let Some(value) = line.strip_prefix(b"DEVTYPE=") {
            return parse_line(value).map(Some);
        }
    }
    Ok(None)
}

/// Parses the ARPHRD number in an interface's `type` file.
pub fn parse_arphrd(bytes: &[u8]) -> Result<u16, String> {
    let n = parse_u64(bytes)?;
    u16::try_from(n).map_err(|_| format!("interface type {n} is out of range"))
}

/// Parses `mtu`.
pub fn parse_mtu(bytes: &[u8]) -> Result<u32, String> {
    let n = parse_u64(bytes)?;
    u32::try_from(n).map_err(|_| format!("mtu {n} is out of range"))
}

/// Parses `operstate`, accepting only the states the kernel prints.
pub fn parse_operstate(bytes: &[u8]) -> Result<String, String> {
    const STATES: [&str; 7] = [
        "unknown",
        "notpresent",
        "down",
        "lowerlayerdown",
        "testing",
        "dormant",
        "up",
    ];
    let line = parse_line(bytes)?;
    if STATES.contains(&line.as_str()) {
        Ok(line)
    } else {
        Err(format!(
            "unknown operstate {:?}",
            truncate_for_reason(&line)
        ))
    }
}

/// Turns the result of reading `carrier` into a field: the kernel answers EINVAL for a
/// link that is administratively down, which means no carrier, not a broken file.
pub fn carrier_from(read: Result<Vec<u8>, ReadError>) -> Field<bool> {
    match read {
        Ok(bytes) => Field::from_parse(match parse_line(&bytes) {
            Ok(line) if line == "1" => Ok(true),
            Ok(line) if line == "0" => Ok(false),
            Ok(line) => Err(format!("carrier is {:?}", truncate_for_reason(&line))),
            Err(e) => Err(e),
        }),
        Err(ReadError::Invalid) => Field::Present(false),
        Err(e) => Field::from_read_error(e),
    }
}

/// Names the interface kind from, in order: the uevent `DEVTYPE`, the presence of a
/// `wireless/` directory, and the ARPHRD number in `type`.
pub fn classify(devtype: Option<&str>, wireless: bool, arphrd: Field<u16>) -> Field<String> {
    let by_devtype = match devtype {
        Some("wlan") => Some("wifi"),
        Some("wwan") => Some("cellular"),
        Some("ppp") => Some("ppp"),
        Some("bridge") => Some("bridge"),
        Some("vlan") => Some("vlan"),
        Some("bond") => Some("bond"),
        Some("wireguard" | "vxlan" | "geneve" | "macvlan" | "ipvlan" | "macsec" | "hsr") => {
            Some("virtual")
        }
        _ => None,
    };
    if let Some(kind) = by_devtype {
        return Field::Present(kind.to_string());
    }
    if wireless {
        return Field::Present("wifi".to_string());
    }
    arphrd.map(|n| {
        match n {
            1 => "ethernet",
            772 => "loopback",
            512 => "ppp",
            // ARPHRD_RAWIP: the raw-IP mode of qmi_wwan and MHI modems.
            519 => "cellular",
            280 => "can",
            801..=803 => "wifi",
            // none (tun), ipip, sit, ip gre, ip6 gre, ip6 tunnel.
            65534 | 768 | 769 | 776 | 778 | 823 => "virtual",
            other => return format!("other:{other}"),
        }
        .to_string()
    })
}

/// One line of `/proc/net/route`, addresses already in network order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteEntry {
    pub interface: String,
    pub destination: Ipv4Addr,
    pub gateway: Ipv4Addr,
    pub flags: u32,
    pub metric: u32,
    pub mask: Ipv4Addr,
}

/// Parses `/proc/net/route`. The kernel prints each address as the 32-bit value in host
/// byte order, so the hex is decoded in native order (little-endian on every Assent
/// target and on the machines that captured the fixtures).
pub fn parse_route(bytes: &[u8]) -> Result<Vec<RouteEntry>, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "route table is not UTF-8".to_string())?;
    let mut lines = text.lines();
    match lines.next() {
        Some(h) if h.starts_with("Iface") => {}
        _ => return Err("route table has no header".to_string()),
    }
    let mut entries = Vec::new();
    for (n, line) in lines.enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let cols: Vec<&str> = line.split_whitespace().collect();
        let bad = || format!("route line {} is malformed", n + 2);
        if cols.len() < 8 {
            return Err(bad());
        }
        let hex = |s: &str| u32::from_str_radix(s, 16).map_err(|_| bad());
        let addr = |s: &str| -> Result<Ipv4Addr, String> {
            if s.len() != 8 {
                return Err(bad());
            }
            Ok(Ipv4Addr::from(hex(s)?.to_ne_bytes()))
        };
        entries.push(RouteEntry {
            interface: cols[0].to_string(),
            destination: addr(cols[1])?,
            gateway: addr(cols[2])?,
            flags: hex(cols[3])?,
            metric: cols[6].parse().map_err(|_| bad())?,
            mask: addr(cols[7])?,
        });
    }
    Ok(entries)
}

/// The IPv4 default route with the lowest metric.
pub fn default_ipv4(routes: &[RouteEntry]) -> Option<DefaultRoute> {
    routes
        .iter()
        .filter(|r| {
            r.flags & RTF_UP != 0
                && r.destination == Ipv4Addr::UNSPECIFIED
                && r.mask == Ipv4Addr::UNSPECIFIED
        })
        .min_by_key(|r| r.metric)
        .map(|r| DefaultRoute {
            interface: r.interface.clone(),
            gateway: (r.gateway != Ipv4Addr::UNSPECIFIED).then_some(IpAddr::V4(r.gateway)),
            metric: r.metric,
        })
}

/// One line of `/proc/net/ipv6_route`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ipv6RouteEntry {
    pub destination: Ipv6Addr,
    pub destination_prefix_length: u8,
    pub gateway: Ipv6Addr,
    pub metric: u32,
    pub flags: u32,
    pub interface: String,
}

fn hex16(s: &str) -> Option<Ipv6Addr> {
    if s.len() != 32 || !s.is_ascii() {
        return None;
    }
    let mut octets = [0u8; 16];
    for (i, o) in octets.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(Ipv6Addr::from(octets))
}

/// Parses `/proc/net/ipv6_route` (no header; ten columns).
pub fn parse_ipv6_route(bytes: &[u8]) -> Result<Vec<Ipv6RouteEntry>, String> {
    let text =
        std::str::from_utf8(bytes).map_err(|_| "ipv6 route table is not UTF-8".to_string())?;
    let mut entries = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = || format!("ipv6 route line {} is malformed", n + 1);
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.len() != 10 {
            return Err(bad());
        }
        let plen = u8::from_str_radix(cols[1], 16).map_err(|_| bad())?;
        if plen > 128 {
            return Err(bad());
        }
        entries.push(Ipv6RouteEntry {
            destination: hex16(cols[0]).ok_or_else(bad)?,
            destination_prefix_length: plen,
            gateway: hex16(cols[4]).ok_or_else(bad)?,
            metric: u32::from_str_radix(cols[5], 16).map_err(|_| bad())?,
            flags: u32::from_str_radix(cols[8], 16).map_err(|_| bad())?,
            interface: cols[9].to_string(),
        });
    }
    Ok(entries)
}

/// The IPv6 default route with the lowest metric; reject routes (the `lo` placeholder
/// the kernel keeps for unreachable destinations) do not count.
pub fn default_ipv6(routes: &[Ipv6RouteEntry]) -> Option<DefaultRoute> {
    routes
        .iter()
        .filter(|r| {
            r.destination_prefix_length == 0
                && r.destination == Ipv6Addr::UNSPECIFIED
                && r.flags & RTF_UP != 0
                && r.flags & RTF_REJECT == 0
        })
        .min_by_key(|r| r.metric)
        .map(|r| DefaultRoute {
            interface: r.interface.clone(),
            gateway: (r.gateway != Ipv6Addr::UNSPECIFIED).then_some(IpAddr::V6(r.gateway)),
            metric: r.metric,
        })
}

/// Parses `/proc/net/if_inet6` into (interface name, address) pairs.
pub fn parse_if_inet6(bytes: &[u8]) -> Result<Vec<(String, Ipv6Address)>, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "if_inet6 is not UTF-8".to_string())?;
    let mut list = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = || format!("if_inet6 line {} is malformed", n + 1);
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.len() != 6 {
            return Err(bad());
        }
        let address = hex16(cols[0]).ok_or_else(bad)?;
        let plen = u8::from_str_radix(cols[2], 16).map_err(|_| bad())?;
        if plen > 128 {
            return Err(bad());
        }
        if list.len() < MAX_ADDRESSES {
            list.push((cols[5].to_string(), ipv6_address(address, plen)));
        }
    }
    Ok(list)
}

/// Collects the local host addresses of `/proc/net/fib_trie`: the leaves followed by a
/// `/32 host LOCAL` line. They appear once per table, so duplicates are removed.
pub fn parse_fib_trie_local(bytes: &[u8]) -> Result<Vec<Ipv4Addr>, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "fib_trie is not UTF-8".to_string())?;
    let mut leaf: Option<Ipv4Addr> = None;
    let mut found = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let t = line.trim();
        if let Some(rest) = t.strip_prefix("|-- ") {
            let address = rest
                .trim()
                .parse::<Ipv4Addr>()
                .map_err(|_| format!("fib_trie line {} has a bad address", n + 1))?;
            leaf = Some(address);
        } else if let Some(rest) = t.strip_prefix('/') {
            let mut words = rest.split_whitespace();
            let prefix = words.next();
            let is_local_host = prefix == Some("32") && words.any(|w| w == "LOCAL");
            if let (true, Some(address)) = (is_local_host, leaf) {
                if !found.contains(&address) && found.len() < MAX_ADDRESSES {
                    found.push(address);
                }
            }
        } else if t.starts_with("+--") || t.ends_with(':') || t.is_empty() {
            leaf = None;
        } else {
            return Err(format!("fib_trie line {} is not understood", n + 1));
        }
    }
    crate::read::sort_by(&mut found, |a, b| a < b);
    Ok(found)
}

/// Parses the `nameserver` lines of a resolv.conf. Other lines, comments and lines that
/// are not UTF-8 are skipped as the C library skips them; a file whose nameserver lines
/// are all invalid is malformed.
pub fn parse_resolv_conf(bytes: &[u8]) -> Result<Vec<IpAddr>, String> {
    let mut servers = Vec::new();
    let mut invalid = 0usize;
    for raw in bytes.split(|b| *b == b'\n') {
        let Ok(line) = std::str::from_utf8(raw) else {
            continue;
        };
        let mut words = line.split_whitespace();
        if words.next() != Some("nameserver") {
            continue;
        }
        // A scoped link-local server ("fe80::1%eth0") keeps its address only.
        let parsed = words
            .next()
            .map(|w| w.split('%').next().unwrap_or(w))
            .and_then(|w| w.parse::<IpAddr>().ok());
        match parsed {
            Some(ip) if servers.len() < MAX_DNS_SERVERS && !servers.contains(&ip) => {
                servers.push(ip)
            }
            Some(_) => {}
            None => invalid += 1,
        }
    }
    if servers.is_empty() && invalid > 0 {
        return Err(format!("{invalid} nameserver lines, none valid"));
    }
    Ok(servers)
}

/// Whether a server list is only the systemd-resolved stub listener.
fn is_resolved_stub(servers: &[IpAddr]) -> bool {
    const STUBS: [IpAddr; 2] = [
        IpAddr::V4(Ipv4Addr::new(127, 0, 0, 53)),
        IpAddr::V4(Ipv4Addr::new(127, 0, 0, 54)),
    ];
    !servers.is_empty() && servers.iter().all(|s| STUBS.contains(s))
}

fn read_dns(root: &Root) -> Field<Dns> {
    let servers = Field::from_file(root, "/etc/resolv.conf", TEXT_LIMIT, parse_resolv_conf);
    match servers {
        Field::Present(servers) if is_resolved_stub(&servers) => {
            let upstream = Field::from_file(
                root,
                "/run/systemd/resolve/resolv.conf",
                TEXT_LIMIT,
                parse_resolv_conf,
            );
            Field::Present(Dns {
                // Without the upstream file the stub is still the truth about where
                // queries go.
                servers: upstream.into_present().unwrap_or(servers),
                resolver: Some("systemd-resolved".to_string()),
            })
        }
        other => other.map(|servers| Dns {
            servers,
            resolver: None,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn fixture(name: &str) -> Root {
        Root::at(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../tests/fixtures/roots")
                .join(name),
        )
    }

    fn iface<'a>(net: &'a Network, name: &str) -> &'a Interface {
        net.interfaces
            .present()
            .and_then(|l| l.iter().find(|i| i.name == name))
            .unwrap_or_else(|| panic!("no interface {name} in {net:?}"))
    }

    fn v4(list: &Field<Vec<Ipv4Address>>) -> Vec<String> {
        list.present()
            .unwrap()
            .iter()
            .map(|a| format!("{}/{}", a.address, a.prefix_length))
            .collect()
    }

    #[test]
    fn classify_table() {
        let eth = Field::Present(1);
        type Case<'a> = (Option<&'a str>, bool, Field<u16>, Field<String>);
        let cases: Vec<Case> = vec![
            (None, false, eth.clone(), Field::Present("ethernet".into())),
            (
                Some("wlan"),
                true,
                eth.clone(),
                Field::Present("wifi".into()),
            ),
            (None, true, eth.clone(), Field::Present("wifi".into())),
            (
                Some("wwan"),
                false,
                Field::Present(519),
                Field::Present("cellular".into()),
            ),
            (
                None,
                false,
                Field::Present(519),
                Field::Present("cellular".into()),
            ),
            (
                Some("ppp"),
                false,
                Field::Present(512),
                Field::Present("ppp".into()),
            ),
            (
                None,
                false,
                Field::Present(512),
                Field::Present("ppp".into()),
            ),
            (
                None,
                false,
                Field::Present(772),
                Field::Present("loopback".into()),
            ),
            (
                Some("bridge"),
                false,
                eth.clone(),
                Field::Present("bridge".into()),
            ),
            (
                Some("vlan"),
                false,
                eth.clone(),
                Field::Present("vlan".into()),
            ),
            (
                Some("bond"),
                false,
                eth.clone(),
                Field::Present("bond".into()),
            ),
            (
                None,
                false,
                Field::Present(65534),
                Field::Present("virtual".into()),
            ),
            (
                None,
                false,
                Field::Present(280),
                Field::Present("can".into()),
            ),
            (
                None,
                false,
                Field::Present(32),
                Field::Present("other:32".into()),
            ),
            (
                Some("gadget"),
                false,
                eth.clone(),
                Field::Present("ethernet".into()),
            ),
            (
                None,
                false,
                Field::Malformed("x".into()),
                Field::Malformed("x".into()),
            ),
            (None, false, Field::Absent, Field::Absent),
        ];
        for (devtype, wireless, arphrd, want) in cases {
            assert_eq!(
                classify(devtype, wireless, arphrd.clone()),
                want,
                "{devtype:?} {arphrd:?}"
            );
        }
    }

    #[test]
    fn attribute_parsers_reject_hostile_values() {
        assert_eq!(parse_arphrd(b"772\n"), Ok(772));
        assert!(parse_arphrd(b"abc").is_err());
        assert!(parse_arphrd(b"70000").is_err());
        assert!(parse_arphrd(b"1\n2\n").is_err());
        assert_eq!(parse_mtu(b"1500\n"), Ok(1500));
        assert!(parse_mtu(b"99999999999999999999999").is_err());
        assert!(parse_mtu(b"-5").is_err());
        assert_eq!(parse_operstate(b"up\n"), Ok("up".into()));
        assert_eq!(
            parse_operstate(b"lowerlayerdown\n"),
            Ok("lowerlayerdown".into())
        );
        assert!(parse_operstate(b"up\0down").is_err());
        assert!(parse_operstate(b"sideways").is_err());
        assert!(parse_operstate(&[0xff, 0x75, 0x70]).is_err());
        assert_eq!(
            parse_uevent_devtype(b"DEVTYPE=wlan\nINTERFACE=wlan0\n"),
            Ok(Some("wlan".into()))
        );
        assert_eq!(
            parse_uevent_devtype(b"INTERFACE=eth0\nIFINDEX=2\n"),
            Ok(None)
        );
        assert_eq!(
            parse_uevent_devtype(b"\xff\xfe\nDEVTYPE=wwan\n"),
            Ok(Some("wwan".into()))
        );
        assert!(parse_uevent_devtype(b"DEVTYPE=\xff\n").is_err());
        assert_eq!(parse_uevent_devtype(b""), Ok(None));
    }

    #[test]
    fn carrier_einval_means_no_carrier() {
        assert_eq!(carrier_from(Ok(b"1\n".to_vec())), Field::Present(true));
        assert_eq!(carrier_from(Ok(b"0\n".to_vec())), Field::Present(false));
        assert_eq!(carrier_from(Err(ReadError::Invalid)), Field::Present(false));
        assert_eq!(carrier_from(Err(ReadError::NotFound)), Field::Absent);
        assert_eq!(carrier_from(Err(ReadError::Denied)), Field::Denied);
        assert!(matches!(
            carrier_from(Ok(b"2".to_vec())),
            Field::Malformed(_)
        ));
        assert!(matches!(
            carrier_from(Ok(b"".to_vec())),
            Field::Malformed(_)
        ));
    }

    #[test]
    fn route_table_parsing() {
        let table = b"Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
eth0\t00000000\t010200C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n\
eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
ppp0\t00000000\t00000000\t0001\t0\t0\t50\t00000000\t0\t0\t0\n\
wlan0\t00000000\t01000A0A\t0002\t0\t0\t1\t00000000\t0\t0\t0\n";
        let routes = parse_route(table).unwrap();
        assert_eq!(routes.len(), 4);
        assert_eq!(routes[0].gateway, Ipv4Addr::new(192, 0, 2, 1));
        assert_eq!(routes[1].destination, Ipv4Addr::new(192, 0, 2, 0));
        assert_eq!(routes[1].mask, Ipv4Addr::new(255, 255, 255, 0));
        // The lowest metric among routes that are up; wlan0's route is down.
        assert_eq!(
            default_ipv4(&routes),
            Some(DefaultRoute {
                interface: "ppp0".into(),
                gateway: None,
                metric: 50
            })
        );
        assert_eq!(default_ipv4(&routes[1..2]), None);
        for bad in [
            &b""[..],
            b"eth0 00000000 010200C0 0003 0 0 0 00000000 0 0 0\n",
            b"Iface\neth0 0000000G 010200C0 0003 0 0 0 00000000 0 0 0\n",
            b"Iface\neth0 00000000 010200C0\n",
            b"Iface\neth0 000000000 010200C0 0003 0 0 0 00000000 0 0 0\n",
            b"Iface\neth0 00000000 010200C0 0003 0 0 -1 00000000 0 0 0\n",
            b"Iface\n\xff 00000000 010200C0 0003 0 0 0 00000000 0 0 0\n",
        ] {
            assert!(
                parse_route(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn ipv6_route_parsing_skips_reject_routes() {
        let table = b"fd000000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0\n\
00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe800000000000000000000000000001 00000400 00000002 00000000 00000003     eth0\n\
00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo\n";
        let routes = parse_ipv6_route(table).unwrap();
        assert_eq!(
            default_ipv6(&routes),
            Some(DefaultRoute {
                interface: "eth0".into(),
                gateway: Some("fe80::1".parse().unwrap()),
                metric: 0x400
            })
        );
        assert_eq!(default_ipv6(&routes[2..]), None);
        assert!(parse_ipv6_route(b"fd00 40\n").is_err());
        assert!(parse_ipv6_route(b"zz000000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001 eth0\n").is_err());
        assert!(parse_ipv6_route(b"00000000000000000000000000000000 ff 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001 eth0\n").is_err());
    }

    #[test]
    fn if_inet6_hides_eui64_interface_ids() {
        let table = b"fe80000000000000dea632fffe5e71a5 03 40 20 80    wlan0\n\
20010db8000000000000000000000042 02 40 00 00     eth0\n";
        let list = parse_if_inet6(table).unwrap();
        assert_eq!(list[0].0, "wlan0");
        assert_eq!(list[0].1.address, "fe80::".parse::<Ipv6Addr>().unwrap());
        assert!(list[0].1.interface_id_hidden);
        assert_eq!(list[0].1.prefix_length, 64);
        assert_eq!(
            list[1].1.address,
            "2001:db8::42".parse::<Ipv6Addr>().unwrap()
        );
        assert!(!list[1].1.interface_id_hidden);
        assert!(parse_if_inet6(b"fe80 03 40 20 80 wlan0\n").is_err());
        assert!(parse_if_inet6(b"fe80000000000000dea632fffe5e71a5 03 ff 20 80 wlan0\n").is_err());
        assert!(parse_if_inet6(b"fe80000000000000dea632fffe5e71a5 03 40 20 80\n").is_err());
    }

    #[test]
    fn fib_trie_yields_local_host_addresses_once() {
        let trie = b"Main:\n  +-- 0.0.0.0/0 3 0 5\n     |-- 0.0.0.0\n        /0 universe UNICAST\n\
     +-- 127.0.0.0/8 2 0 2\n        +-- 127.0.0.0/31 1 0 0\n           |-- 127.0.0.0\n              /8 host LOCAL\n\
           |-- 127.0.0.1\n              /32 host LOCAL\n        |-- 127.255.255.255\n           /32 link BROADCAST\n\
     |-- 192.0.2.2\n        /32 host LOCAL\nLocal:\n  +-- 0.0.0.0/0 3 0 5\n     |-- 192.0.2.2\n        /32 host LOCAL\n";
        assert_eq!(
            parse_fib_trie_local(trie),
            Ok(vec![
                Ipv4Addr::new(127, 0, 0, 1),
                Ipv4Addr::new(192, 0, 2, 2)
            ])
        );
        assert!(parse_fib_trie_local(b"Main:\n  |-- 300.1.1.1\n").is_err());
        assert!(parse_fib_trie_local(b"hello world\n").is_err());
        assert!(parse_fib_trie_local(b"\xff\n").is_err());
        assert_eq!(parse_fib_trie_local(b""), Ok(vec![]));
    }

    #[test]
    fn ipv4_attribution_needs_one_most_specific_subnet() {
        let route = |iface: &str, dest: [u8; 4], mask: [u8; 4]| RouteEntry {
            interface: iface.into(),
            destination: dest.into(),
            gateway: Ipv4Addr::UNSPECIFIED,
            flags: RTF_UP,
            metric: 0,
            mask: mask.into(),
        };
        let routes = vec![
            route("eth0", [10, 0, 0, 0], [255, 0, 0, 0]),
            route("wlan0", [10, 1, 0, 0], [255, 255, 0, 0]),
            route("a", [192, 168, 1, 0], [255, 255, 255, 0]),
            route("b", [192, 168, 1, 0], [255, 255, 255, 0]),
        ];
        let lo = vec!["lo".to_string()];
        let name =
            |a: [u8; 4]| attribute_ipv4(a.into(), &routes, &lo).map(|(n, a)| (n, a.prefix_length));
        assert_eq!(name([10, 2, 3, 4]), Some(("eth0".into(), 8)));
        assert_eq!(name([10, 1, 3, 4]), Some(("wlan0".into(), 16)));
        assert_eq!(name([192, 168, 1, 9]), None);
        assert_eq!(name([172, 16, 0, 1]), None);
        assert_eq!(name([127, 0, 0, 1]), Some(("lo".into(), 8)));
    }

    #[test]
    fn resolv_conf_parsing_skips_junk() {
        let text = b"# comment\n; other\nsearch example.invalid\nnameserver 10.0.0.1\nnameserver\n\
nameserver 999.1.1.1\nnameserver fe80::1%eth0\n\xff\xfe nameserver 1.1.1.1\nnameserver\t10.0.0.2 extra\n\
nameserver 10.0.0.1\n\0nameserver 10.9.9.9\noptions edns0\n";
        assert_eq!(
            parse_resolv_conf(text),
            Ok(vec![
                "10.0.0.1".parse().unwrap(),
                "fe80::1".parse().unwrap(),
                "10.0.0.2".parse().unwrap()
            ])
        );
        assert_eq!(parse_resolv_conf(b""), Ok(vec![]));
        assert!(parse_resolv_conf(b"nameserver bogus\n").is_err());
        let many: String = (0..100)
            .map(|i| format!("nameserver 10.0.0.{i}\n"))
            .collect();
        assert_eq!(
            parse_resolv_conf(many.as_bytes()).unwrap().len(),
            MAX_DNS_SERVERS
        );
    }

    #[test]
    fn rpi4_fixture() {
        let net = read(&fixture("rpi4-raspios64"));
        let eth0 = iface(&net, "eth0");
        assert_eq!(eth0.kind, Field::Present("ethernet".into()));
        assert_eq!(eth0.operstate, Field::Present("up".into()));
        assert_eq!(eth0.carrier, Field::Present(true));
        assert_eq!(eth0.mtu_bytes, Field::Present(1500));
        assert!(eth0.physical && !eth0.metered);
        assert_eq!(v4(&eth0.ipv4_addresses), vec!["192.168.1.42/24"]);
        let wlan0 = iface(&net, "wlan0");
        assert_eq!(wlan0.kind, Field::Present("wifi".into()));
        assert_eq!(wlan0.operstate, Field::Present("up".into()));
        assert!(wlan0.physical);
        assert_eq!(v4(&wlan0.ipv4_addresses), vec!["10.20.0.17/24"]);
        let v6 = wlan0.ipv6_addresses.present().unwrap();
        assert_eq!(v6.len(), 1);
        assert!(v6[0].interface_id_hidden);
        let lo = iface(&net, "lo");
        assert_eq!(lo.kind, Field::Present("loopback".into()));
        assert!(!lo.physical);
        assert_eq!(v4(&lo.ipv4_addresses), vec!["127.0.0.1/8"]);
        assert_eq!(
            net.default_route_ipv4,
            Field::Present(Some(DefaultRoute {
                interface: "eth0".into(),
                gateway: Some("192.168.1.1".parse().unwrap()),
                metric: 202
            }))
        );
        assert_eq!(
            net.default_route_ipv6,
            Field::Present(Some(DefaultRoute {
                interface: "eth0".into(),
                gateway: Some("fe80::1".parse().unwrap()),
                metric: 202
            }))
        );
        assert_eq!(
            net.dns,
            Field::Present(Dns {
                servers: vec![
                    "192.168.1.1".parse().unwrap(),
                    "fd12:3456:789a::1".parse().unwrap()
                ],
                resolver: None
            })
        );
    }

    #[test]
    fn x86_gateway_fixture() {
        let net = read(&fixture("x86-gateway"));
        let names: Vec<&str> = net
            .interfaces
            .present()
            .unwrap()
            .iter()
            .map(|i| i.name.as_str())
            .collect();
        assert_eq!(names, vec!["enp1s0", "enp2s0", "lo", "ppp0", "wwan0"]);
        let enp1s0 = iface(&net, "enp1s0");
        assert_eq!(enp1s0.carrier, Field::Present(true));
        assert_eq!(v4(&enp1s0.ipv4_addresses), vec!["10.10.0.20/24"]);
        let enp2s0 = iface(&net, "enp2s0");
        assert_eq!(enp2s0.kind, Field::Present("ethernet".into()));
        assert_eq!(enp2s0.carrier, Field::Present(false));
        assert_eq!(enp2s0.operstate, Field::Present("down".into()));
        assert_eq!(v4(&enp2s0.ipv4_addresses), Vec::<String>::new());
        let wwan0 = iface(&net, "wwan0");
        assert_eq!(wwan0.kind, Field::Present("cellular".into()));
        assert!(wwan0.metered && wwan0.physical);
        let ppp0 = iface(&net, "ppp0");
        assert_eq!(ppp0.kind, Field::Present("ppp".into()));
        assert!(ppp0.metered && !ppp0.physical);
        assert!(!enp1s0.metered);
        assert_eq!(
            net.default_route_ipv4,
            Field::Present(Some(DefaultRoute {
                interface: "enp1s0".into(),
                gateway: Some("10.10.0.1".parse().unwrap()),
                metric: 100
            }))
        );
        assert_eq!(net.default_route_ipv6, Field::Present(None));
        assert_eq!(
            net.dns,
            Field::Present(Dns {
                servers: vec!["10.10.0.1".parse().unwrap(), "9.9.9.9".parse().unwrap()],
                resolver: Some("systemd-resolved".into())
            })
        );
    }

    #[test]
    fn yocto_and_container_fixtures() {
        let net = read(&fixture("yocto-opkg"));
        let eth0 = iface(&net, "eth0");
        assert_eq!(eth0.kind, Field::Present("ethernet".into()));
        assert!(eth0.physical);
        assert_eq!(v4(&eth0.ipv4_addresses), vec!["192.168.7.2/24"]);
        assert_eq!(
            net.default_route_ipv4
                .present()
                .cloned()
                .flatten()
                .map(|r| r.interface),
            Some("eth0".to_string())
        );
        let net = read(&fixture("container"));
        let eth0 = iface(&net, "eth0");
        assert_eq!(eth0.kind, Field::Present("ethernet".into()));
        assert!(!eth0.physical);
        assert_eq!(v4(&eth0.ipv4_addresses), vec!["172.17.0.2/16"]);
        assert_eq!(
            net.dns,
            Field::Present(Dns {
                servers: vec!["127.0.0.11".parse().unwrap()],
                resolver: None
            })
        );
    }

    #[test]
    fn garbage_fixture_degrades_field_by_field() {
        let net = read(&fixture("garbage"));
        let list = net.interfaces.present().unwrap();
        let loop0 = iface(&net, "loop0");
        assert_eq!(loop0.kind, Field::Malformed("symbolic link loop".into()));
        assert!(!loop0.physical);
        let eth0 = iface(&net, "eth0");
        assert!(matches!(eth0.kind, Field::Malformed(_)), "{:?}", eth0.kind);
        assert!(matches!(eth0.operstate, Field::Malformed(_)));
        assert!(matches!(eth0.carrier, Field::Malformed(_)));
        assert!(matches!(eth0.mtu_bytes, Field::Malformed(_)));
        assert!(list.iter().any(|i| i.name == "wl\u{2603}0"), "{list:?}");
        let dangling = iface(&net, "dangle0");
        assert_eq!(dangling.kind, Field::Absent);
        assert!(matches!(net.default_route_ipv4, Field::Malformed(_)));
        assert!(matches!(net.default_route_ipv6, Field::Malformed(_)));
        assert!(matches!(eth0.ipv4_addresses, Field::Malformed(_)));
        assert!(matches!(eth0.ipv6_addresses, Field::Malformed(_)));
        assert_eq!(
            net.dns,
            Field::Present(Dns {
                servers: vec!["10.0.0.1".parse().unwrap()],
                resolver: None
            })
        );
    }

    #[test]
    fn non_utf8_interface_names_are_kept_lossily() {
        use std::os::unix::ffi::OsStrExt;
        let dir = tempfile::tempdir().unwrap();
        let net = dir.path().join("sys/class/net");
        let odd = net.join(std::ffi::OsStr::from_bytes(b"et\xffh0"));
        std::fs::create_dir_all(&odd).unwrap();
        std::fs::write(odd.join("type"), b"1\n").unwrap();
        std::fs::write(net.join("bonding_masters"), b"\n").unwrap();
        let got = read(&Root::at(dir.path()));
        let list = got.interfaces.present().unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].name, "et\u{fffd}h0");
        assert_eq!(list[0].kind, Field::Present("ethernet".into()));
        assert_eq!(got.dns, Field::Absent);
        assert_eq!(list[0].ipv4_addresses, Field::Absent);
    }

    /// MAC addresses of every interface in a fixture root, in the forms they could leak:
    /// colon hex and the modified EUI-64 interface id of IPv6.
    fn fixture_macs(root: &Root) -> Vec<String> {
        let mut macs = Vec::new();
        for iface in list_interfaces(root).unwrap() {
            let Ok(bytes) = read_attribute(&iface, "address") else {
                continue;
            };
            let Ok(text) = parse_line(&bytes) else {
                continue;
            };
            let octets: Vec<u8> = text
                .split(':')
                .filter_map(|h| u8::from_str_radix(h, 16).ok())
                .collect();
            if octets.len() != 6 || octets.iter().all(|b| *b == 0) {
                continue;
            }
            macs.push(text.to_lowercase());
            let eui = format!(
                "{:x}:{:x}:{:x}:{:x}",
                u16::from_be_bytes([octets[0] ^ 2, octets[1]]),
                u16::from_be_bytes([octets[2], 0xff]),
                u16::from_be_bytes([0xfe, octets[3]]),
                u16::from_be_bytes([octets[4], octets[5]])
            );
            macs.push(eui);
            macs.push(octets[3..].iter().map(|b| format!("{b:02x}")).collect());
        }
        macs
    }

    #[test]
    fn network_output_never_contains_a_mac_address() {
        let mut checked = 0;
        for name in [
            "rpi4-raspios64",
            "x86-gateway",
            "yocto-opkg",
            "container",
            "garbage",
        ] {
            let root = fixture(name);
            let json = serde_json::to_string(&read(&root)).unwrap().to_lowercase();
            let macs = fixture_macs(&root);
            for mac in &macs {
                assert!(!json.contains(mac), "{name}: {mac} leaked in {json}");
                checked += 1;
            }
        }
        assert!(checked >= 15, "only {checked} MAC forms were checked");
    }

    #[test]
    fn live_read_matches_ip_addr() {
        let net = read(&Root::live());
        let lo = iface(&net, "lo");
        assert_eq!(lo.kind, Field::Present("loopback".into()));
        let output = std::process::Command::new("ip")
            .args(["-j", "addr"])
            .output()
            .expect("the `ip` command (iproute2) is needed for this test");
        assert!(output.status.success(), "ip -j addr failed");
        let parsed: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        let mut compared = 0;
        for link in parsed.as_array().unwrap() {
            let name = link["ifname"].as_str().unwrap();
            let mut want: Vec<String> = link["addr_info"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|a| a["family"] == "inet")
                .map(|a| format!("{}/{}", a["local"].as_str().unwrap(), a["prefixlen"]))
                .collect();
            want.sort();
            let mut got = v4(&iface(&net, name).ipv4_addresses);
            got.sort();
            assert_eq!(got, want, "interface {name}");
            compared += 1;
        }
        assert!(compared >= 1);
        assert!(v4(&lo.ipv4_addresses).contains(&"127.0.0.1/8".to_string()));
    }
}
