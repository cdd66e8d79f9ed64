//! A collected value together with what happened when it was read.

use crate::read::ReadError;
use serde::{Deserialize, Serialize};

/// One collected value. A reader never fails a whole category: each field says on its
/// own whether its source was there, readable and well formed.
///
/// In JSON: `{"present": value}`, `"absent"`, `"denied"`, `{"malformed": "reason"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Field<T> {
    /// Read and parsed.
    Present(T),
    /// The source does not exist on this device.
    Absent,
    /// The source exists but this process may not read it (EACCES, EPERM).
    Denied,
    /// The source exists but could not be used; the reason says why.
    Malformed(String),
}

impl<T> Field<T> {
    /// Reads `path` under `root` with a size bound and parses it with `parse`.
    pub fn from_file(
        root: &crate::Root,
        path: &str,
        limit: usize,
        parse: impl FnOnce(&[u8]) -> Result<T, String>,
    ) -> Field<T> {
        match root.read(path, limit) {
            Ok(bytes) => Field::from_parse(parse(&bytes)),
            Err(e) => Field::from_read_error(e),
        }
    }

    pub fn from_parse(parsed: Result<T, String>) -> Field<T> {
        match parsed {
            Ok(v) => Field::Present(v),
            Err(reason) => Field::Malformed(reason),
        }
    }

    pub fn from_read_error(error: ReadError) -> Field<T> {
        match error {
            ReadError::NotFound => Field::Absent,
            ReadError::Denied => Field::Denied,
            other => Field::Malformed(other.to_string()),
        }
    }

    pub fn present(&self) -> Option<&T> {
        match self {
            Field::Present(v) => Some(v),
            _ => None,
        }
    }

    pub fn into_present(self) -> Option<T> {
        match self {
            Field::Present(v) => Some(v),
            _ => None,
        }
    }

    pub fn is_present(&self) -> bool {
        matches!(self, Field::Present(_))
    }

    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Field<U> {
        match self {
            Field::Present(v) => Field::Present(f(v)),
            Field::Absent => Field::Absent,
            Field::Denied => Field::Denied,
            Field::Malformed(r) => Field::Malformed(r),
        }
    }

    pub fn and_then<U>(self, f: impl FnOnce(T) -> Field<U>) -> Field<U> {
        match self {
            Field::Present(v) => f(v),
            Field::Absent => Field::Absent,
            Field::Denied => Field::Denied,
            Field::Malformed(r) => Field::Malformed(r),
        }
    }

    /// Keeps `self` if present, otherwise tries `other`; an absent fallback keeps the
    /// more informative first state (a denied primary source stays denied).
    pub fn or_else(self, other: impl FnOnce() -> Field<T>) -> Field<T> {
        match self {
            Field::Present(_) => self,
            first => match other() {
                Field::Absent => first,
                second => second,
            },
        }
    }
}

/// The longest single value a text field keeps; anything longer is malformed.
pub const MAX_TEXT_VALUE: usize = 512;

/// Parses a one-line text attribute (sysfs style): UTF-8, no NUL, no inner newline, at
/// most [`MAX_TEXT_VALUE`] bytes; one trailing newline and surrounding blanks are dropped.
pub fn parse_line(bytes: &[u8]) -> Result<String, String> {
    let trimmed = trim_ascii(bytes);
    if trimmed.contains(&0) {
        return Err("contains a NUL byte".to_string());
    }
    if trimmed.contains(&b'\n') {
        return Err("spans several lines".to_string());
    }
    if trimmed.len() > MAX_TEXT_VALUE {
        return Err(format!("longer than {MAX_TEXT_VALUE} bytes"));
    }
    std::str::from_utf8(trimmed)
        .map(str::to_string)
        .map_err(|_| "not valid UTF-8".to_string())
}

/// Parses a device-tree string property: NUL-terminated, possibly several NUL-separated
/// strings (`compatible`), each validated like [`parse_line`].
pub fn parse_nul_strings(bytes: &[u8]) -> Result<Vec<String>, String> {
    let body = bytes.strip_suffix(&[0]).unwrap_or(bytes);
    if body.is_empty() {
        return Err("empty".to_string());
    }
    body.split(|b| *b == 0).map(parse_line).collect()
}

/// Parses a decimal unsigned integer attribute.
pub fn parse_u64(bytes: &[u8]) -> Result<u64, String> {
    let line = parse_line(bytes)?;
    line.parse::<u64>()
        .map_err(|_| format!("not an unsigned integer: {:?}", truncate_for_reason(&line)))
}

/// Shortens a hostile value before it is quoted in a reason.
pub fn truncate_for_reason(s: &str) -> String {
    const KEEP: usize = 40;
    match s.char_indices().nth(KEEP) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_string(),
    }
}

pub(crate) fn trim_ascii(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |i| i + 1);
    &bytes[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_line_accepts_plain_values_and_rejects_hostile_ones() {
        assert_eq!(parse_line(b"Raspberry Pi 4\n"), Ok("Raspberry Pi 4".into()));
        assert_eq!(parse_line(b"  x  "), Ok("x".into()));
        assert_eq!(parse_line(b""), Ok(String::new()));
        assert!(parse_line(b"a\0b").is_err());
        assert!(parse_line(b"a\nb\n").is_err());
        assert!(parse_line(&[0xff, 0xfe]).is_err());
        assert!(parse_line(&vec![b'a'; MAX_TEXT_VALUE + 1]).is_err());
    }

    #[test]
    fn nul_strings_split_compatible_lists() {
        assert_eq!(
            parse_nul_strings(b"raspberrypi,4-model-b\0brcm,bcm2711\0"),
            Ok(vec!["raspberrypi,4-model-b".into(), "brcm,bcm2711".into()])
        );
        assert!(parse_nul_strings(b"\0").is_err());
    }

    #[test]
    fn parse_u64_reports_the_bad_value() {
        assert_eq!(parse_u64(b"4096\n"), Ok(4096));
        let err = parse_u64(b"-1").unwrap_err();
        assert!(err.contains("-1"), "{err}");
    }

    #[test]
    fn or_else_keeps_the_more_informative_state() {
        let denied: Field<u8> = Field::Denied;
        assert_eq!(denied.clone().or_else(|| Field::Absent), Field::Denied);
        assert_eq!(denied.or_else(|| Field::Present(1)), Field::Present(1));
        assert_eq!(
            Field::Present(2).or_else(|| Field::Present(1)),
            Field::Present(2)
        );
    }

    #[test]
    fn json_shape_says_which_state() {
        let v: Vec<Field<u32>> = vec![
            Field::Present(3),
            Field::Absent,
            Field::Denied,
            Field::Malformed("bad".into()),
        ];
        assert_eq!(
            serde_json::to_string(&v).unwrap(),
            r#"[{"present":3},"absent","denied",{"malformed":"bad"}]"#
        );
    }
}
