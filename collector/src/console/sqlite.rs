//! [`ConsoleQueries`] on the SQLite database, through a read-only connection of its own
//! (WAL lets it read while the writer commits).
//!
//! Indexes used: the primary keys of the roll-ups `daily_events` and `daily_devices`
//! (per-day counts over a window, see [`DailyCounts`]), the `UNIQUE (device,
//! buffer_id, seq)` indexes of `events`, `gaps` and `consent_records` (a device's
//! rows), `consent_received` (the timeline in received order), `erasure_log_device` and
//! `erasure_log_at` (erasures); `gaps_by_reason` and `totals` scan their tables.

use super::consent_rollup::{ByDevice, ConsentDeltas, ConsentStep};
use super::queries::{
    CategoryHeld, ConsentDay, ConsentPoint, ConsentRow, ConsoleQueries, DayCount, DeviceRow,
    ErasureRow, GapRow, GapTotal, LatestEvent, Totals,
};
use crate::storage::StorageError;
use assent_wire::Pseudonym;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, Row};
use std::path::Path;
use std::time::Duration;

const DAY_MS: i64 = 86_400_000;

/// The console's daily roll-ups, written by the ingest transaction (in
/// [`crate::sqlite`]): events received per day and category (`daily_events`), and
/// devices that sent a batch per day (`daily_devices`, deduplicated through
/// `device_days`). They count what arrived, so erasure and retention do not lower them;
/// `device_days` rows go with a device's full erasure and with retention.
#[derive(Debug, Default)]
pub struct DailyCounts {
    /// (category, events newly stored) in this batch.
    events: Vec<(&'static str, i64)>,
}

impl DailyCounts {
    /// Counts `record` if its insert stored it (`inserted` rows).
    pub fn add(&mut self, record: &assent_wire::Record, inserted: usize) {
        if let (assent_wire::Record::Event(e), 1) = (record, inserted) {
            let name = e.category.name();
            match self.events.iter_mut().find(|(c, _)| *c == name) {
                Some((_, n)) => *n += 1,
                None => self.events.push((name, 1)),
            }
        }
    }

    /// Adds the counts of one stored batch of `device`, inside its transaction.
    pub fn commit_with(
        &self,
        tx: &rusqlite::Transaction<'_>,
        device: &str,
        received_at_ms: i64,
    ) -> Result<(), rusqlite::Error> {
        let day = received_at_ms.div_euclid(DAY_MS);
        for (category, n) in &self.events {
            tx.prepare_cached(
                "INSERT INTO daily_events (day, category, events) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (day, category) DO UPDATE SET events = events + excluded.events",
            )?
            .execute(params![day, category, n])?;
        }
        let first_today = tx
            .prepare_cached("INSERT OR IGNORE INTO device_days (day, device) VALUES (?1, ?2)")?
            .execute(params![day, device])?;
        if first_today == 1 {
            tx.prepare_cached(
                "INSERT INTO daily_devices (day, devices) VALUES (?1, 1) \
                 ON CONFLICT (day) DO UPDATE SET devices = devices + 1",
            )?
            .execute(params![day])?;
        }
        Ok(())
    }
}

/// The consent roll-up (see [`super::consent_rollup`]), added by the upgrade to schema
/// version 1 in [`crate::sqlite`]; rows are changes per (day, category), summed when read.
pub const CONSENT_ROLLUP_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS daily_consent (
    day INTEGER NOT NULL,
    category TEXT NOT NULL,
    granted INTEGER NOT NULL,
    refused INTEGER NOT NULL,
    withdrawn INTEGER NOT NULL,
    not_granted INTEGER NOT NULL,
    PRIMARY KEY (day, category)
) WITHOUT ROWID;
";

/// The device's consent records, read through the `(device, buffer_id, seq)` index.
pub fn device_consent_steps(
    conn: &Connection,
    device: &str,
) -> Result<Vec<ConsentStep>, rusqlite::Error> {
    let mut stmt = conn.prepare_cached(
        "SELECT category, received_at_ms, buffer_id, seq, active, state FROM consent_records \
         WHERE device = ?1",
    )?;
    let rows = stmt.query_map(params![device], consent_step)?;
    rows.collect()
}

fn consent_step(r: &Row<'_>) -> Result<ConsentStep, rusqlite::Error> {
    Ok(ConsentStep {
        category: r.get(0)?,
        received_at_ms: r.get(1)?,
        buffer_id: r.get(2)?,
        seq: r.get(3)?,
        active: r.get(4)?,
        state: r.get(5)?,
    })
}

/// Adds `deltas` to `daily_consent`, inside the caller's transaction.
pub fn write_consent_deltas(
    conn: &Connection,
    deltas: &ConsentDeltas,
) -> Result<(), rusqlite::Error> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO daily_consent (day, category, granted, refused, withdrawn, not_granted) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (day, category) DO UPDATE SET \
         granted = granted + excluded.granted, refused = refused + excluded.refused, \
         withdrawn = withdrawn + excluded.withdrawn, \
         not_granted = not_granted + excluded.not_granted",
    )?;
    for (day, category, [g, r, w, n]) in deltas.rows() {
        stmt.execute(params![day, category, g, r, w, n])?;
    }
    Ok(())
}

/// Fills `daily_consent` anew from every consent record, one device at a time (an older
/// database's upgrade, and the bench's bulk fill).
pub fn rebuild_consent_rollup(conn: &Connection) -> Result<(), rusqlite::Error> {
    conn.execute("DELETE FROM daily_consent", [])?;
    let mut stmt = conn.prepare(
        "SELECT category, received_at_ms, buffer_id, seq, active, state, device \
         FROM consent_records ORDER BY device",
    )?;
    let mut rows = stmt.query([])?;
    let mut all = ByDevice::default();
    while let Some(r) = rows.next()? {
        all.push(r.get(6)?, consent_step(r)?);
    }
    write_consent_deltas(conn, &all.finish())
}

/// The console's read connection.
#[derive(Debug)]
pub struct SqliteConsoleQueries {
    conn: Connection,
}

fn db(e: rusqlite::Error) -> StorageError {
    StorageError::Database(e.to_string())
}

fn count(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// SQLite integers are signed; seqs and counts are stored as the i64 with the same bits.
fn unbits(v: i64) -> u64 {
    u64::from_ne_bytes(v.to_ne_bytes())
}

impl SqliteConsoleQueries {
    /// Opens the database read-only. The server opens it after the writer has created
    /// the schema.
    pub fn open(path: &Path) -> Result<SqliteConsoleQueries, StorageError> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(db)?;
        conn.busy_timeout(Duration::from_secs(10)).map_err(db)?;
        Ok(SqliteConsoleQueries { conn })
    }

    fn day_counts(&self, sql: &str, since_ms: i64) -> Result<Vec<DayCount>, StorageError> {
        let mut stmt = self.conn.prepare_cached(sql).map_err(db)?;
        let rows = stmt
            .query_map(params![since_ms, DAY_MS], |r| {
                Ok(DayCount {
                    day: r.get(0)?,
                    key: r.get(1)?,
                    count: count(r.get(2)?),
                })
            })
            .map_err(db)?;
        rows.collect::<Result<_, _>>().map_err(db)
    }

    fn list<T>(
        &self,
        sql: &str,
        params: &[&dyn rusqlite::ToSql],
        map: impl FnMut(&Row<'_>) -> Result<T, rusqlite::Error>,
    ) -> Result<Vec<T>, StorageError> {
        let mut stmt = self.conn.prepare_cached(sql).map_err(db)?;
        let rows = stmt.query_map(params, map).map_err(db)?;
        rows.collect::<Result<_, _>>().map_err(db)
    }
}

// The queries, named so the test below can check their plans.
const TOTALS: &str = "SELECT (SELECT COUNT(*) FROM devices), (SELECT COUNT(*) FROM events), \
                 (SELECT COUNT(*) FROM gaps), (SELECT COUNT(*) FROM erasure_log)";
const DEVICES_PER_DAY: &str =
    "SELECT day, '', devices FROM daily_devices WHERE day >= ?1 / ?2 ORDER BY day";
const EVENTS_PER_DAY: &str = "SELECT day, category, events FROM daily_events WHERE day >= ?1 / ?2 \
             ORDER BY day, category";
const CONSENT_DAYS: &str =
    "SELECT max(day, ?1 - 1) AS d, category, SUM(granted), SUM(refused), SUM(withdrawn), \
     SUM(not_granted) FROM daily_consent WHERE day <= ?2 GROUP BY d, category \
     ORDER BY d, category";
const CONSENT_TIMELINE: &str =
    "SELECT device, category, active, state, received_at_ms FROM consent_records \
                 ORDER BY received_at_ms, device, buffer_id, seq";
const GAPS_BY_REASON: &str =
    "SELECT reason, COUNT(*), SUM(count) FROM gaps GROUP BY reason ORDER BY reason";
const ERASURES_PER_DAY: &str =
    "SELECT at_ms / ?2 AS day, 'events', SUM(erased_events) FROM erasure_log \
             WHERE at_ms >= ?1 GROUP BY day \
             UNION ALL \
             SELECT at_ms / ?2 AS day, 'erasures', COUNT(*) FROM erasure_log \
             WHERE at_ms >= ?1 GROUP BY day ORDER BY 1, 2";
const DEVICE_ERASURES: &str =
    "SELECT device, categories, erased_events, at_ms, operator FROM erasure_log \
                 WHERE device = ?1 ORDER BY at_ms DESC, id DESC LIMIT ?2";
const LATEST_ERASURES: &str =
    "SELECT device, categories, erased_events, at_ms, operator FROM erasure_log \
                 ORDER BY at_ms DESC, id DESC LIMIT ?1";
const DEVICE: &str = "SELECT first_seen_ms, last_seen_ms, \
                 (SELECT COUNT(*) FROM buffers WHERE device = ?1) \
                 FROM devices WHERE pseudonym = ?1";
const CATEGORIES_HELD: &str =
    "SELECT category, COUNT(*), MIN(received_at_ms), MAX(received_at_ms) FROM events \
             WHERE device = ?1 GROUP BY category ORDER BY category";
const LATEST_PER_CATEGORY: &str =
    "SELECT category, kind, wall_time_ms, received_at_ms, payload_json FROM events \
             WHERE rowid IN (SELECT MAX(rowid) FROM events WHERE device = ?1 \
             GROUP BY category) ORDER BY category";
const CONSENT_HISTORY: &str =
    "SELECT observed_at, category, active, state, by_whom, at, policy_version, \
             received_at_ms FROM consent_records WHERE device = ?1 \
             ORDER BY received_at_ms DESC, buffer_id DESC, seq DESC LIMIT ?2";
const DEVICE_GAPS: &str =
    "SELECT first_seq, last_seq, count, reason, category, received_at_ms FROM gaps \
             WHERE device = ?1 ORDER BY received_at_ms DESC, buffer_id DESC, seq DESC \
             LIMIT ?2";

impl ConsoleQueries for SqliteConsoleQueries {
    fn totals(&mut self) -> Result<Totals, StorageError> {
        self.conn
            .query_row(TOTALS, [], |r| {
                Ok(Totals {
                    devices: count(r.get(0)?),
                    events: count(r.get(1)?),
                    gaps: count(r.get(2)?),
                    erasures: count(r.get(3)?),
                })
            })
            .map_err(db)
    }

    fn devices_per_day(&mut self, since_ms: i64) -> Result<Vec<DayCount>, StorageError> {
        self.day_counts(DEVICES_PER_DAY, since_ms)
    }

    fn events_per_day(&mut self, since_ms: i64) -> Result<Vec<DayCount>, StorageError> {
        self.day_counts(EVENTS_PER_DAY, since_ms)
    }

    fn consent_days(
        &mut self,
        first_day: i64,
        today: i64,
    ) -> Result<Vec<ConsentDay>, StorageError> {
        self.list(CONSENT_DAYS, &[&first_day, &today], |r| {
            Ok(ConsentDay {
                day: r.get(0)?,
                category: r.get(1)?,
                counts: [r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?],
            })
        })
    }

    fn consent_timeline(&mut self, sink: &mut dyn FnMut(ConsentPoint)) -> Result<(), StorageError> {
        let mut stmt = self.conn.prepare_cached(CONSENT_TIMELINE).map_err(db)?;
        let mut rows = stmt.query([]).map_err(db)?;
        while let Some(r) = rows.next().map_err(db)? {
            sink(ConsentPoint {
                device: r.get(0).map_err(db)?,
                category: r.get(1).map_err(db)?,
                active: r.get(2).map_err(db)?,
                state: r.get(3).map_err(db)?,
                received_at_ms: r.get(4).map_err(db)?,
            });
        }
        Ok(())
    }

    fn gaps_by_reason(&mut self) -> Result<Vec<GapTotal>, StorageError> {
        self.list(GAPS_BY_REASON, &[], |r| {
            Ok(GapTotal {
                reason: r.get(0)?,
                records: count(r.get(1)?),
                events: unbits(r.get::<_, Option<i64>>(2)?.unwrap_or(0)),
            })
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
        let device = device.map(Pseudonym::as_str);
        let map = |r: &Row<'_>| {
            Ok(ErasureRow {
                device: r.get(0)?,
                categories: r.get(1)?,
                erased_events: unbits(r.get(2)?),
                at_ms: r.get(3)?,
                operator: r.get(4)?,
            })
        };
        match device {
            Some(d) => self.list(DEVICE_ERASURES, &[&d, &limit], map),
            None => self.list(LATEST_ERASURES, &[&limit], map),
        }
    }

    fn device(&mut self, device: &Pseudonym) -> Result<Option<DeviceRow>, StorageError> {
        self.conn
            .query_row(DEVICE, params![device.as_str()], |r| {
                Ok(DeviceRow {
                    first_seen_ms: r.get(0)?,
                    last_seen_ms: r.get(1)?,
                    buffers: count(r.get(2)?),
                })
            })
            .optional()
            .map_err(db)
    }

    fn categories_held(&mut self, device: &Pseudonym) -> Result<Vec<CategoryHeld>, StorageError> {
        self.list(CATEGORIES_HELD, &[&device.as_str()], |r| {
            Ok(CategoryHeld {
                category: r.get(0)?,
                events: count(r.get(1)?),
                first_received_ms: r.get(2)?,
                last_received_ms: r.get(3)?,
            })
        })
    }

    fn latest_per_category(
        &mut self,
        device: &Pseudonym,
    ) -> Result<Vec<LatestEvent>, StorageError> {
        // rowid grows with insertion, so the largest per category is the newest received.
        self.list(LATEST_PER_CATEGORY, &[&device.as_str()], |r| {
            Ok(LatestEvent {
                category: r.get(0)?,
                kind: r.get(1)?,
                wall_time_ms: r.get(2)?,
                received_at_ms: r.get(3)?,
                payload_json: r.get(4)?,
            })
        })
    }

    fn consent_history(
        &mut self,
        device: &Pseudonym,
        limit: u32,
    ) -> Result<Vec<ConsentRow>, StorageError> {
        self.list(CONSENT_HISTORY, &[&device.as_str(), &limit], |r| {
            Ok(ConsentRow {
                observed_at: r.get(0)?,
                category: r.get(1)?,
                active: r.get(2)?,
                state: r.get(3)?,
                by: r.get(4)?,
                at: r.get(5)?,
                policy_version: r.get(6)?,
                received_at_ms: r.get(7)?,
            })
        })
    }

    fn device_gaps(&mut self, device: &Pseudonym, limit: u32) -> Result<Vec<GapRow>, StorageError> {
        self.list(DEVICE_GAPS, &[&device.as_str(), &limit], |r| {
            Ok(GapRow {
                first_seq: unbits(r.get(0)?),
                last_seq: unbits(r.get(1)?),
                count: unbits(r.get(2)?),
                reason: r.get(3)?,
                category: r.get(4)?,
                received_at_ms: r.get(5)?,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every query a device page makes, and the overview's over the roll-ups and the
    /// erasure log, reads through an index: SQLite's own counters say no step of it was
    /// a full-table scan and it built no automatic index. (The workspace's SQLite is
    /// built without EXPLAIN, so the plans cannot be printed.)
    #[test]
    fn queries_use_indexes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.db");
        drop(crate::sqlite::SqliteStorage::open(&path).unwrap());
        let conn = Connection::open(&path).unwrap();
        for device in ["1", "other-a", "other-b"] {
            conn.execute_batch(&format!(
                "INSERT INTO devices VALUES ('{device}', 1, 1);
                 INSERT INTO buffers VALUES ('{device}', 1, 3);
                 INSERT INTO events VALUES ('{device}', 1, 1, 'os', 'k', 1, 'b', 1, '{{}}', 1);
                 INSERT INTO events VALUES ('{device}', 1, 2, 'os', 'k', 1, 'b', 1, '{{}}', 2);
                 INSERT INTO gaps VALUES ('{device}', 1, 3, 3, 3, 1, 'evicted', NULL, 1);
                 INSERT INTO consent_records VALUES ('{device}', 1, 4, 'x', 'os', 1, 'active',
                     NULL, NULL, 1, 1);
                 INSERT INTO erasure_log (device, categories, erased_events, at_ms)
                     VALUES ('{device}', 'all', 1, 1);"
            ))
            .unwrap();
        }
        conn.execute_batch(
            "INSERT INTO daily_events VALUES (0, 'os', 6), (1, 'os', 1);
             INSERT INTO daily_devices VALUES (0, 3), (1, 1);
             INSERT INTO daily_consent VALUES (0, 'os', 3, 0, 0, 0), (1, 'os', -1, 0, 1, 0);",
        )
        .unwrap();
        // Counting all rows and grouping all gaps read whole tables by nature (a b-tree
        // count, and gaps are few).
        for (name, sql) in [
            ("devices per day", DEVICES_PER_DAY),
            ("events per day", EVENTS_PER_DAY),
            ("consent days", CONSENT_DAYS),
            ("consent timeline", CONSENT_TIMELINE),
            ("erasures per day", ERASURES_PER_DAY),
            ("device erasures", DEVICE_ERASURES),
            ("latest erasures", LATEST_ERASURES),
            ("device", DEVICE),
            ("categories held", CATEGORIES_HELD),
            ("latest per category", LATEST_PER_CATEGORY),
            ("consent history", CONSENT_HISTORY),
            ("device gaps", DEVICE_GAPS),
        ] {
            let mut stmt = conn.prepare(sql).unwrap();
            let n = stmt.parameter_count();
            let params: Vec<i64> = vec![1; n];
            let mut rows = stmt.query(rusqlite::params_from_iter(params)).unwrap();
            while rows.next().unwrap().is_some() {}
            drop(rows);
            let scans = stmt.get_status(rusqlite::StatementStatus::FullscanStep);
            let auto = stmt.get_status(rusqlite::StatementStatus::AutoIndex);
            let sorts = stmt.get_status(rusqlite::StatementStatus::Sort);
            // The timeline reads every record by design, in the index's order.
            let scans = if name == "consent timeline" { 0 } else { scans };
            assert!(
                scans == 0 && auto == 0 && (sorts == 0 || name != "consent timeline"),
                "{name}: {scans} full-scan steps, {auto} automatic indexes, {sorts} sorts\n{sql}"
            );
        }
    }
}
