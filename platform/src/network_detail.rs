//! The optional `network_detail` category: for each Wi-Fi interface, the SSID and BSSID
//! of the network it is connected to, the frequency and the signal.
//!
//! On the live system the facts come from nl80211 over generic netlink (interface dump,
//! then a station dump per interface in station mode); `/proc/net/wireless` adds the link
//! quality and stands in for the signal where nl80211 is missing. Under a fixture root
//! only `/proc/net/wireless` is read, so SSID and BSSID are absent there.
//!
//! Only the access point a station-mode interface is associated with is reported: on an
//! interface in access-point mode the station dump lists client devices, and their
//! addresses are never read.
//!
//! The list of access points around the device comes from the kernel's last scan
//! (NL80211_CMD_GET_SCAN as a dump, which never starts a scan): BSSID, SSID, frequency,
//! signal, age and whether it is the associated one, at most [`MAX_ACCESS_POINTS`],
//! strongest first. Of the information elements only the SSID is read; the others can
//! carry device names and serials. Cellular modems come from `cellular`.

use crate::cellular::{self, CellularOptions, ModemCell};
use crate::netlink::{self, genl_attrs, GenlSocket, NetlinkError, NLM_F_DUMP};
use crate::read::TEXT_LIMIT;
use crate::{Field, Root};
use nix::errno::Errno;
use serde::{Deserialize, Serialize};

/// What the `network_detail` category reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkDetail {
    /// Wi-Fi interfaces, sorted by name.
    pub wifi: Field<Vec<WifiLink>>,
    /// Access points from the last scan, strongest first; absent when the operator
    /// turned the list off.
    pub access_points: Field<Vec<AccessPoint>>,
    /// Serving cell and signal per modem, from ModemManager.
    pub modems: Field<Vec<ModemCell>>,
}

/// One access point of the kernel's scan results.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessPoint {
    pub bssid: String,
    /// Absent for a hidden network (no SSID, or one of only zero bytes).
    pub ssid: Field<Ssid>,
    pub frequency_mhz: Field<u32>,
    pub signal_dbm: Field<i32>,
    /// How long ago the access point was last seen.
    pub age_ms: Field<u32>,
    /// Whether the interface is associated with it.
    pub associated: bool,
}

/// One Wi-Fi interface and the network it is connected to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WifiLink {
    pub interface: String,
    /// The connected network's name; absent when not connected.
    pub ssid: Field<Ssid>,
    /// The access point's MAC address, lower-case colon hex.
    pub bssid: Field<String>,
    pub frequency_mhz: Field<u32>,
    pub signal_dbm: Field<i32>,
    /// The driver's link quality figure from `/proc/net/wireless` (driver-specific scale,
    /// commonly 0..70).
    pub link_quality: Field<u32>,
}

/// An SSID: up to 32 arbitrary bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ssid {
    /// The SSID as text; bytes that are not UTF-8 are replaced by U+FFFD.
    pub text: String,
    /// The exact bytes in lower-case hex, given only when `text` is not exact (the SSID
    /// is not UTF-8 or holds control characters).
    pub hex: Option<String>,
}

impl Ssid {
    /// Keeps the text, and the hex as well when the text is not exact.
    pub fn from_bytes(bytes: &[u8]) -> Ssid {
        let text = String::from_utf8_lossy(bytes).into_owned();
        let exact = std::str::from_utf8(bytes).is_ok_and(|s| !s.chars().any(char::is_control));
        Ssid {
            text,
            hex: (!exact).then(|| bytes.iter().map(|b| format!("{b:02x}")).collect()),
        }
    }
}

// nl80211 commands and attributes (include/uapi/linux/nl80211.h).
const NL80211_CMD_GET_INTERFACE: u8 = 5;
const NL80211_CMD_GET_STATION: u8 = 17;
const NL80211_ATTR_IFINDEX: u16 = 3;
const NL80211_ATTR_IFNAME: u16 = 4;
const NL80211_ATTR_IFTYPE: u16 = 5;
const NL80211_ATTR_MAC: u16 = 6;
const NL80211_ATTR_STA_INFO: u16 = 21;
const NL80211_ATTR_WIPHY_FREQ: u16 = 38;
const NL80211_ATTR_SSID: u16 = 52;
const NL80211_STA_INFO_SIGNAL: u16 = 7;
const NL80211_STA_INFO_SIGNAL_AVG: u16 = 13;
const NL80211_IFTYPE_STATION: u32 = 2;
const NL80211_CMD_GET_SCAN: u8 = 32;
const NL80211_ATTR_BSS: u16 = 47;
const NL80211_BSS_BSSID: u16 = 1;
const NL80211_BSS_FREQUENCY: u16 = 2;
const NL80211_BSS_INFORMATION_ELEMENTS: u16 = 6;
const NL80211_BSS_SIGNAL_MBM: u16 = 7;
const NL80211_BSS_STATUS: u16 = 9;
const NL80211_BSS_SEEN_MS_AGO: u16 = 10;
const NL80211_BSS_STATUS_ASSOCIATED: u32 = 1;
/// The most Wi-Fi interfaces reported.
const MAX_WIFI: usize = 64;
/// The most access points reported.
pub const MAX_ACCESS_POINTS: usize = 64;

/// One entry of an nl80211 scan dump.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ScanEntry {
    pub(crate) bssid: [u8; 6],
    /// `None`: no SSID element; `Some(Err)`: the elements are cut inside it.
    pub(crate) ssid: Option<Result<Vec<u8>, String>>,
    pub(crate) frequency_mhz: Option<u32>,
    /// In mBm (1/100 dBm), as the kernel gives it.
    pub(crate) signal_mbm: Option<i32>,
    pub(crate) seen_ms_ago: Option<u32>,
    pub(crate) associated: bool,
}

/// Finds the SSID element (id 0) in an information element list. Elements after it are
/// not looked at; a list cut short before its end is an error.
pub(crate) fn ssid_element(ies: &[u8]) -> Option<Result<Vec<u8>, String>> {
    let mut rest = ies;
    while let [id, len, body @ ..] = rest {
        let len = usize::from(*len);
        let Some(data) = body.get(..len) else {
            return Some(Err(if *id == 0 {
                "the SSID element is cut short".to_string()
            } else {
                "the information elements are cut short".to_string()
            }));
        };
        if *id == 0 {
            if len > 32 {
                return Some(Err(format!("the SSID element is {len} bytes, over 32")));
            }
            return Some(Ok(data.to_vec()));
        }
        rest = &body[len..];
    }
    (!rest.is_empty()).then(|| Err("the information elements end inside a header".to_string()))
}

/// Parses an NL80211_CMD_NEW_SCAN_RESULTS payload (one BSS).
pub(crate) fn parse_scan_entry(payload: &[u8]) -> Result<ScanEntry, NetlinkError> {
    let (_, attrs) = genl_attrs(payload)?;
    let bss = attrs
        .iter()
        .find(|a| a.kind == NL80211_ATTR_BSS)
        .ok_or(NetlinkError::BadAttribute(NL80211_ATTR_BSS))?;
    let mut entry = ScanEntry {
        bssid: [0; 6],
        ssid: None,
        frequency_mhz: None,
        signal_mbm: None,
        seen_ms_ago: None,
        associated: false,
    };
    let mut have_bssid = false;
    for a in netlink::parse_attrs(bss.data)? {
        match a.kind {
            NL80211_BSS_BSSID => {
                entry.bssid = a
                    .data
                    .try_into()
                    .map_err(|_| NetlinkError::BadAttribute(a.kind))?;
                have_bssid = true;
            }
            NL80211_BSS_FREQUENCY => entry.frequency_mhz = Some(netlink::attr_u32(&a)?),
            NL80211_BSS_INFORMATION_ELEMENTS => entry.ssid = ssid_element(a.data),
            NL80211_BSS_SIGNAL_MBM => entry.signal_mbm = Some(netlink::attr_u32(&a)? as i32),
            NL80211_BSS_STATUS => {
                entry.associated = netlink::attr_u32(&a)? == NL80211_BSS_STATUS_ASSOCIATED
            }
            NL80211_BSS_SEEN_MS_AGO => entry.seen_ms_ago = Some(netlink::attr_u32(&a)?),
            _ => {}
        }
    }
    if !have_bssid {
        return Err(NetlinkError::BadAttribute(NL80211_BSS_BSSID));
    }
    Ok(entry)
}

/// Adds the scan dump's parseable entries to `list`, which stays sorted strongest first
/// (unknown signal last) and at most [`MAX_ACCESS_POINTS`] long. An insertion, not a
/// sort: the slice sorts cost about 6 KB of flash.
pub(crate) fn add_access_points(list: &mut Vec<AccessPoint>, payloads: &[Vec<u8>]) {
    for e in payloads.iter().filter_map(|p| parse_scan_entry(p).ok()) {
        let signal = e.signal_mbm.map(|m| (m + 50).div_euclid(100));
        let at = list
            .iter()
            .position(|ap| ap.signal_dbm.present().copied() < signal)
            .unwrap_or(list.len());
        if at >= MAX_ACCESS_POINTS {
            continue;
        }
        list.insert(
            at,
            AccessPoint {
                bssid: format_mac(&e.bssid),
                ssid: match e.ssid {
                    None => Field::Absent,
                    Some(Ok(s)) if s.iter().all(|b| *b == 0) => Field::Absent,
                    Some(Ok(s)) => Field::Present(Ssid::from_bytes(&s)),
                    Some(Err(reason)) => Field::Malformed(reason),
                },
                frequency_mhz: e.frequency_mhz.map_or(Field::Absent, Field::Present),
                signal_dbm: signal.map_or(Field::Absent, Field::Present),
                age_ms: e.seen_ms_ago.map_or(Field::Absent, Field::Present),
                associated: e.associated,
            },
        );
        list.truncate(MAX_ACCESS_POINTS);
    }
}

/// One entry of an nl80211 interface dump.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Nl80211Interface {
    pub(crate) ifindex: u32,
    pub(crate) name: Option<String>,
    pub(crate) iftype: Option<u32>,
    pub(crate) ssid: Option<Vec<u8>>,
    pub(crate) frequency_mhz: Option<u32>,
}

/// One entry of an nl80211 station dump.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Nl80211Station {
    pub(crate) mac: Option<[u8; 6]>,
    pub(crate) signal_dbm: Option<i8>,
}

/// Parses an NL80211_CMD_NEW_INTERFACE payload. The interface's own MAC address
/// (NL80211_ATTR_MAC) is deliberately not kept.
pub(crate) fn parse_interface(payload: &[u8]) -> Result<Nl80211Interface, NetlinkError> {
    let (_, attrs) = genl_attrs(payload)?;
    let mut iface = Nl80211Interface {
        ifindex: 0,
        name: None,
        iftype: None,
        ssid: None,
        frequency_mhz: None,
    };
    let mut have_index = false;
    for a in attrs {
        match a.kind {
            NL80211_ATTR_IFINDEX => {
                iface.ifindex = netlink::attr_u32(&a)?;
                have_index = true;
            }
            NL80211_ATTR_IFNAME => iface.name = Some(netlink::attr_string(&a)),
            NL80211_ATTR_IFTYPE => iface.iftype = Some(netlink::attr_u32(&a)?),
            NL80211_ATTR_WIPHY_FREQ => iface.frequency_mhz = Some(netlink::attr_u32(&a)?),
            NL80211_ATTR_SSID => {
                if a.data.len() > 32 {
                    return Err(NetlinkError::BadAttribute(a.kind));
                }
                iface.ssid = Some(a.data.to_vec());
            }
            _ => {}
        }
    }
    if !have_index {
        return Err(NetlinkError::BadAttribute(NL80211_ATTR_IFINDEX));
    }
    Ok(iface)
}

/// Parses an NL80211_CMD_NEW_STATION payload: the peer's MAC and its signal (the
/// last-frame signal, else the average).
pub(crate) fn parse_station(payload: &[u8]) -> Result<Nl80211Station, NetlinkError> {
    let (_, attrs) = genl_attrs(payload)?;
    let mut station = Nl80211Station {
        mac: None,
        signal_dbm: None,
    };
    for a in attrs {
        match a.kind {
            NL80211_ATTR_MAC => {
                station.mac = Some(
                    a.data
                        .try_into()
                        .map_err(|_| NetlinkError::BadAttribute(a.kind))?,
                );
            }
            NL80211_ATTR_STA_INFO => {
                let mut average = None;
                for info in netlink::parse_attrs(a.data)? {
                    let signed = || -> Result<i8, NetlinkError> {
                        match info.data {
                            [b] => Ok(i8::from_ne_bytes([*b])),
                            _ => Err(NetlinkError::BadAttribute(info.kind)),
                        }
                    };
                    match info.kind {
                        NL80211_STA_INFO_SIGNAL => station.signal_dbm = Some(signed()?),
                        NL80211_STA_INFO_SIGNAL_AVG => average = Some(signed()?),
                        _ => {}
                    }
                }
                station.signal_dbm = station.signal_dbm.or(average);
            }
            _ => {}
        }
    }
    Ok(station)
}

/// Runs every nl80211 reply parser over one receive buffer, as the reader meets it: the
/// netlink framing, the reply collector (dump and single-reply modes, with the first
/// message's sequence number), and each payload as a family-id reply, an interface and
/// a station. Returns how many payloads parsed as something.
///
/// For the fuzz targets (`fuzz/`): the parsers themselves stay crate-private because
/// their types are not part of the API.
#[doc(hidden)]
pub fn fuzz_nl80211_reply(buf: &[u8]) -> usize {
    let mut parsed = 0;
    let Ok(messages) = netlink::parse_messages(buf) else {
        return parsed;
    };
    if let Some(first) = messages.first() {
        for dump in [true, false] {
            let mut collector = netlink::ReplyCollector::default();
            if collector.take(buf, first.seq, dump).is_ok() {
                parsed += collector.payloads.len();
            }
        }
    }
    for message in &messages {
        parsed += usize::from(netlink::parse_family_id(message.payload).is_ok());
        parsed += usize::from(netlink::error_code(message.payload).is_ok());
        if let Ok(iface) = parse_interface(message.payload) {
            parsed += 1;
            if let Some(ssid) = iface.ssid.as_deref() {
                let ssid = Ssid::from_bytes(ssid);
                parsed += usize::from(ssid.hex.is_some());
            }
        }
        if let Ok(entry) = parse_scan_entry(message.payload) {
            parsed += 1;
            parsed += usize::from(matches!(entry.ssid, Some(Ok(_))));
        }
        if let Ok(station) = parse_station(message.payload) {
            parsed += 1;
            if let Some(mac) = station.mac.as_ref() {
                parsed += usize::from(format_mac(mac).len() == 17);
            }
        }
    }
    parsed
}

fn format_mac(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// One line of `/proc/net/wireless`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WirelessStat {
    pub interface: String,
    pub link_quality: Field<u32>,
    pub signal_dbm: Field<i32>,
}

/// Parses `/proc/net/wireless`: two header lines, then `name: status link. level. noise.
/// ...` per interface. The level is in dBm when negative; a positive level is a driver's
/// relative figure and is reported malformed rather than misread as dBm.
pub fn parse_proc_wireless(bytes: &[u8]) -> Result<Vec<WirelessStat>, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "wireless table is not UTF-8".to_string())?;
    let mut lines = text.lines();
    let header = (lines.next(), lines.next());
    if !matches!(header, (Some(a), Some(_)) if a.starts_with("Inter-|")) {
        return Err("wireless table has no header".to_string());
    }
    let mut stats = Vec::new();
    for (n, line) in lines.enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = || format!("wireless line {} is malformed", n + 3);
        let (name, rest) = line.split_once(':').ok_or_else(bad)?;
        let cols: Vec<&str> = rest.split_whitespace().collect();
        if cols.len() < 4 {
            return Err(bad());
        }
        let number = |s: &str| -> Result<i64, String> {
            s.trim_end_matches('.').parse::<i64>().map_err(|_| {
                format!(
                    "wireless value {:?} is not a number",
                    crate::field::truncate_for_reason(s)
                )
            })
        };
        let link_quality = Field::from_parse(number(cols[1]).and_then(|q| {
            u32::try_from(q).map_err(|_| format!("link quality {q} is out of range"))
        }));
        let signal_dbm = Field::from_parse(number(cols[2]).and_then(|l| match l {
            -200..=-1 => Ok(l as i32),
            other => Err(format!("signal level {other} is not in dBm")),
        }));
        if stats.len() < MAX_WIFI {
            stats.push(WirelessStat {
                interface: name.trim().to_string(),
                link_quality,
                signal_dbm,
            });
        }
    }
    Ok(stats)
}

/// Reads the `network_detail` category under `root`.
/// Reads the `network_detail` category under `root`. `wifi_list` turns the scan dump on.
pub fn read(root: &Root, wifi_list: bool, cellular: &CellularOptions) -> NetworkDetail {
    let proc_stats = Field::from_file(root, "/proc/net/wireless", TEXT_LIMIT, parse_proc_wireless);
    let (nl, access_points) = if root.is_live() {
        read_nl80211(wifi_list)
    } else {
        (Field::Absent, Field::Absent)
    };
    NetworkDetail {
        wifi: merge(nl, proc_stats),
        access_points,
        modems: cellular::read_cells(root, cellular),
    }
}

/// Joins the nl80211 view and the `/proc/net/wireless` view by interface name.
fn merge(nl: Field<Vec<WifiLink>>, proc_stats: Field<Vec<WirelessStat>>) -> Field<Vec<WifiLink>> {
    if !nl.is_present() && !proc_stats.is_present() {
        return nl.or_else(|| proc_stats.map(|_| Vec::new()));
    }
    // A list, not a map: a BTreeMap instantiation costs kilobytes of flash, and there
    // are at most a few interfaces.
    let mut links: Vec<WifiLink> = Vec::new();
    for link in nl.into_present().unwrap_or_default() {
        match links.iter_mut().find(|l| l.interface == link.interface) {
            Some(slot) => *slot = link,
            None => links.push(link),
        }
    }
    for stat in proc_stats.into_present().unwrap_or_default() {
        let at = match links.iter().position(|l| l.interface == stat.interface) {
            Some(at) => at,
            None => {
                links.push(WifiLink {
                    interface: stat.interface.clone(),
                    ssid: Field::Absent,
                    bssid: Field::Absent,
                    frequency_mhz: Field::Absent,
                    signal_dbm: Field::Absent,
                    link_quality: Field::Absent,
                });
                links.len() - 1
            }
        };
        let link = &mut links[at];
        link.link_quality = stat.link_quality;
        if !link.signal_dbm.is_present() {
            link.signal_dbm = stat.signal_dbm;
        }
    }
    crate::read::sort_by(&mut links, |a, b| a.interface < b.interface);
    links.truncate(MAX_WIFI);
    Field::Present(links)
}

/// The connected links, and the scan results when `wifi_list`.
type Nl80211View = (Field<Vec<WifiLink>>, Field<Vec<AccessPoint>>);

/// Asks nl80211 for every Wi-Fi interface and, in station mode, its access point and
/// (when `wifi_list`) the last scan's results.
fn read_nl80211(wifi_list: bool) -> Nl80211View {
    let failed = |e: NetlinkError| {
        (
            nl_error(e.clone()),
            if wifi_list {
                nl_error(e)
            } else {
                Field::Absent
            },
        )
    };
    let mut sock = match GenlSocket::open() {
        Ok(s) => s,
        Err(e) => return failed(e),
    };
    let family = match sock.family_id("nl80211") {
        Ok(Some(id)) => id,
        Ok(None) => return (Field::Absent, Field::Absent),
        Err(e) => return failed(e),
    };
    let replies = match sock.exchange(family, NLM_F_DUMP, NL80211_CMD_GET_INTERFACE, 0, &[]) {
        Ok(r) => r,
        Err(e) => return failed(e),
    };
    let mut links = Vec::new();
    let mut aps: Field<Vec<AccessPoint>> = if wifi_list {
        Field::Present(Vec::new())
    } else {
        Field::Absent
    };
    for payload in replies.iter().take(MAX_WIFI) {
        let iface = match parse_interface(payload) {
            Ok(i) => i,
            Err(e) => return failed(e),
        };
        if wifi_list && iface.iftype == Some(NL80211_IFTYPE_STATION) {
            let index = iface.ifindex.to_ne_bytes();
            log::debug!("nl80211 scan dump: ifindex {}", iface.ifindex);
            match sock.exchange(
                family,
                NLM_F_DUMP,
                NL80211_CMD_GET_SCAN,
                0,
                &[(NL80211_ATTR_IFINDEX, &index)],
            ) {
                Ok(results) => {
                    if let Field::Present(list) = &mut aps {
                        add_access_points(list, &results);
                    }
                }
                Err(e) => aps = nl_error(e),
            }
        }
        let mut link = WifiLink {
            interface: iface
                .name
                .clone()
                .unwrap_or_else(|| format!("ifindex {}", iface.ifindex)),
            ssid: iface
                .ssid
                .as_deref()
                .map_or(Field::Absent, |s| Field::Present(Ssid::from_bytes(s))),
            bssid: Field::Absent,
            frequency_mhz: iface.frequency_mhz.map_or(Field::Absent, Field::Present),
            signal_dbm: Field::Absent,
            link_quality: Field::Absent,
        };
        if iface.iftype == Some(NL80211_IFTYPE_STATION) && iface.ssid.is_some() {
            let index = iface.ifindex.to_ne_bytes();
            match sock.exchange(
                family,
                NLM_F_DUMP,
                NL80211_CMD_GET_STATION,
                0,
                &[(NL80211_ATTR_IFINDEX, &index)],
            ) {
                Ok(stations) => {
                    // In station mode the only peer is the access point.
                    if let Some(Ok(ap)) = stations.first().map(|p| parse_station(p)) {
                        link.bssid = ap
                            .mac
                            .as_ref()
                            .map_or(Field::Absent, |m| Field::Present(format_mac(m)));
                        link.signal_dbm = ap
                            .signal_dbm
                            .map_or(Field::Absent, |s| Field::Present(i32::from(s)));
                    }
                }
                Err(e) => {
                    link.bssid = nl_error(e.clone());
                    link.signal_dbm = nl_error(e);
                }
            }
        }
        links.push(link);
    }
    (Field::Present(links), aps)
}

fn nl_error<T>(e: NetlinkError) -> Field<T> {
    match e {
        NetlinkError::Socket(Errno::EAFNOSUPPORT | Errno::EPROTONOSUPPORT)
        | NetlinkError::Kernel(Errno::ENOENT | Errno::ENODEV | Errno::EOPNOTSUPP) => Field::Absent,
        NetlinkError::Socket(Errno::EACCES | Errno::EPERM)
        | NetlinkError::Kernel(Errno::EACCES | Errno::EPERM) => Field::Denied,
        other => Field::Malformed(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netlink::wire::{attr, genl_msg, msg, nested};
    use crate::netlink::{parse_messages, NLMSG_DONE, NLM_F_MULTI};
    use std::path::Path;

    const FAMILY: u16 = 0x1c;

    /// A NEW_INTERFACE dump entry as a kernel sends it for a connected station:
    /// ifindex, ifname, wiphy, iftype, own MAC, generation, SSID, frequency, channel
    /// attributes, and a tx-power attribute this parser does not know.
    fn interface_reply(seq: u32, ssid: &[u8]) -> Vec<u8> {
        genl_msg(
            FAMILY,
            NLM_F_MULTI,
            seq,
            7,
            &[
                attr(NL80211_ATTR_IFINDEX, &3u32.to_ne_bytes()),
                attr(NL80211_ATTR_IFNAME, b"wlan0\0"),
                attr(1, &0u32.to_ne_bytes()),
                attr(NL80211_ATTR_IFTYPE, &NL80211_IFTYPE_STATION.to_ne_bytes()),
                attr(NL80211_ATTR_MAC, &[0xdc, 0xa6, 0x32, 0x5e, 0x71, 0xa5]),
                attr(46, &12u32.to_ne_bytes()),
                attr(NL80211_ATTR_SSID, ssid),
                attr(NL80211_ATTR_WIPHY_FREQ, &5180u32.to_ne_bytes()),
                attr(159, &1u32.to_ne_bytes()),
                attr(160, &5190u32.to_ne_bytes()),
                attr(0x99, &2000u32.to_ne_bytes()),
            ],
        )
    }

    /// A NEW_STATION dump entry: ifindex, AP MAC, generation, and nested station info
    /// with inactive time, rx bytes, signal -52 and average -54, and a nested bitrate.
    fn station_reply(seq: u32) -> Vec<u8> {
        genl_msg(
            FAMILY,
            NLM_F_MULTI,
            seq,
            19,
            &[
                attr(NL80211_ATTR_IFINDEX, &3u32.to_ne_bytes()),
                attr(NL80211_ATTR_MAC, &[0x02, 0x1a, 0x2b, 0x3c, 0x4d, 0x5e]),
                attr(46, &12u32.to_ne_bytes()),
                nested(
                    NL80211_ATTR_STA_INFO,
                    &[
                        attr(1, &400u32.to_ne_bytes()),
                        attr(2, &123456u32.to_ne_bytes()),
                        attr(NL80211_STA_INFO_SIGNAL, &[(-52i8) as u8]),
                        attr(NL80211_STA_INFO_SIGNAL_AVG, &[(-54i8) as u8]),
                        nested(8, &[attr(1, &[0x08, 0x02]), attr(5, &520u32.to_ne_bytes())]),
                    ],
                ),
            ],
        )
    }

    #[test]
    fn interface_dump_reply_gives_name_ssid_and_frequency() {
        let bytes = [
            interface_reply(2, b"Hallway-5G"),
            msg(NLMSG_DONE, NLM_F_MULTI, 2, &0u32.to_ne_bytes()),
        ]
        .concat();
        let msgs = parse_messages(&bytes).unwrap();
        assert_eq!(msgs.len(), 2);
        let iface = parse_interface(msgs[0].payload).unwrap();
        assert_eq!(
            iface,
            Nl80211Interface {
                ifindex: 3,
                name: Some("wlan0".into()),
                iftype: Some(2),
                ssid: Some(b"Hallway-5G".to_vec()),
                frequency_mhz: Some(5180),
            }
        );
    }

    #[test]
    fn station_reply_gives_bssid_and_signed_signal() {
        let bytes = station_reply(3);
        let msgs = parse_messages(&bytes).unwrap();
        let sta = parse_station(msgs[0].payload).unwrap();
        assert_eq!(sta.mac, Some([0x02, 0x1a, 0x2b, 0x3c, 0x4d, 0x5e]));
        assert_eq!(sta.signal_dbm, Some(-52));
        assert_eq!(format_mac(&sta.mac.unwrap()), "02:1a:2b:3c:4d:5e");
        // Without the last-frame signal the average is used.
        let avg_only = genl_msg(
            FAMILY,
            0,
            1,
            19,
            &[nested(
                NL80211_ATTR_STA_INFO,
                &[attr(NL80211_STA_INFO_SIGNAL_AVG, &[(-70i8) as u8])],
            )],
        );
        let msgs = parse_messages(&avg_only).unwrap();
        assert_eq!(
            parse_station(msgs[0].payload).unwrap().signal_dbm,
            Some(-70)
        );
    }

    #[test]
    fn hostile_nl80211_replies_are_rejected() {
        // Truncated: the buffer ends inside the station info.
        let full = station_reply(3);
        assert_eq!(
            parse_messages(&full[..full.len() - 6]),
            Err(NetlinkError::Truncated)
        );
        // A nested attribute whose inner length overruns its parent.
        let bad_inner = genl_msg(
            FAMILY,
            0,
            1,
            19,
            &[attr(NL80211_ATTR_STA_INFO, &[200, 0, 7, 0, 0xcc, 0, 0, 0])],
        );
        let msgs = parse_messages(&bad_inner).unwrap();
        assert_eq!(parse_station(msgs[0].payload), Err(NetlinkError::Truncated));
        // Bad lengths: a 2-byte signal, a 5-byte MAC, a 3-byte ifindex, a 33-byte SSID.
        let two_byte_signal = genl_msg(
            FAMILY,
            0,
            1,
            19,
            &[nested(
                NL80211_ATTR_STA_INFO,
                &[attr(NL80211_STA_INFO_SIGNAL, &[1, 2])],
            )],
        );
        let msgs = parse_messages(&two_byte_signal).unwrap();
        assert_eq!(
            parse_station(msgs[0].payload),
            Err(NetlinkError::BadAttribute(NL80211_STA_INFO_SIGNAL))
        );
        let short_mac = genl_msg(
            FAMILY,
            0,
            1,
            19,
            &[attr(NL80211_ATTR_MAC, &[1, 2, 3, 4, 5])],
        );
        let msgs = parse_messages(&short_mac).unwrap();
        assert_eq!(
            parse_station(msgs[0].payload),
            Err(NetlinkError::BadAttribute(NL80211_ATTR_MAC))
        );
        let short_index = genl_msg(FAMILY, 0, 1, 7, &[attr(NL80211_ATTR_IFINDEX, &[1, 2, 3])]);
        let msgs = parse_messages(&short_index).unwrap();
        assert_eq!(
            parse_interface(msgs[0].payload),
            Err(NetlinkError::BadAttribute(NL80211_ATTR_IFINDEX))
        );
        let long_ssid = interface_reply(1, &[b'a'; 33]);
        let msgs = parse_messages(&long_ssid).unwrap();
        assert_eq!(
            parse_interface(msgs[0].payload),
            Err(NetlinkError::BadAttribute(NL80211_ATTR_SSID))
        );
        // No ifindex at all.
        let no_index = genl_msg(FAMILY, 0, 1, 7, &[attr(0x7ff, b"unknown")]);
        let msgs = parse_messages(&no_index).unwrap();
        assert!(parse_interface(msgs[0].payload).is_err());
        // An attribute length of 1 inside the genl payload.
        let mut bad_len = interface_reply(1, b"x");
        bad_len[20..22].copy_from_slice(&1u16.to_ne_bytes());
        let msgs = parse_messages(&bad_len).unwrap();
        assert_eq!(
            parse_interface(msgs[0].payload),
            Err(NetlinkError::BadLength)
        );
    }

    #[test]
    fn non_utf8_ssids_keep_their_bytes_in_hex() {
        let s = Ssid::from_bytes(b"Caf\xe9");
        assert_eq!(s.text, "Caf\u{fffd}");
        assert_eq!(s.hex.as_deref(), Some("436166e9"));
        let s = Ssid::from_bytes("Café ☕".as_bytes());
        assert_eq!(
            s,
            Ssid {
                text: "Café ☕".into(),
                hex: None
            }
        );
        let s = Ssid::from_bytes(b"a\nb");
        assert_eq!(s.hex.as_deref(), Some("610a62"));
        let bytes = interface_reply(1, b"\xff\xfe\x00x");
        let msgs = parse_messages(&bytes).unwrap();
        let iface = parse_interface(msgs[0].payload).unwrap();
        assert_eq!(
            Ssid::from_bytes(&iface.ssid.unwrap()).hex.as_deref(),
            Some("fffe0078")
        );
    }

    #[test]
    fn proc_wireless_table() {
        let text =
            b"Inter-| sta-|   Quality        |   Discarded packets               | Missed | WE\n \
face | tus | link level noise |  nwid  crypt   frag  retry   misc | beacon | 22\n \
wlan0: 0000   58.  -52.  -256        0      0      0      0     21        0\n \
wlan1: 0000   70   60   0        0      0      0      0     0        0\n";
        let stats = parse_proc_wireless(text).unwrap();
        assert_eq!(stats.len(), 2);
        assert_eq!(stats[0].interface, "wlan0");
        assert_eq!(stats[0].link_quality, Field::Present(58));
        assert_eq!(stats[0].signal_dbm, Field::Present(-52));
        assert!(matches!(stats[1].signal_dbm, Field::Malformed(_)));
        assert_eq!(
            parse_proc_wireless(&text[..text.len() - 1]).unwrap().len(),
            2
        );
        let header_only = b"Inter-| sta-|\n face | tus |\n";
        assert_eq!(parse_proc_wireless(header_only), Ok(vec![]));
        assert!(parse_proc_wireless(b"").is_err());
        assert!(parse_proc_wireless(b"Inter-|\n face\n wlan0 0000 58. -52.\n").is_err());
        assert!(parse_proc_wireless(b"Inter-|\n face\n wlan0: 0000\n").is_err());
        assert!(parse_proc_wireless(b"Inter-|\n face\n \xff\n").is_err());
        let huge =
            parse_proc_wireless(b"Inter-|\n face\n w: 0 99999999999999999999. -9999999. 0\n")
                .unwrap();
        assert!(matches!(huge[0].link_quality, Field::Malformed(_)));
        assert!(matches!(huge[0].signal_dbm, Field::Malformed(_)));
    }

    #[test]
    fn merge_fills_gaps_from_proc() {
        let nl = Field::Present(vec![WifiLink {
            interface: "wlan0".into(),
            ssid: Field::Present(Ssid::from_bytes(b"x")),
            bssid: Field::Present("02:1a:2b:3c:4d:5e".into()),
            frequency_mhz: Field::Present(2412),
            signal_dbm: Field::Absent,
            link_quality: Field::Absent,
        }]);
        let stats = Field::Present(vec![WirelessStat {
            interface: "wlan0".into(),
            link_quality: Field::Present(40),
            signal_dbm: Field::Present(-60),
        }]);
        let merged = merge(nl, stats).into_present().unwrap();
        assert_eq!(merged.len(), 1);
        assert_eq!(merged[0].signal_dbm, Field::Present(-60));
        assert_eq!(merged[0].link_quality, Field::Present(40));
        assert_eq!(merged[0].frequency_mhz, Field::Present(2412));
        assert_eq!(merge(Field::Absent, Field::Absent), Field::Absent);
        assert_eq!(merge(Field::Absent, Field::Denied), Field::Denied);
    }

    fn fixture(name: &str) -> Root {
        Root::at(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../tests/fixtures/roots")
                .join(name),
        )
    }

    #[test]
    fn fixture_roots() {
        let rpi = read_all(&fixture("rpi4-raspios64"))
            .wifi
            .into_present()
            .unwrap();
        assert_eq!(rpi.len(), 1);
        assert_eq!(rpi[0].interface, "wlan0");
        assert_eq!(rpi[0].signal_dbm, Field::Present(-52));
        assert_eq!(rpi[0].link_quality, Field::Present(58));
        assert_eq!(
            rpi[0].ssid,
            Field::Absent,
            "SSIDs come only from nl80211 on a live root"
        );
        assert_eq!(
            read_all(&fixture("yocto-opkg")).wifi,
            Field::Present(vec![])
        );
        assert_eq!(read_all(&fixture("x86-gateway")).wifi, Field::Absent);
        assert_eq!(read_all(&fixture("container")).wifi, Field::Absent);
        let garbage = read_all(&fixture("garbage")).wifi.into_present().unwrap();
        assert_eq!(garbage.len(), 1);
        assert!(matches!(garbage[0].signal_dbm, Field::Malformed(_)));
        assert!(matches!(garbage[0].link_quality, Field::Malformed(_)));
    }

    #[test]
    fn live_read_without_wifi_reports_nothing_and_returns() {
        // This machine has no Wi-Fi interface (no `wireless/` under /sys/class/net).
        let wireless = std::fs::read_dir("/sys/class/net")
            .unwrap()
            .filter_map(Result::ok)
            .any(|e| e.path().join("wireless").is_dir());
        assert!(!wireless, "this test expects a machine without Wi-Fi");
        let started = std::time::Instant::now();
        let detail = read_all(&Root::live());
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        match detail.wifi {
            Field::Absent => {}
            Field::Present(list) => assert!(list.is_empty(), "{list:?}"),
            other => panic!("nl80211 without Wi-Fi should be absent or empty: {other:?}"),
        }
    }

    fn access_points(_interface: &str, payloads: &[Vec<u8>]) -> Vec<AccessPoint> {
        let mut list = Vec::new();
        add_access_points(&mut list, payloads);
        list
    }

    fn read_all(root: &Root) -> NetworkDetail {
        read(root, true, &CellularOptions::default())
    }

    /// A NEW_SCAN_RESULTS dump entry as the kernel lays it out (nl80211_send_bss):
    /// generation, ifindex, wdev, then NL80211_ATTR_BSS nesting BSSID, TSF, beacon
    /// interval, capability, frequency, seen-ms-ago, the information elements, the
    /// signal in mBm and the status when associated.
    fn bss(mac_last: u8, ies: &[u8], signal_mbm: i32, status: Option<u32>) -> Vec<u8> {
        let mut inner = vec![
            attr(NL80211_BSS_BSSID, &[0x02, 0x11, 0x22, 0x33, 0x44, mac_last]),
            attr(3, &123_456_789u64.to_ne_bytes()),
            attr(4, &100u16.to_ne_bytes()),
            attr(5, &0x0431u16.to_ne_bytes()),
            attr(NL80211_BSS_FREQUENCY, &2437u32.to_ne_bytes()),
            attr(NL80211_BSS_SEEN_MS_AGO, &1500u32.to_ne_bytes()),
            attr(NL80211_BSS_INFORMATION_ELEMENTS, ies),
            attr(NL80211_BSS_SIGNAL_MBM, &signal_mbm.to_ne_bytes()),
        ];
        if let Some(s) = status {
            inner.push(attr(NL80211_BSS_STATUS, &s.to_ne_bytes()));
        }
        [
            vec![34, 1, 0, 0],
            attr(46, &7u32.to_ne_bytes()),
            attr(NL80211_ATTR_IFINDEX, &3u32.to_ne_bytes()),
            attr(153, &1u64.to_ne_bytes()),
            nested(NL80211_ATTR_BSS, &inner),
        ]
        .concat()
    }

    /// SSID element, supported rates, DS parameter set, and a vendor element carrying a
    /// WPS device name and serial (which must never be read).
    fn ies(ssid: &[u8]) -> Vec<u8> {
        let mut v = vec![0, ssid.len() as u8];
        v.extend_from_slice(ssid);
        v.extend_from_slice(&[1, 4, 0x82, 0x84, 0x8b, 0x96, 3, 1, 6]);
        let wps = b"\x00\x50\xf2\x04\x10\x11\x00\x06Kitchen\x10\x42\x00\x04SN42";
        v.extend_from_slice(&[221, wps.len() as u8]);
        v.extend_from_slice(wps);
        v
    }

    #[test]
    fn scan_entries_keep_only_the_ssid_and_flag_the_associated_one() {
        let entries = vec![
            bss(1, &ies(b"Cafe"), -7250, None),
            bss(2, &ies(b"Home"), -4125, Some(NL80211_BSS_STATUS_ASSOCIATED)),
            bss(3, &ies(b""), -6000, None),
            bss(4, &ies(&[0; 6]), -5000, Some(0)),
        ];
        let aps = access_points("wlan0", &entries);
        let summary: Vec<_> = aps
            .iter()
            .map(|a| {
                (
                    a.bssid.as_str(),
                    a.ssid.present().map(|s| s.text.as_str()),
                    a.signal_dbm.clone(),
                    a.associated,
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                ("02:11:22:33:44:02", Some("Home"), Field::Present(-41), true),
                ("02:11:22:33:44:04", None, Field::Present(-50), false),
                ("02:11:22:33:44:03", None, Field::Present(-60), false),
                (
                    "02:11:22:33:44:01",
                    Some("Cafe"),
                    Field::Present(-72),
                    false
                ),
            ]
        );
        assert_eq!(aps[0].frequency_mhz, Field::Present(2437));
        assert_eq!(aps[0].age_ms, Field::Present(1500));
        let json = serde_json::to_string(&aps).unwrap();
        assert!(
            !json.contains("Kitchen") && !json.contains("SN42"),
            "{json}"
        );
    }

    #[test]
    fn truncated_elements_and_entries_are_bounded() {
        // The SSID element cut short; the list cut inside a later element's header
        // after a complete SSID still gives the SSID.
        assert_eq!(
            ssid_element(&[0, 8, b'a', b'b']),
            Some(Err("the SSID element is cut short".into()))
        );
        assert_eq!(
            ssid_element(&[0, 2, b'a', b'b', 221]),
            Some(Ok(b"ab".to_vec()))
        );
        assert!(matches!(ssid_element(&[1, 9, 0]), Some(Err(_))));
        assert_eq!(ssid_element(&[1, 1, 0]), None);
        assert!(matches!(ssid_element(&[1, 1, 0, 7]), Some(Err(_))));
        assert!(matches!(ssid_element(&[0, 33]), Some(Err(_))));
        let mut long = vec![0, 33];
        long.extend_from_slice(&[b'x'; 33]);
        assert!(matches!(ssid_element(&long), Some(Err(_))));
        assert_eq!(ssid_element(&[]), None);
        let aps = access_points("wlan0", &[bss(9, &[0, 8, b'a'], -5000, None)]);
        assert!(matches!(aps[0].ssid, Field::Malformed(_)));
        // An entry without BSSID or without the BSS attribute is skipped, not fatal.
        let no_bss = [
            vec![34, 1, 0, 0],
            attr(NL80211_ATTR_IFINDEX, &3u32.to_ne_bytes()),
        ]
        .concat();
        assert_eq!(access_points("wlan0", &[no_bss, vec![1, 2]]), vec![]);
        // Every cut of a real entry is an error or a value, never a panic.
        let entry = bss(5, &ies(b"Cafe"), -6000, Some(1));
        for cut in 0..entry.len() {
            let _ = parse_scan_entry(&entry[..cut]);
        }
    }

    #[test]
    fn more_than_64_access_points_keep_the_strongest() {
        let entries: Vec<Vec<u8>> = (0..100u8)
            .map(|i| {
                bss(
                    i,
                    &ies(format!("net{i}").as_bytes()),
                    -12000 + i32::from(i) * 100,
                    None,
                )
            })
            .collect();
        let aps = access_points("wlan0", &entries);
        assert_eq!(aps.len(), MAX_ACCESS_POINTS);
        assert_eq!(aps[0].ssid.present().unwrap().text, "net99");
        assert_eq!(aps[63].ssid.present().unwrap().text, "net36");
        assert!(aps
            .windows(2)
            .all(|w| w[0].signal_dbm.present() >= w[1].signal_dbm.present()));
    }
}
