//! The consent log: every change of a category's consent state, appended as one JSON
//! line to `consent.log` in the state directory (what, when, by whom).
//!
//! CLI edits, hand edits and the daemon's watcher all call [`record`], which compares the
//! current view with the last recorded snapshot and appends only the differences, under
//! an exclusive lock, so a change is logged once whoever notices it first.

use super::{CategoryState, ConsentView};
use crate::unix::fsutil;
use assent_platform::Category;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::{self, BufRead, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::SystemTime;

pub const CONSENT_LOG: &str = "consent.log";
const SNAPSHOT: &str = "consent.snapshot";
const LOCK: &str = "consent.lock";

/// One line of the consent log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentLogEntry {
    /// When the change was observed.
    pub observed_at: String,
    pub category: Category,
    pub active: bool,
    /// The state name (`active`, `refused`, `lapsed`, ...) and its reason.
    pub state: String,
    pub reason: String,
    /// Who made the decision and when, as the consent file records it.
    pub by: Option<String>,
    pub at: Option<String>,
    pub policy_version: u32,
    /// The state before this change (`None` for the first entry of a category).
    pub previous_state: Option<String>,
}

impl ConsentLogEntry {
    /// Whether this change is the owner withdrawing a category that was active: the
    /// collector must then be asked to erase what it holds of it.
    pub fn is_withdrawal(&self) -> bool {
        self.state == "refused" && self.previous_state.as_deref() == Some("active")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct SnapshotEntry {
    state: String,
    reason: String,
    by: Option<String>,
    at: Option<String>,
}

/// Appends the differences between `view` and the last recorded state; returns them.
pub fn record(
    state_dir: &Path,
    view: &ConsentView,
    now: SystemTime,
) -> io::Result<Vec<ConsentLogEntry>> {
    fsutil::ensure_private_dir(state_dir)?;
    let lock_file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(state_dir.join(LOCK))?;
    let _lock = nix::fcntl::Flock::lock(lock_file, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| io::Error::from(e))?;

    let snapshot_path = state_dir.join(SNAPSHOT);
    let previous: BTreeMap<Category, SnapshotEntry> = std::fs::read(&snapshot_path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let observed_at = humantime::format_rfc3339_seconds(now).to_string();
    let mut current = BTreeMap::new();
    let mut entries = Vec::new();
    for status in &view.categories {
        let entry = SnapshotEntry {
            state: state_name(&status.state).to_string(),
            reason: status.state.reason(),
            by: status.by.clone(),
            at: status.at.clone(),
        };
        if previous.get(&status.category) != Some(&entry) {
            entries.push(ConsentLogEntry {
                observed_at: observed_at.clone(),
                category: status.category,
                active: status.state == CategoryState::Active,
                state: entry.state.clone(),
                reason: entry.reason.clone(),
                by: entry.by.clone(),
                at: entry.at.clone(),
                policy_version: view.policy_version,
                previous_state: previous.get(&status.category).map(|p| p.state.clone()),
            });
        }
        current.insert(status.category, entry);
    }
    if entries.is_empty() {
        return Ok(entries);
    }
    let mut log = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(state_dir.join(CONSENT_LOG))?;
    let mut text = String::new();
    for entry in &entries {
        text.push_str(&serde_json::to_string(entry).map_err(io::Error::other)?);
        text.push('\n');
    }
    log.write_all(text.as_bytes())?;
    log.sync_all()?;
    let snapshot = serde_json::to_vec(&current).map_err(io::Error::other)?;
    fsutil::write_atomic(&snapshot_path, &snapshot, 0o600)?;
    Ok(entries)
}

/// Every entry of the consent log, oldest first; unreadable lines are skipped.
pub fn read_all(state_dir: &Path) -> io::Result<Vec<ConsentLogEntry>> {
    let file = match std::fs::File::open(state_dir.join(CONSENT_LOG)) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    Ok(io::BufReader::new(file)
        .lines()
        .map_while(Result::ok)
        .filter_map(|l| serde_json::from_str(&l).ok())
        .collect())
}

fn state_name(state: &CategoryState) -> &'static str {
    match state {
        CategoryState::Active => "active",
        CategoryState::NotGranted => "not_granted",
        CategoryState::Refused => "refused",
        CategoryState::Lapsed { .. } => "lapsed",
        CategoryState::BlockedByRequired { .. } => "blocked_by_required",
        CategoryState::NoValidConsentFile => "no_valid_consent_file",
    }
}
