//! The message format of the events socket, as a pure function over the bytes of one
//! line: `{"name": "...", "attrs": {...}}`. It will be fuzzed; it must never panic and
//! its memory use is bounded by the line's length.
//!
//! Strict on purpose: what a program sends is stored and later shown to the device's
//! owner and sent to the collector, so anything ambiguous is refused with a message that
//! names the field, rather than guessed at.

use assent_wire::{AppEvent, AttrValue};
use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use std::collections::BTreeMap;
use std::fmt;

/// The longest event name, in characters.
pub const MAX_NAME_CHARS: usize = 64;

/// The longest attribute key, in characters.
pub const MAX_KEY_CHARS: usize = 64;

/// The longest text attribute value, in bytes.
pub const MAX_TEXT_BYTES: usize = 1024;

/// The limits a line is checked against, from `[events]` in the config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The longest line, newline excluded.
    pub max_message_bytes: usize,
    /// The most attributes in one event.
    pub max_attributes: usize,
}

impl Limits {
    /// The limits `config` sets.
    pub fn from_config(config: &crate::config::EventsConfig) -> Limits {
        Limits {
            max_message_bytes: usize::try_from(config.max_message_bytes).unwrap_or(usize::MAX),
            max_attributes: usize::try_from(config.max_attributes).unwrap_or(usize::MAX),
        }
    }
}

/// Why a line is refused; its `Display` is the one-line answer (after `line N: `).
#[derive(Debug, Clone, PartialEq)]
pub enum LineError {
    TooLarge {
        limit: usize,
    },
    Empty,
    /// serde_json's message, without its position, and the column.
    Json {
        column: usize,
        message: String,
    },
    NotAnObject {
        found: &'static str,
    },
    /// An unknown top-level key, already made safe to quote.
    UnknownKey(String),
    DuplicateKey(String),
    MissingName,
    NameNotAString {
        found: &'static str,
    },
    Name(WordError),
    AttrsNotAnObject {
        found: &'static str,
    },
    TooManyAttrs {
        count: usize,
        limit: usize,
    },
    /// A bad attribute key, already made safe to quote.
    AttrKey {
        key: String,
        error: WordError,
    },
    DuplicateAttr(String),
    NotFinite(String),
    IntOutOfRange(String),
    TextTooLong {
        key: String,
        bytes: usize,
    },
    TextWithNul(String),
    WrongType {
        key: String,
        found: &'static str,
    },
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LineError::TooLarge { limit } => write!(f, "message larger than {limit} bytes"),
            LineError::Empty => f.write_str("empty message"),
            LineError::Json { column, message } => {
                write!(f, "invalid JSON at column {column}: {message}")
            }
            LineError::NotAnObject { found } => write!(
                f,
                "expected a JSON object like {{\"name\": \"...\", \"attrs\": {{...}}}}, found {found}"
            ),
            LineError::UnknownKey(key) => write!(
                f,
                "unknown key `{key}` (only `name` and `attrs` are accepted)"
            ),
            LineError::DuplicateKey(key) => write!(f, "duplicate key `{key}`"),
            LineError::MissingName => f.write_str("missing `name`"),
            LineError::NameNotAString { found } => {
                write!(f, "name: expected a string, found {found}")
            }
            LineError::Name(e) => write!(f, "name: {e}"),
            LineError::AttrsNotAnObject { found } => {
                write!(f, "attrs: expected an object, found {found}")
            }
            LineError::TooManyAttrs { count, limit } => write!(
                f,
                "attrs: {count} attributes, more than the limit of {limit}"
            ),
            LineError::AttrKey { key, error } => write!(f, "attrs: key `{key}`: {error}"),
            LineError::DuplicateAttr(key) => write!(f, "attrs: duplicate key `{key}`"),
            LineError::NotFinite(key) => write!(f, "attrs.{key}: number is not finite"),
            LineError::IntOutOfRange(key) => write!(
                f,
                "attrs.{key}: integer out of range (must fit in 64 signed bits)"
            ),
            LineError::TextTooLong { key, bytes } => write!(
                f,
                "attrs.{key}: text of {bytes} bytes, longer than {MAX_TEXT_BYTES}"
            ),
            LineError::TextWithNul(key) => write!(f, "attrs.{key}: text must not contain NUL"),
            LineError::WrongType { key, found } => write!(
                f,
                "attrs.{key}: expected a number, string or bool, found {found}"
            ),
        }
    }
}

impl std::error::Error for LineError {}

/// Why an event name or attribute key is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WordError {
    Empty,
    Character { found: char, allowed: &'static str },
    TooLong { max_chars: usize },
}

impl fmt::Display for WordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WordError::Empty => f.write_str("must not be empty"),
            WordError::Character { found, allowed } => {
                write!(f, "has the character {found:?} (allowed: {allowed})")
            }
            WordError::TooLong { max_chars } => write!(f, "longer than {max_chars} characters"),
        }
    }
}

impl std::error::Error for WordError {}

/// Parses and checks one message line (without its newline; a trailing `\r` is allowed).
///
/// Rules: a JSON object with a string `name` (1 to 64 characters of `A-Z a-z 0-9 _ . : -`)
/// and an optional object `attrs` of at most `max_attributes` keys (1 to 64 characters of
/// `A-Z a-z 0-9 _ . -`) whose values are booleans, integers that fit in 64 signed bits,
/// finite numbers with a fraction or exponent (floats), or strings of at most 1024 bytes
/// without NUL. No other key, no duplicate key, no `null`, no nested array or object.
/// (As JSON is read here, an integer written with more digits than fit in 64 unsigned
/// bits is read as a float.)
///
/// The error is one line naming what is wrong, e.g. `attrs.temp: expected a number,
/// string or bool, found an object`.
pub fn parse_event_line(line: &[u8], limits: &Limits) -> Result<AppEvent, LineError> {
    let plain = (line.len() <= limits.max_message_bytes)
        .then(|| super::plain::parse_plain(line, limits))
        .flatten();
    match plain {
        Some(event) => Ok(event),
        None => parse_general(line, limits),
    }
}

/// [`parse_event_line`] through serde_json, for any line: what it answers for every
/// line that [`super::plain`] does not take, and the same event for those it does.
pub fn parse_general(line: &[u8], limits: &Limits) -> Result<AppEvent, LineError> {
    if line.len() > limits.max_message_bytes {
        return Err(LineError::TooLarge {
            limit: limits.max_message_bytes,
        });
    }
    if line.iter().all(u8::is_ascii_whitespace) {
        return Err(LineError::Empty);
    }
    let json: Json = serde_json::from_slice(line).map_err(json_error)?;
    let Json::Object(pairs) = json else {
        return Err(LineError::NotAnObject {
            found: json.type_name(),
        });
    };
    let mut name = None;
    let mut attrs = None;
    for (key, value) in pairs {
        let slot = match key.as_str() {
            "name" => &mut name,
            "attrs" => &mut attrs,
            other => return Err(LineError::UnknownKey(show(other))),
        };
        if slot.is_some() {
            return Err(LineError::DuplicateKey(key));
        }
        *slot = Some(value);
    }
    let name = match name {
        None => return Err(LineError::MissingName),
        Some(Json::String(s)) => check_name(&s).map_err(LineError::Name)?,
        Some(other) => {
            return Err(LineError::NameNotAString {
                found: other.type_name(),
            })
        }
    };
    let attrs = match attrs {
        None => BTreeMap::new(),
        Some(Json::Object(pairs)) => check_attrs(pairs, limits.max_attributes)?,
        Some(other) => {
            return Err(LineError::AttrsNotAnObject {
                found: other.type_name(),
            })
        }
    };
    Ok(AppEvent { name, attrs })
}

fn check_attrs(
    pairs: Vec<(String, Json)>,
    max_attributes: usize,
) -> Result<BTreeMap<String, AttrValue>, LineError> {
    if pairs.len() > max_attributes {
        return Err(LineError::TooManyAttrs {
            count: pairs.len(),
            limit: max_attributes,
        });
    }
    let mut attrs = BTreeMap::new();
    for (key, value) in pairs {
        check_key(&key).map_err(|error| LineError::AttrKey {
            key: show(&key),
            error,
        })?;
        if attrs.contains_key(&key) {
            return Err(LineError::DuplicateAttr(key));
        }
        let value = match value {
            Json::Bool(b) => AttrValue::Bool(b),
            Json::Int(i) => AttrValue::Int(i),
            Json::Float(f) if f.is_finite() => AttrValue::Float(f),
            Json::Float(_) => return Err(LineError::NotFinite(key)),
            Json::BigInt => return Err(LineError::IntOutOfRange(key)),
            Json::String(s) if s.len() > MAX_TEXT_BYTES => {
                return Err(LineError::TextTooLong {
                    key,
                    bytes: s.len(),
                })
            }
            Json::String(s) if s.contains('\0') => return Err(LineError::TextWithNul(key)),
            Json::String(s) => AttrValue::Text(s),
            other @ (Json::Null | Json::Array | Json::Object(_)) => {
                return Err(LineError::WrongType {
                    key,
                    found: other.type_name(),
                })
            }
        };
        attrs.insert(key, value);
    }
    Ok(attrs)
}

/// An event name: 1 to 64 characters of `A-Z a-z 0-9 _ . : -`.
pub fn check_name(s: &str) -> Result<String, WordError> {
    check_word(s, MAX_NAME_CHARS, "A-Z a-z 0-9 _ . : -", |c| {
        c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-')
    })?;
    Ok(s.to_string())
}

/// An attribute key: 1 to 64 characters of `A-Z a-z 0-9 _ . -`. No `:`, so that
/// `assent emit key:=text` is never ambiguous.
pub fn check_key(s: &str) -> Result<(), WordError> {
    check_word(s, MAX_KEY_CHARS, "A-Z a-z 0-9 _ . -", |c| {
        c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
    })
}

fn check_word(
    s: &str,
    max_chars: usize,
    allowed_text: &'static str,
    allowed: impl Fn(char) -> bool,
) -> Result<(), WordError> {
    if s.is_empty() {
        return Err(WordError::Empty);
    }
    if let Some(c) = s.chars().find(|c| !allowed(*c)) {
        return Err(WordError::Character {
            found: c,
            allowed: allowed_text,
        });
    }
    // Every allowed character is ASCII, so bytes count characters once they are checked.
    if s.len() > max_chars {
        return Err(WordError::TooLong { max_chars });
    }
    Ok(())
}

/// A hostile string made safe to quote in a one-line error: escaped, at most 64 chars.
fn show(s: &str) -> String {
    let mut out: String = s.chars().take(64).flat_map(char::escape_debug).collect();
    if s.chars().nth(64).is_some() {
        out.push_str("...");
    }
    out
}

/// serde_json's message with its position as a column (the line is always 1 here).
fn json_error(e: serde_json::Error) -> LineError {
    let mut message = e.to_string();
    if let Some(i) = message.rfind(" at line ") {
        message.truncate(i);
    }
    LineError::Json {
        column: e.column(),
        message,
    }
}

/// A JSON value that keeps object members in order with their duplicates (serde_json's
/// `Value` keeps only the last of duplicate keys, which would hide an ambiguity), and
/// drops what nested values hold since they are refused anyway. serde_json's recursion
/// limit bounds the nesting.
enum Json {
    Null,
    Bool(bool),
    Int(i64),
    /// An integer above `i64::MAX` (JSON reads larger ones as floats).
    BigInt,
    Float(f64),
    String(String),
    Array,
    Object(Vec<(String, Json)>),
}

impl Json {
    fn type_name(&self) -> &'static str {
        match self {
            Json::Null => "null",
            Json::Bool(_) => "a bool",
            Json::Int(_) | Json::BigInt | Json::Float(_) => "a number",
            Json::String(_) => "a string",
            Json::Array => "an array",
            Json::Object(_) => "an object",
        }
    }
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(JsonVisitor)
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }

    fn visit_bool<E>(self, v: bool) -> Result<Json, E> {
        Ok(Json::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Json, E> {
        Ok(Json::Int(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Json, E> {
        Ok(i64::try_from(v).map_or(Json::BigInt, Json::Int))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Json, E> {
        Ok(Json::Float(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Json, E> {
        Ok(Json::String(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Json, E> {
        Ok(Json::String(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        while seq.next_element::<Json>()?.is_some() {}
        Ok(Json::Array)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut pairs = Vec::new();
        while let Some((k, v)) = map.next_entry::<String, Json>()? {
            pairs.push((k, v));
        }
        Ok(Json::Object(pairs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        max_message_bytes: 4096,
        max_attributes: 4,
    };

    fn ok(line: &str) -> AppEvent {
        match parse_event_line(line.as_bytes(), &LIMITS) {
            Ok(e) => e,
            Err(e) => panic!("{line:?} refused: {e}"),
        }
    }

    fn err(line: &[u8]) -> String {
        match parse_event_line(line, &LIMITS) {
            Ok(e) => panic!("{:?} accepted as {e:?}", String::from_utf8_lossy(line)),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn good_messages() {
        let e = ok(r#"{"name": "door.open", "attrs": {"zone": 3, "ok": true, "t": -1.5}}"#);
        assert_eq!(e.name, "door.open");
        assert_eq!(
            e.attrs,
            BTreeMap::from([
                ("zone".to_string(), AttrValue::Int(3)),
                ("ok".to_string(), AttrValue::Bool(true)),
                ("t".to_string(), AttrValue::Float(-1.5)),
            ])
        );
        assert_eq!(ok(r#"{"name":"boot"}"#).attrs, BTreeMap::new());
        assert_eq!(
            ok("{\"attrs\":{},\"name\":\"a:b-c_d.e\"}\r").name,
            "a:b-c_d.e"
        );
        let e = ok(
            r#"{"name":"x","attrs":{"n":-9223372036854775808,"m":9223372036854775807,"f":1e2,"s":"h\u00e9 \"q\"\n"}}"#,
        );
        assert_eq!(e.attrs["n"], AttrValue::Int(i64::MIN));
        assert_eq!(e.attrs["m"], AttrValue::Int(i64::MAX));
        assert_eq!(e.attrs["f"], AttrValue::Float(100.0));
        assert_eq!(e.attrs["s"], AttrValue::Text("hé \"q\"\n".to_string()));
        let long_name = "n".repeat(64);
        assert_eq!(ok(&format!(r#"{{"name":"{long_name}"}}"#)).name, long_name);
        let text = "t".repeat(MAX_TEXT_BYTES);
        let e = ok(&format!(r#"{{"name":"x","attrs":{{"k":"{text}"}}}}"#));
        assert_eq!(e.attrs["k"], AttrValue::Text(text));
        // An integer beyond u64 is read as a float by JSON, and is finite: accepted.
        let e = ok(r#"{"name":"x","attrs":{"big":100000000000000000000000}}"#);
        assert_eq!(e.attrs["big"], AttrValue::Float(1e23));
    }

    #[test]
    fn every_rule_has_its_message() {
        let too_long_key = format!(r#"{{"name":"x","attrs":{{"{}":1}}}}"#, "k".repeat(65));
        let too_long_text = format!(
            r#"{{"name":"x","attrs":{{"s":"{}"}}}}"#,
            "é".repeat(MAX_TEXT_BYTES / 2 + 1)
        );
        let too_long_name = format!(r#"{{"name":"{}"}}"#, "n".repeat(65));
        let cases: Vec<(&[u8], &str)> = vec![
            (too_long_name.as_bytes(), "name: longer than 64 characters"),
            (b"", "empty message"),
            (b"  \t\r", "empty message"),
            (b"{", "invalid JSON at column 1: EOF while parsing an object"),
            (b"{\"name\": \"x\",}", "invalid JSON at column 14: trailing comma"),
            (b"{\"name\":\"a\"} {\"name\":\"b\"}", "invalid JSON at column 14: trailing characters"),
            (b"[1,2]", "expected a JSON object like {\"name\": \"...\", \"attrs\": {...}}, found an array"),
            (b"\"name\"", "expected a JSON object like {\"name\": \"...\", \"attrs\": {...}}, found a string"),
            (b"null", "expected a JSON object like {\"name\": \"...\", \"attrs\": {...}}, found null"),
            (b"{}", "missing `name`"),
            (b"{\"attrs\":{}}", "missing `name`"),
            (b"{\"name\":\"x\",\"Name\":\"y\"}", "unknown key `Name` (only `name` and `attrs` are accepted)"),
            (b"{\"name\":\"x\",\"name\":\"y\"}", "duplicate key `name`"),
            (b"{\"name\":\"x\",\"attrs\":{},\"attrs\":{}}", "duplicate key `attrs`"),
            (b"{\"name\":7}", "name: expected a string, found a number"),
            (b"{\"name\":null}", "name: expected a string, found null"),
            (b"{\"name\":\"\"}", "name: must not be empty"),
            (b"{\"name\":\"a b\"}", "name: has the character ' ' (allowed: A-Z a-z 0-9 _ . : -)"),
            (b"{\"name\":\"caf\xc3\xa9\"}", "name: has the character '\u{e9}' (allowed: A-Z a-z 0-9 _ . : -)"),
            (b"{\"name\":\"x\",\"attrs\":[]}", "attrs: expected an object, found an array"),
            (b"{\"name\":\"x\",\"attrs\":null}", "attrs: expected an object, found null"),
            (b"{\"name\":\"x\",\"attrs\":{\"temp\":{}}}", "attrs.temp: expected a number, string or bool, found an object"),
            (b"{\"name\":\"x\",\"attrs\":{\"temp\":[1]}}", "attrs.temp: expected a number, string or bool, found an array"),
            (b"{\"name\":\"x\",\"attrs\":{\"temp\":null}}", "attrs.temp: expected a number, string or bool, found null"),
            (b"{\"name\":\"x\",\"attrs\":{\"a\":1,\"a\":2}}", "attrs: duplicate key `a`"),
            (b"{\"name\":\"x\",\"attrs\":{\"a\":1,\"b\":2,\"c\":3,\"d\":4,\"e\":5}}", "attrs: 5 attributes, more than the limit of 4"),
            (b"{\"name\":\"x\",\"attrs\":{\"\":1}}", "attrs: key ``: must not be empty"),
            (b"{\"name\":\"x\",\"attrs\":{\"a:b\":1}}", "attrs: key `a:b`: has the character ':' (allowed: A-Z a-z 0-9 _ . -)"),
            (b"{\"name\":\"x\",\"attrs\":{\"n\":9223372036854775808}}", "attrs.n: integer out of range (must fit in 64 signed bits)"),
            (b"{\"name\":\"x\",\"attrs\":{\"n\":1e400}}", "invalid JSON at column 30: number out of range"),
            (b"{\"name\":\"x\",\"attrs\":{\"n\":NaN}}", "invalid JSON at column 26: expected value"),
            (b"{\"name\":\"x\",\"attrs\":{\"n\":Infinity}}", "invalid JSON at column 26: expected value"),
            (b"{\"name\":\"x\",\"attrs\":{\"s\":\"a\\u0000b\"}}", "attrs.s: text must not contain NUL"),
            (too_long_key.as_bytes(), "attrs: key `kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk...`: longer than 64 characters"),
            (too_long_text.as_bytes(), "attrs.s: text of 1026 bytes, longer than 1024"),
        ];
        for (line, want) in cases {
            assert_eq!(err(line), want, "{:?}", String::from_utf8_lossy(line));
        }
    }

    #[test]
    fn hostile_bytes_are_refused_without_panic() {
        // A raw NUL, control characters, invalid UTF-8 (inside and outside strings), a lone
        // surrogate, a BOM.
        let cases: &[(&[u8], &str)] = &[
            (
                b"{\"name\":\"a\0b\"}",
                "control character (\\u0000-\\u001F) found while parsing a string",
            ),
            (b"\0", "invalid JSON at column 1: expected value"),
            (b"{\"name\":\"\xff\xfe\"}", "invalid unicode code point"),
            (
                b"{\"name\":\"x\",\"attrs\":{\"k\":\"\xc3\x28\"}}",
                "invalid unicode code point",
            ),
            (
                b"\xff{\"name\":\"x\"}",
                "invalid JSON at column 1: expected value",
            ),
            (b"{\"name\":\"\\ud800\"}", "hex escape"),
            (b"{\"name\":\"\\udc00\\u0041\"}", "lone leading surrogate"),
            (
                b"\xef\xbb\xbf{\"name\":\"x\"}",
                "invalid JSON at column 1: expected value",
            ),
        ];
        for (line, want) in cases {
            let e = err(line);
            assert!(e.contains(want), "{:?}: {e}", String::from_utf8_lossy(line));
            assert!(!e.contains('\n'), "{e:?} is not one line");
        }
    }

    #[test]
    fn deep_nesting_and_size_are_bounded() {
        // Nesting beyond serde_json's recursion limit is an error, not a stack overflow.
        let deep = format!(
            "{{\"name\":\"x\",\"attrs\":{{\"k\":{}{}}}}}",
            "[".repeat(2000),
            "]".repeat(2000)
        );
        let limits = Limits {
            max_message_bytes: 65536,
            max_attributes: 3,
        };
        let e = parse_event_line(deep.as_bytes(), &limits)
            .unwrap_err()
            .to_string();
        assert!(e.contains("recursion limit exceeded"), "{e}");
        // Shallow nesting parses and is refused by type.
        let nested = r#"{"name":"x","attrs":{"k":[[[{"a":[]}]]]}}"#;
        assert_eq!(
            err(nested.as_bytes()),
            "attrs.k: expected a number, string or bool, found an array"
        );
        // The line limit is checked before anything is parsed.
        let big = format!(r#"{{"name":"x","attrs":{{"k":"{}"}}}}"#, "a".repeat(5000));
        assert_eq!(err(big.as_bytes()), "message larger than 4096 bytes");
        // A hostile unknown key is quoted escaped and cut short.
        let key = format!("\\u001b[2J{}", "z".repeat(200));
        let e = err(format!(r#"{{"name":"x","{key}":1}}"#).as_bytes());
        assert!(e.starts_with("unknown key `\\u{1b}[2Jzzz"), "{e}");
        assert!(
            e.ends_with("...` (only `name` and `attrs` are accepted)"),
            "{e}"
        );
        assert!(e.len() < 200, "{e}");
        // Huge numbers.
        let e = err(format!(r#"{{"name":"x","attrs":{{"n":1{}}}}}"#, "0".repeat(400)).as_bytes());
        assert!(e.contains("number out of range"), "{e}");
        let e = err(br#"{"name":"x","attrs":{"n":-1e99999}}"#);
        assert!(e.contains("number out of range"), "{e}");
    }

    #[test]
    fn zero_attributes_allowed_means_none() {
        let limits = Limits {
            max_message_bytes: 4096,
            max_attributes: 0,
        };
        assert!(parse_event_line(br#"{"name":"x","attrs":{}}"#, &limits).is_ok());
        assert_eq!(
            parse_event_line(br#"{"name":"x","attrs":{"a":1}}"#, &limits)
                .unwrap_err()
                .to_string(),
            "attrs: 1 attributes, more than the limit of 0"
        );
    }
}
