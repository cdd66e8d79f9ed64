//! A small, bounded D-Bus client: just enough to call argument-less methods on the system
//! bus and read their replies.
//!
//! Hand-written because the zbus crate costs about 880 KB of flash and this about 13 KB.
//! It authenticates with EXTERNAL over a unix socket, sends `Hello`, then method calls
//! flagged NO_AUTO_START (a service that is not running is never started for us). Replies
//! are parsed by pure functions over bytes with a message size cap, a nesting limit, a
//! value count limit and exact signatures. Entries of `a{sv}` and `a{uv}` dictionaries
//! that the caller's filter rejects are checked and skipped, never kept, so identifiers
//! such as an IMEI never reach memory owned by the caller. Every socket read and write
//! has a deadline. No threads.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

/// The largest message accepted (header and body).
pub(crate) const MAX_MESSAGE: usize = 256 * 1024;
/// The deepest container nesting accepted (the D-Bus limit is 64).
pub(crate) const MAX_DEPTH: usize = 16;
/// The most values kept from one message.
const MAX_VALUES: usize = 20_000;
/// The most unrelated messages (signals) skipped while waiting for a reply.
const MAX_SKIPPED: usize = 16;
const NO_AUTO_START: u8 = 0x2;
const METHOD_CALL: u8 = 1;
const METHOD_RETURN: u8 = 2;
const ERROR: u8 = 3;

/// A decoded value. Object paths and signatures are strings.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Bool(bool),
    Int(i64),
    Uint(u64),
    Double(f64),
    Str(String),
    Array(Vec<Value>),
    /// A struct, or a dictionary entry (two fields).
    Struct(Vec<Value>),
    /// A variant: its signature and its value.
    Variant(String, Box<Value>),
}

impl Value {
    pub(crate) fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
    pub(crate) fn as_uint(&self) -> Option<u64> {
        match self {
            Value::Uint(n) => Some(*n),
            _ => None,
        }
    }
    /// The entries of a dictionary (an array of two-field structs).
    pub(crate) fn entries(&self) -> impl Iterator<Item = (&Value, &Value)> {
        let items: &[Value] = match self {
            Value::Array(items) => items,
            _ => &[],
        };
        items.iter().filter_map(|e| match e {
            Value::Struct(kv) if kv.len() == 2 => Some((&kv[0], &kv[1])),
            _ => None,
        })
    }
}

/// Why a D-Bus exchange failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DbusError {
    /// No bus socket (not found, or nothing listening).
    NoBus,
    /// The bus or the service refused us.
    Denied,
    /// The service is not on the bus.
    NoService,
    /// The peer answered with an error of this name.
    Remote(String),
    Timeout,
    Io(String),
    /// The bytes broke the protocol or our limits.
    Malformed(&'static str),
    /// The reply's signature is not the one expected.
    Signature(String),
}

impl std::fmt::Display for DbusError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DbusError::NoBus => f.write_str("no system bus"),
            DbusError::Denied => f.write_str("access denied"),
            DbusError::NoService => f.write_str("service not on the bus"),
            DbusError::Remote(name) => write!(f, "d-bus error {name}"),
            DbusError::Timeout => f.write_str("d-bus peer did not answer in time"),
            DbusError::Io(e) => write!(f, "d-bus i/o error: {e}"),
            DbusError::Malformed(e) => write!(f, "malformed d-bus message: {e}"),
            DbusError::Signature(s) => write!(f, "d-bus reply has the wrong signature {s:?}"),
        }
    }
}

fn bad(reason: &'static str) -> DbusError {
    DbusError::Malformed(reason)
}

/// Decides which entries of `a{sv}`/`a{uv}` dictionaries are kept, by key.
pub(crate) type KeyFilter = fn(&Value) -> bool;

/// Keeps every entry.
pub(crate) fn keep_all(_: &Value) -> bool {
    true
}

/// One parsed message.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Message {
    pub(crate) kind: u8,
    pub(crate) serial: u32,
    pub(crate) reply_serial: Option<u32>,
    pub(crate) error_name: Option<String>,
    pub(crate) signature: String,
    pub(crate) body: Vec<Value>,
}

/// The total length of the message starting `head` (at least 16 bytes), from its fixed
/// header, refused above [`MAX_MESSAGE`].
pub(crate) fn message_length(head: &[u8]) -> Result<usize, DbusError> {
    let big = match head.first() {
        Some(b'l') => false,
        Some(b'B') => true,
        _ => return Err(bad("bad endianness byte")),
    };
    let word = |at: usize| -> Result<usize, DbusError> {
        let b: [u8; 4] = head
            .get(at..at + 4)
            .and_then(|s| s.try_into().ok())
            .ok_or_else(|| bad("short header"))?;
        Ok((if big {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }) as usize)
    };
    let (body, fields) = (word(4)?, word(12)?);
    let total = align(16 + fields, 8).saturating_add(body);
    if body > MAX_MESSAGE || fields > MAX_MESSAGE || total > MAX_MESSAGE {
        return Err(bad("message over the size limit"));
    }
    Ok(total)
}

/// Parses one complete message. Dictionary entries in the body whose key `keep` rejects
/// are validated and dropped.
pub(crate) fn parse_message(bytes: &[u8], keep: KeyFilter) -> Result<Message, DbusError> {
    let total = message_length(bytes)?;
    if bytes.len() != total {
        return Err(bad("length does not match the header"));
    }
    if bytes.get(3) != Some(&1) {
        return Err(bad("unsupported protocol version"));
    }
    let mut r = Reader {
        buf: bytes,
        pos: 12,
        big: bytes[0] == b'B',
        values: 0,
        keep,
    };
    let mut message = Message {
        kind: bytes[1],
        serial: u32_at(bytes, 8, r.big),
        reply_serial: None,
        error_name: None,
        signature: String::new(),
        body: Vec::new(),
    };
    let Value::Array(fields) = r.value(b"a(yv)", &mut 0, 0)? else {
        return Err(bad("header fields"));
    };
    for field in fields {
        let Value::Struct(f) = field else { continue };
        let (Some(Value::Uint(code)), Some(Value::Variant(sig, v))) = (f.first(), f.get(1)) else {
            continue;
        };
        match (*code, sig.as_str(), v.as_ref()) {
            (4, "s", Value::Str(s)) => message.error_name = Some(s.clone()),
            (5, "u", Value::Uint(n)) => message.reply_serial = Some(*n as u32),
            (8, "g", Value::Str(s)) => message.signature = s.clone(),
            (9, _, _) => return Err(bad("unix fds are not accepted")),
            (1, "o", _) | (2 | 3 | 6 | 7, "s", _) => {}
            (1..=8, _, _) => return Err(bad("header field of the wrong type")),
            _ => {}
        }
    }
    r.pad(8)?;
    let sig = message.signature.clone().into_bytes();
    let mut at = 0;
    while at < sig.len() {
        let v = r.value(&sig, &mut at, 0)?;
        message.body.push(v);
    }
    if r.pos != bytes.len() {
        return Err(bad("bytes after the body"));
    }
    Ok(message)
}

fn u32_at(b: &[u8], at: usize, big: bool) -> u32 {
    let w = [b[at], b[at + 1], b[at + 2], b[at + 3]];
    if big {
        u32::from_be_bytes(w)
    } else {
        u32::from_le_bytes(w)
    }
}

/// The alignment of values whose type code is `code`.
fn alignment(code: u8) -> usize {
    match code {
        b'y' | b'g' | b'v' => 1,
        b'n' | b'q' => 2,
        b'{' | b'(' | b'x' | b't' | b'd' => 8,
        _ => 4,
    }
}

fn align(n: usize, to: usize) -> usize {
    n.div_ceil(to) * to
}

/// The end of the single complete type starting at `sig[at]`.
fn type_end(sig: &[u8], at: usize, depth: usize) -> Result<usize, DbusError> {
    if depth > MAX_DEPTH {
        return Err(bad("signature nested too deeply"));
    }
    match sig.get(at) {
        Some(
            b'y' | b'b' | b'n' | b'q' | b'i' | b'u' | b'x' | b't' | b'd' | b's' | b'o' | b'g'
            | b'v',
        ) => Ok(at + 1),
        Some(b'a') => type_end(sig, at + 1, depth + 1),
        Some(b'(') => {
            let mut i = at + 1;
            while sig.get(i) != Some(&b')') {
                i = type_end(sig, i, depth + 1)?;
            }
            if i == at + 1 {
                return Err(bad("empty struct"));
            }
            Ok(i + 1)
        }
        Some(b'{') => {
            if !matches!(
                sig.get(at + 1),
                Some(
                    b'y' | b'b'
                        | b'n'
                        | b'q'
                        | b'i'
                        | b'u'
                        | b'x'
                        | b't'
                        | b'd'
                        | b's'
                        | b'o'
                        | b'g'
                )
            ) {
                return Err(bad("dictionary key is not a basic type"));
            }
            let end = type_end(sig, at + 2, depth + 1)?;
            if sig.get(end) != Some(&b'}') {
                return Err(bad("dictionary entry without two fields"));
            }
            Ok(end + 1)
        }
        _ => Err(bad("bad signature")),
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    big: bool,
    values: usize,
    keep: KeyFilter,
}

impl Reader<'_> {
    fn pad(&mut self, to: usize) -> Result<(), DbusError> {
        let end = align(self.pos, to);
        match self.buf.get(self.pos..end) {
            Some(p) if p.iter().all(|b| *b == 0) => {
                self.pos = end;
                Ok(())
            }
            Some(_) => Err(bad("non-zero padding")),
            None => Err(bad("truncated")),
        }
    }

    fn take(&mut self, n: usize) -> Result<&[u8], DbusError> {
        self.pad(n.min(8))?;
        let s = self
            .buf
            .get(self.pos..self.pos + n)
            .ok_or_else(|| bad("truncated"))?;
        self.pos += n;
        Ok(s)
    }

    fn uint(&mut self, n: usize) -> Result<u64, DbusError> {
        let big = self.big;
        let b = self.take(n)?;
        let mut v = 0u64;
        for i in 0..n {
            let byte = if big { b[i] } else { b[n - 1 - i] };
            v = (v << 8) | u64::from(byte);
        }
        Ok(v)
    }

    fn string(&mut self, len_bytes: usize) -> Result<String, DbusError> {
        let len = self.uint(len_bytes)? as usize;
        let start = self.pos;
        let s = self
            .buf
            .get(start..start.saturating_add(len).saturating_add(1))
            .ok_or_else(|| bad("truncated string"))?;
        if s[len] != 0 || s[..len].contains(&0) {
            return Err(bad("string not NUL-terminated"));
        }
        let text = std::str::from_utf8(&s[..len]).map_err(|_| bad("string is not UTF-8"))?;
        self.pos += len + 1;
        Ok(text.to_string())
    }

    /// Reads the value of the single complete type at `sig[*at]` and moves `at` past it.
    fn value(&mut self, sig: &[u8], at: &mut usize, depth: usize) -> Result<Value, DbusError> {
        if depth > MAX_DEPTH {
            return Err(bad("values nested too deeply"));
        }
        self.values += 1;
        if self.values > MAX_VALUES {
            return Err(bad("too many values"));
        }
        let start = *at;
        let end = type_end(sig, start, depth)?;
        *at = end;
        let sign = |v: u64, bits: u32| -> i64 { ((v << (64 - bits)) as i64) >> (64 - bits) };
        Ok(match sig[start] {
            b'y' => Value::Uint(self.uint(1)?),
            b'b' => match self.uint(4)? {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                _ => return Err(bad("boolean is not 0 or 1")),
            },
            b'n' => Value::Int(sign(self.uint(2)?, 16)),
            b'q' => Value::Uint(self.uint(2)?),
            b'i' => Value::Int(sign(self.uint(4)?, 32)),
            b'u' => Value::Uint(self.uint(4)?),
            b'x' => Value::Int(self.uint(8)? as i64),
            b't' => Value::Uint(self.uint(8)?),
            b'd' => Value::Double(f64::from_bits(self.uint(8)?)),
            b's' | b'o' => Value::Str(self.string(4)?),
            b'g' => Value::Str(self.string(1)?),
            b'v' => {
                let inner = self.string(1)?;
                let isig = inner.as_bytes();
                if type_end(isig, 0, depth + 1)? != isig.len() {
                    return Err(bad("variant signature is not one type"));
                }
                let v = self.value(isig, &mut 0, depth + 1)?;
                Value::Variant(inner, Box::new(v))
            }
            b'a' => {
                let len = self.uint(4)? as usize;
                let elem = &sig[start + 1..end];
                self.pad(alignment(elem[0]))?;
                let stop = self.pos.checked_add(len).filter(|e| *e <= self.buf.len());
                let stop = stop.ok_or_else(|| bad("array overruns the message"))?;
                let filtered = elem.len() == 4 && elem[0] == b'{' && elem[2] == b'v';
                let mut items = Vec::new();
                while self.pos < stop {
                    let v = self.value(elem, &mut 0, depth + 1)?;
                    let dropped =
                        filtered && matches!(&v, Value::Struct(kv) if !(self.keep)(&kv[0]));
                    if !dropped {
                        items.push(v);
                    }
                }
                if self.pos != stop {
                    return Err(bad("array length does not match its elements"));
                }
                Value::Array(items)
            }
            b'(' | b'{' => {
                self.pad(8)?;
                let mut fields = Vec::new();
                let mut i = start + 1;
                while i < end - 1 {
                    fields.push(self.value(sig, &mut i, depth + 1)?);
                }
                Value::Struct(fields)
            }
            _ => return Err(bad("bad signature")),
        })
    }
}

/// Builds a method call with no arguments, flagged NO_AUTO_START.
pub(crate) fn method_call(
    serial: u32,
    destination: &str,
    path: &str,
    interface: &str,
    member: &str,
) -> Vec<u8> {
    let mut m = vec![b'l', METHOD_CALL, NO_AUTO_START, 1];
    m.extend_from_slice(&0u32.to_le_bytes());
    m.extend_from_slice(&serial.to_le_bytes());
    m.extend_from_slice(&[0; 4]);
    for (code, sig, text) in [
        (1u8, b'o', path),
        (2, b's', interface),
        (3, b's', member),
        (6, b's', destination),
    ] {
        m.resize(align(m.len(), 8), 0);
        m.extend_from_slice(&[code, 1, sig, 0]);
        m.extend_from_slice(&(text.len() as u32).to_le_bytes());
        m.extend_from_slice(text.as_bytes());
        m.push(0);
    }
    let fields = (m.len() - 16) as u32;
    m[12..16].copy_from_slice(&fields.to_le_bytes());
    m.resize(align(m.len(), 8), 0);
    m
}

/// The socket path of the system bus: `DBUS_SYSTEM_BUS_ADDRESS` when set (its first
/// `unix:path=` address), else the standard socket.
pub(crate) fn system_bus_path(env: Option<&str>) -> Option<String> {
    let Some(address) = env else {
        return Some("/run/dbus/system_bus_socket".to_string());
    };
    address.split(';').find_map(|a| {
        let rest = a.strip_prefix("unix:")?;
        let path = rest.split(',').find_map(|kv| kv.strip_prefix("path="))?;
        unescape(path)
    })
}

fn unescape(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// A connection to the bus, authenticated and named.
#[derive(Debug)]
pub(crate) struct Connection {
    stream: UnixStream,
    deadline: Instant,
    serial: u32,
}

impl Connection {
    /// Connects, authenticates with EXTERNAL and sends `Hello`, all before `timeout`; the
    /// same deadline covers every later call.
    pub(crate) fn open(path: &str, timeout: Duration) -> Result<Connection, DbusError> {
        let stream = UnixStream::connect(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused => {
                DbusError::NoBus
            }
            std::io::ErrorKind::PermissionDenied => DbusError::Denied,
            _ => DbusError::Io(e.to_string()),
        })?;
        let mut c = Connection {
            stream,
            deadline: Instant::now() + timeout,
            serial: 0,
        };
        let uid = nix::unistd::getuid().as_raw().to_string();
        let hex: String = uid.bytes().map(|b| format!("{b:02x}")).collect();
        c.write(format!("\0AUTH EXTERNAL {hex}\r\n").as_bytes())?;
        let line = c.read_line()?;
        if !line.starts_with(b"OK ") {
            return Err(DbusError::Denied);
        }
        c.write(b"BEGIN\r\n")?;
        c.call(
            "org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus",
            "Hello",
            "s",
            keep_all,
        )?;
        Ok(c)
    }

    /// Calls an argument-less method and returns the reply's body, which must have
    /// exactly the signature `expect`.
    pub(crate) fn call(
        &mut self,
        destination: &str,
        path: &str,
        interface: &str,
        member: &str,
        expect: &str,
        keep: KeyFilter,
    ) -> Result<Vec<Value>, DbusError> {
        self.serial += 1;
        let serial = self.serial;
        self.write(&method_call(serial, destination, path, interface, member))?;
        for _ in 0..MAX_SKIPPED {
            let bytes = self.read_message()?;
            let m = parse_message(&bytes, keep)?;
            if m.reply_serial != Some(serial) || !matches!(m.kind, METHOD_RETURN | ERROR) {
                continue;
            }
            if m.kind == ERROR {
                let name = m.error_name.unwrap_or_default();
                // The bus's and ModemManager's names for a missing service and for a
                // refusal (`...Error.Core.Unauthorized` needs privileges).
                return Err(
                    if name.ends_with(".ServiceUnknown") || name.ends_with(".NameHasNoOwner") {
                        DbusError::NoService
                    } else if name.ends_with(".AccessDenied") || name.ends_with(".Unauthorized") {
                        DbusError::Denied
                    } else {
                        DbusError::Remote(crate::field::truncate_for_reason(&name))
                    },
                );
            }
            if m.signature != expect {
                return Err(DbusError::Signature(crate::field::truncate_for_reason(
                    &m.signature,
                )));
            }
            return Ok(m.body);
        }
        Err(bad("no reply among the messages received"))
    }

    fn arm(&self) -> Result<(), DbusError> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(DbusError::Timeout);
        }
        let io = |e: std::io::Error| DbusError::Io(e.to_string());
        self.stream.set_read_timeout(Some(left)).map_err(io)?;
        self.stream.set_write_timeout(Some(left)).map_err(io)
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), DbusError> {
        self.arm()?;
        self.stream.write_all(bytes).map_err(io_error)
    }

    fn read_exact(&mut self, buf: &mut [u8]) -> Result<(), DbusError> {
        let mut got = 0;
        while got < buf.len() {
            self.arm()?;
            match self.stream.read(&mut buf[got..]) {
                Ok(0) => return Err(DbusError::Io("the bus closed the connection".to_string())),
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io_error(e)),
            }
        }
        Ok(())
    }

    fn read_line(&mut self) -> Result<Vec<u8>, DbusError> {
        let mut line = Vec::new();
        let mut byte = [0u8];
        while !line.ends_with(b"\r\n") {
            if line.len() > 512 {
                return Err(bad("authentication line too long"));
            }
            self.read_exact(&mut byte)?;
            line.push(byte[0]);
        }
        Ok(line)
    }

    fn read_message(&mut self) -> Result<Vec<u8>, DbusError> {
        let mut bytes = vec![0u8; 16];
        self.read_exact(&mut bytes)?;
        let total = message_length(&bytes)?;
        if total < 16 {
            return Err(bad("message shorter than its header"));
        }
        bytes.resize(total, 0);
        self.read_exact(&mut bytes[16..])?;
        Ok(bytes)
    }
}

fn io_error(e: std::io::Error) -> DbusError {
    match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => DbusError::Timeout,
        _ => DbusError::Io(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cellular::{self, wanted};

    /// Messages captured with `dbus-monitor --pcap` on a private bus, answered by
    /// `tests/fixtures/dbus/fake_modemmanager.py` (sent by dbus-python, relayed by
    /// dbus-daemon).
    const MANAGED: &[u8] = include_bytes!("../tests/fixtures/dbus/get_managed_objects_reply.bin");
    const LOCATION: &[u8] = include_bytes!("../tests/fixtures/dbus/get_location_reply.bin");
    const UNAUTHORIZED: &[u8] =
        include_bytes!("../tests/fixtures/dbus/get_location_unauthorized.bin");
    const HELLO: &[u8] = include_bytes!("../tests/fixtures/dbus/hello_reply.bin");
    const SIGNAL: &[u8] = include_bytes!("../tests/fixtures/dbus/name_owner_changed_signal.bin");
    const CALL: &[u8] = include_bytes!("../tests/fixtures/dbus/get_managed_objects_call.bin");

    #[test]
    fn captured_replies_parse_and_identifiers_are_dropped() {
        let m = parse_message(MANAGED, wanted).unwrap();
        assert_eq!(
            (m.kind, m.signature.as_str()),
            (METHOD_RETURN, "a{oa{sa{sv}}}")
        );
        let text = format!("{:?}", m.body);
        for secret in [
            "356938035643809",
            "a1b2c3d4e5f6",
            "+41791234567",
            "SIM",
            "Quectel",
        ] {
            assert!(!text.contains(secret), "{secret} kept: {text}");
        }
        let (path, interfaces) = m.body[0].entries().next().unwrap();
        let modem = cellular::modem_facts(path.as_str().unwrap(), interfaces);
        assert_eq!(
            modem.operator_name,
            crate::Field::Present("Swisscom".into())
        );
        assert_eq!(modem.interface, crate::Field::Present("wwan0".into()));
        // Without the filter the identifiers are there: the test above can fail.
        let all = format!("{:?}", parse_message(MANAGED, keep_all).unwrap().body);
        assert!(all.contains("356938035643809"));

        let loc = parse_message(LOCATION, wanted).unwrap();
        assert_eq!(loc.signature, "a{uv}");
        assert!(!format!("{:?}", loc.body).contains("latitude"), "GPS kept");
        let cell = cellular::cell_from_location(&loc.body)
            .into_present()
            .unwrap();
        assert_eq!(
            (cell.cell_id.as_str(), cell.tac.as_deref()),
            ("1A2B3C4", Some("4D2"))
        );

        let err = parse_message(UNAUTHORIZED, wanted).unwrap();
        assert_eq!(err.kind, ERROR);
        assert_eq!(
            err.error_name.as_deref(),
            Some("org.freedesktop.ModemManager1.Error.Core.Unauthorized")
        );
        let hello = parse_message(HELLO, keep_all).unwrap();
        assert_eq!(hello.body, [Value::Str(":1.2".into())]);
        assert_eq!(hello.reply_serial, Some(1));
        assert_eq!(parse_message(SIGNAL, keep_all).unwrap().kind, 4);
    }

    #[test]
    fn our_call_has_the_layout_of_a_real_one() {
        let ours = method_call(
            7,
            "org.freedesktop.ModemManager1",
            "/org/freedesktop/ModemManager1",
            "org.freedesktop.DBus.ObjectManager",
            "GetManagedObjects",
        );
        let m = parse_message(&ours, keep_all).unwrap();
        assert_eq!((m.kind, m.serial, m.body.len()), (METHOD_CALL, 7, 0));
        assert_eq!(ours[2], NO_AUTO_START);
        // dbus-send's call, as relayed by the daemon, carries the same four fields
        // (plus the sender); each of ours appears in it byte for byte.
        let real = parse_message(CALL, keep_all).unwrap();
        assert_eq!(real.kind, METHOD_CALL);
        for needle in [&ours[16..56], &ours[56..96]] {
            assert!(CALL.windows(needle.len()).any(|w| w == needle));
        }
    }

    #[test]
    fn every_cut_and_every_flipped_byte_is_an_error_or_a_value_never_a_panic() {
        for fixture in [MANAGED, LOCATION, UNAUTHORIZED, HELLO, SIGNAL, CALL] {
            for cut in 0..fixture.len() {
                assert!(parse_message(&fixture[..cut], wanted).is_err());
            }
            for i in 0..fixture.len() {
                for bit in [0x01, 0x80, 0xff] {
                    let mut bad = fixture.to_vec();
                    bad[i] ^= bit;
                    let _ = parse_message(&bad, wanted);
                }
            }
        }
    }

    /// A little-endian message with signature `sig` and body `body`.
    fn reply(sig: &str, body: &[u8]) -> Vec<u8> {
        let mut m = vec![b'l', METHOD_RETURN, 0, 1];
        m.extend_from_slice(&(body.len() as u32).to_le_bytes());
        m.extend_from_slice(&1u32.to_le_bytes());
        let mut fields = vec![8, 1, b'g', 0, sig.len() as u8];
        fields.extend_from_slice(sig.as_bytes());
        fields.push(0);
        m.extend_from_slice(&(fields.len() as u32).to_le_bytes());
        m.extend_from_slice(&fields);
        m.resize(align(m.len(), 8), 0);
        m.extend_from_slice(body);
        m
    }

    #[test]
    fn limits_and_strictness() {
        assert_eq!(
            parse_message(&reply("u", &7u32.to_le_bytes()), keep_all)
                .unwrap()
                .body,
            [Value::Uint(7)]
        );
        // Booleans are 0 or 1.
        assert!(parse_message(&reply("b", &2u32.to_le_bytes()), keep_all).is_err());
        // Trailing bytes, non-zero padding, an array longer than the message.
        assert!(parse_message(&reply("y", &[1, 0]), keep_all).is_err());
        assert!(parse_message(&reply("yu", &[1, 9, 0, 0, 5, 0, 0, 0]), keep_all).is_err());
        assert!(parse_message(&reply("ay", &[200, 0, 0, 0, 1]), keep_all).is_err());
        // Signatures: unbalanced, a non-basic dictionary key, too deep.
        for sig in ["(u", "a{vu}", "a{u}", "()", "z"] {
            assert!(parse_message(&reply(sig, &[]), keep_all).is_err(), "{sig}");
        }
        let deep = format!("{}u", "a".repeat(MAX_DEPTH + 1));
        assert!(parse_message(&reply(&deep, &[0; 4]), keep_all).is_err());
        // Variants nested past the limit, each `v` carrying signature "v".
        let mut body = Vec::new();
        for _ in 0..MAX_DEPTH + 2 {
            body.extend_from_slice(&[1, b'v', 0]);
        }
        body.extend_from_slice(&[1, b'y', 0, 5]);
        let err = parse_message(&reply("v", &body), keep_all).unwrap_err();
        assert!(err.to_string().contains("nested too deeply"), "{err}");
        // A header announcing more than the cap is refused before any body is read.
        let mut head = reply("u", &[0; 4]);
        head[4..8].copy_from_slice(&(MAX_MESSAGE as u32).to_le_bytes());
        assert!(message_length(&head[..16]).is_err());
        let mut big = head[..16].to_vec();
        big[0] = b'B';
        big[4..8].copy_from_slice(&8u32.to_be_bytes());
        big[12..16].copy_from_slice(&8u32.to_be_bytes());
        assert_eq!(message_length(&big), Ok(32));
        // Unix fds are never accepted.
        let mut fds = reply("", &[]);
        fds[16] = 9;
        assert!(parse_message(&fds, keep_all).is_err());
    }

    #[test]
    fn the_bus_address_comes_from_the_environment_else_the_standard_socket() {
        assert_eq!(
            system_bus_path(None).as_deref(),
            Some("/run/dbus/system_bus_socket")
        );
        assert_eq!(
            system_bus_path(Some("unix:path=/tmp/a%20b/sock,guid=1")).as_deref(),
            Some("/tmp/a b/sock")
        );
        assert_eq!(
            system_bus_path(Some("tcp:host=x,port=1;unix:path=/run/x")).as_deref(),
            Some("/run/x")
        );
        assert_eq!(system_bus_path(Some("unix:abstract=x")), None);
        assert_eq!(system_bus_path(Some("unix:path=/x%4")), None);
    }
}
