//! The common event line read without serde_json: one object with a `name` and an
//! optional `attrs` object whose values are strings, booleans or integers, with no escape
//! in any string and no float. This is what almost every program sends, and reading it
//! byte by byte costs a fraction of the general parser ([`super::parse`]), which is the
//! events socket's largest cost per line.
//!
//! Anything else, including every line the general parser would refuse, is `None`: the
//! caller then uses the general parser, so every error message comes from one place. An
//! event this module returns is exactly what the general parser returns for the line
//! (tested on generated lines here, and by the `events_line` fuzz target).

use super::parse::{check_key, check_name, Limits, MAX_TEXT_BYTES};
use assent_wire::{AppEvent, AttrValue};
use std::collections::BTreeMap;

/// The most digits of an integer read here: every such integer fits in 64 signed bits.
const MAX_DIGITS: usize = 18;

/// `line` (without its newline) as an event, if it is plain and valid; see the module.
pub fn parse_plain(line: &[u8], limits: &Limits) -> Option<AppEvent> {
    let mut r = Reader { bytes: line, at: 0 };
    r.whitespace();
    r.expect(b'{')?;
    r.whitespace();
    let (mut name, mut attrs) = (None, None);
    if !r.eat(b'}') {
        loop {
            let key = r.string()?;
            r.whitespace();
            r.expect(b':')?;
            r.whitespace();
            match key {
                "name" if name.is_none() => name = Some(check_name(r.string()?).ok()?),
                "attrs" if attrs.is_none() => attrs = Some(r.attrs(limits.max_attributes)?),
                _ => return None,
            }
            r.whitespace();
            if r.eat(b',') {
                r.whitespace();
                continue;
            }
            r.expect(b'}')?;
            break;
        }
    }
    r.whitespace();
    if r.at != line.len() {
        return None;
    }
    Some(AppEvent {
        name: name?,
        attrs: attrs.unwrap_or_default(),
    })
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn eat(&mut self, byte: u8) -> bool {
        let found = self.peek() == Some(byte);
        self.at += usize::from(found);
        found
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        self.eat(byte).then_some(())
    }

    /// JSON's whitespace: space, tab, line feed, carriage return.
    fn whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    /// A string without escapes or control characters, as UTF-8.
    fn string(&mut self) -> Option<&'a str> {
        self.expect(b'"')?;
        let rest = self.bytes.get(self.at..)?;
        let end = memchr::memchr2(b'"', b'\\', rest)?;
        let inside = rest.get(..end)?;
        // Without an early exit, so that it compiles to a vector loop.
        if rest.get(end) != Some(&b'"') || inside.iter().fold(false, |c, &b| c | (b < 0x20)) {
            return None;
        }
        let text = std::str::from_utf8(inside).ok()?;
        self.at += end + 1;
        Some(text)
    }

    /// `-?(0|[1-9][0-9]*)` of at most [`MAX_DIGITS`] digits, not `-0` (which JSON reads
    /// as a float). What follows is checked by the caller, which wants `,` or `}`.
    fn integer(&mut self) -> Option<i64> {
        let negative = self.eat(b'-');
        let start = self.at;
        let mut value: i64 = 0;
        while let Some(digit @ b'0'..=b'9') = self.peek() {
            if self.at - start == MAX_DIGITS || (self.at > start && value == 0) {
                return None;
            }
            value = value * 10 + i64::from(digit - b'0');
            self.at += 1;
        }
        if self.at == start || (negative && value == 0) {
            return None;
        }
        Some(if negative { -value } else { value })
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        let end = self.at + word.len();
        (self.bytes.get(self.at..end)? == word).then(|| self.at = end)
    }

    /// The `attrs` object: at most `max_attributes` distinct valid keys with plain values.
    fn attrs(&mut self, max_attributes: usize) -> Option<BTreeMap<String, AttrValue>> {
        self.expect(b'{')?;
        self.whitespace();
        let mut attrs = BTreeMap::new();
        if self.eat(b'}') {
            return Some(attrs);
        }
        loop {
            let key = self.string()?;
            check_key(key).ok()?;
            self.whitespace();
            self.expect(b':')?;
            self.whitespace();
            let value = match self.peek()? {
                b'"' => {
                    let text = self.string()?;
                    if text.len() > MAX_TEXT_BYTES {
                        return None;
                    }
                    AttrValue::Text(text.to_string())
                }
                b't' => self.literal(b"true").map(|()| AttrValue::Bool(true))?,
                b'f' => self.literal(b"false").map(|()| AttrValue::Bool(false))?,
                _ => AttrValue::Int(self.integer()?),
            };
            if attrs.insert(key.to_string(), value).is_some() || attrs.len() > max_attributes {
                return None;
            }
            self.whitespace();
            if self.eat(b',') {
                self.whitespace();
                continue;
            }
            self.expect(b'}')?;
            return Some(attrs);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::parse::parse_general;
    use super::*;

    const LIMITS: Limits = Limits {
        max_message_bytes: 4096,
        max_attributes: 4,
    };

    #[test]
    fn plain_lines_are_read_here() {
        let line = br#" {"name":"door.open", "attrs": {"zone": 3, "ok": true, "off": false, "who": "h\u{e9}", "n": -12}}"#;
        let line = std::str::from_utf8(line)
            .unwrap()
            .replace("\\u{e9}", "\u{e9}");
        let limits = Limits {
            max_attributes: 5,
            ..LIMITS
        };
        let event = parse_plain(line.as_bytes(), &limits).unwrap();
        assert_eq!(event.name, "door.open");
        assert_eq!(
            event.attrs,
            BTreeMap::from([
                ("zone".to_string(), AttrValue::Int(3)),
                ("ok".to_string(), AttrValue::Bool(true)),
                ("off".to_string(), AttrValue::Bool(false)),
                ("who".to_string(), AttrValue::Text("h\u{e9}".to_string())),
                ("n".to_string(), AttrValue::Int(-12)),
            ])
        );
        let event = parse_plain(b"{\"attrs\":{},\"name\":\"boot\"}\r", &LIMITS).unwrap();
        assert_eq!((event.name.as_str(), event.attrs.len()), ("boot", 0));
        let max = format!(
            r#"{{"name":"x","attrs":{{"i":{},"j":-{}}}}}"#,
            "9".repeat(18),
            "9".repeat(18)
        );
        let event = parse_plain(max.as_bytes(), &LIMITS).unwrap();
        assert_eq!(event.attrs["i"], AttrValue::Int(999_999_999_999_999_999));
        assert_eq!(event.attrs["j"], AttrValue::Int(-999_999_999_999_999_999));
    }

    #[test]
    fn everything_else_is_left_to_the_general_parser() {
        for line in [
            r#"{"name":"x","attrs":{"f":1.5}}"#,
            r#"{"name":"x","attrs":{"f":1e3}}"#,
            r#"{"name":"x","attrs":{"z":-0}}"#,
            r#"{"name":"x","attrs":{"z":01}}"#,
            r#"{"name":"x","attrs":{"big":9999999999999999999}}"#,
            r#"{"name":"x","attrs":{"s":"a\"b"}}"#,
            r#"{"name":"x\u0041"}"#,
            r#"{"name":"x","attrs":{"n":null}}"#,
            r#"{"name":"x","attrs":{"a":[1]}}"#,
            r#"{"name":"x","attrs":{"a":{}}}"#,
            r#"{"name":"x","attrs":{"a":1,"a":2}}"#,
            r#"{"name":"x","attrs":{"a":1,"b":2,"c":3,"d":4,"e":5}}"#,
            r#"{"name":"x","name":"y"}"#,
            r#"{"name":"x","other":1}"#,
            r#"{"name":"bad name"}"#,
            r#"{"name":"x","attrs":{"bad:key":1}}"#,
            r#"{"name":"x",}"#,
            r#"{"name":"x"} x"#,
            r#"{"name":"x""#,
            r#"{"attrs":{}}"#,
            r#"{}"#,
            r#"["name"]"#,
            r#"{"name":"x","attrs":{"t":tru}}"#,
            r#"{"name":"x","attrs":{"t":truex}}"#,
        ] {
            assert_eq!(parse_plain(line.as_bytes(), &LIMITS), None, "{line}");
        }
        let long = format!(
            r#"{{"name":"x","attrs":{{"s":"{}"}}}}"#,
            "t".repeat(MAX_TEXT_BYTES + 1)
        );
        assert_eq!(parse_plain(long.as_bytes(), &LIMITS), None);
        assert_eq!(parse_plain(b"{\"name\":\"x\xff\"}", &LIMITS), None);
        assert_eq!(parse_plain(b"{\"name\":\"a\tb\"}", &LIMITS), None);
    }

    /// Event-shaped lines built by a fixed pseudo-random sequence from plain and
    /// not-quite-plain pieces, some then cut or spliced: whatever is read here is what the
    /// general parser reads.
    #[test]
    fn agrees_with_the_general_parser_on_generated_lines() {
        const SPACES: &[&str] = &["", "", "", " ", "\t", "\r", "\n", "  "];
        const NAMES: &[&str] = &[
            "\"door.open\"",
            "\"a:b-c_d.e\"",
            "\"\"",
            "\"a b\"",
            "\"\u{e9}\"",
            "\"x\\\"\"",
            "7",
            "null",
            "{}",
        ];
        const KEYS: &[&str] = &[
            "\"k\"",
            "\"k2\"",
            "\"zone\"",
            "\"k:\"",
            "\"\"",
            "\"k\\u0032\"",
            "k",
        ];
        const VALUES: &[&str] = &[
            "0",
            "-0",
            "7",
            "-7",
            "12",
            "007",
            "1.5",
            "1e2",
            "-1E-2",
            "999999999999999999",
            "-999999999999999999",
            "9999999999999999999",
            "9223372036854775807",
            "-9223372036854775808",
            "-",
            "true",
            "false",
            "tru",
            "truex",
            "null",
            "[]",
            "{}",
            "\"v\"",
            "\"\"",
            "\"h\u{e9}\"",
            "\"a\\nb\"",
            "\"\\u0000\"",
            "\"\t\"",
        ];
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let (mut plain, mut lines) = (0, 0);
        for _ in 0..100_000 {
            let mut members = Vec::new();
            if rng.below(8) != 0 {
                members.push(format!(
                    "\"name\"{}:{}{}",
                    rng.pick(SPACES),
                    rng.pick(SPACES),
                    rng.pick(NAMES)
                ));
            }
            if rng.below(4) != 0 {
                let attrs: Vec<String> = (0..rng.below(7))
                    .map(|_| {
                        format!(
                            "{}{}:{}{}",
                            rng.pick(KEYS),
                            rng.pick(SPACES),
                            rng.pick(SPACES),
                            rng.pick(VALUES)
                        )
                    })
                    .collect();
                members.push(format!(
                    "\"attrs\":{{{}{}}}",
                    rng.pick(SPACES),
                    attrs.join(",")
                ));
            }
            if rng.below(10) == 0 {
                members.push("\"name\":\"again\"".to_string());
            }
            if rng.below(2) == 0 {
                members.reverse();
            }
            let mut line = format!(
                "{}{{{}}}{}",
                rng.pick(SPACES),
                members.join(","),
                rng.pick(SPACES)
            )
            .into_bytes();
            // Cut or spliced anywhere, even inside a character.
            match rng.below(10) {
                0 => line.truncate(rng.below(line.len() + 1)),
                1 => {
                    let at = rng.below(line.len() + 1);
                    let piece = rng.pick(VALUES).as_bytes();
                    line.splice(at..at, piece.iter().copied());
                }
                _ => {}
            }
            lines += 1;
            if let Some(event) = parse_plain(&line, &LIMITS) {
                plain += 1;
                let shown = String::from_utf8_lossy(&line);
                assert_eq!(parse_general(&line, &LIMITS), Ok(event), "{shown}");
            }
        }
        // The pieces must reach the plain path often enough for this to mean something.
        assert!(plain > 2_000, "only {plain} of {lines} lines were plain");
    }

    /// xorshift64: the same sequence on every run.
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % n as u64) as usize
        }

        fn pick(&mut self, from: &[&'static str]) -> &'static str {
            from[self.below(from.len())]
        }
    }
}
