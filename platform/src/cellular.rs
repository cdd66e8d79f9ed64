//! Cellular modems from ModemManager over the system bus: the operator and registration
//! for `network`, the serving cell and the LTE/5G signal for `network_detail`.
//!
//! Read-only and passive: one `GetManagedObjects` per read, plus `GetLocation` on each
//! modem with a Location interface when cell ids are wanted. Every call carries
//! NO_AUTO_START, so a stopped ModemManager stays stopped, and no method that changes a
//! modem is ever called. Only the properties named in [`wanted`] are kept; the rest
//! (IMEI, IMSI, ICCID, own numbers, SIM paths, device identifiers) are dropped while the
//! reply is parsed. Of the location sources only the 3GPP cell is kept: GPS positions
//! belong to the `location` category.

use crate::dbus::{self, Connection, DbusError, Value};
use crate::{Field, Root};
use serde::{Deserialize, Serialize};
use std::time::Duration;

const SERVICE: &str = "org.freedesktop.ModemManager1";
const MODEM: &str = "org.freedesktop.ModemManager1.Modem";
const MODEM_3GPP: &str = "org.freedesktop.ModemManager1.Modem.Modem3gpp";
const SIGNAL: &str = "org.freedesktop.ModemManager1.Modem.Signal";
const LOCATION: &str = "org.freedesktop.ModemManager1.Modem.Location";
/// MM_MODEM_LOCATION_SOURCE_3GPP_LAC_CI.
const SOURCE_3GPP: u64 = 2;
/// MM_MODEM_PORT_TYPE_NET.
const PORT_NET: u64 = 2;
/// The most modems reported.
const MAX_MODEMS: usize = 8;

/// Where and how long to ask.
#[derive(Debug, Clone)]
pub struct CellularOptions {
    /// The bus socket; `None`: `DBUS_SYSTEM_BUS_ADDRESS`, else the standard socket.
    pub bus_path: Option<String>,
    /// The deadline for the whole exchange.
    pub timeout: Duration,
    /// Whether the serving cell is read (`network_detail`); the operator can turn it off.
    pub cell_ids: bool,
}

impl Default for CellularOptions {
    fn default() -> CellularOptions {
        CellularOptions {
            bus_path: None,
            timeout: Duration::from_secs(2),
            cell_ids: true,
        }
    }
}

/// A modem as `network` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Modem {
    /// ModemManager's index for the modem (the last part of its object path).
    pub id: String,
    /// The network interface the modem provides, such as `wwan0`.
    pub interface: Field<String>,
    pub operator_name: Field<String>,
    /// The operator code (`Modem3gpp.OperatorCode`) split: mobile country code, 3 digits.
    pub mcc: Field<String>,
    /// Mobile network code, 2 or 3 digits.
    pub mnc: Field<String>,
    /// Current access technologies, such as `lte` or `5gnr`.
    pub access_technologies: Field<Vec<String>>,
    /// `home`, `roaming`, `searching`, `idle`, `denied`, `unknown`, ...
    pub registration: Field<String>,
    pub signal_quality_percent: Field<u32>,
}

/// A modem as `network_detail` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModemCell {
    pub id: String,
    pub serving_cell: Field<ServingCell>,
    pub lte: Field<RadioSignal>,
    pub nr5g: Field<RadioSignal>,
}

/// The serving cell from the 3GPP location source; LAC, CI and TAC in hex as
/// ModemManager gives them (upper case).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServingCell {
    pub mcc: String,
    pub mnc: String,
    pub lac: Option<String>,
    pub cell_id: String,
    pub tac: Option<String>,
}

/// Signal values ModemManager has, rounded to whole dB / dBm.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RadioSignal {
    pub rssi_dbm: Option<i32>,
    pub rsrp_dbm: Option<i32>,
    pub rsrq_db: Option<i32>,
    pub snr_db: Option<i32>,
}

/// The property names (and location source) kept from ModemManager's replies.
pub(crate) fn wanted(key: &Value) -> bool {
    match key {
        Value::Str(s) => matches!(
            s.as_str(),
            "AccessTechnologies"
                | "SignalQuality"
                | "Ports"
                | "OperatorName"
                | "OperatorCode"
                | "RegistrationState"
                | "Lte"
                | "Nr5g"
                | "rssi"
                | "rsrp"
                | "rsrq"
                | "snr"
        ),
        Value::Uint(n) => *n == SOURCE_3GPP,
        _ => false,
    }
}

fn connect(options: &CellularOptions) -> Result<Connection, DbusError> {
    let env = std::env::var("DBUS_SYSTEM_BUS_ADDRESS").ok();
    let path = match &options.bus_path {
        Some(p) => p.clone(),
        None => dbus::system_bus_path(env.as_deref()).ok_or(DbusError::NoBus)?,
    };
    Connection::open(&path, options.timeout)
}

/// The objects ModemManager manages: `(path, interfaces)` for each modem.
fn managed_modems(c: &mut Connection) -> Result<Vec<(String, Value)>, DbusError> {
    let body = c.call(
        SERVICE,
        "/org/freedesktop/ModemManager1",
        "org.freedesktop.DBus.ObjectManager",
        "GetManagedObjects",
        "a{oa{sa{sv}}}",
        wanted,
    )?;
    let mut modems = Vec::new();
    for (path, interfaces) in body.first().into_iter().flat_map(Value::entries) {
        let (Some(path), true) = (path.as_str(), interface(interfaces, MODEM).is_some()) else {
            continue;
        };
        if modems.len() < MAX_MODEMS {
            modems.push((path.to_string(), interfaces.clone()));
        }
    }
    Ok(modems)
}

fn interface<'a>(interfaces: &'a Value, name: &str) -> Option<&'a Value> {
    interfaces
        .entries()
        .find_map(|(k, v)| (k.as_str() == Some(name)).then_some(v))
}

/// A property of an interface: absent when the interface or the property is missing,
/// malformed when its signature is not `sig` or `convert` refuses the value.
fn property<T>(
    interfaces: &Value,
    iface: &str,
    name: &str,
    sig: &str,
    convert: impl FnOnce(&Value) -> Option<T>,
) -> Field<T> {
    match lookup(interfaces, iface, name, sig) {
        Ok(v) => convert(v).map_or_else(
            || Field::Malformed(format!("{name} is out of range")),
            Field::Present,
        ),
        Err(None) => Field::Absent,
        Err(Some(reason)) => Field::Malformed(reason),
    }
}

/// The value of a property; `Err(None)` when missing, `Err(Some(reason))` when its
/// signature is not `sig`.
fn lookup<'a>(
    interfaces: &'a Value,
    iface: &str,
    name: &str,
    sig: &str,
) -> Result<&'a Value, Option<String>> {
    let props = interface(interfaces, iface).ok_or(None)?;
    let (got, value) = props
        .entries()
        .find_map(|(k, v)| match v {
            Value::Variant(s, inner) if k.as_str() == Some(name) => Some((s, inner)),
            _ => None,
        })
        .ok_or(None)?;
    if got != sig {
        return Err(Some(format!(
            "{name} has signature {:?}, expected {sig:?}",
            crate::field::truncate_for_reason(got)
        )));
    }
    Ok(value)
}

fn short_text(v: &Value) -> Option<String> {
    v.as_str()
        .filter(|s| s.len() <= 64 && !s.chars().any(char::is_control))
        .map(str::to_string)
}

fn modem_id(path: &str) -> String {
    path.rsplit('/').next().unwrap_or(path).to_string()
}

fn dbus_field<T>(e: DbusError) -> Field<T> {
    match e {
        DbusError::NoBus | DbusError::NoService => Field::Absent,
        DbusError::Denied => Field::Denied,
        other => Field::Malformed(other.to_string()),
    }
}

const ACCESS_TECHNOLOGIES: [&str; 18] = [
    "pots",
    "gsm",
    "gsm-compact",
    "gprs",
    "edge",
    "umts",
    "hsdpa",
    "hsupa",
    "hspa",
    "hspa-plus",
    "1xrtt",
    "evdo0",
    "evdoa",
    "evdob",
    "lte",
    "5gnr",
    "lte-cat-m",
    "lte-nb-iot",
];
const REGISTRATION: [&str; 12] = [
    "idle",
    "home",
    "searching",
    "denied",
    "unknown",
    "roaming",
    "home-sms-only",
    "roaming-sms-only",
    "emergency-only",
    "home-csfb-not-preferred",
    "roaming-csfb-not-preferred",
    "attached-rlos",
];

/// Splits a 3GPP operator code: 3 digits of MCC, then 2 or 3 of MNC.
pub(crate) fn parse_operator_code(s: &str) -> Option<(String, String)> {
    (matches!(s.len(), 5 | 6) && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| (s[..3].to_string(), s[3..].to_string()))
}

/// Builds `network`'s view of each modem from a `GetManagedObjects` body.
pub(crate) fn modem_facts(path: &str, interfaces: &Value) -> Modem {
    let code = property(interfaces, MODEM_3GPP, "OperatorCode", "s", |v| {
        v.as_str().and_then(parse_operator_code)
    });
    Modem {
        id: modem_id(path),
        interface: property(interfaces, MODEM, "Ports", "a(su)", |v| {
            let Value::Array(ports) = v else { return None };
            Some(ports.iter().find_map(|p| match p {
                Value::Struct(f) if f.get(1).and_then(Value::as_uint) == Some(PORT_NET) => {
                    f.first().and_then(short_text)
                }
                _ => None,
            }))
        })
        .and_then(|port| port.map_or(Field::Absent, Field::Present)),
        operator_name: property(interfaces, MODEM_3GPP, "OperatorName", "s", short_text),
        mcc: code.clone().map(|c| c.0),
        mnc: code.map(|c| c.1),
        access_technologies: property(interfaces, MODEM, "AccessTechnologies", "u", |v| {
            let bits = v.as_uint()?;
            (bits >> ACCESS_TECHNOLOGIES.len() == 0).then(|| {
                (0..ACCESS_TECHNOLOGIES.len())
                    .filter(|i| bits & (1 << i) != 0)
                    .map(|i| ACCESS_TECHNOLOGIES[i].to_string())
                    .collect()
            })
        }),
        registration: property(interfaces, MODEM_3GPP, "RegistrationState", "u", |v| {
            REGISTRATION
                .get(v.as_uint()? as usize)
                .map(|s| s.to_string())
        }),
        signal_quality_percent: property(interfaces, MODEM, "SignalQuality", "(ub)", |v| match v {
            Value::Struct(f) => f.first()?.as_uint().filter(|q| *q <= 100).map(|q| q as u32),
            _ => None,
        }),
    }
}

/// Parses the 3GPP location string: `MCC,MNC,LAC,CI` or `MCC,MNC,LAC,CI,TAC`, LAC, CI
/// and TAC in hex; a LAC or TAC of zero means the network gave none.
pub(crate) fn parse_cell(s: &str) -> Option<ServingCell> {
    let parts: Vec<&str> = s.split(',').collect();
    if !matches!(parts.len(), 4 | 5) {
        return None;
    }
    let digits = |p: &str, n: std::ops::RangeInclusive<usize>| {
        n.contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit())
    };
    let hex = |p: &str| !p.is_empty() && p.len() <= 8 && p.bytes().all(|b| b.is_ascii_hexdigit());
    if !digits(parts[0], 3..=3) || !digits(parts[1], 2..=3) || !parts[2..].iter().all(|p| hex(p)) {
        return None;
    }
    let nonzero = |p: &str| (p.bytes().any(|b| b != b'0')).then(|| p.to_string());
    Some(ServingCell {
        mcc: parts[0].to_string(),
        mnc: parts[1].to_string(),
        lac: nonzero(parts[2]),
        cell_id: parts[3].to_string(),
        tac: parts.get(4).and_then(|p| nonzero(p)),
    })
}

fn radio_signal(interfaces: &Value, name: &str) -> Field<RadioSignal> {
    property(interfaces, SIGNAL, name, "a{sv}", |v| {
        let get = |key: &str| {
            v.entries().find_map(|(k, v)| match v {
                Value::Variant(s, d) if k.as_str() == Some(key) && s == "d" => match **d {
                    Value::Double(x) if x.is_finite() && x.abs() < 1000.0 => Some(x.round() as i32),
                    _ => None,
                },
                _ => None,
            })
        };
        Some(RadioSignal {
            rssi_dbm: get("rssi"),
            rsrp_dbm: get("rsrp"),
            rsrq_db: get("rsrq"),
            snr_db: get("snr"),
        })
    })
    .and_then(|s| {
        if s == (RadioSignal {
            rssi_dbm: None,
            rsrp_dbm: None,
            rsrq_db: None,
            snr_db: None,
        }) {
            Field::Absent
        } else {
            Field::Present(s)
        }
    })
}

/// The serving cell from a `GetLocation` body (`a{uv}`).
pub(crate) fn cell_from_location(body: &[Value]) -> Field<ServingCell> {
    let Some(value) = body
        .first()
        .into_iter()
        .flat_map(Value::entries)
        .find_map(|(k, v)| (k.as_uint() == Some(SOURCE_3GPP)).then_some(v))
    else {
        return Field::Absent;
    };
    match value {
        Value::Variant(s, v) if s == "s" => v.as_str().and_then(parse_cell).map_or_else(
            || Field::Malformed("3GPP location is not MCC,MNC,LAC,CI[,TAC]".into()),
            Field::Present,
        ),
        _ => Field::Malformed("3GPP location is not a string".into()),
    }
}

/// `network`: every modem ModemManager knows. Only on the live root.
pub fn read_modems(root: &Root, options: &CellularOptions) -> Field<Vec<Modem>> {
    if !root.is_live() {
        return Field::Absent;
    }
    let modems = connect(options).and_then(|mut c| managed_modems(&mut c));
    match modems {
        Ok(m) if m.is_empty() => Field::Absent,
        Ok(m) => Field::Present(m.iter().map(|(p, i)| modem_facts(p, i)).collect()),
        Err(e) => dbus_field(e),
    }
}

/// `network_detail`: each modem's serving cell (when `cell_ids`) and signal values.
pub fn read_cells(root: &Root, options: &CellularOptions) -> Field<Vec<ModemCell>> {
    if !root.is_live() {
        return Field::Absent;
    }
    let mut c = match connect(options) {
        Ok(c) => c,
        Err(e) => return dbus_field(e),
    };
    let modems = match managed_modems(&mut c) {
        Ok(m) if m.is_empty() => return Field::Absent,
        Ok(m) => m,
        Err(e) => return dbus_field(e),
    };
    let mut cells = Vec::new();
    for (path, interfaces) in &modems {
        let serving_cell = if !options.cell_ids || interface(interfaces, LOCATION).is_none() {
            Field::Absent
        } else {
            log::debug!("modem location read: {path}");
            match c.call(SERVICE, path, LOCATION, "GetLocation", "a{uv}", wanted) {
                Ok(body) => cell_from_location(&body),
                Err(e) => dbus_field(e),
            }
        };
        cells.push(ModemCell {
            id: modem_id(path),
            serving_cell,
            lte: radio_signal(interfaces, "Lte"),
            nr5g: radio_signal(interfaces, "Nr5g"),
        });
    }
    Field::Present(cells)
}

/// Runs the D-Bus message parser over `buf` as the reader meets it (with the property
/// filter, and without), then the ModemManager mappings over whatever parsed. Returns
/// how many values were built.
///
/// For the fuzz target (`fuzz/`): the parser stays crate-private because its types are
/// not part of the API.
#[doc(hidden)]
pub fn fuzz_dbus_message(buf: &[u8]) -> usize {
    let mut built = usize::from(dbus::message_length(buf).is_ok());
    for keep in [wanted as dbus::KeyFilter, dbus::keep_all] {
        let Ok(m) = dbus::parse_message(buf, keep) else {
            continue;
        };
        built += m.body.len();
        built += usize::from(cell_from_location(&m.body).is_present());
        for (path, interfaces) in m.body.first().into_iter().flat_map(Value::entries) {
            let modem = modem_facts(path.as_str().unwrap_or(""), interfaces);
            built += usize::from(modem.mcc.is_present());
            built += usize::from(radio_signal(interfaces, "Lte").is_present());
        }
    }
    built
}
