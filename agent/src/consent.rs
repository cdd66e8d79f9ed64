//! The owner's consent: the consent file, the rules that turn it into the set of active
//! categories, atomic edits, the consent log, and a watcher that sees every change.
//!
//! Rules (each tested below):
//! - no file, an unreadable file or an invalid file: nothing is active (fail closed);
//! - a category is active only if granted under the config's current `policy_version`;
//! - if any required category is not active, nothing is active;
//! - optional categories are independent of each other;
//! - a hand edit counts the same as a CLI edit (the file is the only source of truth).

use crate::config::Config;
use crate::fsutil;
use assent_confcheck::{Diagnostic, Diagnostics};
use assent_platform::Category;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

mod file;
pub mod log;
pub mod watch;

pub use file::{ConsentFile, ConsentRecord};

/// What reading the consent file gave.
#[derive(Debug, Clone, PartialEq)]
pub enum ConsentSource {
    Loaded(ConsentFile),
    Missing(PathBuf),
    Unreadable(PathBuf, String),
    Invalid(Diagnostics),
}

impl ConsentSource {
    /// Reads and parses the consent file at `path`.
    pub fn read(path: &Path) -> ConsentSource {
        match std::fs::read(path) {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(text) => match ConsentFile::parse(path, &text) {
                    Ok(file) => ConsentSource::Loaded(file),
                    Err(d) => ConsentSource::Invalid(d),
                },
                Err(_) => ConsentSource::Invalid(Diagnostics(vec![Diagnostic {
                    file: path.to_path_buf(),
                    line: 1,
                    column: 1,
                    message: "not valid UTF-8".to_string(),
                }])),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                ConsentSource::Missing(path.to_path_buf())
            }
            Err(e) => ConsentSource::Unreadable(path.to_path_buf(), e.to_string()),
        }
    }

    /// Why nothing is active, when the file itself is the reason.
    pub fn problem(&self) -> Option<String> {
        match self {
            ConsentSource::Loaded(_) => None,
            ConsentSource::Missing(p) => Some(format!(
                "{}: no consent file: nothing is collected, stored or sent",
                p.display()
            )),
            ConsentSource::Unreadable(p, e) => Some(format!(
                "{}: consent file unreadable ({e}): nothing is collected, stored or sent",
                p.display()
            )),
            ConsentSource::Invalid(d) => Some(format!(
                "consent file invalid: nothing is collected, stored or sent\n{d}"
            )),
        }
    }
}

/// The state of one category after the rules are applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum CategoryState {
    Active,
    /// No decision recorded for it.
    NotGranted,
    /// The owner refused or withdrew it.
    Refused,
    /// Granted under an older policy version; a new grant is needed.
    Lapsed { granted_under: u32, current: u32 },
    /// Granted, but a required category is not active, so nothing is.
    BlockedByRequired { missing: Vec<Category> },
    /// The consent file is missing, unreadable or invalid.
    NoValidConsentFile,
}

impl CategoryState {
    /// A short reason for a person.
    pub fn reason(&self) -> String {
        match self {
            CategoryState::Active => "active".to_string(),
            CategoryState::NotGranted => "not granted".to_string(),
            CategoryState::Refused => "refused by the owner".to_string(),
            CategoryState::Lapsed {
                granted_under,
                current,
            } => format!("granted under policy {granted_under}; policy {current} needs a new grant"),
            CategoryState::BlockedByRequired { missing } => {
                let names: Vec<&str> = missing.iter().map(|c| c.name()).collect();
                format!("required categories not granted: {}", names.join(", "))
            }
            CategoryState::NoValidConsentFile => "no valid consent file".to_string(),
        }
    }
}

/// One category as the owner sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CategoryStatus {
    pub category: Category,
    pub required: bool,
    pub purpose: String,
    #[serde(flatten)]
    pub state: CategoryState,
    pub by: Option<String>,
    pub at: Option<String>,
}

/// The consent decisions after the rules: which categories are active and why not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConsentView {
    pub policy_version: u32,
    pub problem: Option<String>,
    pub categories: Vec<CategoryStatus>,
}

impl ConsentView {
    pub fn is_active(&self, category: Category) -> bool {
        self.categories
            .iter()
            .any(|s| s.category == category && s.state == CategoryState::Active)
    }

    pub fn active(&self) -> BTreeSet<Category> {
        self.categories
            .iter()
            .filter(|s| s.state == CategoryState::Active)
            .map(|s| s.category)
            .collect()
    }

    pub fn status(&self, category: Category) -> Option<&CategoryStatus> {
        self.categories.iter().find(|s| s.category == category)
    }
}

/// Applies the consent rules to what the file says.
pub fn evaluate(config: &Config, source: &ConsentSource) -> ConsentView {
    let current = config.policy_version;
    let records = match source {
        ConsentSource::Loaded(file) => Some(&file.records),
        _ => None,
    };
    let own_state = |category: Category| -> CategoryState {
        let Some(records) = records else {
            return CategoryState::NoValidConsentFile;
        };
        match records.get(&category) {
            None => CategoryState::NotGranted,
            Some(r) if !r.granted => CategoryState::Refused,
            Some(r) if r.policy_version != current => CategoryState::Lapsed {
                granted_under: r.policy_version,
                current,
            },
            Some(_) => CategoryState::Active,
        }
    };
    let mut states: BTreeMap<Category, CategoryState> = Category::ALL
        .into_iter()
        .map(|c| (c, own_state(c)))
        .collect();
    let missing_required: Vec<Category> = Category::ALL
        .into_iter()
        .filter(|c| config.categories.get(c).is_some_and(|p| p.required))
        .filter(|c| states.get(c) != Some(&CategoryState::Active))
        .collect();
    if !missing_required.is_empty() {
        for state in states.values_mut() {
            if *state == CategoryState::Active {
                *state = CategoryState::BlockedByRequired {
                    missing: missing_required.clone(),
                };
            }
        }
    }
    let categories = Category::ALL
        .into_iter()
        .map(|category| {
            let policy = config.categories.get(&category);
            let record = records.and_then(|r| r.get(&category));
            CategoryStatus {
                category,
                required: policy.is_some_and(|p| p.required),
                purpose: policy.map(|p| p.purpose.clone()).unwrap_or_default(),
                state: states
                    .remove(&category)
                    .unwrap_or(CategoryState::NoValidConsentFile),
                by: record.map(|r| r.by.clone()),
                at: record.map(|r| r.at.clone()),
            }
        })
        .collect();
    ConsentView {
        policy_version: current,
        problem: source.problem(),
        categories,
    }
}

/// Reads the consent file named by the config and applies the rules.
pub fn load(config: &Config) -> (ConsentSource, ConsentView) {
    let source = ConsentSource::read(&config.consent_file);
    let view = evaluate(config, &source);
    (source, view)
}

/// What an edit does to a category.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Grant,
    Revoke,
}

/// Records decisions in the consent file atomically. An invalid file is not silently
/// overwritten: the owner must fix or remove it first (its content may be their intent).
pub fn edit(
    config: &Config,
    categories: &[Category],
    decision: Decision,
    by: &str,
    now: SystemTime,
) -> Result<ConsentFile, String> {
    let mut file = match ConsentSource::read(&config.consent_file) {
        ConsentSource::Loaded(f) => f,
        ConsentSource::Missing(_) => ConsentFile::default(),
        ConsentSource::Unreadable(p, e) => return Err(format!("{}: {e}", p.display())),
        ConsentSource::Invalid(d) => {
            return Err(format!(
                "the consent file is invalid; fix it by hand or remove it first\n{d}"
            ))
        }
    };
    let at = humantime::format_rfc3339_seconds(now).to_string();
    for category in categories {
        file.records.insert(
            *category,
            ConsentRecord {
                granted: decision == Decision::Grant,
                policy_version: config.policy_version,
                at: at.clone(),
                by: by.to_string(),
            },
        );
    }
    if let Some(dir) = config.consent_file.parent() {
        fsutil::ensure_private_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    fsutil::write_atomic(&config.consent_file, file.render().as_bytes(), 0o600)
        .map_err(|e| format!("{}: {e}", config.consent_file.display()))?;
    Ok(file)
}
