//! The PostgreSQL [`Storage`], for a fleet: several collector replicas on one database.
//!
//! Each writer thread owns one [`PgStorage`] and so one connection (the sync `postgres`
//! client runs a private current-thread runtime only inside each call). Exactly once
//! across replicas rests on row locks, not on unique keys: an ingest first upserts the
//! device's row and then the (device, buffer) row with its high-water, both locked until
//! commit, so two replicas with overlapping batches of one device take turns, and the
//! second sees the first's high-water. An erasure locks the device's row first, so it
//! waits for an ingest in flight and deletes what that ingest committed.
//!
//! Events and gaps are partitioned by day of `received_at_ms`; [`PgStorage::sweep_retention`]
//! creates partitions ahead, drops whole partitions past the cutoff and deletes rows only
//! in the boundary partition (and the default partition, which catches rows outside
//! every day partition: imports of old data, or a clock far off).
//!
//! A lost connection is reopened on the next call, no sooner than a backoff that doubles
//! from 100 ms to 5 s; calls in between fail at once (the client gets 500 and retries).
//! Every key and index starts with the device pseudonym, so the schema distributes by
//! `device` on a sharded PostgreSQL (docs/fleet.md).

use crate::config::{PgTarget, PgTls, PgWriteMethod};
use crate::storage::{
    devices_query, fence_rows, is_fenced, plan_ingest, DeviceSummary, ExportLine, IngestOutcome,
    IngestPlan, Stats, Storage, StorageError, MAX_SEQ,
};
use assent_platform::Category;
use assent_wire::{Batch, Erasure, ErasureRequest, Pseudonym, Record};
use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::{Json, ToSql, Type};
use postgres::{Client, NoTls, Transaction};
use serde_json::json;
use std::time::{Duration, Instant};

/// The schema, one migration per entry; the version of a database is the number of
/// entries applied. Never edit an entry once released: add one.
pub const MIGRATIONS: &[&str] = &[
    // 1: the tables of the SQLite schema, keyed by device first; events and gaps
    // partitioned by received time with a default partition.
    "
CREATE TABLE devices (
    pseudonym TEXT PRIMARY KEY,
    first_seen_ms BIGINT NOT NULL,
    last_seen_ms BIGINT NOT NULL
);
CREATE TABLE buffers (
    device TEXT NOT NULL,
    buffer_id BIGINT NOT NULL,
    high_water BIGINT,
    PRIMARY KEY (device, buffer_id)
);
CREATE TABLE events (
    device TEXT NOT NULL,
    buffer_id BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    category TEXT NOT NULL,
    kind TEXT NOT NULL,
    wall_time_ms BIGINT NOT NULL,
    boot_id TEXT NOT NULL,
    monotonic_ns BIGINT NOT NULL,
    payload JSONB NOT NULL,
    received_at_ms BIGINT NOT NULL,
    PRIMARY KEY (device, buffer_id, seq, received_at_ms)
) PARTITION BY RANGE (received_at_ms);
CREATE TABLE events_default PARTITION OF events DEFAULT;
CREATE INDEX events_device_category ON events (device, category);
CREATE TABLE gaps (
    device TEXT NOT NULL,
    buffer_id BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    first_seq BIGINT NOT NULL,
    last_seq BIGINT NOT NULL,
    count BIGINT NOT NULL,
    reason TEXT NOT NULL,
    category TEXT,
    received_at_ms BIGINT NOT NULL,
    PRIMARY KEY (device, buffer_id, seq, received_at_ms)
) PARTITION BY RANGE (received_at_ms);
CREATE TABLE gaps_default PARTITION OF gaps DEFAULT;
CREATE TABLE consent_records (
    device TEXT NOT NULL,
    buffer_id BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    observed_at TEXT NOT NULL,
    category TEXT NOT NULL,
    active BOOLEAN NOT NULL,
    state TEXT NOT NULL,
    by_whom TEXT,
    at TEXT,
    policy_version BIGINT NOT NULL,
    received_at_ms BIGINT NOT NULL,
    PRIMARY KEY (device, buffer_id, seq)
);
CREATE TABLE erasure_log (
    device TEXT NOT NULL,
    id BIGINT GENERATED ALWAYS AS IDENTITY,
    categories TEXT NOT NULL,
    erased_events BIGINT NOT NULL,
    at_ms BIGINT NOT NULL,
    PRIMARY KEY (device, id)
);
",
    // 2: erasure fences (protocol v2): per (device, buffer, category or '*'), the last
    // seq the agent had assigned when it purged.
    "
CREATE TABLE erasure_fences (
    device TEXT NOT NULL,
    buffer_id BIGINT NOT NULL,
    category TEXT NOT NULL,
    last_seq BIGINT NOT NULL,
    PRIMARY KEY (device, buffer_id, category)
);
",
    // 3: the console (docs/operations.md): who erased (NULL when the device asked), the
    // indexes its pages read through, and the daily roll-ups the ingest transaction
    // writes. daily_events and daily_devices are spread over ROLLUP_SHARDS rows per day
    // (summed when read) so that K writers do not all queue on one hot row; they carry
    // no device, so on a sharded PostgreSQL they are reference or local tables
    // (docs/fleet.md); device_days is keyed by device.
    "
ALTER TABLE erasure_log ADD COLUMN operator TEXT;
CREATE INDEX erasure_log_device_at ON erasure_log (device, at_ms);
CREATE INDEX erasure_log_at ON erasure_log (at_ms);
CREATE INDEX consent_received ON consent_records (received_at_ms, device, buffer_id, seq);
CREATE TABLE daily_events (
    day BIGINT NOT NULL,
    category TEXT NOT NULL,
    shard SMALLINT NOT NULL,
    events BIGINT NOT NULL,
    PRIMARY KEY (day, category, shard)
);
CREATE TABLE device_days (
    device TEXT NOT NULL,
    day BIGINT NOT NULL,
    PRIMARY KEY (device, day)
);
CREATE INDEX device_days_day ON device_days (day, device);
CREATE TABLE daily_devices (
    day BIGINT NOT NULL,
    shard SMALLINT NOT NULL,
    devices BIGINT NOT NULL,
    PRIMARY KEY (day, shard)
);
",
    // 4: the console's consent roll-up (crate::console::consent_rollup): changes to the
    // fleet's consent state per (day, category), over ROLLUP_SHARDS rows like
    // daily_events. `migrate` fills it from the consent records already held.
    "
CREATE TABLE daily_consent (
    day BIGINT NOT NULL,
    category TEXT NOT NULL,
    shard SMALLINT NOT NULL,
    granted BIGINT NOT NULL,
    refused BIGINT NOT NULL,
    withdrawn BIGINT NOT NULL,
    not_granted BIGINT NOT NULL,
    PRIMARY KEY (day, category, shard)
);
",
];

/// The migration that adds `daily_consent`, which `migrate` then fills.
const CONSENT_ROLLUP_MIGRATION: u32 = 4;

/// Rows per day of `daily_events` (per category) and `daily_devices`: a writer adds to
/// the row of its own shard, so concurrent ingest transactions rarely wait on each other.
pub const ROLLUP_SHARDS: i16 = 8;

/// The schema version this binary runs on.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// Day partitions kept ready ahead of today, so ingest never waits on DDL.
const PARTITION_DAYS_AHEAD: i64 = 7;

pub(crate) const DAY_MS: i64 = 86_400_000;

/// Most batches one transaction carries (group commit).
pub const MAX_GROUP: usize = 64;

const BACKOFF_START: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

pub(crate) fn db(e: postgres::Error) -> StorageError {
    // The driver's Display hides the server's message; `as_db_error` has it.
    match e.as_db_error() {
        Some(d) => StorageError::Database(format!("{}: {}", d.code().code(), d.message())),
        None => {
            // The cause (a TLS or I/O error) is in the source chain, not in Display.
            let mut text = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(cause) = source {
                text.push_str(&format!(": {cause}"));
                source = cause.source();
            }
            StorageError::Database(text)
        }
    }
}

/// The i64 with the same bits: buffer ids are random u64s.
fn bits(v: u64) -> i64 {
    i64::from_ne_bytes(v.to_ne_bytes())
}

pub(crate) fn unbits(v: i64) -> u64 {
    u64::from_ne_bytes(v.to_ne_bytes())
}

/// Opens one connection to `target`: password from its file, TLS as configured.
pub fn connect(target: &PgTarget) -> Result<Client, StorageError> {
    let mut config: postgres::Config = target
        .driver_url
        .parse()
        .map_err(|e| StorageError::Database(format!("invalid database URL: {e}")))?;
    config.application_name("assent-collector");
    config.connect_timeout(Duration::from_secs(10));
    if let Some(path) = &target.password_file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| StorageError::Database(format!("cannot read {}: {e}", path.display())))?;
        config.password(text.lines().next().unwrap_or("").as_bytes());
    }
    let opened = match target.tls {
        PgTls::Disable => {
            config.ssl_mode(postgres::config::SslMode::Disable);
            config.connect(NoTls)
        }
        PgTls::VerifyFull => {
            config.ssl_mode(postgres::config::SslMode::Require);
            config.connect(tls_connector(target)?)
        }
    };
    opened
        .map_err(|e| StorageError::Database(format!("cannot connect to {}: {}", target.url, db(e))))
}

fn tls_connector(
    target: &PgTarget,
) -> Result<tokio_postgres_rustls::MakeRustlsConnect, StorageError> {
    let ca = target.ca_file.as_ref().ok_or_else(|| {
        StorageError::Database("sslmode=verify-full needs database_ca_file".into())
    })?;
    let pem = std::fs::read(ca)
        .map_err(|e| StorageError::Database(format!("cannot read {}: {e}", ca.display())))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pki_types::pem::PemObject::pem_slice_iter(&pem) {
        let cert: rustls_pki_types::CertificateDer<'static> = cert.map_err(|e| {
            StorageError::Database(format!("{}: not a PEM certificate: {e}", ca.display()))
        })?;
        roots.add(cert).map_err(|e| {
            StorageError::Database(format!("{}: unusable CA certificate: {e}", ca.display()))
        })?;
    }
    if roots.is_empty() {
        return Err(StorageError::Database(format!(
            "{}: no certificate in the file",
            ca.display()
        )));
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| StorageError::Database(format!("tls: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

/// The schema version of the database: 0 when it has none yet.
pub fn schema_version(client: &mut Client) -> Result<u32, StorageError> {
    let exists: bool = client
        .query_one("SELECT to_regclass('assent_schema') IS NOT NULL", &[])
        .map_err(db)?
        .get(0);
    if !exists {
        return Ok(0);
    }
    let v: Option<i32> = client
        .query_one("SELECT max(version) FROM assent_schema", &[])
        .map_err(db)?
        .get(0);
    Ok(v.map_or(0, |v| u32::try_from(v).unwrap_or(0)))
}

/// What `serve` says when the schema is not this binary's.
pub fn version_problem(found: u32) -> Option<String> {
    match found.cmp(&SCHEMA_VERSION) {
        std::cmp::Ordering::Equal => None,
        std::cmp::Ordering::Less => Some(format!(
            "the database schema is at version {found}, this collector needs {SCHEMA_VERSION}: \
             run `assent-collector migrate --config FILE`"
        )),
        std::cmp::Ordering::Greater => Some(format!(
            "the database schema is at version {found}, newer than this collector's \
             {SCHEMA_VERSION}: run the assent-collector that migrated it (or a newer one)"
        )),
    }
}

/// Applies the migrations the database lacks, in one transaction under an advisory lock
/// (two replicas migrating at once take turns); returns (before, after).
pub fn migrate(target: &PgTarget) -> Result<(u32, u32), StorageError> {
    let mut client = connect(target)?;
    let mut tx = client.transaction().map_err(db)?;
    tx.execute("SELECT pg_advisory_xact_lock(7365637401)", &[])
        .map_err(db)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS assent_schema (version INTEGER PRIMARY KEY, \
         applied_at_ms BIGINT NOT NULL)",
    )
    .map_err(db)?;
    let before: Option<i32> = tx
        .query_one("SELECT max(version) FROM assent_schema", &[])
        .map_err(db)?
        .get(0);
    let before = before.map_or(0, |v| u32::try_from(v).unwrap_or(0));
    if before > SCHEMA_VERSION {
        return Err(StorageError::Database(
            version_problem(before).unwrap_or_default(),
        ));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(before as usize) {
        tx.batch_execute(sql)
            .map_err(|e| StorageError::Database(format!("migration {}: {}", i + 1, db(e))))?;
        let version = i32::try_from(i + 1).unwrap_or(i32::MAX);
        tx.execute(
            "INSERT INTO assent_schema (version, applied_at_ms) VALUES ($1, $2)",
            &[&version, &crate::server::now_ms()],
        )
        .map_err(db)?;
    }
    if before < CONSENT_ROLLUP_MIGRATION {
        crate::console::pg::rebuild_consent_rollup(&mut tx)?;
    }
    ensure_partitions(&mut tx, crate::server::now_ms())?;
    tx.commit().map_err(db)?;
    Ok((before, SCHEMA_VERSION))
}

/// (year, month, day) of a day count since 1970-01-01 (Howard Hinnant's civil_from_days).
fn civil(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn partition_name(table: &str, day: i64) -> String {
    let (y, m, d) = civil(day);
    format!("{table}_{y:04}{m:02}{d:02}")
}

/// Creates the day partitions from yesterday to [`PARTITION_DAYS_AHEAD`] days ahead.
fn ensure_partitions(tx: &mut Transaction<'_>, now_ms: i64) -> Result<(), StorageError> {
    let today = now_ms.div_euclid(DAY_MS);
    ensure_partition_range(tx, today - 1, today + PARTITION_DAYS_AHEAD)
}

/// Creates the day partitions for days `from..=to` that do not exist yet.
fn ensure_partition_range(
    tx: &mut Transaction<'_>,
    from: i64,
    to: i64,
) -> Result<(), StorageError> {
    // Replicas creating the same partition at once would collide in the catalog.
    tx.execute("SELECT pg_advisory_xact_lock(7365637402)", &[])
        .map_err(db)?;
    for day in from..=to {
        for table in ["events", "gaps"] {
            let name = partition_name(table, day);
            let exists: bool = tx
                .query_one("SELECT to_regclass($1) IS NOT NULL", &[&name])
                .map_err(db)?
                .get(0);
            if !exists {
                tx.batch_execute(&format!(
                    "CREATE TABLE {name} PARTITION OF {table} FOR VALUES FROM ({}) TO ({})",
                    day * DAY_MS,
                    (day + 1) * DAY_MS
                ))
                .map_err(db)?;
            }
        }
    }
    Ok(())
}

/// A PostgreSQL database, one connection.
pub struct PgStorage {
    target: PgTarget,
    client: Option<Client>,
    backoff: Duration,
    next_attempt: Instant,
}

impl std::fmt::Debug for PgStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStorage")
            .field("url", &self.target.url)
            .field("connected", &self.client.is_some())
            .finish()
    }
}

impl PgStorage {
    /// Connects and checks the schema is this binary's; for serving, also makes sure
    /// today's partitions exist.
    pub fn open(target: &PgTarget) -> Result<PgStorage, StorageError> {
        let mut client = connect(target)?;
        if let Some(problem) = version_problem(schema_version(&mut client)?) {
            return Err(StorageError::Database(problem));
        }
        let mut tx = client.transaction().map_err(db)?;
        ensure_partitions(&mut tx, crate::server::now_ms())?;
        tx.commit().map_err(db)?;
        Ok(PgStorage {
            target: target.clone(),
            client: Some(client),
            backoff: BACKOFF_START,
            next_attempt: Instant::now(),
        })
    }

    /// The connection, reopened when it was lost and the backoff has passed.
    fn client(&mut self) -> Result<&mut Client, StorageError> {
        if self.client.as_ref().is_some_and(Client::is_closed) {
            self.client = None;
        }
        if self.client.is_none() {
            if Instant::now() < self.next_attempt {
                return Err(StorageError::Database(
                    "no connection to the database (reconnecting)".into(),
                ));
            }
            match connect(&self.target) {
                Ok(c) => {
                    crate::metrics::global()
                        .database_reconnects
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    log::info!("database connection re-established");
                    self.client = Some(c);
                    self.backoff = BACKOFF_START;
                }
                Err(e) => {
                    self.next_attempt = Instant::now() + self.backoff;
                    self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
                    return Err(e);
                }
            }
        }
        self.client
            .as_mut()
            .ok_or_else(|| StorageError::Database("no connection to the database".into()))
    }

    /// Forgets a connection that failed, so the next call opens a new one.
    fn check<T>(&mut self, result: Result<T, StorageError>) -> Result<T, StorageError> {
        if result.is_err() && self.client.as_ref().is_some_and(Client::is_closed) {
            log::warn!("database connection lost");
            self.client = None;
            self.next_attempt = Instant::now();
        }
        result
    }

    /// Stores several batches (of any devices) in one transaction, answering each once
    /// committed. Devices are locked in pseudonym order, so two writers with overlapping
    /// groups cannot deadlock.
    pub fn ingest_many(
        &mut self,
        batches: &[&Batch],
        received_at_ms: i64,
    ) -> Vec<Result<IngestOutcome, StorageError>> {
        let mut answers: Vec<Option<Result<IngestOutcome, StorageError>>> =
            vec![None; batches.len()];
        let mut order: Vec<usize> = Vec::new();
        for (i, b) in batches.iter().enumerate() {
            if b.last_seq > MAX_SEQ {
                answers[i] = Some(plan_ingest(b, None).map(|_| IngestOutcome {
                    acked_through: 0,
                    stored_records: 0,
                    hole: true,
                }));
            } else {
                order.push(i);
            }
        }
        order.sort_by(|&a, &b| {
            (batches[a].device.as_str(), batches[a].buffer_id)
                .cmp(&(batches[b].device.as_str(), batches[b].buffer_id))
        });
        let method = self.target.write_method;
        let result = self
            .client()
            .and_then(|client| ingest_tx(client, batches, &order, received_at_ms, method));
        let result = self.check(result);
        match result {
            Ok(outcomes) => {
                for (i, o) in order.iter().zip(outcomes) {
                    answers[*i] = Some(Ok(o));
                }
            }
            Err(e) => {
                for i in &order {
                    answers[*i] = Some(Err(e.clone()));
                }
            }
        }
        answers
            .into_iter()
            .map(|a| a.unwrap_or_else(|| Err(StorageError::Database("not run".into()))))
            .collect()
    }
}

const EVENT_TYPES: [Type; 10] = [
    Type::TEXT,
    Type::INT8,
    Type::INT8,
    Type::TEXT,
    Type::TEXT,
    Type::INT8,
    Type::TEXT,
    Type::INT8,
    Type::JSONB,
    Type::INT8,
];

fn ingest_tx(
    client: &mut Client,
    batches: &[&Batch],
    order: &[usize],
    now: i64,
    method: PgWriteMethod,
) -> Result<Vec<IngestOutcome>, StorageError> {
    let mut tx = client.transaction().map_err(db)?;
    let upsert_device = tx
        .prepare(
            "INSERT INTO devices (pseudonym, first_seen_ms, last_seen_ms) VALUES ($1, $2, $2) \
             ON CONFLICT (pseudonym) DO UPDATE \
             SET last_seen_ms = GREATEST(devices.last_seen_ms, EXCLUDED.last_seen_ms)",
        )
        .map_err(db)?;
    let lock_buffer = tx
        .prepare(
            "INSERT INTO buffers (device, buffer_id, high_water) VALUES ($1, $2, NULL) \
             ON CONFLICT (device, buffer_id) DO UPDATE SET high_water = buffers.high_water \
             RETURNING high_water",
        )
        .map_err(db)?;
    let read_fences = tx
        .prepare(
            "SELECT category, last_seq FROM erasure_fences WHERE device = $1 AND buffer_id = $2",
        )
        .map_err(db)?;
    let move_high_water = tx
        .prepare("UPDATE buffers SET high_water = $3 WHERE device = $1 AND buffer_id = $2")
        .map_err(db)?;
    let mut outcomes = Vec::with_capacity(order.len());
    let mut to_write: Vec<(&Batch, Vec<&Record>)> = Vec::new();
    let mut last_device: Option<&str> = None;
    for &i in order {
        let batch = batches[i];
        let device = batch.device.as_str();
        let buffer_id = bits(batch.buffer_id);
        if last_device != Some(device) {
            tx.execute(&upsert_device, &[&device, &now]).map_err(db)?;
            last_device = Some(device);
        }
        let stored: Option<i64> = tx
            .query_one(&lock_buffer, &[&device, &buffer_id])
            .map_err(db)?
            .get(0);
        match plan_ingest(batch, stored.map(unbits))? {
            IngestPlan::Hole { high_water } => outcomes.push(IngestOutcome {
                acked_through: high_water,
                stored_records: 0,
                hole: true,
            }),
            IngestPlan::Store {
                records,
                new_high_water,
            } => {
                tx.execute(
                    &move_high_water,
                    &[&device, &buffer_id, &bits(new_high_water)],
                )
                .map_err(db)?;
                let fences: Vec<(String, u64)> = tx
                    .query(&read_fences, &[&device, &buffer_id])
                    .map_err(db)?
                    .iter()
                    .map(|r| (r.get(0), unbits(r.get(1))))
                    .collect();
                let records: Vec<&Record> = records
                    .into_iter()
                    .filter(|r| !is_fenced(r, &fences))
                    .collect();
                outcomes.push(IngestOutcome {
                    acked_through: new_high_water,
                    stored_records: records.len() as u64,
                    hole: false,
                });
                to_write.push((batch, records));
            }
        }
    }
    crate::console::pg::add_ingested_consent(&mut tx, &to_write, now)?;
    write_records(&mut tx, &to_write, now, method)?;
    write_rollups(&mut tx, &to_write, now)?;
    tx.commit().map_err(db)?;
    Ok(outcomes)
}

/// The console's daily roll-ups for the stored batches of a group: events newly stored
/// per category, and each device's first stored batch of the day. A transaction adds to
/// the shard row of its connection (`pg_backend_pid()`), so K writers on several
/// replicas seldom wait on the same row; categories are upserted in name order, so two
/// transactions sharing a shard cannot deadlock. `device_days` needs no such care: its
/// rows are keyed by devices this transaction has locked.
fn write_rollups(
    tx: &mut Transaction<'_>,
    batches: &[(&Batch, Vec<&Record>)],
    now: i64,
) -> Result<(), StorageError> {
    let day = now.div_euclid(DAY_MS);
    let mut events = Rollup::default();
    for (batch, records) in batches {
        events
            .devices
            .insert((batch.device.as_str().to_string(), day));
        for record in records {
            if let Record::Event(e) = record {
                *events
                    .events
                    .entry((day, e.category.name().to_string()))
                    .or_default() += 1;
            }
        }
    }
    events.write(tx)
}

/// Counts to add to the console's roll-ups in one transaction.
#[derive(Debug, Default)]
struct Rollup {
    /// (day, category) -> events newly stored.
    events: std::collections::BTreeMap<(i64, String), i64>,
    /// (device, day) that stored a batch (or, for an import, an event).
    devices: std::collections::BTreeSet<(String, i64)>,
}

impl Rollup {
    fn write(&self, tx: &mut Transaction<'_>) -> Result<(), StorageError> {
        let shards = i32::from(ROLLUP_SHARDS);
        if !self.events.is_empty() {
            let days: Vec<i64> = self.events.keys().map(|(d, _)| *d).collect();
            let categories: Vec<&str> = self.events.keys().map(|(_, c)| c.as_str()).collect();
            let counts: Vec<i64> = self.events.values().copied().collect();
            tx.execute(
                "INSERT INTO daily_events (day, category, shard, events) \
                 SELECT d, c, (pg_backend_pid() % $4)::smallint, n \
                 FROM unnest($1::bigint[], $2::text[], $3::bigint[]) AS u(d, c, n) \
                 ORDER BY d, c \
                 ON CONFLICT (day, category, shard) \
                 DO UPDATE SET events = daily_events.events + EXCLUDED.events",
                &[&days, &categories, &counts, &shards],
            )
            .map_err(db)?;
        }
        if !self.devices.is_empty() {
            let devices: Vec<&str> = self.devices.iter().map(|(d, _)| d.as_str()).collect();
            let days: Vec<i64> = self.devices.iter().map(|(_, d)| *d).collect();
            tx.execute(
                "WITH first_today AS (\
                     INSERT INTO device_days (device, day) \
                     SELECT * FROM unnest($1::text[], $2::bigint[]) \
                     ON CONFLICT DO NOTHING RETURNING day) \
                 INSERT INTO daily_devices (day, shard, devices) \
                 SELECT day, (pg_backend_pid() % $3)::smallint, COUNT(*) FROM first_today \
                 GROUP BY day ORDER BY day \
                 ON CONFLICT (day, shard) \
                 DO UPDATE SET devices = daily_devices.devices + EXCLUDED.devices",
                &[&devices, &days, &shards],
            )
            .map_err(db)?;
        }
        Ok(())
    }
}

/// Rows per multi-row `INSERT` of events: 10 parameters a row keeps a statement far
/// under PostgreSQL's 65,535 bind parameters, and a statement this size already spreads
/// its round trip over many rows.
const INSERT_ROWS_PER_STATEMENT: usize = 1000;

/// One event as its `events` row, the columns in [`EVENT_TYPES`] order.
struct EventRow<'a> {
    device: &'a str,
    buffer_id: i64,
    seq: i64,
    category: &'static str,
    kind: &'a str,
    wall_time_ms: i64,
    boot_id: String,
    monotonic_ns: i64,
    payload: Json<serde_json::Value>,
}

impl EventRow<'_> {
    fn params<'r>(&'r self, now: &'r i64) -> [&'r (dyn ToSql + Sync); 10] {
        [
            &self.device,
            &self.buffer_id,
            &self.seq,
            &self.category,
            &self.kind,
            &self.wall_time_ms,
            &self.boot_id,
            &self.monotonic_ns,
            &self.payload,
            now,
        ]
    }
}

/// The group's events as rows, in batch and seq order, made one at a time so that only
/// the rows being written hold their JSON.
fn event_rows<'a>(
    batches: &'a [(&'a Batch, Vec<&'a Record>)],
) -> impl Iterator<Item = EventRow<'a>> + 'a {
    batches.iter().flat_map(|(batch, records)| {
        let device = batch.device.as_str();
        let buffer_id = bits(batch.buffer_id);
        records.iter().filter_map(move |record| match record {
            Record::Event(e) => Some(EventRow {
                device,
                buffer_id,
                seq: bits(e.seq),
                category: e.category.name(),
                kind: &e.kind,
                wall_time_ms: e.wall_time_ms,
                boot_id: e.boot_id.to_hex(),
                monotonic_ns: i64::try_from(e.monotonic_ns).unwrap_or(i64::MAX),
                payload: Json(e.payload.to_json()),
            }),
            _ => None,
        })
    })
}

/// Events by binary COPY (one for the whole group), streamed row by row.
fn copy_events<'a>(
    tx: &mut Transaction<'_>,
    rows: impl Iterator<Item = EventRow<'a>>,
    now: i64,
) -> Result<(), StorageError> {
    let sink = tx
        .copy_in(
            "COPY events (device, buffer_id, seq, category, kind, wall_time_ms, boot_id, \
             monotonic_ns, payload, received_at_ms) FROM STDIN BINARY",
        )
        .map_err(db)?;
    let mut writer = BinaryCopyInWriter::new(sink, &EVENT_TYPES);
    for row in rows {
        writer.write(&row.params(&now)).map_err(db)?;
    }
    writer.finish().map_err(db)?;
    Ok(())
}

/// Events by multi-row `INSERT ... VALUES`, [`INSERT_ROWS_PER_STATEMENT`] rows a
/// statement. Each statement is parsed on every call: its text depends on the row count,
/// and caching one per count would hold server memory per connection for little gain.
fn insert_events<'a>(
    tx: &mut Transaction<'_>,
    mut rows: impl Iterator<Item = EventRow<'a>>,
    now: i64,
) -> Result<(), StorageError> {
    const CASTS: [&str; 10] = [
        "text", "int8", "int8", "text", "text", "int8", "text", "int8", "jsonb", "int8",
    ];
    loop {
        let chunk: Vec<EventRow<'a>> = rows.by_ref().take(INSERT_ROWS_PER_STATEMENT).collect();
        if chunk.is_empty() {
            return Ok(());
        }
        let mut sql = String::with_capacity(200 + chunk.len() * 110);
        sql.push_str(
            "INSERT INTO events (device, buffer_id, seq, category, kind, wall_time_ms, \
             boot_id, monotonic_ns, payload, received_at_ms) VALUES ",
        );
        let mut params = Vec::with_capacity(chunk.len() * CASTS.len());
        for (i, row) in chunk.iter().enumerate() {
            sql.push_str(if i == 0 { "(" } else { ", (" });
            for (j, cast) in CASTS.iter().enumerate() {
                if j > 0 {
                    sql.push_str(", ");
                }
                sql.push_str(&format!("${}::{cast}", i * CASTS.len() + j + 1));
            }
            sql.push(')');
            params.extend_from_slice(&row.params(&now));
        }
        tx.execute(sql.as_str(), &params).map_err(db)?;
    }
}

/// Events by binary COPY or multi-row INSERT (`database_write_method`); gaps and consent
/// changes by single-row INSERT (they are few).
fn write_records(
    tx: &mut Transaction<'_>,
    batches: &[(&Batch, Vec<&Record>)],
    now: i64,
    method: PgWriteMethod,
) -> Result<(), StorageError> {
    let any_event = batches
        .iter()
        .any(|(_, rs)| rs.iter().any(|r| matches!(r, Record::Event(_))));
    if any_event {
        match method {
            PgWriteMethod::Copy => copy_events(tx, event_rows(batches), now)?,
            PgWriteMethod::Insert => insert_events(tx, event_rows(batches), now)?,
        }
    }
    for (batch, records) in batches {
        let device = batch.device.as_str();
        let buffer_id = bits(batch.buffer_id);
        for record in records {
            match record {
                Record::Event(_) => {}
                Record::Gap(g) => {
                    let reason = json!(g.reason);
                    tx.execute(
                        "INSERT INTO gaps (device, buffer_id, seq, first_seq, last_seq, count, \
                         reason, category, received_at_ms) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                        &[
                            &device,
                            &buffer_id,
                            &bits(g.seq),
                            &bits(g.first_seq),
                            &bits(g.last_seq),
                            &bits(g.count),
                            &reason.as_str().unwrap_or("unknown"),
                            &g.category.map(Category::name),
                            &now,
                        ],
                    )
                    .map_err(db)?;
                }
                Record::Consent(c) => {
                    tx.execute(
                        "INSERT INTO consent_records (device, buffer_id, seq, observed_at, \
                         category, active, state, by_whom, at, policy_version, received_at_ms) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
                         ON CONFLICT DO NOTHING",
                        &[
                            &device,
                            &buffer_id,
                            &bits(c.seq),
                            &c.observed_at,
                            &c.category.name(),
                            &c.active,
                            &c.state,
                            &c.by,
                            &c.at,
                            &i64::from(c.policy_version),
                            &now,
                        ],
                    )
                    .map_err(db)?;
                }
            }
        }
    }
    Ok(())
}

fn erase_tx(
    client: &mut Client,
    request: &Erasure,
    at_ms: i64,
    operator: Option<&str>,
) -> Result<u64, StorageError> {
    let device = request.device.as_str();
    let mut tx = client.transaction().map_err(db)?;
    // The device's row first, in its own statement: an ingest of this device in flight
    // holds it, so this waits for that commit and then sees (and deletes) its rows.
    tx.execute(
        "SELECT 1 FROM devices WHERE pseudonym = $1 FOR UPDATE",
        &[&device],
    )
    .map_err(db)?;
    for (buffer_id, category, last_seq) in fence_rows(request) {
        tx.execute(
            "INSERT INTO erasure_fences (device, buffer_id, category, last_seq) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (device, buffer_id, category) \
             DO UPDATE SET last_seq = GREATEST(erasure_fences.last_seq, EXCLUDED.last_seq)",
            &[&device, &bits(buffer_id), &category, &bits(last_seq)],
        )
        .map_err(db)?;
    }
    let (erased, logged) = match &request.categories {
        None => {
            let n = tx
                .execute("DELETE FROM events WHERE device = $1", &[&device])
                .map_err(db)?;
            tx.execute("DELETE FROM gaps WHERE device = $1", &[&device])
                .map_err(db)?;
            crate::console::pg::remove_device_consent(&mut tx, device)?;
            tx.execute("DELETE FROM consent_records WHERE device = $1", &[&device])
                .map_err(db)?;
            tx.execute("DELETE FROM device_days WHERE device = $1", &[&device])
                .map_err(db)?;
            (n, "all".to_string())
        }
        Some(categories) => {
            let names: Vec<&str> = categories.iter().map(|c| c.name()).collect();
            let n = tx
                .execute(
                    "DELETE FROM events WHERE device = $1 AND category = ANY($2)",
                    &[&device, &names],
                )
                .map_err(db)?;
            // Gaps of an erased category go with it; consent records stay (legal basis).
            tx.execute(
                "DELETE FROM gaps WHERE device = $1 AND category = ANY($2)",
                &[&device, &names],
            )
            .map_err(db)?;
            (n, names.join(","))
        }
    };
    tx.execute(
        "INSERT INTO erasure_log (device, categories, erased_events, at_ms, operator) \
         VALUES ($1, $2, $3, $4, $5)",
        &[&device, &logged, &bits(erased), &at_ms, &operator],
    )
    .map_err(db)?;
    tx.commit().map_err(db)?;
    Ok(erased)
}

/// Day of a partition from its name (`events_20261202`), for dropping old ones.
fn partition_day(name: &str) -> Option<i64> {
    let date = name.rsplit('_').next()?;
    if date.len() != 8 {
        return None;
    }
    let y: i64 = date.get(0..4)?.parse().ok()?;
    let m: i64 = date.get(4..6)?.parse().ok()?;
    let d: i64 = date.get(6..8)?.parse().ok()?;
    // days_from_civil (Howard Hinnant).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

fn sweep_tx(client: &mut Client, cutoff_ms: i64) -> Result<(u64, Vec<String>), StorageError> {
    let mut tx = client.transaction().map_err(db)?;
    ensure_partitions(&mut tx, crate::server::now_ms())?;
    let mut dropped = Vec::new();
    for table in ["events", "gaps"] {
        let rows = tx
            .query(
                "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
                 WHERE i.inhparent = to_regclass($1)",
                &[&table],
            )
            .map_err(db)?;
        for row in rows {
            let name: String = row.get(0);
            let Some(day) = partition_day(&name) else {
                continue;
            };
            if (day + 1) * DAY_MS <= cutoff_ms {
                tx.batch_execute(&format!("DROP TABLE {name}"))
                    .map_err(db)?;
                dropped.push(name);
            }
        }
    }
    // What is left before the cutoff is in the boundary partition or the default one.
    let events = tx
        .execute(
            "DELETE FROM events WHERE received_at_ms < $1",
            &[&cutoff_ms],
        )
        .map_err(db)?;
    let gaps = tx
        .execute("DELETE FROM gaps WHERE received_at_ms < $1", &[&cutoff_ms])
        .map_err(db)?;
    // Which devices reported on a day goes with the day; the day's counts stay.
    tx.execute(
        "DELETE FROM device_days WHERE day < $1",
        &[&cutoff_ms.div_euclid(DAY_MS)],
    )
    .map_err(db)?;
    tx.commit().map_err(db)?;
    Ok((events + gaps, dropped))
}

impl Storage for PgStorage {
    fn ingest(
        &mut self,
        batch: &Batch,
        received_at_ms: i64,
    ) -> Result<IngestOutcome, StorageError> {
        self.ingest_many(&[batch], received_at_ms)
            .pop()
            .unwrap_or_else(|| Err(StorageError::Database("not run".into())))
    }

    fn ingest_group(
        &mut self,
        batches: &[&Batch],
        received_at_ms: i64,
    ) -> Vec<Result<IngestOutcome, StorageError>> {
        self.ingest_many(batches, received_at_ms)
    }

    fn erase(&mut self, request: &Erasure, at_ms: i64) -> Result<u64, StorageError> {
        let result = self
            .client()
            .and_then(|client| erase_tx(client, request, at_ms, None));
        self.check(result)
    }

    fn erase_by_operator(
        &mut self,
        request: &ErasureRequest,
        at_ms: i64,
        operator: &str,
    ) -> Result<u64, StorageError> {
        let request = Erasure::from(request.clone());
        let result = self
            .client()
            .and_then(|client| erase_tx(client, &request, at_ms, Some(operator)));
        self.check(result)
    }

    fn sweep_retention(&mut self, cutoff_ms: i64) -> Result<u64, StorageError> {
        let result = self.client().and_then(|client| sweep_tx(client, cutoff_ms));
        let (n, dropped) = self.check(result)?;
        if !dropped.is_empty() {
            log::info!("retention: dropped partitions {}", dropped.join(", "));
        }
        Ok(n)
    }

    fn export(
        &mut self,
        device: &Pseudonym,
        category: Option<Category>,
        sink: &mut dyn FnMut(ExportLine) -> Result<(), StorageError>,
    ) -> Result<(), StorageError> {
        let client = self.client()?;
        let device = device.as_str();
        let category = category.map(Category::name);
        let mut tx = client
            .build_transaction()
            .read_only(true)
            .isolation_level(postgres::IsolationLevel::RepeatableRead)
            .start()
            .map_err(db)?;
        let rows = tx
            .query(
                "SELECT buffer_id, seq, category, kind, wall_time_ms, boot_id, monotonic_ns, \
                 payload, received_at_ms FROM events \
                 WHERE device = $1 AND ($2::text IS NULL OR category = $2) \
                 ORDER BY buffer_id, seq",
                &[&device, &category],
            )
            .map_err(db)?;
        for row in rows {
            let payload: serde_json::Value = row.get(7);
            sink(json!({
                "record": "event",
                "device": device,
                "buffer_id": unbits(row.get(0)),
                "seq": row.get::<_, i64>(1),
                "category": row.get::<_, String>(2),
                "kind": row.get::<_, String>(3),
                "wall_time_ms": row.get::<_, i64>(4),
                "boot_id": row.get::<_, String>(5),
                "monotonic_ns": row.get::<_, i64>(6),
                "received_at_ms": row.get::<_, i64>(8),
                "payload": payload,
            }))?;
        }
        if category.is_some() {
            return Ok(());
        }
        let rows = tx
            .query(
                "SELECT buffer_id, seq, first_seq, last_seq, count, reason, category, \
                 received_at_ms FROM gaps WHERE device = $1 ORDER BY buffer_id, seq",
                &[&device],
            )
            .map_err(db)?;
        for row in rows {
            sink(json!({
                "record": "gap",
                "device": device,
                "buffer_id": unbits(row.get(0)),
                "seq": row.get::<_, i64>(1),
                "first_seq": unbits(row.get(2)),
                "last_seq": unbits(row.get(3)),
                "count": unbits(row.get(4)),
                "reason": row.get::<_, String>(5),
                "category": row.get::<_, Option<String>>(6),
                "received_at_ms": row.get::<_, i64>(7),
            }))?;
        }
        let rows = tx
            .query(
                "SELECT buffer_id, seq, observed_at, category, active, state, by_whom, at, \
                 policy_version, received_at_ms FROM consent_records WHERE device = $1 \
                 ORDER BY buffer_id, seq",
                &[&device],
            )
            .map_err(db)?;
        for row in rows {
            sink(json!({
                "record": "consent",
                "device": device,
                "buffer_id": unbits(row.get(0)),
                "seq": row.get::<_, i64>(1),
                "observed_at": row.get::<_, String>(2),
                "category": row.get::<_, String>(3),
                "active": row.get::<_, bool>(4),
                "state": row.get::<_, String>(5),
                "by": row.get::<_, Option<String>>(6),
                "at": row.get::<_, Option<String>>(7),
                "policy_version": row.get::<_, i64>(8),
                "received_at_ms": row.get::<_, i64>(9),
            }))?;
        }
        tx.commit().map_err(db)?;
        Ok(())
    }

    fn stats(&mut self) -> Result<Stats, StorageError> {
        let client = self.client()?;
        let mut count = |table: &str| -> Result<u64, StorageError> {
            let n: i64 = client
                .query_one(&format!("SELECT count(*) FROM {table}"), &[])
                .map_err(db)?
                .get(0);
            Ok(unbits(n))
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
        for row in client
            .query(
                "SELECT category, count(*) FROM events GROUP BY category",
                &[],
            )
            .map_err(db)?
        {
            stats
                .events_by_category
                .insert(row.get(0), unbits(row.get(1)));
        }
        Ok(stats)
    }

    fn devices(
        &mut self,
        only: Option<&Pseudonym>,
        sink: &mut dyn FnMut(DeviceSummary) -> Result<(), StorageError>,
    ) -> Result<(), StorageError> {
        use postgres::fallible_iterator::FallibleIterator;
        let sql = devices_query(only.is_some());
        let client = self.client()?;
        let params: Vec<&str> = only.map(Pseudonym::as_str).into_iter().collect();
        // Streamed: a fleet's device list need not fit in memory.
        let mut rows = client.query_raw(&sql, params).map_err(db)?;
        while let Some(row) = rows.next().map_err(db)? {
            sink(DeviceSummary {
                device: row.get(0),
                first_seen_ms: row.get(1),
                last_seen_ms: row.get(2),
                events: unbits(row.get(3)),
                consent_records: unbits(row.get(4)),
                gaps: unbits(row.get(5)),
                erasures: unbits(row.get(6)),
            })?;
        }
        Ok(())
    }
}

/// What `import` moved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ImportReport {
    pub devices: u64,
    pub buffers: u64,
    pub events: u64,
    pub gaps: u64,
    pub consent_records: u64,
    pub erasures: u64,
}

fn sq(e: rusqlite::Error) -> StorageError {
    StorageError::Database(format!("sqlite: {e}"))
}

/// Moves a SQLite collector's data into PostgreSQL, one device per transaction, under
/// the same locks as ingest. Idempotent: a buffer whose PostgreSQL high-water is at or
/// beyond the SQLite one is skipped, and otherwise only seqs above it are copied; erasure
/// log rows already present are not added again. Safe beside running replicas.
pub fn import_sqlite(
    target: &PgTarget,
    sqlite: &std::path::Path,
) -> Result<ImportReport, StorageError> {
    let src =
        rusqlite::Connection::open_with_flags(sqlite, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(sq)?;
    let mut client = connect(target)?;
    if let Some(problem) = version_problem(schema_version(&mut client)?) {
        return Err(StorageError::Database(problem));
    }
    // Day partitions for the imported range when it is not huge; the rest goes to the
    // default partition, which retention sweeps too.
    let (min, max): (Option<i64>, Option<i64>) = src
        .query_row(
            "SELECT min(received_at_ms), max(received_at_ms) FROM events",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .map_err(sq)?;
    if let (Some(min), Some(max)) = (min, max) {
        let (from, to) = (min.div_euclid(DAY_MS), max.div_euclid(DAY_MS));
        if to - from <= 400 {
            let mut tx = client.transaction().map_err(db)?;
            ensure_partition_range(&mut tx, from, to)?;
            tx.commit().map_err(db)?;
        }
    }
    let devices: Vec<(String, i64, i64)> = src
        .prepare("SELECT pseudonym, first_seen_ms, last_seen_ms FROM devices ORDER BY pseudonym")
        .map_err(sq)?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .map_err(sq)?
        .collect::<Result<_, _>>()
        .map_err(sq)?;
    let mut report = ImportReport::default();
    for (device, first_seen, last_seen) in devices {
        let mut tx = client.transaction().map_err(db)?;
        tx.execute(
            "INSERT INTO devices (pseudonym, first_seen_ms, last_seen_ms) VALUES ($1, $2, $3) \
             ON CONFLICT (pseudonym) DO UPDATE SET \
             first_seen_ms = LEAST(devices.first_seen_ms, EXCLUDED.first_seen_ms), \
             last_seen_ms = GREATEST(devices.last_seen_ms, EXCLUDED.last_seen_ms)",
            &[&device, &first_seen, &last_seen],
        )
        .map_err(db)?;
        report.devices += 1;
        let consent_before = crate::console::pg::device_consent_steps(&mut tx, &device)?;
        let buffers: Vec<(i64, i64)> = src
            .prepare("SELECT buffer_id, high_water FROM buffers WHERE device = ?1")
            .map_err(sq)?
            .query_map([&device], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(sq)?
            .collect::<Result<_, _>>()
            .map_err(sq)?;
        // The imported events count as arrivals on the day they were received.
        let mut rollup = Rollup::default();
        for (buffer_id, high_water) in buffers {
            let stored: Option<i64> = tx
                .query_one(
                    "INSERT INTO buffers (device, buffer_id, high_water) VALUES ($1, $2, NULL) \
                     ON CONFLICT (device, buffer_id) DO UPDATE SET high_water = buffers.high_water \
                     RETURNING high_water",
                    &[&device, &buffer_id],
                )
                .map_err(db)?
                .get(0);
            let above = stored.unwrap_or(0);
            if stored.is_some_and(|s| s >= high_water) {
                continue;
            }
            report.buffers += 1;
            report.events += import_events(&src, &mut tx, &device, buffer_id, above, &mut rollup)?;
            report.gaps += import_gaps(&src, &mut tx, &device, buffer_id, above)?;
            report.consent_records += import_consent(&src, &mut tx, &device, buffer_id, above)?;
            tx.execute(
                "UPDATE buffers SET high_water = $3 WHERE device = $1 AND buffer_id = $2",
                &[&device, &buffer_id, &high_water],
            )
            .map_err(db)?;
        }
        report.erasures += import_erasures(&src, &mut tx, &device)?;
        crate::console::pg::refresh_device_consent(&mut tx, &device, consent_before)?;
        rollup.write(&mut tx)?;
        tx.commit().map_err(db)?;
    }
    Ok(report)
}

fn import_events(
    src: &rusqlite::Connection,
    tx: &mut Transaction<'_>,
    device: &str,
    buffer_id: i64,
    above: i64,
    rollup: &mut Rollup,
) -> Result<u64, StorageError> {
    let mut stmt = src
        .prepare(
            "SELECT seq, category, kind, wall_time_ms, boot_id, monotonic_ns, payload_json, \
             received_at_ms FROM events WHERE device = ?1 AND buffer_id = ?2 AND seq > ?3 \
             ORDER BY seq",
        )
        .map_err(sq)?;
    let mut rows = stmt
        .query(rusqlite::params![device, buffer_id, above])
        .map_err(sq)?;
    let sink = tx
        .copy_in(
            "COPY events (device, buffer_id, seq, category, kind, wall_time_ms, boot_id, \
             monotonic_ns, payload, received_at_ms) FROM STDIN BINARY",
        )
        .map_err(db)?;
    let mut writer = BinaryCopyInWriter::new(sink, &EVENT_TYPES);
    let mut n = 0u64;
    while let Some(r) = rows.next().map_err(sq)? {
        let payload_text: String = r.get(6).map_err(sq)?;
        let payload: serde_json::Value = serde_json::from_str(&payload_text).map_err(|e| {
            StorageError::Database(format!("sqlite: event payload is not JSON: {e}"))
        })?;
        let row: [&(dyn ToSql + Sync); 10] = [
            &device,
            &buffer_id,
            &r.get::<_, i64>(0).map_err(sq)?,
            &r.get::<_, String>(1).map_err(sq)?,
            &r.get::<_, String>(2).map_err(sq)?,
            &r.get::<_, i64>(3).map_err(sq)?,
            &r.get::<_, String>(4).map_err(sq)?,
            &r.get::<_, i64>(5).map_err(sq)?,
            &Json(&payload),
            &r.get::<_, i64>(7).map_err(sq)?,
        ];
        writer.write(&row).map_err(db)?;
        n += 1;
        let day = r.get::<_, i64>(7).map_err(sq)?.div_euclid(DAY_MS);
        let category: String = r.get(1).map_err(sq)?;
        *rollup.events.entry((day, category)).or_default() += 1;
        rollup.devices.insert((device.to_string(), day));
    }
    writer.finish().map_err(db)?;
    Ok(n)
}

fn import_gaps(
    src: &rusqlite::Connection,
    tx: &mut Transaction<'_>,
    device: &str,
    buffer_id: i64,
    above: i64,
) -> Result<u64, StorageError> {
    let mut stmt = src
        .prepare(
            "SELECT seq, first_seq, last_seq, count, reason, category, received_at_ms \
             FROM gaps WHERE device = ?1 AND buffer_id = ?2 AND seq > ?3",
        )
        .map_err(sq)?;
    let mut rows = stmt
        .query(rusqlite::params![device, buffer_id, above])
        .map_err(sq)?;
    let mut n = 0;
    while let Some(r) = rows.next().map_err(sq)? {
        n += tx
            .execute(
                "INSERT INTO gaps (device, buffer_id, seq, first_seq, last_seq, count, reason, \
                 category, received_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                &[
                    &device,
                    &buffer_id,
                    &r.get::<_, i64>(0).map_err(sq)?,
                    &r.get::<_, i64>(1).map_err(sq)?,
                    &r.get::<_, i64>(2).map_err(sq)?,
                    &r.get::<_, i64>(3).map_err(sq)?,
                    &r.get::<_, String>(4).map_err(sq)?,
                    &r.get::<_, Option<String>>(5).map_err(sq)?,
                    &r.get::<_, i64>(6).map_err(sq)?,
                ],
            )
            .map_err(db)?;
    }
    Ok(n)
}

fn import_consent(
    src: &rusqlite::Connection,
    tx: &mut Transaction<'_>,
    device: &str,
    buffer_id: i64,
    above: i64,
) -> Result<u64, StorageError> {
    let mut stmt = src
        .prepare(
            "SELECT seq, observed_at, category, active, state, by_whom, at, policy_version, \
             received_at_ms FROM consent_records WHERE device = ?1 AND buffer_id = ?2 \
             AND seq > ?3",
        )
        .map_err(sq)?;
    let mut rows = stmt
        .query(rusqlite::params![device, buffer_id, above])
        .map_err(sq)?;
    let mut n = 0;
    while let Some(r) = rows.next().map_err(sq)? {
        n += tx
            .execute(
                "INSERT INTO consent_records (device, buffer_id, seq, observed_at, category, \
                 active, state, by_whom, at, policy_version, received_at_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT DO NOTHING",
                &[
                    &device,
                    &buffer_id,
                    &r.get::<_, i64>(0).map_err(sq)?,
                    &r.get::<_, String>(1).map_err(sq)?,
                    &r.get::<_, String>(2).map_err(sq)?,
                    &r.get::<_, bool>(3).map_err(sq)?,
                    &r.get::<_, String>(4).map_err(sq)?,
                    &r.get::<_, Option<String>>(5).map_err(sq)?,
                    &r.get::<_, Option<String>>(6).map_err(sq)?,
                    &r.get::<_, i64>(7).map_err(sq)?,
                    &r.get::<_, i64>(8).map_err(sq)?,
                ],
            )
            .map_err(db)?;
    }
    Ok(n)
}

fn import_erasures(
    src: &rusqlite::Connection,
    tx: &mut Transaction<'_>,
    device: &str,
) -> Result<u64, StorageError> {
    let mut n = 0;
    let mut stmt = src
        .prepare("SELECT buffer_id, category, last_seq FROM erasure_fences WHERE device = ?1")
        .map_err(sq)?;
    let mut rows = stmt.query([device]).map_err(sq)?;
    while let Some(r) = rows.next().map_err(sq)? {
        tx.execute(
            "INSERT INTO erasure_fences (device, buffer_id, category, last_seq) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (device, buffer_id, category) \
             DO UPDATE SET last_seq = GREATEST(erasure_fences.last_seq, EXCLUDED.last_seq)",
            &[
                &device,
                &r.get::<_, i64>(0).map_err(sq)?,
                &r.get::<_, String>(1).map_err(sq)?,
                &r.get::<_, i64>(2).map_err(sq)?,
            ],
        )
        .map_err(db)?;
    }
    // A file written before the console has no `operator` column: all its erasures
    // were the devices' own.
    let has_operator: bool = src
        .query_row(
            "SELECT COUNT(*) > 0 FROM pragma_table_info('erasure_log') WHERE name = 'operator'",
            [],
            |r| r.get(0),
        )
        .map_err(sq)?;
    let mut stmt = src
        .prepare(if has_operator {
            "SELECT categories, erased_events, at_ms, operator FROM erasure_log \
             WHERE device = ?1 ORDER BY id"
        } else {
            "SELECT categories, erased_events, at_ms, NULL FROM erasure_log \
             WHERE device = ?1 ORDER BY id"
        })
        .map_err(sq)?;
    let mut rows = stmt.query([device]).map_err(sq)?;
    while let Some(r) = rows.next().map_err(sq)? {
        n += tx
            .execute(
                "INSERT INTO erasure_log (device, categories, erased_events, at_ms, operator) \
                 SELECT $1, $2, $3, $4, $5 WHERE NOT EXISTS (SELECT 1 FROM erasure_log \
                 WHERE device = $1 AND categories = $2 AND erased_events = $3 AND at_ms = $4)",
                &[
                    &device,
                    &r.get::<_, String>(0).map_err(sq)?,
                    &r.get::<_, i64>(1).map_err(sq)?,
                    &r.get::<_, i64>(2).map_err(sq)?,
                    &r.get::<_, Option<String>>(3).map_err(sq)?,
                ],
            )
            .map_err(db)?;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_names_round_trip_days() {
        for day in [0, 1, 59, 365, 10_957, 20_424, 20_789, 47_482] {
            let name = partition_name("events", day);
            assert_eq!(partition_day(&name), Some(day), "{name}");
        }
        assert_eq!(partition_name("gaps", 20_424), "gaps_20251202");
        assert_eq!(partition_day("events_default"), None);
    }

    #[test]
    fn version_problems_name_the_fix() {
        assert_eq!(version_problem(SCHEMA_VERSION), None);
        assert!(version_problem(0)
            .unwrap()
            .contains("assent-collector migrate"));
        assert!(version_problem(SCHEMA_VERSION + 1)
            .unwrap()
            .contains("newer than this collector"));
    }
}
