//! The SQLite side: schema, pragmas, the size cap, eviction and every query.
//!
//! One `Db` owns one connection; `Store` keeps it behind a mutex, so nothing here is
//! concurrent.

use crate::error::{from_sqlite, io, sql, StoreError};
use crate::types::{
    Batch, CategoryStats, Durability, GapReason, GapRecord, NewEvent, Record, Stats, StoreOptions,
    StoredEvent,
};
use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `PRAGMA application_id` of a buffer file ("ASNT").
pub(crate) const APPLICATION_ID: i64 = 0x4153_4e54;
/// `PRAGMA user_version` of the current schema.
pub(crate) const SCHEMA_VERSION: i64 = 1;
const PAGE_SIZE: u64 = 4096;
/// SQLite's page cache for the one connection, in KiB (64 pages).
const CACHE_KIB: i64 = 256;
/// The `-shm` index stays at 32 KiB while the WAL is below 16 MiB, which the WAL budget
/// guarantees.
const SHM_BYTES: u64 = 32 * 1024;
/// Fixed-width fields counted in a record's size: seq, wall time, boot id, monotonic
/// time, size.
const FIXED_FIELD_BYTES: u64 = 48;
/// Wall times before 2020-01-01 are taken as "clock not set" and never expire.
pub(crate) const PLAUSIBLE_WALL_TIME_MS: i64 = 1_577_836_800_000;
const MS_PER_DAY: i64 = 86_400_000;
/// Eviction frees at least this much (and 1/32 of the limit), so it is not run per append.
const MIN_EVICT_BYTES: u64 = 8 * 1024;
/// How often one write may be retried after making room.
const MAX_ROOM_ATTEMPTS: u32 = 64;
/// Small appends re-read the free space (statfs and `PRAGMA page_count`) only after this
/// many of their bytes: the page limit set at the last check already keeps the file
/// within what the filesystem had, and the margin absorbs what others write meanwhile.
const DISK_CHECK_EVERY_BYTES: u64 = 16 * 1024;

const SCHEMA: &str = "
CREATE TABLE records (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    category TEXT,
    kind TEXT,
    wall_time_ms INTEGER,
    boot_id BLOB,
    monotonic_ns INTEGER,
    payload BLOB,
    size INTEGER NOT NULL,
    gap_reason INTEGER,
    gap_first_seq INTEGER,
    gap_last_seq INTEGER,
    gap_count INTEGER
);
CREATE TABLE state (
    id INTEGER PRIMARY KEY CHECK (id = 0),
    acked_through INTEGER NOT NULL
);
INSERT INTO state (id, acked_through) VALUES (0, 0);
CREATE TABLE meta (
    key TEXT PRIMARY KEY NOT NULL,
    value BLOB NOT NULL
) WITHOUT ROWID;
";

const RECORD_COLUMNS: &str = "seq, category, kind, wall_time_ms, boot_id, monotonic_ns, \
    payload, gap_reason, gap_first_seq, gap_last_seq, gap_count";

/// The `meta` key holding the buffer id, as 8 big-endian bytes.
pub(crate) const BUFFER_ID_KEY: &str = "buffer_id";

/// A random id for a new buffer file. Uniqueness per device is all that is needed, so
/// std's randomly keyed hasher (seeded from the OS) mixed with the time is enough.
fn new_buffer_id() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    hasher.write_u128(now);
    hasher.write_u32(std::process::id());
    // Never 0, so 0 can mean "no buffer" elsewhere.
    hasher.finish().max(1)
}

/// The smallest `max_bytes` accepted.
pub const MIN_MAX_BYTES: u64 = 256 * 1024;

/// The files of one buffer.
#[derive(Debug, Clone)]
pub(crate) struct Paths {
    pub(crate) dir: PathBuf,
    pub(crate) db: PathBuf,
    pub(crate) wal: PathBuf,
    pub(crate) shm: PathBuf,
    pub(crate) ballast: PathBuf,
}

impl Paths {
    pub(crate) fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
            db: dir.join("buffer.db"),
            wal: dir.join("buffer.db-wal"),
            shm: dir.join("buffer.db-shm"),
            ballast: dir.join("buffer.db.reserve"),
        }
    }
}

/// Sizes derived from `max_bytes`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// The most pages the database file may have.
    pub(crate) cap_pages: u64,
    /// Room kept for the WAL; it is checkpointed at half of it.
    pub(crate) wal_budget: u64,
    /// The reserve file deleted to recover from ENOSPC.
    pub(crate) ballast_bytes: u64,
    /// Most record bytes in one group commit (bounds the WAL growth of one commit).
    pub(crate) group_max_bytes: u64,
}

impl Limits {
    pub(crate) fn new(max_bytes: u64) -> Result<Self, StoreError> {
        if max_bytes < MIN_MAX_BYTES {
            return Err(StoreError::InvalidOptions("max_bytes below 256 KiB"));
        }
        let wal_budget = (max_bytes / 16).clamp(64 * 1024, 4 * 1024 * 1024);
        let ballast_bytes = (max_bytes / 32).clamp(32 * 1024, 1024 * 1024);
        let db_bytes = max_bytes - wal_budget - ballast_bytes - SHM_BYTES;
        let cap_pages = db_bytes / PAGE_SIZE;
        Ok(Self {
            cap_pages,
            wal_budget,
            ballast_bytes,
            group_max_bytes: wal_budget / 5,
        })
    }
}

/// The size a record is counted as, in stats, batches and eviction.
pub(crate) fn event_size(e: &NewEvent) -> u64 {
    FIXED_FIELD_BYTES + len64(&e.payload) + len64(e.category.as_bytes()) + len64(e.kind.as_bytes())
}

fn gap_size(category: Option<&str>) -> u64 {
    FIXED_FIELD_BYTES + category.map_or(0, |c| len64(c.as_bytes()))
}

fn len64(b: &[u8]) -> u64 {
    u64::try_from(b.len()).unwrap_or(u64::MAX)
}

/// Seqs are positive SQLite rowids; the conversions cannot fail for values the store
/// wrote, and saturate for anything else.
fn seq_to_sql(seq: u64) -> i64 {
    i64::try_from(seq).unwrap_or(i64::MAX)
}

fn seq_from_sql(seq: i64) -> u64 {
    u64::try_from(seq).unwrap_or(0)
}

/// The "buffer reset" gap a fresh buffer starts with when it replaces a quarantined one:
/// what is known of the lost events (0 where unknown).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ResetGap {
    pub(crate) first_seq: u64,
    pub(crate) last_seq: u64,
    pub(crate) count: u64,
}

/// Why opening an existing file failed.
#[derive(Debug)]
pub(crate) enum OpenFailure {
    /// The file is not a sound buffer: quarantine it.
    Corrupt(String),
    /// Something else (locked, permissions, I/O on the directory): report, do not touch.
    Other(StoreError),
    /// A sound database with no schema and no id, even after WAL recovery: the file was
    /// created but the transaction that makes it a buffer never became durable (a power
    /// cut before the first sync under `Normal`). Nothing to keep: start afresh.
    Empty,
}

fn classify(context: &'static str, e: &rusqlite::Error) -> OpenFailure {
    if let rusqlite::Error::SqliteFailure(err, msg) = e {
        let corrupt = matches!(
            err.code,
            rusqlite::ErrorCode::DatabaseCorrupt
                | rusqlite::ErrorCode::NotADatabase
                | rusqlite::ErrorCode::SystemIoFailure
        );
        if corrupt {
            let text = msg.clone().unwrap_or_else(|| err.to_string());
            return OpenFailure::Corrupt(format!("{context}: {text}"));
        }
    }
    OpenFailure::Other(from_sqlite(context, e))
}

/// One open buffer database.
pub(crate) struct Db {
    conn: Connection,
    paths: Paths,
    opts: StoreOptions,
    limits: Limits,
    acked_through: u64,
    /// The `max_page_count` currently set.
    max_page_count: u64,
    /// The filesystem, not `max_bytes`, is what limits the file now.
    disk_limited: bool,
    ballast_present: bool,
    /// Bytes of small appends since the free space was last checked.
    unchecked_bytes: u64,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("paths", &self.paths)
            .field("limits", &self.limits)
            .field("acked_through", &self.acked_through)
            .field("max_page_count", &self.max_page_count)
            .field("disk_limited", &self.disk_limited)
            .finish_non_exhaustive()
    }
}

fn configure(conn: &Connection, opts: &StoreOptions, limits: &Limits) -> rusqlite::Result<()> {
    conn.busy_timeout(Duration::from_secs(5))?;
    let mode: String =
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(rusqlite::Error::InvalidParameterName(format!(
            "journal_mode stayed {mode}"
        )));
    }
    let sync = match opts.durability {
        Durability::Full => "FULL",
        Durability::Normal => "NORMAL",
    };
    conn.pragma_update(None, "synchronous", sync)?;
    // Negative: KiB. The default (2 MiB) fills at open (quick_check reads the whole file)
    // and stays allocated; appends touch the rightmost leaf and its parents, batches the
    // leftmost, so a few dozen pages hold the working set of any buffer size.
    conn.pragma_update(None, "cache_size", -CACHE_KIB)?;
    let wal_pages = (limits.wal_budget / 2 / PAGE_SIZE).max(1);
    conn.pragma_update(None, "wal_autocheckpoint", wal_pages)?;
    conn.pragma_update(None, "journal_size_limit", limits.wal_budget / 2)?;
    Ok(())
}

impl Db {
    /// Creates a new buffer file (the path must not exist, or be empty) whose sequence
    /// continues after `start_after_seq`, recording `reset` as a
    /// [`GapReason::BufferReset`] gap when it replaces a quarantined file. Returns the
    /// gap's seq.
    ///
    /// Schema, buffer id, sequence start and gap are one transaction: a crash in between
    /// leaves either no buffer (an empty file, or one with no schema and no id, either
    /// re-initialised on the next open) or a complete one, never one without its id or its
    /// reset gap.
    pub(crate) fn create(
        paths: &Paths,
        opts: &StoreOptions,
        limits: Limits,
        start_after_seq: u64,
        reset: Option<ResetGap>,
    ) -> Result<(Self, Option<u64>), StoreError> {
        // Create the file ourselves so it is 0600 from the first byte; SQLite gives the
        // -wal and -shm files the same mode.
        fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&paths.db)
            .map_err(io("creating buffer.db"))?;
        let mut conn = Connection::open(&paths.db).map_err(sql("opening new buffer.db"))?;
        conn.pragma_update(None, "page_size", PAGE_SIZE)
            .map_err(sql("setting page size"))?;
        conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")
            .map_err(sql("setting auto_vacuum"))?;
        configure(&conn, opts, &limits).map_err(sql("configuring new buffer.db"))?;
        let init = |conn: &mut Connection| -> rusqlite::Result<Option<u64>> {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.execute_batch(&format!(
                "{SCHEMA} PRAGMA application_id = {APPLICATION_ID}; \
                 PRAGMA user_version = {SCHEMA_VERSION};"
            ))?;
            tx.execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2)",
                params![BUFFER_ID_KEY, new_buffer_id().to_be_bytes().to_vec()],
            )?;
            if start_after_seq > 0 {
                tx.execute(
                    "INSERT INTO sqlite_sequence (name, seq) VALUES ('records', ?1)",
                    [seq_to_sql(start_after_seq)],
                )?;
            }
            let gap_seq = match reset {
                Some(gap) => Some(seq_from_sql(insert_gap(
                    &tx,
                    seq_to_sql(gap.first_seq),
                    seq_to_sql(gap.last_seq),
                    i64::try_from(gap.count).unwrap_or(i64::MAX),
                    GapReason::BufferReset,
                    None,
                )?)),
                None => None,
            };
            tx.commit()?;
            Ok(gap_seq)
        };
        let gap_seq = init(&mut conn).map_err(sql("creating schema"))?;
        Ok((Self::finish_open(conn, paths, opts, limits)?, gap_seq))
    }

    /// Opens an existing buffer file and checks it.
    pub(crate) fn open_existing(
        paths: &Paths,
        opts: &StoreOptions,
        limits: Limits,
    ) -> Result<Self, OpenFailure> {
        let conn = Connection::open_with_flags(
            &paths.db,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| classify("opening buffer.db", &e))?;
        configure(&conn, opts, &limits).map_err(|e| classify("configuring buffer.db", &e))?;
        check(&conn)?;
        Self::finish_open(conn, paths, opts, limits).map_err(|e| match e {
            StoreError::Corrupt(why) => OpenFailure::Corrupt(why),
            other => OpenFailure::Other(other),
        })
    }

    fn finish_open(
        conn: Connection,
        paths: &Paths,
        opts: &StoreOptions,
        limits: Limits,
    ) -> Result<Self, StoreError> {
        let acked: i64 = conn
            .query_row("SELECT acked_through FROM state WHERE id = 0", [], |r| {
                r.get(0)
            })
            .map_err(sql("reading the ack mark"))?;
        let mut db = Self {
            conn,
            paths: paths.clone(),
            opts: opts.clone(),
            limits,
            acked_through: seq_from_sql(acked),
            max_page_count: 0,
            disk_limited: false,
            ballast_present: paths.ballast.exists(),
            unchecked_bytes: 0,
        };
        db.set_max_page_count(limits.cap_pages)?;
        db.refresh_disk_limit();
        db.shrink_to_cap()?;
        // `quick_check` read the whole file through the page cache.
        db.release_memory();
        Ok(db)
    }

    pub(crate) fn limits(&self) -> Limits {
        self.limits
    }

    // ----- size control -----

    fn pragma_u64(&self, name: &'static str) -> Result<u64, StoreError> {
        let v: i64 = self
            .conn
            .prepare_cached(&format!("PRAGMA {name}"))
            .and_then(|mut stmt| stmt.query_row([], |r| r.get(0)))
            .map_err(sql("reading a pragma"))?;
        Ok(u64::try_from(v).unwrap_or(0))
    }

    fn set_max_page_count(&mut self, pages: u64) -> Result<(), StoreError> {
        let set: i64 = self
            .conn
            .query_row(&format!("PRAGMA max_page_count = {pages}"), [], |r| {
                r.get(0)
            })
            .map_err(sql("setting max_page_count"))?;
        self.max_page_count = u64::try_from(set).unwrap_or(0);
        Ok(())
    }

    /// Free bytes on the buffer's filesystem, if it can tell.
    fn fs_avail(&self) -> Option<u64> {
        let s = nix::sys::statvfs::statvfs(&self.paths.dir).ok()?;
        // The field types are narrower on 32-bit targets.
        #[allow(clippy::useless_conversion)]
        let avail = u64::from(s.blocks_available()).saturating_mul(u64::from(s.fragment_size()));
        Some(avail)
    }

    /// Free space the store leaves on the filesystem for its WAL to reach its usual size.
    fn margin(&self) -> u64 {
        self.limits.wal_budget * 3 / 4 + 64 * 1024
    }

    /// Lowers the page limit below `max_bytes` when the filesystem has less room than
    /// that, so the file stops growing before the filesystem fills (each new page costs
    /// once in the WAL and once in the database); raises it back when room returns.
    fn refresh_disk_limit(&mut self) {
        let Ok(page_count) = self.pragma_u64("page_count") else {
            return;
        };
        let cap = self.limits.cap_pages;
        let limit = match self.fs_avail() {
            Some(avail) => {
                let margin = self.margin();
                if !self.ballast_present && avail > self.limits.ballast_bytes + margin {
                    self.create_ballast();
                }
                let growth = avail.saturating_sub(margin) / (2 * PAGE_SIZE);
                cap.min(page_count.saturating_add(growth))
            }
            None => cap,
        };
        self.disk_limited = limit < cap;
        if limit != self.max_page_count {
            // A failure leaves the old limit, which SQLITE_FULL handling copes with.
            let _ = self.set_max_page_count(limit);
        }
    }

    fn create_ballast(&mut self) {
        let result = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&self.paths.ballast)
            .and_then(|mut f| {
                let zeros = vec![0u8; 64 * 1024];
                let mut left = self.limits.ballast_bytes;
                while left > 0 {
                    let n = left.min(64 * 1024);
                    f.write_all(zeros.get(..usize::try_from(n).unwrap_or(0)).unwrap_or(&[]))?;
                    left -= n;
                }
                f.sync_all()
            });
        match result {
            Ok(()) => self.ballast_present = true,
            Err(_) => {
                let _ = fs::remove_file(&self.paths.ballast);
                self.ballast_present = false;
            }
        }
    }

    fn release_ballast(&mut self) {
        let _ = fs::remove_file(&self.paths.ballast);
        self.ballast_present = self.paths.ballast.exists();
    }

    /// Brings an existing file within a (possibly lowered) cap at open.
    fn shrink_to_cap(&mut self) -> Result<(), StoreError> {
        for _ in 0..MAX_ROOM_ATTEMPTS {
            let pages = self.pragma_u64("page_count")?;
            if pages <= self.limits.cap_pages {
                return Ok(());
            }
            let free = self.pragma_u64("freelist_count")?;
            if free > 0 {
                self.incremental_vacuum(free)?;
            } else {
                let excess = (pages - self.limits.cap_pages) * PAGE_SIZE;
                self.evict_txn(excess, GapReason::Evicted)?;
            }
        }
        self.checkpoint_truncate();
        Ok(())
    }

    fn incremental_vacuum(&mut self, pages: u64) -> Result<(), StoreError> {
        // Each step of the statement frees one page, so it must be stepped to the end.
        let mut stmt = self
            .conn
            .prepare(&format!("PRAGMA incremental_vacuum({pages})"))
            .map_err(sql("vacuuming"))?;
        let mut rows = stmt.query([]).map_err(sql("vacuuming"))?;
        while rows.next().map_err(sql("vacuuming"))?.is_some() {}
        Ok(())
    }

    fn checkpoint_truncate(&mut self) {
        // A checkpoint that cannot finish now is retried by the next one.
        let _ = self
            .conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
    }

    /// Runs `write` and, when the database or the filesystem is full, evicts and retries.
    ///
    /// A `small` write (an append of a few pages) skips the free-space check until
    /// [`DISK_CHECK_EVERY_BYTES`] accumulated, and the WAL size check: it cannot push a
    /// WAL that autocheckpoint keeps near half its budget past the budget. Everything
    /// else (and every retry) checks both, as does anything on a nearly full disk.
    fn write_with_room<T>(
        &mut self,
        need_bytes: u64,
        small: bool,
        context: &'static str,
        mut write: impl FnMut(&mut Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        let small = small && need_bytes <= self.limits.wal_budget / 16;
        let mut attempts = 0;
        loop {
            let skip_checks = small && attempts == 0 && !self.disk_limited;
            if skip_checks && self.unchecked_bytes + need_bytes < DISK_CHECK_EVERY_BYTES {
                self.unchecked_bytes += need_bytes;
            } else {
                self.unchecked_bytes = 0;
                self.refresh_disk_limit();
            }
            match write(&mut self.conn) {
                Ok(v) => {
                    if !skip_checks {
                        self.after_write();
                    }
                    return Ok(v);
                }
                Err(e) if is_full(&e) && attempts < MAX_ROOM_ATTEMPTS => {
                    attempts += 1;
                    self.make_room(need_bytes)?;
                }
                Err(e) => return Err(from_sqlite(context, &e)),
            }
        }
    }

    /// Keeps the WAL within its budget when a large transaction pushed it past, and on a
    /// nearly full filesystem checkpoints after every write so the WAL is rewritten from
    /// its start (in blocks it already has) instead of growing.
    fn after_write(&mut self) {
        let wal = fs::metadata(&self.paths.wal).map_or(0, |m| m.len());
        if wal > self.limits.wal_budget {
            self.checkpoint_truncate();
        } else if self.disk_limited && self.fs_avail().is_some_and(|a| a < self.margin()) {
            let _ = self
                .conn
                .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
        }
    }

    /// Evicts enough for `need_bytes` (and at least one eviction chunk).
    fn make_room(&mut self, need_bytes: u64) -> Result<(), StoreError> {
        // With little space left on the filesystem, SQLITE_FULL most likely came from
        // ENOSPC: free the reserve file and the WAL's blocks so the eviction itself can
        // be written, and stop the database from growing.
        let fs_short = self.fs_avail().is_some_and(|a| a < self.margin());
        if fs_short {
            self.release_ballast();
            self.checkpoint_truncate();
            let pages = self.pragma_u64("page_count")?;
            self.set_max_page_count(pages)?;
            self.disk_limited = true;
        }
        let reason = if self.disk_limited {
            GapReason::DiskFull
        } else {
            GapReason::Evicted
        };
        // A chunk of the current limit, which is below the configured one on a full disk.
        let chunk =
            (self.max_page_count.min(self.limits.cap_pages) * PAGE_SIZE / 32).max(MIN_EVICT_BYTES);
        self.evict_txn(need_bytes.saturating_mul(2).max(chunk), reason)
    }

    fn evict_txn(&mut self, target_bytes: u64, reason: GapReason) -> Result<(), StoreError> {
        let optional = self.opts.optional_categories.clone();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql("starting eviction"))?;
        let evicted = evict(&tx, &optional, target_bytes, reason).map_err(sql("evicting"))?;
        if evicted == 0 {
            return Err(StoreError::Full);
        }
        tx.commit().map_err(sql("committing eviction"))
    }

    // ----- operations -----

    /// Appends events in one transaction, making room as needed.
    pub(crate) fn append(&mut self, events: &[&NewEvent]) -> Result<Vec<u64>, StoreError> {
        let need: u64 = events.iter().map(|e| event_size(e)).sum();
        self.write_with_room(need, true, "appending events", |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let mut seqs = Vec::with_capacity(events.len());
            {
                let mut stmt = tx.prepare_cached(
                    "INSERT INTO records (category, kind, wall_time_ms, boot_id, monotonic_ns, \
                     payload, size) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )?;
                for e in events {
                    // The monotonic time is stored bit-for-bit in SQLite's signed integer.
                    let mono = i64::from_ne_bytes(e.monotonic_ns.to_ne_bytes());
                    let size = i64::try_from(event_size(e)).unwrap_or(i64::MAX);
                    stmt.execute(params![
                        e.category,
                        e.kind,
                        e.wall_time_ms,
                        &e.boot_id[..],
                        mono,
                        e.payload,
                        size
                    ])?;
                    seqs.push(seq_from_sql(tx.last_insert_rowid()));
                }
            }
            tx.commit()?;
            Ok(seqs)
        })
    }

    pub(crate) fn next_batch(
        &mut self,
        max_events: usize,
        max_bytes: u64,
    ) -> Result<Option<Batch>, StoreError> {
        if max_events == 0 {
            return Ok(None);
        }
        let first_seq = self.acked_through + 1;
        let limit = i64::try_from(max_events).unwrap_or(i64::MAX);
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT {RECORD_COLUMNS}, size FROM records WHERE seq >= ?1 ORDER BY seq LIMIT ?2"
            ))
            .map_err(sql("reading a batch"))?;
        let mut rows = stmt
            .query(params![seq_to_sql(first_seq), limit])
            .map_err(sql("reading a batch"))?;
        let mut records = Vec::new();
        let mut bytes = 0u64;
        while let Some(row) = rows.next().map_err(sql("reading a batch"))? {
            let size: i64 = row.get(11).map_err(sql("reading a batch"))?;
            let size = u64::try_from(size).unwrap_or(0);
            if !records.is_empty() && bytes.saturating_add(size) > max_bytes {
                break;
            }
            bytes = bytes.saturating_add(size);
            records.push(record_from_row(row)?);
        }
        Ok(records.last().map(Record::seq).map(|last_seq| Batch {
            first_seq,
            last_seq,
            records,
        }))
    }

    fn last_seq(&self) -> Result<u64, StoreError> {
        let seq: Option<i64> = self
            .conn
            .query_row(
                "SELECT seq FROM sqlite_sequence WHERE name = 'records'",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(sql("reading the last seq"))?;
        Ok(seq.map_or(0, seq_from_sql))
    }

    pub(crate) fn ack(&mut self, through_seq: u64) -> Result<(), StoreError> {
        if through_seq <= self.acked_through {
            return Ok(());
        }
        let last_seq = self.last_seq()?;
        if through_seq > last_seq {
            return Err(StoreError::AckBeyondEnd {
                through_seq,
                last_seq,
            });
        }
        let through = seq_to_sql(through_seq);
        self.write_with_room(0, false, "acknowledging", |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.execute("DELETE FROM records WHERE seq <= ?1", [through])?;
            tx.execute(
                "UPDATE state SET acked_through = ?1 WHERE id = 0",
                [through],
            )?;
            tx.commit()
        })?;
        self.acked_through = through_seq;
        self.give_back_free_pages()?;
        if through_seq == last_seq {
            // Drained: the daemon goes idle now, so the page cache filled by the batches
            // just read goes back to the allocator (it refills from the OS cache).
            self.release_memory();
        }
        Ok(())
    }

    /// Frees the connection's page cache and other unused memory
    /// (`PRAGMA shrink_memory`); a failure only leaves the memory held.
    pub(crate) fn release_memory(&self) {
        let _ = self.conn.execute_batch("PRAGMA shrink_memory");
    }

    /// Returns free pages to the filesystem once a good part of the file is free, so a
    /// drained buffer shrinks. Runs in small steps to keep each WAL transaction small.
    fn give_back_free_pages(&mut self) -> Result<(), StoreError> {
        let pages = self.pragma_u64("page_count")?;
        let free = self.pragma_u64("freelist_count")?;
        if free < 16 || free * 4 < pages {
            return Ok(());
        }
        let step = (self.limits.wal_budget / PAGE_SIZE / 8).max(1);
        let mut left = free;
        while left > 0 {
            let n = left.min(step);
            self.incremental_vacuum(n)?;
            left -= n;
        }
        self.checkpoint_truncate();
        Ok(())
    }

    pub(crate) fn purge_category(&mut self, category: &str) -> Result<u64, StoreError> {
        let need = gap_size(Some(category));
        self.write_with_room(need, false, "purging a category", |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let (count, first, last): (i64, Option<i64>, Option<i64>) = tx.query_row(
                "SELECT count(*), min(seq), max(seq) FROM records \
                 WHERE gap_reason IS NULL AND category = ?1",
                [category],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )?;
            if count > 0 {
                tx.execute(
                    "DELETE FROM records WHERE gap_reason IS NULL AND category = ?1",
                    [category],
                )?;
                insert_gap(
                    &tx,
                    first.unwrap_or(0),
                    last.unwrap_or(0),
                    count,
                    GapReason::Purged,
                    Some(category),
                )?;
            }
            tx.commit()?;
            Ok(u64::try_from(count).unwrap_or(0))
        })
    }

    pub(crate) fn expire(&mut self, now_wall_ms: i64) -> Result<u64, StoreError> {
        // A clock that is not set yet says nothing about age.
        if now_wall_ms < PLAUSIBLE_WALL_TIME_MS {
            return Ok(0);
        }
        let cutoff = now_wall_ms
            .saturating_sub(i64::from(self.opts.retention_days).saturating_mul(MS_PER_DAY));
        self.write_with_room(256, false, "expiring events", |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let groups: Vec<(String, i64, i64, i64)> = {
                let mut stmt = tx.prepare_cached(
                    "SELECT category, count(*), min(seq), max(seq) FROM records \
                     WHERE gap_reason IS NULL AND wall_time_ms >= ?1 AND wall_time_ms < ?2 \
                     GROUP BY category ORDER BY min(seq)",
                )?;
                let rows = stmt.query_map(params![PLAUSIBLE_WALL_TIME_MS, cutoff], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                })?;
                rows.collect::<rusqlite::Result<_>>()?
            };
            let mut total = 0u64;
            if !groups.is_empty() {
                tx.execute(
                    "DELETE FROM records WHERE gap_reason IS NULL \
                     AND wall_time_ms >= ?1 AND wall_time_ms < ?2",
                    params![PLAUSIBLE_WALL_TIME_MS, cutoff],
                )?;
                for (category, count, first, last) in &groups {
                    insert_gap(
                        &tx,
                        *first,
                        *last,
                        *count,
                        GapReason::Expired,
                        Some(category),
                    )?;
                    total += u64::try_from(*count).unwrap_or(0);
                }
            }
            tx.commit()?;
            Ok(total)
        })
    }

    pub(crate) fn stats(&mut self) -> Result<Stats, StoreError> {
        let mut stats = Stats {
            acked_through: self.acked_through,
            last_seq: self.last_seq()?,
            ..Stats::default()
        };
        {
            let mut stmt = self
                .conn
                .prepare_cached(
                    "SELECT category, count(*), sum(size), min(wall_time_ms) FROM records \
                     WHERE gap_reason IS NULL GROUP BY category",
                )
                .map_err(sql("reading stats"))?;
            let rows = stmt
                .query_map([], |r| {
                    Ok((
                        r.get::<_, Option<String>>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, Option<i64>>(2)?,
                        r.get::<_, Option<i64>>(3)?,
                    ))
                })
                .map_err(sql("reading stats"))?;
            for row in rows {
                let (category, count, bytes, oldest) = row.map_err(sql("reading stats"))?;
                let count = u64::try_from(count).unwrap_or(0);
                let bytes = u64::try_from(bytes.unwrap_or(0)).unwrap_or(0);
                stats.count += count;
                stats.bytes += bytes;
                stats.oldest_wall_time_ms = match (stats.oldest_wall_time_ms, oldest) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                stats
                    .per_category
                    .insert(category.unwrap_or_default(), CategoryStats { count, bytes });
            }
        }
        let gaps: i64 = self
            .conn
            .query_row(
                "SELECT count(*) FROM records WHERE gap_reason IS NOT NULL",
                [],
                |r| r.get(0),
            )
            .map_err(sql("reading stats"))?;
        stats.gaps = u64::try_from(gaps).unwrap_or(0);
        stats.file_bytes = [&self.paths.db, &self.paths.wal]
            .iter()
            .map(|p| fs::metadata(p).map_or(0, |m| m.len()))
            .sum();
        Ok(stats)
    }

    pub(crate) fn export(&mut self) -> Result<Vec<Record>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT {RECORD_COLUMNS} FROM records ORDER BY seq"
            ))
            .map_err(sql("exporting"))?;
        let mut rows = stmt.query([]).map_err(sql("exporting"))?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(sql("exporting"))? {
            out.push(record_from_row(row)?);
        }
        Ok(out)
    }

    /// Whether each of `seqs` is acknowledged or a held event.
    pub(crate) fn seqs_intact(&mut self, seqs: &[u64]) -> Result<bool, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT count(*) FROM records WHERE seq = ?1 AND gap_reason IS NULL")
            .map_err(sql("reading held events"))?;
        for seq in seqs.iter().copied().filter(|s| *s > self.acked_through) {
            let held: i64 = stmt
                .query_row([i64::try_from(seq).unwrap_or(i64::MAX)], |r| r.get(0))
                .map_err(sql("reading held events"))?;
            if held == 0 {
                return Ok(false);
            }
        }
        Ok(true)
    }

    pub(crate) fn get_meta(&mut self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()
            .map_err(sql("reading meta"))
    }

    pub(crate) fn set_meta(&mut self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        let need = len64(key.as_bytes()) + len64(value);
        self.write_with_room(need, false, "writing meta", |conn| {
            conn.execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2) \
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                params![key, value],
            )
            .map(|_| ())
        })
    }
}

/// Checks that an opened file is a sound buffer.
fn check(conn: &Connection) -> Result<(), OpenFailure> {
    let mut stmt = conn
        .prepare("PRAGMA quick_check")
        .map_err(|e| classify("quick_check", &e))?;
    let lines: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .and_then(|rows| rows.collect())
        .map_err(|e| classify("quick_check", &e))?;
    if lines != ["ok"] {
        let mut why = lines.join("; ");
        why.truncate(500);
        return Err(OpenFailure::Corrupt(format!("quick_check: {why}")));
    }
    let app: i64 = conn
        .query_row("PRAGMA application_id", [], |r| r.get(0))
        .map_err(|e| classify("reading application_id", &e))?;
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| classify("reading user_version", &e))?;
    let objects: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
        .map_err(|e| classify("reading the schema", &e))?;
    if objects == 0 && app == 0 && version == 0 {
        return Err(OpenFailure::Empty);
    }
    if app != APPLICATION_ID || version != SCHEMA_VERSION {
        return Err(OpenFailure::Corrupt(format!(
            "not an assent buffer (application_id {app:#x}, user_version {version})"
        )));
    }
    for probe in [
        format!("SELECT {RECORD_COLUMNS}, size FROM records LIMIT 0"),
        "SELECT key, value FROM meta LIMIT 0".to_owned(),
    ] {
        conn.prepare(&probe)
            .map_err(|e| OpenFailure::Corrupt(format!("schema: {e}")))?;
    }
    conn.query_row("SELECT acked_through FROM state WHERE id = 0", [], |r| {
        r.get::<_, i64>(0)
    })
    .map_err(|e| OpenFailure::Corrupt(format!("schema: {e}")))?;
    Ok(())
}

fn is_full(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(err, _) if err.code == rusqlite::ErrorCode::DiskFull)
}

fn insert_gap(
    tx: &Transaction<'_>,
    first_seq: i64,
    last_seq: i64,
    count: i64,
    reason: GapReason,
    category: Option<&str>,
) -> rusqlite::Result<i64> {
    let size = i64::try_from(gap_size(category)).unwrap_or(i64::MAX);
    tx.prepare_cached(
        "INSERT INTO records (category, size, gap_reason, gap_first_seq, gap_last_seq, gap_count) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        category,
        size,
        reason.code(),
        first_seq,
        last_seq,
        count
    ])?;
    Ok(tx.last_insert_rowid())
}

/// Deletes the oldest events of optional categories, then the oldest of any, until
/// `target_bytes` of records are gone; leaves one gap record per category. When no event
/// is left, merges the gap records instead. Returns how many records were deleted.
fn evict(
    tx: &Transaction<'_>,
    optional: &[String],
    target_bytes: u64,
    reason: GapReason,
) -> rusqlite::Result<u64> {
    let mut victims: BTreeMap<i64, String> = BTreeMap::new();
    let mut freed = 0u64;
    {
        let mut stmt = tx.prepare_cached(
            "SELECT seq, category, size FROM records WHERE gap_reason IS NULL ORDER BY seq",
        )?;
        let passes: &[bool] = if optional.is_empty() {
            &[false]
        } else {
            &[true, false]
        };
        for &optional_only in passes {
            let mut rows = stmt.query([])?;
            while freed < target_bytes {
                let Some(row) = rows.next()? else { break };
                let seq: i64 = row.get(0)?;
                let category: String = row.get::<_, Option<String>>(1)?.unwrap_or_default();
                let size: i64 = row.get(2)?;
                if victims.contains_key(&seq) || (optional_only && !optional.contains(&category)) {
                    continue;
                }
                freed = freed.saturating_add(u64::try_from(size).unwrap_or(0));
                victims.insert(seq, category);
            }
        }
    }
    let mut per_category: BTreeMap<&str, (i64, i64, i64)> = BTreeMap::new();
    {
        let mut delete = tx.prepare_cached("DELETE FROM records WHERE seq = ?1")?;
        for (seq, category) in &victims {
            delete.execute([seq])?;
            let entry = per_category
                .entry(category.as_str())
                .or_insert((*seq, *seq, 0));
            entry.0 = entry.0.min(*seq);
            entry.1 = entry.1.max(*seq);
            entry.2 += 1;
        }
    }
    for (category, (first, last, count)) in per_category {
        insert_gap(tx, first, last, count, reason, Some(category))?;
    }
    if victims.is_empty() {
        return merge_gaps(tx);
    }
    Ok(u64::try_from(victims.len()).unwrap_or(0))
}

/// The last resort when only gap records are left: replaces them all by one gap that
/// sums them up. Returns how many gaps were merged (0 when there were fewer than two).
fn merge_gaps(tx: &Transaction<'_>) -> rusqlite::Result<u64> {
    let (n, first, last, count, categories): (i64, i64, i64, i64, i64) = tx.query_row(
        "SELECT count(*), coalesce(min(gap_first_seq), 0), coalesce(max(gap_last_seq), 0), \
         coalesce(sum(gap_count), 0), count(DISTINCT coalesce(category, '')) \
         FROM records WHERE gap_reason IS NOT NULL",
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
    )?;
    if n < 2 {
        return Ok(0);
    }
    let (reason, category): (i64, Option<String>) = tx.query_row(
        "SELECT gap_reason, category FROM records WHERE gap_reason IS NOT NULL \
         ORDER BY seq DESC LIMIT 1",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    tx.execute("DELETE FROM records WHERE gap_reason IS NOT NULL", [])?;
    let reason = GapReason::from_code(reason).unwrap_or(GapReason::Evicted);
    let category = if categories == 1 { category } else { None };
    insert_gap(tx, first, last, count, reason, category.as_deref())?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// Turns a row (in `RECORD_COLUMNS` order) into a record, refusing malformed rows.
fn record_from_row(row: &rusqlite::Row<'_>) -> Result<Record, StoreError> {
    let bad = |why: &str| StoreError::Corrupt(format!("malformed record: {why}"));
    let get_err = |e: rusqlite::Error| bad(&e.to_string());
    let seq: i64 = row.get(0).map_err(get_err)?;
    let seq = seq_from_sql(seq);
    let category: Option<String> = row.get(1).map_err(get_err)?;
    let gap_reason: Option<i64> = row.get(7).map_err(get_err)?;
    if let Some(code) = gap_reason {
        let reason = GapReason::from_code(code).ok_or_else(|| bad("unknown gap reason"))?;
        let first: Option<i64> = row.get(8).map_err(get_err)?;
        let last: Option<i64> = row.get(9).map_err(get_err)?;
        let count: Option<i64> = row.get(10).map_err(get_err)?;
        return Ok(Record::Gap(GapRecord {
            seq,
            first_seq: first.map_or(0, seq_from_sql),
            last_seq: last.map_or(0, seq_from_sql),
            count: count.map_or(0, |c| u64::try_from(c).unwrap_or(0)),
            reason,
            category,
        }));
    }
    let kind: Option<String> = row.get(2).map_err(get_err)?;
    let wall: Option<i64> = row.get(3).map_err(get_err)?;
    let boot: Option<Vec<u8>> = row.get(4).map_err(get_err)?;
    let mono: Option<i64> = row.get(5).map_err(get_err)?;
    let payload: Option<Vec<u8>> = row.get(6).map_err(get_err)?;
    let boot_id: [u8; 16] = boot
        .as_deref()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| bad("boot id is not 16 bytes"))?;
    Ok(Record::Event(StoredEvent {
        seq,
        category: category.ok_or_else(|| bad("event without category"))?,
        kind: kind.ok_or_else(|| bad("event without kind"))?,
        wall_time_ms: wall.ok_or_else(|| bad("event without wall time"))?,
        boot_id,
        monotonic_ns: u64::from_ne_bytes(
            mono.ok_or_else(|| bad("no monotonic time"))?.to_ne_bytes(),
        ),
        payload: payload.ok_or_else(|| bad("event without payload"))?,
    }))
}

/// Quarantines a file that failed to open: moves it (and its WAL) aside and drops the
/// shared-memory index. Returns the new path of the database file.
pub(crate) fn quarantine(paths: &Paths, now_ms: u128) -> Result<PathBuf, StoreError> {
    let mut stamp = now_ms;
    let target = loop {
        let candidate = paths.dir.join(format!("buffer.db.corrupt-{stamp}"));
        if !candidate.exists() {
            break candidate;
        }
        stamp += 1;
    };
    fs::rename(&paths.db, &target).map_err(io("quarantining buffer.db"))?;
    if paths.wal.exists() {
        let wal_target = with_suffix(&target, "-wal");
        fs::rename(&paths.wal, wal_target).map_err(io("quarantining buffer.db-wal"))?;
    }
    match fs::remove_file(&paths.shm) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io("removing buffer.db-shm")(e)),
    }
    Ok(target)
}

/// `path` with `suffix` appended to its last component, as SQLite names its `-wal` and
/// `-shm` files; kept byte-exact for state directories whose names are not UTF-8.
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(suffix);
    PathBuf::from(name)
}

/// Deletes all but the `keep` newest quarantined files (with their WAL and index).
pub(crate) fn prune_quarantine(dir: &Path, keep: usize) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut stamps: BTreeSet<u128> = BTreeSet::new();
    let mut files: Vec<(u128, PathBuf)> = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name
            .to_str()
            .and_then(|n| n.strip_prefix("buffer.db.corrupt-"))
        else {
            continue;
        };
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        let Ok(stamp) = digits.parse::<u128>() else {
            continue;
        };
        stamps.insert(stamp);
        files.push((stamp, entry.path()));
    }
    let doomed: BTreeSet<u128> = stamps.iter().rev().skip(keep).copied().collect();
    let mut removed = Vec::new();
    for (stamp, path) in files {
        if doomed.contains(&stamp) && fs::remove_file(&path).is_ok() {
            removed.push(path);
        }
    }
    removed.sort();
    removed
}

/// What can still be read from a quarantined file: the last seq assigned, the ack mark
/// and how many records were held. Best effort: every failure gives `None`.
pub(crate) fn salvage(path: &Path) -> (Option<u64>, Option<u64>, Option<u64>) {
    let Ok(conn) = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
    else {
        return (None, None, None);
    };
    // A value from a damaged file may be garbage; one near i64::MAX would exhaust the
    // new sequence at once, so anything beyond 2^53 is ignored.
    let one = |q: &str| -> Option<u64> {
        conn.query_row(q, [], |r| r.get::<_, i64>(0))
            .ok()
            .and_then(|v| u64::try_from(v).ok())
            .filter(|v| *v < 1 << 53)
    };
    let result = (
        one("SELECT seq FROM sqlite_sequence WHERE name = 'records'"),
        one("SELECT acked_through FROM state WHERE id = 0"),
        one("SELECT count(*) FROM records WHERE gap_reason IS NULL"),
    );
    drop(conn);
    let _ = fs::remove_file(with_suffix(path, "-shm"));
    result
}
