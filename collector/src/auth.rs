//! Bearer tokens: the `[auth] tokens_file` format and the check of an `Authorization`
//! header.
//!
//! The file holds one `label token` per line; `#` starts a comment line, blank lines are
//! ignored. A label that is a device pseudonym binds the token to that device: it may
//! send batches and erasures for that device only (403 otherwise). Any other label (a
//! fleet or site name) may send for any device. Tokens are kept only as SHA-256 digests
//! and compared in constant time, every entry every time, so neither the comparison nor
//! the position of a match shows in the response time.

use assent_confcheck::{Diagnostic, Diagnostics};
use assent_wire::Pseudonym;
use ring::digest::{digest, SHA256};
use std::path::Path;

/// The shortest token accepted: 128 bits of hex or base64 entropy.
pub const MIN_TOKEN_CHARS: usize = 22;

/// Who a request is from, once authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// A token bound to one device.
    Device(Pseudonym),
    /// A token or client certificate that may send for any device.
    Fleet(String),
}

impl Principal {
    /// Whether this principal may send for `device`.
    pub fn may_act_for(&self, device: &Pseudonym) -> bool {
        match self {
            Principal::Device(d) => d == device,
            Principal::Fleet(_) => true,
        }
    }
}

#[derive(Debug, Clone)]
struct Entry {
    label: String,
    digest: [u8; 32],
}

/// The tokens of a tokens file.
#[derive(Debug, Clone, Default)]
pub struct Tokens {
    entries: Vec<Entry>,
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest(&SHA256, bytes).as_ref());
    out
}

/// Compares two digests without a data-dependent early exit.
fn same(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

impl Tokens {
    /// Reads a tokens file; every bad line is a diagnostic.
    pub fn load(path: &Path) -> Result<Tokens, Diagnostics> {
        let text = assent_confcheck::read_text(path, assent_confcheck::DEFAULT_MAX_BYTES)?;
        Tokens::parse(path, &text)
    }

    /// Parses the text of a tokens file; `path` names it in diagnostics.
    pub fn parse(path: &Path, text: &str) -> Result<Tokens, Diagnostics> {
        let mut entries = Vec::new();
        let mut problems = Vec::new();
        let mut offset = 0;
        for line in text.split_inclusive('\n') {
            let start = offset;
            offset += line.len();
            let content = line.trim();
            if content.is_empty() || content.starts_with('#') {
                continue;
            }
            let at = start + (line.len() - line.trim_start().len());
            let fields: Vec<&str> = content.split_whitespace().collect();
            let [label, token] = fields[..] else {
                problems.push(Diagnostic::at_offset(
                    path,
                    text,
                    at,
                    format!("expected `label token`, found {} fields", fields.len()),
                ));
                continue;
            };
            if token.chars().count() < MIN_TOKEN_CHARS {
                problems.push(Diagnostic::at_offset(
                    path,
                    text,
                    at,
                    format!("token of `{label}` is shorter than {MIN_TOKEN_CHARS} characters"),
                ));
                continue;
            }
            let digest = sha256(token.as_bytes());
            if entries.iter().any(|e: &Entry| same(&e.digest, &digest)) {
                problems.push(Diagnostic::at_offset(
                    path,
                    text,
                    at,
                    format!("token of `{label}` is used by another label too"),
                ));
                continue;
            }
            entries.push(Entry {
                label: label.to_string(),
                digest,
            });
        }
        if entries.is_empty() && problems.is_empty() {
            problems.push(Diagnostic::whole_file(path, "no tokens in the file"));
        }
        if problems.is_empty() {
            Ok(Tokens { entries })
        } else {
            Err(Diagnostics(problems))
        }
    }

    /// The principal an `Authorization` header value names, if its token is known.
    pub fn check(&self, authorization: Option<&[u8]>) -> Option<Principal> {
        let value = authorization?;
        let token = value
            .strip_prefix(b"Bearer ")
            .or_else(|| value.strip_prefix(b"bearer "))?;
        let digest = sha256(token.trim_ascii());
        let mut found: Option<&Entry> = None;
        for entry in &self.entries {
            if same(&entry.digest, &digest) {
                found = Some(entry);
            }
        }
        let entry = found?;
        Some(match Pseudonym::parse(&entry.label) {
            Ok(p) => Principal::Device(p),
            Err(_) => Principal::Fleet(entry.label.clone()),
        })
    }

    /// How many tokens are known.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no token is known.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEVICE: &str = "abcdefghijklmnopqrstuvwxyz";

    fn tokens() -> Tokens {
        Tokens::parse(
            Path::new("t"),
            &format!(
                "# comment\n\nsite-a  0123456789abcdef0123456789abcdef\n\
                 {DEVICE} fedcba9876543210fedcba9876543210\n"
            ),
        )
        .unwrap()
    }

    #[test]
    fn checks_bearer_tokens() {
        let t = tokens();
        assert_eq!(t.len(), 2);
        let cases: &[(Option<&[u8]>, Option<&str>)] = &[
            (
                Some(b"Bearer 0123456789abcdef0123456789abcdef"),
                Some("site-a"),
            ),
            (
                Some(b"Bearer fedcba9876543210fedcba9876543210"),
                Some(DEVICE),
            ),
            (Some(b"Bearer 0123456789abcdef0123456789abcdee"), None),
            (Some(b"Basic 0123456789abcdef0123456789abcdef"), None),
            (Some(b"Bearer "), None),
            (Some(b"\xff\x00"), None),
            (None, None),
        ];
        for (header, want) in cases {
            let got = t.check(*header).map(|p| match p {
                Principal::Device(d) => d.to_string(),
                Principal::Fleet(l) => l,
            });
            assert_eq!(got.as_deref(), *want, "{header:?}");
        }
        let device = Pseudonym::parse(DEVICE).unwrap();
        let other = Pseudonym::parse("bbcdefghijklmnopqrstuvwxyz").unwrap();
        let p = t
            .check(Some(b"Bearer fedcba9876543210fedcba9876543210"))
            .unwrap();
        assert!(p.may_act_for(&device));
        assert!(!p.may_act_for(&other));
    }

    #[test]
    fn bad_lines_are_all_reported_with_positions() {
        let err = Tokens::parse(
            Path::new("t"),
            "a\n  b short\nc 0123456789abcdef0123456789abcdef\nd 0123456789abcdef0123456789abcdef\n",
        )
        .unwrap_err()
        .to_string();
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 3, "{err}");
        assert!(
            lines[0].starts_with("t:1:1: expected `label token`"),
            "{err}"
        );
        assert!(
            lines[1].starts_with("t:2:3: token of `b` is shorter"),
            "{err}"
        );
        assert!(
            lines[2].starts_with("t:4:1: token of `d` is used by another"),
            "{err}"
        );
        let empty = Tokens::parse(Path::new("t"), "# nothing\n").unwrap_err();
        assert!(empty.to_string().contains("no tokens"));
    }
}
