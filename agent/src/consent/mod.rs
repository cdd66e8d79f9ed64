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
use crate::unix::fsutil;
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
    Lapsed {
        granted_under: u32,
        current: u32,
    },
    /// Granted, but a required category is not active, so nothing is.
    BlockedByRequired {
        missing: Vec<Category>,
    },
    /// The consent file is missing, unreadable or invalid.
    NoValidConsentFile,
}

impl CategoryState {
    /// The state's name, as its `state` field is serialized.
    pub fn name(&self) -> &'static str {
        match self {
            CategoryState::Active => "active",
            CategoryState::NotGranted => "not_granted",
            CategoryState::Refused => "refused",
            CategoryState::Lapsed { .. } => "lapsed",
            CategoryState::BlockedByRequired { .. } => "blocked_by_required",
            CategoryState::NoValidConsentFile => "no_valid_consent_file",
        }
    }

    /// A short reason for a person.
    pub fn reason(&self) -> String {
        match self {
            CategoryState::Active => "active".to_string(),
            CategoryState::NotGranted => "not granted".to_string(),
            CategoryState::Refused => "refused by the owner".to_string(),
            CategoryState::Lapsed {
                granted_under,
                current,
            } => {
                format!("granted under policy {granted_under}; policy {current} needs a new grant")
            }
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

/// Why a consent edit was not recorded.
#[derive(Debug)]
pub enum EditError {
    /// The consent file exists but cannot be read: `<path>: <reason>`.
    Unreadable(PathBuf, String),
    /// The consent file is invalid; it is never overwritten.
    Invalid(Diagnostics),
    /// The directory or the file could not be written.
    Write(PathBuf, std::io::Error),
}

impl std::fmt::Display for EditError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EditError::Unreadable(path, e) => write!(f, "{}: {e}", path.display()),
            EditError::Invalid(d) => write!(
                f,
                "the consent file is invalid; fix it by hand or remove it first\n{d}"
            ),
            EditError::Write(path, e) => write!(f, "{}: {e}", path.display()),
        }
    }
}

impl std::error::Error for EditError {}

/// Records decisions in the consent file atomically. An invalid file is not silently
/// overwritten: the owner must fix or remove it first (its content may be their intent).
pub fn edit(
    config: &Config,
    categories: &[Category],
    decision: Decision,
    by: &str,
    now: SystemTime,
) -> Result<ConsentFile, EditError> {
    let mut file = match ConsentSource::read(&config.consent_file) {
        ConsentSource::Loaded(f) => f,
        ConsentSource::Missing(_) => ConsentFile::default(),
        ConsentSource::Unreadable(p, e) => return Err(EditError::Unreadable(p, e)),
        ConsentSource::Invalid(d) => return Err(EditError::Invalid(d)),
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
        fsutil::ensure_private_dir(dir).map_err(|e| EditError::Write(dir.to_path_buf(), e))?;
    }
    fsutil::write_atomic(&config.consent_file, file.render().as_bytes(), 0o600)
        .map_err(|e| EditError::Write(config.consent_file.clone(), e))?;
    Ok(file)
}

/// Held while a decision's effects are queued in the buffer (`assent consent`, the
/// control socket) and while the daemon applies a new view of the file. The daemon is
/// woken by the file's change; holding this until the decision's consent records and
/// erasure request are stored means the upload it starts already sees them. A `flock` on
/// `decision.lock` in the state directory (`consent.lock` is the log's own, taken
/// inside): released when dropped, or when the process dies.
#[derive(Debug)]
pub struct DecisionLock {
    _lock: nix::fcntl::Flock<std::fs::File>,
}

impl DecisionLock {
    /// Waits for the lock (held for milliseconds at a time).
    pub fn acquire(state_dir: &Path) -> std::io::Result<DecisionLock> {
        use std::os::unix::fs::OpenOptionsExt;
        let path = state_dir.join("decision.lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        let lock = nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive).map_err(
            |(_, errno)| std::io::Error::other(format!("{}: cannot lock: {errno}", path.display())),
        )?;
        Ok(DecisionLock { _lock: lock })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::{Duration, Instant};

    /// A config whose state and consent file live in a temporary directory.
    fn setup(extra: &str) -> (tempfile::TempDir, Config) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("assent.toml");
        let text = format!("state_dir = \"state\"\n{extra}");
        std::fs::write(&path, &text).unwrap();
        let config = Config::load(&path).unwrap();
        (dir, config)
    }

    fn write(config: &Config, text: &str) {
        std::fs::create_dir_all(config.consent_file.parent().unwrap()).unwrap();
        std::fs::write(&config.consent_file, text).unwrap();
    }

    fn grant_text(categories: &[Category], policy_version: u32) -> String {
        categories
            .iter()
            .map(|c| {
                format!(
                    "[categories.{c}]\ngranted = true\npolicy_version = {policy_version}\n\
                     at = \"2026-11-22T10:00:00Z\"\nby = \"owner\"\n\n"
                )
            })
            .collect()
    }

    fn required() -> Vec<Category> {
        Category::ALL
            .into_iter()
            .filter(|c| c.required_by_default())
            .collect()
    }

    fn with(mut base: Vec<Category>, more: &[Category]) -> Vec<Category> {
        base.extend_from_slice(more);
        base
    }

    #[test]
    fn no_file_means_nothing_is_active() {
        let (_dir, config) = setup("");
        let (source, view) = load(&config);
        assert!(matches!(source, ConsentSource::Missing(_)));
        assert!(view.active().is_empty());
        assert!(view.problem.unwrap().contains("no consent file"));
        assert!(view
            .categories
            .iter()
            .all(|s| s.state == CategoryState::NoValidConsentFile));
    }

    #[test]
    fn an_invalid_file_means_nothing_is_active() {
        let (_dir, config) = setup("");
        // Valid grants for everything, plus one typo: the whole file is void.
        let text = grant_text(&Category::ALL, 1) + "[categories.os]\ngrantd = true\n";
        write(&config, &text);
        let (source, view) = load(&config);
        assert!(matches!(source, ConsentSource::Invalid(_)), "{source:?}");
        assert!(view.active().is_empty());
        write(&config, "[categories.hardware\n");
        assert!(load(&config).1.active().is_empty());
        std::fs::write(&config.consent_file, [0xff, 0xfe, b'\n']).unwrap();
        assert!(load(&config).1.active().is_empty());
    }

    #[test]
    fn an_unreadable_file_means_nothing_is_active() {
        let (_dir, config) = setup("");
        // A directory where the file should be cannot be read, even by root.
        std::fs::create_dir_all(&config.consent_file).unwrap();
        let (source, view) = load(&config);
        assert!(
            matches!(source, ConsentSource::Unreadable(..)),
            "{source:?}"
        );
        assert!(view.active().is_empty());
    }

    #[test]
    fn all_required_granted_makes_exactly_those_active() {
        let (_dir, config) = setup("");
        write(&config, &grant_text(&required(), 1));
        let view = load(&config).1;
        assert_eq!(view.active(), required().into_iter().collect());
    }

    #[test]
    fn one_refused_required_category_turns_everything_off() {
        let (_dir, config) = setup("");
        let mut cats = with(required(), &[Category::Software]);
        cats.retain(|c| *c != Category::Os);
        let text = grant_text(&cats, 1)
            + "[categories.os]\ngranted = false\npolicy_version = 1\nby = \"owner\"\n";
        write(&config, &text);
        let view = load(&config).1;
        assert!(view.active().is_empty());
        assert_eq!(
            view.status(Category::Os).unwrap().state,
            CategoryState::Refused
        );
        assert_eq!(
            view.status(Category::Hardware).unwrap().state,
            CategoryState::BlockedByRequired {
                missing: vec![Category::Os]
            }
        );
    }

    #[test]
    fn optional_categories_are_independent() {
        let (_dir, config) = setup("");
        let text = grant_text(&with(required(), &[Category::Location]), 1)
            + "[categories.software]\ngranted = false\npolicy_version = 1\n";
        write(&config, &text);
        let view = load(&config).1;
        assert!(view.is_active(Category::Location));
        assert!(!view.is_active(Category::Software));
        assert!(!view.is_active(Category::NetworkDetail));
        assert_eq!(
            view.status(Category::NetworkDetail).unwrap().state,
            CategoryState::NotGranted
        );
    }

    #[test]
    fn a_policy_version_bump_makes_earlier_grants_lapse() {
        let (dir, config) = setup("");
        write(
            &config,
            &grant_text(&with(required(), &[Category::Software]), 1),
        );
        assert!(load(&config).1.is_active(Category::Software));
        // The operator raises the policy version.
        let path = dir.path().join("assent.toml");
        std::fs::write(&path, "state_dir = \"state\"\npolicy_version = 2\n").unwrap();
        let bumped = Config::load(&path).unwrap();
        let view = load(&bumped).1;
        assert!(view.active().is_empty());
        assert_eq!(
            view.status(Category::Software).unwrap().state,
            CategoryState::Lapsed {
                granted_under: 1,
                current: 2
            }
        );
        // A new grant under version 2 restores it.
        edit(
            &bumped,
            &with(required(), &[Category::Software]),
            Decision::Grant,
            "owner",
            SystemTime::now(),
        )
        .unwrap();
        assert!(load(&bumped).1.is_active(Category::Software));
    }

    #[test]
    fn a_required_flag_from_the_operator_is_honoured() {
        let (_dir, config) = setup("[categories.location]\nrequired = true\n");
        write(&config, &grant_text(&required(), 1));
        assert!(load(&config).1.active().is_empty());
    }

    #[test]
    fn cli_edits_and_hand_edits_count_the_same() {
        use std::os::unix::fs::PermissionsExt;
        let (_dir, config) = setup("");
        edit(
            &config,
            &required(),
            Decision::Grant,
            "technician:ops-17",
            SystemTime::now(),
        )
        .unwrap();
        let mode = std::fs::metadata(&config.consent_file)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let by_cli = load(&config).1;
        assert_eq!(
            by_cli.status(Category::Os).unwrap().by.as_deref(),
            Some("technician:ops-17")
        );
        // The same decisions typed by hand give the same active set.
        write(&config, &grant_text(&required(), 1));
        assert_eq!(load(&config).1.active(), by_cli.active());
        // A hand edit is kept when the CLI edits again.
        let text = std::fs::read_to_string(&config.consent_file).unwrap()
            + "[categories.location]\ngranted = true\npolicy_version = 1\n";
        write(&config, &text);
        edit(
            &config,
            &[Category::Software],
            Decision::Grant,
            "owner",
            SystemTime::now(),
        )
        .unwrap();
        let view = load(&config).1;
        assert!(view.is_active(Category::Location) && view.is_active(Category::Software));
        // The CLI refuses to overwrite a file it cannot understand.
        write(&config, "garbage = [");
        assert!(edit(
            &config,
            &[Category::Os],
            Decision::Revoke,
            "owner",
            SystemTime::now()
        )
        .is_err());
        assert_eq!(
            std::fs::read_to_string(&config.consent_file).unwrap(),
            "garbage = ["
        );
    }

    #[test]
    fn the_consent_log_records_each_change_once() {
        let (_dir, config) = setup("");
        let now = SystemTime::now();
        let first = log::record(&config.state_dir, &load(&config).1, now).unwrap();
        assert_eq!(first.len(), Category::ALL.len(), "initial state logged");
        assert!(log::record(&config.state_dir, &load(&config).1, now)
            .unwrap()
            .is_empty());
        edit(&config, &required(), Decision::Grant, "guardian", now).unwrap();
        // Every category changes: the required ones become active, the optional ones
        // go from "no valid consent file" to "not granted".
        let granted = log::record(&config.state_dir, &load(&config).1, now).unwrap();
        assert_eq!(granted.len(), Category::ALL.len());
        let active: Vec<_> = granted.iter().filter(|e| e.active).collect();
        assert_eq!(active.len(), required().len());
        assert!(active.iter().all(|e| e.by.as_deref() == Some("guardian")));
        edit(&config, &[Category::Os], Decision::Revoke, "owner", now).unwrap();
        let revoked = log::record(&config.state_dir, &load(&config).1, now).unwrap();
        let os = revoked.iter().find(|e| e.category == Category::Os).unwrap();
        assert_eq!(os.state, "refused");
        assert_eq!(
            log::read_all(&config.state_dir).unwrap().len(),
            8 + 8 + revoked.len()
        );
    }

    /// Waits for a view satisfying `pred`, returning how long it took.
    fn wait_for(rx: &mpsc::Receiver<ConsentView>, pred: impl Fn(&ConsentView) -> bool) -> Duration {
        let start = Instant::now();
        loop {
            let left = Duration::from_secs(1).saturating_sub(start.elapsed());
            match rx.recv_timeout(left) {
                Ok(view) if pred(&view) => return start.elapsed(),
                Ok(_) => continue,
                Err(_) => panic!("no matching consent change within 1 s"),
            }
        }
    }

    #[test]
    fn the_watcher_sees_every_kind_of_change_within_a_second() {
        let (_dir, config) = setup("");
        std::fs::create_dir_all(&config.state_dir).unwrap();
        let (tx, rx) = mpsc::channel();
        let _watcher = watch::ConsentWatcher::spawn(config.clone(), move |view| {
            let _ = tx.send(view);
        })
        .unwrap();
        wait_for(&rx, |v| v.active().is_empty());

        // Created in place.
        write(&config, &grant_text(&required(), 1));
        wait_for(&rx, |v| v.active().len() == required().len());

        // Replaced by rename, as editors and the CLI do.
        let tmp = config.state_dir.join("consent.toml.new");
        std::fs::write(
            &tmp,
            grant_text(&with(required(), &[Category::Software]), 1),
        )
        .unwrap();
        std::fs::rename(&tmp, &config.consent_file).unwrap();
        wait_for(&rx, |v| v.is_active(Category::Software));

        // Through the CLI path.
        edit(
            &config,
            &[Category::Software],
            Decision::Revoke,
            "owner",
            SystemTime::now(),
        )
        .unwrap();
        wait_for(&rx, |v| {
            !v.is_active(Category::Software) && !v.active().is_empty()
        });

        // Made invalid by a hand edit.
        write(&config, "[categories.os]\ngranted = maybe\n");
        wait_for(&rx, |v| v.active().is_empty() && v.problem.is_some());

        // Restored, then deleted.
        write(&config, &grant_text(&required(), 1));
        wait_for(&rx, |v| !v.active().is_empty());
        std::fs::remove_file(&config.consent_file).unwrap();
        wait_for(&rx, |v| v.active().is_empty());

        // Created again, then written in place by a writer that keeps it open (seen
        // on the file's own watch: no close, no rename).
        write(&config, "");
        wait_for(&rx, |v| v.active().is_empty() && v.problem.is_none());
        let mut open = std::fs::OpenOptions::new()
            .write(true)
            .open(&config.consent_file)
            .unwrap();
        use std::io::Write as _;
        open.write_all(grant_text(&required(), 1).as_bytes())
            .unwrap();
        wait_for(&rx, |v| v.active().len() == required().len());
        drop(open);
    }

    /// The buffer's WAL lives beside the consent file and is written at every commit:
    /// those writes must not wake the watcher (each wake-up would take CPU from the
    /// commits themselves). Counted as the watcher's reads of inotify events: its
    /// thread's context switches also count the signals qemu-user sends its threads.
    #[test]
    fn writes_to_other_files_beside_it_do_not_wake_the_watcher() {
        let (_dir, config) = setup("");
        write(&config, &grant_text(&required(), 1));
        let (tx, rx) = mpsc::channel();
        let watcher = watch::ConsentWatcher::spawn(config.clone(), move |view| {
            let _ = tx.send(view);
        })
        .unwrap();
        wait_for(&rx, |v| !v.active().is_empty());
        let mut wal = std::fs::File::create(config.state_dir.join("buffer.db-wal")).unwrap();
        // The creation is one event; let it be read before counting.
        std::thread::sleep(Duration::from_millis(100));
        let start = watcher.wakeups();
        use std::io::Write as _;
        for n in 0..200u32 {
            wal.write_all(&n.to_be_bytes()).unwrap();
            // Paced, so that each write would be a separate wake-up if it woke the
            // watcher at all (inotify merges only events still unread).
            std::thread::sleep(Duration::from_millis(1));
        }
        let woken = watcher.wakeups() - start;
        assert!(
            woken < 20,
            "the watcher woke {woken} times for 200 writes to another file"
        );
    }
}
