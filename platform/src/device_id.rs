//! The `device_id` category: raw hardware identifiers (machine-id, permanent MAC
//! addresses, DMI and device-tree serials) from which the agent derives a de-identified
//! device ID. The raw values must never leave the device.
//!
//! Every value is wrapped in [`HardwareId`], whose `Serialize` and `Debug` output is
//! masked to its last four characters; only [`HardwareId::expose`] gives the raw text,
//! for the agent's keyed hash. Firmware placeholders ("To Be Filled By O.E.M.", all-zero
//! UUIDs, ...) identify nothing and are reported absent.

use crate::field::{parse_line, parse_nul_strings, truncate_for_reason};
use crate::network::{is_physical, list_interfaces, read_attribute};
use crate::read::{ReadError, ATTRIBUTE_LIMIT, TEXT_LIMIT};
use crate::{Field, Root};
use serde::{Deserialize, Serialize, Serializer};
use std::fmt;

/// A raw hardware identifier. Its serialized and debug forms are masked.
///
/// Deserializing reads back whatever string is given, so a masked value read back stays
/// masked: the raw value exists only in memory of the process that read it.
#[derive(Clone, PartialEq, Eq, Deserialize)]
pub struct HardwareId(String);

impl HardwareId {
    /// Wraps a raw identifier.
    pub fn new(raw: impl Into<String>) -> HardwareId {
        HardwareId(raw.into())
    }

    /// The raw value, for the agent's keyed hash only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// `****` followed by the last four characters; values shorter than eight
    /// characters show nothing, since four of them would be most of the value.
    pub fn masked(&self) -> String {
        let count = self.0.chars().count();
        if count < 8 {
            return "****".to_string();
        }
        let tail: String = self.0.chars().skip(count - 4).collect();
        format!("****{tail}")
    }
}

impl fmt::Debug for HardwareId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("HardwareId").field(&self.masked()).finish()
    }
}

impl Serialize for HardwareId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.masked())
    }
}

/// What the `device_id` category reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceIds {
    /// `/etc/machine-id`, else `/var/lib/dbus/machine-id`.
    pub machine_id: Field<HardwareId>,
    /// The permanent (burned-in) MAC address of each interface with a `device` link.
    pub mac_addresses: Field<Vec<InterfaceMac>>,
    /// DMI `product_serial` (root-only).
    pub product_serial: Field<HardwareId>,
    /// DMI `product_uuid` (root-only).
    pub product_uuid: Field<HardwareId>,
    /// DMI `board_serial` (root-only).
    pub board_serial: Field<HardwareId>,
    /// Device-tree `serial-number`.
    pub devicetree_serial_number: Field<HardwareId>,
    /// `/sys/devices/soc0/serial_number`.
    pub soc_serial_number: Field<HardwareId>,
    /// The `Serial` line of `/proc/cpuinfo` (Raspberry Pi).
    pub cpuinfo_serial: Field<HardwareId>,
}

/// A permanent MAC address and the interface that carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterfaceMac {
    pub interface: String,
    /// Lower-case colon hex.
    pub address: Field<HardwareId>,
}

impl DeviceIds {
    /// Every raw value held, in field order. Used to check that none of them appears in
    /// anything that leaves the process.
    pub fn exposed_values(&self) -> Vec<&str> {
        let macs = self
            .mac_addresses
            .present()
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        [&self.machine_id]
            .into_iter()
            .chain(macs.iter().map(|m| &m.address))
            .chain([
                &self.product_serial,
                &self.product_uuid,
                &self.board_serial,
                &self.devicetree_serial_number,
                &self.soc_serial_number,
                &self.cpuinfo_serial,
            ])
            .filter_map(Field::present)
            .map(HardwareId::expose)
            .collect()
    }

    /// The names of the identifiers that are present (`machine_id`, `product_uuid`,
    /// ...): what a pseudonym was derived from, without the values.
    pub fn source_names(&self) -> Vec<String> {
        let mut names: Vec<String> = [
            ("machine_id", &self.machine_id),
            ("product_serial", &self.product_serial),
            ("product_uuid", &self.product_uuid),
            ("board_serial", &self.board_serial),
            ("devicetree_serial_number", &self.devicetree_serial_number),
            ("soc_serial_number", &self.soc_serial_number),
            ("cpuinfo_serial", &self.cpuinfo_serial),
        ]
        .into_iter()
        .filter(|(_, f)| f.is_present())
        .map(|(name, _)| name.to_string())
        .collect();
        if self
            .mac_addresses
            .present()
            .is_some_and(|m| m.iter().any(|m| m.address.is_present()))
        {
            names.push("mac_addresses".to_string());
        }
        names
    }

    /// The best hardware serial: DMI product_uuid, else DMI product_serial, else the
    /// device-tree serial-number, else the soc0 serial, else the cpuinfo Serial.
    pub fn stable_serial(&self) -> Option<&HardwareId> {
        [
            &self.product_uuid,
            &self.product_serial,
            &self.devicetree_serial_number,
            &self.soc_serial_number,
            &self.cpuinfo_serial,
        ]
        .into_iter()
        .find_map(Field::present)
    }
}

/// Reads the `device_id` category under `root`.
pub fn read(root: &Root) -> DeviceIds {
    DeviceIds {
        machine_id: read_machine_id(root),
        mac_addresses: read_macs(root),
        product_serial: read_dmi(root, "product_serial"),
        product_uuid: read_dmi(root, "product_uuid"),
        board_serial: read_dmi(root, "board_serial"),
        devicetree_serial_number: id_from_file(
            root,
            "/sys/firmware/devicetree/base/serial-number",
            parse_devicetree_serial,
        ),
        soc_serial_number: id_from_file(root, "/sys/devices/soc0/serial_number", parse_serial),
        cpuinfo_serial: cpuinfo_serial(root),
    }
}

/// Reads a file into an identifier; a parse that finds a placeholder gives `Ok(None)`,
/// which is reported absent.
fn id_from_file(
    root: &Root,
    path: &str,
    parse: fn(&[u8]) -> Result<Option<String>, String>,
) -> Field<HardwareId> {
    flatten(Field::from_file(root, path, ATTRIBUTE_LIMIT, parse))
}

fn flatten(f: Field<Option<String>>) -> Field<HardwareId> {
    match f {
        Field::Present(Some(v)) => Field::Present(HardwareId(v)),
        Field::Present(None) | Field::Absent => Field::Absent,
        Field::Denied => Field::Denied,
        Field::Malformed(r) => Field::Malformed(r),
    }
}

fn read_machine_id(root: &Root) -> Field<HardwareId> {
    id_from_file(root, "/etc/machine-id", parse_machine_id)
        .or_else(|| id_from_file(root, "/var/lib/dbus/machine-id", parse_machine_id))
}

/// Reads a DMI attribute through `/sys/class/dmi/id`, falling back to the link's target
/// `/sys/devices/virtual/dmi/id` where a captured tree lacks the class link.
fn read_dmi(root: &Root, name: &str) -> Field<HardwareId> {
    let parse = if name == "product_uuid" {
        parse_dmi_uuid
    } else {
        parse_serial
    };
    id_from_file(root, &format!("/sys/class/dmi/id/{name}"), parse)
        .or_else(|| id_from_file(root, &format!("/sys/devices/virtual/dmi/id/{name}"), parse))
}

fn cpuinfo_serial(root: &Root) -> Field<HardwareId> {
    flatten(Field::from_file(
        root,
        "/proc/cpuinfo",
        TEXT_LIMIT,
        parse_cpuinfo_serial,
    ))
}

fn read_macs(root: &Root) -> Field<Vec<InterfaceMac>> {
    let list = match list_interfaces(root) {
        Ok(list) => list,
        Err(e) => return Field::from_read_error(e),
    };
    let mut macs = Vec::new();
    for iface in list {
        if !is_physical(&iface) {
            continue;
        }
        // Only a permanent address identifies the hardware; random, stolen and set
        // addresses (0 is NET_ADDR_PERM) are skipped, and so is an unknown type.
        let permanent = read_attribute(&iface, "addr_assign_type")
            .ok()
            .and_then(|b| parse_line(&b).ok())
            .is_some_and(|t| t == "0");
        if !permanent {
            continue;
        }
        let address = match read_attribute(&iface, "address") {
            Ok(bytes) => match parse_mac(&bytes) {
                Ok(Some(mac)) => Field::Present(HardwareId(mac)),
                Ok(None) => continue,
                Err(e) => Field::Malformed(e),
            },
            Err(ReadError::NotFound) => continue,
            Err(e) => Field::from_read_error(e),
        };
        macs.push(InterfaceMac {
            interface: iface.name,
            address,
        });
    }
    Field::Present(macs)
}

/// Parses `/etc/machine-id`: 32 lower-case hex digits. An empty file or systemd's
/// `uninitialized` marker (first boot not done) gives `Ok(None)`.
pub fn parse_machine_id(bytes: &[u8]) -> Result<Option<String>, String> {
    let line = parse_line(bytes)?;
    if line.is_empty() || line == "uninitialized" {
        return Ok(None);
    }
    if line.len() != 32 {
        return Err(format!("machine-id has {} characters, not 32", line.len()));
    }
    if !line
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err("machine-id is not lower-case hex".to_string());
    }
    if line.bytes().all(|b| b == b'0') {
        return Ok(None);
    }
    Ok(Some(line))
}

/// Parses an interface `address`: colon-separated two-digit hex octets, lower-cased.
/// All-zero addresses (loopback, ppp) give `Ok(None)`.
pub fn parse_mac(bytes: &[u8]) -> Result<Option<String>, String> {
    let line = parse_line(bytes)?;
    if line.is_empty() {
        return Ok(None);
    }
    let octets: Vec<&str> = line.split(':').collect();
    let valid = (1..=32).contains(&octets.len())
        && octets
            .iter()
            .all(|o| o.len() == 2 && o.bytes().all(|b| b.is_ascii_hexdigit()));
    if !valid {
        return Err("address is not colon-separated hex".to_string());
    }
    if octets.iter().all(|o| *o == "00") {
        return Ok(None);
    }
    Ok(Some(line.to_ascii_lowercase()))
}

/// Values firmware vendors leave in DMI and serial fields instead of a real one.
const PLACEHOLDERS: [&str; 16] = [
    "to be filled by o.e.m.",
    "to be filled by oem",
    "default string",
    "system serial number",
    "base board serial number",
    "chassis serial number",
    "not specified",
    "not applicable",
    "not available",
    "none",
    "n/a",
    "oem",
    "o.e.m.",
    "0123456789",
    "123456789",
    "serial",
];

/// Whether a serial or UUID is a placeholder: empty, a known filler text, or one
/// character repeated (all zeros, all F, ignoring dashes and blanks).
pub fn is_placeholder(value: &str) -> bool {
    let v = value.trim();
    if v.is_empty() || PLACEHOLDERS.iter().any(|p| v.eq_ignore_ascii_case(p)) {
        return true;
    }
    // A UUID some AMI firmware ships on every board.
    if v.eq_ignore_ascii_case("03000200-0400-0500-0006-000700080009") {
        return true;
    }
    let mut chars = v
        .chars()
        .filter(|c| *c != '-' && !c.is_whitespace())
        .map(|c| c.to_ascii_lowercase());
    match chars.next() {
        Some(first) => chars.all(|c| c == first),
        None => true,
    }
}

/// Parses a one-line serial (DMI, soc0); placeholders give `Ok(None)`.
pub fn parse_serial(bytes: &[u8]) -> Result<Option<String>, String> {
    let line = parse_line(bytes)?;
    if line.chars().any(char::is_control) {
        return Err("serial holds control characters".to_string());
    }
    Ok((!is_placeholder(&line)).then_some(line))
}

/// Parses DMI `product_uuid`: 8-4-4-4-12 hex, lower-cased; placeholders give `Ok(None)`.
pub fn parse_dmi_uuid(bytes: &[u8]) -> Result<Option<String>, String> {
    let line = parse_line(bytes)?;
    if is_placeholder(&line) {
        return Ok(None);
    }
    let groups: Vec<&str> = line.split('-').collect();
    let lengths: Vec<usize> = groups.iter().map(|g| g.len()).collect();
    if lengths != [8, 4, 4, 4, 12]
        || !groups
            .iter()
            .all(|g| g.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return Err(format!("not a UUID: {:?}", truncate_for_reason(&line)));
    }
    Ok(Some(line.to_ascii_lowercase()))
}

/// Parses the device-tree `serial-number` property: a NUL-terminated string.
pub fn parse_devicetree_serial(bytes: &[u8]) -> Result<Option<String>, String> {
    let strings = parse_nul_strings(bytes)?;
    match strings.as_slice() {
        [one] => parse_serial(one.as_bytes()),
        _ => Err("serial-number holds several strings".to_string()),
    }
}

/// Finds the `Serial` line of `/proc/cpuinfo` (Raspberry Pi: `Serial\t\t: 1000...`) and
/// checks it is hex. A missing line or an all-zero serial gives `Ok(None)`.
pub fn parse_cpuinfo_serial(bytes: &[u8]) -> Result<Option<String>, String> {
    for raw in bytes.split(|b| *b == b'\n') {
        let Some((key, value)) = raw.iter().position(|b| *b == b':').map(|i| raw.split_at(i))
        else {
            continue;
        };
        if crate::field::trim_ascii(key) != b"Serial" {
            continue;
        }
        let value = parse_line(&value[1..])?;
        if value.is_empty() || value.len() > 64 || !value.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!(
                "cpuinfo serial is not hex: {:?}",
                truncate_for_reason(&value)
            ));
        }
        return Ok((!is_placeholder(&value)).then(|| value.to_ascii_lowercase()));
    }
    Ok(None)
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

    fn raw(f: &Field<HardwareId>) -> Option<&str> {
        f.present().map(HardwareId::expose)
    }

    #[test]
    fn masking_shows_only_the_tail() {
        let id = HardwareId::new("100000003a9b6c2d");
        assert_eq!(id.expose(), "100000003a9b6c2d");
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"****6c2d\"");
        assert_eq!(format!("{id:?}"), "HardwareId(\"****6c2d\")");
        assert_eq!(HardwareId::new("abc1234").masked(), "****");
        assert_eq!(HardwareId::new("").masked(), "****");
        assert_eq!(HardwareId::new("ééééé☃☃☃x").masked(), "****☃☃☃x");
    }

    #[test]
    fn machine_id_table() {
        assert_eq!(
            parse_machine_id(b"4e1b8f3a9c2d47e6b05a1f7c8d3e92b4\n"),
            Ok(Some("4e1b8f3a9c2d47e6b05a1f7c8d3e92b4".into()))
        );
        assert_eq!(parse_machine_id(b""), Ok(None));
        assert_eq!(parse_machine_id(b"uninitialized\n"), Ok(None));
        assert_eq!(
            parse_machine_id(b"00000000000000000000000000000000"),
            Ok(None)
        );
        assert!(parse_machine_id(b"4E1B8F3A9C2D47E6B05A1F7C8D3E92B4").is_err());
        assert!(parse_machine_id(b"4e1b8f3a9c2d47e6b05a1f7c8d3e92b4ff").is_err());
        assert!(parse_machine_id(b"zz1b8f3a9c2d47e6b05a1f7c8d3e92b4").is_err());
        assert!(parse_machine_id(b"4e1b8f3a9c2d47e6\n05a1f7c8d3e92b4").is_err());
        assert!(parse_machine_id(b"4e1b8f3a9c2d47e6\x0005a1f7c8d3e92b4").is_err());
        assert!(parse_machine_id(&[0xff; 32]).is_err());
    }

    #[test]
    fn mac_table() {
        assert_eq!(
            parse_mac(b"DC:A6:32:5E:71:A4\n"),
            Ok(Some("dc:a6:32:5e:71:a4".into()))
        );
        assert_eq!(parse_mac(b"00:00:00:00:00:00\n"), Ok(None));
        assert_eq!(parse_mac(b"\n"), Ok(None));
        assert!(parse_mac(b"zz:zz").is_err());
        assert!(parse_mac(b"dc:a6:32:5e:71").is_ok());
        assert!(parse_mac(b"dc-a6-32-5e-71-a4").is_err());
        assert!(parse_mac(b"dc:a6:32:5e:71:a\0").is_err());
        assert!(parse_mac(b"d:a6:32:5e:71:a4").is_err());
    }

    #[test]
    fn placeholder_table() {
        for p in [
            "To Be Filled By O.E.M.",
            "Default string",
            "0123456789",
            "00000000-0000-0000-0000-000000000000",
            "FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF",
            "03000200-0400-0500-0006-000700080009",
            "  ",
            "Not Specified",
            "0000000000000000",
        ] {
            assert!(is_placeholder(p), "{p}");
        }
        for real in [
            "AKB2348571",
            "3c9d7a51-8e2f-4b06-a1d4-5f0e6b2c9a73",
            "100000003a9b6c2d",
        ] {
            assert!(!is_placeholder(real), "{real}");
        }
        assert_eq!(
            parse_dmi_uuid(b"FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF\n"),
            Ok(None)
        );
        assert_eq!(
            parse_dmi_uuid(b"3C9D7A51-8E2F-4B06-A1D4-5F0E6B2C9A73\n"),
            Ok(Some("3c9d7a51-8e2f-4b06-a1d4-5f0e6b2c9a73".into()))
        );
        assert!(parse_dmi_uuid(b"3c9d7a51-8e2f-4b06-a1d4").is_err());
        assert!(parse_dmi_uuid(b"3c9d7a51-8e2f-4b06-a1d4-5f0e6b2c9azz").is_err());
        assert_eq!(parse_serial(b"To be filled by O.E.M.\n"), Ok(None));
        assert!(parse_serial(b"AB\tC").is_err());
        assert!(parse_serial(b"AB\nC\n").is_err());
    }

    #[test]
    fn devicetree_and_cpuinfo_serials() {
        assert_eq!(
            parse_devicetree_serial(b"100000003a9b6c2d\0"),
            Ok(Some("100000003a9b6c2d".into()))
        );
        assert!(parse_devicetree_serial(b"a\0b\0").is_err());
        assert!(parse_devicetree_serial(b"\0").is_err());
        assert!(parse_devicetree_serial(b"\xff\xfe\0").is_err());
        let pi = b"processor\t: 3\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd\n\n\
Revision\t: d03114\nSerial\t\t: 100000003a9b6c2d\nModel\t\t: Raspberry Pi 4 Model B Rev 1.4\n";
        assert_eq!(
            parse_cpuinfo_serial(pi),
            Ok(Some("100000003a9b6c2d".into()))
        );
        assert_eq!(
            parse_cpuinfo_serial(b"model name\t: Intel Atom\n"),
            Ok(None)
        );
        assert_eq!(
            parse_cpuinfo_serial(b"Serial\t\t: 0000000000000000\n"),
            Ok(None)
        );
        assert!(parse_cpuinfo_serial(b"Serial\t\t: 10000000zz9b6c2d\n").is_err());
        assert!(parse_cpuinfo_serial(b"Serial\t\t:\n").is_err());
        assert!(parse_cpuinfo_serial(b"Serial\t\t: 1000\x0000\n").is_err());
        // "Serial Number" or a key that merely starts with Serial is another line.
        assert_eq!(
            parse_cpuinfo_serial(b"Serial Number : x\nSerialx: y\n"),
            Ok(None)
        );
        assert_eq!(
            parse_cpuinfo_serial(b"\xff\xfe:\x00\nSerial: ABCDEF0123456789\n"),
            Ok(Some("abcdef0123456789".into()))
        );
    }

    #[test]
    fn soc0_and_cpuinfo_from_a_temp_root() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("sys/devices/soc0")).unwrap();
        std::fs::create_dir_all(dir.path().join("proc")).unwrap();
        std::fs::write(
            dir.path().join("sys/devices/soc0/serial_number"),
            b"0x1234abcd5678ef90\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("proc/cpuinfo"),
            b"processor\t: 0\n\nSerial\t\t: 10000000deadbe11\n",
        )
        .unwrap();
        let ids = read(&Root::at(dir.path()));
        assert_eq!(raw(&ids.soc_serial_number), Some("0x1234abcd5678ef90"));
        assert_eq!(raw(&ids.cpuinfo_serial), Some("10000000deadbe11"));
        assert_eq!(
            ids.stable_serial().map(HardwareId::expose),
            Some("0x1234abcd5678ef90")
        );
        assert_eq!(ids.machine_id, Field::Absent);
        assert_eq!(ids.mac_addresses, Field::Absent);
        std::fs::write(dir.path().join("sys/devices/soc0/serial_number"), b"0\n").unwrap();
        let ids = read(&Root::at(dir.path()));
        assert_eq!(ids.soc_serial_number, Field::Absent);
        assert_eq!(
            ids.stable_serial().map(HardwareId::expose),
            Some("10000000deadbe11")
        );
    }

    #[test]
    fn rpi4_fixture() {
        let ids = read(&fixture("rpi4-raspios64"));
        assert_eq!(
            raw(&ids.machine_id),
            Some("a3f9c1d27b8e4f6091c2d3e4f5a6b7c8")
        );
        let macs: Vec<(&str, Option<&str>)> = ids
            .mac_addresses
            .present()
            .unwrap()
            .iter()
            .map(|m| (m.interface.as_str(), raw(&m.address)))
            .collect();
        assert_eq!(
            macs,
            vec![
                ("eth0", Some("dc:a6:32:5e:71:a4")),
                ("wlan0", Some("dc:a6:32:5e:71:a5"))
            ]
        );
        assert_eq!(raw(&ids.devicetree_serial_number), Some("100000003a9b6c2d"));
        assert_eq!(ids.product_serial, Field::Absent);
        assert_eq!(
            ids.stable_serial().map(HardwareId::expose),
            Some("100000003a9b6c2d")
        );
    }

    #[test]
    fn x86_gateway_fixture() {
        let ids = read(&fixture("x86-gateway"));
        assert_eq!(
            raw(&ids.machine_id),
            Some("4e1b8f3a9c2d47e6b05a1f7c8d3e92b4")
        );
        assert_eq!(raw(&ids.product_serial), Some("AKB2348571"));
        assert_eq!(
            raw(&ids.product_uuid),
            Some("3c9d7a51-8e2f-4b06-a1d4-5f0e6b2c9a73")
        );
        assert_eq!(
            ids.board_serial,
            Field::Absent,
            "a placeholder counts as absent"
        );
        let macs: Vec<&str> = ids
            .mac_addresses
            .present()
            .unwrap()
            .iter()
            .filter_map(|m| raw(&m.address))
            .collect();
        // wwan0 has a random address; ppp0 and lo are virtual.
        assert_eq!(macs, vec!["00:0b:ab:4f:2e:11", "00:0b:ab:4f:2e:12"]);
        assert_eq!(
            ids.stable_serial().map(HardwareId::expose),
            Some("3c9d7a51-8e2f-4b06-a1d4-5f0e6b2c9a73")
        );
    }

    #[test]
    fn yocto_container_and_garbage_fixtures() {
        let ids = read(&fixture("yocto-opkg"));
        assert_eq!(
            raw(&ids.machine_id),
            Some("9b7e3d2c1a0f48e59d6c7b8a1e2f3d4c"),
            "empty /etc/machine-id falls back to dbus"
        );
        assert_eq!(raw(&ids.devicetree_serial_number), Some("1e3a5c7d9b2f4068"));
        let ids = read(&fixture("container"));
        assert_eq!(ids.machine_id, Field::Absent);
        assert_eq!(ids.mac_addresses, Field::Present(vec![]), "veth is virtual");
        assert_eq!(ids.stable_serial(), None);
        let ids = read(&fixture("garbage"));
        assert!(matches!(ids.machine_id, Field::Malformed(_)));
        let macs = ids.mac_addresses.present().unwrap();
        assert!(
            macs.iter()
                .any(|m| matches!(m.address, Field::Malformed(_))),
            "{macs:?}"
        );
    }

    #[test]
    fn serialization_and_debug_never_hold_a_raw_value() {
        let mut checked = 0;
        for name in [
            "rpi4-raspios64",
            "x86-gateway",
            "yocto-opkg",
            "container",
            "garbage",
        ] {
            let ids = read(&fixture(name));
            let json = serde_json::to_string(&ids).unwrap();
            let debug = format!("{ids:?} {ids:#?}");
            for value in ids.exposed_values() {
                assert!(!json.contains(value), "{name}: {value} in {json}");
                assert!(!debug.contains(value), "{name}: {value} in debug output");
                checked += 1;
            }
        }
        assert!(checked >= 12, "only {checked} raw values were checked");
    }
}
