//! What the console reads from a database: the [`ConsoleQueries`] trait and its rows.
//!
//! Each method is one plain SQL query over the collector's tables (`devices`, `events`,
//! `gaps`, `consent_records`, `erasure_log`), so a backend ports them one by one; the
//! SQLite versions are in [`super::sqlite`]. Days are UTC days since the epoch,
//! `received_at_ms / 86_400_000`. Every list a device page shows is bounded by a limit.
//! The fleet's consent state per day comes from a roll-up the writers keep
//! ([`super::consent_rollup`]); the running sums over days are done by the console.

pub use super::consent_rollup::ConsentDay;
use crate::storage::StorageError;
use assent_wire::Pseudonym;

/// The most rows a device page lists per section.
pub const DEVICE_LIST_LIMIT: u32 = 200;

/// A count on one day, optionally of one key (a category, a reason).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayCount {
    pub day: i64,
    pub key: String,
    pub count: u64,
}

/// Gap records and the events they say were lost, for one reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GapTotal {
    pub reason: String,
    pub records: u64,
    pub events: u64,
}

/// One line of the erasure log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErasureRow {
    pub device: String,
    /// `all` or category names joined by commas.
    pub categories: String,
    pub erased_events: u64,
    pub at_ms: i64,
    /// The console operator who erased; `None` when the device asked.
    pub operator: Option<String>,
}

/// One consent record as the fleet timeline needs it (ordered by `received_at_ms`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentPoint {
    pub device: String,
    pub category: String,
    pub active: bool,
    pub state: String,
    pub received_at_ms: i64,
}

/// One consent record of a device, as its page lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentRow {
    pub observed_at: String,
    pub category: String,
    pub active: bool,
    pub state: String,
    pub by: Option<String>,
    pub at: Option<String>,
    pub policy_version: i64,
    pub received_at_ms: i64,
}

/// What a device holds in one category.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CategoryHeld {
    pub category: String,
    pub events: u64,
    pub first_received_ms: i64,
    pub last_received_ms: i64,
}

/// The newest event of one category of a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LatestEvent {
    pub category: String,
    pub kind: String,
    pub wall_time_ms: i64,
    pub received_at_ms: i64,
    /// The stored payload JSON, as the device sent it: hostile text.
    pub payload_json: String,
}

/// One gap record of a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GapRow {
    pub first_seq: u64,
    pub last_seq: u64,
    pub count: u64,
    pub reason: String,
    pub category: Option<String>,
    pub received_at_ms: i64,
}

/// The `devices` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRow {
    pub first_seen_ms: i64,
    pub last_seen_ms: i64,
    pub buffers: u64,
}

/// Whole-fleet counts for the overview's header.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Totals {
    pub devices: u64,
    pub events: u64,
    pub gaps: u64,
    pub erasures: u64,
}

/// The console's read queries. Called from a blocking thread, one call at a time per
/// instance; a backend opens its own read connection (never the writer's).
pub trait ConsoleQueries: Send {
    /// Row counts of `devices`, `events`, `gaps`, `erasure_log`.
    fn totals(&mut self) -> Result<Totals, StorageError>;

    /// Devices that sent a stored batch on each day since `since_ms` (key empty).
    fn devices_per_day(&mut self, since_ms: i64) -> Result<Vec<DayCount>, StorageError>;

    /// Events received (newly stored) per day and category since `since_ms`; erasure and
    /// retention do not lower these counts.
    fn events_per_day(&mut self, since_ms: i64) -> Result<Vec<DayCount>, StorageError>;

    /// The consent roll-up (`daily_consent`) summed per day and category, for days up to
    /// `today`, with every day before `first_day` summed into `first_day - 1`: what
    /// [`super::consent_rollup::per_day`] turns into the overview's consent chart.
    fn consent_days(&mut self, first_day: i64, today: i64)
        -> Result<Vec<ConsentDay>, StorageError>;

    /// Every consent record of the fleet (device, category, state), oldest received
    /// first, passed to `sink` one at a time: the replay the roll-up is checked against
    /// (tests, bench); the overview does not read it.
    fn consent_timeline(&mut self, sink: &mut dyn FnMut(ConsentPoint)) -> Result<(), StorageError>;

    /// Gap records and lost events per reason, over everything held.
    fn gaps_by_reason(&mut self) -> Result<Vec<GapTotal>, StorageError>;

    /// Erasures per day since `since_ms` (key empty, count = events erased), and the
    /// number of erasures per day (key `erasures`).
    fn erasures_per_day(&mut self, since_ms: i64) -> Result<Vec<DayCount>, StorageError>;

    /// The newest `limit` erasure log lines, of one device when given.
    fn erasures(
        &mut self,
        device: Option<&Pseudonym>,
        limit: u32,
    ) -> Result<Vec<ErasureRow>, StorageError>;

    /// The device's row, `None` when it never sent anything.
    fn device(&mut self, device: &Pseudonym) -> Result<Option<DeviceRow>, StorageError>;

    /// Events held per category for the device.
    fn categories_held(&mut self, device: &Pseudonym) -> Result<Vec<CategoryHeld>, StorageError>;

    /// The newest event per category for the device.
    fn latest_per_category(&mut self, device: &Pseudonym)
        -> Result<Vec<LatestEvent>, StorageError>;

    /// The device's consent records, newest first, at most `limit`.
    fn consent_history(
        &mut self,
        device: &Pseudonym,
        limit: u32,
    ) -> Result<Vec<ConsentRow>, StorageError>;

    /// The device's gap records, newest first, at most `limit`.
    fn device_gaps(&mut self, device: &Pseudonym, limit: u32) -> Result<Vec<GapRow>, StorageError>;
}
