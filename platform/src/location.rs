//! The `location` category: a precise position from gpsd.
//!
//! gpsd is asked over TCP (loopback by default) only when the root is live; under a
//! fixture root every field is absent and no socket is opened. The client connects with
//! the configured timeout, sends `?WATCH={"enable":true,"json":true}`, reads
//! newline-delimited JSON until the first TPV report with a 2D or 3D fix or until the
//! timeout, then closes the socket. Every line and the whole exchange are bounded in
//! size, so a misbehaving peer can neither hang the reader past its timeout nor make it
//! allocate without limit.

use crate::field::Field;
use crate::Root;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// The longest gpsd line accepted; longer lines are skipped.
pub const MAX_LINE_BYTES: usize = 64 << 10;
/// The most bytes read from gpsd in one exchange.
pub const MAX_TOTAL_BYTES: usize = 4 << 20;
/// The longest `time` string kept.
const MAX_TIME_BYTES: usize = 64;

/// Where gpsd listens and how long to wait for a fix.
#[derive(Debug, Clone)]
pub struct GpsdOptions {
    pub address: SocketAddr,
    /// Bounds the connection attempt and, separately, the wait for a fix after it.
    pub timeout: Duration,
}

impl Default for GpsdOptions {
    fn default() -> Self {
        GpsdOptions {
            address: SocketAddr::from(([127, 0, 0, 1], 2947)),
            timeout: Duration::from_secs(2),
        }
    }
}

/// What the `location` category holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Location {
    /// How the exchange with gpsd went; absent when the root is not live.
    pub gpsd: Field<GpsdState>,
    /// The first 2D or 3D fix gpsd reported; absent without one.
    pub fix: Field<Fix>,
}

/// The outcome of asking gpsd.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GpsdState {
    /// Connected and a fix was reported.
    Connected,
    /// No connection could be made (nothing listening, refused, timed out).
    Unreachable,
    /// Connected, but no 2D or 3D fix arrived before the timeout.
    NoFix,
}

/// A position fix as gpsd reported it in a TPV message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fix {
    pub mode: FixMode,
    pub latitude_deg: f64,
    pub longitude_deg: f64,
    /// Altitude above mean sea level (`altMSL`, else the older `alt`).
    pub altitude_m: Field<f64>,
    pub speed_mps: Field<f64>,
    /// Course over ground, degrees from true north.
    pub track_deg: Field<f64>,
    /// The fix time as gpsd gave it (ISO 8601, UTC).
    pub time: Field<String>,
    /// `eph`, else the 95% radius `sqrt(epx² + epy²)` from the per-axis errors.
    pub horizontal_error_m: Field<f64>,
}

/// The dimension of a fix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FixMode {
    #[serde(rename = "2d")]
    TwoD,
    #[serde(rename = "3d")]
    ThreeD,
}

/// One parsed gpsd line.
#[derive(Debug, Clone, PartialEq)]
pub enum GpsdMessage {
    /// A time-position-velocity report.
    Tpv(Tpv),
    /// Any other class (VERSION, DEVICES, WATCH, SKY, ...), which the reader ignores.
    Other { class: String },
}

/// The values of a TPV report this reader uses, each checked for range.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Tpv {
    /// 0 unknown, 1 no fix, 2 2D, 3 3D.
    pub mode: u8,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub alt_msl: Option<f64>,
    pub alt: Option<f64>,
    pub speed: Option<f64>,
    pub track: Option<f64>,
    pub time: Option<String>,
    pub eph: Option<f64>,
    pub epx: Option<f64>,
    pub epy: Option<f64>,
}

impl Tpv {
    /// The fix this report carries, if it has a 2D or 3D mode and a position.
    pub fn fix(&self) -> Option<Fix> {
        let mode = match self.mode {
            2 => FixMode::TwoD,
            3 => FixMode::ThreeD,
            _ => return None,
        };
        let horizontal_error = self.eph.or(match (self.epx, self.epy) {
            (Some(x), Some(y)) => Some(x.hypot(y)),
            _ => None,
        });
        Some(Fix {
            mode,
            latitude_deg: self.lat?,
            longitude_deg: self.lon?,
            altitude_m: optional(self.alt_msl.or(self.alt)),
            speed_mps: optional(self.speed),
            track_deg: optional(self.track),
            time: optional(self.time.clone()),
            horizontal_error_m: optional(horizontal_error),
        })
    }
}

fn optional<T>(value: Option<T>) -> Field<T> {
    value.map_or(Field::Absent, Field::Present)
}

/// Reads the `location` category: asks gpsd for one fix when `root` is live.
pub fn read(root: &Root, gpsd: &GpsdOptions) -> Location {
    if !root.is_live() {
        return Location {
            gpsd: Field::Absent,
            fix: Field::Absent,
        };
    }
    let (state, fix) = query_gpsd(gpsd);
    Location {
        gpsd: Field::Present(state),
        fix,
    }
}

fn query_gpsd(options: &GpsdOptions) -> (GpsdState, Field<Fix>) {
    // A zero timeout would make connect_timeout fail with InvalidInput.
    let timeout = options.timeout.max(Duration::from_millis(1));
    let Ok(mut stream) = TcpStream::connect_timeout(&options.address, timeout) else {
        return (GpsdState::Unreachable, Field::Absent);
    };
    let deadline = Instant::now() + timeout;
    let result = watch_for_fix(&mut stream, deadline);
    // Closing is best effort: the peer may already be gone.
    let _ = stream.shutdown(Shutdown::Both);
    match result {
        Ok(fix) => (GpsdState::Connected, Field::Present(fix)),
        Err(NoFix::Quiet) => (GpsdState::NoFix, Field::Absent),
        Err(NoFix::NotGpsd(reason)) => (GpsdState::NoFix, Field::Malformed(reason)),
    }
}

/// Why the exchange ended without a fix.
enum NoFix {
    /// gpsd spoke but reported no usable fix, or the connection ended or timed out.
    Quiet,
    /// Nothing the peer sent parsed as a gpsd message.
    NotGpsd(String),
}

fn watch_for_fix(stream: &mut TcpStream, deadline: Instant) -> Result<Fix, NoFix> {
    stream
        .set_write_timeout(Some(remaining(deadline).ok_or(NoFix::Quiet)?))
        .map_err(|_| NoFix::Quiet)?;
    stream
        .write_all(b"?WATCH={\"enable\":true,\"json\":true}\n")
        .map_err(|_| NoFix::Quiet)?;

    let mut lines = LineReader::default();
    let mut chunk = [0u8; 4096];
    let mut understood_any = false;
    let mut last_error: Option<String> = None;
    loop {
        let wait = remaining(deadline).ok_or(NoFix::Quiet)?;
        stream
            .set_read_timeout(Some(wait))
            .map_err(|_| NoFix::Quiet)?;
        let n = match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        lines.total = lines.total.saturating_add(n);
        for line in lines.push(&chunk[..n]) {
            match parse_gpsd_line(&line) {
                Ok(GpsdMessage::Tpv(tpv)) => {
                    understood_any = true;
                    if let Some(fix) = tpv.fix() {
                        return Ok(fix);
                    }
                }
                Ok(GpsdMessage::Other { .. }) => understood_any = true,
                Err(e) => last_error = Some(e),
            }
        }
        if lines.total >= MAX_TOTAL_BYTES {
            break;
        }
    }
    match last_error {
        Some(reason) if !understood_any => {
            Err(NoFix::NotGpsd(format!("not a gpsd stream: {reason}")))
        }
        _ => Err(NoFix::Quiet),
    }
}

fn remaining(deadline: Instant) -> Option<Duration> {
    deadline
        .checked_duration_since(Instant::now())
        .filter(|d| !d.is_zero())
}

/// Splits a byte stream into lines of at most [`MAX_LINE_BYTES`]; a longer line is
/// dropped up to its newline, so one runaway line cannot grow the buffer.
#[derive(Default)]
struct LineReader {
    partial: Vec<u8>,
    skipping: bool,
    total: usize,
}

impl LineReader {
    fn push(&mut self, mut bytes: &[u8]) -> Vec<Vec<u8>> {
        let mut complete = Vec::new();
        while let Some(newline) = bytes.iter().position(|b| *b == b'\n') {
            if !self.skipping && self.partial.len() + newline <= MAX_LINE_BYTES {
                self.partial.extend_from_slice(&bytes[..newline]);
                complete.push(std::mem::take(&mut self.partial));
            }
            self.partial.clear();
            self.skipping = false;
            bytes = &bytes[newline + 1..];
        }
        if !self.skipping {
            if self.partial.len() + bytes.len() > MAX_LINE_BYTES {
                self.partial.clear();
                self.skipping = true;
            } else {
                self.partial.extend_from_slice(bytes);
            }
        }
        complete
    }
}

/// Parses one gpsd JSON line (without its newline). Only the class of non-TPV messages
/// is looked at; a TPV message must have numbers in range where it has the fields this
/// reader uses.
pub fn parse_gpsd_line(line: &[u8]) -> Result<GpsdMessage, String> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.len() > MAX_LINE_BYTES {
        return Err(format!("line longer than {MAX_LINE_BYTES} bytes"));
    }
    let value: Value = serde_json::from_slice(line).map_err(|e| format!("not JSON: {e}"))?;
    let Value::Object(object) = value else {
        return Err("not a JSON object".to_string());
    };
    let class = match object.get("class") {
        Some(Value::String(class)) => class,
        Some(_) => return Err("class is not a string".to_string()),
        None => return Err("missing class".to_string()),
    };
    if class != "TPV" {
        let class = crate::field::truncate_for_reason(class);
        return Ok(GpsdMessage::Other { class });
    }
    let number = |key: &str, min: f64, max: f64| -> Result<Option<f64>, String> {
        match object.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => match n.as_f64() {
                Some(v) if v.is_finite() && (min..=max).contains(&v) => Ok(Some(v)),
                _ => Err(format!("{key} out of range")),
            },
            Some(_) => Err(format!("{key} is not a number")),
        }
    };
    let mode = match object.get("mode") {
        None => 0,
        Some(Value::Number(n)) => match n.as_u64() {
            Some(m) if m <= 3 => m as u8,
            _ => return Err("mode out of range".to_string()),
        },
        Some(_) => return Err("mode is not a number".to_string()),
    };
    let time = match object.get("time") {
        None | Some(Value::Null) => None,
        Some(Value::String(t))
            if t.len() <= MAX_TIME_BYTES && t.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            Some(t.clone())
        }
        Some(_) => return Err("time is not a timestamp".to_string()),
    };
    // Altitudes cover the Dead Sea shore to low orbit; errors and speeds stay physical.
    Ok(GpsdMessage::Tpv(Tpv {
        mode,
        lat: number("lat", -90.0, 90.0)?,
        lon: number("lon", -180.0, 180.0)?,
        alt_msl: number("altMSL", -1.0e4, 1.0e6)?,
        alt: number("alt", -1.0e4, 1.0e6)?,
        speed: number("speed", 0.0, 1.0e5)?,
        track: number("track", 0.0, 360.0)?,
        time,
        eph: number("eph", 0.0, 1.0e7)?,
        epx: number("epx", 0.0, 1.0e7)?,
        epy: number("epy", 0.0, 1.0e7)?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TPV_3D: &[u8] = br#"{"class":"TPV","device":"/dev/pts/1","mode":3,"time":"2024-06-15T09:30:16.000Z","ept":0.005,"lat":46.205000000,"lon":6.140000000,"altHAE":460.8000,"altMSL":412.5000,"alt":412.5000,"epv":29.900,"track":84.4000,"speed":0.257,"climb":0.000,"eph":17.100}"#;

    #[test]
    fn a_3d_tpv_gives_every_value() {
        let Ok(GpsdMessage::Tpv(tpv)) = parse_gpsd_line(TPV_3D) else {
            panic!("not a tpv")
        };
        let fix = tpv.fix().unwrap();
        assert_eq!(fix.mode, FixMode::ThreeD);
        assert_eq!(fix.latitude_deg, 46.205);
        assert_eq!(fix.longitude_deg, 6.14);
        assert_eq!(fix.altitude_m, Field::Present(412.5));
        assert_eq!(fix.speed_mps, Field::Present(0.257));
        assert_eq!(fix.track_deg, Field::Present(84.4));
        assert_eq!(fix.time, Field::Present("2024-06-15T09:30:16.000Z".into()));
        assert_eq!(fix.horizontal_error_m, Field::Present(17.1));
        let json = serde_json::to_value(&fix).unwrap();
        assert_eq!(json["mode"], "3d");
    }

    #[test]
    fn a_2d_tpv_falls_back_to_alt_and_epx_epy() {
        let line =
            br#"{"class":"TPV","mode":2,"lat":-33.5,"lon":151.25,"alt":3.0,"epx":3.0,"epy":4.0}"#;
        let Ok(GpsdMessage::Tpv(tpv)) = parse_gpsd_line(line) else {
            panic!("not a tpv")
        };
        let fix = tpv.fix().unwrap();
        assert_eq!(fix.mode, FixMode::TwoD);
        assert_eq!(fix.altitude_m, Field::Present(3.0));
        assert_eq!(fix.horizontal_error_m, Field::Present(5.0));
        assert_eq!(fix.speed_mps, Field::Absent);
        assert_eq!(fix.time, Field::Absent);
    }

    #[test]
    fn tpvs_without_a_fix_give_none() {
        for line in [
            &br#"{"class":"TPV","mode":1}"#[..],
            br#"{"class":"TPV","mode":0,"lat":1.0,"lon":2.0}"#,
            br#"{"class":"TPV"}"#,
            br#"{"class":"TPV","mode":3,"lat":1.0}"#,
        ] {
            let Ok(GpsdMessage::Tpv(tpv)) = parse_gpsd_line(line) else {
                panic!("not a tpv: {line:?}")
            };
            assert_eq!(tpv.fix(), None, "{line:?}");
        }
    }

    #[test]
    fn other_classes_are_named_and_ignored() {
        for (line, class) in [
            (
                &br#"{"class":"VERSION","release":"3.22","proto_major":3}"#[..],
                "VERSION",
            ),
            (br#"{"class":"DEVICES","devices":[]}"#, "DEVICES"),
            (br#"{"class":"WATCH","enable":true,"json":true}"#, "WATCH"),
            (
                br#"{"class":"SKY","satellites":[{"PRN":4}],"time":7}"#,
                "SKY",
            ),
        ] {
            assert_eq!(
                parse_gpsd_line(line),
                Ok(GpsdMessage::Other {
                    class: class.into()
                })
            );
        }
    }

    #[test]
    fn hostile_lines_are_errors() {
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        let long = format!(r#"{{"class":"TPV","x":"{}"}}"#, "a".repeat(MAX_LINE_BYTES));
        let cases: Vec<(&[u8], &str)> = vec![
            (b"", "empty"),
            (b"hello gpsd", "not JSON"),
            (b"\xff\xfe{", "non-UTF-8"),
            (
                b"{\"class\":\"TPV\",\"mode\":3,\"lat\":NaN,\"lon\":1}",
                "NaN",
            ),
            (
                b"{\"class\":\"TPV\",\"mode\":3,\"lat\":1e400,\"lon\":1}",
                "huge",
            ),
            (
                b"{\"class\":\"TPV\",\"mode\":3,\"lat\":91.0,\"lon\":1}",
                "latitude",
            ),
            (
                b"{\"class\":\"TPV\",\"mode\":3,\"lat\":1,\"lon\":-180.5}",
                "longitude",
            ),
            (
                b"{\"class\":\"TPV\",\"mode\":3,\"lat\":\"1\",\"lon\":1}",
                "string lat",
            ),
            (
                b"{\"class\":\"TPV\",\"mode\":99999999999999999999}",
                "huge mode",
            ),
            (b"{\"class\":\"TPV\",\"mode\":-1}", "negative mode"),
            (
                b"{\"class\":\"TPV\",\"mode\":3,\"speed\":-2}",
                "negative speed",
            ),
            (b"{\"class\":\"TPV\",\"time\":\"a\\nb\"}", "newline in time"),
            (b"{\"mode\":3,\"lat\":1,\"lon\":1}", "missing class"),
            (b"{\"class\":3}", "class not a string"),
            (b"[1,2]", "array"),
            (b"{\"class\":\"TPV\"", "truncated"),
            (b"{\"class\":\"TPV\"}\0", "NUL"),
            (deep.as_bytes(), "deep nesting"),
            (long.as_bytes(), "too long"),
        ];
        for (line, what) in cases {
            assert!(parse_gpsd_line(line).is_err(), "{what}");
        }
    }

    #[test]
    fn line_reader_splits_and_drops_runaway_lines() {
        let mut r = LineReader::default();
        assert_eq!(r.push(b"ab"), Vec::<Vec<u8>>::new());
        assert_eq!(r.push(b"c\nde\nf"), vec![b"abc".to_vec(), b"de".to_vec()]);
        assert_eq!(r.push(&vec![b'x'; MAX_LINE_BYTES]), Vec::<Vec<u8>>::new());
        assert!(r.partial.is_empty(), "the runaway line is not buffered");
        assert_eq!(r.push(b"yyy\nok\n"), vec![b"ok".to_vec()]);
    }

    #[test]
    fn a_fixture_root_never_touches_the_network() {
        let dir = tempfile::tempdir().unwrap();
        let options = GpsdOptions {
            // A listener here would be contacted if the root were treated as live.
            address: SocketAddr::from(([192, 0, 2, 1], 2947)),
            timeout: Duration::from_secs(30),
        };
        let started = Instant::now();
        let location = read(&Root::at(dir.path()), &options);
        assert!(started.elapsed() < Duration::from_secs(1));
        assert_eq!(
            location,
            Location {
                gpsd: Field::Absent,
                fix: Field::Absent
            }
        );
    }
}
