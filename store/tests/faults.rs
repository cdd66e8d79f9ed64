//! Hostile conditions on real files: corrupt buffers, a full filesystem, a long run
//! against the size cap.

// Test code: a failed unwrap is a failed test, and printing explains it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)]

mod common;

use assent_store::{Durability, GapReason, Record, Store, StoreOptions};
use common::{event, footprint, gaps, integrity_check, options, Rng};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Fills a buffer with `n` events and closes it.
fn make_buffer(dir: &Path, n: u64) {
    let (store, _) = Store::open(dir, options(8 << 20)).unwrap();
    store
        .append_many((0..n).map(|i| event("system", i, 200)).collect())
        .unwrap();
    store.ack(10).unwrap();
}

/// Opens a damaged buffer and checks it was quarantined and replaced by a working one.
fn assert_recovers(dir: &Path, what: &str) {
    let (store, report) = Store::open(dir, options(8 << 20)).unwrap();
    let moved = report
        .quarantined
        .clone()
        .unwrap_or_else(|| panic!("{what}: not quarantined, report {report:?}"));
    assert!(moved.exists(), "{what}: {} missing", moved.display());
    assert!(moved
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("buffer.db.corrupt-"));
    assert!(report.corruption.is_some(), "{what}");
    let records = store.export().unwrap();
    let g = gaps(&records);
    assert_eq!(g.len(), 1, "{what}: {records:?}");
    assert_eq!(g[0].reason, GapReason::BufferReset, "{what}");
    assert_eq!(Some(g[0].seq), report.reset_gap_seq, "{what}");
    // The fresh buffer works and its seqs continue after the reset gap.
    let seq = store.append(event("system", 1, 200)).unwrap();
    assert!(seq > g[0].seq, "{what}");
    let batch = store.next_batch(10, u64::MAX).unwrap().unwrap();
    assert_eq!(batch.records.len(), 2, "{what}");
    drop(store);
    assert_eq!(integrity_check(dir), "ok", "{what}");
    // And it opens cleanly again: no crash loop, no second quarantine.
    let (_store, again) = Store::open(dir, options(8 << 20)).unwrap();
    assert_eq!(again.quarantined, None, "{what}");
}

#[test]
fn truncated_file_is_quarantined() {
    for keep in [100u64, 4096, 150_000] {
        let dir = tempfile::tempdir().unwrap();
        make_buffer(dir.path(), 5000);
        let db = dir.path().join("buffer.db");
        let len = fs::metadata(&db).unwrap().len();
        assert!(len > keep, "buffer only {len} bytes");
        fs::OpenOptions::new()
            .write(true)
            .open(&db)
            .unwrap()
            .set_len(keep)
            .unwrap();
        assert_recovers(dir.path(), &format!("truncated to {keep}"));
    }
}

#[test]
fn random_bytes_are_quarantined() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng::from_time();
    let junk: Vec<u8> = (0..100_000).map(|_| rng.next() as u8).collect();
    fs::write(dir.path().join("buffer.db"), junk).unwrap();
    assert_recovers(dir.path(), "random bytes");
}

#[test]
fn wrong_header_is_quarantined() {
    let dir = tempfile::tempdir().unwrap();
    make_buffer(dir.path(), 500);
    let db = dir.path().join("buffer.db");
    let mut bytes = fs::read(&db).unwrap();
    bytes[..16].copy_from_slice(b"SQLite format 2\0");
    fs::write(&db, bytes).unwrap();
    assert_recovers(dir.path(), "wrong header");
}

#[test]
fn a_foreign_database_is_quarantined() {
    let dir = tempfile::tempdir().unwrap();
    let conn = rusqlite::Connection::open(dir.path().join("buffer.db")).unwrap();
    conn.execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
        .unwrap();
    drop(conn);
    assert_recovers(dir.path(), "foreign database");
}

#[test]
fn a_file_never_initialised_starts_afresh_without_quarantine() {
    // What a power cut before the first sync leaves under `Normal`: the header page that
    // switching to WAL wrote, and no schema (found by the power-cut test).
    let dir = tempfile::tempdir().unwrap();
    let conn = rusqlite::Connection::open(dir.path().join("buffer.db")).unwrap();
    conn.pragma_update_and_check(None, "journal_mode", "WAL", |_| Ok(()))
        .unwrap();
    drop(conn);
    assert!(fs::metadata(dir.path().join("buffer.db")).unwrap().len() > 0);
    assert_starts_afresh(dir.path());
    // And a crash right after the file was created: zero bytes, no WAL.
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("buffer.db"), b"").unwrap();
    assert_starts_afresh(dir.path());
}

fn assert_starts_afresh(dir: &Path) {
    let (store, report) = Store::open(dir, options(8 << 20)).unwrap();
    assert_eq!(report.quarantined, None, "{report:?}");
    assert_eq!(report.reset_gap_seq, None, "{report:?}");
    assert_eq!(store.append(event("system", 1, 200)).unwrap(), 1);
    drop(store);
    assert_eq!(integrity_check(dir), "ok");
}

/// Copies into `dir` the WAL of another database in WAL mode, whose committed frames
/// stay in its WAL: valid frames on their own, for a different database.
fn plant_foreign_wal(dir: &Path) {
    let other = tempfile::tempdir().unwrap();
    let other_db = other.path().join("other.db");
    let conn = rusqlite::Connection::open(&other_db).unwrap();
    conn.pragma_update_and_check(None, "journal_mode", "WAL", |_| Ok(()))
        .unwrap();
    conn.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
    conn.execute_batch(
        "CREATE TABLE t (x BLOB); \
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 500) \
         INSERT INTO t SELECT randomblob(300) FROM n;",
    )
    .unwrap();
    let wal = other.path().join("other.db-wal");
    assert!(fs::metadata(&wal).unwrap().len() > 100_000);
    fs::copy(&wal, dir.join("buffer.db-wal")).unwrap();
    drop(conn);
}

#[test]
fn a_wal_from_another_database_is_quarantined() {
    let dir = tempfile::tempdir().unwrap();
    make_buffer(dir.path(), 2000);
    plant_foreign_wal(dir.path());
    assert_recovers(dir.path(), "foreign wal");
}

/// A state directory whose name is not UTF-8: the quarantined WAL is named exactly after
/// its quarantined database file plus `-wal` (a lossy `display()` would not find it).
#[test]
fn quarantine_in_a_non_utf8_directory_keeps_the_wal_alongside() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let top = tempfile::tempdir().unwrap();
    let dir = top.path().join(OsStr::from_bytes(b"state-\xff\xfe"));
    make_buffer(&dir, 2000);
    plant_foreign_wal(&dir);
    let (_store, report) = Store::open(&dir, options(8 << 20)).unwrap();
    let moved = report.quarantined.unwrap();
    assert_eq!(moved.parent(), Some(dir.as_path()));
    let mut wal = moved.clone().into_os_string();
    wal.push("-wal");
    let listing: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    // SQLite may already have emptied the WAL while the open failed; the point is its
    // name.
    assert!(
        fs::metadata(&wal).is_ok(),
        "the wal was not moved alongside: {listing:?}"
    );
}

#[test]
fn at_most_two_quarantined_files_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let mut removed = 0;
    for round in 0..4 {
        drop(Store::open(dir.path(), options(1 << 20)).unwrap());
        fs::write(dir.path().join("buffer.db"), vec![round as u8 + 1; 8192]).unwrap();
        let (_store, report) = Store::open(dir.path(), options(1 << 20)).unwrap();
        assert!(report.quarantined.is_some(), "round {round}");
        removed += report.removed_quarantines.len();
    }
    let kept: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("buffer.db.corrupt-"))
        .collect();
    assert_eq!(kept.len(), 2, "{kept:?}");
    assert_eq!(removed, 2);
}

#[test]
fn an_unopenable_path_is_an_error_not_a_quarantine() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("buffer.db")).unwrap();
    fs::write(dir.path().join("buffer.db").join("x"), b"keep me").unwrap();
    assert!(Store::open(dir.path(), options(1 << 20)).is_err());
    assert!(dir.path().join("buffer.db").join("x").exists());
}

/// Checks that everything appended is either held or accounted for by a gap.
fn assert_accounted(records: &[Record], appended: u64) {
    let held = records
        .iter()
        .filter(|r| matches!(r, Record::Event(_)))
        .count() as u64;
    let lost: u64 = gaps(records).iter().map(|g| g.count).sum();
    assert_eq!(held + lost, appended, "held {held} + lost {lost}");
}

#[test]
fn size_cap_holds_within_one_percent_over_a_long_run() {
    let dir = tempfile::tempdir().unwrap();
    let max = 2u64 << 20;
    let opts = StoreOptions {
        durability: Durability::Normal,
        optional_categories: vec!["debug".to_owned()],
        ..options(max)
    };
    let (store, _) = Store::open(dir.path(), opts).unwrap();
    let mut peak = 0;
    let mut appended = 0u64;
    for round in 0..400u64 {
        let events = (0..100)
            .map(|i| {
                let n = round * 100 + i;
                event(if n % 4 == 0 { "debug" } else { "system" }, n, 200)
            })
            .collect();
        store.append_many(events).unwrap();
        appended += 100;
        if round % 50 == 7 {
            // Single appends and a purge exercise the other paths too.
            store.append(event("system", round, 200)).unwrap();
            appended += 1;
        }
        peak = peak.max(footprint(dir.path()));
    }
    let limit = max + max / 100;
    assert!(peak <= limit, "footprint peaked at {peak} > {limit}");
    let records = store.export().unwrap();
    assert_accounted(&records, appended);
    let g = gaps(&records);
    assert!(g.iter().all(|g| g.reason == GapReason::Evicted));
    // Optional events went first: the remaining ones are newer than every evicted one.
    let newest_evicted_debug = g
        .iter()
        .filter(|g| g.category.as_deref() == Some("debug"))
        .map(|g| g.last_seq)
        .max()
        .unwrap();
    let oldest_held_debug = records
        .iter()
        .filter_map(|r| match r {
            Record::Event(e) if e.category == "debug" => Some(e.seq),
            _ => None,
        })
        .min();
    assert!(oldest_held_debug.is_none_or(|s| s > newest_evicted_debug));
    let stats = store.stats().unwrap();
    println!(
        "peak footprint {peak} of {max}; held {} events, {} gaps",
        stats.count, stats.gaps
    );
    drop(store);
    assert_eq!(integrity_check(dir.path()), "ok");
}

/// A tmpfs mounted for one test and unmounted when dropped.
struct Tmpfs {
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(bytes: u64) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mnt");
        fs::create_dir(&path).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(&path)
            .output()
            .expect("running mount(8); the disk-full test needs root and a tmpfs");
        assert!(
            out.status.success(),
            "mounting a tmpfs failed (the disk-full test needs root): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Self { path, _dir: dir }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.path).status();
    }
}

/// Writes to `path` until the filesystem is full or `limit` bytes were written.
fn fill(path: &Path, limit: u64) -> u64 {
    use std::io::Write;
    let mut f = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    let chunk = vec![0x5au8; 4096];
    let mut written = 0;
    while written < limit {
        match f.write(&chunk) {
            Ok(0) => break,
            Ok(n) => written += n as u64,
            Err(e) if e.raw_os_error() == Some(28) => break,
            Err(e) => panic!("filling: {e}"),
        }
    }
    let _ = f.sync_all();
    written
}

// c_ulong: 32 bits on armv7, so widen before multiplying (a no-op on 64-bit targets).
#[allow(clippy::useless_conversion)]
fn free_bytes(path: &Path) -> u64 {
    let s = nix::sys::statvfs::statvfs(path).unwrap();
    u64::from(s.blocks_available()) * u64::from(s.fragment_size())
}

#[test]
fn disk_full_evicts_and_never_corrupts() {
    let fs_bytes = 3u64 << 20;
    let tmp = Tmpfs::mount(fs_bytes);
    let state = tmp.path.join("state");
    let filler = tmp.path.join("filler");
    // Leave about 1.2 MiB for a buffer allowed 8 MiB.
    fill(&filler, fs_bytes - (1200 << 10));
    let free_before = free_bytes(&tmp.path);
    let (store, _) = Store::open(&state, options(8 << 20)).unwrap();
    let mut appended = 0u64;
    for n in 0..12_000 {
        store
            .append(event("system", n, 200))
            .unwrap_or_else(|e| panic!("append {n}: {e}"));
        appended += 1;
    }
    let records = store.export().unwrap();
    assert_accounted(&records, appended);
    assert!(
        gaps(&records)
            .iter()
            .any(|g| g.reason == GapReason::DiskFull),
        "no disk-full gap (free before {free_before})"
    );

    // Now another program takes every byte left, while the store is open.
    fill(&filler, u64::MAX);
    assert!(free_bytes(&tmp.path) < 8192);
    for n in 0..6_000 {
        store
            .append(event("system", n, 200))
            .unwrap_or_else(|e| panic!("append {n} on a full disk: {e}"));
        appended += 1;
    }
    let records = store.export().unwrap();
    assert_accounted(&records, appended);
    let stats = store.stats().unwrap();
    println!(
        "on a full disk: held {} events, {} gaps, {} file bytes",
        stats.count, stats.gaps, stats.file_bytes
    );
    assert!(stats.count > 500, "kept only {} events", stats.count);
    drop(store);
    assert_eq!(integrity_check(&state), "ok");

    // Room comes back: the store keeps working.
    fs::remove_file(&filler).unwrap();
    let (store, report) = Store::open(&state, options(8 << 20)).unwrap();
    assert_eq!(report.quarantined, None);
    for n in 0..2_000 {
        store.append(event("system", n, 200)).unwrap();
    }
    drop(store);
    assert_eq!(integrity_check(&state), "ok");
}

#[test]
fn a_replacement_buffer_gets_a_new_buffer_id() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(dir.path(), options(1 << 20)).unwrap();
    let first = store.buffer_id().unwrap();
    assert_ne!(first, 0);
    drop(store);
    // Stable across a reopen.
    let (store, _) = Store::open(dir.path(), options(1 << 20)).unwrap();
    assert_eq!(store.buffer_id().unwrap(), first);
    drop(store);
    // A quarantined file is replaced by a buffer with another id, so a receiver that keys
    // seqs by (device, buffer) never takes new events for duplicates of old ones.
    let mut rng = Rng::from_time();
    let junk: Vec<u8> = (0..100_000).map(|_| rng.next() as u8).collect();
    fs::write(dir.path().join("buffer.db"), junk).unwrap();
    let (store, report) = Store::open(dir.path(), options(1 << 20)).unwrap();
    assert!(report.quarantined.is_some());
    assert_ne!(store.buffer_id().unwrap(), first);
}
