//! The store's public value types: options, events, records, batches, statistics.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// How hard a commit tries to survive a power cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Durability {
    /// `synchronous=FULL`: the WAL is fsync'd before `append` returns (or a `submit`
    /// callback is told the seq), so an accepted event survives a power cut (if the
    /// storage honours flushes).
    Full,
    /// `synchronous=NORMAL`: an accepted event survives a crash of the process, but a power
    /// cut may roll back the last commits (never corrupts the file).
    Normal,
}

/// How the store is sized and how it commits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreOptions {
    /// The whole on-disk footprint: database, WAL, shared-memory index and the small
    /// reserve file. At least [`MIN_MAX_BYTES`](crate::MIN_MAX_BYTES).
    pub max_bytes: u64,
    /// Events whose wall time is older than this many days are deleted by `expire`.
    pub retention_days: u32,
    /// See [`Durability`].
    pub durability: Durability,
    /// The longest a commit waits for more producers to join it (never more than half
    /// as long as the previous commit took).
    pub group_commit_window: Duration,
    /// The most events in one commit.
    pub group_commit_max_events: usize,
    /// The most events submitted and not yet reported (queued, being committed, or
    /// having their callback run), over all producers. `submit`/`append` block while it
    /// is reached; an `append_many` let in just below it may go over it by its length.
    pub max_in_flight_events: usize,
    /// Categories evicted first when the buffer is full.
    pub optional_categories: Vec<String>,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            max_bytes: 32 * 1024 * 1024,
            retention_days: 30,
            durability: Durability::Full,
            group_commit_window: Duration::from_millis(2),
            group_commit_max_events: 1024,
            max_in_flight_events: 4096,
            optional_categories: Vec::new(),
        }
    }
}

/// An event handed to the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewEvent {
    /// The data category it belongs to (what consent is given for).
    pub category: String,
    /// What happened, within the category.
    pub kind: String,
    /// Wall-clock time in milliseconds since the Unix epoch (may be wrong at boot).
    pub wall_time_ms: i64,
    /// `/proc/sys/kernel/random/boot_id` of the boot it was recorded in.
    pub boot_id: [u8; 16],
    /// `CLOCK_BOOTTIME`-style monotonic nanoseconds within that boot.
    pub monotonic_ns: u64,
    /// The encoded event (postcard bytes); opaque to the store.
    pub payload: Vec<u8>,
}

/// An event as held by the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredEvent {
    /// Its place in the buffer's sequence; never reused.
    pub seq: u64,
    /// See [`NewEvent::category`].
    pub category: String,
    /// See [`NewEvent::kind`].
    pub kind: String,
    /// See [`NewEvent::wall_time_ms`].
    pub wall_time_ms: i64,
    /// See [`NewEvent::boot_id`].
    pub boot_id: [u8; 16],
    /// See [`NewEvent::monotonic_ns`].
    pub monotonic_ns: u64,
    /// See [`NewEvent::payload`].
    pub payload: Vec<u8>,
}

/// Why events were lost before being sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum GapReason {
    /// Evicted to keep the buffer within `max_bytes`.
    Evicted,
    /// Older than `retention_days`.
    Expired,
    /// Purged because consent for the category was withdrawn.
    Purged,
    /// The buffer file was corrupt or unreadable and was replaced by a fresh one.
    BufferReset,
    /// Evicted because the filesystem ran out of space below `max_bytes`.
    DiskFull,
}

impl GapReason {
    pub(crate) fn code(self) -> i64 {
        match self {
            Self::Evicted => 1,
            Self::Expired => 2,
            Self::Purged => 3,
            Self::BufferReset => 4,
            Self::DiskFull => 5,
        }
    }

    pub(crate) fn from_code(code: i64) -> Option<Self> {
        match code {
            1 => Some(Self::Evicted),
            2 => Some(Self::Expired),
            3 => Some(Self::Purged),
            4 => Some(Self::BufferReset),
            5 => Some(Self::DiskFull),
            _ => None,
        }
    }
}

/// A record that says events were lost: `count` events (of `category`, when given) with
/// seqs in `first_seq..=last_seq` were deleted unsent. Other events in that range may
/// still be held. Its own `seq` is always greater than `last_seq`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GapRecord {
    /// This record's own place in the sequence.
    pub seq: u64,
    /// The lowest lost seq (0 when unknown, after a buffer reset).
    pub first_seq: u64,
    /// The highest lost seq (0 when unknown, after a buffer reset).
    pub last_seq: u64,
    /// How many events were lost (0 when unknown, after a buffer reset).
    pub count: u64,
    /// Why they were lost.
    pub reason: GapReason,
    /// Their category, when they were all of one.
    pub category: Option<String>,
}

/// One entry of the buffer: an event or a gap.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Record {
    /// An event waiting to be sent.
    Event(StoredEvent),
    /// A note that events were lost.
    Gap(GapRecord),
}

impl Record {
    /// The record's seq.
    pub fn seq(&self) -> u64 {
        match self {
            Self::Event(e) => e.seq,
            Self::Gap(g) => g.seq,
        }
    }
}

/// A contiguous range of the sequence, ready to send.
///
/// `first_seq` is the first seq after the last ack and `last_seq` the seq of the last
/// record. Seqs in the range without a record were deleted unsent; a gap record with a
/// higher seq (in this batch or a later one) accounts for each of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Batch {
    /// First seq of the range (the one after the last ack).
    pub first_seq: u64,
    /// Last seq of the range (the last record's).
    pub last_seq: u64,
    /// The records in seq order.
    pub records: Vec<Record>,
}

/// Held events of one category.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CategoryStats {
    /// Number of events.
    pub count: u64,
    /// Sum of their record sizes in bytes.
    pub bytes: u64,
}

/// What the buffer holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Number of held events (gaps not included).
    pub count: u64,
    /// Sum of their record sizes in bytes (payload, category, kind and 48 bytes of fixed
    /// fields each).
    pub bytes: u64,
    /// The smallest wall time among held events.
    pub oldest_wall_time_ms: Option<i64>,
    /// The same, per category.
    pub per_category: BTreeMap<String, CategoryStats>,
    /// Number of held gap records.
    pub gaps: u64,
    /// Size of `buffer.db` plus `buffer.db-wal` on disk.
    pub file_bytes: u64,
    /// The highest seq ever assigned (0 if none).
    pub last_seq: u64,
    /// Everything at or below this seq was acknowledged and deleted.
    pub acked_through: u64,
}

/// What `Store::open` found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenReport {
    /// Where a corrupt or unreadable `buffer.db` was moved, if it was.
    pub quarantined: Option<PathBuf>,
    /// Why it was judged corrupt.
    pub corruption: Option<String>,
    /// The seq of the "buffer reset" gap recorded in the fresh buffer.
    pub reset_gap_seq: Option<u64>,
    /// Older quarantined files deleted to keep at most two.
    pub removed_quarantines: Vec<PathBuf>,
}
