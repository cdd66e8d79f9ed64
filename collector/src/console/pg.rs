//! [`ConsoleQueries`] on PostgreSQL, through a connection of its own (never a writer's),
//! each read in a read-only transaction.
//!
//! The roll-ups `daily_events` and `daily_devices` hold [`crate::pg::ROLLUP_SHARDS`] rows
//! per day (and category), summed here. Indexes used: the roll-ups' primary keys, the
//! device-led primary keys of `events`, `gaps` and `consent_records` and
//! `events_device_category` (a device's rows), `consent_received` (the timeline in
//! received order), `erasure_log_device_at` and `erasure_log_at` (erasures);
//! `gaps_by_reason` and `totals` scan their tables, as on SQLite.

use super::consent_rollup::{ByDevice, ConsentDeltas, ConsentStep};
use super::queries::{
    CategoryHeld, ConsentDay, ConsentPoint, ConsentRow, ConsoleQueries, DayCount, DeviceRow,
    ErasureRow, GapRow, GapTotal, LatestEvent, Totals,
};
use crate::config::PgTarget;
use crate::pg::{connect, db, unbits, DAY_MS, ROLLUP_SHARDS};
use crate::storage::StorageError;
use assent_wire::Pseudonym;
use assent_wire::{Batch, Record};
use postgres::types::ToSql;
use postgres::{Client, Row, Transaction};

/// Consent records fetched per round trip while streaming the timeline.
const TIMELINE_CHUNK: i32 = 10_000;

const TOTALS: &str = "SELECT (SELECT COUNT(*) FROM devices), (SELECT COUNT(*) FROM events), \
     (SELECT COUNT(*) FROM gaps), (SELECT COUNT(*) FROM erasure_log)";
const DEVICES_PER_DAY: &str = "SELECT day, '', SUM(devices)::bigint FROM daily_devices \
     WHERE day >= $1 GROUP BY day ORDER BY day";
const EVENTS_PER_DAY: &str = "SELECT day, category, SUM(events)::bigint FROM daily_events \
     WHERE day >= $1 GROUP BY day, category ORDER BY day, category";
const CONSENT_DAYS: &str = "SELECT GREATEST(day, $1::bigint - 1) AS d, category, \
     SUM(granted)::bigint, SUM(refused)::bigint, SUM(withdrawn)::bigint, \
     SUM(not_granted)::bigint FROM daily_consent WHERE day <= $2 \
     GROUP BY 1, 2 ORDER BY 1, 2";
const CONSENT_TIMELINE: &str =
    "SELECT device, category, active, state, received_at_ms FROM consent_records \
     ORDER BY received_at_ms, device, buffer_id, seq";
const GAPS_BY_REASON: &str = "SELECT reason, COUNT(*), COALESCE(SUM(count), 0)::bigint FROM gaps \
     GROUP BY reason ORDER BY reason";
const ERASURES_PER_DAY: &str =
    "SELECT at_ms / 86400000 AS day, 'events'::text, SUM(erased_events)::bigint \
     FROM erasure_log WHERE at_ms >= $1 GROUP BY 1 \
     UNION ALL \
     SELECT at_ms / 86400000 AS day, 'erasures'::text, COUNT(*) \
     FROM erasure_log WHERE at_ms >= $1 GROUP BY 1 ORDER BY 1, 2";
const DEVICE_ERASURES: &str =
    "SELECT device, categories, erased_events, at_ms, operator FROM erasure_log \
     WHERE device = $1 ORDER BY at_ms DESC, id DESC LIMIT $2";
const LATEST_ERASURES: &str =
    "SELECT device, categories, erased_events, at_ms, operator FROM erasure_log \
     ORDER BY at_ms DESC, id DESC LIMIT $1";
const DEVICE: &str = "SELECT first_seen_ms, last_seen_ms, \
     (SELECT COUNT(*) FROM buffers WHERE device = $1) FROM devices WHERE pseudonym = $1";
const CATEGORIES_HELD: &str =
    "SELECT category, COUNT(*), MIN(received_at_ms), MAX(received_at_ms) FROM events \
     WHERE device = $1 GROUP BY category ORDER BY category";
const LATEST_PER_CATEGORY: &str =
    "SELECT DISTINCT ON (category) category, kind, wall_time_ms, received_at_ms, \
     payload::text FROM events WHERE device = $1 \
     ORDER BY category, received_at_ms DESC, buffer_id DESC, seq DESC";
const CONSENT_HISTORY: &str =
    "SELECT observed_at, category, active, state, by_whom, at, policy_version, \
     received_at_ms FROM consent_records WHERE device = $1 \
     ORDER BY received_at_ms DESC, buffer_id DESC, seq DESC LIMIT $2";
const DEVICE_GAPS: &str =
    "SELECT first_seq, last_seq, count, reason, category, received_at_ms FROM gaps \
     WHERE device = $1 ORDER BY received_at_ms DESC, buffer_id DESC, seq DESC LIMIT $2";

/// A console query for a plan check: (name, SQL, sample parameters).
pub type PlanCheck = (&'static str, &'static str, Vec<Box<dyn ToSql + Sync>>);

/// Every query above by name, with sample parameters of its types, for tests that check
/// its plan (`EXPLAIN`). `totals` and `gaps_by_reason` scan their tables by design.
pub fn queries_for_plan_checks() -> Vec<PlanCheck> {
    let device = || -> Box<dyn ToSql + Sync> { Box::new("abcdefghijklmnopqrstuvwxyz".to_string()) };
    let n = |v: i64| -> Box<dyn ToSql + Sync> { Box::new(v) };
    vec![
        ("totals", TOTALS, vec![]),
        ("devices_per_day", DEVICES_PER_DAY, vec![n(20_000)]),
        ("events_per_day", EVENTS_PER_DAY, vec![n(20_000)]),
        ("consent_days", CONSENT_DAYS, vec![n(20_000), n(20_029)]),
        ("consent_timeline", CONSENT_TIMELINE, vec![]),
        ("gaps_by_reason", GAPS_BY_REASON, vec![]),
        (
            "erasures_per_day",
            ERASURES_PER_DAY,
            vec![n(20_000 * DAY_MS)],
        ),
        ("device_erasures", DEVICE_ERASURES, vec![device(), n(200)]),
        ("latest_erasures", LATEST_ERASURES, vec![n(200)]),
        ("device", DEVICE, vec![device()]),
        ("categories_held", CATEGORIES_HELD, vec![device()]),
        ("latest_per_category", LATEST_PER_CATEGORY, vec![device()]),
        ("consent_history", CONSENT_HISTORY, vec![device(), n(200)]),
        ("device_gaps", DEVICE_GAPS, vec![device(), n(200)]),
    ]
}

// The consent roll-up's writers, called by `crate::pg` inside its transactions, after
// the device's row is locked (so the device's records read here are all that are
// committed, and no other transaction changes them before this one commits).

/// The device's consent records, read through the device-led primary key.
pub(crate) fn device_consent_steps(
    tx: &mut Transaction<'_>,
    device: &str,
) -> Result<Vec<ConsentStep>, StorageError> {
    let rows = tx
        .query(
            "SELECT category, received_at_ms, buffer_id, seq, active, state \
             FROM consent_records WHERE device = $1",
            &[&device],
        )
        .map_err(db)?;
    Ok(rows.iter().map(consent_step).collect())
}

fn consent_step(r: &Row) -> ConsentStep {
    ConsentStep {
        category: r.get(0),
        received_at_ms: r.get(1),
        buffer_id: r.get(2),
        seq: r.get(3),
        active: r.get(4),
        state: r.get(5),
    }
}

/// Adds `deltas` to the shard row of this connection (as `daily_events`), in (day,
/// category) order, so two transactions sharing a shard cannot deadlock.
pub(crate) fn write_consent_deltas(
    tx: &mut Transaction<'_>,
    deltas: &ConsentDeltas,
) -> Result<(), StorageError> {
    let mut days = Vec::new();
    let mut categories = Vec::new();
    let mut series: [Vec<i64>; 4] = Default::default();
    for (day, category, counts) in deltas.rows() {
        days.push(day);
        categories.push(category);
        for (column, n) in series.iter_mut().zip(counts) {
            column.push(n);
        }
    }
    if days.is_empty() {
        return Ok(());
    }
    let [granted, refused, withdrawn, not_granted] = &series;
    tx.execute(
        "INSERT INTO daily_consent (day, category, shard, granted, refused, withdrawn, \
         not_granted) \
         SELECT d, c, (pg_backend_pid() % $7)::smallint, g, r, w, n \
         FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[], \
         $6::bigint[]) AS u(d, c, g, r, w, n) ORDER BY d, c \
         ON CONFLICT (day, category, shard) DO UPDATE SET \
         granted = daily_consent.granted + EXCLUDED.granted, \
         refused = daily_consent.refused + EXCLUDED.refused, \
         withdrawn = daily_consent.withdrawn + EXCLUDED.withdrawn, \
         not_granted = daily_consent.not_granted + EXCLUDED.not_granted",
        &[
            &days,
            &categories,
            granted,
            refused,
            withdrawn,
            not_granted,
            &i32::from(ROLLUP_SHARDS),
        ],
    )
    .map_err(db)?;
    Ok(())
}

/// The roll-up's changes for a group's stored records (`batches` in device order), read
/// and written before the records are inserted.
pub(crate) fn add_ingested_consent(
    tx: &mut Transaction<'_>,
    batches: &[(&Batch, Vec<&Record>)],
    now: i64,
) -> Result<(), StorageError> {
    let mut deltas = ConsentDeltas::default();
    let mut i = 0;
    while let Some((first, _)) = batches.get(i) {
        let device = first.device.as_str();
        let mut added = Vec::new();
        while let Some((batch, records)) =
            batches.get(i).filter(|(b, _)| b.device.as_str() == device)
        {
            for record in records {
                if let Record::Consent(c) = record {
                    added.push(ConsentStep::of(c, batch.buffer_id, now));
                }
            }
            i += 1;
        }
        if !added.is_empty() {
            let before = device_consent_steps(tx, device)?;
            deltas.merge(ConsentDeltas::for_ingest(before, added));
        }
    }
    write_consent_deltas(tx, &deltas)
}

/// Takes a device out of the roll-up, before a full erasure deletes its consent records.
pub(crate) fn remove_device_consent(
    tx: &mut Transaction<'_>,
    device: &str,
) -> Result<(), StorageError> {
    let mut gone = ConsentDeltas::default();
    gone.add_device(device_consent_steps(tx, device)?, -1);
    write_consent_deltas(tx, &gone)
}

/// Changes the roll-up from the device's contribution with its records `before` to that
/// with the records it holds now (import).
pub(crate) fn refresh_device_consent(
    tx: &mut Transaction<'_>,
    device: &str,
    before: Vec<ConsentStep>,
) -> Result<(), StorageError> {
    let mut deltas = ConsentDeltas::default();
    deltas.add_device(before, -1);
    deltas.add_device(device_consent_steps(tx, device)?, 1);
    write_consent_deltas(tx, &deltas)
}

/// Fills `daily_consent` anew from every consent record, streamed one device at a time
/// (the migration that adds it).
pub fn rebuild_consent_rollup(tx: &mut Transaction<'_>) -> Result<(), StorageError> {
    tx.execute("DELETE FROM daily_consent", &[]).map_err(db)?;
    let portal = tx
        .bind(
            "SELECT category, received_at_ms, buffer_id, seq, active, state, device \
             FROM consent_records ORDER BY device",
            &[],
        )
        .map_err(db)?;
    let mut all = ByDevice::default();
    loop {
        let rows = tx.query_portal(&portal, TIMELINE_CHUNK).map_err(db)?;
        if rows.is_empty() {
            break;
        }
        for r in &rows {
            all.push(r.get(6), consent_step(r));
        }
    }
    write_consent_deltas(tx, &all.finish())
}

/// The console's PostgreSQL connection, reopened on the next call when it was lost.
pub struct PgConsoleQueries {
    target: PgTarget,
    client: Option<Client>,
}

impl std::fmt::Debug for PgConsoleQueries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgConsoleQueries")
            .field("url", &self.target.url)
            .finish()
    }
}

fn count(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

impl PgConsoleQueries {
    /// Connects; the schema is checked by the writers, opened before this.
    pub fn open(target: &PgTarget) -> Result<PgConsoleQueries, StorageError> {
        Ok(PgConsoleQueries {
            target: target.clone(),
            client: Some(connect(target)?),
        })
    }

    /// Runs `read` in a read-only transaction on the connection, reconnecting first
    /// when the connection was lost.
    fn read<T>(
        &mut self,
        read: impl FnOnce(&mut Transaction<'_>) -> Result<T, postgres::Error>,
    ) -> Result<T, StorageError> {
        if self.client.as_ref().is_none_or(Client::is_closed) {
            self.client = None;
            self.client = Some(connect(&self.target)?);
            crate::metrics::global()
                .database_reconnects
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        let client = self
            .client
            .as_mut()
            .ok_or_else(|| StorageError::Database("no connection to the database".into()))?;
        let result = client
            .build_transaction()
            .read_only(true)
            .start()
            .and_then(|mut tx| {
                let value = read(&mut tx)?;
                tx.commit()?;
                Ok(value)
            });
        result.map_err(db)
    }

    fn list<T>(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
        map: impl Fn(&Row) -> T,
    ) -> Result<Vec<T>, StorageError> {
        self.read(|tx| Ok(tx.query(sql, params)?.iter().map(map).collect()))
    }

    fn day_counts(&mut self, sql: &str, since: i64) -> Result<Vec<DayCount>, StorageError> {
        self.list(sql, &[&since], |r| DayCount {
            day: r.get(0),
            key: r.get(1),
            count: count(r.get::<_, Option<i64>>(2).unwrap_or(0)),
        })
    }
}

impl ConsoleQueries for PgConsoleQueries {
    fn totals(&mut self) -> Result<Totals, StorageError> {
        self.read(|tx| {
            let r = tx.query_one(TOTALS, &[])?;
            Ok(Totals {
                devices: count(r.get(0)),
                events: count(r.get(1)),
                gaps: count(r.get(2)),
                erasures: count(r.get(3)),
            })
        })
    }

    fn devices_per_day(&mut self, since_ms: i64) -> Result<Vec<DayCount>, StorageError> {
        self.day_counts(DEVICES_PER_DAY, since_ms.div_euclid(DAY_MS))
    }

    fn events_per_day(&mut self, since_ms: i64) -> Result<Vec<DayCount>, StorageError> {
        self.day_counts(EVENTS_PER_DAY, since_ms.div_euclid(DAY_MS))
    }

    fn consent_days(
        &mut self,
        first_day: i64,
        today: i64,
    ) -> Result<Vec<ConsentDay>, StorageError> {
        self.list(CONSENT_DAYS, &[&first_day, &today], |r| ConsentDay {
            day: r.get(0),
            category: r.get(1),
            counts: [r.get(2), r.get(3), r.get(4), r.get(5)],
        })
    }

    fn consent_timeline(&mut self, sink: &mut dyn FnMut(ConsentPoint)) -> Result<(), StorageError> {
        // Streamed through a portal: the fleet's consent records need not fit in memory.
        self.read(|tx| {
            let portal = tx.bind(CONSENT_TIMELINE, &[])?;
            loop {
                let rows = tx.query_portal(&portal, TIMELINE_CHUNK)?;
                if rows.is_empty() {
                    return Ok(());
                }
                for r in rows {
                    sink(ConsentPoint {
                        device: r.get(0),
                        category: r.get(1),
                        active: r.get(2),
                        state: r.get(3),
                        received_at_ms: r.get(4),
                    });
                }
            }
        })
    }

    fn gaps_by_reason(&mut self) -> Result<Vec<GapTotal>, StorageError> {
        self.list(GAPS_BY_REASON, &[], |r| GapTotal {
            reason: r.get(0),
            records: count(r.get(1)),
            events: unbits(r.get(2)),
        })
    }

    fn erasures_per_day(&mut self, since_ms: i64) -> Result<Vec<DayCount>, StorageError> {
        self.day_counts(ERASURES_PER_DAY, since_ms)
    }

    fn erasures(
        &mut self,
        device: Option<&Pseudonym>,
        limit: u32,
    ) -> Result<Vec<ErasureRow>, StorageError> {
        let limit = i64::from(limit);
        let map = |r: &Row| ErasureRow {
            device: r.get(0),
            categories: r.get(1),
            erased_events: unbits(r.get(2)),
            at_ms: r.get(3),
            operator: r.get(4),
        };
        match device.map(Pseudonym::as_str) {
            Some(d) => self.list(DEVICE_ERASURES, &[&d, &limit], map),
            None => self.list(LATEST_ERASURES, &[&limit], map),
        }
    }

    fn device(&mut self, device: &Pseudonym) -> Result<Option<DeviceRow>, StorageError> {
        let device = device.as_str();
        self.read(|tx| {
            Ok(tx.query_opt(DEVICE, &[&device])?.map(|r| DeviceRow {
                first_seen_ms: r.get(0),
                last_seen_ms: r.get(1),
                buffers: count(r.get(2)),
            }))
        })
    }

    fn categories_held(&mut self, device: &Pseudonym) -> Result<Vec<CategoryHeld>, StorageError> {
        self.list(CATEGORIES_HELD, &[&device.as_str()], |r| CategoryHeld {
            category: r.get(0),
            events: count(r.get(1)),
            first_received_ms: r.get(2),
            last_received_ms: r.get(3),
        })
    }

    fn latest_per_category(
        &mut self,
        device: &Pseudonym,
    ) -> Result<Vec<LatestEvent>, StorageError> {
        self.list(LATEST_PER_CATEGORY, &[&device.as_str()], |r| LatestEvent {
            category: r.get(0),
            kind: r.get(1),
            wall_time_ms: r.get(2),
            received_at_ms: r.get(3),
            payload_json: r.get(4),
        })
    }

    fn consent_history(
        &mut self,
        device: &Pseudonym,
        limit: u32,
    ) -> Result<Vec<ConsentRow>, StorageError> {
        let limit = i64::from(limit);
        self.list(CONSENT_HISTORY, &[&device.as_str(), &limit], |r| {
            ConsentRow {
                observed_at: r.get(0),
                category: r.get(1),
                active: r.get(2),
                state: r.get(3),
                by: r.get(4),
                at: r.get(5),
                policy_version: r.get(6),
                received_at_ms: r.get(7),
            }
        })
    }

    fn device_gaps(&mut self, device: &Pseudonym, limit: u32) -> Result<Vec<GapRow>, StorageError> {
        let limit = i64::from(limit);
        self.list(DEVICE_GAPS, &[&device.as_str(), &limit], |r| GapRow {
            first_seq: unbits(r.get(0)),
            last_seq: unbits(r.get(1)),
            count: unbits(r.get(2)),
            reason: r.get(3),
            category: r.get(4),
            received_at_ms: r.get(5),
        })
    }
}
