//! The SQLite [`Storage`]: one real file in WAL mode, `synchronous = FULL`, so an
//! acknowledged batch survives a power cut.
//!
//! u64 values that may exceed `i64::MAX` (buffer ids are random) are stored as the i64
//! with the same bits; seqs are checked to fit instead (see [`crate::storage::MAX_SEQ`]).

use crate::console::consent_rollup::{ConsentDeltas, ConsentStep};
use crate::console::sqlite as console_sqlite;
use crate::storage::{
    devices_query, fence_rows, is_fenced, plan_ingest, DeviceSummary, ExportLine, IngestOutcome,
    IngestPlan, Stats, Storage, StorageError,
};
use assent_platform::Category;
use assent_wire::{Batch, Erasure, ErasureRequest, Pseudonym, Record};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, Transaction};
use serde_json::json;
use std::path::Path;
use std::time::Duration;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS devices (
    pseudonym TEXT PRIMARY KEY,
    first_seen_ms INTEGER NOT NULL,
    last_seen_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS buffers (
    device TEXT NOT NULL REFERENCES devices(pseudonym),
    buffer_id INTEGER NOT NULL,
    high_water INTEGER NOT NULL,
    PRIMARY KEY (device, buffer_id)
);
CREATE TABLE IF NOT EXISTS events (
    device TEXT NOT NULL,
    buffer_id INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    category TEXT NOT NULL,
    kind TEXT NOT NULL,
    wall_time_ms INTEGER NOT NULL,
    boot_id TEXT NOT NULL,
    monotonic_ns INTEGER NOT NULL,
    payload_json TEXT NOT NULL,
    received_at_ms INTEGER NOT NULL,
    UNIQUE (device, buffer_id, seq)
);
CREATE INDEX IF NOT EXISTS events_received ON events (received_at_ms);
CREATE TABLE IF NOT EXISTS gaps (
    device TEXT NOT NULL,
    buffer_id INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    first_seq INTEGER NOT NULL,
    last_seq INTEGER NOT NULL,
    count INTEGER NOT NULL,
    reason TEXT NOT NULL,
    category TEXT,
    received_at_ms INTEGER NOT NULL,
    UNIQUE (device, buffer_id, seq)
);
CREATE INDEX IF NOT EXISTS gaps_received ON gaps (received_at_ms);
CREATE TABLE IF NOT EXISTS consent_records (
    device TEXT NOT NULL,
    buffer_id INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    observed_at TEXT NOT NULL,
    category TEXT NOT NULL,
    active INTEGER NOT NULL,
    state TEXT NOT NULL,
    by_whom TEXT,
    at TEXT,
    policy_version INTEGER NOT NULL,
    received_at_ms INTEGER NOT NULL,
    UNIQUE (device, buffer_id, seq)
);
CREATE TABLE IF NOT EXISTS erasure_fences (
    device TEXT NOT NULL,
    buffer_id INTEGER NOT NULL,
    category TEXT NOT NULL,
    last_seq INTEGER NOT NULL,
    PRIMARY KEY (device, buffer_id, category)
);
CREATE TABLE IF NOT EXISTS erasure_log (
    id INTEGER PRIMARY KEY,
    device TEXT NOT NULL,
    categories TEXT NOT NULL,
    erased_events INTEGER NOT NULL,
    at_ms INTEGER NOT NULL
);
";

/// Additions for the console (docs/operations.md): who erased (NULL for a device's own
/// request) and the indexes its pages read through. Applied after [`SCHEMA`]; the
/// column is added only when missing, so older files are upgraded in place.
const CONSOLE_SCHEMA: &str = "
CREATE INDEX IF NOT EXISTS erasure_log_device ON erasure_log (device, at_ms);
CREATE INDEX IF NOT EXISTS erasure_log_at ON erasure_log (at_ms);
CREATE INDEX IF NOT EXISTS consent_received
    ON consent_records (received_at_ms, device, buffer_id, seq);
CREATE TABLE IF NOT EXISTS daily_events (
    day INTEGER NOT NULL,
    category TEXT NOT NULL,
    events INTEGER NOT NULL,
    PRIMARY KEY (day, category)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS device_days (
    day INTEGER NOT NULL,
    device TEXT NOT NULL,
    PRIMARY KEY (day, device)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS daily_devices (
    day INTEGER PRIMARY KEY,
    devices INTEGER NOT NULL
);
";

/// A SQLite database file.
#[derive(Debug)]
pub struct SqliteStorage {
    conn: Connection,
    /// The operator the next erasure is logged under (the console's erase action).
    erasing_operator: Option<String>,
}

fn db(e: rusqlite::Error) -> StorageError {
    StorageError::Database(e.to_string())
}

/// The i64 with the same bits: SQLite integers are signed.
fn bits(v: u64) -> i64 {
    i64::from_ne_bytes(v.to_ne_bytes())
}

fn unbits(v: i64) -> u64 {
    u64::from_ne_bytes(v.to_ne_bytes())
}

impl SqliteStorage {
    /// Opens (creating when missing) the database for serving: WAL, FULL sync, schema.
    pub fn open(path: &Path) -> Result<SqliteStorage, StorageError> {
        let mut conn = Connection::open(path).map_err(db)?;
        conn.busy_timeout(Duration::from_secs(10)).map_err(db)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(db)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(db)?;
        conn.execute_batch(SCHEMA).map_err(db)?;
        add_console_schema(&conn).map_err(db)?;
        upgrade(&mut conn)?;
        Ok(SqliteStorage {
            conn,
            erasing_operator: None,
        })
    }

    /// Opens an existing database without writing to it (`export`, `stats`), alongside a
    /// running server.
    pub fn open_read_only(path: &Path) -> Result<SqliteStorage, StorageError> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(db)?;
        conn.busy_timeout(Duration::from_secs(10)).map_err(db)?;
        Ok(SqliteStorage {
            conn,
            erasing_operator: None,
        })
    }
}

/// The schema version this binary writes (`PRAGMA user_version`). 0: the tables above,
/// upgraded in place by `CREATE ... IF NOT EXISTS` and [`add_console_schema`]; 1: the
/// console's consent roll-up `daily_consent`, filled from the consent records already
/// held when an older file is opened.
pub const SCHEMA_VERSION: i64 = 1;

/// Brings a file made by an older collector to [`SCHEMA_VERSION`], in one transaction;
/// refuses one made by a newer collector.
fn upgrade(conn: &mut Connection) -> Result<(), StorageError> {
    let found: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(db)?;
    if found > SCHEMA_VERSION {
        return Err(StorageError::Database(format!(
            "the database schema is at version {found}, newer than this collector's \
             {SCHEMA_VERSION}: run the assent-collector that wrote it (or a newer one)"
        )));
    }
    if found < 1 {
        let tx = conn.transaction().map_err(db)?;
        tx.execute_batch(console_sqlite::CONSENT_ROLLUP_SCHEMA)
            .map_err(db)?;
        console_sqlite::rebuild_consent_rollup(&tx).map_err(db)?;
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)
            .map_err(db)?;
        tx.commit().map_err(db)?;
    }
    Ok(())
}

fn add_console_schema(conn: &Connection) -> Result<(), rusqlite::Error> {
    let has_operator: bool = conn.query_row(
        "SELECT COUNT(*) > 0 FROM pragma_table_info('erasure_log') WHERE name = 'operator'",
        [],
        |row| row.get(0),
    )?;
    if !has_operator {
        conn.execute_batch("ALTER TABLE erasure_log ADD COLUMN operator TEXT")?;
    }
    conn.execute_batch(CONSOLE_SCHEMA)
}

fn insert_record(
    tx: &Transaction<'_>,
    device: &str,
    buffer_id: i64,
    record: &Record,
    now: i64,
) -> Result<usize, rusqlite::Error> {
    match record {
        Record::Event(e) => tx
            .prepare_cached(
                "INSERT OR IGNORE INTO events (device, buffer_id, seq, category, kind, \
                 wall_time_ms, boot_id, monotonic_ns, payload_json, received_at_ms) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )?
            .execute(params![
                device,
                buffer_id,
                bits(e.seq),
                e.category.name(),
                e.kind,
                e.wall_time_ms,
                e.boot_id.to_hex(),
                i64::try_from(e.monotonic_ns).unwrap_or(i64::MAX),
                e.payload.to_json().to_string(),
                now
            ]),
        Record::Gap(g) => tx
            .prepare_cached(
                "INSERT OR IGNORE INTO gaps (device, buffer_id, seq, first_seq, last_seq, \
                 count, reason, category, received_at_ms) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?
            .execute(params![
                device,
                buffer_id,
                bits(g.seq),
                bits(g.first_seq),
                bits(g.last_seq),
                bits(g.count),
                json!(g.reason).as_str().unwrap_or("unknown"),
                g.category.map(Category::name),
                now
            ]),
        Record::Consent(c) => tx
            .prepare_cached(
                "INSERT OR IGNORE INTO consent_records (device, buffer_id, seq, observed_at, \
                 category, active, state, by_whom, at, policy_version, received_at_ms) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            )?
            .execute(params![
                device,
                buffer_id,
                bits(c.seq),
                c.observed_at,
                c.category.name(),
                c.active,
                c.state,
                c.by,
                c.at,
                c.policy_version,
                now
            ]),
    }
}

impl Storage for SqliteStorage {
    fn ingest(
        &mut self,
        batch: &Batch,
        received_at_ms: i64,
    ) -> Result<IngestOutcome, StorageError> {
        let device = batch.device.as_str();
        let buffer_id = bits(batch.buffer_id);
        let tx = self.conn.transaction().map_err(db)?;
        tx.execute(
            "INSERT INTO devices (pseudonym, first_seen_ms, last_seen_ms) VALUES (?1, ?2, ?2) \
             ON CONFLICT (pseudonym) DO UPDATE SET last_seen_ms = excluded.last_seen_ms",
            params![device, received_at_ms],
        )
        .map_err(db)?;
        let stored: Option<i64> = tx
            .query_row(
                "SELECT high_water FROM buffers WHERE device = ?1 AND buffer_id = ?2",
                params![device, buffer_id],
                |row| row.get(0),
            )
            .optional()
            .map_err(db)?;
        let stored = stored.map(unbits);
        let outcome = match plan_ingest(batch, stored)? {
            IngestPlan::Hole { high_water } => IngestOutcome {
                acked_through: high_water,
                stored_records: 0,
                hole: true,
            },
            IngestPlan::Store {
                records,
                new_high_water,
            } => {
                let fences: Vec<(String, u64)> = tx
                    .prepare_cached(
                        "SELECT category, last_seq FROM erasure_fences \
                         WHERE device = ?1 AND buffer_id = ?2",
                    )
                    .map_err(db)?
                    .query_map(params![device, buffer_id], |r| {
                        Ok((r.get(0)?, unbits(r.get(1)?)))
                    })
                    .map_err(db)?
                    .collect::<Result<_, _>>()
                    .map_err(db)?;
                let mut stored_records = 0u64;
                let mut daily = crate::console::sqlite::DailyCounts::default();
                // The device's consent records before this batch, when it brings some.
                let consent_before = records
                    .iter()
                    .any(|r| matches!(r, Record::Consent(_)))
                    .then(|| console_sqlite::device_consent_steps(&tx, device))
                    .transpose()
                    .map_err(db)?;
                let mut consent_added = Vec::new();
                for record in records.into_iter().filter(|r| !is_fenced(r, &fences)) {
                    let n = insert_record(&tx, device, buffer_id, record, received_at_ms)
                        .map_err(db)?;
                    stored_records += n as u64;
                    daily.add(record, n);
                    if let (Record::Consent(c), 1) = (record, n) {
                        consent_added.push(ConsentStep::of(c, batch.buffer_id, received_at_ms));
                    }
                }
                daily.commit_with(&tx, device, received_at_ms).map_err(db)?;
                if let Some(before) = consent_before {
                    let deltas = ConsentDeltas::for_ingest(before, consent_added);
                    console_sqlite::write_consent_deltas(&tx, &deltas).map_err(db)?;
                }
                tx.execute(
                    "INSERT INTO buffers (device, buffer_id, high_water) VALUES (?1, ?2, ?3) \
                     ON CONFLICT (device, buffer_id) DO UPDATE SET high_water = excluded.high_water",
                    params![device, buffer_id, bits(new_high_water)],
                )
                .map_err(db)?;
                IngestOutcome {
                    acked_through: new_high_water,
                    stored_records,
                    hole: false,
                }
            }
        };
        tx.commit().map_err(db)?;
        Ok(outcome)
    }

    fn erase(&mut self, request: &Erasure, at_ms: i64) -> Result<u64, StorageError> {
        let device = request.device.as_str();
        let tx = self.conn.transaction().map_err(db)?;
        for (buffer_id, category, last_seq) in fence_rows(request) {
            tx.execute(
                "INSERT INTO erasure_fences (device, buffer_id, category, last_seq) \
                 VALUES (?1, ?2, ?3, ?4) ON CONFLICT (device, buffer_id, category) \
                 DO UPDATE SET last_seq = max(last_seq, excluded.last_seq)",
                params![device, bits(buffer_id), category, bits(last_seq)],
            )
            .map_err(db)?;
        }
        let (erased, logged) = match &request.categories {
            None => {
                let n = tx
                    .execute("DELETE FROM events WHERE device = ?1", params![device])
                    .map_err(db)?;
                tx.execute("DELETE FROM gaps WHERE device = ?1", params![device])
                    .map_err(db)?;
                // The device leaves the consent chart, on every day it was in it.
                let mut gone = ConsentDeltas::default();
                gone.add_device(
                    console_sqlite::device_consent_steps(&tx, device).map_err(db)?,
                    -1,
                );
                console_sqlite::write_consent_deltas(&tx, &gone).map_err(db)?;
                tx.execute(
                    "DELETE FROM consent_records WHERE device = ?1",
                    params![device],
                )
                .map_err(db)?;
                tx.execute("DELETE FROM device_days WHERE device = ?1", params![device])
                    .map_err(db)?;
                (n as u64, "all".to_string())
            }
            Some(categories) => {
                let mut n = 0u64;
                for category in categories {
                    n += tx
                        .execute(
                            "DELETE FROM events WHERE device = ?1 AND category = ?2",
                            params![device, category.name()],
                        )
                        .map_err(db)? as u64;
                    // Gaps of an erased category say only that its events were lost;
                    // they go with it. Consent records stay: they are the legal basis.
                    tx.execute(
                        "DELETE FROM gaps WHERE device = ?1 AND category = ?2",
                        params![device, category.name()],
                    )
                    .map_err(db)?;
                }
                let names: Vec<&str> = categories.iter().map(|c| c.name()).collect();
                (n, names.join(","))
            }
        };
        tx.execute(
            "INSERT INTO erasure_log (device, categories, erased_events, at_ms, operator) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![device, logged, bits(erased), at_ms, self.erasing_operator],
        )
        .map_err(db)?;
        tx.commit().map_err(db)?;
        Ok(erased)
    }

    fn sweep_retention(&mut self, cutoff_ms: i64) -> Result<u64, StorageError> {
        let tx = self.conn.transaction().map_err(db)?;
        let events = tx
            .execute(
                "DELETE FROM events WHERE received_at_ms < ?1",
                params![cutoff_ms],
            )
            .map_err(db)?;
        let gaps = tx
            .execute(
                "DELETE FROM gaps WHERE received_at_ms < ?1",
                params![cutoff_ms],
            )
            .map_err(db)?;
        tx.execute(
            "DELETE FROM device_days WHERE day < ?1 / 86400000",
            params![cutoff_ms],
        )
        .map_err(db)?;
        tx.commit().map_err(db)?;
        Ok((events + gaps) as u64)
    }

    fn export(
        &mut self,
        device: &Pseudonym,
        category: Option<Category>,
        sink: &mut dyn FnMut(ExportLine) -> Result<(), StorageError>,
    ) -> Result<(), StorageError> {
        let device = device.as_str();
        let category = category.map(Category::name);
        let mut stmt = self
            .conn
            .prepare(
                "SELECT buffer_id, seq, category, kind, wall_time_ms, boot_id, monotonic_ns, \
                 payload_json, received_at_ms FROM events \
                 WHERE device = ?1 AND (?2 IS NULL OR category = ?2) ORDER BY buffer_id, seq",
            )
            .map_err(db)?;
        let mut rows = stmt.query(params![device, category]).map_err(db)?;
        while let Some(row) = rows.next().map_err(db)? {
            let payload_text: String = row.get(7).map_err(db)?;
            let payload: serde_json::Value =
                serde_json::from_str(&payload_text).unwrap_or(serde_json::Value::Null);
            sink(json!({
                "record": "event",
                "device": device,
                "buffer_id": unbits(row.get(0).map_err(db)?),
                "seq": row.get::<_, i64>(1).map_err(db)?,
                "category": row.get::<_, String>(2).map_err(db)?,
                "kind": row.get::<_, String>(3).map_err(db)?,
                "wall_time_ms": row.get::<_, i64>(4).map_err(db)?,
                "boot_id": row.get::<_, String>(5).map_err(db)?,
                "monotonic_ns": row.get::<_, i64>(6).map_err(db)?,
                "received_at_ms": row.get::<_, i64>(8).map_err(db)?,
                "payload": payload,
            }))?;
        }
        if category.is_some() {
            return Ok(());
        }
        let mut stmt = self
            .conn
            .prepare(
                "SELECT buffer_id, seq, first_seq, last_seq, count, reason, category, \
                 received_at_ms FROM gaps WHERE device = ?1 ORDER BY buffer_id, seq",
            )
            .map_err(db)?;
        let mut rows = stmt.query(params![device]).map_err(db)?;
        while let Some(row) = rows.next().map_err(db)? {
            sink(json!({
                "record": "gap",
                "device": device,
                "buffer_id": unbits(row.get(0).map_err(db)?),
                "seq": row.get::<_, i64>(1).map_err(db)?,
                "first_seq": unbits(row.get(2).map_err(db)?),
                "last_seq": unbits(row.get(3).map_err(db)?),
                "count": unbits(row.get(4).map_err(db)?),
                "reason": row.get::<_, String>(5).map_err(db)?,
                "category": row.get::<_, Option<String>>(6).map_err(db)?,
                "received_at_ms": row.get::<_, i64>(7).map_err(db)?,
            }))?;
        }
        let mut stmt = self
            .conn
            .prepare(
                "SELECT buffer_id, seq, observed_at, category, active, state, by_whom, at, \
                 policy_version, received_at_ms FROM consent_records WHERE device = ?1 \
                 ORDER BY buffer_id, seq",
            )
            .map_err(db)?;
        let mut rows = stmt.query(params![device]).map_err(db)?;
        while let Some(row) = rows.next().map_err(db)? {
            sink(json!({
                "record": "consent",
                "device": device,
                "buffer_id": unbits(row.get(0).map_err(db)?),
                "seq": row.get::<_, i64>(1).map_err(db)?,
                "observed_at": row.get::<_, String>(2).map_err(db)?,
                "category": row.get::<_, String>(3).map_err(db)?,
                "active": row.get::<_, bool>(4).map_err(db)?,
                "state": row.get::<_, String>(5).map_err(db)?,
                "by": row.get::<_, Option<String>>(6).map_err(db)?,
                "at": row.get::<_, Option<String>>(7).map_err(db)?,
                "policy_version": row.get::<_, i64>(8).map_err(db)?,
                "received_at_ms": row.get::<_, i64>(9).map_err(db)?,
            }))?;
        }
        Ok(())
    }

    fn stats(&mut self) -> Result<Stats, StorageError> {
        let count = |table: &str| -> Result<u64, StorageError> {
            self.conn
                .query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| {
                    r.get::<_, i64>(0)
                })
                .map(unbits)
                .map_err(db)
        };
        let mut stats = Stats {
            devices: count("devices")?,
            buffers: count("buffers")?,
            events: count("events")?,
            gaps: count("gaps")?,
            consent_records: count("consent_records")?,
            erasures: count("erasure_log")?,
            events_by_category: Default::default(),
        };
        let mut stmt = self
            .conn
            .prepare("SELECT category, COUNT(*) FROM events GROUP BY category")
            .map_err(db)?;
        let mut rows = stmt.query([]).map_err(db)?;
        while let Some(row) = rows.next().map_err(db)? {
            stats
                .events_by_category
                .insert(row.get(0).map_err(db)?, unbits(row.get(1).map_err(db)?));
        }
        Ok(stats)
    }

    fn devices(
        &mut self,
        only: Option<&Pseudonym>,
        sink: &mut dyn FnMut(DeviceSummary) -> Result<(), StorageError>,
    ) -> Result<(), StorageError> {
        let sql = devices_query(only.is_some());
        let mut stmt = self.conn.prepare(&sql).map_err(db)?;
        let mut rows = match only {
            Some(d) => stmt.query(params![d.as_str()]),
            None => stmt.query([]),
        }
        .map_err(db)?;
        while let Some(row) = rows.next().map_err(db)? {
            sink(DeviceSummary {
                device: row.get(0).map_err(db)?,
                first_seen_ms: row.get(1).map_err(db)?,
                last_seen_ms: row.get(2).map_err(db)?,
                events: unbits(row.get(3).map_err(db)?),
                consent_records: unbits(row.get(4).map_err(db)?),
                gaps: unbits(row.get(5).map_err(db)?),
                erasures: unbits(row.get(6).map_err(db)?),
            })?;
        }
        Ok(())
    }

    fn erase_by_operator(
        &mut self,
        request: &ErasureRequest,
        at_ms: i64,
        operator: &str,
    ) -> Result<u64, StorageError> {
        self.erasing_operator = Some(operator.to_string());
        let result = self.erase(&Erasure::from(request.clone()), at_ms);
        self.erasing_operator = None;
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use assent_wire::{
        AppEvent, BootId, ConsentChange, Event, Gap, GapReason, Payload, PROTOCOL_VERSION,
    };
    use std::collections::BTreeMap;

    fn device() -> Pseudonym {
        Pseudonym::parse("abcdefghijklmnopqrstuvwxyz").unwrap()
    }

    fn event(seq: u64, category: Category) -> Record {
        let payload = match category {
            Category::DeviceId => Payload::DeviceId(assent_wire::DeviceIdentity {
                pseudonym: device(),
                derivation: assent_wire::Derivation::InstallId,
                sources: vec![],
            }),
            _ => Payload::AppEvent(AppEvent {
                name: format!("e{seq}"),
                attrs: BTreeMap::new(),
            }),
        };
        Record::Event(Event {
            seq,
            category,
            kind: "k".into(),
            wall_time_ms: 1,
            boot_id: BootId([1; 16]),
            monotonic_ns: 2,
            payload,
        })
    }

    fn batch(buffer_id: u64, first: u64, last: u64, records: Vec<Record>) -> Batch {
        Batch {
            version: PROTOCOL_VERSION,
            device: device(),
            buffer_id,
            first_seq: first,
            last_seq: last,
            records,
        }
    }

    fn lines(s: &mut SqliteStorage, category: Option<Category>) -> Vec<serde_json::Value> {
        let mut out = Vec::new();
        s.export(&device(), category, &mut |l| {
            out.push(l);
            Ok(())
        })
        .unwrap();
        out
    }

    #[test]
    fn ingest_dedup_erase_and_retention() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = SqliteStorage::open(&dir.path().join("c.db")).unwrap();
        let big_buffer = u64::MAX - 3;
        let b1 = batch(
            big_buffer,
            1,
            3,
            vec![
                event(1, Category::AppEvents),
                Record::Gap(Gap {
                    seq: 2,
                    first_seq: 2,
                    last_seq: 2,
                    count: 0,
                    reason: GapReason::Evicted,
                    category: Some(Category::AppEvents),
                }),
                Record::Consent(ConsentChange {
                    seq: 3,
                    observed_at: "2026-01-01T00:00:00Z".into(),
                    category: Category::AppEvents,
                    active: true,
                    state: "granted".into(),
                    by: None,
                    at: None,
                    policy_version: 1,
                }),
            ],
        );
        let o = s.ingest(&b1, 1000).unwrap();
        assert_eq!((o.acked_through, o.stored_records, o.hole), (3, 3, false));
        // The same batch again stores nothing.
        assert_eq!(s.ingest(&b1, 1000).unwrap().stored_records, 0);
        // A hole.
        let o = s
            .ingest(
                &batch(big_buffer, 9, 9, vec![event(9, Category::AppEvents)]),
                1,
            )
            .unwrap();
        assert_eq!((o.acked_through, o.hole), (3, true));
        let b2 = batch(
            big_buffer,
            2,
            5,
            vec![event(4, Category::DeviceId), event(5, Category::AppEvents)],
        );
        assert_eq!(s.ingest(&b2, 2000).unwrap().acked_through, 5);
        let all = lines(&mut s, None);
        assert_eq!(all.len(), 5);
        assert_eq!(all[0]["buffer_id"], json!(big_buffer));
        assert_eq!(lines(&mut s, Some(Category::DeviceId)).len(), 1);

        // Erasing one category keeps consent records.
        let req = assent_wire::ErasureRequest {
            version: PROTOCOL_VERSION,
            device: device(),
            categories: Some(vec![Category::AppEvents]),
        };
        assert_eq!(s.erase(&req.into(), 3000).unwrap(), 2);
        let left = lines(&mut s, None);
        assert_eq!(left.len(), 2, "{left:?}");
        // A resent old batch does not bring erased events back.
        assert_eq!(s.ingest(&b2, 4000).unwrap().stored_records, 0);
        assert_eq!(lines(&mut s, None).len(), 2);

        // Retention removes events received before the cutoff.
        assert_eq!(s.sweep_retention(2001).unwrap(), 1);
        let st = s.stats().unwrap();
        assert_eq!((st.events, st.consent_records, st.erasures), (0, 1, 1));

        let req = assent_wire::ErasureRequest {
            version: PROTOCOL_VERSION,
            device: device(),
            categories: None,
        };
        assert_eq!(s.erase(&req.into(), 5000).unwrap(), 0);
        assert!(lines(&mut s, None).is_empty());
        assert_eq!(s.stats().unwrap().erasures, 2);
    }
}
