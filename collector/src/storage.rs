//! What the HTTP layer needs from a database, and nothing more: the [`Storage`] trait.
//!
//! Methods are synchronous; the server calls each instance from one writer thread, so an
//! instance never sees two calls at once and needs no locking of its own. SQLite runs one
//! writer; PostgreSQL one per `database_writers`, each with its own instance (and
//! connection), and exactly once then rests on the database's row locks (`crate::pg`).
//! Nothing in the HTTP layer names a backend.
//!
//! The high-water rule (docs/protocol.md, "Acknowledgement") is implemented by each
//! backend inside one transaction, with [`plan_ingest`] deciding what to store so every
//! backend applies the same rule.

use assent_platform::Category;
use assent_wire::{Batch, Erasure, ErasureRequest, Pseudonym, Record};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// Why a storage call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageError {
    /// The request is valid protocol but cannot be stored (a seq beyond 2^63 - 1); the
    /// client gets 400.
    Rejected(String),
    /// The database failed; the client gets 500 and retries later.
    Database(String),
}

impl fmt::Display for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StorageError::Rejected(m) => write!(f, "rejected: {m}"),
            StorageError::Database(m) => write!(f, "database: {m}"),
        }
    }
}

impl std::error::Error for StorageError {}

/// What one batch did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngestOutcome {
    /// The high-water after the batch: what the client is told.
    pub acked_through: u64,
    /// Records newly stored (events, gaps and consent changes).
    pub stored_records: u64,
    /// Whether the batch started beyond the high-water and was not stored.
    pub hole: bool,
}

/// How many rows each table holds, for `stats`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Stats {
    pub devices: u64,
    pub buffers: u64,
    pub events: u64,
    pub gaps: u64,
    pub consent_records: u64,
    pub erasures: u64,
    /// Events per category name (a JSON object in `stats`).
    pub events_by_category: BTreeMap<String, u64>,
}

/// One device as `devices` lists it: its `devices` row and what is held of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceSummary {
    pub device: String,
    pub first_seen_ms: i64,
    pub last_seen_ms: i64,
    pub events: u64,
    pub consent_records: u64,
    pub gaps: u64,
    /// Lines of the erasure log (requests carried out, by the device or an operator).
    pub erasures: u64,
}

/// The query behind [`Storage::devices`], the same text on both backends (SQLite binds
/// `$1` by position too): each count reads the device's rows through its table's
/// device-led key. With `one`, only the device `$1`.
pub fn devices_query(one: bool) -> String {
    format!(
        "SELECT pseudonym, first_seen_ms, last_seen_ms, \
         (SELECT COUNT(*) FROM events WHERE device = pseudonym), \
         (SELECT COUNT(*) FROM consent_records WHERE device = pseudonym), \
         (SELECT COUNT(*) FROM gaps WHERE device = pseudonym), \
         (SELECT COUNT(*) FROM erasure_log WHERE device = pseudonym) \
         FROM devices {} ORDER BY pseudonym",
        if one { "WHERE pseudonym = $1" } else { "" }
    )
}

/// One stored record as `export` prints it: a JSON object per line.
pub type ExportLine = serde_json::Value;

/// A database behind the collector.
pub trait Storage: Send {
    /// Stores a batch under the high-water rule in one transaction, committed before
    /// returning. `received_at_ms` is the server's wall clock.
    fn ingest(&mut self, batch: &Batch, received_at_ms: i64)
        -> Result<IngestOutcome, StorageError>;

    /// Stores several batches, each answered only once its transaction committed. A
    /// backend may put them all in one transaction (group commit); the default stores
    /// them one at a time.
    fn ingest_group(
        &mut self,
        batches: &[&Batch],
        received_at_ms: i64,
    ) -> Vec<Result<IngestOutcome, StorageError>> {
        batches
            .iter()
            .map(|b| self.ingest(b, received_at_ms))
            .collect()
    }

    /// Deletes what the request names, stores its fences, logs the erasure, commits;
    /// returns the number of events deleted.
    fn erase(&mut self, request: &Erasure, at_ms: i64) -> Result<u64, StorageError>;

    /// Deletes events and gaps received before `cutoff_ms`; returns how many rows went.
    fn sweep_retention(&mut self, cutoff_ms: i64) -> Result<u64, StorageError>;

    /// Every record held for a device (events only of `category` when given), in
    /// (buffer, seq) order, passed to `sink` one at a time.
    fn export(
        &mut self,
        device: &Pseudonym,
        category: Option<Category>,
        sink: &mut dyn FnMut(ExportLine) -> Result<(), StorageError>,
    ) -> Result<(), StorageError>;

    /// Row counts.
    fn stats(&mut self) -> Result<Stats, StorageError>;

    /// Every device ever seen (its `devices` row, kept after an erasure), in pseudonym
    /// order, or only `only` when given (nothing when it was never seen), passed to
    /// `sink` one at a time.
    fn devices(
        &mut self,
        only: Option<&Pseudonym>,
        sink: &mut dyn FnMut(DeviceSummary) -> Result<(), StorageError>,
    ) -> Result<(), StorageError>;

    /// [`Storage::erase`] on an operator's behalf (the console's erase action): the same
    /// deletion, logged in the erasure log with the operator's name.
    fn erase_by_operator(
        &mut self,
        request: &ErasureRequest,
        at_ms: i64,
        operator: &str,
    ) -> Result<u64, StorageError>;
}

/// The category name a fence of a whole-device erasure is stored under.
pub const ALL_CATEGORIES: &str = "*";

/// The (category name or [`ALL_CATEGORIES`], last seq) rows a request fences, per buffer.
pub fn fence_rows(request: &Erasure) -> Vec<(u64, &'static str, u64)> {
    let names: Vec<&'static str> = match &request.categories {
        None => vec![ALL_CATEGORIES],
        Some(cs) => cs.iter().map(|c| c.name()).collect(),
    };
    request
        .fences
        .iter()
        .flat_map(|f| names.iter().map(move |n| (f.buffer_id, *n, f.last_seq)))
        .collect()
}

/// Whether a record is at or below a fence of its buffer that covers it: an event or gap
/// of a fenced category, or anything under a whole-device fence. `fences` are the
/// buffer's (category name or [`ALL_CATEGORIES`], last seq).
pub fn is_fenced(record: &Record, fences: &[(String, u64)]) -> bool {
    let category = match record {
        Record::Event(e) => Some(e.category),
        Record::Gap(g) => g.category,
        Record::Consent(_) => None,
    };
    fences.iter().any(|(name, last)| {
        record.seq() <= *last
            && (name == ALL_CATEGORIES || category.is_some_and(|c| c.name() == name))
    })
}

/// The largest seq a backend stores: SQL integers are signed 64-bit.
pub const MAX_SEQ: u64 = i64::MAX as u64;

/// What to do with a batch given the stored high-water of its (device, buffer).
#[derive(Debug, Clone, PartialEq)]
pub enum IngestPlan<'b> {
    /// The batch starts beyond `high_water + 1`: an earlier batch is missing. Nothing is
    /// stored; the answer stays `high_water`.
    Hole { high_water: u64 },
    /// Store `records` (those above the old high-water) and move the high-water to
    /// `new_high_water`.
    Store {
        records: Vec<&'b Record>,
        new_high_water: u64,
    },
}

/// Applies the high-water rule. `stored` is `None` for a (device, buffer) never seen,
/// whose base is then `first_seq - 1`.
///
/// Records at or below the old high-water are skipped, not merely deduplicated: they were
/// stored before, or were since erased or expired, and must not come back when an old
/// batch is resent.
pub fn plan_ingest(batch: &Batch, stored: Option<u64>) -> Result<IngestPlan<'_>, StorageError> {
    if batch.last_seq > MAX_SEQ {
        return Err(StorageError::Rejected(format!(
            "last_seq {} is beyond the largest seq stored ({MAX_SEQ})",
            batch.last_seq
        )));
    }
    let high_water = stored.unwrap_or(batch.first_seq.saturating_sub(1));
    if batch.first_seq > high_water.saturating_add(1) {
        return Ok(IngestPlan::Hole { high_water });
    }
    Ok(IngestPlan::Store {
        records: batch
            .records
            .iter()
            .filter(|r| r.seq() > high_water)
            .collect(),
        new_high_water: high_water.max(batch.last_seq),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use assent_wire::{AppEvent, BootId, Event, Payload, PROTOCOL_VERSION};
    use std::collections::BTreeMap;

    fn batch(first: u64, last: u64, seqs: &[u64]) -> Batch {
        Batch {
            version: PROTOCOL_VERSION,
            device: Pseudonym::parse("abcdefghijklmnopqrstuvwxyz").unwrap(),
            buffer_id: 1,
            first_seq: first,
            last_seq: last,
            records: seqs
                .iter()
                .map(|&seq| {
                    Record::Event(Event {
                        seq,
                        category: Category::AppEvents,
                        kind: "x".into(),
                        wall_time_ms: 0,
                        boot_id: BootId::default(),
                        monotonic_ns: 0,
                        payload: Payload::AppEvent(AppEvent {
                            name: "x".into(),
                            attrs: BTreeMap::new(),
                        }),
                    })
                })
                .collect(),
        }
    }

    fn stored_seqs(plan: &IngestPlan<'_>) -> (Vec<u64>, Option<u64>) {
        match plan {
            IngestPlan::Hole { .. } => (vec![], None),
            IngestPlan::Store {
                records,
                new_high_water,
            } => (
                records.iter().map(|r| r.seq()).collect(),
                Some(*new_high_water),
            ),
        }
    }

    /// (first, last, seqs in the batch, stored high-water, seqs stored, new high-water).
    type Case = (
        u64,
        u64,
        &'static [u64],
        Option<u64>,
        &'static [u64],
        Option<u64>,
    );

    #[test]
    fn the_high_water_rule() {
        // (first, last, seqs, stored high-water) -> (stored seqs, new high-water or hole)
        let cases: &[Case] = &[
            // A new buffer starts wherever its first batch starts.
            (5, 7, &[5, 6, 7], None, &[5, 6, 7], Some(7)),
            (1, 3, &[1, 2, 3], None, &[1, 2, 3], Some(3)),
            // Contiguous.
            (4, 6, &[4, 6], Some(3), &[4, 6], Some(6)),
            // Duplicate: nothing stored, high-water unchanged.
            (1, 3, &[1, 2, 3], Some(3), &[], Some(3)),
            // Overlap: only the new part.
            (2, 5, &[2, 3, 4, 5], Some(3), &[4, 5], Some(5)),
            // An older batch after a newer one never lowers the high-water.
            (1, 2, &[1, 2], Some(9), &[], Some(9)),
            // A hole: nothing stored.
            (6, 8, &[6, 7, 8], Some(3), &[], None),
            // A batch of gaps only (no records) still moves the high-water.
            (4, 10, &[], Some(3), &[], Some(10)),
        ];
        for (first, last, seqs, hw, want, want_hw) in cases {
            let b = batch(*first, *last, seqs);
            let plan = plan_ingest(&b, *hw).unwrap();
            assert_eq!(
                stored_seqs(&plan),
                (want.to_vec(), *want_hw),
                "{first}..={last} over {hw:?}"
            );
            if want_hw.is_none() {
                assert_eq!(
                    plan,
                    IngestPlan::Hole {
                        high_water: hw.unwrap()
                    }
                );
            }
        }
    }

    #[test]
    fn fences_cover_their_categories_at_or_below_their_seq() {
        let b = batch(1, 3, &[1, 2, 3]);
        let app = &b.records[1];
        let fences = |rows: &[(&str, u64)]| -> Vec<(String, u64)> {
            rows.iter().map(|(n, s)| (n.to_string(), *s)).collect()
        };
        assert!(is_fenced(app, &fences(&[("app_events", 2)])));
        assert!(!is_fenced(app, &fences(&[("app_events", 1)])));
        assert!(!is_fenced(app, &fences(&[("hardware", 9)])));
        assert!(is_fenced(app, &fences(&[(ALL_CATEGORIES, 2)])));
        let request = assent_wire::Erasure {
            version: 2,
            device: b.device.clone(),
            categories: None,
            fences: vec![assent_wire::BufferFence {
                buffer_id: 4,
                last_seq: 7,
            }],
        };
        assert_eq!(fence_rows(&request), [(4, ALL_CATEGORIES, 7)]);
    }

    #[test]
    fn seqs_beyond_i64_are_rejected() {
        let b = batch(1, u64::MAX, &[]);
        assert!(matches!(
            plan_ingest(&b, None),
            Err(StorageError::Rejected(_))
        ));
    }
}
