//! The consent file format: one `[categories.<name>]` table per decided category.

use assent_confcheck::{Diagnostics, Document};
use assent_platform::Category;
use std::collections::BTreeMap;
use std::path::Path;

/// The owner's decision for one category.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentRecord {
    pub granted: bool,
    /// The policy version the decision was made under.
    pub policy_version: u32,
    /// When, as RFC 3339 (`2026-11-22T10:00:00Z`).
    pub at: String,
    /// Who: free text such as "owner", "guardian", "technician:ops-17".
    pub by: String,
}

/// The parsed consent file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsentFile {
    pub records: BTreeMap<Category, ConsentRecord>,
}

/// The largest free-text `by` value accepted.
const MAX_BY_LEN: usize = 256;

impl ConsentFile {
    /// Parses the consent file strictly: an unknown key, a missing `granted` or
    /// `policy_version`, or a malformed time makes the whole file invalid, because a
    /// file that does not say clearly what the owner decided must not grant anything.
    pub fn parse(path: &Path, text: &str) -> Result<ConsentFile, Diagnostics> {
        let doc = Document::parse(path, text)?;
        let mut records = BTreeMap::new();
        {
            let mut root = doc.root();
            if let Some(categories) = root.table("categories") {
                let mut categories = categories.with_noun("category");
                // Asking for every category (present or not) lets an unknown name be
                // reported with the nearest valid one when the table is dropped.
                for category in Category::ALL {
                    let Some(mut table) = categories.table(category.name()) else {
                        continue;
                    };
                    let granted = table.bool("granted");
                    let policy_version = table
                        .u64("policy_version", 1..=u64::from(u32::MAX))
                        .and_then(|v| u32::try_from(v).ok());
                    let at = table.string_with("at", check_rfc3339);
                    let by = table.string_with("by", check_by);
                    if !table.contains("granted") {
                        table.missing("granted");
                    }
                    if !table.contains("policy_version") {
                        table.missing("policy_version");
                    }
                    if let (Some(granted), Some(policy_version)) = (granted, policy_version) {
                        records.insert(
                            category,
                            ConsentRecord {
                                granted,
                                policy_version,
                                at: at.unwrap_or_default(),
                                by: by.unwrap_or_default(),
                            },
                        );
                    }
                }
            }
        }
        doc.finish()?;
        Ok(ConsentFile { records })
    }

    /// The file as TOML, readable and editable by hand.
    pub fn render(&self) -> String {
        let mut out = String::from(
            "# Assent consent file: the device owner's decisions, one table per category.\n\
             # Edit by hand or with `assent consent grant|revoke`; a change takes effect\n\
             # within a second. `policy_version` must match the operator's current policy.\n",
        );
        for (category, record) in &self.records {
            out.push_str(&format!(
                "\n[categories.{}]\ngranted = {}\npolicy_version = {}\n",
                category.name(),
                record.granted,
                record.policy_version
            ));
            if !record.at.is_empty() {
                out.push_str(&format!("at = {}\n", toml_string(&record.at)));
            }
            if !record.by.is_empty() {
                out.push_str(&format!("by = {}\n", toml_string(&record.by)));
            }
        }
        out
    }
}

/// Why an `at` or `by` value is refused (confcheck reports it with the key's position).
#[derive(Debug)]
enum FieldError {
    NotRfc3339(String),
    TooLong,
    ControlCharacters,
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FieldError::NotRfc3339(s) => write!(
                f,
                "expected an RFC 3339 time such as \"2026-11-22T10:00:00Z\", found {s:?}"
            ),
            FieldError::TooLong => write!(f, "longer than {MAX_BY_LEN} bytes"),
            FieldError::ControlCharacters => f.write_str("contains control characters"),
        }
    }
}

fn check_rfc3339(s: &str) -> Result<String, FieldError> {
    humantime::parse_rfc3339_weak(s)
        .map(|_| s.to_string())
        .map_err(|_| FieldError::NotRfc3339(s.to_string()))
}

fn check_by(s: &str) -> Result<String, FieldError> {
    if s.len() > MAX_BY_LEN {
        return Err(FieldError::TooLong);
    }
    if s.chars().any(char::is_control) {
        return Err(FieldError::ControlCharacters);
    }
    Ok(s.to_string())
}

/// A TOML basic string with the characters that need it escaped.
fn toml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ConsentFile, Diagnostics> {
        ConsentFile::parse(Path::new("/var/lib/assent/consent.toml"), text)
    }

    #[test]
    fn parses_the_documented_format() {
        let file = parse(
            "[categories.hardware]\ngranted = true\npolicy_version = 1\n\
             at = \"2026-11-22T10:00:00Z\"\nby = \"owner\"\n\n\
             [categories.location]\ngranted = false\npolicy_version = 1\n",
        )
        .unwrap();
        let hw = &file.records[&Category::Hardware];
        assert!(hw.granted);
        assert_eq!(hw.by, "owner");
        assert!(!file.records[&Category::Location].granted);
    }

    #[test]
    fn render_round_trips_even_with_hostile_by_values() {
        let mut file = ConsentFile::default();
        file.records.insert(
            Category::Os,
            ConsentRecord {
                granted: true,
                policy_version: 3,
                at: "2026-11-22T10:00:00Z".into(),
                by: "tech \"ops\" \\ 17".into(),
            },
        );
        assert_eq!(parse(&file.render()).unwrap(), file);
    }

    #[test]
    fn every_problem_is_reported_with_its_line() {
        let err = parse(
            "[categories.hardwar]\ngranted = true\npolicy_version = 1\n\
             [categories.os]\ngranted = \"yes\"\npolicy_version = 1\ngrnted = true\n\
             [categories.network]\npolicy_version = 0\nat = \"yesterday\"\n",
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("consent.toml:1:"), "{text}");
        assert!(text.contains("`hardwar`"), "{text}");
        assert!(text.contains("hardware"), "suggestion: {text}");
        assert!(text.contains(":5:"), "granted type error on line 5: {text}");
        assert!(text.contains("grnted"), "{text}");
        assert!(
            text.contains("missing key `categories.network.granted`"),
            "{text}"
        );
        assert!(text.contains("RFC 3339"), "{text}");
        assert!(err.len() >= 6, "{text}");
    }

    #[test]
    fn syntax_errors_make_the_file_invalid() {
        assert!(parse("[categories.hardware\ngranted = true").is_err());
        assert!(parse("").unwrap().records.is_empty());
    }
}
