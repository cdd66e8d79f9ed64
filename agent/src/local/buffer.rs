//! The agent's side of the event buffer: opening the store from the config, turning
//! collected payloads and consent changes into events, and applying consent to what is
//! held (withdrawn categories are purged, never sent).

use crate::config::{Config, Durability as ConfigDurability};
use crate::consent::log::ConsentLogEntry;
use crate::consent::{self, ConsentView};
use crate::local::outbox;
use assent_platform::Category;
use assent_store::{Durability, NewEvent, Store, StoreError, StoreOptions};
use assent_wire::Payload;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

/// Why the buffer side could not do its work: the store, its state directory, the
/// consent edit or log it records, or a value kept in the store's `meta` table.
#[derive(Debug)]
pub enum BufferError {
    /// The store failed.
    Store(StoreError),
    /// The store could not be opened in this state directory.
    Open(PathBuf, StoreError),
    /// A file or directory in the state directory could not be used.
    Io(PathBuf, std::io::Error),
    /// The consent log in this state directory could not be written.
    ConsentLog(PathBuf, std::io::Error),
    /// The consent file could not be edited.
    ConsentEdit(consent::EditError),
    /// A value in the `meta` table could not be encoded or decoded.
    Meta(&'static str, serde_json::Error),
    /// An event payload could not be encoded.
    Payload(assent_wire::DecodeError),
    /// A consent change could not be encoded.
    Encode(postcard::Error),
    /// A queued consent change could not be decoded.
    ConsentRecord(postcard::Error),
}

impl std::fmt::Display for BufferError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BufferError::Store(e) => write!(f, "buffer: {e}"),
            BufferError::Open(dir, e) => write!(f, "{}: buffer: {e}", dir.display()),
            BufferError::Io(path, e) => write!(f, "{}: {e}", path.display()),
            BufferError::ConsentLog(dir, e) => write!(f, "{}: consent log: {e}", dir.display()),
            BufferError::ConsentEdit(e) => std::fmt::Display::fmt(e, f),
            BufferError::Meta(key, e) => write!(f, "buffer meta `{key}`: {e}"),
            BufferError::Payload(e) => std::fmt::Display::fmt(e, f),
            BufferError::Encode(e) => std::fmt::Display::fmt(e, f),
            BufferError::ConsentRecord(e) => write!(f, "consent record: {e}"),
        }
    }
}

impl std::error::Error for BufferError {}

impl From<StoreError> for BufferError {
    fn from(e: StoreError) -> BufferError {
        BufferError::Store(e)
    }
}

/// The store category under which consent changes are queued for the collector.
pub const CONSENT_CATEGORY: &str = "consent";

/// Opens (or creates) `buffer.db` in the state directory with the config's bounds.
pub fn open(config: &Config) -> Result<Store, BufferError> {
    crate::unix::fsutil::ensure_private_dir(&config.state_dir)
        .map_err(|e| BufferError::Io(config.state_dir.clone(), e))?;
    let options = StoreOptions {
        max_bytes: config.buffer.max_bytes,
        retention_days: u32::try_from(config.buffer.retention_days).unwrap_or(u32::MAX),
        durability: match config.buffer.durability {
            ConfigDurability::Full => Durability::Full,
            ConfigDurability::Normal => Durability::Normal,
        },
        optional_categories: config
            .categories
            .iter()
            .filter(|(_, p)| !p.required)
            .map(|(c, _)| c.name().to_string())
            .collect(),
        ..StoreOptions::default()
    };
    let (store, report) = Store::open(&config.state_dir, options)
        .map_err(|e| BufferError::Open(config.state_dir.clone(), e))?;
    if let Some(path) = &report.quarantined {
        log::error!(
            "the event buffer was corrupt ({}); moved to {} and replaced by an empty one; \
             a gap record tells the collector",
            report.corruption.as_deref().unwrap_or("unknown damage"),
            path.display()
        );
    }
    expire(&store);
    Ok(store)
}

/// Applies the retention limit (`[buffer] retention_days`) by wall time. The store
/// refuses to judge age by a clock that is not set (before 2020) and never expires
/// events stamped before 2020, so a device booting in 1970 loses nothing by it. Run at
/// every open and hourly by the daemon.
pub fn expire(store: &Store) {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    match store.expire(now_ms) {
        Ok(0) => {}
        Ok(n) => log::info!("retention: deleted {n} unsent events older than the limit"),
        Err(e) => log::warn!("retention: {}", store_error(e)),
    }
}

/// When and in which boot an event is recorded: wall clock, boot id and monotonic time,
/// so ordering survives a wall clock that jumps.
#[derive(Debug, Clone, Copy)]
pub struct Timestamp {
    pub wall_time_ms: i64,
    pub boot_id: [u8; 16],
    pub monotonic_ns: u64,
}

impl Timestamp {
    pub fn now() -> Timestamp {
        let wall_time_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        let monotonic_ns =
            nix::time::clock_gettime(nix::time::ClockId::CLOCK_BOOTTIME).map_or(0, |t| {
                u64::try_from(t.tv_sec()).unwrap_or(0) * 1_000_000_000
                    + u64::try_from(t.tv_nsec()).unwrap_or(0)
            });
        Timestamp {
            wall_time_ms,
            boot_id: current_boot_id(),
            monotonic_ns,
        }
    }
}

/// This boot's id from the kernel; zeros if it cannot be read (the wall time and seq
/// still order events). Read once: a process does not outlive its boot, and reading the
/// proc file per event was a tenth of the events socket's CPU.
fn current_boot_id() -> [u8; 16] {
    static BOOT_ID: std::sync::OnceLock<[u8; 16]> = std::sync::OnceLock::new();
    *BOOT_ID.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .ok()
            .and_then(|s| assent_wire::BootId::from_hex(s.trim()).ok())
            .map_or([0; 16], |b| b.0)
    })
}

/// An event for a collected payload.
pub fn payload_event(
    payload: &Payload,
    kind: &str,
    at: Timestamp,
) -> Result<NewEvent, BufferError> {
    Ok(NewEvent {
        category: payload.category().name().to_string(),
        kind: kind.to_string(),
        wall_time_ms: at.wall_time_ms,
        boot_id: at.boot_id,
        monotonic_ns: at.monotonic_ns,
        payload: payload.to_postcard().map_err(BufferError::Payload)?,
    })
}

/// An event for a consent change (sent as a consent record).
fn consent_event(entry: &ConsentLogEntry, at: Timestamp) -> Result<NewEvent, BufferError> {
    Ok(NewEvent {
        category: CONSENT_CATEGORY.to_string(),
        kind: "change".to_string(),
        wall_time_ms: at.wall_time_ms,
        boot_id: at.boot_id,
        monotonic_ns: at.monotonic_ns,
        payload: postcard::to_stdvec(entry).map_err(BufferError::Encode)?,
    })
}

/// Decodes a queued consent change.
pub fn decode_consent(payload: &[u8]) -> Result<ConsentLogEntry, BufferError> {
    postcard::from_bytes(payload).map_err(BufferError::ConsentRecord)
}

/// What applying consent to the buffer did.
#[derive(Debug, Default)]
pub struct ConsentApplied {
    /// Consent changes logged and queued for the collector.
    pub changes: usize,
    /// Unsent events deleted, per withdrawn category.
    pub purged: Vec<(Category, u64)>,
}

/// A grant or withdrawal by `by`, with every effect at once, daemon or not: the consent
/// file is edited atomically, the change is logged and queued for the collector, and
/// unsent data of withdrawn categories is deleted. Used by `assent consent` and by the
/// control socket.
pub fn decide_consent(
    config: &Config,
    store: &Store,
    mut categories: Vec<Category>,
    decision: consent::Decision,
    by: &str,
) -> Result<(ConsentView, ConsentApplied), BufferError> {
    categories.sort();
    categories.dedup();
    consent::edit(config, &categories, decision, by, SystemTime::now())
        .map_err(BufferError::ConsentEdit)?;
    let (_, view) = consent::load(config);
    let applied = apply_consent(config, store, &view)?;
    Ok((view, applied))
}

/// Logs consent changes (queuing them for the collector) and purges every unsent event
/// of a category that is not active. Safe to call often: both steps do nothing when
/// nothing changed.
pub fn apply_consent(
    config: &Config,
    store: &Store,
    view: &ConsentView,
) -> Result<ConsentApplied, BufferError> {
    let at = Timestamp::now();
    let changes = consent::log::record(&config.state_dir, view, SystemTime::now())
        .map_err(|e| BufferError::ConsentLog(config.state_dir.clone(), e))?;
    let events = changes
        .iter()
        .map(|c| consent_event(c, at))
        .collect::<Result<Vec<_>, _>>()?;
    if !events.is_empty() {
        store.append_many(events).map_err(store_error)?;
    }
    // A withdrawal asks the collector to erase what it holds of that category, under the
    // pseudonym the data was sent with. Nothing sent yet: nothing to erase.
    let withdrawn: Vec<Category> = changes
        .iter()
        .filter(|c| c.is_withdrawal())
        .map(|c| c.category)
        .collect();
    if !withdrawn.is_empty() {
        if let Some(device) = outbox::last_pseudonym(store)? {
            outbox::queue_erasure(
                store,
                outbox::ErasureJob {
                    device,
                    categories: Some(withdrawn),
                    queued_at: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
                },
            )?;
        }
    }
    let mut purged = Vec::new();
    let held = store.stats().map_err(store_error)?.per_category;
    for category in Category::ALL {
        if view.is_active(category) || !held.contains_key(category.name()) {
            continue;
        }
        let count = store.purge_category(category.name()).map_err(store_error)?;
        if count > 0 {
            log::info!("consent for {category} is not active: deleted {count} unsent events");
            purged.push((category, count));
        }
    }
    Ok(ConsentApplied {
        changes: changes.len(),
        purged,
    })
}

/// A store error in the buffer's words (`buffer: ...`).
pub fn store_error(e: StoreError) -> BufferError {
    BufferError::Store(e)
}
